"""The Contrast, Memory, Generate and Lesson pages in headless Chromium (Playwright): open each page,
interact, check that the charts render and no exception element appears; save screenshots to
docs/screenshots/ (contrast.png, memory.png, generate.png, lesson.png and a few more).

Uses the shipped fiction-lstm and fiction-rnn when they are present (the screenshots are taken only
then), the tiny test bundles otherwise. Skips only where Chromium is absent (RNN_EXPLORER_CHROMIUM
overrides /usr/bin/chromium). The server, browser, page and models folder are conftest.py's fixtures,
the helpers tests/browser_support.py's. Issue 14's checks (long texts stay bounded, widgets keep their
values) run on a server of the tiny LSTM and a tiny character model: TestOnATinyCharacterModel.
"""
from __future__ import annotations

import urllib.parse

import pytest

from browser_support import (BROWSER_MARKS, FICTION_MODELS as REAL, OnTinyCharServer, chart_titles, idle,
                             no_exceptions, open_page, real_models, shoot, wait_charts, wait_idle)

pytestmark = BROWSER_MARKS


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


# ------------------------------------------- issue 14: long texts stay bounded, widgets keep their values
_W = ("Mary loves John and the bartender said miss to the girl who walked into a bar and she said Holmes "
      "looked at me").split()
LONG = " ".join(_W[i % len(_W)] for i in range(1000)) + "."


def drawn(pg) -> dict:
    """Tick labels per Plotly x axis (the most), chips or columns per strip (the most)."""
    return pg.evaluate("""() => ({
      ticks: Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')].map(p =>
                 p.querySelectorAll('.xtick').length)),
      chips: Math.max(0, ...[...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip]')]
                 .map(s => s.querySelectorAll('[data-pos]').length)),
      charts: document.querySelectorAll('.js-plotly-plot').length})""")


def fill(pg, selector: str, text: str, nth: int = 0):
    box = pg.locator(selector).nth(nth)
    box.fill(text)
    box.press("Control+Enter" if "textarea" in selector else "Enter")
    idle(pg, 2.0)


def checked(pg) -> list[list[bool]]:
    return pg.evaluate("() => [...document.querySelectorAll('[data-testid=stRadio]')]"
                       ".map(r => [...r.querySelectorAll('input')].map(i => i.checked))")


def slider_value(pg) -> str:
    return pg.locator('[data-testid="stSlider"] [data-testid="stSliderThumbValue"]').first.inner_text().strip()


class TestOnATinyCharacterModel(OnTinyCharServer):
    """On a server of the tiny LSTM and a tiny character model (conftest.py's char_server): a
    1,000-word text draws a bounded number of labels and columns on Contrast, Generate and Lesson (the
    time it takes is measured by benchmarks/long_text_pages.py, never asserted), and widgets show the
    value Python keeps after page changes. AppTest twins: tests/test_pages_analysis.py."""

    @pytest.mark.parametrize("path,selector,nth", [("/contrast", "textarea", 0), ("/generate", "input[type=text]", 0),
                                                   ("/lesson", "textarea", 0)])
    def test_a_1000_word_text_draws_a_bounded_page(self, server, pg, path, selector, nth, tmp_path):
        open_page(pg, server, path)
        fill(pg, f'[data-testid="stMain"] {selector}', LONG, nth)
        pg.wait_for_function("() => [...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip]')]"
                             ".some(e => +e.dataset.n > 1000)")                # the long text is the one drawn
        idle(pg, 1.0)
        assert pg.locator('[data-testid="stException"]').count() == 0
        d = drawn(pg)
        assert d["charts"] >= 1 and d["ticks"] <= 2 * 41 and d["chips"] <= 120, d      # an axis may repeat (subplots)
        pg.screenshot(path=str(tmp_path / f"long{path.replace('/', '-')}.png"), full_page=True)

    def test_widgets_show_the_kept_values_after_page_changes(self, server, pg):
        open_page(pg, server, "/")
        pg.get_by_role("link", name="Contrast").click()
        idle(pg, 2)
        assert checked(pg)[0] == [False, True]                   # Layer 2, the default, not Layer 1
        pg.get_by_role("link", name="Memory").click()
        idle(pg, 2)
        assert checked(pg)[0] == [False, True]
        kept = slider_value(pg)
        assert kept and not kept.startswith("0 ")
        pg.get_by_role("link", name="Explore").click()
        idle(pg, 2)
        pg.get_by_role("link", name="Memory").click()
        idle(pg, 2)
        assert slider_value(pg) == kept                          # not "0 · <eos>"
        fill(pg, '[data-testid="stMain"] textarea', "Mary loves John and John loves Mary.")
        assert all(any(r) for r in checked(pg)), checked(pg)     # every radio shows an option
