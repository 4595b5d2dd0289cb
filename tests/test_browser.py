"""The real app in headless Chromium (Playwright): type, step, play, switch model and layer, upload a
bad bundle, visit every page; no exception element may appear. Saves screenshots to docs/screenshots/.

Runs wherever Debian's Chromium is installed (CI installs it: `apt-get install chromium`); skips with
that reason otherwise. Override the browser with RNN_EXPLORER_CHROMIUM=/path/to/chromium.
"""
from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from browser_support import (BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, ROOT, SHOTS,
                             start_server, stop_server)

REAL = ROOT / "pretrained" / "fiction-lstm"
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def browser_models(models_dir, tmp_path_factory) -> Path:
    """The tiny LSTM and RNN, plus the shipped fiction-lstm when it exists (the app opens on it)."""
    root = tmp_path_factory.mktemp("browser-models")
    for name in ("tiny-lstm", "tiny-rnn"):
        (root / name).symlink_to(models_dir / name, target_is_directory=True)
    if (REAL / "card.json").is_file():
        (root / "fiction-lstm").symlink_to(REAL, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def server(browser_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    proc, url = start_server(browser_models, log)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(server)
        yield pg
        browser.close()


# ------------------------------------------------------------------------------------ helpers
STRIP = '[data-testid="token-strip"]'


def no_exceptions(pg):
    assert pg.locator('[data-testid="stException"]').count() == 0, pg.locator('[data-testid="stException"]').first.inner_text()


def wait_charts(pg, n: int):
    pg.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}")


def selected(pg) -> str:
    return pg.locator(STRIP).get_attribute("data-selected")


def wait_selected(pg, pos: int):
    """Until the whole player fragment shows token `pos`: the strip first, the step view last. A key
    pressed before the fragment has finished redrawing may be lost, as it would be for a person."""
    pg.wait_for_function(f"document.querySelector('{STRIP}')?.dataset.selected === '{pos}'")
    pg.wait_for_function("""(pos) => Array.from(document.querySelectorAll('.js-plotly-plot')).some(p => {
        const m = (p.layout || {}).meta || {};
        return m.view === 'combined' && m.panels && m.panels[0].view === 'topk' && m.panels[0].position === pos;
    })""", arg=pos)


def chart_texts(pg) -> list[str]:
    """Titles and annotations drawn in every chart (combined figures carry panel titles as annotations)."""
    return pg.eval_on_selector_all(".js-plotly-plot .gtitle, .js-plotly-plot .annotation-text",
                                   "els => els.map(e => e.textContent)")


def heat_titles(pg) -> list[str]:
    return [t for t in chart_texts(pg) if len(t) > 2 and t[1:4] == " · "]


def heat_ticks(pg, quantity: str) -> list[str] | None:
    """The drawn x tick labels of the heatmap panel of `quantity` (None if it is not drawn)."""
    return pg.evaluate("""(q) => {
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            const meta = (plot.layout || {}).meta || {};
            const panels = meta.view === 'combined' ? meta.panels : [meta];
            const i = panels.findIndex(p => p && p.view === 'heatmap' && p.quantity === q);
            if (i < 0) continue;
            const id = i === 0 ? 'x' : 'x' + (i + 1);
            return Array.from(plot.querySelectorAll(`.xaxislayer-above .${id}tick text`)).map(e => e.textContent);
        }
        return null;
    }""", quantity)


def wait_texts(pg, js_predicate: str):
    """Wait until the chart titles/annotations satisfy a JS predicate over `texts` (an array)."""
    pg.wait_for_function("() => { const texts = Array.from(document.querySelectorAll("
                         "'.js-plotly-plot .gtitle, .js-plotly-plot .annotation-text')).map(e => e.textContent); "
                         f"return {js_predicate}; }}")


def keyboard_focus_page(pg):
    """Move focus off the text box so the playback shortcuts reach the page."""
    pg.locator('[data-testid="stMainBlockContainer"] h4').first.click()


def shoot(pg, name: str, full: bool = True, height: int = 3000):
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.mouse.move(2, 2)                            # no tooltip or hover label in the picture
    time.sleep(0.3)
    if full:  # Streamlit scrolls inside its own container: grow the viewport to capture the page
        old = pg.viewport_size
        pg.set_viewport_size({"width": old["width"], "height": height})
        time.sleep(1.2)
        pg.screenshot(path=str(SHOTS / name))
        pg.set_viewport_size(old)
        time.sleep(0.5)
    else:
        pg.screenshot(path=str(SHOTS / name))


# -------------------------------------------------------------------------------------- tests
def test_01_opens_with_every_chart(page):
    pg = page
    pg.wait_for_selector(STRIP)
    wait_charts(pg, 2)                             # the step view and the h/c heatmaps
    no_exceptions(pg)
    titles = heat_titles(pg)
    for q in "hc":
        assert any(t.startswith(f"{q} ·") for t in titles), titles
    assert any(t.startswith("Next word after") for t in chart_texts(pg))
    assert heat_ticks(pg, "h")[0] == "<eos>"      # escaped for Plotly, shown as typed
    n = int(pg.locator(STRIP).get_attribute("data-n"))
    assert selected(pg) == str(n - 1)
    # the bartender preset: select the comma before "miss", where the model has to remember "she"
    for k in range(1, 4):
        pg.get_by_role("button", name="Back").click()
        wait_selected(pg, n - 1 - k)
    wait_texts(pg, "texts.some(t => t.startsWith('Next word after “,”'))")
    shoot(pg, "explore.png", height=1900)
    pg.locator('[data-testid="stPlotlyChart"]').first.screenshot(path=str(SHOTS / "step-view.png"))
    pg.locator(STRIP).screenshot(path=str(SHOTS / "token-strip.png"))


def test_02_typing_a_sentence_redraws_the_charts(page):
    pg = page
    text = "the cat saw the dog and the dog saw the cat ."
    box = pg.locator("textarea").first
    box.fill(text)
    box.press("Control+Enter")
    pg.wait_for_function(f"document.querySelector('{STRIP}').dataset.n === '13'")
    pg.wait_for_function("""() => {
        const ticks = Array.from(document.querySelectorAll('.js-plotly-plot .xaxislayer-above text'))
            .map(e => e.textContent);
        return ticks.filter(t => t === 'saw').length === 4;     // h and c panels, two "saw" each
    }""")
    for q in "hc":
        ticks = heat_ticks(pg, q)
        assert ticks[1:] == text.split() and ticks.count("the") == 4, ticks
    wait_texts(pg, "texts.some(t => t.startsWith('Next word after “.”'))")
    # hovering a heatmap cell names the token (the axis tick text), the unit and the value
    plot = pg.locator(".js-plotly-plot").filter(has=pg.locator(".xaxislayer-above .x2tick")).first
    plot.scroll_into_view_if_needed()
    time.sleep(0.5)
    area = plot.locator(".nsewdrag").first.bounding_box()
    col = 3                                          # the first "saw"
    pg.mouse.move(area["x"] + area["width"] * (col + 0.5) / 13 - 3, area["y"] + area["height"] * 0.5)
    pg.mouse.move(area["x"] + area["width"] * (col + 0.5) / 13, area["y"] + area["height"] * 0.5)
    pg.wait_for_function("document.querySelector('.js-plotly-plot .hoverlayer .hovertext') !== null")
    hover = pg.evaluate("document.querySelector('.js-plotly-plot .hoverlayer .hovertext').textContent")
    assert "token saw" in hover and "unit" in hover and "h = " in hover, hover
    pg.mouse.move(2, 2)
    no_exceptions(pg)


def test_03_stepping_with_keys_buttons_and_slider(page):
    pg = page
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 1)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 2)
    pg.get_by_role("button", name="Next").click()
    wait_selected(pg, 3)
    wait_texts(pg, "texts.some(t => t.startsWith('Next word after “saw”'))")
    pg.get_by_role("button", name="Back").click()
    wait_selected(pg, 2)
    pg.keyboard.press("End")
    wait_selected(pg, 12)
    slider = pg.locator('[data-testid="stSlider"] input[type=range]').first
    slider.focus()
    pg.keyboard.press("ArrowLeft")                # the slider moves one token, not two
    wait_selected(pg, 11)
    time.sleep(1.0)
    assert selected(pg) == "11"
    # typing in the text box never triggers the playback shortcuts
    box = pg.locator("textarea").first
    box.focus()
    box.press("ArrowLeft")
    box.press("p")
    time.sleep(1.0)
    assert selected(pg) == "11" and pg.get_by_role("button", name="Play").count() == 1
    box.press("Backspace")                         # undo the typed "p" (the text box is not submitted)
    no_exceptions(pg)


def test_04_play_and_pause(page):
    pg = page
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    pg.get_by_role("button", name="Play").click()
    pg.wait_for_function(f"Number(document.querySelector('{STRIP}').dataset.selected) >= 2", timeout=30_000)
    pg.get_by_role("button", name="Pause").click()
    pg.get_by_role("button", name="Play").wait_for()
    time.sleep(1.0)
    stopped = selected(pg)
    time.sleep(2.5)
    assert selected(pg) == stopped
    no_exceptions(pg)


def test_05_switch_layer(page):
    pg = page
    pg.locator('[data-testid="stSidebar"] label').filter(has_text="Layer 1").click()
    wait_texts(pg, "texts.filter(t => /^[hc] ·/.test(t) && t.endsWith('layer 1')).length === 2 && "
                   "texts.some(t => t.startsWith('Change at') && t.endsWith('(layer 1)'))")
    no_exceptions(pg)
    # the gate heatmaps live in a tab that is drawn when opened
    pg.get_by_role("tab", name="Gates i · f · o and candidate g").click()
    wait_texts(pg, "texts.filter(t => /^[ifog] ·/.test(t) && t.endsWith('layer 1')).length === 4")
    assert heat_ticks(pg, "f")[3] == "saw"
    no_exceptions(pg)
    shoot(pg, "explore-gates.png", height=2000)
    pg.get_by_role("tab", name="Unit inspector").click()
    wait_texts(pg, "texts.some(t => t.includes('of chosen units (layer 1)'))")
    no_exceptions(pg)
    pg.get_by_role("tab", name="States h · c").click()
    pg.locator('[data-testid="stSidebar"] label').filter(has_text="Layer 2").click()
    wait_texts(pg, "texts.filter(t => /^[hc] ·/.test(t) && t.endsWith('layer 2')).length === 2")


def _pick_model(pg, name: str):
    pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    pg.get_by_role("option", name=name).click()


def test_06_switch_model(page, browser_models):
    pg = page
    _pick_model(pg, "tiny-rnn")
    pg.get_by_text("A simple RNN has no gates").wait_for()
    wait_texts(pg, "texts.some(t => /^h ·/.test(t)) && !texts.some(t => /^[cifgo] ·/.test(t)) && "
                   "!texts.some(t => t.startsWith('Gates after'))")
    assert heat_ticks(pg, "h") is not None
    no_exceptions(pg)
    shoot(pg, "explore-rnn.png", height=2200)
    _pick_model(pg, "fiction-lstm" if (browser_models / "fiction-lstm").exists() else "tiny-lstm")
    wait_texts(pg, "texts.some(t => /^c ·/.test(t))")
    no_exceptions(pg)


def test_07_empty_and_long_text(page):
    pg = page
    box = pg.locator("textarea").first
    box.fill("")
    box.press("Control+Enter")
    pg.get_by_text("Type a sentence above").wait_for()
    assert pg.locator(".js-plotly-plot").count() == 0
    no_exceptions(pg)
    box.fill('Holmes said "the game is afoot" and the qwertyuiop left .')
    box.press("Control+Enter")
    pg.locator('[data-testid="unknown-words"]').wait_for()
    assert "qwertyuiop" in pg.locator('[data-testid="unknown-words"]').inner_text()
    assert pg.locator(f'{STRIP} .tok.unk').count() >= 1
    wait_charts(pg, 2)
    no_exceptions(pg)


def test_08_bad_upload_shows_what_is_wrong(page):
    pg = page
    pg.get_by_text("Upload a model bundle (.zip)").click()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bundle/card.json", "{}")
        z.writestr("bundle/tokenizer.json", "{}")
        z.writestr("bundle/weights.safetensors", b"\x80\x04\x95 a pickle")
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "bad-bundle.zip", "mimeType": "application/zip", "buffer": buf.getvalue()}])
    err = pg.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]')
    err.wait_for()
    assert "bad-bundle.zip is not a usable bundle" in err.inner_text()
    no_exceptions(pg)
    pg.mouse.move(2, 2)
    pg.locator('[data-testid="stSidebar"]').screenshot(path=str(SHOTS / "upload-error.png"))
    wait_charts(pg, 2)                               # the page keeps working on the old model


def test_09_guide_page(page):
    pg = page
    pg.get_by_role("link", name="How to read it").click()
    pg.get_by_text("What you are looking at").wait_for()
    no_exceptions(pg)
    shoot(pg, "guide.png", height=2000)
    pg.get_by_role("link", name="Explore").click()
    wait_charts(pg, 2)
    no_exceptions(pg)
