"""Patch (causal tracing): which layer and which step carry the information that separates two texts?

Layout: the pair (bartender preset) and the metric -> the layer × position heatmap per quantity ->
the strongest cells -> one cell chosen: that patched run, step by step, beside the corrupted run.
"""
from __future__ import annotations

import hashlib
import html

import streamlit as st

from explorer.analysis import examples
from explorer.errors import InputError
from explorer.present import causal_figures
from explorer.present.player import HEATMAP_TABS, build_player_data
from ui import cached, cached_causal, player_component, session, widgets


def run_sig(ctx, *parts) -> str:
    """A stable id of one patched run for the player (a new run selects its patched position)."""
    key = "|".join(map(str, (ctx.path, ctx.stamp) + parts))
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _bartender():
    """The model's own pair again: the bartender pair on a word model, the speaker's name on a character model."""
    ss = st.session_state
    for k, v in (ss.get("_pt_opening") or (None, {}))[1].items():
        ss[k] = v


def _opening(ctx) -> examples.CausalExample:
    """This model's pair (explorer.analysis.examples): the bartender pair and miss / sir on a word model, a
    pair of the same length in characters and ":" / "," on a character model (issue 22: it got the
    bartender pair, 99 against 97 characters). Set on the first visit, and on a model change for every
    field that still holds the previous model's value."""
    ex = examples.causal_example(ctx.model)
    session.model_defaults("_pt_opening", ctx.path, {"pt_clean": ex.clean, "pt_corrupt": ex.corrupt,
                                                     "pt_target": ex.word, "pt_versus": ex.versus})
    return ex


#: What the address bar keeps on this page (session.url_state): both texts, the two words and the selected
#: cell of the grid (quantity, layer, position).
URL_KEYS = ("clean=pt_clean", "corrupt=pt_corrupt", "word=pt_target", "versus=pt_versus", "q=pt_q",
            "layer=pt_layer:layer", "pos=pt_pos:int")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    ss = st.session_state
    ex = _opening(ctx)
    st.markdown("#### Patch: where does the information travel?")
    st.caption("The corrupted text is read again with one state — one layer, one position, h or c — copied from the "
               "clean run, and read on to the end. A cell's colour is the share of the clean − corrupted difference "
               "in log P(word) − log P(versus) after the last token that this one state restores (Meng et al. 2022). "
               "The texts are aligned position by position, so they must read as the same number of tokens. "
               f"Patching works on up to {cached_causal.PATCH_MAX_TOKENS:,} tokens (the grid's time grows with the "
               "square of the length).")
    if ex.unit_kind == "word":
        st.button("Bartender pair: girl / she vs boy / he", key="pt_preset", on_click=_bartender,
                  icon=":material/local_bar:")
    else:
        st.button("Character pair: a speaker's name, ROMEO vs Romeo", key="pt_preset", on_click=_bartender,
                  icon=":material/theater_comedy:")
    a, b = st.columns(2)
    clean = a.text_area("Clean text", key="pt_clean", height=80, persist_state="session")
    corrupt = b.text_area("Corrupted text", key="pt_corrupt", height=80, persist_state="session")
    c1, c2, _ = st.columns([1, 1, 3])
    target = c1.text_input(ex.unit_kind.capitalize(), key="pt_target", persist_state="session")
    versus = c2.text_input("versus", key="pt_versus", persist_state="session")
    if not clean.strip() or not corrupt.strip() or not target.strip() or not versus.strip():
        st.info("Type both texts and the two words whose log-ratio is traced.", icon=":material/edit:")
        return
    _, too_long = cached_causal.patch_size(ctx, clean, corrupt)
    if too_long:                          # refused before anything runs, with the limit and the length
        st.warning(widgets.friendly(too_long) + ".", icon=":material/straighten:")
        return
    try:
        g = cached_causal.grid(ctx, clean, corrupt, target.strip(), versus.strip())
    except InputError as err:
        st.warning(widgets.friendly(err) + ".", icon=":material/warning:")
        return
    summary = html.escape(causal_figures.patch_summary(g))
    st.html(f'<div data-testid="patch-summary" style="font-size:16px">{summary}</div>')
    L, T = g.metric.shape[1], g.metric.shape[2]
    labels = g.labels()
    top = g.strongest(len(g.frame()))
    top = top[~((top["quantity"] == "h") & (top["layer"] == L) & (top["position"] == T - 1))]     # layer L: the top
    sig = (ctx.path, clean, corrupt, target, versus)
    if ss.get("_pt_sig") != sig:
        ss["_pt_sig"] = sig
        first = top.iloc[0] if len(top) else None
        cell = {"pt_q": str(first["quantity"]) if first is not None else g.quantities[0],
                "pt_layer": int(first["layer"]) if first is not None else L,
                "pt_pos": int(first["position"]) if first is not None else T - 1}
        for k, v in cell.items():            # a new pair opens on its strongest cell; a link's cell is kept once
            if not session.linked(k):
                ss[k] = v
    if ss.get("pt_q") not in g.quantities:
        ss["pt_q"] = g.quantities[0]
    if ss.get("pt_layer") not in range(1, L + 1):         # layers are numbered from 1, the bottom layer
        ss["pt_layer"] = L
    if ss.get("pt_pos") not in range(T):
        ss["pt_pos"] = T - 1
    st.markdown("##### Open one patched run")
    p1, p2, p3 = st.columns([1, 1, 4], vertical_alignment="bottom")
    q = p1.radio("Quantity", list(g.quantities), key="pt_q", horizontal=True)
    layer = p2.selectbox("Layer", list(range(1, L + 1)), key="pt_layer", format_func=lambda l: f"layer {l}")
    pos = p3.select_slider("Position", list(range(T)), key="pt_pos", format_func=lambda i: f"{i} · {labels[i]}")
    widgets.chart(causal_figures.patch_heatmap(g, (q, layer, pos)), "pt_fig_grid")
    run = cached_causal.patched(ctx, clean, corrupt, target.strip(), versus.strip(), layer, pos, q)
    st.html(f'<div data-testid="patch-cell" style="font-size:16px">Patching {html.escape(q)} of layer {layer} at '
            f'“{html.escape(labels[pos])}” (position {pos}) moves log P({html.escape(target)}) − log P({html.escape(versus)}) '
            f"from {float(run.metric[0]):+.3f} to {float(run.metric[1]):+.3f}: it restores {run.restored:+.1%} of the "
            f"difference.</div>")
    widgets.chart(causal_figures.patched_run_lines(run, g.clean_tokens), "pt_fig_run")
    with widgets.guard("the player"):
        st.markdown(f"##### The patched run in the player (layer {layer})")
        tr = cached_causal.patched_trace(ctx, clean, corrupt, target.strip(), versus.strip(), layer, pos, q)
        tab, heat = HEATMAP_TABS[tr.cell][0]          # one tab: the states, as on Explore's first tab
        data = build_player_data(tr, layer, pos=pos, ranges=ctx.ranges, heat=heat, k=cached.TOP_K,
                                 sig=run_sig(ctx, clean, corrupt, q, layer, pos), view=tab, views=[tab])
        player_component.mount(data, key="pt_player", on_pos_change=lambda: None, on_view_change=lambda: None)
    with st.expander("The strongest cells"):
        st.dataframe(causal_figures.strongest_table(g), hide_index=True, width="stretch")


with widgets.guard("the Patch page"):
    page()
