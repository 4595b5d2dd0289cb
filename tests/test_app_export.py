"""The Explore page's downloads through AppTest: data, figure and "copy as Python" for the selected
view (ui/downloads.py); the snippet it shows runs and rebuilds the same figure."""
from __future__ import annotations

from apptest_support import new_app


def test_explore_offers_downloads_and_python(models_dir, monkeypatch):
    at = new_app(models_dir, monkeypatch).run()
    assert not at.exception
    assert len(at.get("download_button")) == 7       # states and predictions x 3, the figure as HTML
    assert {"dl_fig__dl_png", "dl_fig__dl_svg"} <= {b.key for b in at.button}   # PNG/SVG: drawn, then saved
    code = at.code[-1].value
    assert "E.load_model(" in code and "export.build_figure('heatmaps'" in code
    at.selectbox(key="dl_figure").set_value("step").run()
    assert not at.exception
    code = at.code[-1].value
    assert "build_figure('step'" in code
    ns: dict = {}
    exec(compile(code, "<copied>", "exec"), ns)
    assert ns["fig"].layout.meta["layer"] == 2 and len(ns["states"]) > 0        # the top layer, as the page shows
