"""The player of the Explore and Patch pages as a Streamlit v2 component: it draws a
explorer.present.player.PlayerData and steps through the tokens in the browser. Its JavaScript and
CSS live beside the Python that builds that data (explorer/present/assets/); the notebook widget
(explorer.present.widget) runs the same files.

Mounted in the page's DOM (isolate_styles=False; every class is prefixed) so that browser tests and
benchmarks/app_latency.py can read it. Its state goes back to Python as `pos` ({"pos", "sig"}: the
selected token of the text `sig`) and `view` (the heatmap tab).
"""
from __future__ import annotations

import streamlit as st

from explorer.present.player import PlayerData, player_script, player_stylesheet

_component = st.components.v2.component(
    "rnn_explorer_player",
    js=player_script(),
    # the chips look the same as in every other strip of the app (figures.TOKEN_STRIP_CSS)
    css=player_stylesheet(),
    isolate_styles=False,
)


def mount(data: PlayerData, *, key: str, on_pos_change, on_view_change):
    """Place the player; returns its result (states `pos` and `view`).

    The data goes as a one-element list: Streamlit scans the values of a dict for DataFrames, and
    that check imports pandas (0.4 s of the app's cold start) although the player has none."""
    if not isinstance(data, PlayerData):
        raise TypeError(f"the player draws a PlayerData, not {type(data).__name__}")
    return _component(key=key, data=[data.to_json()], on_pos_change=on_pos_change, on_view_change=on_view_change)
