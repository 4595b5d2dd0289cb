"""RNN State Explorer: the Streamlit front end.  Run:  streamlit run app.py

The entrypoint sets the page up, draws the shared model sidebar (kept across pages) and hands over to
the page chosen in the navigation. Pages live in ui/pages/ (one script each); the shared parts of the
front end are the modules of ui/, one job each (ui/__init__.py lists them). The front end only wires
widgets to `explorer` calls: every number and figure comes from explorer/.
"""
from pathlib import Path

import streamlit as st

from ui import lecture, session, sidebar, widgets

# The tab icon is a file shipped with the app: a ":material/...:" icon is fetched from an external font
# host by the browser on every page (the app must work offline; issue 14).
FAVICON = Path(__file__).resolve().parent / "ui" / "assets" / "favicon.svg"
st.set_page_config(page_title="RNN State Explorer", page_icon=str(FAVICON), layout="wide",
                   initial_sidebar_state="expanded")

# Sections of the navigation. New pages are added here; each page is a script in ui/pages/ that starts
# with `ctx = session.require_model()` (tests/test_layout.py checks that every script there is listed).
PAGES = {
    "Explore": [
        st.Page("ui/pages/explore.py", title="Explore", icon=":material/visibility:", default=True),
        st.Page("ui/pages/contrast.py", title="Contrast", icon=":material/compare_arrows:"),
        st.Page("ui/pages/compare.py", title="Compare models", icon=":material/difference:"),
        st.Page("ui/pages/memory.py", title="Memory", icon=":material/memory:"),
        st.Page("ui/pages/generate.py", title="Generate", icon=":material/edit_note:"),
    ],
    "Corpus": [
        st.Page("ui/pages/corpus.py", title="Corpus", icon=":material/manage_search:"),
        st.Page("ui/pages/units.py", title="Units", icon=":material/neurology:"),
    ],
    "Cause": [
        st.Page("ui/pages/intervene.py", title="Intervene", icon=":material/tune:"),
        st.Page("ui/pages/patch.py", title="Patch", icon=":material/healing:"),
        st.Page("ui/pages/probe.py", title="Probe", icon=":material/troubleshoot:"),
        st.Page("ui/pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    ],
    "Learn": [
        st.Page("ui/pages/lesson.py", title="Lesson", icon=":material/school:"),
        st.Page("ui/pages/train.py", title="Train", icon=":material/model_training:"),
    ],
    "Help": [
        st.Page("ui/pages/guide.py", title="How to read it", icon=":material/menu_book:"),
    ],
}

page = st.navigation(PAGES, position="sidebar", expanded=True)   # every page listed, none behind "View more"
with widgets.guard("the sidebar"):
    session.open_address(page)         # ?present=1, ?model=NAME: read once, from the address opened
    lecture.presenter_switch()         # the presenter view's switch (and, when on, its style)
    sidebar.model_sidebar()
page.run()
with widgets.guard("the address"):
    session.url_flush()                # the page's keys (session.url_state) as the page left them
