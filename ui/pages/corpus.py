"""Corpus: select -> match (after LSTMVis), and state trajectories over the corpus.

Layout: your text and the range picked in its token strip -> the units on across the selection (the
hypothesis) over your text -> every place in the corpus where those units are on, each with a small
heatmap of what they do there -> trajectories of two texts through the corpus's principal plane.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.present import corpus_figures, scales
from ui import cached, corpus_index, session, widgets

DEFAULT_TEXT = 'Holmes looked at me and said, "You have been in Afghanistan, I perceive."'
PAIRS = {"Mary / John": ("Mary loves John.", "John loves Mary."),
         "Bartender": ('A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,',
                       'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,')}


def _set_pair(name: str):
    st.session_state["traj_a"], st.session_state["traj_b"] = PAIRS[name]


def match_section(ctx, layer, idx):
    ss = st.session_state
    ss.setdefault("corpus_text", DEFAULT_TEXT)
    text = st.text_input("Text", key="corpus_text", persist_state="session")
    tr = cached.get_trace(ctx, text)
    if tr is None:
        return
    words = tr.words
    n = len(words)
    sel = ss.get("corpus_sel")
    if not (isinstance(sel, (tuple, list)) and len(sel) == 2 and 0 <= sel[0] <= sel[1] < n):
        ss["corpus_sel"] = (min(9, n - 1), min(10, n - 1)) if n > 10 else (max(0, n - 2), n - 1)
    c1, c2, c3, c4, c5 = st.columns([4.0, 1.4, 0.9, 1.1, 1.1], vertical_alignment="bottom")
    a, b = c1.slider("Selection: tokens (the numbers under the text)", 0, max(1, n - 1), key="corpus_sel",
                     help="The first and last token of the range; 0 is the boundary token ¶ read first.")
    a, b = min(int(a), n - 1), min(int(b), n - 1)
    ss.setdefault("corpus_thr", 0.5)
    thr = c2.slider("Threshold", 0.0, 0.95, step=0.05, key="corpus_thr", persist_state="session",
                    help="A unit is on where its value is above this.")
    qs = [q for q in idx.quantities]
    q = c3.selectbox("Quantity", qs, key="corpus_q") if len(qs) > 1 else qs[0]
    quiet = c4.checkbox("Quiet before", key="corpus_quiet", persist_state="session",
                        help="Also require the units to be off at the token just before the selection.")
    ss.setdefault("corpus_drop", 0)
    drop = c5.number_input("May drop out", 0, 64, step=1, key="corpus_drop", persist_state="session",
                           help="How many of the selection's units a match may lack (0: all must be on, "
                                "LSTMVis's exact match).")
    start, end = int(a), int(b) + 1
    r = corpus_index.match(ctx, idx, text, start, end, layer, q, float(thr), bool(quiet), 12, int(drop))
    s = r.selection
    vr = scales.fixed_range(q, ctx.ranges)
    mean = s.values.mean(1) if s.units else np.full(n, np.nan)
    st.html(corpus_figures.CHIP_CSS + corpus_figures.context_html(words, mean, (start, end), vr, numbers=True,
                                                                  meta="selection",
                                                                  title="colour: mean of the selection's units"))
    m1, m2, m3 = st.columns(3)
    m1.metric("Units on across the selection", len(s.units))
    m2.metric("Matches in the corpus", f"{r.total:,}")
    m3.metric("Query time", f"{1000 * r.seconds:.0f} ms")
    if not s.units:
        st.info(f"No unit of layer {layer} is above {thr:g} at every selected token. Lower the "
                "threshold or select fewer tokens.", icon=":material/info:")
        return
    widgets.chart(corpus_figures.selection_figure(s, vr), key="corpus_sel_fig")
    if not r.matches:
        st.info("Those units are never on together anywhere else in the corpus.", icon=":material/info:")
        return
    st.markdown(f"**Where else they are on** — ranked by how close the match's length is to the selection's "
                f"({end - start} tokens), then by how far above {thr:g} the units are.")
    for k, m in enumerate(r.matches):
        with st.container(border=True):
            st.html(corpus_figures.CHIP_CSS + corpus_figures.context_html(
                list(m.tokens), m.values.mean(0), m.focus, vr,
                meta=f"#{k + 1} {m.file} · tokens {m.start}–{m.end} · units on {100 * m.units_on:.0f}% · "
                     f"score {m.score:+.3f} · length gap {m.length_gap}"))
            widgets.chart(corpus_figures.match_figure(m, s.units, vr), key=f"corpus_match_{k}")


def trajectory_section(ctx, layer, idx):
    ss = st.session_state
    st.markdown("#### Trajectories")
    st.caption("Each token's state, projected on the first two principal components of every state in the "
               "corpus (IncrementalPCA, fitted chunk by chunk); grey is where the corpus spends its time. "
               "Click a point to open that token in Explore.")
    ss.setdefault("traj_a", PAIRS["Mary / John"][0])
    ss.setdefault("traj_b", PAIRS["Mary / John"][1])
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Mary / John", key="traj_pair_mj", on_click=_set_pair, args=("Mary / John",))
    b2.button("Bartender pair", key="traj_pair_bar", on_click=_set_pair, args=("Bartender",))
    c1, c2 = st.columns(2)
    ta = c1.text_input("First text", key="traj_a", persist_state="session")
    tb = c2.text_input("Second text (optional)", key="traj_b", persist_state="session")
    texts = [t for t in (ta, tb) if t.strip()]
    if not texts:
        st.info("Type a text to draw its path.", icon=":material/edit:")
        return
    proj = corpus_index.projection(ctx, idx, layer, "h")
    corpus_index.trajectory_chart(ctx, proj, texts, key="traj_fig")


def page():
    ctx, layer, idx = corpus_index.sidebar_and_index()
    session.url_state("text=corpus_text")   # the address bar keeps these (lecture links)
    st.markdown("#### Corpus: select a range, find where its units are on")
    st.caption("After LSTMVis (Strobelt et al. 2018): the units above the threshold at every token of your "
               "selection are a hypothesis; the corpus is searched for every run of tokens where all of them "
               "are on. " + corpus_index.index_caption(idx))
    with widgets.guard("select and match"):
        match_section(ctx, layer, idx)
    with widgets.guard("the trajectories"):
        trajectory_section(ctx, layer, idx)


page()
