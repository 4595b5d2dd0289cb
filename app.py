"""RNN State Explorer: the Streamlit front end.  Run:  streamlit run app.py

The entrypoint sets the page up, draws the shared model sidebar (kept across pages) and hands over to
the page chosen in the navigation. Pages live in ui/; shared helpers in ui/common.py. The front end
only wires widgets to `explorer` calls: every number and figure comes from explorer/.
"""
from pathlib import Path

import streamlit as st

from ui import common

# The tab icon is a file shipped with the app: a ":material/...:" icon is fetched from an external font
# host by the browser on every page (the app must work offline; issue 14).
FAVICON = Path(__file__).resolve().parent / "ui" / "assets" / "favicon.svg"
st.set_page_config(page_title="RNN State Explorer", page_icon=str(FAVICON), layout="wide",
                   initial_sidebar_state="expanded")

# Sections of the navigation. New pages (Contrast, Memory, Lesson, ...) are added here; each page is
# a script in ui/ that starts with `ctx = common.require_model()`.
PAGES = {
    "Explore": [
        st.Page("ui/explore.py", title="Explore", icon=":material/visibility:", default=True),
        st.Page("ui/contrast.py", title="Contrast", icon=":material/compare_arrows:"),
        st.Page("ui/memory.py", title="Memory", icon=":material/memory:"),
        st.Page("ui/generate.py", title="Generate", icon=":material/edit_note:"),
    ],
    "Corpus": [
        st.Page("ui/corpus.py", title="Corpus", icon=":material/manage_search:"),
        st.Page("ui/units.py", title="Units", icon=":material/neurology:"),
    ],
    "Cause": [
        st.Page("ui/intervene.py", title="Intervene", icon=":material/tune:"),
        st.Page("ui/patch.py", title="Patch", icon=":material/healing:"),
        st.Page("ui/probe.py", title="Probe", icon=":material/troubleshoot:"),
        st.Page("ui/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    ],
    "Learn": [
        st.Page("ui/lesson.py", title="Lesson", icon=":material/school:"),
        st.Page("ui/train.py", title="Train", icon=":material/model_training:"),
    ],
    "Help": [
        st.Page("ui/guide.py", title="How to read it", icon=":material/menu_book:"),
    ],
}

page = st.navigation(PAGES, position="sidebar", expanded=True)   # every page listed, none behind "View more"
with common.guard("the sidebar"):
    common.lecture_mode(page)          # ?present=1, ?model=NAME, the presenter switch
    common.model_sidebar()
page.run()
