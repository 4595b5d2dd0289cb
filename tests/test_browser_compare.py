"""The Compare page in headless Chromium (Playwright): opened from an address that carries the text,
model B and the token, it draws the Δ-surprisal strip, the two next-word lists and the units that
changed most; moving the token selector writes the address, and reopening that address restores the
selection.

Uses the shipped fiction-lstm and fiction-lstm-balanced (a checkpoint and its fine-tune) when present,
two tiny LSTMs of different seeds otherwise. A full-page screenshot is written to the folder named by
RNN_EXPLORER_COMPARE_SHOTS, when set. Server helpers: tests/browser_support.py.
"""
from __future__ import annotations

import os
import time
import urllib.parse
from pathlib import Path

import pytest

from browser_support import BROWSER_MARKS, ROOT, chromium, running_server
from conftest import make_model

from explorer import save_bundle

REAL = {"A": ROOT / "pretrained" / "fiction-lstm", "B": ROOT / "pretrained" / "fiction-lstm-balanced"}
TEXT = "A girl walked into a bar, and she said 'Can I have a drink please?' The bartender said 'Certainly, miss.'"
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def names_and_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-compare-models")
    if all((p / "card.json").is_file() for p in REAL.values()):
        names = [p.name for p in REAL.values()]
        for p in REAL.values():
            (root / p.name).symlink_to(p, target_is_directory=True)
    else:
        names = ["tiny-a", "tiny-b"]
        for seed, name in enumerate(names):
            m = make_model("lstm", seed=seed)
            save_bundle(root / name, m.lm, m.tokenizer, {"name": name, "description": "test", "metrics": {}})
    with running_server(root, tmp_path_factory.mktemp("server-compare") / "streamlit.log") as url:
        yield names, url


@pytest.fixture
def browser(names_and_server):
    with chromium() as b:
        yield b


def new_page(browser):
    """A page in a context of its own: a new Streamlit session, as a colleague opening the link."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)
    return page


def wait_drawn(pg):
    """Until the strip, the units chart and both next-word lists are on the page, and the run is over."""
    pg.wait_for_function("Array.from(document.querySelectorAll('.js-plotly-plot .gtitle'))"
                         ".some(e => e.textContent.startsWith('The units that changed most'))")
    pg.locator('[data-testid="stDataFrame"]').nth(1).wait_for()
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    time.sleep(1.0)
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()
    assert pg.locator('[data-testid="stAlertContentError"]').count() == 0


def token_shown(pg) -> str:
    return pg.locator('[data-testid="stSliderThumbValue"]').first.inner_text()


def shoot(pg, name: str):
    folder = os.environ.get("RNN_EXPLORER_COMPARE_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    h = pg.evaluate("() => Math.max(...Array.from(document.querySelectorAll('[data-testid=\"stElementContainer\"]'))"
                    ".map(e => e.getBoundingClientRect().bottom), 900) + 80")
    old = pg.viewport_size
    pg.set_viewport_size({"width": old["width"], "height": min(int(h), 5000)})
    time.sleep(1.5)
    pg.screenshot(path=str(Path(folder) / name))
    pg.set_viewport_size(old)
    time.sleep(0.3)


def test_compare_page_restores_its_selection_from_the_copied_address(browser, names_and_server):
    (a, b), server = names_and_server
    pg = new_page(browser)
    query = urllib.parse.urlencode({"model": a, "b": b, "text": TEXT, "token": 26})   # 26: "miss"
    pg.goto(f"{server}/compare?{query}")
    wait_drawn(pg)
    titles = pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
    assert any(t.startswith("Δ surprisal") for t in titles), titles
    strip = pg.locator(".js-plotly-plot", has_text="Δ surprisal")
    assert strip.locator(".hm, image").count() >= 1                   # the heatmap cells are drawn
    assert token_shown(pg).startswith("26 · miss")
    body = pg.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert f"A · {a}" in body and f"B · {b}" in body and "expected" in body
    assert pg.locator('[data-testid="stDataFrame"]').count() >= 2
    shoot(pg, "compare.png")

    # move the token one step right with the keyboard; the address follows
    pg.get_by_role("slider").first.focus()
    pg.keyboard.press("ArrowRight")
    pg.wait_for_function("new URLSearchParams(location.search).get('token') === '27'")
    wait_drawn(pg)
    assert token_shown(pg).startswith("27 · .")
    copied = pg.url
    q = urllib.parse.parse_qs(urllib.parse.urlparse(copied).query)
    assert q["b"] == [b] and q["text"] == [TEXT] and q["model"] == [a]

    pg.close()

    # reopen the copied address in a new session: the same text, model B and token
    fresh = new_page(browser)
    fresh.goto(copied)
    wait_drawn(fresh)
    assert token_shown(fresh).startswith("27 · .")
    assert fresh.get_by_role("textbox", name="Text").input_value() == TEXT
    assert fresh.locator('[data-testid="stMain"] [data-testid="stSelectbox"] input').first.input_value() == b
    shoot(fresh, "compare-reopened.png")
    fresh.close()
