"""Explore: type a sentence and watch the network read it, token by token.

Layout: text box -> the player (ui/player_component.py, drawing an explorer.present.player.PlayerData):
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

from explorer.analysis import probe
from explorer.present import figures, views
from explorer.present.player import HEATMAP_TABS, build_player_data, reported_position
from explorer.trace import QUANTITIES
from ui import cached, cached_causal, downloads, lecture, player_component, session, widgets

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


def text_sig(ctx: session.ModelContext, text: str) -> str:
    """Identifies a text read by a model: a new one selects its last token."""
    return hashlib.sha1(f"{ctx.path}|{ctx.stamp}|{text}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


#: The player's last tab: the unit inspector, drawn under it with Plotly (the heatmap tabs: HEATMAP_TABS).
UNITS_TAB = "Unit inspector"


def _unit_inspector(ctx, tr, layer, pos, win):
    ss = st.session_state
    qs = list(QUANTITIES[tr.cell])
    units = tr.layer(layer).values["h"].shape[1]
    c1, c2, c3 = st.columns([1, 2.2, 2.8], vertical_alignment="bottom")
    if ss.get("unit_q") not in qs:
        ss["unit_q"] = "h"
    q = c1.selectbox("Quantity", qs, key="unit_q", format_func=lambda q: f"{q}: {figures.LONG_NAMES.get(q, q)}",
                     persist_state="session")
    how = c2.radio("Pick units", views.UNIT_CHOICES, key="unit_how", horizontal=True, persist_state="session")
    if how == "by number":
        ss.setdefault("unit_ids", [0, 1, 2])
        ss["unit_ids"] = [u for u in ss["unit_ids"] if u < units] or [0]
        chosen = c3.multiselect("Units", list(range(units)), key="unit_ids", max_selections=10,
                                format_func=lambda u: f"unit {u}", persist_state="session")
    else:
        ss.setdefault("unit_k", 5)
        k = c3.slider("How many units", 1, 10, key="unit_k", persist_state="session")
        chosen = views.choose_units(tr, layer, q, how, pos, k)
    if chosen:
        widgets.chart(figures.units_figure(tr, layer, q, chosen, selected=pos, ranges=ctx.ranges, window=win),
                      "fig_units")
    else:
        st.caption("Choose at least one unit.")


# --------------------------------------------------------------------------------------- player
def view_labels(cell: str) -> list[str]:
    return [name for name, _ in HEATMAP_TABS[cell]] + [UNITS_TAB]


def current_view(cell: str) -> str:
    labels = view_labels(cell)
    v = st.session_state.get("view")
    return v if v in labels else labels[0]


def ngram_for(ctx: session.ModelContext, tr) -> tuple[str, object] | None:
    """(name, bits per token) for the player's second track when it is switched on, else None."""
    f = cached.ngram_file(ctx.path)
    if f is None or not st.session_state.get("ngram"):
        return None
    order = f.stem.replace("ngram-kn", "")
    bits = cached.ngram_bits(ctx.path, ctx.stamp, str(f), f.stat().st_mtime, tr.text)
    return (f"Kneser-Ney {order}-gram", bits)


def player(ctx: session.ModelContext, tr, layer: int, sig: str):
    """The player and, under it, the unit inspector."""
    with widgets.guard("the token views"):
        ss = st.session_state
        n = len(tr)
        pos = _clamp(ss.get("pos", n - 1), n)
        ss["pos"] = pos
        win = views.window(n, pos, widgets.WINDOW)
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
        with widgets.guard("the n-gram track"):
            ng = ngram_for(ctx, tr)
        data = build_player_data(tr, layer, pos=ss["_anchor"][2], window=win, ranges=ctx.ranges, heat=heat,
                                 k=cached.TOP_K, sig=sig, view=view, ngram=ng, views=view_labels(tr.cell))
        player_component.mount(data, key=PLAYER_KEY, on_pos_change=_pos_changed, on_view_change=_view_changed)
        if view == UNITS_TAB:
            _unit_inspector(ctx, tr, layer, pos, win)


def probe_line(ctx, tr):
    """Once a probe has been fitted for this model on the Probe page, its readout of the text word by
    word, as lines under the player. Draws nothing otherwise."""
    from explorer.present import causal_figures
    reps = cached_causal.fitted_probes(ctx)
    if not reps:
        return
    opts = [(i, k) for i, r in enumerate(reps) for k in sorted(r.probes)]
    with st.expander("Probe readout: what a layer thinks, word by word", expanded=False):
        j = st.selectbox("Probe", list(range(len(opts))), key="ex_probe",
                         format_func=lambda n: f"{probe.DESCRIPTIONS[reps[opts[n][0]].task]} · layer "
                                               f"{opts[n][1][0]} {opts[n][1][1]} (selectivity "
                                               f"{next(s.selectivity for s in reps[opts[n][0]].scores if (s.layer, s.quantity) == opts[n][1]):+.1%})")
        i, key = opts[j if j is not None and j < len(opts) else 0]
        probs = probe.readout(reps[i], ctx.model, tr, *key)
        widgets.chart(causal_figures.probe_readout_lines(probs, views.token_labels(tr), reps[i].label_names),
                      "ex_fig_probe")


# ----------------------------------------------------------------------------------------- page
#: What the address bar keeps on this page (session.url_state): text, layer, selected token, tab, and the
#: unit inspector's quantity, way of picking units, units and how many; the probe read out.
URL_KEYS = ("text", "layer:layer", "pos:int", "view", "ngram:bool", "unit_q", "unit_how", "units=unit_ids:ints",
            "unit_k:int", "probe=ex_probe:int")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)
    if "pos" in session.cold_query():                  # a link's token, kept when its text is first traced
        st.session_state.setdefault("_url_pos", st.session_state.get("pos"))
    layer = widgets.layer_picker(ctx)
    widgets.preset_buttons("text")
    st.markdown("#### Type a sentence and watch the network read it")
    st.session_state.setdefault("text", widgets.default_text())
    # The text box and everything under it form one fragment: a new sentence, a step reported by
    # the player or a tab reruns only this part, not the sidebar and navigation.
    st.fragment(body)(ctx, layer)


def body(ctx: session.ModelContext, layer: int):
    with widgets.guard("the Explore page"):
        _body(ctx, layer)


def _body(ctx: session.ModelContext, layer: int):
    text = st.text_area("Text", key="text", height=90, persist_state="session", label_visibility="collapsed",
                        placeholder="Type a sentence…",
                        help="Press Ctrl+Enter (or click outside the box) to trace the new text.")
    if cached.ngram_file(ctx.path) is not None:
        widgets.keep("ngram", False)
        st.toggle("Compare with the 3-gram: its surprisal as a band under each word", key="ngram",
                  help="The project's Kneser-Ney n-gram, fitted on the same training books and vocabulary, sees "
                       "only the last two words. Where its band is red and the word above is pale, the "
                       "network's memory of earlier words made the word predictable.")
    tr = cached.trace_or_prompt(
        ctx, text, empty="Type a sentence above, or pick a preset sentence in the sidebar, to watch the "
                         "network read it word by word.",
        no_words="The text holds no words the tokenizer can read. Type a sentence.")
    if tr is None:
        return
    unknown = views.unknown_words(tr)
    if unknown:
        words = (", ".join(f"“{html.escape(views.visible(w))}”" for w in unknown[:12])
                 + (" …" if len(unknown) > 12 else ""))
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
    with widgets.guard("the probe readout"):
        probe_line(ctx, tr)                            # a probe fitted on the Probe page, word by word
    session.url_write(*URL_KEYS)                       # the fragment's own reruns (a step, a tab)
    if lecture.presenting():                           # the presenter view: the strip and one view
        return
    downloads.trace_downloads(ctx, tr, layer, ss.get("pos", len(tr) - 1))


with widgets.guard("the Explore page"):
    page()
