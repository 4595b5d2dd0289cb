"""The real app in headless Chromium (Playwright): type, step, play, switch model, layer and heatmap tab,
hover a heatmap, upload a bad bundle, visit every page; no exception element (and no uncaught script
error) may appear. Saves screenshots to docs/screenshots/.

The Explore page is drawn by the player (explorer/present/assets/player.js, a Streamlit v2 component mounted in the
page DOM): the tests read its data attributes (data-selected, data-labels, data-quantities, data-layer,
data-drawn ...) and the tooltip of its canvases; only the unit inspector is still a Plotly chart.

Runs wherever Debian's Chromium is installed (CI installs it: `apt-get install chromium`); skips with
that reason otherwise. Override the browser with RNN_EXPLORER_CHROMIUM=/path/to/chromium. The server
and browser are conftest.py's fixtures, the helpers tests/browser_support.py's. Issue 14's checks that
no request leaves the machine and that a character model's whitespace has its own glyphs run on a server
of the tiny LSTM and a tiny character model: TestOnATinyCharacterModel.
"""
from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_support import (BROWSER_MARKS, ROOT, SHOTS, OnTinyCharServer, link_models,
                             no_exceptions as _no_exceptions, open_page)

REAL = ROOT / "pretrained" / "fiction-lstm"
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def browser_models(models_dir, tmp_path_factory) -> Path:
    """The tiny LSTM and RNN, plus the shipped fiction-lstm when it exists (the app opens on it)."""
    root = link_models(tmp_path_factory.mktemp("browser-models"),
                       {name: models_dir / name for name in ("tiny-lstm", "tiny-rnn")})
    if (REAL / "card.json").is_file():
        (root / "fiction-lstm").symlink_to(REAL, target_is_directory=True)
    return root


PAGE_ERRORS: list[str] = []       # uncaught script errors (the player's included), checked by no_exceptions


@pytest.fixture(scope="module")
def page(server, browser):
    """One page for the numbered tests, which go on from each other (conftest.py: server, browser)."""
    pg = browser.new_page(viewport={"width": 1440, "height": 1000})
    pg.set_default_timeout(60_000)
    PAGE_ERRORS.clear()
    pg.on("pageerror", lambda e: PAGE_ERRORS.append(str(e)))
    pg.goto(server)
    yield pg
    pg.close()


# ------------------------------------------------------------------------------------ helpers
PLAYER = '[data-testid="player"]'
STRIP = '[data-testid="token-strip"]'
HEAT = '[data-testid="heatmaps"]'
TOPK = '[data-testid="step-topk"]'

# Every place that names the selected token, as one JS expression over `p` (the player root). Stepping
# happens in the browser: all of them must agree, and the player must not be waiting for the server.
_SHOWN = """(() => {
    const q = s => p.querySelector(s);
    return {player: p.dataset.selected, strip: q('[data-testid="token-strip"]')?.dataset.selected,
            heatmaps: q('[data-testid="heatmaps"]')?.dataset.selected,
            topk: q('[data-testid="step-topk"]')?.dataset.position,
            change: q('[data-testid="step-change"]')?.dataset.position,
            gates: q('[data-testid="step-gates"]')?.dataset.position,
            slider: q('.rsx-slider')?.value,
            chips: Array.from(p.querySelectorAll('.tok.sel')).map(c => c.dataset.pos).join(',')};
})()"""


def no_exceptions(pg):
    _no_exceptions(pg, PAGE_ERRORS)


def wait_player(pg, predicate: str = "true", timeout: float | None = None):
    """Until the player is drawn, not waiting for the server, and the JS `predicate` over `p` (the
    player root) holds."""
    pg.wait_for_function(
        "() => { const p = document.querySelector('" + PLAYER + "');"
        " if (!p || !p.dataset.drawn || p.classList.contains('rsx-waiting')"
        "     || p.querySelector('.rsx-heat.rsx-waiting')) return false;"
        f" return ({predicate}); }}", timeout=timeout)


def mark_drawn(pg):
    """Remember the player as drawn now; `redrawn` (JS) is then true once it has drawn new data."""
    pg.evaluate("() => { const p = document.querySelector('" + PLAYER + "');"
                " window.__rsxMark = {el: p, drawn: p && p.dataset.drawn}; }")


REDRAWN = "(p !== window.__rsxMark.el || p.dataset.drawn !== window.__rsxMark.drawn)"


def shown(pg) -> dict:
    return pg.evaluate(f"() => {{ const p = document.querySelector('{PLAYER}'); return {_SHOWN}; }}")


def selected(pg) -> str:
    return pg.locator(STRIP).get_attribute("data-selected")


def wait_selected(pg, pos: int):
    """Until the strip, the chip outline, the slider, the heatmaps and all three step panels show `pos`."""
    try:
        wait_player(pg, f"Object.values({_SHOWN}).every(v => v === '{pos}')", timeout=30_000)
    except Exception as e:  # noqa: BLE001 - say what was shown instead
        raise AssertionError(f"the player did not select {pos}: {shown(pg)}") from e


def strip_labels(pg) -> list[str]:
    return pg.locator(STRIP).get_attribute("data-labels").split("|")


def heat_labels(pg) -> list[str]:
    return pg.locator(HEAT).get_attribute("data-labels").split("|")


def quantities(pg) -> str:
    return pg.locator(HEAT).get_attribute("data-quantities")


def heat_titles(pg) -> list[str]:
    return pg.locator(f"{HEAT} .rsx-title").all_inner_texts()


def heat_layers(pg) -> list[int]:
    """The layer each heatmap title names ("h · hidden state … · layer 2 · …")."""
    return [int(re.search(r" · layer (\d+)( ·|$)", t)[1]) for t in heat_titles(pg)]


def title(pg, panel: str) -> str:
    return pg.locator(f'[data-testid="{panel}"] .rsx-title').first.inner_text()


def tabs(pg) -> list[str]:
    return pg.locator(f"{PLAYER} .rsx-tab").all_inner_texts()


def active_tab(pg) -> str:
    return pg.locator(f"{PLAYER} .rsx-tab.rsx-active").inner_text()


def open_tab(pg, name: str, quantities_js: str):
    """Click a heatmap tab (the server sends that view) and wait for its heatmaps (data-quantities)."""
    mark_drawn(pg)
    pg.locator(f"{PLAYER} .rsx-tab", has_text=name).click()
    wait_player(pg, f"{REDRAWN} && p.querySelector('{HEAT}').dataset.quantities === '{quantities_js}'")
    assert active_tab(pg) == name


def unit_plot_meta(pg) -> dict | None:
    return pg.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                       " return p && p.layout ? p.layout.meta || null : null; }")


def plot_titles(pg) -> list[str]:
    return pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")


def keyboard_focus_page(pg):
    """Move focus off the text box so the playback shortcuts reach the page."""
    pg.locator('[data-testid="stMainBlockContainer"] h4').first.click()


def heat_cell(pg, quantity: str, t: int, dy: float = 60) -> tuple[float, float]:
    """Page coordinates of the middle of token column `t` of a heatmap, `dy` px below its top. The plot
    area is inset as player.js drawHeat draws it: 50 px left, 70 px right (colour bar), 8 px top, and it
    is at least 180 px high."""
    canvas = pg.locator(f'{HEAT} canvas.rsx-heatcanvas[data-q="{quantity}"]')
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    n = len(heat_labels(pg))
    return box["x"] + 50 + (t + 0.5) * (box["width"] - 120) / n, box["y"] + 8 + dy


def current_model(pg) -> str:
    return pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input').first.input_value()


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
def test_01_opens_with_every_view(page):
    pg = page
    wait_player(pg, f"p.querySelectorAll('{HEAT} canvas.rsx-heatcanvas').length === 2")
    no_exceptions(pg)
    assert pg.locator(PLAYER).evaluate("p => p.getRootNode() === document")      # not in a shadow root
    n = int(pg.locator(PLAYER).get_attribute("data-n"))
    labels = strip_labels(pg)
    assert len(labels) == n and pg.locator(STRIP).get_attribute("data-n") == str(n)
    assert labels[0] == "<eos>"                                                  # the boundary comes first
    assert heat_labels(pg) == labels
    assert pg.locator(f"{STRIP} .tok").count() == n
    assert pg.locator(f'{STRIP} .tok[data-pos="0"] .w').inner_text() == "<eos>"  # escaped, shown as typed
    wait_selected(pg, n - 1)                                                     # a new text: its last token
    assert quantities(pg) == "h,c"
    assert pg.eval_on_selector_all(f"{HEAT} canvas.rsx-heatcanvas", "cs => cs.map(c => c.dataset.q)") == ["h", "c"]
    assert pg.locator(f"{HEAT} canvas.rsx-overlay").count() == 2
    titles = heat_titles(pg)
    for q in "hc":
        assert any(t.startswith(f"{q} ·") for t in titles), titles
    assert tabs(pg) == ["States h · c", "Gates i · f · o and candidate g", "Unit inspector"]
    assert active_tab(pg) == "States h · c"
    assert title(pg, "step-topk").startswith("Next word after")
    assert pg.locator(f"{TOPK} .rsx-row").count() >= 5
    assert title(pg, "step-change").startswith("Change at")
    assert pg.locator('[data-testid="step-change"] canvas').count() == 2                # Δh and Δc
    assert pg.locator('[data-testid="step-gates"] canvas').count() == 3                 # i, f, o
    assert pg.locator(".js-plotly-plot").count() == 0          # the unit inspector is not open
    # the bartender preset: select the comma before "miss", where the model has to remember "she"
    for k in range(1, 4):
        pg.locator(f"{PLAYER} .rsx-back").click()
        wait_selected(pg, n - 1 - k)
    assert title(pg, "step-topk") == "Next word after “,”"
    assert pg.locator(f"{PLAYER} .rsx-where").inner_text() == f"{n - 4} / {n - 1} · ,"
    assert pg.locator('[data-testid="step-readout"]').inner_text().startswith(f"Token {n - 4} “,”")
    # the word that actually follows is marked among the candidates
    actual = pg.locator(f"{TOPK} .rsx-row.actual")
    assert actual.count() == 1
    assert actual.locator(".rsx-word").inner_text().lower().startswith(labels[n - 3].lower())
    no_exceptions(pg)
    shoot(pg, "explore.png", height=1900)
    pg.locator('[data-testid="step-view"]').screenshot(path=str(SHOTS / "step-view.png"))
    pg.locator(STRIP).screenshot(path=str(SHOTS / "token-strip.png"))


def test_02_typing_a_sentence_redraws_the_player(page, browser_models):
    from explorer import load_model, trace

    pg = page
    text = "the cat saw the dog and the dog saw the cat ."
    words = ["<eos>"] + text.split()
    mark_drawn(pg)
    box = pg.locator("textarea").first
    box.fill(text)
    box.press("Control+Enter")
    wait_player(pg, f"{REDRAWN} && p.dataset.n === '13'")
    assert strip_labels(pg) == words and heat_labels(pg) == words
    assert pg.locator(f"{STRIP} .tok").count() == 13
    wait_selected(pg, 12)                                  # a new text selects its last token
    assert title(pg, "step-topk") == "Next word after “.”"
    assert quantities(pg) == "h,c"
    # hovering a heatmap cell names the token, the unit and the exact value the model computed
    layer = int(pg.locator(PLAYER).get_attribute("data-layer"))
    tr = trace(load_model(browser_models / current_model(pg)), text)
    tip = pg.locator(f"{PLAYER} .rsx-tip")
    for q, col, dy in (("h", 3, 40), ("c", 9, 120)):       # the first and the second "saw"
        x, y = heat_cell(pg, q, col, dy)
        pg.mouse.move(x - 3, y)
        pg.mouse.move(x, y)
        tip.wait_for(state="visible")
        pg.wait_for_function("(c) => document.querySelector('.rsx-tip').textContent.includes(`(#${c})`)", arg=col)
        m = re.fullmatch(r"token “(.+)” \(#(\d+)\)\nunit (\d+)\n(\w) = (\S+)", tip.inner_text().strip())
        assert m, tip.inner_text()
        assert (m[1], int(m[2]), m[4]) == ("saw", col, q), tip.inner_text()
        expected = float(tr.layer(layer).values[q][col, int(m[3])])      # data-layer: 1 = the bottom
        assert float(m[5]) == pytest.approx(expected, abs=1.5e-3, rel=1e-2), (tip.inner_text(), expected)
    pg.mouse.move(2, 2)
    tip.wait_for(state="hidden")
    no_exceptions(pg)


def test_03_stepping_with_keys_buttons_slider_and_clicks(page):
    pg = page
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 1)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 2)
    pg.locator(f"{PLAYER} .rsx-next").click()
    wait_selected(pg, 3)
    assert title(pg, "step-topk") == "Next word after “saw”"
    assert pg.locator(f"{PLAYER} .rsx-where").inner_text() == "3 / 12 · saw"
    pg.locator(f"{PLAYER} .rsx-back").click()
    wait_selected(pg, 2)
    pg.keyboard.press("End")
    wait_selected(pg, 12)
    pg.keyboard.press("ArrowRight")                         # stays on the last token
    pg.locator(f"{PLAYER} .rsx-first").click()
    wait_selected(pg, 0)
    pg.keyboard.press("ArrowLeft")                          # stays on the first token
    time.sleep(0.5)
    wait_selected(pg, 0)
    for _ in range(10):                                     # no key is lost: no server round trip per step
        pg.keyboard.press("ArrowRight")
    wait_selected(pg, 10)
    pg.locator(f"{PLAYER} .rsx-last").click()
    wait_selected(pg, 12)
    slider = pg.locator(f"{PLAYER} input.rsx-slider")
    slider.focus()
    pg.keyboard.press("ArrowLeft")                          # the slider moves one token, not two
    wait_selected(pg, 11)
    time.sleep(1.0)
    wait_selected(pg, 11)
    # clicking a chip, or a heatmap column, selects that token
    pg.locator(f'{STRIP} .tok[data-pos="5"]').click()
    wait_selected(pg, 5)
    x, y = heat_cell(pg, "h", 7)
    pg.mouse.click(x, y)
    wait_selected(pg, 7)
    assert title(pg, "step-topk") == "Next word after “the”"
    no_exceptions(pg)


def test_04_keys_in_the_text_box_do_not_step(page):
    pg = page
    pg.locator(f'{STRIP} .tok[data-pos="5"]').click()
    wait_selected(pg, 5)
    box = pg.locator("textarea").first
    before = box.input_value()
    caret = lambda: box.evaluate("e => e.selectionStart")  # noqa: E731
    box.focus()
    box.press("Home")                                       # each key works in the box, as typed ...
    assert caret() == 0
    box.press("ArrowRight")
    box.press("ArrowRight")
    box.press("ArrowLeft")
    assert caret() == 1
    box.press("End")
    assert caret() == len(before)
    box.press("p")
    box.press("P")
    assert box.input_value() == before + "pP"
    time.sleep(1.5)                                         # longer than one tick of play at 1 token/s
    wait_selected(pg, 5)                                    # ... and none of them reaches the player
    assert pg.locator(f"{PLAYER} .rsx-play").inner_text().strip() == "Play"
    box.press("Backspace")
    box.press("Backspace")                                  # the box is as it was: nothing to submit
    assert box.input_value() == before
    # the same keys outside the text box do step (the check above could fail)
    keyboard_focus_page(pg)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 6)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    assert box.input_value() == before
    no_exceptions(pg)


def test_05_play_and_pause(page):
    pg = page
    play = pg.locator(f"{PLAYER} .rsx-play")
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    assert pg.locator(f"{PLAYER} .rsx-speed").input_value() == "1"          # 1 token/s
    play.click()
    assert play.inner_text().strip() == "Pause" and play.locator("svg[data-icon=pause]").count() == 1
    pg.wait_for_function(f"Number(document.querySelector('{STRIP}').dataset.selected) >= 2", timeout=30_000)
    play.click()
    assert play.inner_text().strip() == "Play"
    time.sleep(1.0)
    stopped = selected(pg)
    assert 2 <= int(stopped) < 12, stopped
    time.sleep(2.5)
    assert selected(pg) == stopped
    wait_selected(pg, int(stopped))
    # P plays and pauses too, at the speed chosen
    pg.locator(f"{PLAYER} .rsx-speed").select_option(label="4 tokens/s")
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    t0 = time.time()
    pg.keyboard.press("p")
    assert play.inner_text().strip() == "Pause" and play.locator("svg[data-icon=pause]").count() == 1
    pg.wait_for_function(f"Number(document.querySelector('{STRIP}').dataset.selected) >= 4", timeout=30_000)
    assert time.time() - t0 < 3.0                           # 4 steps at 1 token/s would take 4 s
    pg.keyboard.press("P")
    assert play.inner_text().strip() == "Play"
    time.sleep(1.0)
    stopped = selected(pg)
    time.sleep(1.5)
    assert selected(pg) == stopped
    pg.locator(f"{PLAYER} .rsx-speed").select_option(label="1 token/s")
    no_exceptions(pg)


def test_06_switch_layer_and_tabs(page):
    pg = page
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 3)
    mark_drawn(pg)
    pg.locator('[data-testid="stSidebar"] label').filter(has_text="Layer 1").click()
    wait_player(pg, f"{REDRAWN} && p.dataset.layer === '1'")        # layer 1: the bottom
    titles = heat_titles(pg)
    assert [t[0] for t in titles] == ["h", "c"] and heat_layers(pg) == [1, 1], titles
    assert title(pg, "step-change").endswith("(layer 1)") and title(pg, "step-gates").endswith("(layer 1)")
    wait_selected(pg, 3)                                    # the selection survives the layer switch
    no_exceptions(pg)
    # the gate heatmaps are sent when their tab is opened
    open_tab(pg, "Gates i · f · o and candidate g", "i,f,o,g")
    assert pg.eval_on_selector_all(f"{HEAT} canvas.rsx-heatcanvas", "cs => cs.map(c => c.dataset.q)") == list("ifog")
    titles = heat_titles(pg)
    assert [t[0] for t in titles] == list("ifog") and heat_layers(pg) == [1, 1, 1, 1], titles
    assert heat_labels(pg)[3] == "saw"
    wait_selected(pg, 3)
    no_exceptions(pg)
    shoot(pg, "explore-gates.png", height=2000)
    # the unit inspector: a Plotly chart under the player, following the selected token
    open_tab(pg, "Unit inspector", "")
    assert pg.locator(f"{HEAT} canvas").count() == 0
    pg.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1")
    assert any("of chosen units (layer 1)" in t for t in plot_titles(pg)), plot_titles(pg)
    pg.wait_for_function("document.querySelector('.js-plotly-plot')?.layout?.meta?.selected === 3")
    assert unit_plot_meta(pg)["layer"] == 1
    keyboard_focus_page(pg)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 4)
    pg.wait_for_function("document.querySelector('.js-plotly-plot')?.layout?.meta?.selected === 4")
    no_exceptions(pg)
    open_tab(pg, "States h · c", "h,c")
    pg.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 0")
    wait_selected(pg, 4)
    mark_drawn(pg)
    pg.locator('[data-testid="stSidebar"] label').filter(has_text="Layer 2").click()
    wait_player(pg, f"{REDRAWN} && p.dataset.layer === '2'")
    assert heat_layers(pg) == [2, 2], heat_titles(pg)
    assert title(pg, "step-change").endswith("(layer 2)")
    no_exceptions(pg)


def _pick_model(pg, name: str):
    pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    pg.get_by_role("option", name=name).click()


def test_07_switch_model(page, browser_models):
    pg = page
    sig = pg.locator(PLAYER).get_attribute("data-sig")
    mark_drawn(pg)
    _pick_model(pg, "tiny-rnn")
    wait_player(pg, f"{REDRAWN} && p.dataset.sig !== '{sig}' && "
                    f"p.querySelector('{HEAT}').dataset.quantities === 'h'")
    assert "A simple RNN has no gates" in pg.locator('[data-testid="step-gates"]').inner_text()
    assert pg.locator('[data-testid="step-gates"] canvas').count() == 0
    assert pg.locator('[data-testid="step-change"] canvas').count() == 1       # Δh only
    assert tabs(pg) == ["State h", "Unit inspector"] and active_tab(pg) == "State h"
    assert [t[0] for t in heat_titles(pg)] == ["h"]
    assert heat_labels(pg)[0] == "<eos>" and len(heat_labels(pg)) == 13
    wait_selected(pg, 12)                                   # another model: the text's last token
    no_exceptions(pg)
    shoot(pg, "explore-rnn.png", height=2200)
    mark_drawn(pg)
    _pick_model(pg, "fiction-lstm" if (browser_models / "fiction-lstm").exists() else "tiny-lstm")
    wait_player(pg, f"{REDRAWN} && p.querySelector('{HEAT}').dataset.quantities === 'h,c'")
    assert pg.locator('[data-testid="step-gates"] canvas').count() == 3
    assert tabs(pg)[0] == "States h · c"
    no_exceptions(pg)


def test_08_empty_and_long_text(page):
    pg = page
    box = pg.locator("textarea").first
    box.fill("")
    box.press("Control+Enter")
    pg.get_by_text("Type a sentence above").wait_for()
    pg.wait_for_function(f"!document.querySelector('{PLAYER}')")
    assert pg.locator(".js-plotly-plot").count() == 0
    no_exceptions(pg)
    # a long text: the player holds a window of 120 tokens around the selected one and asks the
    # server for another window when a step leaves it
    box.fill(" ".join(["It was the best of times , it was the worst of times ."] * 15))   # 210 words
    box.press("Control+Enter")
    wait_player(pg, "p.dataset.n === '211'")
    wait_selected(pg, 210)
    assert pg.locator(f"{STRIP} .tok").count() == 120 and len(heat_labels(pg)) == 120
    assert pg.locator(f"{STRIP} .tok").first.get_attribute("data-pos") == "91"
    assert pg.locator(f"{STRIP} .more").all_inner_texts() == ["… 91 tokens before"]
    assert pg.get_by_text("the player holds tokens 91–210").count() == 1
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")                               # outside the window: fetched from the server
    wait_selected(pg, 0)
    assert pg.locator(f"{STRIP} .tok").first.get_attribute("data-pos") == "0"
    assert heat_labels(pg)[0] == "<eos>" and len(heat_labels(pg)) == 120
    assert pg.locator(f"{STRIP} .more").all_inner_texts() == ["91 tokens after …"]
    no_exceptions(pg)
    box.fill('Holmes said "the game is afoot" and the qwertyuiop left .')
    box.press("Control+Enter")
    pg.locator('[data-testid="unknown-words"]').wait_for()
    assert "qwertyuiop" in pg.locator('[data-testid="unknown-words"]').inner_text()
    wait_player(pg, "p.dataset.n === '14'")
    chip = pg.locator(f'{STRIP} .tok[data-pos="11"]')
    assert chip.locator(".w").inner_text() == "qwertyuiop"
    assert chip.get_attribute("data-unk") == "true" and "unk" in chip.get_attribute("class").split()
    said = pg.locator(f'{STRIP} .tok[data-pos="2"]')        # a word every test model knows
    assert said.locator(".w").inner_text() == "said" and said.get_attribute("data-unk") == "false"
    assert "qwertyuiop" in heat_labels(pg) and quantities(pg) == "h,c"
    wait_selected(pg, 13)
    no_exceptions(pg)


def test_09_bad_upload_shows_what_is_wrong(page):
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
    # the page keeps working on the old model
    wait_player(pg, f"p.dataset.n === '14' && p.querySelector('{HEAT}').dataset.quantities === 'h,c'")
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    wait_selected(pg, 0)


def test_10_guide_page(page):
    pg = page
    keyboard_focus_page(pg)
    pg.keyboard.press("Home")
    for _ in range(3):
        pg.keyboard.press("ArrowRight")
    wait_selected(pg, 3)
    pg.get_by_role("link", name="How to read it").click()       # at once: before the player reports 3
    pg.get_by_text("What you are looking at").wait_for()
    assert pg.locator(PLAYER).count() == 0
    no_exceptions(pg)
    shoot(pg, "guide.png", height=2000)
    pg.get_by_role("link", name="Explore").click()
    wait_player(pg, f"p.dataset.n === '14' && p.querySelectorAll('{HEAT} canvas.rsx-heatcanvas').length === 2")
    wait_selected(pg, 3)                                    # the player comes back where it was
    keyboard_focus_page(pg)                                 # the shortcuts work on the new player
    pg.keyboard.press("Home")
    wait_selected(pg, 0)
    pg.keyboard.press("ArrowRight")
    wait_selected(pg, 1)
    no_exceptions(pg)


# ------------------------------------------ issue 14: fully offline; a character model's whitespace
def local(url: str) -> bool:
    u = urlsplit(url)
    return u.scheme in ("data", "blob", "about") or u.hostname in ("localhost", "127.0.0.1")


class TestOnATinyCharacterModel(OnTinyCharServer):
    """On a server of the tiny LSTM and a tiny character model (conftest.py's char_server): no
    request leaves localhost (tab icon, play/pause icon), and whitespace has its own glyphs in the
    player. AppTest twin of the glyphs: tests/test_pages_analysis.py."""

    def test_no_request_leaves_localhost(self, server, pg):
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

    def test_a_character_models_whitespace_has_its_own_glyphs(self, server, pg):
        open_page(pg, server, "/?model=tiny-char&text=ab%20c%0Ad%09e")
        pg.wait_for_selector(f"{STRIP}[data-labels]")
        labels = pg.locator(STRIP).get_attribute("data-labels").split("|")
        assert labels[1:] == ["a", "b", "␣", "c", "↵", "d", "⇥", "e"], labels
        shown = pg.locator(f"{STRIP} .w").all_inner_texts()
        assert "␣" in shown and "↵" in shown and "⇥" in shown
