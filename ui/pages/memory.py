"""Memory: which earlier words a prediction depends on, where the LSTM's cell state came from, how
long each unit remembers, and how fast the first word fades in an LSTM and in a vanilla RNN.

Layout: text box and the selected step -> attribution strip -> exact cell-state provenance of one
unit (with the sum check) -> memory matrix -> half-lives -> LSTM | RNN fading, side by side.
"""
from __future__ import annotations

import html

import streamlit as st

from explorer.errors import InputError
from explorer.analysis import attribution, cell_provenance, half_lives, memory_matrix
from explorer.analysis.memory import MATRIX_WINDOW
from explorer.present import analysis_figures, lesson, views
from ui import cached, cached_analysis, session, sidebar, widgets

DEFAULT_TEXT = lesson.reply_prompt(lesson.PAIRS["bartender"].a)
FADE_TEXT = "Mary walked into the room , and after a long silence the old man looked up at the window ."
FADE_REPLACEMENTS = ["<unk>", "john", "she", "the"]
METHOD_HELP = ("Gradient × input: a first-order estimate from one gradient. Integrated gradients: gradients "
               "averaged along a path from the <unk> embeddings to the real ones; the scores add up to the total "
               "change. Occlusion: replace one word by <unk> and measure how much the quantity drops.")


def _example(word: str, versus: str):
    st.session_state["mem_word"], st.session_state["mem_versus"] = word, versus


def _section(title: str, caption: str | None = None):
    st.markdown(f"##### {title}")
    if caption:
        st.caption(caption)


#: What the address bar keeps on this page (session.url_state): the text, layer and step; the attribution's
#: method, word and versus; the unit and views of the cell state; the fading comparison's settings.
URL_KEYS = ("text=mem_text", "layer:layer", "step=mem_step:int", "method=mem_method", "word=mem_word",
            "versus=mem_versus", "all=mem_all:bool", "unit=mem_unit:int", "mm=mem_mm", "hl=mem_hl",
            "lstm=mem_fade_lstm:name", "rnn=mem_fade_rnn:name", "reps=mem_fade_reps:list",
            "fade_text=mem_fade_text", "measure=mem_fade_metric")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    layer = widgets.layer_picker(ctx)
    ss = st.session_state
    ss.setdefault("mem_text", DEFAULT_TEXT)
    st.markdown("#### Memory: what the network kept, and from where")
    text = st.text_area("Text", key="mem_text", height=80, persist_state="session", label_visibility="collapsed")
    tr = cached.trace_or_prompt(ctx, text, empty="Type a text to see what the network remembers of it.",
                                no_words="The text holds no words the tokenizer can read.")
    if tr is None:
        return
    labels = views.token_labels(tr)
    sig = (ctx.path, tr.text)
    if ss.get("_mem_sig") != sig or ss.get("mem_step", len(tr)) >= len(tr):
        ss["_mem_sig"] = sig
        if not (session.linked("mem_step") and ss.get("mem_step") in range(len(tr))):   # a link's step, kept once
            ss["mem_step"] = len(tr) - 1
    widgets.keep("mem_step", len(tr) - 1)      # kept across pages, and shown as kept (issue 14)
    step = st.select_slider("Step", list(range(len(tr))), key="mem_step", persist_state="session",
                            format_func=lambda i: f"{i} · {labels[i]}",
                            help="The state after this token: the prediction explained and the cell state decomposed.")
    with widgets.guard("the attribution"):
        _attribution(ctx, tr, step)
    if tr.cell == "lstm":
        with widgets.guard("the cell-state provenance"):
            _provenance(ctx, tr, layer, step)
    else:
        st.info(f"{ctx.name} is a {tr.cell.upper()}: it has no cell state, so the provenance, memory matrix and "
                "half-lives (which unroll c_t = f_t ⊙ c_t−1 + i_t ⊙ g_t) need an LSTM. Attribution above and the "
                "fading comparison below work for it.", icon=":material/info:")
    with widgets.guard("the fading comparison"):
        _fading(ctx)


# ---------------------------------------------------------------------------------- attribution
def _attribution(ctx, tr, step):
    ss = st.session_state
    _section("Which earlier words made the model expect the next one?",
             "Each word's share of log P(next word) after the selected step. " + METHOD_HELP +
             f" Scored: the last {cached_analysis.ATTRIBUTION_WINDOW} tokens up to the step; words before them are "
             "read as their context and get no score.")
    c1, c2, c3, c4 = st.columns([3.2, 1.2, 1.2, 1.5], vertical_alignment="bottom")
    widgets.keep("mem_method", "occlusion")
    method = c1.radio("Method", list(attribution.METHODS), key="mem_method", horizontal=True, persist_state="session",
                      format_func=lambda m: attribution.LABELS[m])
    word = c2.text_input("Next word", key="mem_word", placeholder="the top word", persist_state="session",
                         help="Leave empty for the model's most probable word.")
    versus = c3.text_input("versus (optional)", key="mem_versus", placeholder="e.g. sir", persist_state="session",
                           help="Explain log P(word) − log P(versus): what tells the two words apart.")
    c4.button("Example: miss versus sir", key="mem_example", on_click=_example, args=("miss", "sir"))
    compare = st.toggle("Compare all three methods", key="mem_all", persist_state="session")
    methods = attribution.METHODS if compare else (method,)
    try:
        attr = cached_analysis.attribution(ctx, tr.text, step, widgets.word_or_none(word),
                                           widgets.word_or_none(versus), methods)
    except InputError as e:
        st.warning(widgets.friendly(e) + ". Try another word.", icon=":material/warning:")
        return
    what = (f"P(“{views.visible(attr.target)}”) / P(“{views.visible(attr.versus)}”) = {attr.prob:.3g}" if attr.versus
            else f"P(“{views.visible(attr.target)}”) = {attr.prob:.2%}")
    after = html.escape(views.visible(attr.tokens[-1]))
    st.html(f'<div data-testid="attr-readout" style="font-size:16px">After “{after}” '
            f"(step {attr.step}): {html.escape(what)}. Explained: {html.escape(views.explained(attr))} = "
            f"{attr.logprob:.3f}.</div>")
    if attr.window_start:                 # a long text: the scored window, after its unscored context
        st.caption(f"The first {attr.window_start:,} tokens are read as context and not scored; the last "
                   f"{len(attr.tokens) - attr.window_start} up to the step are.")
        attr = attr.window()
    st.html(lesson.attribution_chips_html(attr, method))
    if "integrated_gradients" in attr.scores:
        st.caption(f"Integrated gradients: {attr.ig_steps} quadrature nodes; the scores add up to the total change "
                   f"within {attr.completeness_relative:.1%}.")
    if compare:
        fig = analysis_figures.attribution_bars(attr)
        fig.update_xaxes(tickangle=-45 if len(attr.tokens) > 12 else 0)
        fig.update_layout(height=380, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
        widgets.chart(fig, "mem_fig_attr_bars")


# ----------------------------------------------------------------------------------- provenance
def _provenance(ctx, tr, layer, step):
    ss = st.session_state
    prov = cell_provenance(tr, step, layer)
    U = prov.c.shape[0]
    strongest = lesson.strongest_units(prov)[0]
    held = (lesson.long_memory_units(prov) or [strongest])[0]
    sig = (ctx.path, tr.text, layer, step)
    if ss.get("_mem_unit_sig") != sig or ss.get("mem_unit") not in range(U):
        ss["_mem_unit_sig"] = sig
        if not (session.linked("mem_unit") and ss.get("mem_unit") in range(U)):    # a link's unit, kept once
            ss["mem_unit"] = held
    _section(f"Where the cell state came from (layer {layer}, after “{labels_at(tr, step)}”)",
             "The cell update c_t = f_t ⊙ c_t−1 + i_t ⊙ g_t unrolls exactly: each earlier token k wrote i_k ⊙ g_k, "
             "and every forget gate since then multiplied it. A bar is what survives of token k's write now.")
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    notes = {held: " (holds an old word longest)", strongest: " (largest |c| now)"}
    unit = c1.selectbox("Unit", list(range(U)), key="mem_unit", format_func=lambda u: f"unit {u}" + notes.get(u, ""),
                        help="Opens on the unit whose cell state is held most by a single word read at least 5 "
                             "steps earlier (explorer.present.lesson.long_memory_units).")
    chk = lesson.provenance_check(prov, unit)
    old = lesson.oldest_share(prov, unit)
    c2.html(f'<div data-testid="provenance-check" style="font-size:15px;line-height:1.5">'
            f"<b>Check:</b> the bars sum to {chk['sum_parts']:+.6f}; with the part left of the start state "
            f"({chk['initial']:+.6f}) that is {chk['total']:+.6f}; the trace has c = {chk['c']:+.6f} "
            f"(difference {abs(chk['error']):.1e}, relative {chk['relative_error']:.0e}; the largest relative "
            f"difference over all {U} units of this layer is {chk['layer_max_relative_error']:.0e}, "
            f"{'within' if chk['layer_max_relative_error'] <= chk['tolerance'] else 'above'} the float32 tolerance "
            f"{chk['tolerance']:.0e} × max(1, |c|)).<br>The largest surviving part was written by "
            f"“{html.escape(old['token'])}” (step {old['position']}, {old['steps_ago']} steps ago): "
            f"{old['share']:.0%} of the total size.</div>")
    fig = analysis_figures.provenance_bars(prov, unit)
    fig.update_xaxes(tickangle=-45 if len(prov.tokens) > 12 else 0)
    fig.update_layout(height=380, title=dict(
        text=f"c = {chk['c']:.3f} (unit {unit}, layer {layer}, after “{labels_at(tr, step)}”) = the sum of these "
             "bars" + (f" + {chk['initial']:.3f} from the start state" if chk["initial"] else ""), font=dict(size=15)))
    widgets.chart(fig, "mem_fig_prov")

    _section("Memory matrix", "Rows: when a token wrote to the cell; columns: now. Read a row left to right to "
                              f"watch one write fade. It shows the last {MATRIX_WINDOW} steps up to the selected "
                              "step; what the cell held before them is carried on as the start state.")
    widgets.keep("mem_mm", "unit")            # a redraw after a new text never leaves it unselected
    how = st.radio("Show", ["unit", "layer"], key="mem_mm", horizontal=True, persist_state="session",
                   format_func=lambda s: {"unit": f"unit {unit} (signed)", "layer": "norm over all units"}[s])
    mm = memory_matrix(tr, layer, unit if how == "unit" else None, step=step)
    fig = analysis_figures.memory_matrix_heatmap(mm)
    fig.update_xaxes(tickangle=-45 if len(tr) > 12 else 0)
    fig.update_layout(title=dict(text=f"What each token wrote that is still in the cell state (layer {layer}, "
                                      + (f"unit {unit})" if how == "unit" else "norm over units)"), font=dict(size=15)))
    widgets.chart(fig, "mem_fig_matrix")

    _section("How long each unit remembers",
             "Half-life = the number of steps after which a unit keeps half of what it had, ln 0.5 / ln f̄, from its "
             "mean forget gate f̄. The forget gate depends on the input, so this is an average, not a constant.")
    widgets.keep("mem_hl", "reference")
    src = st.radio("Averaged over", ["reference", "text"], key="mem_hl", horizontal=True, persist_state="session",
                   format_func=lambda s: {"reference": "the preset paragraphs", "text": "this text"}[s])
    hl = half_lives(cached_analysis.reference_trace(ctx) if src == "reference" else tr, layer)
    s = lesson.half_life_summary(hl)
    fig = analysis_figures.half_life_chart(hl)
    fig.update_layout(height=380, title=f"Memory half-life of each unit, layer {layer}: ln 0.5 / ln f̄")
    fig.update_yaxes(dtick=1)                    # log axis: 1, 10, 100, ... only
    widgets.chart(fig, "mem_fig_halflife")
    st.caption(f"Median half-life {s['median']:.1f} steps; {s['over_10']} of {s['units']} units keep half for more "
               f"than 10 steps, {s['over_100']} for more than 100 (longest: unit {s['longest_unit']}, "
               f"{s['longest']:.0f} steps).")


def labels_at(tr, t: int) -> str:
    return views.token_label(tr.tokens[t])


# ------------------------------------------------------------------------------------- fading
def _fading(ctx):
    ss = st.session_state
    _section("LSTM and vanilla RNN: how fast does the first word fade?",
             "The text is read twice, once with its first word replaced, and the two runs are compared at every "
             "later step. Several replacements, because one word can mislead.")
    options = sidebar.bundle_options()
    lstms = lesson.pick_pair(options, "lstm", "fiction-lstm")
    rnns = lesson.pick_pair(options, "rnn", "fiction-rnn")
    if not lstms or not rnns:
        st.info("This needs an LSTM bundle and a vanilla RNN bundle in the models folder (the shipped "
                "fiction-lstm and fiction-rnn).", icon=":material/info:")
        return
    session.link_paths("mem_fade_lstm", lstms)          # a link names the bundles by their folder names
    session.link_paths("mem_fade_rnn", rnns)
    if ss.get("mem_fade_lstm") not in lstms:
        ss["mem_fade_lstm"] = lstms[0]
    if ss.get("mem_fade_rnn") not in rnns:
        ss["mem_fade_rnn"] = rnns[0]
    ss.setdefault("mem_fade_text", FADE_TEXT)
    ss.setdefault("mem_fade_reps", list(FADE_REPLACEMENTS))
    c1, c2, c3 = st.columns([1, 1, 2.4])
    lp = c1.selectbox("LSTM", lstms, key="mem_fade_lstm", format_func=lambda p: options[p], persist_state="session")
    rp = c2.selectbox("RNN", rnns, key="mem_fade_rnn", format_func=lambda p: options[p], persist_state="session")
    reps = c3.multiselect("Replace the first word by", ["<unk>", "john", "she", "he", "the", "it", "holmes"],
                          key="mem_fade_reps", accept_new_options=True, max_selections=6, persist_state="session")
    t1, t2 = st.columns([3, 1.3], vertical_alignment="bottom")
    text = t1.text_input("Text", key="mem_fade_text", persist_state="session")
    ss.setdefault("mem_fade_metric", "dh_rel")
    metric = t2.selectbox("Measure", list(lesson.FADE_METRICS), key="mem_fade_metric", persist_state="session",
                          format_func=lambda m: lesson.FADE_METRICS[m])
    if not text.strip() or not reps:
        st.info("Type a text and choose at least one replacement word.", icon=":material/edit:")
        return
    names = {options[lp]: lp, options[rp]: rp}
    if len(names) < 2:
        names = {"LSTM": lp, "RNN": rp}
    try:
        df = cached_analysis.fade(names, text, reps)
    except InputError as e:
        st.warning(widgets.friendly(e) + ".", icon=":material/warning:")
        return
    widgets.chart(lesson.fade_panels(df, metric), "mem_fig_fade")
    table = lesson.fade_table(df, metric)
    st.html(f'<div data-testid="fade-summary" style="font-size:16px">{html.escape(lesson.fade_sentence(table))}</div>')
    with st.expander("The numbers"):
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"first": st.column_config.NumberColumn("at the replaced word", format="%.3f"),
                                    "last": st.column_config.NumberColumn("at the last word", format="%.3f"),
                                    "late_mean": st.column_config.NumberColumn("mean from 10 steps on", format="%.3f"),
                                    "late_share": st.column_config.NumberColumn("share of first", format="%.2f"),
                                    "persists": "persists"})


with widgets.guard("the Memory page"):
    page()
