"""Issue 14's app items that only show in a browser, in headless Chromium (Playwright) on the tiny test
bundles plus a tiny character model: no request leaves localhost (tab icon, play/pause icon), a 1,000-word
text draws a bounded number of labels and columns on Contrast, Generate and Lesson (the time it takes
is measured by benchmarks/long_text_pages.py, never asserted), widgets show the value Python keeps after
page changes, and whitespace has its own glyphs in the player. AppTest twins: tests/test_app_defects.py."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_support import chromium, BROWSER_MARKS, running_server

pytestmark = BROWSER_MARKS

STRIP = '[data-testid="token-strip"]'
PLAYER = '[data-testid="player"]'


@pytest.fixture(scope="module")
def defect_models(models_dir, tmp_path_factory) -> Path:
    from conftest import TEXT
    from explorer import save_bundle
    from test_char_cells import _char_model
    root = tmp_path_factory.mktemp("defect-models")
    (root / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    m = _char_model(TEXT + "\t")
    save_bundle(root / "tiny-char", m.lm, m.tokenizer, {"name": "tiny-char", "metrics": {}})
    return root


@pytest.fixture(scope="module")
def server(defect_models, tmp_path_factory):
    with running_server(defect_models, tmp_path_factory.mktemp("server-defects") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


@pytest.fixture
def pg(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    yield page
    page.close()


def idle(pg, settle: float = 1.0):
    """Until the run the last action started has finished (the status widget shows only after a moment)."""
    time.sleep(0.8)
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    time.sleep(settle)


def open_page(pg, server: str, path: str):
    pg.goto(server + path)
    pg.wait_for_selector('[data-testid="stSidebar"]')
    idle(pg, 1.5)
    assert pg.locator('[data-testid="stException"]').count() == 0


def local(url: str) -> bool:
    u = urlsplit(url)
    return u.scheme in ("data", "blob", "about") or u.hostname in ("localhost", "127.0.0.1")


# ------------------------------------------------------------------------- 10. fully offline
def test_no_request_leaves_localhost(server, pg):
    outside = []

    def route(r):
        if local(r.request.url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    for path in ("/", "/contrast", "/memory", "/generate", "/lesson", "/guide"):
        open_page(pg, server, path)
        icon = pg.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        assert icon and all(local(h) for h in icon), icon
    open_page(pg, server, "/")
    pg.wait_for_selector(f"{PLAYER} .rsx-play")
    play = pg.locator(f"{PLAYER} .rsx-play")
    play.click()
    assert play.locator("svg[data-icon=pause] rect").count() == 2          # drawn, not a font's glyph
    play.click()
    assert play.locator("svg[data-icon=play]").count() == 1
    assert outside == [], outside


# ------------------------------------------------------------------ 1. long texts stay bounded
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


@pytest.mark.parametrize("path,selector,nth", [("/contrast", "textarea", 0), ("/generate", "input[type=text]", 0),
                                               ("/lesson", "textarea", 0)])
def test_a_1000_word_text_draws_a_bounded_page(server, pg, path, selector, nth, tmp_path):
    open_page(pg, server, path)
    fill(pg, f'[data-testid="stMain"] {selector}', LONG, nth)
    pg.wait_for_function("() => [...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip]')]"
                         ".some(e => +e.dataset.n > 1000)")                # the long text is the one drawn
    idle(pg, 1.0)
    assert pg.locator('[data-testid="stException"]').count() == 0
    d = drawn(pg)
    assert d["charts"] >= 1 and d["ticks"] <= 2 * 41 and d["chips"] <= 120, d      # an axis may repeat (subplots)
    pg.screenshot(path=str(tmp_path / f"long{path.replace('/', '-')}.png"), full_page=True)


# ---------------------------------------------------- 3, 4, 7. widgets show what Python keeps
def checked(pg) -> list[list[bool]]:
    return pg.evaluate("() => [...document.querySelectorAll('[data-testid=stRadio]')]"
                       ".map(r => [...r.querySelectorAll('input')].map(i => i.checked))")


def slider_value(pg) -> str:
    return pg.locator('[data-testid="stSlider"] [data-testid="stSliderThumbValue"]').first.inner_text().strip()


def test_widgets_show_the_kept_values_after_page_changes(server, pg):
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


# ------------------------------------------------------------ 5. whitespace glyphs, one per kind
def test_a_character_models_whitespace_has_its_own_glyphs(server, pg):
    open_page(pg, server, "/?model=tiny-char&text=ab%20c%0Ad%09e")
    pg.wait_for_selector(f"{STRIP}[data-labels]")
    labels = pg.locator(STRIP).get_attribute("data-labels").split("|")
    assert labels[1:] == ["a", "b", "␣", "c", "↵", "d", "⇥", "e"], labels
    shown = pg.locator(f"{STRIP} .w").all_inner_texts()
    assert "␣" in shown and "↵" in shown and "⇥" in shown
