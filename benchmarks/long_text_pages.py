"""How long a long text takes on each page, in headless Chromium, against the Explore page (issue 14).

    python benchmarks/long_text_pages.py [--models pretrained] [--words 1000] [--rounds 2] [--app-root DIR]

Starts `streamlit run app.py` (from --app-root, default this checkout: point it at an older checkout to
compare before and after) on the models folder, then for each page puts the same N-word text into its
text box (Explore's text, Contrast's text A, Generate's prompt, the Lesson's step-1 sentence), presses
Ctrl+Enter / Enter and stops the clock when the run has finished, the page has been scrolled through
(charts below the fold are drawn too) and the browser's main thread answers two animation frames (a
frozen tab answers late). It also sums the main thread's long tasks (> 50 ms,
PerformanceObserver) over that time, and counts the Plotly tick labels and strip chips drawn. Rounds
alternate the pages, so background load hits them alike; medians are printed, with each page's ratio
to Explore measured in the same run (the issue: Explore draws 3,000 words in under 4 s; Contrast took
75 s for 1,000 words, Generate 34 s, Lesson 21 s). One JSON line per page, then a summary line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("RNN_EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WORDS = ("it was a dark and stormy night and the rain fell in torrents except at occasional intervals when "
         "it was checked by a violent gust of wind which swept up the streets for it is in london that our "
         "scene lies rattling along the housetops and fiercely agitating the scanty flame of the lamps").split()

#: page -> (path, selector of its text box, key that submits it)
PAGES = {"explore": ("/", "textarea", "Control+Enter"),
         "contrast": ("/contrast", "textarea", "Control+Enter"),
         "generate": ("/generate", "input[type=text]", "Enter"),
         "lesson": ("/lesson?step=reading", "textarea", "Control+Enter")}

OBSERVE = """() => { window.__long = 0; new PerformanceObserver(l => { for (const e of l.getEntries())
  window.__long += e.duration; }).observe({type: 'longtask', buffered: false}); }"""
COUNT = """() => ({
  ticks: [...document.querySelectorAll('.js-plotly-plot')].reduce((n, p) => n + p.querySelectorAll('.xtick').length, 0),
  chips: [...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip]')]
           .reduce((n, s) => n + s.querySelectorAll('[data-pos]').length, 0)})"""


def text(n: int, salt: int) -> str:
    return " ".join(WORDS[(i + salt) % len(WORDS)] for i in range(n)) + "."


def start(app_root: Path, models: Path, port: int, log: Path):
    env = dict(os.environ, RNN_EXPLORER_MODELS=str(models), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=app_root, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"streamlit did not start:\n{log.read_text()}")


READ = ("n => [...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip], "
        "[data-testid=player]')].some(e => +e.dataset.n >= n)")


def idle(pg, tokens: int = 0):
    """Until the page shows a text of at least `tokens` tokens (the new one), the run has finished and
    the main thread answers two animation frames."""
    if tokens:
        pg.wait_for_function(READ, arg=tokens, timeout=900_000)
    time.sleep(0.8)
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=900_000)
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def measure(browser, url: str, page: str, body: str) -> dict:
    path, sel, key = PAGES[page]
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(900_000)
    pg.goto(url + path)
    pg.wait_for_selector('[data-testid="stSidebar"]')
    idle(pg)
    box = pg.locator(f'[data-testid="stMain"] {sel}').first
    box.fill(body)
    pg.evaluate(OBSERVE)
    t0 = time.perf_counter()
    box.press(key)
    idle(pg, len(body.split()))
    for _ in range(8):                       # scroll through the page: charts below the fold are drawn too
        pg.mouse.move(700, 500)
        pg.mouse.wheel(0, 2500)
        pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    pg.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))",
                         timeout=900_000)
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "long_tasks_s": pg.evaluate("() => window.__long") / 1000, **pg.evaluate(COUNT)}
    pg.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / "pretrained"))
    ap.add_argument("--words", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--app-root", default=str(ROOT))
    ap.add_argument("--port", type=int, default=8591)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    proc, url = start(Path(a.app_root), Path(a.models), a.port, log)
    runs: dict[str, list[dict]] = {p: [] for p in PAGES}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            measure(browser, url, "explore", text(20, 99))                    # warm-up: model, imports
            for r in range(a.rounds):
                order = list(PAGES) if r % 2 == 0 else list(PAGES)[::-1]
                for page in order:
                    runs[page].append(measure(browser, url, page, text(a.words, r)))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    base = statistics.median(x["seconds"] for x in runs["explore"])
    summary = {}
    for page, xs in runs.items():
        med = statistics.median(x["seconds"] for x in xs)
        row = {"page": page, "words": a.words, "median_s": round(med, 2),
               "ratio_to_explore": round(med / base, 2),
               "long_tasks_s": round(statistics.median(x["long_tasks_s"] for x in xs), 2),
               "tick_labels": xs[-1]["ticks"], "strip_chips": xs[-1]["chips"], "runs": [round(x["seconds"], 2) for x in xs]}
        summary[page] = row["median_s"]
        print(json.dumps(row))
    print(json.dumps({"app_root": a.app_root, "explore_s": round(base, 2), "medians_s": summary}))


if __name__ == "__main__":
    main()
