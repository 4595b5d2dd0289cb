"""Streamlit front end (see app.py). ui/pages/ holds one script per page; the modules here are the
shared parts, one job each:

    session           the model chosen in the sidebar (ModelContext) and the address bar (URL state)
    lecture           the presenter view (?present=1) and its switch; clicker: a presentation remote's keys
    sidebar           the model picker and the upload box; uploads: bundle zips; importing: checkpoints
    cached            models, traces and n-grams, loaded or computed once and shared by every session
    cached_analysis   cached calls of Contrast, Compare, Memory, Generate, Lesson and Evaluate (explorer.analysis)
    cached_causal     cached calls of Intervene, Patch and Probe (explorer.analysis intervene/patch/probe)
    corpus_index      the corpus and its index for the sidebar's model, and the cached corpus queries
    jobs              background jobs, one per server (a corpus index build), watched by every session
    widgets           shared controls and placement: guard, charts, the layer picker, preset sentences
    downloads         the Download menus under the views and the charts
    player_component  the Explore player (explorer/present/assets/player.js) as a Streamlit component

Pages import these modules, never each other; these modules never import a page
(tests/test_layout.py checks both, and that no two ui/ modules import each other in a circle).
"""
from pathlib import Path

#: The repository folder (the shipped models, the held-out books); ../shared lies beside it.
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
