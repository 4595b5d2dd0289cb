"""Corpus: select -> match (after LSTMVis), nearest states, and state trajectories over the corpus.

Layout: your text and the range picked in its token strip -> the units on across the selection (the
hypothesis) over your text -> every place in the corpus where those units are on, each with a small
heatmap of what they do there -> a clicked token's nearest states in the corpus, each opening in Explore
-> trajectories of two texts through the corpus's principal plane.

Without an index yet, its build runs in the background (ui.jobs, once per server) with its progress at the
top, and the page draws what needs no index (the text, the selection's units); the rest follows when the
build ends. Texts over MAX_CHARS are read up to it, with one message for the page.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

import explorer as E
from explorer import settings
from explorer.present import corpus_figures, scales
from ui import cached, corpus_index, session, widgets

DEFAULT_TEXT = 'Holmes looked at me and said, "You have been in Afghanistan, I perceive."'
PAIRS = {"Mary / John": ("Mary loves John.", "John loves Mary."),
         "Bartender": ('A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,',
                       'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,')}


def _set_pair(name: str):
    st.session_state["traj_a"], st.session_state["traj_b"] = PAIRS[name]


def _clip(text: str, name: str, cut: list) -> str:
    """`text` as the page reads it: its first settings.MAX_CHARS characters (explorer.clip_text); a cut
    text's box is named in `cut`, for the page's one message."""
    clipped, was_cut = E.clip_text(text)
    if was_cut:
        cut.append((name, len(text), len(clipped)))
    return clipped


def match_section(ctx, layer, idx, cut: list):
    """The text, its selection and the units on across it; with an index, where else they are on. While
    the index is being built (idx None) the selection's units are shown and the search waits."""
    ss = st.session_state
    ss.setdefault("corpus_text", DEFAULT_TEXT)
    raw = st.text_input("Text", key="corpus_text", persist_state="session")
    text = _clip(raw, "Text", cut)
    tr = cached.trace_or_prompt(ctx, text, "Type a text above: select a range of its tokens, and the corpus "
                                "is searched for where the same units are on; click a token to find where "
                                "else the network was in the same state.",
                                "The text has no word the model reads. Type a sentence above.")
    if tr is None:
        return None
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
    qs = list(idx.quantities) if idx is not None else list(corpus_index.QUANTITIES)
    q = c3.selectbox("Quantity", qs, key="corpus_q") if len(qs) > 1 else qs[0]
    quiet = c4.checkbox("Quiet before", key="corpus_quiet", persist_state="session",
                        help="Also require the units to be off at the token just before the selection.")
    ss.setdefault("corpus_drop", 0)
    drop = c5.number_input("May drop out", 0, 64, step=1, key="corpus_drop", persist_state="session",
                           help="How many of the selection's units a match may lack (0: all must be on, "
                                "LSTMVis's exact match).")
    start, end = int(a), int(b) + 1
    if idx is not None:
        r = corpus_index.match(ctx, idx, text, start, end, layer, q, float(thr), bool(quiet), 12, int(drop))
        s = r.selection
    else:
        r, s = None, corpus_index.select(ctx, text, start, end, layer, q, float(thr), bool(quiet))
    vr = scales.fixed_range(q, ctx.ranges)
    mean = s.values.mean(1) if s.units else np.full(n, np.nan)
    st.html(corpus_figures.CHIP_CSS + corpus_figures.context_html(words, mean, (start, end), vr, numbers=True,
                                                                  meta="selection",
                                                                  title="colour: mean of the selection's units"))
    m1, m2, m3 = st.columns(3)
    m1.metric("Units on across the selection", len(s.units))
    if r is not None:
        m2.metric("Matches in the corpus", f"{r.total:,}")
        m3.metric("Query time", f"{1000 * r.seconds:.0f} ms")
    else:
        m2.metric("Matches in the corpus", "…", help="Searched as soon as the corpus index is built (above).")
    if not s.units:
        st.info(f"No unit of layer {layer} is above {thr:g} at every selected token. Lower the "
                "threshold or select fewer tokens.", icon=":material/info:")
        return tr
    widgets.chart(corpus_figures.selection_figure(s, vr), key="corpus_sel_fig")
    if r is None:
        st.info("Where else these units are on is searched as soon as the corpus index is built (its "
                "progress is above).", icon=":material/hourglass_top:")
        return tr
    if not r.matches:
        st.info("Those units are never on together anywhere else in the corpus.", icon=":material/info:")
        return tr
    st.markdown(f"**Where else they are on** — ranked by how close the match's length is to the selection's "
                f"({end - start} tokens), then by how far above {thr:g} the units are.")
    for k, m in enumerate(r.matches):
        with st.container(border=True):
            st.html(corpus_figures.CHIP_CSS + corpus_figures.context_html(
                list(m.tokens), m.values.mean(0), m.focus, vr,
                meta=f"#{k + 1} {m.file} · tokens {m.start}–{m.end} · units on {100 * m.units_on:.0f}% · "
                     f"score {m.score:+.3f} · length gap {m.length_gap}"))
            widgets.chart(corpus_figures.match_figure(m, s.units, vr), key=f"corpus_match_{k}")
    return tr


#: Tokens of the text offered for the nearest-state click (a window around the selection on a long text).
NB_WINDOW = 120
#: Nearest states listed, and the context tokens shown either side of each.
NB_TOP, NB_SHOWN = 20, 8


def neighbours_section(ctx, layer, idx, tr):
    """Click a token of the text: the corpus tokens whose state is nearest to the network's state there,
    each opening in Explore."""
    ss = st.session_state
    st.markdown("#### Nearest states: where else was the network in this state?")
    words = tr.words
    n = len(words)
    a = int((ss.get("corpus_sel") or (0, 0))[0])
    lo = max(0, min(a - NB_WINDOW // 2, n - NB_WINDOW))
    hi = min(n, lo + NB_WINDOW)
    if ss.get("corpus_nb_pos") is not None and ss.get("corpus_nb_pos") not in range(lo, hi):
        ss["corpus_nb_pos"] = None               # a token of an earlier text
    pos = st.pills("Click a token of the text" + (f" (tokens {lo}–{hi - 1} of {n})" if hi - lo < n else ""),
                   list(range(lo, hi)), selection_mode="single", key="corpus_nb_pos",
                   format_func=lambda i: f"{corpus_index.label(words[i])} · {i}",
                   help="The state after that token (h of the sidebar's layer) is compared with the state "
                        "after every token of the corpus, by cosine similarity.")
    if pos is None:
        st.caption("Click a token above to list the corpus tokens where the network's state was nearest to its "
                   "state there.")
        return
    if idx is None:
        st.info("The nearest states are searched as soon as the corpus index is built (its progress is above).",
                icon=":material/hourglass_top:")
        return
    q = "h" if "h" in idx.quantities else idx.quantities[0]
    nb = corpus_index.neighbours(ctx, idx, tr.text, int(pos), layer, q, top=NB_TOP)
    st.caption(f"The {len(nb.items)} corpus tokens (of {nb.searched:,}) whose {q} in layer {nb.layer} is nearest "
               f"by cosine similarity to its value after “{corpus_index.label(nb.token)}” (token {nb.position}) "
               f"in your text; the search took {1000 * nb.seconds:.0f} ms. Explore opens each from the start of "
               "its paragraph (or a little before it), so the state there is read afresh from that point.")
    for k, it in enumerate(nb.items):
        left, right = list(it.left)[-NB_SHOWN:], list(it.right)[:NB_SHOWN]
        c1, c2 = st.columns([9, 1], vertical_alignment="center")
        c1.html(corpus_figures.CHIP_CSS + corpus_figures.context_html(
            left + [it.token] + right, [0.0] * (len(left) + 1 + len(right)), len(left),
            meta=f"#{k + 1} {it.file} · token {it.position} · cosine {it.similarity:.3f}"))
        if c2.button("Explore", key=f"corpus_nb_go_{k}", icon=":material/visibility:",
                     help="Open this passage in Explore with this token selected."):
            corpus_index.open_in_explore(*corpus_index.passage(ctx.model, it))


def trajectory_section(ctx, layer, idx, cut: list):
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
    texts = [_clip(t, name, cut) for t, name in ((ta, "First text"), (tb, "Second text")) if t.strip()]
    if not texts:
        st.info("Type a text to draw its path.", icon=":material/edit:")
        return
    if idx is None:
        st.info("The paths are drawn over the corpus as soon as its index is built (its progress is above).",
                icon=":material/hourglass_top:")
        return
    proj = corpus_index.projection(ctx, idx, layer, "h")
    corpus_index.trajectory_chart(ctx, proj, texts, key="traj_fig")


#: What the address bar keeps on this page (session.url_state): the layer, the text and its selection, the
#: match settings, the token whose nearest states are listed, and the two trajectory texts.
URL_KEYS = ("layer:layer", "text=corpus_text", "sel=corpus_sel:ints", "thr=corpus_thr:float:0:0.95", "q=corpus_q",
            "quiet=corpus_quiet:bool", "drop=corpus_drop:int", "nb=corpus_nb_pos:int", "traj_a", "traj_b")


def page():
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links); before the layer picker
    st.markdown("#### Corpus: select a range, find where its units are on")
    # the index may still be building (in the background, once per server): its progress shows here,
    # and the parts of the page that need no index are drawn below it meanwhile
    ctx, layer, idx = corpus_index.sidebar_and_index(wait=False)
    st.caption("After LSTMVis (Strobelt et al. 2018): the units above the threshold at every token of your "
               "selection are a hypothesis; the corpus is searched for every run of tokens where all of them "
               "are on. " + (corpus_index.index_caption(idx) if idx is not None else ""))
    note = st.empty()
    cut: list = []            # the texts cut to MAX_CHARS: one message for all of them, above
    tr = None
    with widgets.guard("select and match"):
        tr = match_section(ctx, layer, idx, cut)
    if tr is not None:
        with widgets.guard("the nearest states"):
            neighbours_section(ctx, layer, idx, tr)
    with widgets.guard("the trajectories"):
        trajectory_section(ctx, layer, idx, cut)
    if cut:
        note.warning(" ".join(f"{name} is {n:,} characters long; the page reads its first {m:,} characters."
                              for name, n, m in cut)
                     + f" The limit is {settings.MAX_CHARS:,} characters (RNN_EXPLORER_MAX_CHARS).",
                     icon=":material/content_cut:")


page()
