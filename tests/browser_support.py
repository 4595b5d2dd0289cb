"""What the browser tests share: where Chromium is, how it is launched, a Streamlit server on a free
port, the models folders they serve, and the helpers that wait for the app, read it and screenshot it.
Browser tests skip with the reason below only where Chromium is absent. The fixtures built on these
(browser, browser_models, server, pg, char_server, char_pg) are in tests/conftest.py."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
PRETRAINED = ROOT / "pretrained"
#: The shipped word models the analysis pages' screenshots are taken with.
FICTION_MODELS = {"fiction-lstm": PRETRAINED / "fiction-lstm", "fiction-rnn": PRETRAINED / "fiction-rnn"}
CHROMIUM = os.environ.get("RNN_EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Chromium not found at {CHROMIUM}: install Debian's chromium "
                              "(apt-get install chromium) or set RNN_EXPLORER_CHROMIUM"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, log: Path, port: int | None = None):
    """Start `streamlit run app.py` on a free port; return (process, url) once it answers."""
    port = port or free_port()
    env = dict(os.environ, RNN_EXPLORER_MODELS=str(models), PYTHONUNBUFFERED="1")
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"streamlit did not answer within 90 s:\n{log.read_text()}")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def running_server(models: Path, log: Path):
    """A Streamlit server on `models` for the duration of the block; yields its url."""
    proc, url = start_server(models, log)
    try:
        yield url
    finally:
        stop_server(proc)


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, launched by Playwright for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def real_models() -> bool:
    """Whether the shipped fiction-lstm and fiction-rnn are both here."""
    return all((p / "card.json").is_file() for p in FICTION_MODELS.values())


def link_models(root: Path, bundles: dict[str, Path]) -> Path:
    """Make `root` a models folder: a link `root/name` to the bundle folder of each name in `bundles`."""
    for name, path in bundles.items():
        (root / name).symlink_to(path, target_is_directory=True)
    return root


@contextlib.contextmanager
def fresh_page(browser, width: int, height: int = 1000, timeout: float = 90_000):
    """A new page of `browser` with that viewport and default timeout (ms), closed after the block."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(timeout)
    try:
        yield page
    finally:
        page.close()


@contextlib.contextmanager
def cold_page(browser, width: int, height: int, timeout: float = 90_000):
    """A page in a fresh context (no cookies, no session storage) with that viewport; `page.errors`
    collects uncaught script errors. Closed after the block."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(timeout)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    try:
        yield page
    finally:
        ctx.close()


class OnTinyCharServer:
    """A base for test classes whose tests run on conftest.py's char_server (the tiny LSTM and a tiny
    character model) rather than on their module's `server`: it overrides `server` and `pg`."""

    @pytest.fixture
    def server(self, char_server):
        return char_server

    @pytest.fixture
    def pg(self, char_pg):
        return char_pg


# ------------------------------------------------------------------------ reading the app
def no_exceptions(pg, errors=(), alerts: bool = False):
    """No exception element on the page, no error alert (with alerts=True), and no uncaught script
    error among `errors` (what a page's "pageerror" handler collected)."""
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()
    if alerts:
        err = pg.locator('[data-testid="stAlertContentError"]')
        assert err.count() == 0, err.first.inner_text()
    assert not errors, errors


def wait_idle(pg, settle: float = 1.0):
    """Until Streamlit has finished the current run (no 'Running…' status) and the page settled."""
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")
    time.sleep(settle)


def idle(pg, settle: float = 1.0):
    """Until the run the last action started has finished (the status widget shows only after a moment)."""
    time.sleep(0.8)
    wait_idle(pg, settle)


def open_page(pg, server: str, path: str):
    """Go to `path` of the app at `server`, wait for the run to finish, and check no exception shows."""
    pg.goto(server + path)
    pg.wait_for_selector('[data-testid="stSidebar"]')
    idle(pg, 1.5)
    assert pg.locator('[data-testid="stException"]').count() == 0


def wait_charts(pg, n: int):
    pg.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}")


def chart_titles(pg) -> list[str]:
    return pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")


def shoot(pg, name: str, max_height: int = 7000):
    """Full-page screenshot into docs/screenshots/: Streamlit scrolls inside its own container, so the
    viewport is grown to the content's height first. Taken only with the shipped models (the docs show
    the real thing)."""
    if not real_models():
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    h = pg.evaluate("() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
                    " if (!m) return 2000;"
                    " const b = Array.from(m.querySelectorAll('[data-testid=\"stElementContainer\"]'))"
                    "   .filter(e => e.checkVisibility() && e.getBoundingClientRect().height > 0)"
                    "   .map(e => e.getBoundingClientRect().bottom);"
                    " return Math.ceil(Math.max(...b, 0)) + 80; }")
    old = pg.viewport_size
    pg.set_viewport_size({"width": old["width"], "height": min(max(int(h), 900), max_height)})
    time.sleep(1.5)
    pg.screenshot(path=str(SHOTS / name))
    pg.set_viewport_size(old)
    time.sleep(0.3)
