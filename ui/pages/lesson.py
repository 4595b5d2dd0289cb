"""Lesson: a guided walk through the beginner's guide, every idea a live widget on the real model.

Steps: reading word by word · order matters · prediction needs memory · the unrolled network · the
five input/output shapes. The step, its sentence(s), the shape and a position live in the URL's query
string (?step=bartender&text=...), so a lecturer can bookmark a demo; explorer.present.lesson parses and
writes it. Text is short and plain; charts are big (explorer.present.lesson.projector).
"""
from __future__ import annotations

import dataclasses
import html
from pathlib import Path

import streamlit as st

import explorer as E
from explorer.errors import InputError
from explorer.analysis import attribution, char_cells
from explorer.present import analysis_figures, cells, figures, lesson, views
from explorer.present.demos import DEMOS
from ui import cached, cached_analysis, clicker, lecture, session, sidebar, widgets

BIG = 18          # chart font size for a projector


def _say(text: str, testid: str | None = None, size: int = 20):
    """A short paragraph in large type (user text is escaped)."""
    tid = f' data-testid="{testid}"' if testid else ""
    if lecture.presenting():           # the presenter view: larger still, for the back of the room
        size = round(size * 1.3)
    st.html(f'<div{tid} style="font-size:{size}px;line-height:1.45;padding:4px 0 8px 0">{text}</div>')


def _e(s) -> str:
    return html.escape(str(s))


def _h(px: int) -> int:
    """A chart's height: lower in the presenter view, so that a step's strip, readout and main chart fit
    on one 1024 x 768 screen below its anchor (lecture.anchor; issue 22)."""
    return round(px * 0.75) if lecture.presenting() else px


# -------------------------------------------------------------------------------- the URL state
def _load_query():
    """Once per browser session: the URL's query string sets the step, its text(s), shape and position."""
    ss = st.session_state
    if ss.get("_lesson_loaded"):
        return
    ss["_lesson_loaded"] = True
    q = session.cold_query()                       # long texts come back from their short ids here
    state = lesson.lesson_from_query(q)
    for name in ("text", "text_b"):                # ... whole: lesson_from_query cuts a text at MAX_QUERY_TEXT
        full = q.get(name)
        if isinstance(full, str) and len(full) > lesson.MAX_QUERY_TEXT and full.strip():
            state = dataclasses.replace(state, **{name: full[:session.STORE_TEXT_MAX]})
    ss["lesson_step"] = state.step
    ss[f"lesson_text_{state.step}"] = state.text
    if lesson.LESSON_TEXTS[state.step][1]:
        ss[f"lesson_textb_{state.step}"] = state.text_b
    ss["lesson_shape"] = state.shape
    if state.pos is not None:
        ss["_lesson_pos_request"] = state.pos


def _state_now(step: str) -> lesson.LessonState:
    """The step's state as the session holds it when the run starts (the widgets' new values are already
    there), before the step computes anything."""
    ss = st.session_state
    a0, b0 = lesson.LESSON_TEXTS[step]
    pos = None
    if step in ("reading", "unrolled"):
        pos = ss.get("_lesson_pos_request", ss.get("lesson_pos" if step == "reading" else "lesson_start"))
    return lesson.LessonState(step=step, text=ss.get(f"lesson_text_{step}") or a0,
                          text_b=(ss.get(f"lesson_textb_{step}") or b0) if b0 else b0,
                          shape=ss.get("lesson_shape", "one-to-one"), pos=pos)


#: The session keys the address keeps besides the lesson state (session.url_state): the bartender step's
#: attribution method and the one-to-many example's seed (a bookmark samples the same words).
URL_KEYS = ("method=lesson_method", "seed=lesson_seed:int")


def _save_query(state: lesson.LessonState):
    # model and presenter view kept too; a long text goes in as a short id (session.url_set)
    session.url_write(*URL_KEYS, extra=lesson.lesson_to_query(state))


def _texts(step: str, two: bool, height: int = 68, label: str = "Sentence") -> tuple[str, str]:
    ss = st.session_state
    a0, b0 = lesson.LESSON_TEXTS[step]
    ss.setdefault(f"lesson_text_{step}", a0)
    if not two:
        return st.text_area(label, key=f"lesson_text_{step}", height=height, persist_state="session"), ""
    ss.setdefault(f"lesson_textb_{step}", b0)
    ca, cb = st.columns(2)
    a = ca.text_area("Sentence A", key=f"lesson_text_{step}", height=height, persist_state="session")
    b = cb.text_area("Sentence B", key=f"lesson_textb_{step}", height=height, persist_state="session")
    return a, b


def _pos(key: str, n: int, default: int) -> None:
    """Initialise a position widget's state: a position from the URL first, else `default` when the text changed."""
    ss = st.session_state
    req = ss.pop("_lesson_pos_request", None)
    if req is not None:
        ss[key] = min(max(int(req), 0), n - 1)
    elif ss.get(key) is None or ss[key] >= n:
        ss[key] = default


# -------------------------------------------------------------------------------------- steps
def _move(key: str, delta: int, n: int):
    ss = st.session_state
    ss[key] = min(max(int(ss.get(key, 0)) + delta, 0), n - 1)


def step_reading(ctx) -> tuple[str, str, int | None]:
    _say("A recurrent network reads <b>one word at a time</b>. After each word it updates its memory "
         "(the <i>state</i>, a list of numbers) and guesses the next word. Step through the sentence.")
    text, _ = _texts("reading", False)
    tr = cached.get_trace(ctx, text) if text.strip() else None
    if tr is None or len(tr) <= 1:
        st.info("Type a sentence.", icon=":material/edit:")
        return text, "", None
    n = len(tr)
    ss = st.session_state
    sig = (ctx.path, tr.text)
    if ss.get("_lesson_read_sig") != sig:
        ss["_lesson_read_sig"] = sig
        if "_lesson_pos_request" not in ss:
            ss["lesson_pos"] = 1
    _pos("lesson_pos", n, 1)
    labels = views.token_labels(tr)
    bar = st.container(horizontal=True, vertical_alignment="bottom")
    bar.button("Back", key="lesson_back", icon=":material/chevron_left:", on_click=_move, args=("lesson_pos", -1, n))
    bar.button("Next word", key="lesson_next", icon=":material/chevron_right:", type="primary",
               on_click=_move, args=("lesson_pos", 1, n))
    pos = st.select_slider("Word", list(range(n)), key="lesson_pos", format_func=lambda i: f"{i} · {labels[i]}",
                           label_visibility="collapsed", persist_state="session")      # kept across pages
    _nav("lesson_pos", list(range(n)))
    win = views.window(n, pos, views.CHART_WINDOW)        # a long text: the stretch around the word
    lecture.anchor()                                      # the presenter view scrolls here on a clicker key
    st.html(figures.token_strip_html(tr, pos, legend=False, window=win))
    ch = lesson.step_change(tr, -1, pos)
    w, p = tr.top_words(pos, 1)[0]
    moved = (f"Reading “{_e(labels[pos])}” changed the memory of the top layer ({ch['units']} numbers): the change "
             f"has length ‖Δh‖ = <b>{ch['dh']:.2f}</b>" + (f" (cell state: ‖Δc‖ = {ch['dc']:.2f})" if "dc" in ch else "")
             + ". "
             f"Best guess for the next word: <b>“{_e(w)}”</b> ({p:.0%}).")
    _say(moved, "reading-readout")
    top = len(tr.layers)                                  # the top layer (layers are numbered from 1)
    a, b = st.columns([1, 1.2])
    with a:
        widgets.chart(lesson.projector(figures.topk_figure(tr, pos, k=8), BIG, height=_h(430)), "lesson_fig_topk")
    with b:
        widgets.chart(lesson.projector(figures.step_figure(tr, top, pos), BIG, height=_h(430)), "lesson_fig_step")
    fig = figures.heatmap_figure(tr, top, "h", selected=pos, ranges=ctx.ranges, window=win,
                           title=f"The memory h after every word (top layer, {ch['units']} numbers per column; "
                                 "red +, blue −)")
    widgets.chart(lesson.projector(fig, BIG - 2, height=440), "lesson_fig_heat")
    return text, "", pos


def step_order(ctx) -> tuple[str, str, None]:
    _say("<b>Order matters.</b> These two sentences use exactly the same words. A model that only counts words "
         "cannot tell them apart. The recurrent network reads them in order, so its memory ends up different.")
    a, b = _texts("order", True)
    if not a.strip() or not b.strip():
        st.info("Type two sentences.", icon=":material/edit:")
        return a, b, None
    c = cached_analysis.contrast(ctx, a, b)
    bow = cached_analysis.bow_distance(ctx.path, ctx.stamp, c.a.text, c.b.text, "start")
    bag = lambda cnt: " ".join(f"{w}×{k}" if k > 1 else w for w, k in sorted(cnt.items()))  # noqa: E731
    _say(f"Bag of words A: <code>{_e(bag(c.bag_a))}</code> &nbsp; B: <code>{_e(bag(c.bag_b))}</code> — "
         + ("<b>identical</b>." if c.same_bag else "<b>different</b>."), size=18)
    lecture.anchor()                   # (the readout below says the bag is the same)
    m1, m2, m3 = st.columns(3)
    m1.metric("Order-blind model: distance between the two inputs", f"{bow:.3g}",
              help="‖sum of word embeddings of A − sum for B‖: what a bag-of-embeddings model sees.")
    m2.metric(f"{c.a.cell.upper()}: cosine distance of the final states",
              f"{c.final_cosine.get('state', float('nan')):.3f}",
              help="The whole final state (h and c of every layer).")
    m3.metric("… of the top layer's h alone", f"{c.final_cosine.get('h_top', float('nan')):.3f}")
    _say(_e(lesson.bag_sentence(c, bow)), "order-readout", size=18)
    try:
        df = cached_analysis.next_words(ctx, a, b, "start", lesson.compare_step(c, "last"), ("he", "she"), k=6)
    except InputError as e:
        st.warning(widgets.friendly(e), icon=":material/warning:")
        return a, b, None
    _say(_e(lesson.compare_sentence(df, "A", "B")), "order-next", size=18)
    left, right = st.columns(2)
    with left:
        fig = analysis_figures.next_word_bars(df, top=8)
        fig.update_layout(title="What each sentence makes the model expect next",
                          legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"))
        widgets.chart(lesson.projector(fig, BIG, height=_h(430)), "lesson_fig_order_next")
    with right:
        last = lesson.compare_step(c, "last")
        win = views.window(c.n, last, views.CHART_WINDOW)
        fig = analysis_figures.delta_norm_lines(c, window=win)
        fig.update_layout(title="How far apart the two memories are<br>after each word",   # one line was cut
                          legend=dict(orientation="h", yref="container", y=0, x=0, yanchor="bottom"),
                          margin=dict(t=90, b=90))
        fig.update_xaxes(title=None)            # the title says it; the axis title overlapped the legend
        fig.update_yaxes(title="‖A − B‖")
        widgets.chart(lesson.projector(fig, BIG, height=_h(430)), "lesson_fig_order_lines")
    return a, b, None


def step_bartender(ctx) -> tuple[str, str, None]:
    _say("<b>Predicting the next word needs memory.</b> “A girl walked into a bar, and she said … The bartender "
         "said “Certainly, …” — miss or sir? The clue came many words earlier. Does the network still have it?")
    a, b = _texts("bartender", True, height=90)
    if not a.strip() or not b.strip():
        st.info("Type two sentences.", icon=":material/edit:")
        return a, b, None
    if isinstance(ctx.model.tokenizer, E.CharTokenizer):
        st.info(f"{ctx.name} reads characters, not words, so it has no single probability for “miss” or “sir”. "
                "Choose a word-level model (fiction-lstm) in the sidebar for this step.", icon=":material/info:")
        return a, b, None
    c = cached_analysis.contrast(ctx, a, b)
    step = lesson.compare_step(c, "last")
    try:
        df = cached_analysis.next_words(ctx, a, b, "start", step, lesson.ADDRESS_WORDS, k=6)
    except InputError as e:
        st.warning(widgets.friendly(e), icon=":material/warning:")
        return a, b, None
    chosen = df[df["kind"] == "chosen"]
    lecture.anchor()
    left, right = st.columns([1, 1.1])
    with left:
        if chosen["in_vocab"].any():
            fig = analysis_figures.next_word_bars(chosen, top=len(chosen))
            fig.data[0].name, fig.data[1].name = "girl / she (A)", "boy / he (B)"
            fig.update_layout(title=f"P(next word) after “{c.tokens_a[step]}”",
                              legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"))
            widgets.chart(lesson.projector(fig, BIG, height=_h(440)), "lesson_fig_address")
    with right:
        _say(_e(lesson.address_sentence(df, "girl / she", "boy / he")), "bartender-readout", size=19)
        if not chosen["in_vocab"].all():
            st.caption("Not in this model's vocabulary: " + ", ".join(chosen[~chosen["in_vocab"]]["word"]))
    unknown = views.unknown_words(c.a)
    if unknown:
        st.caption("Unknown to the model (read as <unk>): " + ", ".join(unknown))

    st.markdown("##### Which words pushed the model towards “miss” rather than “sir”?")
    ss = st.session_state
    ss.setdefault("lesson_method", "occlusion")
    method = st.radio("Method", list(attribution.METHODS), key="lesson_method", horizontal=True,
                      persist_state="session",
                      format_func=lambda m: attribution.LABELS[m],
                      help="Occlusion: replace one word by <unk> and see how much log P(miss)/P(sir) drops. "
                           "The gradient methods estimate the same from derivatives.")
    try:
        at_a = cached_analysis.attribution(ctx, c.a.text, int(c.rows_a[step]), "miss", "sir", (method,))
        at_b = cached_analysis.attribution(ctx, c.b.text, int(c.rows_b[step]), "miss", "sir", (method,))
    except InputError as e:
        st.warning(widgets.friendly(e), icon=":material/warning:")
        return a, b, None
    st.markdown("**girl / she**")
    st.html(lesson.attribution_chips_html(at_a, method, lesson.LESSON_ATTR_VMAX, font_px=20))
    st.markdown("**boy / he**")
    st.html(lesson.attribution_chips_html(at_b, method, lesson.LESSON_ATTR_VMAX, font_px=20))
    _say(_e(lesson.attribution_sentence(at_a, at_b, method)), "attribution-readout", size=18)
    _books_vs_sentence(ctx)
    return a, b, None


#: The faithful model of the books, the model trained to listen to the sentence, and the n-gram
#: baseline stored beside the faithful model (python -m explorer ngram ... --save).
FAITHFUL, BALANCED = "fiction-lstm", "fiction-lstm-balanced"


def _books_vs_sentence(ctx):
    """Lesson step 3, second half: the faithful model's prior against the balanced model's recall,
    with the n-gram beside them, on the bartender pair and on the reply alone."""
    root = sidebar.models_root()
    names = [n for n in (FAITHFUL, BALANCED) if (root / n / "weights.safetensors").is_file()]
    if not names:
        return
    st.markdown("##### What the books say, and what the sentence says")
    paths = tuple(str(root / n) for n in names)
    ng = cached.ngram_file(root / FAITHFUL)
    ng_path = str(ng) if ng is not None else None
    df = cached_analysis.books_vs_sentence(paths, tuple(cached.stamp(p) for p in paths), ng_path,
                                           ng.stat().st_mtime if ng else 0.0)
    left, right = st.columns([1.2, 1])
    with left:
        widgets.chart(lesson.projector(lesson.books_vs_sentence_figure(df), BIG, height=440), "lesson_fig_books")
    with right:
        # every claim here is read off the numbers in the bars and the table (issue 22: a prior called
        # "even" beside P(sir) 0.5% against 1.2% for the female forms)
        intro, rest = lesson.books_vs_sentence_story(df, FAITHFUL, BALANCED, lesson.NGRAM_NAME if ng else None)
        if intro:
            _say(_e(intro), "books-story", size=17)
        for line in lesson.books_vs_sentence_summary(df):
            _say(_e(line), "books-readout", size=16)
        _say(_e(" ".join(rest)), "books-story-end", size=16)
    show = df[["model", "reading", "P(miss)", "P(ma'am)", "P(madam)", "P(sir)", "says"]].copy()
    for col in ("P(miss)", "P(ma'am)", "P(madam)", "P(sir)"):
        show[col] = show[col].map(lambda v: f"{v:.2%}")
    st.dataframe(show, hide_index=True, width="stretch", key="lesson_books_table")


def step_unrolled(ctx) -> tuple[str, str, int | None]:
    _say("<b>The unrolled network.</b> It is one network used again at every word: the same weights, drawn once "
         "per step. Each box gets a word x<sub>t</sub> from below and the memory h<sub>t−1</sub> from the left; it "
         "passes h<sub>t</sub> to the right and a guess for the next word upwards. The line in each box is the "
         "real h<sub>t</sub> (its first 24 numbers).")
    text, _ = _texts("unrolled", False)
    tr = cached.get_trace(ctx, text) if text.strip() else None
    if tr is None or len(tr) == 0:
        st.info("Type a sentence.", icon=":material/edit:")
        return text, "", None
    n = len(tr)
    start = 0
    if n > 8:
        _pos("lesson_start", n - 7, 0)
        start = st.slider("First step drawn", 0, n - 8, key="lesson_start", persist_state="session")
        _nav("lesson_start", list(range(n - 7)))
    else:
        st.session_state.pop("_lesson_pos_request", None)
    fig = analysis_figures.unrolled_figure(tr, layer=-1, start=start, max_steps=8)
    fig.update_layout(title="The network unrolled: one box per word, the memory h<sub>t</sub> (top layer) inside, "
                            "the next-word guess above")
    lecture.anchor()
    widgets.chart(lesson.projector(fig, BIG, height=_h(460)), "lesson_fig_unrolled")
    _say("Above each box: the model's most likely next word and its probability. The blue arrows carry the "
         "memory; that is the only way anything read earlier can affect a later guess.", size=18)
    return text, "", (start if n > 8 else None)


def step_shapes(ctx) -> tuple[str, str, None]:
    _say("<b>Five shapes.</b> The same recurrent cell can map one or many inputs to one or many outputs. "
         "Each example below really runs on the model.")
    text, _ = _texts("shapes", False)
    ss = st.session_state
    ss.setdefault("lesson_shape", "one-to-one")
    shape = st.segmented_control("Shape", list(lesson.SHAPES), key="lesson_shape", format_func=lesson.SHAPES.get,
                                 required=True)
    _nav("lesson_shape", list(lesson.SHAPES))
    lecture.anchor()                            # (each shape's readout names the shape)
    if not text.strip():
        st.info("Type a sentence.", icon=":material/edit:")
        return text, "", None
    {"one-to-one": _one_to_one, "one-to-many": _one_to_many, "many-to-one": _many_to_one,
     "many-to-many": _many_to_many, "encoder-decoder": _encoder_decoder}[shape](ctx, text)
    return text, "", None


def _one_to_one(ctx, text):
    w = lesson.first_word(ctx.model, text)
    if w is None:
        st.info("Type a word.", icon=":material/edit:")
        return
    _say(f"<b>One in, one out:</b> the network reads a single word, “{_e(w)}” (the first of your sentence), "
         "and outputs one thing: a probability for every possible next word. There is nothing earlier to remember "
         "(only the paragraph-start token &lt;eos&gt; came before).", "shape-readout")
    tr = cached.get_trace(ctx, w)
    if tr is not None:
        widgets.chart(lesson.projector(figures.topk_figure(tr, len(tr) - 1, k=10), BIG, height=_h(460)), "lesson_fig_shape")


def _one_to_many(ctx, text):
    w = lesson.first_word(ctx.model, text)
    if w is None:
        st.info("Type a word.", icon=":material/edit:")
        return
    ss = st.session_state
    ss.setdefault("lesson_seed", 0)
    c1, _ = st.columns([1, 4])
    seed = c1.number_input("Seed", 0, 2**31 - 1, key="lesson_seed", persist_state="session")
    gen = cached_analysis.generation(ctx, w, 20, 0.8, 40, seed)
    words = " ".join("¶" if x == "<eos>" else x for x in gen.words)
    _say(f"<b>One in, many out:</b> from the single word “{_e(w)}” the network writes a sequence, feeding each "
         f"sampled word back in as its next input:<br><span style='color:#2166ac'>{_e(w)}</span> "
         f"<b style='color:#b2182b'>{_e(words)}</b>", "shape-readout")
    fig = analysis_figures.generation_bars(gen)
    fig.update_xaxes(tickangle=-45)
    widgets.chart(lesson.projector(fig, BIG - 2, height=_h(420)), "lesson_fig_shape")
    st.caption("Sampled with temperature 0.8 among the 40 most probable words; change the seed for another draw. "
               "The Generate page has every setting.")


def _many_to_one(ctx, text):
    _say("<b>Many in, one out:</b> the network reads the whole passage; only its final state is kept and fed to a "
         "small classifier: who wrote it, Austen or Doyle?", "shape-readout")
    clf, why = cached_analysis.author_classifier(ctx)
    if clf is None:
        st.info(why, icon=":material/info:")
        return
    bar = st.container(horizontal=True)
    for i, (label, passage) in enumerate(lesson.AUTHOR_EXAMPLES.items()):
        bar.button(label, key=f"lesson_author_{i}", on_click=_set_text, args=("lesson_text_shapes", passage))
    probs = cached_analysis.predict_author(ctx, text)
    fig = analysis_figures.author_bars(probs)
    widgets.chart(lesson.projector(fig, BIG + 2, height=300), "lesson_fig_shape")
    st.caption(lesson.classifier_summary(clf) + " The example buttons hold passages from those two held-out books; "
               "the third is one the classifier gets wrong.")


def _set_text(key: str, text: str):
    st.session_state[key] = text


def _traced(ctx, text, readout: str):
    """The trace of the shape's text with the shape's readout said above it, or None (get_trace said why)."""
    tr = cached.get_trace(ctx, text)
    if tr is not None:
        _say(readout, "shape-readout")
    return tr


MANY_TO_MANY = ("<b>Many in, many out, in step:</b> after every word the network outputs a guess for the next one. "
                "This is how a language model is trained: every guess is compared with the word that really follows.")
ENCODER_DECODER = ("<b>Many in, then many out (encoder → decoder).</b> An <i>encoder</i> reads the whole input; its "
                   "final state is handed to a <i>decoder</i>, which writes the output word by word — as in "
                   "translation.")


def _many_to_many(ctx, text):
    tr = _traced(ctx, text, MANY_TO_MANY)
    if tr is not None:
        st.html(lesson.synced_html(tr, font_px=19))


def _encoder_decoder(ctx, text):
    tr = _traced(ctx, text, ENCODER_DECODER)
    if tr is None:
        return
    st.warning("Illustration only: this model was not trained to translate, and there is no separate decoder. "
               "Below is the real encoder side (the state after reading your sentence). As a stand-in for a "
               "decoder, the same language model continues from that state.", icon=":material/school:")
    widgets.chart(lesson.projector(lesson.final_state_figure(tr), BIG - 2, height=_h(360)), "lesson_fig_shape")
    gen = cached_analysis.generation(ctx, text, 12, 0.0, 0, 0)
    words = " ".join("¶" if x == "<eos>" else x for x in gen.words)
    _say(f"Continuing from that state (most probable word each time): <b style='color:#b2182b'>{_e(words)}</b>. "
         "Everything the continuation knows about your sentence passed through the numbers above.",
         "decoder-readout", size=18)


#: The character model of the cells step (the sidebar's model when it reads characters and this is absent).
CHAR_MODEL = "shakespeare-char"


def step_cells(ctx) -> tuple[str, str, None]:
    _say("<b>A cell that counts.</b> A network that reads <i>characters</i> must know when a line is about to "
         "end. Karpathy, Johnson and Fei-Fei (2015) found single cells that count along the line. Is there one in "
         "this character model? Every unit is measured against the position in the line; the best one colours "
         "the text below: <span style='background:#b2182b;color:#fff'>&nbsp;red&nbsp;</span> high, "
         "<span style='background:#2166ac;color:#fff'>&nbsp;blue&nbsp;</span> low.")
    root = sidebar.models_root()
    path = root / CHAR_MODEL
    if (path / "weights.safetensors").is_file():
        path = str(path)
    elif isinstance(ctx.model.tokenizer, E.CharTokenizer):
        path = ctx.path
    else:
        st.info(f"This step needs a character model ({CHAR_MODEL}); none is in {root}. Choose or upload one "
                "in the sidebar.", icon=":material/info:")
        return lesson.LESSON_TEXTS["cells"][0], "", None
    text, _ = _texts("cells", False, height=120, label="Passage (every line break counts)")
    if text.count("\n") < 2:
        st.info("Give the passage several lines: the cell is measured against the position in the line.",
                icon=":material/edit:")
        return text, "", None
    clipped, _cut = E.clip_text(text, 8000)
    s = cached_analysis.line_cells(path, cached.stamp(path), clipped)
    best = s.best
    layer, q, unit = int(best["layer"]), str(best["quantity"]), int(best["unit"])
    verdict = char_cells.verdict(float(best["r_position"]), float(best["auc_late"]))
    values = s.unit(layer, q, unit)
    lecture.anchor()
    _say(_e(cells.cell_sentence(best, len(s.chars), s.n_quoted, verdict, Path(path).name)), "cells-readout", size=18)
    vmax = cells.colour_limit(values)
    st.html(cells.cell_text_html(s.chars, values, vmax, font_px=20))
    st.html(cells.scale_legend_html(vmax))
    left, right = st.columns([1.3, 1])
    with left:
        fig = cells.cell_scatter(s.column, values, f"Unit {unit} of layer {layer} ({q}) against the position "
                                                f"in the line: r = {float(best['r_position']):+.2f}")
        widgets.chart(lesson.projector(fig, BIG - 2, height=400), "lesson_fig_cell")
    with right:
        top = s.table.head(6)[["layer", "quantity", "unit", "r_position", "auc_late"]].copy()
        top.columns = ["layer", "quantity", "unit", "r (position)", "AUC (40th char. on)"]
        st.markdown("**The six units closest to the position in the line**")
        st.dataframe(top.round(3), hide_index=True, width="stretch", key="lesson_cells_table")
        st.caption(f"{Path(path).name}: {len(s.table):,} units × quantities measured. Most units do not "
                   f"count: the median |r| is {s.table['abs_r'].median():.2f}.")
    return text, "", None


STEPS = {"reading": step_reading, "order": step_order, "bartender": step_bartender,
         "unrolled": step_unrolled, "shapes": step_shapes, "cells": step_cells}


# ------------------------------------------------------------------------- clicker and demo links
def _nav(key: str, values: list):
    """The step's own positions (a word, the first box drawn, a shape), for the clicker."""
    st.session_state["_lesson_nav"] = (key, list(values))


def _clicked():
    """PageDown / '.' : the next position of this step, after its last one the next step (at its first
    position); PageUp / 'b' back the same way (into the previous step at its last position)."""
    d = clicker.direction("lesson_clicker")
    if d is None:
        return
    ss = st.session_state
    ss["_lesson_scroll_bump"] = True                # the presenter view: the step's content to the top
    nav = ss.get("_lesson_nav")
    if nav:
        key, values = nav
        cur = ss.get(key)
        i = values.index(cur) if cur in values else 0
        j = i + (1 if d == "next" else -1)
        if 0 <= j < len(values):
            ss[key] = values[j]
            return
    steps = list(lesson.STEPS)
    cur = ss.get("lesson_step")
    k = steps.index(cur) if cur in steps else 0
    k2 = min(max(k + (1 if d == "next" else -1), 0), len(steps) - 1)
    if k2 != k:
        ss["lesson_step"] = steps[k2]
        ss["_lesson_nav"] = None
        if d == "prev":                         # back into a step: at its last position
            if steps[k2] in ("reading", "unrolled"):
                ss["_lesson_pos_request"] = 10**6       # clamped to the last word / the last box
            elif steps[k2] == "shapes":
                ss["lesson_shape"] = list(lesson.SHAPES)[-1]


def _demo_list():
    with st.expander("Demo links for a lecture", icon=":material/link:"):
        st.caption("Each link opens the app in the state described (copy it into your slides; add present=1 "
                   "for the presenter view). Every page keeps its state in the address bar the same way.")
        lines = [f"- [{_e(d.title)}]({d.url()}) — {_e(d.shows)}" for d in DEMOS]
        st.markdown("\n".join(lines))


def page():
    ctx = session.require_model()
    _load_query()
    session.url_state(*URL_KEYS)
    ss = st.session_state
    ss.setdefault("lesson_step", "reading")
    st.markdown("## How a recurrent network reads")
    step = st.segmented_control("Lesson step", list(lesson.STEPS), key="lesson_step", format_func=lesson.STEPS.get,
                                persist_state="session",                               # kept across pages
                                required=True, label_visibility="collapsed")
    step = step if step in lesson.STEPS else "reading"
    st.caption(f"Live on {ctx.name} ({sidebar.card_summary(ctx.model)}). The address bar keeps the step and the "
               "sentence: bookmark it to come back to this demo. A presentation remote (PageDown / PageUp) steps "
               "through the words and the steps.")
    # The address first (issue 14): a step's charts and attributions take seconds, and an address written
    # only after them lagged one action behind the page (or never came, when a newer action cut the run).
    _save_query(_state_now(step))
    bump = ss.pop("_lesson_scroll_bump", False) or ss.get("_lesson_scroll_step") != step
    ss["_lesson_scroll_step"] = step                # a new step (a link opened) scrolls too
    clicker.mount("lesson_clicker", keys=True, on_key=_clicked, scroll=lecture.scroll_token("_lesson_scroll", bump))
    ss["_lesson_nav"] = None
    text, text_b, pos = STEPS[step](ctx)
    if not lecture.presenting():
        _demo_list()
    _save_query(lesson.LessonState(step=step, text=text, text_b=text_b or lesson.LESSON_TEXTS[step][1],
                               shape=ss.get("lesson_shape", "one-to-one"), pos=pos))


with widgets.guard("the Lesson page"):
    page()
