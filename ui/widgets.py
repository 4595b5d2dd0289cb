"""Shared controls and placement for every page: guard (an error as a message, never a traceback),
chart (a Plotly figure with a Download menu under it), keep (a widget shows the value Python holds),
the layer picker, preset sentences, and reading the words a user typed.

A page typically starts with

    ctx = session.require_model()           # the model chosen in the sidebar (stops with a message if none)
    layer = widgets.layer_picker(ctx)       # sidebar radio, kept across pages
    widgets.preset_buttons("text")          # sidebar buttons that fill the text box with key "text"
    tr = cached.get_trace(ctx, text)        # cached per (model, text); None after showing a message

and wraps its body in `with widgets.guard():` so that nothing ever leaves a traceback on the page.
"""
from __future__ import annotations

import contextlib
import logging

import streamlit as st

import explorer as E
from explorer.present.presets import DEFAULT_PRESET, PRESETS
from explorer.training.evals import BARTENDER_BOY, BARTENDER_GIRL

log = logging.getLogger("rnn_explorer.ui")

#: Longest stretch of tokens drawn at once; longer texts show a window that follows the selection.
WINDOW = 120
#: The bartender pair up to "Certainly," — where the model must choose miss or sir (Intervene, Patch, Probe).
BARTENDER_CLEAN = BARTENDER_GIRL
BARTENDER_CORRUPT = BARTENDER_BOY


# ---------------------------------------------------------------------------------------- errors
@contextlib.contextmanager
def guard(what: str = "this view"):
    """Show any error as a message instead of a traceback. ExplorerError messages are written for
    people and shown as they are; anything else is logged with its traceback on the server."""
    try:
        yield
    except E.ExplorerError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # noqa: BLE001 - the page must never show a traceback
        log.exception("error while drawing %s", what)
        st.error(f"Something went wrong while drawing {what}: {type(e).__name__}: {e}",
                  icon=":material/error:")


def friendly(e: Exception) -> str:
    """A user-typed word the vocabulary lacks raises ValueError/IndexError with a readable message."""
    msg = str(e).strip()
    return msg if msg[:1] in ("'", '"') else msg[:1].upper() + msg[1:]


# ---------------------------------------------------------------------------------------- charts
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": "hover",
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def chart(fig, key: str, downloads: bool = True):
    """Place a Plotly figure the same way on every page, with a Download menu under it (PNG, SVG,
    offline HTML, and the figure's data as CSV / Parquet / JSON; ui/downloads.py)."""
    st.plotly_chart(fig, key=key, theme=None, config=PLOT_CONFIG, width="stretch")
    if downloads:
        from ui.downloads import figure_menu
        figure_menu(fig, key)


# ------------------------------------------------------------------------------- shared controls
def keep(key: str, default=None):
    """Before a widget with this key is drawn: hand its value to the browser through the Session State
    API on every run (issue 14). A widget remounted after a page switch or a change above it otherwise
    shows its own default (index 0) or nothing, while Python holds the kept value."""
    ss = st.session_state
    if key in ss:
        ss[key] = ss[key]
    elif default is not None:
        ss[key] = default


def layer_picker(ctx) -> int:
    """Sidebar radio 'Layer 1 .. L' (key 'layer', kept across pages); returns the layer as everything
    in explorer takes it: 1 = the bottom layer."""
    n = ctx.layers
    if st.session_state.get("layer") not in range(1, n + 1):
        st.session_state["layer"] = n
    keep("layer")                    # the default (top layer) too, not only a layer the user clicked
    st.sidebar.subheader("Layer")
    return st.sidebar.radio("Layer", list(range(1, n + 1)), format_func=lambda l: f"Layer {l}",
                            key="layer", horizontal=True, label_visibility="collapsed",
                            persist_state="session",
                            help="Layer 1 reads the word embeddings; each higher layer reads the h of the one below.")


def _set_text(target: str, text: str):
    st.session_state[target] = text


def preset_buttons(target: str = "text"):
    """Sidebar buttons that put a preset sentence into the text widget with key `target`."""
    st.sidebar.subheader("Preset sentences")
    for i, (name, text) in enumerate(PRESETS.items()):
        st.sidebar.button(name, key=f"preset_{i}", on_click=_set_text, args=(target, text),
                          width="stretch", help=text)


def default_text() -> str:
    return PRESETS[DEFAULT_PRESET]


# ---------------------------------------------------------------------------------- typed words
def word_or_none(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw or None


def words_of(raw: str, limit: int = 6) -> tuple[str, ...]:
    """Comma-separated words, at most `limit`."""
    return tuple(w.strip() for w in (raw or "").split(",") if w.strip())[:limit]
