"""The Corpus and Units pages in headless Chromium (Playwright): the default index is built on first use
(behind the status box), the selection's units and the matches render, a new selection redraws, the
trajectories draw; the Units page draws the dictionary and the predicate search; the Contrast page's
trajectory view builds the index on its button and draws both texts. Screenshots go to
docs/screenshots/corpus.png, units.png and contrast-trajectories.png.

Uses the shipped fiction-lstm when present (screenshots only then) over an excerpt of the two held-out
books (the first 12,000 characters of each, so the first-use build takes seconds), the tiny test LSTM
otherwise. Skips only where Chromium is absent. The browser is conftest.py's fixture.
"""
from __future__ import annotations

import time

import pytest

from browser_support import BROWSER_MARKS, ROOT, SHOTS, running_server

REAL = ROOT / "pretrained" / "fiction-lstm"
BOOKS = ROOT / "corpora" / "heldout"
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("browser-corpus")
    models = root / "models"
    models.mkdir()
    real = (REAL / "card.json").is_file()
    src = REAL if real else models_dir / "tiny-lstm"
    (models / src.name).symlink_to(src, target_is_directory=True)
    corpus = root / "corpus"
    corpus.mkdir()
    for book in sorted(BOOKS.glob("*.txt")):
        (corpus / book.name).write_text(book.read_text(encoding="utf-8")[:12_000], encoding="utf-8")
    mp.setenv("RNN_EXPLORER_DEFAULT_CORPUS", str(corpus))
    mp.setenv("RNN_EXPLORER_CACHE", str(root / "cache"))
    try:
        with running_server(models, root / "streamlit.log") as url:
            yield url, real
    finally:
        mp.undo()


def _settle(page, text: str, timeout: float = 240):
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)
    deadline = time.time() + 60
    while time.time() < deadline:     # wait until the script run is over (no "Running..." widget)
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            break
        time.sleep(0.3)
    time.sleep(1.0)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_corpus_page(server, browser):
    url, real = server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(url + "/corpus")
    _settle(page, "Units on across the selection")
    units_before = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    if real:      # "You have" at 0.5: fiction-lstm's units are on again at other quote-initial "you"s
        assert page.get_by_text("Where else they are on").count() >= 1
        assert page.locator(".cl-ctx").count() >= 2                  # the selection + a match
        assert page.locator(".js-plotly-plot").count() >= 2          # + one small heatmap per match
    # raise the threshold with the keyboard: fewer units are on across the selection
    slider = page.get_by_role("slider").nth(2)                    # [selection start, end], threshold
    slider.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    # wait for the state itself (the old page's text is still there while the rerun starts)
    page.get_by_text("0.70").first.wait_for(timeout=120_000)
    _settle(page, "Matches in the corpus")
    units_after = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    assert int(units_after) <= int(units_before)
    page.get_by_role("slider").nth(2).focus()
    for _ in range(4):                                            # back to 0.5
        page.keyboard.press("ArrowLeft")
    page.get_by_text("0.50").first.wait_for(timeout=120_000)
    _settle(page, "Matches in the corpus")
    page.get_by_role("button", name="Bartender pair").click()
    _settle(page, "Trajectories")
    assert page.get_by_text("0.50").count() >= 1
    if real:
        page.set_viewport_size({"width": 1500, "height": 2600})     # the app scrolls inside its own pane
        _settle(page, "Trajectories")
        page.screenshot(path=str(SHOTS / "corpus.png"))
    # clicking a point of a trajectory opens that text in Explore with that token selected
    points = page.locator(".js-plotly-plot").last.locator("path.point")
    assert points.count() >= 8
    box = points.nth(3).bounding_box()             # the first text's token 3: <eos> A girl *walked*
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    time.sleep(0.3)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Type a sentence and watch the network read it").wait_for(timeout=60_000)
    _settle(page, "Type a sentence")
    assert page.locator("textarea").first.input_value().startswith("A girl walked into a bar")
    page.get_by_text("3 / ").first.wait_for(timeout=30_000)
    assert "walked" in page.get_by_text("3 / ").first.inner_text()
    page.close()


def test_units_page(server, browser):
    url, real = server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(url + "/units")
    _settle(page, "Most positive")
    _settle(page, "Units that separate")
    assert page.locator(".cl-ctx").count() >= 10
    page.get_by_role("button", name="Unit ").first.click()
    _settle(page, "Most negative")
    if real:
        page.set_viewport_size({"width": 1500, "height": 1900})
        _settle(page, "Most negative")
        page.screenshot(path=str(SHOTS / "units.png"))
    page.close()


def test_upload_own_text_files(server, browser, tmp_path):
    """Upload .txt files in the sidebar, build their index with the button, match in them."""
    url, real = server
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(url + "/corpus")
    _settle(page, "Units on across the selection")
    page.get_by_text("Upload .txt files").click()
    _settle(page, "Upload one or more .txt files")
    own = tmp_path / "mine.txt"
    own.write_text('"You have been here," said she. "You have not," said he.\n\n' * 20, encoding="utf-8")
    page.locator('input[type="file"]').last.set_input_files(str(own))   # the sidebar's text-file uploader
    _settle(page, "not indexed yet")
    page.get_by_role("button", name="Build the index").click()
    _settle(page, "Units on across the selection")
    assert page.get_by_text("from 1 file(s) (mine)").count() >= 1
    page.close()


def test_contrast_trajectories(server, browser, tmp_path):
    """The Contrast page's trajectory view: opened from its expander, the index built with its button when
    there is none yet, both texts drawn over the corpus density; a clicked point opens Explore there."""
    url, real = server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(url + "/contrast")
    _settle(page, "Contrast two texts")
    page.locator(".js-plotly-plot").nth(2).wait_for(timeout=60_000)   # next words, distances, Δ heatmap
    _settle(page, "How far apart")
    plots = page.locator(".js-plotly-plot").count()
    page.get_by_text("Trajectories: both texts").click()
    box = page.locator('[data-testid="stExpander"]').filter(has_text="Trajectories: both texts")
    box.get_by_text("Corpus index:").or_(box.get_by_role("button", name="Build the index")).first.wait_for(
        timeout=60_000)
    if box.get_by_role("button", name="Build the index").count():     # no index yet: a note and the button
        assert box.get_by_text("not built yet for this model").count() == 1
        box.get_by_role("button", name="Build the index").click()
    _settle(page, "Corpus index:")
    box.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    _settle(page, "Corpus index:")
    assert page.locator(".js-plotly-plot").count() == plots + 1        # the page's own figures stay
    fig = box.locator(".js-plotly-plot")
    assert fig.get_by_text("A: girl / she").count() == 1 and fig.get_by_text("B: boy / he").count() == 1
    assert fig.locator(".scatterlayer .trace").count() == 2            # two paths
    box.scroll_into_view_if_needed()
    time.sleep(1.0)
    shot = SHOTS / "contrast-trajectories.png" if real else tmp_path / "contrast-trajectories.png"
    box.screenshot(path=str(shot))
    # clicking a point opens that text in Explore with that token selected
    points = fig.locator("path.point")
    assert points.count() >= 8
    b = points.nth(3).bounding_box()                  # the first text's token 3: <eos> A girl *walked*
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    time.sleep(0.5)
    hover = fig.locator(".hoverlayer").text_content()                  # hover names the token
    assert "A: girl / she" in hover and "token 3: walked" in hover, hover
    page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    page.get_by_text("Type a sentence and watch the network read it").wait_for(timeout=60_000)
    _settle(page, "Type a sentence")
    assert page.locator("textarea").first.input_value().startswith("A girl walked into a bar")
    page.get_by_text("3 / ").first.wait_for(timeout=30_000)
    assert "walked" in page.get_by_text("3 / ").first.inner_text()
    page.close()
