"""Intervene: clamp, ablate or scale units of one layer and read the rest of the text from the changed
state. "If I clamp unit 161 of the cell state, does 'miss' lose its boost?"

Layout: text -> what to change (layer, quantity, units, set/add/scale, steps) -> the readout at the
last step -> the live next-word view at a chosen step -> Δ log P along the text -> the later states
-> finding the units that matter most (each unit changed on its own).
"""
from __future__ import annotations

import html

import streamlit as st

from explorer.errors import InputError
from explorer.analysis import examples, intervene
from explorer.present import causal_figures, views
from ui import cached, cached_causal, session, widgets

QUANTITY_HELP = {"h": "hidden state h", "c": "cell state c (h of the same step follows)",
                 "i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o"}


def _use_units(units):
    st.session_state["iv_units"] = ", ".join(str(u) for u in units)


def _bartender():
    """The opening example again (the bartender pair on a word model): text, words, units and change."""
    ss = st.session_state
    for k, v in (ss.get("_iv_opening") or (None, {}))[1].items():
        ss[k] = v


def _opening(ctx) -> examples.CausalExample:
    """This model's opening example (explorer.analysis.examples): its text and words, and the top layer's
    units of h that push hardest toward the first word, computed from the model (issue 22: the fixed units
    161 and 40 barely moved anything, and a character model got "miss, sir"). Set on the first visit, and
    on a model change for every field that still holds the previous model's opening value."""
    ss = st.session_state
    ex = examples.causal_example(ctx.model)
    prev = ss.get("_iv_opening")
    if prev and prev[0] == ctx.path:
        return ex
    word, versus = ex.follow[0], ex.follow[1]
    tr = cached.get_trace(ctx, ex.clean)
    units = examples.direct_units(ctx.model, tr, word, versus) if tr is not None else ()
    new = {"iv_text": ex.clean, "iv_words": ", ".join(ex.follow), "iv_layer": ctx.layers, "iv_quantity": "h",
           "iv_units": ", ".join(map(str, units or (0,))), "iv_op": "set", "iv_value": 0.0,
           "iv_target": word, "iv_versus": versus}
    session.model_defaults("_iv_opening", ctx.path, new)
    return ex


#: What the address bar keeps on this page (session.url_state): the text and the whole intervention (layer,
#: quantity, units, change, value, steps), the words followed, the step viewed and the unit search.
URL_KEYS = ("text=iv_text", "layer=iv_layer:layer", "quantity=iv_quantity", "units=iv_units", "change=iv_op",
            "value=iv_value:float", "steps=iv_steps:ints", "words=iv_words", "step=iv_step:int",
            "word=iv_target", "versus=iv_versus", "rank=iv_rank:bool")


def _steps_ok(v, T: int) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and 0 <= v[0] <= v[1] < T


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    ss = st.session_state
    H, L = ctx.model.config.hidden_size, ctx.layers
    ex = _opening(ctx)
    kind = ex.unit_kind                     # "word", or "character" for a character model
    st.markdown("#### Intervene: change units and read on")
    st.caption("Set, add to or scale chosen units of one layer at chosen steps; the network reads the rest of the "
               "text from the changed state. The unchanged run is computed beside it with the same kernel calls, so "
               "every difference below is the change's effect (a change to a unit's own value changes no bit). "
               f"It reads up to {intervene.MAX_TOKENS:,} tokens step by step.")
    c0, c1 = st.columns([5, 1.2], vertical_alignment="bottom")
    text = c0.text_area("Text", key="iv_text", height=80, persist_state="session")
    c1.button("Bartender (girl)" if kind == "word" else "Opening example", key="iv_preset", on_click=_bartender,
              icon=":material/local_bar:" if kind == "word" else ":material/restart_alt:")
    if not text.strip():
        st.info("Type a text to change the network while it reads.", icon=":material/edit:")
        return
    quantities = ("h", "c") + intervene.GATES if ctx.cell == "lstm" else ("h",)
    if ss.get("iv_layer") not in range(1, L + 1):         # layers are numbered from 1, the bottom layer
        ss["iv_layer"] = L
    if ss.get("iv_quantity") not in quantities:
        ss["iv_quantity"] = "c" if "c" in quantities else "h"
    ss.setdefault("iv_op", "set")
    ss.setdefault("iv_value", 0.0)
    a, b, c, d, e = st.columns([0.9, 2.6, 1.6, 1.7, 1.0], vertical_alignment="bottom")
    layer = a.selectbox("Layer", list(range(1, L + 1)), key="iv_layer", format_func=lambda l: f"layer {l}")
    quantity = b.radio("Quantity", list(quantities), key="iv_quantity", horizontal=True,
                       help="; ".join(f"{q}: {QUANTITY_HELP[q]}" for q in quantities))
    units_raw = c.text_input("Units", key="iv_units", help=f"Comma-separated, 0 to {H - 1}.")
    op = d.radio("Change", list(intervene.OPS), key="iv_op", horizontal=True)
    value = e.number_input("Value", key="iv_value", step=0.5, format="%.3f")
    try:
        units = tuple(int(u) for u in units_raw.replace(" ", "").split(",") if u)
    except ValueError:
        st.warning("Units are whole numbers separated by commas, e.g. 161, 40.", icon=":material/warning:")
        return
    if not units:
        st.info("Name at least one unit.", icon=":material/edit:")
        return
    tr = cached.trace_or_prompt(ctx, text, empty="Type a text.", no_words="The text holds no words the tokenizer can read.")
    if tr is None:
        return
    T = len(tr)
    labels = views.token_labels(tr)
    sig = (ctx.path, tr.text)
    if ss.get("_iv_sig") != sig:          # a new text: change every step, view the last one (a link's: kept once)
        ss["_iv_sig"] = sig
        if session.linked("iv_steps") and _steps_ok(ss.get("iv_steps"), T):
            ss["iv_steps"] = tuple(ss["iv_steps"])
        else:
            ss.pop("iv_steps", None)
        if not (session.linked("iv_step") and ss.get("iv_step") in range(T)):
            ss.pop("iv_step", None)
    s1, s2 = st.columns([4, 1.4], vertical_alignment="bottom")
    start, stop = s1.select_slider("Steps changed", list(range(T)), value=(0, T - 1), key="iv_steps",
                                   format_func=lambda i: f"{i} · {labels[i]}")
    words = widgets.words_of(s2.text_input(f"{kind.capitalize()}s to follow", key="iv_words", persist_state="session"))
    try:
        iv = intervene.Intervention(layer, quantity, units, op, value, start, stop)
        res = cached_causal.intervention(ctx, text, (iv,), words)
    except InputError as err:
        st.warning(widgets.friendly(err) + ".", icon=":material/warning:")
        return
    summary = html.escape(causal_figures.intervention_summary(res))
    null = causal_figures.intervention_effect_note(res)
    if null:                                    # say so rather than show a change that changes nothing
        summary += f' <b data-testid="iv-null">{html.escape(null)}</b>'
    st.html(f'<div data-testid="iv-readout" style="font-size:16px">{summary}</div>')
    step = st.select_slider(f"Next-{kind} view after step", list(range(T)), value=T - 1, key="iv_step",
                            format_func=lambda i: f"{i} · {labels[i]}")
    left, right = st.columns([1, 1.6])
    with left:
        widgets.chart(causal_figures.next_words_bars(res, step, kind=kind), "iv_fig_next")
    with right:
        widgets.chart(causal_figures.intervention_effect(res), "iv_fig_effect")
    widgets.chart(causal_figures.state_change_lines(res), "iv_fig_states")
    with widgets.guard("the unit search"):
        _unit_search(ctx, text, layer, quantity, op, value, words)


def _unit_search(ctx, text, layer, quantity, op, value, words):
    ss = st.session_state
    st.markdown("##### Which units matter most?")
    st.caption(f"Each unit of layer {layer} {quantity} is changed on its own ({op} {value:g}, over the whole text) "
               "and the change in log P(word) − log P(versus) after the last token is measured — all units at once, "
               f"as rows of one batch (texts of up to {intervene.UNIT_MAX_TOKENS:,} tokens).")
    ss.setdefault("iv_target", words[0] if words else "miss")
    ss.setdefault("iv_versus", words[1] if len(words) > 1 else "sir")
    a, b, c = st.columns([1, 1, 1.4], vertical_alignment="bottom")
    target = a.text_input(examples.token_kind(ctx.model).capitalize(), key="iv_target")
    versus = b.text_input("versus", key="iv_versus")
    run = c.toggle("Rank the units", key="iv_rank")
    if not run:
        return
    try:
        df = cached_causal.unit_effects(ctx, text, layer, quantity, target.strip(), versus.strip() or None, op, value)
    except InputError as err:
        st.warning(widgets.friendly(err) + ".", icon=":material/warning:")
        return
    widgets.chart(causal_figures.unit_effect_bars(df), "iv_fig_units")
    top3 = [int(u) for u in df["unit"].head(3)]
    st.button(f"Change units {', '.join(map(str, top3))} together", key="iv_use_top", on_click=_use_units, args=(top3,))


with widgets.guard("the Intervene page"):
    page()
