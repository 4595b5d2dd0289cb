"""Lecture mode: the presenter view (?present=1 or the sidebar switch) for a projector: large type,
black on white with heavy strokes, the page's chrome hidden, the sidebar folded away once per
switch-on, and a presentation remote's keys (ui/clicker.py). app.py draws the switch on every run,
after session.open_address has read ?present=1 from the address."""
from __future__ import annotations

import time

import streamlit as st

from ui import clicker, session

#: The presenter view: large type, black on white with heavy strokes (a washed-out projector loses
#: greys and thin lines), the page's chrome hidden; the Explore player keeps its strip and one view.
PRESENT_CSS = """<style>
.stApp, .stApp [data-testid="stMain"] { background:#ffffff !important; color:#000000 !important; }
[data-testid="stMain"] .block-container { padding-top:3.2rem; max-width:100% }
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label,
[data-testid="stMain"] .stMarkdown, [data-testid="stMain"] textarea, [data-testid="stMain"] input
  { font-size:24px !important; line-height:1.4 !important; color:#000000 !important; font-weight:500 }
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3, [data-testid="stMain"] h4
  { font-size:34px !important; color:#000000 !important; font-weight:800 !important }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { display:none }
[data-testid="stMain"] button { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
[data-testid="stMain"] button[kind="primary"], [data-testid="stMain"] button[data-testid="stBaseButton-primary"]
  { background:#000 !important; color:#fff !important }
[data-testid="stMain"] button[data-testid="stBaseButton-primary"] * { color:#fff !important }
[data-testid="stHeader"] { background:#ffffff }
.tok-strip .tok { font-size:30px !important; padding:6px 10px !important; border:2px solid #000 !important; color:#000 !important }
.tok-strip .tok.sel { outline:5px solid #000 !important; box-shadow:none !important }
.st-key-text { display:none }
.rsx { color:#000 !important }
.rsx-step, .rsx-speed, .rsx-where { display:none !important }
.rsx-readout { font-size:24px !important; font-weight:600; padding:0 !important }
.rsx-btn { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
[data-testid="stMain"] .rsx-play { background:#000 !important; color:#fff !important }
.rsx-tab { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
/* 1024 x 768 (issue 22): what the lecturer points at fits on one screen. Headings and chrome tighter; a
   text box as tall as its text (a fixed height cut the second line); on Explore the next-word bars
   beside the heatmap, the tabs (one view) gone and the heatmap capped in height (player.js reads
   --rsx-heat-h); on the Lesson the page scrolls to the step's content (the anchor) on a clicker key. */
[data-testid="stMain"] .block-container { padding-top:2.2rem }
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3, [data-testid="stMain"] h4
  { font-size:28px !important; padding:0 0 4px 0 !important; margin:0 !important; line-height:1.2 !important }
[data-testid="stMain"] textarea { field-sizing:content; height:auto !important; min-height:0 !important;
  max-height:5.8em; overflow-y:auto }
[data-testid="stMain"] [data-baseweb="textarea"] { height:auto !important }
.rsx { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,19rem); column-gap:20px; align-items:start;
  grid-auto-flow:row dense;
  --rsx-heat-h:150 }
.rsx > * { grid-column:1 / -1 }
.rsx > .rsx-step { display:block !important; grid-column:2; margin:0 }
.rsx > .rsx-step > .rsx-change, .rsx > .rsx-step > .rsx-gates { display:none }
.rsx > .rsx-heat { grid-column:1; margin-top:0 }
.rsx-tabs { display:none !important }
.rsx-topk .rsx-title { font-size:20px !important; white-space:normal }
.rsx-topk .rsx-row { font-size:18px !important }
.rsx-topk .rsx-row:nth-child(n+7):not(.extra) { display:none }
.rsx-topk .rsx-sub, .rsx-topk .rsx-p { font-size:15px !important; color:#000 !important }
.tok-legend { display:none !important }
[data-testid="stElementContainer"]:has([data-testid="present-anchor"]) { scroll-margin-top:3.9rem }
</style>"""


def anchor() -> None:
    """Where a lesson step's content starts (its strip, readout and main chart): in the presenter view a
    clicker key scrolls it to the top of the screen (clicker.js), so all of it shows at 1024 x 768."""
    if presenting():
        st.html('<div data-testid="present-anchor" style="height:1px"></div>')


def scroll_token(key: str, bump: bool = False) -> int:
    """A number for clicker.mount(scroll=...): it changes when `bump` is true (a clicker key, a new step)
    and is 0 outside the presenter view, where nothing scrolls."""
    ss = st.session_state
    if bump:
        ss[key] = int(ss.get(key, 0)) + 1
    return int(ss.get(key, 0)) if presenting() else 0


def presenting() -> bool:
    """Is the presenter view on (URL ?present=1 or the sidebar switch)?"""
    return bool(st.session_state.get(session.PRESENT))


def presenter_switch() -> bool:
    """Draws the sidebar switch "Presenter view" and, when it is on, the presenter style and a sidebar
    collapsed once per switch-on. Returns whether it is on."""
    ss = st.session_state
    on = st.sidebar.toggle("Presenter view", key=session.PRESENT,
                           help="For a projector: large type, high contrast, the sidebar folded away and, on "
                                "Explore, the token strip and one view. A presentation remote (PageDown/PageUp, "
                                "'.'/'b') steps the player and the lesson. Add ?present=1 to a link to open in it.")
    if on and not ss.get("_present_n"):
        ss["_present_n"] = int(time.time() * 1000) % 2**31 or 1
    elif not on:
        ss["_present_n"] = 0
    if on:                           # (off: no component at all, nothing more to send)
        st.html(PRESENT_CSS)
        clicker.mount("_lecture", collapse=ss["_present_n"])
    return on
