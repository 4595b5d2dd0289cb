"""Contrast: the same model reads two texts; every state and prediction is compared step by step.

Layout: pair presets and two text boxes -> the bag-of-words sentence -> aligned token strips and the
compared step -> next-word comparison and final-state distances -> ‖Δh‖/‖Δc‖ lines -> Δ heatmap ->
(opened on demand) both texts' trajectories through the default corpus index's principal plane.
"""
from __future__ import annotations

import html

import streamlit as st

import explorer as E
from explorer.errors import InputError
from explorer.present import analysis_figures, lesson, views
from ui import cached_analysis, corpus_index, session, widgets


#: Legends at the foot of the figure, under the axis labels: above the plot they covered the titles,
#: and at the right they took half a narrow column (issue 14, 800 px with the sidebar open).
BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left")


def _set_pair(key: str):
    p = lesson.PAIRS[key]
    st.session_state["ct_a"], st.session_state["ct_b"] = p.a, p.b
    st.session_state["ct_words"] = ", ".join(p.words)


def _pair_of(a: str, b: str) -> lesson.Pair | None:
    for p in lesson.PAIRS.values():
        if (a.strip(), b.strip()) == (p.a, p.b):
            return p
    return None


def _short(text: str, n: int = 40) -> str:
    t = " ".join(text.split())
    return t if len(t) <= n else t[: n - 1] + "…"


def trajectory_section(ctx, layer: int, a: str, b: str, pair: lesson.Pair | None):
    """Both texts as paths through the first two principal components of the default corpus index, over
    its density (the Corpus page's view, issue 9 part 4). Behind a stateful expander: while it is closed
    nothing is projected, and the index is only built by its button (slow on a small machine)."""
    box = st.expander("Trajectories: both texts through the corpus's principal plane", key="ct_traj",
                      on_change="rerun", icon=":material/timeline:")
    if not box.open:
        return
    with box, widgets.guard("the trajectories"):
        corpus = corpus_index.default_corpus()
        idx = corpus_index.index_if_built(ctx, corpus, "The trajectories are drawn over the index of the default "
                                                       "corpus, which is not built yet for this model. Building it "
                                                       "reads every token once (minutes on a small machine); the "
                                                       "Corpus and Units pages use the same index.")
        if idx is None:
            return
        st.caption(f"Each token's state (layer {layer}, h) projected on the first two principal components "
                   "of every state in the default corpus (IncrementalPCA); grey is where the corpus spends its "
                   "time. Hover a point to name its token; click it to open that text in Explore there. "
                   + corpus_index.index_caption(idx))
        labels = [f"A: {pair.name_a}", f"B: {pair.name_b}"] if pair else [f"A: {_short(a)}", f"B: {_short(b)}"]
        proj = corpus_index.projection(ctx, idx, layer, "h")
        corpus_index.trajectory_chart(ctx, proj, [a, b], key="ct_traj_fig", labels=labels)


#: What the address bar keeps on this page (session.url_state): both texts, the layer, the alignment,
#: the words compared, the compared step and the quantity of the Δ heatmap.
URL_KEYS = ("a=ct_a", "b=ct_b", "layer:layer", "align=ct_align", "words=ct_words", "step=ct_step:int", "q=ct_q")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    layer = widgets.layer_picker(ctx)
    ss = st.session_state
    first = lesson.PAIRS["bartender"]
    ss.setdefault("ct_a", first.a)
    ss.setdefault("ct_b", first.b)
    ss.setdefault("ct_words", ", ".join(first.words))

    st.markdown("#### Contrast two texts: the same model reads both")
    st.caption("Every step of A is compared with the same step of B. Where the texts differ, the states "
               "part; how far apart they stay shows what the network carries forward.")
    bar = st.container(horizontal=True, gap="small")
    for key, p in lesson.PAIRS.items():
        bar.button(p.label, key=f"ct_pair_{key}", on_click=_set_pair, args=(key,), icon=":material/compare_arrows:")
    ca, cb = st.columns(2)
    a = ca.text_area("Text A", key="ct_a", height=90, persist_state="session")
    b = cb.text_area("Text B", key="ct_b", height=90, persist_state="session")
    if not a.strip() or not b.strip():
        st.info("Type a text in both boxes, or pick one of the pairs above.", icon=":material/edit:")
        return
    o1, o2, o3 = st.columns([1.2, 2.2, 1.2], vertical_alignment="bottom")
    align = o1.radio("Align", ["start", "end"], key="ct_align", horizontal=True, persist_state="session",
                     format_func=lambda s: {"start": "first tokens", "end": "last tokens"}[s],
                     help="Compare step t of A with step t of B (first tokens), or line the texts up at their ends.")
    words_raw = o2.text_input("Next words to compare", key="ct_words", persist_state="session",
                              help="Comma-separated words whose probabilities are compared at the chosen step.")
    words = [w.strip() for w in words_raw.split(",") if w.strip()][:8]

    c = cached_analysis.contrast(ctx, a, b, align)
    if len(c.common) == 0:
        st.info("The texts have no step in common.", icon=":material/info:")
        return
    pair = _pair_of(a, b)
    name_a, name_b = (pair.name_a, pair.name_b) if pair else ("A", "B")
    bow = cached_analysis.bow_distance(ctx.path, ctx.stamp, c.a.text, c.b.text, align)
    st.html(f'<div data-testid="bag-line" style="font-size:18px;padding:6px 0 2px 0">'
            f"{html.escape(lesson.bag_sentence(c, bow))}</div>")

    # ---- the compared step
    sig = (ctx.path, c.a.text, c.b.text, align)
    com = [int(j) for j in c.common]
    if ss.get("_ct_sig") != sig or ss.get("ct_step") not in com:
        ss["_ct_sig"] = sig
        if not (session.linked("ct_step") and ss.get("ct_step") in com):     # a link's step, kept once
            ss["ct_step"] = lesson.compare_step(c, pair.at if pair else "last")
    labels = {j: (c.tokens_a[j] if c.same_token[j] else f"{c.tokens_a[j]} | {c.tokens_b[j]}") for j in com}
    step = o3.select_slider("Compared step", com, key="ct_step", format_func=lambda j: f"{j} · {labels[j]}",
                            help="The step whose next-word predictions are compared (outlined in the strip).")
    win = views.window(c.n, step, views.CHART_WINDOW)      # a long text: the stretch around the compared step
    st.html(lesson.pair_strip_html(c, step, name_a, name_b, window=win))

    left, right = st.columns([1.3, 1])        # the tables need room in a narrow window
    with left:
        try:
            df = cached_analysis.next_words(ctx, a, b, align, step, words)
        except InputError as e:
            st.warning(widgets.friendly(e), icon=":material/warning:")
            df = None
        if df is not None:
            after = f"after “{c.tokens_a[step]}”" + ("" if c.same_token[step] else f" | “{c.tokens_b[step]}”")
            chosen = df[df["kind"] == "chosen"]
            missing = list(chosen[~chosen["in_vocab"]]["word"])
            if missing:
                st.caption("Not in the vocabulary: " + ", ".join(missing))
            if chosen["in_vocab"].any():
                fig = analysis_figures.next_word_bars(chosen, top=len(chosen))
                fig.update_layout(title=f"The chosen words {after}<br>(step {step})", height=380,
                                  legend=BELOW, margin=dict(t=80, b=84))
                fig.data[0].name, fig.data[1].name = f"A: {name_a}", f"B: {name_b}"
                widgets.chart(fig, "ct_fig_chosen")
                if {"miss", "sir"} <= set(chosen[chosen["in_vocab"]]["word"]):
                    st.markdown(lesson.address_sentence(df, name_a, name_b))
            top = df[df["kind"] == "top"]
            fig = analysis_figures.next_word_bars(top, top=12)
            fig.update_layout(title=f"The most probable next words<br>{after}", height=380,
                              legend=BELOW, margin=dict(t=80, b=84))
            fig.data[0].name, fig.data[1].name = f"A: {name_a}", f"B: {name_b}"
            widgets.chart(fig, "ct_fig_top")
    with right:
        st.markdown("**How different are the final states?**")
        fd = lesson.final_distances(c)
        st.dataframe(fd, hide_index=True, width="stretch",
                     column_config={"state": st.column_config.TextColumn("final state", width="medium"),
                                    "cosine_distance": st.column_config.NumberColumn("cos. dist.", format="%.4f",
                                                                                     width="small")})
        st.caption("Cosine distance: 0 = pointing the same way, 1 = unrelated, 2 = opposite.")
        if df is not None:
            tab = lesson.chosen_probs(df)
            tab = tab[tab["in_vocab"]]        # words the model has no token for have no probability
            st.markdown(f"**Chosen words at step {step}**")
            if tab.empty:
                st.caption("None of the chosen words is a token of this model"
                           + (" (it reads characters)." if isinstance(ctx.model.tokenizer, E.CharTokenizer)
                              else "."))
            else:
                small = dict(width="small")           # short headers: a narrow column cut the table
                st.dataframe(tab[["word", "p_a", "p_b", "ratio"]], hide_index=True, width="stretch",
                             column_config={"word": st.column_config.TextColumn("word", **small),
                                            "p_a": st.column_config.NumberColumn("P(A)", format="%.4f", **small),
                                            "p_b": st.column_config.NumberColumn("P(B)", format="%.4f", **small),
                                            "ratio": st.column_config.NumberColumn("A/B", format="%.2f", **small)})
                st.caption(f"A: {name_a} · B: {name_b}")

    fig = analysis_figures.delta_norm_lines(c, window=win, selected=step)
    fig.update_xaxes(tickangle=-45 if win[1] - win[0] > 12 else 0)
    fig.update_layout(height=480, legend=BELOW, margin=dict(r=20, t=80, b=84),
                      title="How far apart the two states are<br>after each token")   # one line was cut at 800 px
    widgets.chart(fig, "ct_fig_lines")

    qs = ["h", "c"] if c.dc is not None else ["h"]
    q = st.radio("Difference of", qs, key="ct_q", horizontal=True, persist_state="session",
                 format_func=lambda q: {"h": "hidden state h", "c": "cell state c"}[q])
    fig = analysis_figures.delta_heatmap(c, q, layer, window=win, selected=step)
    fig.update_xaxes(tickangle=-45 if win[1] - win[0] > 12 else 0)
    fig.update_layout(height=480, margin=dict(t=80), title=f"{q}(B) − {q}(A) for every unit, layer {layer}"
                                                            "<br>(red: larger in B, blue: larger in A)")
    widgets.chart(fig, "ct_fig_heat")

    trajectory_section(ctx, layer, a, b, pair)


with widgets.guard("the Contrast page"):
    page()
