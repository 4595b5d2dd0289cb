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
from explorer.analysis import intervene
from explorer.present import causal_figures, views
from ui import cached, cached_causal, session, widgets

QUANTITY_HELP = {"h": "hidden state h", "c": "cell state c (h of the same step follows)",
                 "i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o"}


def _use_units(units):
    st.session_state["iv_units"] = ", ".join(str(u) for u in units)


def _bartender():
    st.session_state["iv_text"] = widgets.BARTENDER_CLEAN
    st.session_state["iv_words"] = "miss, sir"


def page():
    ctx = session.require_model()
    session.url_state("text=iv_text")   # the address bar keeps these (lecture links)
    ss = st.session_state
    H, L = ctx.model.config.hidden_size, ctx.layers
    ss.setdefault("iv_text", widgets.BARTENDER_CLEAN)
    ss.setdefault("iv_words", "miss, sir")
    if "iv_units" not in ss:
        ss["iv_units"] = "161, 40" if H > 161 else f"{min(3, H - 1)}, {min(7, H - 1)}"
    st.markdown("#### Intervene: change units and read on")
    st.caption("Set, add to or scale chosen units of one layer at chosen steps; the network reads the rest of the "
               "text from the changed state. The unchanged run is computed beside it with the same kernel calls, so "
               "every difference below is the change's effect (a change to a unit's own value changes no bit).")
    c0, c1 = st.columns([5, 1.2], vertical_alignment="bottom")
    text = c0.text_area("Text", key="iv_text", height=80, persist_state="session")
    c1.button("Bartender (girl)", key="iv_preset", on_click=_bartender, icon=":material/local_bar:")
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
    if ss.get("_iv_sig") != sig:          # a new text: change every step, view the last one
        ss["_iv_sig"] = sig
        ss.pop("iv_steps", None)
        ss.pop("iv_step", None)
    s1, s2 = st.columns([4, 1.4], vertical_alignment="bottom")
    start, stop = s1.select_slider("Steps changed", list(range(T)), value=(0, T - 1), key="iv_steps",
                                   format_func=lambda i: f"{i} · {labels[i]}")
    words = widgets.words_of(s2.text_input("Words to follow", key="iv_words", persist_state="session"))
    try:
        iv = intervene.Intervention(layer, quantity, units, op, value, start, stop)
        res = cached_causal.intervention(ctx, text, (iv,), words)
    except InputError as err:
        st.warning(widgets.friendly(err) + ".", icon=":material/warning:")
        return
    summary = html.escape(causal_figures.intervention_summary(res))
    st.html(f'<div data-testid="iv-readout" style="font-size:16px">{summary}</div>')
    step = st.select_slider("Next-word view after step", list(range(T)), value=T - 1, key="iv_step",
                            format_func=lambda i: f"{i} · {labels[i]}")
    left, right = st.columns([1, 1.6])
    with left:
        widgets.chart(causal_figures.next_words_bars(res, step), "iv_fig_next")
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
               "as rows of one batch.")
    ss.setdefault("iv_target", words[0] if words else "miss")
    ss.setdefault("iv_versus", words[1] if len(words) > 1 else "sir")
    a, b, c = st.columns([1, 1, 1.4], vertical_alignment="bottom")
    target = a.text_input("Word", key="iv_target")
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
