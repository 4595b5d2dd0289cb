"""Train on your own text in the real app (headless Chromium): upload a short text, start a smoke-test
run (as --dry-run), watch the background run's progress, see the bundle appear and open it in
Explore. Screenshots: docs/screenshots/train-running.png, train.png (the finished run), train-explore.png."""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from browser_support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, SHOTS, running_server

pytestmark = BROWSER_MARKS
SIDEBAR = '[data-testid="stSidebar"]'
WORDS = "the cat sat on the mat and the dog saw the cat . mary loves john . john loves mary .".split()


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-train")
    models = root / "models"
    models.mkdir()
    (models / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    old = os.environ.get("RNN_EXPLORER_RUNS")
    os.environ["RNN_EXPLORER_RUNS"] = str(root / "runs")        # the server inherits it
    try:
        with running_server(models, root / "streamlit.log") as url:
            yield url, models
    finally:
        if old is None:
            os.environ.pop("RNN_EXPLORER_RUNS", None)
        else:
            os.environ["RNN_EXPLORER_RUNS"] = old


def test_train_a_tiny_model_and_open_it(server):
    from playwright.sync_api import sync_playwright

    url, models = server
    rnd = random.Random(0)
    text = "\n\n".join(" ".join(rnd.choice(WORDS) for _ in range(60)) for _ in range(80)).encode()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pg = b.new_page(viewport={"width": 1440, "height": 1100})
        pg.set_default_timeout(90_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url + "/train")
        pg.locator(".st-key-train_form").wait_for()
        pg.locator('.st-key-train_form [data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            files=[{"name": "my story.txt", "mimeType": "text/plain", "buffer": text}])
        pg.locator('.st-key-train_form [data-testid="stFileChip"]').wait_for()
        name = pg.locator(".st-key-train_name input")
        name.fill("tiny-trained")
        name.press("Enter")
        time.sleep(0.5)
        pg.locator(".st-key-train_dry label").click()
        time.sleep(0.5)
        pg.locator(".st-key-train_start button").click()
        pg.locator(".st-key-train_status").wait_for()           # the background run's status
        pg.screenshot(path=str(SHOTS / "train-running.png"))
        done = pg.locator(".st-key-train_done")
        done.wait_for(timeout=180_000)
        assert "tiny-trained" in done.inner_text() and "finished" in done.inner_text()
        status = pg.locator(".st-key-train_status").inner_text()
        assert "done" in status and "Loss" in status and "Tokens/s" in status
        assert (models / "tiny-trained" / "card.json").is_file()
        assert pg.locator('[data-testid="stException"]').count() == 0
        pg.mouse.move(2, 2)
        time.sleep(1)
        pg.screenshot(path=str(SHOTS / "train.png"))
        # a new tab (a new session): the run's result is still there, it lives on the server
        pg.goto(url + "/guide")
        time.sleep(1)
        pg.goto(url + "/train")
        done.wait_for()
        pg.locator(".st-key-train_open button").click()
        pg.wait_for_function("() => { const p = document.querySelector('[data-testid=player]');"
                             " return p && p.dataset.drawn; }")
        model = pg.locator(f'{SIDEBAR} [data-testid="stSelectbox"] input').first.input_value()
        assert model == "tiny-trained"
        assert pg.locator('[data-testid="stException"]').count() == 0 and not errors, errors
        pg.screenshot(path=str(SHOTS / "train-explore.png"))
        b.close()
