"""Explore: type a sentence and watch the network read it, token by token.

Layout: text box -> the player (ui/player.py, a v2 component drawing explorer.present.player.player_data):
playback controls, token strip, step view (next word, Δh/Δc, gates), heatmap tabs and the heatmaps
-> the unit inspector (Plotly, below the player when its tab is chosen).

Stepping, playing and hovering happen in the browser: the player holds every step of the window it
was sent, so a step never waits for the server. It reports the selected token back (debounced): the
unit inspector follows it, and for a long text the server sends the window of tokens around it.
The text box, the player and the unit inspector are one fragment, so a new sentence or a report
reruns only them; switching model or layer in the sidebar reruns the page (traces are cached per
model and text).
"""
from __future__ import annotations

import hashlib
import html

import streamlit as st

from explorer.present import figures as F
from explorer.present import views as V
from explorer.present.player import ngram_bits, player_data, reported_position
from explorer.trace import QUANTITIES
from ui import common, downloads
from ui import causal_common
from ui import player as P

PLAYER_KEY = "player"


def _clamp(i: int, n: int) -> int:
    return min(max(int(i), 0), n - 1)


def _component_state(name: str):
    state = st.session_state.get(PLAYER_KEY)
    try:
        return state.get(name) if state is not None else None
    except AttributeError:
        return None


def _pos_changed():
    """The player selected another token of the text it was sent (`sig`); older reports are ignored."""
    pos = reported_position(_component_state("pos"), st.session_state.get("_pos_sig"))
    if pos is not None:
        st.session_state["pos"] = pos


def _view_changed():
    v = _component_state("view")
    if isinstance(v, str):
        st.session_state["view"] = v


def text_sig(ctx: common.ModelContext, text: str) -> str:
    """Identifies a text read by a model: a new one selects its last token."""
    return hashlib.sha1(f"{ctx.path}|{ctx.stamp}|{text}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


#: Heatmap tabs per cell: (tab label, quantities).
HEATMAP_TABS = {
    "lstm": [("States h · c", ["h", "c"]), ("Gates i · f · o and candidate g", ["i", "f", "o", "g"])],
    "gru": [("State h and candidate n", ["h", "n"]), ("Gates r · z", ["r", "z"])],
    "rnn": [("State h", ["h"])],
}
UNITS_TAB = "Unit inspector"


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


# --------------------------------------------------------------------------------------- player
def view_labels(cell: str) -> list[str]:
    return [name for name, _ in HEATMAP_TABS[cell]] + [UNITS_TAB]


def current_view(cell: str) -> str:
    labels = view_labels(cell)
    v = st.session_state.get("view")
    return v if v in labels else labels[0]


@common.byte_cached("ngram_bits")
def _ngram_bits(path: str, stamp: float, ng_path: str, ng_stamp: float, text: str):
    tr = common.cached_trace(path, stamp, text)
    return ngram_bits(tr, common.ngram_model(ng_path))


def ngram_for(ctx: common.ModelContext, tr) -> tuple[str, object] | None:
    """(name, bits per token) for the player's second track when it is switched on, else None."""
    f = common.ngram_file(ctx.path)
    if f is None or not st.session_state.get("ngram"):
        return None
    order = f.stem.replace("ngram-kn", "")
    bits = _ngram_bits(ctx.path, ctx.stamp, str(f), f.stat().st_mtime, tr.text)
    return (f"Kneser-Ney {order}-gram", bits)


def player(ctx: common.ModelContext, tr, layer: int, sig: str):
    """The player and, under it, the unit inspector."""
    with common.guard("the token views"):
        ss = st.session_state
        n = len(tr)
        pos = _clamp(ss.get("pos", n - 1), n)
        ss["pos"] = pos
        win = V.window(n, pos, common.WINDOW)
        view = current_view(tr.cell)
        heat = dict(HEATMAP_TABS[tr.cell]).get(view, [])
        if win != (0, n):
            st.caption(f"The text has {n} tokens; the player holds tokens {win[0]}–{win[1] - 1}, a window "
                       "that follows the selected token.")
        # The player steps on its own inside a window; the position it is sent changes only with the
        # text or the window, so its reports (which rerun this) resend the same data.
        if ss.get("_anchor") is None or ss["_anchor"][:2] != (sig, win):
            ss["_anchor"] = (sig, win, pos)
        ng = None
        with common.guard("the n-gram track"):
            ng = ngram_for(ctx, tr)
        data = player_data(tr, layer, pos=ss["_anchor"][2], window=win, ranges=ctx.ranges, heat=heat,
                           k=common.TOP_K, sig=sig, view=view, ngram=ng)
        data["views"] = view_labels(tr.cell)
        P.mount(data, key=PLAYER_KEY, on_pos_change=_pos_changed, on_view_change=_view_changed)
        if view == UNITS_TAB:
            _unit_inspector(ctx, tr, layer, pos, win)


# ----------------------------------------------------------------------------------------- page
#: What the address bar keeps on this page (common.url_state): text, layer, selected token, tab.
URL_KEYS = ("text", "layer:layer", "pos:int", "view", "ngram:bool")


def page():
    ctx = common.require_model()
    common.url_state(*URL_KEYS)
    if "pos" in common.cold_query():                   # a link's token, kept when its text is first traced
        st.session_state.setdefault("_url_pos", st.session_state.get("pos"))
    layer = common.layer_picker(ctx)
    common.preset_buttons("text")
    st.markdown("#### Type a sentence and watch the network read it")
    st.session_state.setdefault("text", common.default_text())
    # The text box and everything under it form one fragment: a new sentence, a step reported by
    # the player or a tab reruns only this part, not the sidebar and navigation.
    st.fragment(body)(ctx, layer)


def body(ctx: common.ModelContext, layer: int):
    with common.guard("the Explore page"):
        _body(ctx, layer)


def _body(ctx: common.ModelContext, layer: int):
    text = st.text_area("Text", key="text", height=90, persist_state="session", label_visibility="collapsed",
                        placeholder="Type a sentence…",
                        help="Press Ctrl+Enter (or click outside the box) to trace the new text.")
    if common.ngram_file(ctx.path) is not None:
        common.keep("ngram", False)
        st.toggle("Compare with the 3-gram: its surprisal as a band under each word", key="ngram",
                  help="The project's Kneser-Ney n-gram, fitted on the same training books and vocabulary, sees "
                       "only the last two words. Where its band is red and the word above is pale, the "
                       "network's memory of earlier words made the word predictable.")
    tr = common.trace_or_prompt(
        ctx, text, empty="Type a sentence above, or pick a preset sentence in the sidebar, to watch the "
                         "network read it word by word.",
        no_words="The text holds no words the tokenizer can read. Type a sentence.")
    if tr is None:
        return
    unknown = V.unknown_words(tr)
    if unknown:
        words = ", ".join(f"“{html.escape(V.visible(w))}”" for w in unknown[:12]) + (" …" if len(unknown) > 12 else "")
        st.html(f'<div data-testid="unknown-words" style="font-size:14px;color:#555">'
                f'<span style="color:#7b2cbf;font-weight:600">{len(unknown)} word{"s" if len(unknown) > 1 else ""} '
                f'unknown to {html.escape(ctx.name)}</span> (read as &lt;unk&gt;, dashed in the strip): {words}</div>')

    sig = text_sig(ctx, tr.text)
    ss = st.session_state
    if ss.get("_pos_sig") != sig:                      # a new text or model: select its last token
        ss["_pos_sig"] = sig
        url_pos = ss.pop("_url_pos", None)             # (or the one a link named)
        ss["pos"] = _clamp(url_pos, len(tr)) if isinstance(url_pos, int) else len(tr) - 1
    player(ctx, tr, layer, sig)
    with common.guard("the probe readout"):
        causal_common.probe_line(ctx, tr)              # a probe fitted on the Probe page, word by word
    common.url_write(*URL_KEYS)                        # the fragment's own reruns (a step, a tab)
    if common.presenting():                            # the presenter view: the strip and one view
        return
    downloads.trace_downloads(ctx, tr, layer, ss.get("pos", len(tr) - 1))


with common.guard("the Explore page"):
    page()
