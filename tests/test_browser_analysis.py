"""The Contrast, Memory, Generate and Lesson pages in headless Chromium (Playwright): open each page,
interact, check that the charts render and no exception element appears; save screenshots to
docs/screenshots/ (contrast.png, memory.png, generate.png, lesson.png and a few more).

Uses the shipped fiction-lstm and fiction-rnn when they are present (the screenshots are taken only
then), the tiny test bundles otherwise. Skips only where Chromium is absent (RNN_EXPLORER_CHROMIUM
overrides /usr/bin/chromium). The server helpers are in tests/browser_support.py.
"""
from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest

from browser_support import (BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, ROOT, SHOTS,
                             running_server)

REAL = {"fiction-lstm": ROOT / "pretrained" / "fiction-lstm", "fiction-rnn": ROOT / "pretrained" / "fiction-rnn"}
WIDTH = 1500
pytestmark = BROWSER_MARKS


def real_models() -> bool:
    return all((p / "card.json").is_file() for p in REAL.values())


@pytest.fixture(scope="module")
def browser_models(models_dir, tmp_path_factory) -> Path:
    """The shipped fiction-lstm and fiction-rnn when both exist, else the tiny LSTM and RNN."""
    root = tmp_path_factory.mktemp("browser-analysis-models")
    if real_models():
        for name, path in REAL.items():
            (root / name).symlink_to(path, target_is_directory=True)
    else:
        for name in ("tiny-lstm", "tiny-rnn"):
            (root / name).symlink_to(models_dir / name, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def server(browser_models, tmp_path_factory):
    with running_server(browser_models, tmp_path_factory.mktemp("server-analysis") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def pg(browser):
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    page.set_default_timeout(90_000)
    yield page
    page.close()


# ------------------------------------------------------------------------------------ helpers
def no_exceptions(pg):
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()


def wait_charts(pg, n: int):
    pg.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}")


def chart_titles(pg) -> list[str]:
    return pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")


def wait_idle(pg, settle: float = 1.0):
    """Until Streamlit has finished the current run (no 'Running…' status) and the page settled."""
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    time.sleep(settle)


def shoot(pg, name: str, max_height: int = 7000):
    """Full-page screenshot: Streamlit scrolls inside its own container, so the viewport is grown to the
    content's height first. Taken only with the shipped models (the docs show the real thing)."""
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


# -------------------------------------------------------------------------------------- tests
def test_contrast_page(pg, server):
    pg.goto(server + "/contrast")
    pg.locator('[data-testid="pair-strip"]').wait_for()
    wait_charts(pg, 4)
    wait_idle(pg)
    no_exceptions(pg)
    titles = chart_titles(pg)
    assert any(t.startswith("The chosen words") for t in titles), titles
    assert any(t.startswith("How far apart") for t in titles)
    assert pg.locator('[data-testid="pair-strip"] .lx-col.diff').count() == 3
    assert "differ in their words" in pg.locator('[data-testid="bag-line"]').inner_text()
    shoot(pg, "contrast.png")
    pg.get_by_role("button", name="Mary loves John . / John loves Mary .").click()
    pg.wait_for_function("document.querySelector('[data-testid=\"bag-line\"]')?.textContent.includes('identical')")
    pg.wait_for_function("document.querySelector('[data-testid=\"pair-strip\"]')?.dataset.n === '5'")
    wait_charts(pg, 4)
    wait_idle(pg)
    no_exceptions(pg)
    shoot(pg, "contrast-mary-john.png")


def test_memory_page(pg, server):
    pg.goto(server + "/memory")
    pg.locator('[data-testid="attr-strip"]').wait_for()
    pg.locator('[data-testid="provenance-check"]').wait_for()
    pg.locator('[data-testid="fade-summary"]').wait_for()
    wait_charts(pg, 4)
    no_exceptions(pg)
    pg.get_by_role("button", name="Example: miss versus sir").click()
    pg.wait_for_function("document.querySelector('[data-testid=\"attr-strip\"]')?.dataset.target === 'miss'")
    wait_charts(pg, 4)
    wait_idle(pg)
    no_exceptions(pg)
    titles = chart_titles(pg)
    for start in ("c = ", "What each token wrote", "Memory half-life"):
        assert any(t.startswith(start) for t in titles), (start, titles)
    check = pg.locator('[data-testid="provenance-check"]').inner_text()
    assert "Check:" in check and "difference" in check
    assert pg.locator('[data-testid="attr-strip"] .lx-chip').count() >= 5
    shoot(pg, "memory.png")


def test_generate_page(pg, server):
    pg.goto(server + "/generate")
    out = pg.locator('[data-testid="generated-text"]')
    out.wait_for()
    wait_charts(pg, 4)
    wait_idle(pg)
    no_exceptions(pg)
    first = out.inner_text()
    pg.get_by_role("button", name="New seed").click()
    pg.wait_for_function("(t) => document.querySelector('[data-testid=\"generated-text\"]')?.innerText !== t", arg=first)
    wait_charts(pg, 4)
    wait_idle(pg)
    no_exceptions(pg)
    assert any("fed back" in t for t in chart_titles(pg))
    shoot(pg, "generate.png")


def test_lesson_page(pg, server):
    text = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,'
    pg.goto(server + "/lesson?" + urllib.parse.urlencode({"step": "bartender", "text": text}))
    pg.locator('[data-testid="attribution-readout"]').wait_for()
    wait_charts(pg, 1)
    wait_idle(pg)
    no_exceptions(pg)
    assert pg.locator('[data-testid="attr-strip"]').count() == 2
    assert "girl" in pg.locator('[data-testid="attribution-readout"]').inner_text()
    assert "step=bartender" in pg.url
    shoot(pg, "lesson.png")
    # the steps are a segmented control (radio buttons); the URL follows them
    pg.get_by_role("radio", name="2 · Order matters").click()
    pg.locator('[data-testid="order-readout"]').wait_for()
    pg.wait_for_function("() => location.search.includes('step=order')")
    wait_charts(pg, 2)
    wait_idle(pg)
    no_exceptions(pg)
    shoot(pg, "lesson-order.png")
    pg.get_by_role("radio", name="4 · The unrolled network").click()
    pg.wait_for_function("() => location.search.includes('step=unrolled')")
    wait_charts(pg, 1)
    wait_idle(pg)
    no_exceptions(pg)
    assert any(t.startswith("The network unrolled") for t in chart_titles(pg))
    shoot(pg, "lesson-unrolled.png")
    pg.get_by_role("radio", name="1 · Reading word by word").click()
    pg.locator('[data-testid="reading-readout"]').wait_for()
    pg.get_by_role("button", name="Next word").click()
    pg.wait_for_function("() => location.search.includes('pos=2')")
    wait_charts(pg, 3)
    wait_idle(pg)
    no_exceptions(pg)
    assert "girl" in pg.locator('[data-testid="reading-readout"]').inner_text()
    shoot(pg, "lesson-reading.png")


def test_lesson_shapes(pg, server):
    pg.goto(server + "/lesson?step=shapes&shape=many-to-one")
    pg.locator('[data-testid="shape-readout"]').wait_for()
    wait_idle(pg)
    no_exceptions(pg)
    if real_models() and (REAL["fiction-lstm"] / "classifier" / "classifier.json").is_file():
        wait_charts(pg, 1)
        assert any(t.startswith("Who wrote it?") for t in chart_titles(pg))
    else:
        assert pg.get_by_text("python -m explorer classify").count() >= 1
    shoot(pg, "lesson-many-to-one.png")
    shots = {"many-to-many (synced)": "lesson-synced.png", "encoder → decoder": "lesson-encoder.png"}
    for label in ("many-to-many (synced)", "encoder → decoder", "one-to-many", "one-to-one"):
        pg.get_by_role("radio", name=label, exact=True).click()
        pg.wait_for_function("(l) => Array.from(document.querySelectorAll('[role=radio][aria-checked=true]'))"
                             ".some(b => b.textContent === l)", arg=label)
        wait_idle(pg, 1.5)
        no_exceptions(pg)
        if label in shots:
            shoot(pg, shots[label])
    pg.wait_for_function("() => location.search.includes('shape=one-to-one')")
