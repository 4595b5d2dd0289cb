"""The Intervene, Patch and Probe pages in headless Chromium (Playwright): open each page, interact,
check that the charts render and no exception element appears; save screenshots to docs/screenshots/
(intervene.png, patch.png, probe.png) when the shipped fiction-lstm and fiction-rnn are present.

The probe test needs the held-out books (../shared/data/fiction) with the shipped models and skips
without them. Skips only where Chromium is absent otherwise (tests/browser_support.py)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browser_support import chromium, BROWSER_MARKS, ROOT, SHOTS, running_server

REAL = {"fiction-lstm": ROOT / "pretrained" / "fiction-lstm", "fiction-rnn": ROOT / "pretrained" / "fiction-rnn"}
FICTION = ROOT.parent / "shared" / "data" / "fiction"
WIDTH = 1500
pytestmark = BROWSER_MARKS


def real_models() -> bool:
    return all((p / "card.json").is_file() for p in REAL.values())


@pytest.fixture(scope="module")
def browser_models(models_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser-causal-models")
    if real_models():
        for name, path in REAL.items():
            (root / name).symlink_to(path, target_is_directory=True)
    else:
        for name in ("tiny-lstm", "tiny-rnn"):
            (root / name).symlink_to(models_dir / name, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def server(browser_models, tmp_path_factory):
    with running_server(browser_models, tmp_path_factory.mktemp("server-causal") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


@pytest.fixture
def pg(browser):
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    page.set_default_timeout(120_000)
    yield page
    page.close()


def no_exceptions(pg):
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()
    err = pg.locator('[data-testid="stAlertContentError"]')
    assert err.count() == 0, err.first.inner_text()


def wait_charts(pg, n: int):
    pg.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}")


def wait_idle(pg, settle: float = 1.0):
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    time.sleep(settle)


def chart_titles(pg) -> list[str]:
    return pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")


def shoot(pg, name: str, max_height: int = 6000):
    if not real_models():
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    h = pg.evaluate("() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
                    " if (!m) return 2000;"
                    " const b = Array.from(m.querySelectorAll('[data-testid=\"stElementContainer\"]'))"
                    "   .filter(e => e.checkVisibility() && e.getBoundingClientRect().height > 0)"
                    "   .map(e => e.getBoundingClientRect().bottom);"
                    " return Math.ceil(Math.max(...b, 0)) + 80; }")
    old = pg.viewport_size
    pg.set_viewport_size({"width": old["width"], "height": min(max(int(h), 900), max_height)})
    time.sleep(1.5)
    pg.screenshot(path=str(SHOTS / name))
    pg.set_viewport_size(old)
    time.sleep(0.3)


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
    assert re.search(r"c\[[\d, ]+\] set to 0", before) and "P(miss)" in before
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
    pg.get_by_text("The items a model gets wrong").wait_for(timeout=600_000)
    wait_idle(pg)
    no_exceptions(pg)
    assert pg.locator('[data-testid="stDataFrame"]').count() >= 2
    pg.get_by_role("button", name="Open in Contrast").wait_for()
    shoot(pg, "evaluate.png")
    pg.get_by_role("button", name="Open in Contrast").click()
    pg.locator('[data-testid="pair-strip"]').wait_for()
    wait_idle(pg)
    no_exceptions(pg)
    assert "/contrast" in pg.url
