"""The data downloads under every chart (issue 22, item 7): the CSV / Parquet / JSON of a chart are the
numbers behind it with its labels: the words of a token axis or of a bar, the panel (h or c) a value
belongs to, never "trace 0"."""
from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.present import export as X

from apptest_support import open_page, specs
from conftest import TEXT

#: The pages with charts that open on a default text (the tiny test models).
PAGES = ["ui/pages/contrast.py", "ui/pages/compare.py", "ui/pages/memory.py", "ui/pages/generate.py",
         "ui/pages/intervene.py", "ui/pages/patch.py", "ui/pages/lesson.py"]


def _token_axis(layout: dict, ref: str, which: str) -> bool:
    """Whether the axis a trace is drawn on (following `matches`) carries tick text at its values."""
    seen = set()
    while ref and ref not in seen:
        seen.add(ref)
        ax = layout.get(which + "axis" + ref[1:]) or {}
        if ax.get("tickvals") is not None and ax.get("ticktext") is not None:
            return True
        ref = ax.get("matches")
    return False


def check_labels(spec: dict) -> list[str]:
    """What is wrong with figure_frame of one chart: unnamed traces, and values on a labelled (token)
    axis that come without their label."""
    fig = go.Figure(spec)
    df = X.figure_frame(fig)
    problems = []
    names = set(df["trace"])
    if len(names) > 1 and any(re.fullmatch(r"trace \d+", n) for n in names):
        problems.append(f"unnamed traces {sorted(names)}")
    for k, tr in enumerate(spec["data"]):
        name = set(X.figure_frame(go.Figure(dict(spec, data=[tr])))["trace"])
        rows = df[df["trace"].isin(name)] if len(name) == 1 else df
        for which in ("x", "y"):
            if not _token_axis(spec["layout"], tr.get(which + "axis", which), which):
                continue
            vals = rows[which]
            if not np.issubdtype(np.asarray(vals).dtype, np.number):
                continue                   # the values are the labels themselves
            got = rows.get(which + "_label")
            own = rows.get("label")
            ok = (got.notna() if got is not None else False) | (own.notna() if own is not None else False)
            if not bool(np.all(ok)):
                problems.append(f"trace {k} ({tr.get('type')}): {int((~np.asarray(ok)).sum())} of {len(rows)} "
                                f"values on the {which} axis have no label")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_every_chart_download_keeps_its_labels(models_dir, monkeypatch, tmp_path, page):
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    at = open_page(models_dir, monkeypatch, page, errors_ok=True)
    charts = specs(at)
    assert charts, f"{page} drew no chart"
    bad = {}
    for s in charts:
        view = (s["layout"].get("meta") or {}).get("view") or (s["layout"].get("title") or {}).get("text", "")[:40]
        got = check_labels(s)
        if got:
            bad[view] = got
    assert not bad, bad


def test_patch_grid_names_its_panels_h_and_c():
    from explorer.present import causal_figures

    class Grid:
        quantities = ("h", "c")
        metric = np.zeros((2, 2, 3))
        restored = np.array([[[0.1, 0.5, 0.9], [0.0, 0.2, 0.4]], [[0.3, 0.1, 0.0], [0.7, 0.6, 0.5]]])
        target, versus, metric_clean, metric_corrupt = "she", "he", 1.0, -1.0
        clean_tokens = ["the", "cat", "sat"]

        def labels(self):
            return ["the", "cat", "sat"]

    df = X.figure_frame(causal_figures.patch_heatmap(Grid()))
    assert set(df["trace"]) == {"h", "c"}
    h = df[df["trace"] == "h"]
    assert list(h["label"][:3]) == ["the", "cat", "sat"] and list(h["y"][:3]) == ["layer 1"] * 3
    assert h["value"].tolist()[:3] == [0.1, 0.5, 0.9]


def test_next_word_data_has_the_words(tiny_lstm):
    from explorer.present import figures
    tr = tiny_lstm.trace("the cat sat on the mat")
    df = X.figure_frame(figures.topk_figure(tr, 2, k=5))
    assert df["y_label"].notna().all() and df["label"].notna().all()
    words = set(df["label"])
    assert words <= set(tiny_lstm.tokenizer.itos) | {"␣", "⏎"} or all(w for w in words)
    assert np.allclose(sorted(df["x"], reverse=True), df["x"])        # the bars' probabilities, best first


def test_generation_bars_data_has_the_tokens(tiny_lstm):
    from explorer.present import analysis_figures as A
    from explorer.analysis.generate import generate_trace
    gen = generate_trace(tiny_lstm, "the cat", n=8, seed=1)
    df = X.figure_frame(A.generation_bars(gen))
    assert df["label"].notna().all() and len(df) == len(gen.frame())


def test_a_failed_image_export_says_why_in_the_page(models_dir, monkeypatch, tmp_path):
    """Issue 22, item 14: a PNG/SVG that Kaleido cannot draw gives a message in the page (a deferred
    download that fails shows nothing there)."""
    from explorer.errors import ExplorerError
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))

    def broken(fig, fmt, scale=2.0):
        raise ExplorerError("Kaleido could not draw the PNG (BrowserFailedError: no browser)")

    monkeypatch.setattr(X, "image_problem", lambda: None)
    monkeypatch.setattr(X, "figure_image", broken)
    at = open_page(models_dir, monkeypatch, "ui/pages/contrast.py")
    key = next(b.key for b in at.button if b.key and b.key.endswith("__dl_png"))
    at.button(key=key).click().run()
    msgs = [e.value for e in at.error]
    assert any("PNG could not be made" in m and "BrowserFailedError" in m for m in msgs), msgs


def test_no_chromium_turns_image_export_off_with_the_reason(models_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(X, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert "Chromium" in X.image_problem()
    at = open_page(models_dir, monkeypatch, "ui/pages/contrast.py")
    pngs = [b for b in at.button if b.key and b.key.endswith("__dl_png")]
    assert pngs and all(b.disabled for b in pngs)
    assert any("needs Chromium" in c.value for c in at.caption)


#: Long texts, where a token axis shows only every k-th label: the data must still name every token.
LONG = " ".join((TEXT.split() * 3)[:90])
LONG_STATE = {"ui/pages/contrast.py": {"ct_a": LONG, "ct_b": LONG.replace(" she ", " he ", 1) + " again"},
              "ui/pages/memory.py": {"mem_text": LONG},
              "ui/pages/generate.py": {"gen_prompt": LONG}}


@pytest.mark.parametrize("page", list(LONG_STATE))
def test_long_text_chart_downloads_name_every_token(models_dir, monkeypatch, tmp_path, page):
    from apptest_support import assert_clean, new_app
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    at = new_app(models_dir, monkeypatch)
    at.switch_page(page)
    for k, v in LONG_STATE[page].items():
        at.session_state[k] = v
    at.run()
    assert_clean(at)
    charts = specs(at)
    thinned = [s for s in charts for k, ax in s["layout"].items() if k.startswith(("xaxis", "yaxis"))
               and isinstance(ax, dict) and ax.get("tickvals") and len(ax["tickvals"]) >= 2
               and ax["tickvals"][1] - ax["tickvals"][0] > 1]
    assert thinned, "no chart thinned its token labels: the text is not long enough for this check"
    bad = {(s["layout"].get("meta") or {}).get("view", "?"): check_labels(s) for s in charts if check_labels(s)}
    assert not bad, bad
