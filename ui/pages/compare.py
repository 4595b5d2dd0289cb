"""Compare: two checkpoints (or two models) read the same text; what got better, what got worse, and
which units moved. Model A is the sidebar's model; model B is picked here from the same bundles.

Layout: model B and the text -> the summary sentence -> the Δ-surprisal strip and the token selector ->
what each model expected at the selected token, side by side -> the units that changed most (or why
they cannot be compared) -> (opened on demand) the tokens that got most worse and most better.
The text, model B and the selected token are kept in the address bar.
"""
from __future__ import annotations

import html

import streamlit as st

import explorer as E
from explorer.present import compare_figures, views
from ui import cached_analysis, session, sidebar, widgets

#: The units listed in the bar chart.
UNITS_SHOWN = 12
#: The session keys kept in the address bar (session.url_state): the text, model B, the token and the layer
#: whose units are compared.
URL = ("text=cmp_text", "b=cmp_b", "token=cmp_token:int", "units=cmp_layer:auto")


def _default_b(names: list[str], a: str) -> str:
    """Another bundle than A, preferring the sidebar's default models (a checkpoint and its fine-tune)."""
    others = [n for n in names if n != a]
    for n in sidebar.DEFAULT_MODELS:
        if n in others:
            return n
    return others[0] if others else a


def _word_table(df, word_col: str, p_col: str, actual: str):
    table = df[[word_col, p_col]].rename(columns={word_col: "word", p_col: "P"})
    return table.style.apply(lambda row: ["background-color: #fff3b0" if row["word"] == actual else ""] * 2, axis=1)


def _expected(col, name: str, side: str, df):
    a = df.attrs
    p, rank = a[f"p_{side}"], a[f"rank_{side}"]
    col.markdown(f"**{side.upper()} · {html.escape(name)}** expected")
    col.caption(f"“{a['token']}” came: P = {views.pct(p)}, rank {rank}" if rank > 0 else f"“{a['token']}” came")
    col.dataframe(_word_table(df, f"word_{side}", f"p_{side}", a["token"]), hide_index=True, width="stretch",
                  key=f"cmp_list_{side}",
                  column_config={"P": st.column_config.ProgressColumn("P", format="%.3f", min_value=0.0,
                                                                      max_value=1.0)})


def page():
    ctx = session.require_model()
    session.url_state(*URL)
    ss = st.session_state
    st.markdown("#### Compare two models on one text: what changed between checkpoints")
    st.caption("Model A is the sidebar's model; pick model B below (two checkpoints of one run, or a model and "
               "its fine-tune). Both read the same text; each token is coloured by how much more (red) or less "
               "(blue) B is surprised by it than A.")
    options = sidebar.bundle_options()                       # path -> name: the sidebar's list
    paths = {name: path for path, name in options.items()}
    names = list(paths)
    if ss.get("cmp_b") not in paths:
        ss["cmp_b"] = _default_b(names, ctx.name)
    ss.setdefault("cmp_text", widgets.default_text())
    c1, c2 = st.columns([1, 3])
    c1.markdown(f"**Model A:** {html.escape(ctx.name)} (the sidebar's)")
    name_b = c1.selectbox("Model B", names, key="cmp_b", persist_state="session",
                          help="Δ = B − A. The bundles of the models folder and this session's uploads, as in "
                               "the sidebar.")
    text = c2.text_area("Text", key="cmp_text", height=110, persist_state="session",
                        help="A passage neither model trained on shows what generalises.")
    if len(names) < 2:
        st.info("There is only one model in the folder: it is compared with itself.", icon=":material/info:")
    if not text.strip():
        st.info("Type a text for both models to read.", icon=":material/edit:")
        return
    layer_opts = ["every"] + list(range(1, ctx.layers + 1))       # layers are numbered from 1, the bottom
    units_layer = ss.get("cmp_layer", "every")
    try:
        cmp = cached_analysis.comparison(ctx, paths[name_b], text,
                                         None if units_layer not in layer_opts[1:] else units_layer)
    except E.ExplorerError as e:
        st.error(str(e), icon=":material/error:")
        return
    st.html(f'<div data-testid="compare-summary" style="font-size:17px;padding:4px 0">'
            f"{html.escape(compare_figures.summary_sentence(cmp))}</div>")

    # ---- the strip and the selected token
    scored = [int(t) for t in cmp.scored]
    if not scored:
        st.info("No token of this text is scored.", icon=":material/info:")
        return
    sig = (ctx.path, paths[name_b], cmp.text)
    prev = ss.get("_cmp_sig")
    ss["_cmp_sig"] = sig
    if (prev is not None and prev != sig) or ss.get("cmp_token") not in scored:
        ss["cmp_token"] = cmp.most_changed            # a new text or model opens on the largest change
    labels = {t: f"{t} · {views.visible(cmp.tokens[t])} ({cmp.delta[t]:+.2f} bits)" for t in scored}
    t = st.select_slider("Token", scored, key="cmp_token", format_func=labels.get,
                         help="The token whose predictions are compared below (outlined in the strip). "
                              "The page opens on the token whose surprisal changed most.")
    session.url_write(*URL)                           # the token chosen for a new text, too
    win = views.window(cmp.n, t, views.CHART_WINDOW)       # a long text: the stretch around the token
    widgets.chart(compare_figures.delta_strip(cmp, window=win, selected=t), "cmp_fig_strip")

    # ---- what each model expected at the selected token
    pred = cmp.predictions(t)
    st.markdown(f"##### What each model expected at “{html.escape(views.visible(cmp.tokens[t]))}” "
                f"(token {t}): {cmp.surprisal_a[t]:.2f} bits under A, {cmp.surprisal_b[t]:.2f} under B")
    la, lb = st.columns(2)
    _expected(la, cmp.name_a, "a", pred)
    _expected(lb, cmp.name_b, "b", pred)

    # ---- the units that changed most
    st.markdown("##### The units that changed most")
    if cmp.dh is None:
        st.info(cmp.units_note[:1].upper() + cmp.units_note[1:] + ".", icon=":material/info:")
    else:
        st.radio("Units of", layer_opts, key="cmp_layer", horizontal=True, persist_state="session",
                 format_func=lambda l: "every layer" if l == "every" else f"layer {l}",
                 help="Mean |h_B − h_A| (and |c_B − c_A|) over the text, unit by unit. Unit k of A is compared "
                      "with unit k of B: meaningful when B descends from A.")
        if compare_figures.changed_units_data(cmp, 1).empty:
            st.info("No unit changed: the two models compute the same states.", icon=":material/info:")
        else:
            fig = compare_figures.changed_units_bars(cmp, UNITS_SHOWN)
            fig.update_layout(height=380)
            widgets.chart(fig, "cmp_fig_units")

    with st.expander("The tokens that got most worse and most better, in context", key="cmp_lists",
                     icon=":material/format_list_numbered:"):
        cols = {"token": "token", "delta": st.column_config.NumberColumn("Δ bits", format="%+.2f"),
                "surprisal_a": st.column_config.NumberColumn("A bits", format="%.2f"),
                "surprisal_b": st.column_config.NumberColumn("B bits", format="%.2f"), "context": "context"}
        for title, df in (("Worse in B", cmp.worse(8)), ("Better in B", cmp.better(8))):
            st.markdown(f"**{title}**")
            st.dataframe(df[list(cols)], hide_index=True, width="stretch", column_config=cols)


with widgets.guard("the Compare page"):
    page()
