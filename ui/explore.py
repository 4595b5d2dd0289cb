"""Explore: type a sentence and watch the network read it, token by token.

Layout: text box -> fragment "player": playback controls, token strip and the step view (one figure:
next word, Δh/Δc, gates) -> lazy tabs outside the fragment (h/c heatmaps, gate heatmaps, unit
inspector; only the open tab is computed and drawn). Editing the text or switching model/layer reruns
the page; stepping and playing rerun only the fragment (the trace is cached per model and text), so
a step never resends the heatmaps. With the unit inspector open, or when the selection leaves the
window drawn for a long text, a step redraws the page.
"""
from __future__ import annotations

import html
import time

import streamlit as st

from explorer import figures as F
from explorer import views as V
from explorer.trace import QUANTITIES
from ui import common

#: Playback speeds: label -> seconds per token.
SPEEDS = {"½ token/s": 2.0, "1 token/s": 1.0, "2 tokens/s": 0.5, "4 tokens/s": 0.25}
# ------------------------------------------------------------------------------------ callbacks
def _clamp(i: int, n: int) -> int:
    return min(max(int(i), 0), n - 1)


def _step(delta: int, n: int):
    st.session_state["pos"] = _clamp(st.session_state.get("pos", 0) + delta, n)


def _go(i: int, n: int):
    st.session_state["pos"] = _clamp(i, n)


def _slider_moved():
    st.session_state["pos"] = int(st.session_state["pos_slider"])


def _toggle_play(n: int):
    ss = st.session_state
    ss["playing"] = not ss.get("playing", False)
    if ss["playing"]:
        if ss.get("pos", 0) >= n - 1:
            ss["pos"] = 0
        ss["_next_due"] = time.monotonic() + SPEEDS[ss.get("speed", "1 token/s")]
    st.rerun()  # a full run: the fragment's timer (run_every) is set when it is defined


def _speed_changed():
    if st.session_state.get("playing"):
        st.rerun()


# --------------------------------------------------------------------------------------- player
def player(ctx: common.ModelContext, tr, layer: int):
    """Everything that depends on the selected token. Runs as a fragment: on a timer while playing."""
    with common.guard("the token views"):
        _player(ctx, tr, layer)


def _player(ctx: common.ModelContext, tr, layer: int):
    ss = st.session_state
    n = len(tr)
    pos = _clamp(ss.get("pos", n - 1), n)
    playing = ss.get("playing", False)
    if playing:
        now = time.monotonic()
        if now >= ss.get("_next_due", 0.0) - 0.05:      # a timer tick, not a click
            if pos >= n - 1:
                ss["playing"] = False
                st.rerun()                                # full run: stops the timer
            pos += 1
            ss["_next_due"] = now + SPEEDS[ss.get("speed", "1 token/s")]
    ss["pos"] = pos
    labels = V.token_labels(tr)

    # ---- playback controls (keyboard: ← → step, Home/End, P play/pause)
    bar = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    bar.button("First", key="first", icon=":material/first_page:", shortcut="Home", on_click=_go,
               args=(0, n), help="First token (Home)")
    bar.button("Back", key="back", icon=":material/chevron_left:", shortcut="Left", on_click=_step,
               args=(-1, n), help="Previous token (←)")
    bar.button("Pause" if playing else "Play", key="play", type="primary",
               icon=":material/pause:" if playing else ":material/play_arrow:", shortcut="P",
               on_click=_toggle_play, args=(n,), help="Play / pause the reading animation (P)")
    bar.button("Next", key="next", icon=":material/chevron_right:", shortcut="Right", on_click=_step,
               args=(1, n), help="Next token (→)")
    bar.button("Last", key="last", icon=":material/last_page:", shortcut="End", on_click=_go,
               args=(n - 1, n), help="Last token (End)")
    ss.setdefault("speed", "1 token/s")
    bar.selectbox("Speed", list(SPEEDS), key="speed", on_change=_speed_changed, width=150,
                  label_visibility="collapsed", help="Playback speed")
    ss["pos_slider"] = pos
    st.select_slider("Selected token", options=list(range(n)), key="pos_slider", on_change=_slider_moved,
                     format_func=lambda i: f"{i} · {labels[i]}", label_visibility="collapsed",
                     help="Drag, or focus it and use the arrow keys")

    # ---- token strip and a one-line reading of the selected token
    win = V.window(n, pos, common.WINDOW)
    st.html(F.token_strip_html(tr, pos, window=win))
    st.html('<div data-testid="step-readout" style="font-size:15px;padding:2px 0 4px 0">'
            f"{html.escape(V.describe_step(tr, pos))}</div>")

    # ---- step view: next word, change of h and c, gates (one figure: one Plotly draw, not three)
    common.chart(F.step_view_figure(tr, layer, pos, k=common.TOP_K), "fig_step_view")
    if not V.GATES[tr.cell]:
        st.caption("A simple RNN has no gates: it rewrites its whole state h at every step, "
                   "h_t = tanh(W x_t + U h_{t-1} + b).")

    # The heatmaps and the unit inspector are drawn outside this fragment, so a step does not
    # resend 2 x units x tokens numbers. Two things they show depend on the selection: the unit
    # inspector (its marker, "most changed at this step") and, for long texts, the window of tokens.
    # When either would go stale, redraw the whole page instead of only the fragment.
    drawn = ss.get("_drawn", {})
    tab_open = ss.get(f"views_tab_{tr.cell}")
    lo, hi = drawn.get("win", (0, n))
    if drawn.get("sig") == ss.get("_pos_sig") and (
            (tab_open == UNITS_TAB and drawn.get("pos") != pos) or not lo <= pos < hi):
        st.rerun(scope="app")


def views(ctx: common.ModelContext, tr, layer: int):
    """Heatmaps and unit inspector, in lazy tabs: only the open tab is computed and drawn."""
    ss = st.session_state
    n = len(tr)
    pos = _clamp(ss.get("pos", n - 1), n)
    win = V.window(n, pos, common.WINDOW)
    ss["_drawn"] = {"sig": ss.get("_pos_sig"), "pos": pos, "win": win}
    if win != (0, n):
        st.caption(f"The text has {n} tokens; the charts below show tokens {win[0]}–{win[1] - 1}, "
                   "a window that follows the selected token.")
    groups = HEATMAP_TABS[tr.cell]
    labels_ = [name for name, _ in groups] + [UNITS_TAB]
    tab_key = f"views_tab_{tr.cell}"                   # LSTM, GRU and RNN have different tabs
    if ss.get(tab_key) not in labels_:
        ss[tab_key] = labels_[0]
    tabs = st.tabs(labels_, key=tab_key, on_change="rerun")
    for tab, (name, qs_) in zip(tabs, groups):
        with tab:
            if tab.open:
                _heatmaps(ctx, tr, layer, qs_, win)
    with tabs[-1]:
        if tabs[-1].open:
            _unit_inspector(ctx, tr, layer, pos, win)


#: Heatmap tabs per cell: (tab label, quantities).
HEATMAP_TABS = {
    "lstm": [("States h · c", ["h", "c"]), ("Gates i · f · o and candidate g", ["i", "f", "o", "g"])],
    "gru": [("State h and candidate n", ["h", "n"]), ("Gates r · z", ["r", "z"])],
    "rnn": [("State h", ["h"])],
}
UNITS_TAB = "Unit inspector"


def _heatmaps(ctx, tr, layer, qs, win):
    st.caption(f"Units × tokens, layer {layer + 1}. Fixed colours: blue negative, white 0, red positive; "
               "gates white (closed) to green (open). Hover for token, unit and value. The selected "
               "token is outlined in the strip and the step view above: stepping leaves these maps as "
               "they are, so playback stays smooth.")
    per_row = 2 if (win[1] - win[0]) <= 20 else 1   # long texts: full-width heatmaps, readable ticks
    common.chart(F.heatmaps_figure(tr, layer, qs, selected=None, ranges=ctx.ranges, window=win, cols=per_row),
           "fig_heatmaps")


def _unit_inspector(ctx, tr, layer, pos, win):
    ss = st.session_state
    qs = list(QUANTITIES[tr.cell])
    units = tr.layers[layer].values["h"].shape[1]
    c1, c2, c3 = st.columns([1, 2.2, 2.8], vertical_alignment="bottom")
    if ss.get("unit_q") not in qs:
        ss["unit_q"] = "h"
    q = c1.selectbox("Quantity", qs, key="unit_q", format_func=lambda q: f"{q}: {F.LONG_NAMES.get(q, q)}",
                     persist_state="session")
    how = c2.radio("Pick units", V.UNIT_CHOICES, key="unit_how", horizontal=True, persist_state="session")
    if how == "by number":
        ss.setdefault("unit_ids", [0, 1, 2])
        ss["unit_ids"] = [u for u in ss["unit_ids"] if u < units] or [0]
        chosen = c3.multiselect("Units", list(range(units)), key="unit_ids", max_selections=10,
                                format_func=lambda u: f"unit {u}", persist_state="session")
    else:
        ss.setdefault("unit_k", 5)
        k = c3.slider("How many units", 1, 10, key="unit_k", persist_state="session")
        chosen = V.choose_units(tr, layer, q, how, pos, k)
    if chosen:
        common.chart(F.units_figure(tr, layer, q, chosen, selected=pos, ranges=ctx.ranges, window=win), "fig_units")
    else:
        st.caption("Choose at least one unit.")


# ----------------------------------------------------------------------------------------- page
def page():
    ctx = common.require_model()
    layer = common.layer_picker(ctx)
    common.preset_buttons("text")

    st.markdown("#### Type a sentence and watch the network read it")
    st.session_state.setdefault("text", common.default_text())
    text = st.text_area("Text", key="text", height=90, persist_state="session", label_visibility="collapsed",
                        placeholder="Type a sentence…",
                        help="Press Ctrl+Enter (or click outside the box) to trace the new text.")
    tr = common.trace_or_prompt(
        ctx, text, empty="Type a sentence above, or pick a preset sentence in the sidebar, to watch the "
                         "network read it word by word.",
        no_words="The text holds no words the tokenizer can read. Type a sentence.")
    if tr is None:
        return
    unknown = V.unknown_words(tr)
    if unknown:
        words = ", ".join(f"“{html.escape(w)}”" for w in unknown[:12]) + (" …" if len(unknown) > 12 else "")
        st.html(f'<div data-testid="unknown-words" style="font-size:14px;color:#555">'
                f'<span style="color:#7b2cbf;font-weight:600">{len(unknown)} word{"s" if len(unknown) > 1 else ""} '
                f'unknown to {html.escape(ctx.name)}</span> (read as &lt;unk&gt;, dashed in the strip): {words}</div>')

    sig = (ctx.path, ctx.stamp, tr.text)
    ss = st.session_state
    if ss.get("_pos_sig") != sig:                      # a new text or model: select its last token
        ss["_pos_sig"] = sig
        ss["pos"] = len(tr) - 1
        ss["playing"] = False
    interval = SPEEDS.get(ss.get("speed", "1 token/s"), 1.0) if ss.get("playing") else None
    st.fragment(player, run_every=interval, key="player")(ctx, tr, layer)
    with common.guard("the heatmaps"):
        views(ctx, tr, layer)


with common.guard("the Explore page"):
    page()
