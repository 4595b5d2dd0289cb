"""Bookmarks in headless Chromium (issue 22, item 3): change a page's state in one browser context, copy the
address the app wrote, open it in a new context (nothing remembered) and find the same state: Generate
samples the same words from the same settings, and a long Contrast text travels as a short id of the
server's text store. AppTest covers every page: tests/test_bookmarks.py."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from browser_support import BROWSER_MARKS, running_server

pytestmark = BROWSER_MARKS
T = 150_000          # a cold page loads torch and the model; the machine may be busy


@pytest.fixture(scope="module")
def server(browser_models, tmp_path_factory):
    """A server whose cache folder (and so its text store) is this module's own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNN_EXPLORER_CACHE", str(tmp_path_factory.mktemp("cache")))
        with running_server(browser_models, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
            yield url


@pytest.fixture
def contexts(browser):
    """Two fresh contexts (no cookies, no session storage), as two people or two days would have."""
    made = []

    def new():
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        made.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(T)
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        return pg
    yield new
    for ctx in made:
        ctx.close()


def idle(pg):
    pg.wait_for_timeout(600)
    pg.wait_for_function("() => document.querySelector('[data-test-script-state]')"
                         "?.getAttribute('data-test-script-state') !== 'running'")
    pg.wait_for_timeout(600)


def clean(pg):
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()
    assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
    assert not pg.errors, pg.errors


def query(pg) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(pg.url).query).items()}


def set_number(pg, label: str, value):
    box = pg.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    idle(pg)


def test_generate_address_samples_the_same_words_in_a_new_context(server, contexts, tmp_path):
    a = contexts()
    a.goto(server + "/generate")
    a.wait_for_selector('[data-testid="generated-text"]')
    idle(a)
    set_number(a, "Top-k (0 = all)", 12)
    set_number(a, "Seed", 7)
    clean(a)
    q = query(a)
    assert q["topk"] == "12" and q["seed"] == "7" and "temp" in q and "n" in q, q
    words = a.get_by_test_id("generated-text").inner_text()
    b = contexts()
    b.goto(a.url)                                        # the copied address, opened cold
    b.wait_for_selector('[data-testid="generated-text"]')
    idle(b)
    clean(b)
    assert b.get_by_test_id("generated-text").inner_text() == words
    for label in ("Top-k (0 = all)", "Seed"):
        assert b.get_by_label(label, exact=True).input_value() == a.get_by_label(label, exact=True).input_value()
    assert query(b) == q
    b.screenshot(path=str(tmp_path / "generate-restored.png"), full_page=True)


def test_long_contrast_text_travels_as_a_short_id(server, contexts):
    a = contexts()
    a.goto(server + "/contrast")
    a.get_by_label("Text A", exact=True).wait_for()
    idle(a)
    long = "It was the best of times , it was the worst of times . " * 40
    box = a.get_by_label("Text A", exact=True)
    box.fill(long)
    box.press("Control+Enter")
    idle(a)
    clean(a)
    q = query(a)
    assert q["a"].startswith("saved-") and len(a.url) < 600, a.url
    b = contexts()
    b.goto(a.url)
    b.get_by_label("Text A", exact=True).wait_for()
    idle(b)
    clean(b)
    assert b.get_by_label("Text A", exact=True).input_value() == long
    assert b.get_by_test_id("bag-line").inner_text() == a.get_by_test_id("bag-line").inner_text()
