"""The Intervene, Patch and Probe pages in headless Chromium (Playwright): open each page, interact,
check that the charts render and no exception element appears; save screenshots to docs/screenshots/
(intervene.png, patch.png, probe.png) when the shipped fiction-lstm and fiction-rnn are present.

The probe test needs the held-out books (../shared/data/fiction) with the shipped models and skips
without them. Skips only where Chromium is absent otherwise. The server, browser, page and models
folder are conftest.py's fixtures, the helpers tests/browser_support.py's."""
from __future__ import annotations

import re

import pytest

from browser_support import (BROWSER_MARKS, ROOT, chart_titles, no_exceptions as _no_exceptions, real_models,
                             shoot as _shoot, wait_charts, wait_idle)

FICTION = ROOT.parent / "shared" / "data" / "fiction"
pytestmark = BROWSER_MARKS


def no_exceptions(pg):
    _no_exceptions(pg, alerts=True)


def shoot(pg, name: str, max_height: int = 6000):
    _shoot(pg, name, max_height)


def test_patch_page(pg, server):
    pg.goto(server + "/patch")
    summary = pg.locator('[data-testid="patch-summary"]')
    summary.wait_for()
    pg.locator('[data-testid="patch-cell"]').wait_for()
    wait_charts(pg, 2)
    wait_idle(pg)
    no_exceptions(pg)
    titles = chart_titles(pg)
    assert any(t.startswith("Restored share of log P(miss) − log P(sir)") for t in titles), titles
    assert any(t.startswith("Patched ") for t in titles), titles
    assert "Strongest cells" in summary.inner_text()
    # the heatmap has one row per layer and a column per token in each panel (h, c for an LSTM)
    assert pg.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    # the patched run in the player, opened at the patched position
    player = pg.locator('[data-testid="player"]')
    player.wait_for()
    pg.wait_for_function("() => { const p = document.querySelector('[data-testid=\"player\"]');"
                         " return p && p.dataset.selected !== undefined && p.querySelector('[data-testid=\"step-topk\"]'); }")
    pos = pg.locator('[data-testid="patch-cell"]').inner_text().split("(position ")[1].split(")")[0]
    assert player.get_attribute("data-selected") == pos
    assert pg.locator('[data-testid="player"] .tok').count() >= 20
    first = pg.locator('[data-testid="patch-cell"]').inner_text()
    shoot(pg, "patch.png")
    pg.get_by_role("button", name="Bartender pair: girl / she vs boy / he").click()
    wait_idle(pg)
    assert pg.locator('[data-testid="patch-cell"]').inner_text() == first


def test_intervene_page(pg, server):
    pg.goto(server + "/intervene")
    readout = pg.locator('[data-testid="iv-readout"]')
    readout.wait_for()
    wait_charts(pg, 3)
    wait_idle(pg)
    no_exceptions(pg)
    before = readout.inner_text()
    assert re.search(r"[hc]\[[\d, ]+\] set to 0", before) and "P(miss)" in before
    titles = chart_titles(pg)
    for start in ("What the change does to the next-word predictions", "What the change does to the later states",
                  "Next word after"):
        assert any(t.startswith(start) for t in titles), (start, titles)
    value = pg.get_by_label("Value")
    value.fill("5")
    value.press("Enter")
    pg.wait_for_function("(t) => document.querySelector('[data-testid=\"iv-readout\"]')?.innerText !== t", arg=before)
    wait_charts(pg, 3)
    wait_idle(pg)
    no_exceptions(pg)
    assert "set to 5" in readout.inner_text()
    shoot(pg, "intervene.png")


@pytest.mark.skipif(not (FICTION.is_dir() and real_models()), reason="needs ../shared/data/fiction and the shipped models")
def test_probe_page(pg, server):
    pg.goto(server + "/probe")
    pg.get_by_text("Switch on Fit").wait_for()
    no_exceptions(pg)
    pg.locator('[data-testid="stCheckbox"]').filter(has_text="Fit").locator("label").click()
    verdict = pg.locator('[data-testid="probe-verdict"]')
    verdict.wait_for(timeout=300_000)
    wait_charts(pg, 2)
    wait_idle(pg)
    no_exceptions(pg)
    text = verdict.inner_text()
    assert "control task" in text and "selectivity" in text and "Verdict" in text
    assert any(t.startswith("Probe for “quote”") for t in chart_titles(pg))
    shoot(pg, "probe.png")


def test_evaluate_page(pg, server):
    pg.goto(server + "/evaluate")
    pg.get_by_text("The items a model gets wrong", exact=True).wait_for(timeout=600_000)
    wait_idle(pg)
    no_exceptions(pg)
    find = pg.get_by_role("button", name=re.compile("^Find the items"))
    if find.count():                          # the items are scored when asked for (recorded results show at once)
        find.click()
    pg.get_by_role("button", name="Open in Contrast").wait_for(timeout=600_000)
    wait_idle(pg)
    assert pg.locator('[data-testid="stDataFrame"]').count() >= 2
    pg.get_by_role("button", name="Open in Contrast").wait_for()
    shoot(pg, "evaluate.png")
    pg.get_by_role("button", name="Open in Contrast").click()
    pg.locator('[data-testid="pair-strip"]').wait_for()
    wait_idle(pg)
    no_exceptions(pg)
    assert "/contrast" in pg.url
