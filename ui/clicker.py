"""Lecture mode's small browser component (ui/assets/clicker.js): presentation-remote keys
(PageDown/PageUp, "."/"b") sent to Python as "next"/"prev", and the presenter view's sidebar collapse.
Mounted in the page's DOM (no iframe), zero height."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

_component = st.components.v2.component(
    "rnn_explorer_clicker",
    js=(Path(__file__).resolve().parent / "assets" / "clicker.js").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def mount(key: str, *, keys: bool = False, collapse: int = 0, scroll: int = 0, on_key=None):
    """Place the listener. keys: send clicker keys to `on_key` (a callback without arguments; it reads
    direction(key)). collapse: a number that changes each time the presenter view is switched on.
    scroll: a number that changes when the page should scroll its anchor (lecture.anchor) to the top."""
    return _component(key=key, data=[{"keys": bool(keys), "collapse": int(collapse), "scroll": int(scroll)}],
                      on_key_change=on_key or (lambda: None), height=0)


def direction(key: str) -> str | None:
    """'next' or 'prev' from the component's last key, or None."""
    state = st.session_state.get(key)
    try:
        v = state.get("key") if state is not None else None
    except AttributeError:
        return None
    d = v.get("dir") if isinstance(v, dict) else None
    return d if d in ("next", "prev") else None
