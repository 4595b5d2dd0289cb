"""explorer.show: the Explore player as an anywidget in a notebook, running explorer/present/assets/player.js itself.

The unit tests check the Python side (data, tabs, errors) and that the module is player.js plus the
anywidget entry; the browser test loads that module in headless Chromium behind a stand-in for
anywidget's model (get / set / on / save_changes) and steps it with keys, buttons and the mouse."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import explorer as E
from explorer.present import widget as W

from browser_support import CHROMIUM, CHROMIUM_ARGS, SHOTS

TEXT = "Mary loves John . John loves Mary ."


@pytest.fixture(scope="module")
def model(models_dir):
    return E.load_model(models_dir / "tiny-lstm")


def test_one_javascript_source():
    js = W.PLAYER_JS.read_text(encoding="utf-8")
    esm = W.esm()
    assert esm.startswith(js.split(W.STREAMLIT_ENTRY)[0])          # player.js, unchanged up to its entry
    assert js.split(W.STREAMLIT_ENTRY)[1] in esm                    # and after it
    assert esm.count("export default") == 1 and "export default { render: anywidgetRender }" in esm
    assert W.PLAYER_CSS.read_text(encoding="utf-8") in W.css()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_module_parses(tmp_path):
    f = tmp_path / "player.mjs"
    f.write_text(W.esm(), encoding="utf-8")
    r = subprocess.run(["node", "--check", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_show_a_text_and_a_trace(model):
    w = E.show(TEXT, model=model)
    tr = model.trace(TEXT)
    assert w.data["n"] == len(tr) == w.pos + 1 and w.data["lo"] == 0 and w.data["hi"] == len(tr)
    assert [h["q"] for h in w.data["heat"]] == ["h", "c"] and w.data["views"][0] == "States h · c"
    w.view = "Gates i · f · o and candidate g"                      # a tab chosen in the browser
    assert [h["q"] for h in w.data["heat"]] == ["i", "f", "o", "g"]
    w2 = E.show(tr, model=model, layer=1)
    assert w2.data["layer"] == 1 and w2.trace is tr
    with pytest.raises(ValueError, match="needs model="):
        E.show(TEXT)
    with pytest.raises(ValueError, match=r"layer 3 does not exist: the model has 2 layers"):
        E.show(tr, model=model, layer=3)
    with pytest.raises(ValueError, match=r"layers are numbered from 1, the bottom layer"):
        E.show(tr, model=model, layer=0)
    with pytest.raises(TypeError, match="Trace or a str"):
        E.show(42, model=model)


FAKE_MODEL = """
window.__sent = [];
window.__handlers = {};
window.__model = {
  _d: %s,
  get(k) { return this._d[k]; },
  set(k, v) { this._d[k] = v; window.__sent.push([k, v]); },
  save_changes() {},
  on(ev, f) { (window.__handlers[ev] = window.__handlers[ev] || []).push(f); },
  off(ev, f) { window.__handlers[ev] = (window.__handlers[ev] || []).filter(g => g !== f); },
};
"""


@pytest.mark.browser
@pytest.mark.slow
def test_widget_steps_in_chromium(model, tmp_path):
    """The anywidget module in a page: it draws the player, keys and buttons step it, and each step
    is told to the widget's model (`pos`), as JupyterLab's anywidget would relay it to Python."""
    if not __import__("pathlib").Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    w = E.show(TEXT, model=model)
    (tmp_path / "player.mjs").write_text(W.esm(), encoding="utf-8")
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><style>" + W.css() + "</style></head><body>"
        "<div id='out'></div><script>" + FAKE_MODEL % json.dumps({"data": w.data, "pos": w.pos, "view": w.view})
        + "</script><script type='module'>import m from './player.mjs';"
        "window.__cleanup = m.render({model: window.__model, el: document.getElementById('out')});"
        "</script></body></html>", encoding="utf-8")
    n = w.data["n"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=CHROMIUM_ARGS + ["--allow-file-access-from-files"])
        pg = b.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto((tmp_path / "index.html").as_uri())
        pg.wait_for_function("() => { const p = document.querySelector('[data-testid=player]');"
                             " return p && p.dataset.drawn; }")
        player = pg.locator("[data-testid=player]")
        assert player.get_attribute("data-selected") == str(n - 1)
        labels = pg.eval_on_selector_all("[data-testid=token-strip] .tok .w", "els => els.map(e => e.textContent)")
        assert labels[:3] == ["<eos>", "Mary", "loves"] or labels[1:3] == ["mary", "loves"]
        pg.keyboard.press("Home")
        pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '0'")
        pg.keyboard.press("ArrowRight")
        pg.keyboard.press("ArrowRight")
        pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '2'")
        pg.locator(".rsx-back").click()
        pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '1'")
        pg.wait_for_function("() => window.__sent.some(([k, v]) => k === 'pos' && v === 1)")   # told to Python
        # hover a heatmap cell: the tooltip names the unit and the value
        box = pg.locator("[data-testid=heatmaps] canvas.rsx-heatcanvas").first.bounding_box()
        pg.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20)
        tip = pg.locator(".rsx-tip")
        tip.wait_for(state="visible")
        assert "unit" in tip.inner_text()
        pg.mouse.move(1, 1)
        pg.screenshot(path=str(SHOTS / "notebook-widget.png"))
        assert not errors, errors
        b.close()
