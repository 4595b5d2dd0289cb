"""The Explore page's downloads through AppTest: data, figure and "copy as Python" for the selected
view (ui/downloads.py); the snippet it shows runs and rebuilds the same figure."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def test_explore_offers_downloads_and_python(models_dir, monkeypatch):
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models_dir))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert len(at.get("download_button")) == 9       # states and predictions x 3, the figure x 3
    code = at.code[-1].value
    assert "E.load_model(" in code and "export.build_figure('heatmaps'" in code
    at.selectbox(key="dl_figure").set_value("step").run()
    assert not at.exception
    code = at.code[-1].value
    assert "build_figure('step'" in code
    ns: dict = {}
    exec(compile(code, "<copied>", "exec"), ns)
    assert ns["fig"].layout.meta["layer"] == 1 and len(ns["states"]) > 0
