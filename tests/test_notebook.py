"""docs/notebook.ipynb: executed top to bottom with nbclient, and opened in JupyterLab in headless
Chromium, where the player widget (explorer.show) is stepped with the keyboard and its buttons.

The notebook is written by scripts/make_notebook.py; the test checks that the two agree."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, free_port

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "docs" / "notebook.ipynb"
nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -r requirements-dev.txt)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -r requirements-dev.txt)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (ROOT / "pretrained" / "fiction-lstm" / "card.json").is_file(),
                                 reason="the notebook reads pretrained/fiction-lstm")]


def test_the_notebook_is_what_the_script_writes(tmp_path):
    import runpy
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        (tmp_path / "docs").mkdir()
        runpy.run_path(str(ROOT / "scripts" / "make_notebook.py"))
    finally:
        os.chdir(cwd)
    def cells(path):
        return [(c.cell_type, c.source) for c in nbformat.read(path, 4).cells]     # ids are random
    assert cells(tmp_path / "docs" / "notebook.ipynb") == cells(NB)


def test_the_notebook_runs():
    nb = nbformat.read(NB, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NB.parent)}}).execute()
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.output_type == "error"]
    widget = [o for o in outs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget) == 1                                             # E.show displayed the player
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outs)
    assert "pytorch/examples word_language_model" in text and "KB of offline HTML" in text


@pytest.mark.browser
def test_the_player_steps_in_jupyterlab(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install -r requirements-dev.txt)")
    from playwright.sync_api import sync_playwright

    # JupyterLab saves what it runs: serve a copy of the notebook (beside links to the code and models)
    # so that the repository's notebook is never rewritten with outputs.
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "notebook.ipynb").write_bytes(NB.read_bytes())
    for name in ("explorer", "pretrained"):      # the widget reads nothing from ui/
        (site / name).symlink_to(ROOT / name, target_is_directory=True)
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--allow-root",
                             "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
                             f"--ServerApp.root_dir={site}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError((tmp_path / "lab.log").read_text())
                time.sleep(0.5)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pg = b.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(120_000)
            pg.goto(f"http://127.0.0.1:{port}/lab/tree/docs/notebook.ipynb")
            pg.locator(".jp-Notebook").wait_for()
            time.sleep(3)                                    # the kernel starts
            pg.locator(".jp-Notebook").click()
            pg.keyboard.press("Escape")                      # command mode
            pg.get_by_role("menuitem", name="Run").click()
            pg.get_by_text("Run All Cells", exact=True).click()
            player = pg.locator("[data-testid=player]")
            player.wait_for(timeout=180_000)
            pg.wait_for_function("() => { const p = document.querySelector('[data-testid=player]');"
                                 " return p && p.dataset.drawn; }")
            n = int(player.locator(".rsx-slider").get_attribute("max")) + 1
            assert player.get_attribute("data-selected") == str(n - 1)
            player.scroll_into_view_if_needed()
            player.locator(".rsx-first").click()
            pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '0'")
            pg.keyboard.press("ArrowRight")                  # keys step the player that has the focus
            pg.keyboard.press("ArrowRight")
            pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '2'")
            player.locator(".rsx-next").click()
            pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '3'")
            assert player.locator("[data-testid=token-strip] .tok.sel .w").inner_text() == "walked"
            pg.keyboard.press("End")
            pg.wait_for_function(f"() => document.querySelector('[data-testid=player]').dataset.selected === '{n - 1}'")
            pg.keyboard.press("Home")
            pg.wait_for_function("() => document.querySelector('[data-testid=player]').dataset.selected === '0'")
            assert pg.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
            no = pg.get_by_role("button", name="No", exact=True)     # JupyterLab's "news?" toast
            if no.count():
                no.first.click()
            player.scroll_into_view_if_needed()
            pg.mouse.move(2, 2)
            time.sleep(0.5)
            pg.screenshot(path=str(SHOTS / "notebook-jupyterlab.png"))   # the notebook around the player
            b.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
