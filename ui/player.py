"""The Explore page's player: a Streamlit v2 component (ui/assets/player.js and player.css) that draws
explorer.present.player.player_data and steps through the tokens in the browser.

Mounted in the page's DOM (isolate_styles=False; every class is prefixed) so that browser tests and
benchmarks/app_latency.py can read it. Its state goes back to Python as `pos` ({"pos", "sig"}: the
selected token of the text `sig`) and `view` (the heatmap tab).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.present import figures as F

_ASSETS = Path(__file__).resolve().parent / "assets"

_component = st.components.v2.component(
    "rnn_explorer_player",
    js=(_ASSETS / "player.js").read_text(encoding="utf-8"),
    # the chips look the same as in every other strip of the app (figures.TOKEN_STRIP_CSS)
    css=F.TOKEN_STRIP_CSS.replace("<style>", "").replace("</style>", "") + (_ASSETS / "player.css").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def mount(data: dict, *, key: str, on_pos_change, on_view_change):
    """Place the player; returns its result (states `pos` and `view`).

    The data goes as a one-element list: Streamlit scans the values of a dict for DataFrames, and
    that check imports pandas (0.4 s of the app's cold start) although the player has none."""
    return _component(key=key, data=[data], on_pos_change=on_pos_change, on_view_change=on_view_change)
