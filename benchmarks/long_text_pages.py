"""How long a long text takes on each page that takes text, and the server memory it takes, in headless
Chromium, against the Explore page (issues 14 and 22).

    python benchmarks/long_text_pages.py [--models pretrained] [--words 1000 5000] [--rounds 2] [--app-root DIR]
                                         [--pages explore memory ...]

Starts `streamlit run app.py` (from --app-root, default this checkout: point it at an older checkout to
compare before and after) on the models folder, then for each page puts the same N-word passage (from
the held-out books in corpora/heldout, the default corpus) into its text box (Explore's text, Contrast's
text A, Generate's prompt, the Lesson's step-1 sentence, Memory's, Intervene's and Compare's text, and
for Patch the passage as the clean text and the same with she -> he, her -> his as the corrupted one),
presses Ctrl+Enter / Enter and stops the clock when the run has finished: the page shows the new text
(a strip or player of that many tokens) or its readout has changed (Memory, Compare) or it shows its
stated limit (Intervene, Patch: "... works on up to N tokens; your text has M"), the page has been
scrolled through (charts below the fold are drawn too) and the browser's main thread answers two
animation frames (a frozen tab answers late). It also sums the main thread's long tasks (> 50 ms,
PerformanceObserver) over that time, and counts the Plotly tick labels and strip chips drawn.

Server memory: before each submission the server's peak resident set is reset (Linux
/proc/PID/clear_refs), and after it `peak_growth_mb` is its peak (VmHWM) minus the resident set at
the reset: what that one request added at its worst. The largest WebSocket frame the page received
is `max_frame_mb` (what was sent to the browser at once).

Rounds alternate the pages, so background load hits them alike; medians are printed, with each page's
ratio to Explore at the same length measured in the same run (the issue: Explore draws 5,000 words in
3.2 s; Memory took 100 s at 1,000 words; Patch at 1,000 words killed the server at 21 GB). One JSON
line per page and length, then a summary line per length.
"""
from __future__ import annotations

import argparse
import json
import os
import re
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
#: page -> (path, selector of its text box, key that submits it, how the run shows it has finished:
#: "strip" (a strip or player of the new text's tokens), "limit" (a refusal stating the limit) or a
#: selector whose text changes)
PAGES = {"explore": ("/", "textarea", "Control+Enter", "strip"),
         "contrast": ("/contrast", "textarea", "Control+Enter", "strip"),
         "generate": ("/generate", "input[type=text]", "Enter", "strip"),
         "lesson": ("/lesson?step=reading", "textarea", "Control+Enter", "strip"),
         "memory": ("/memory", "textarea", "Control+Enter", "[data-testid=provenance-check]"),
         "intervene": ("/intervene", "textarea", "Control+Enter", "limit"),
         "patch": ("/patch", "textarea", "Control+Enter", "limit"),
         "compare": ("/compare", "textarea", "Control+Enter", "[data-testid=compare-summary]")}


def corpus_dir() -> Path:
    sys.path.insert(0, str(ROOT))
    from explorer import settings
    return settings.default_corpus(ROOT / "corpora" / "heldout")


def text(n: int, salt: int) -> str:
    """n words of running text from the held-out Persuasion (a different stretch per salt)."""
    body = (corpus_dir() / "austen_persuasion.txt").read_text(encoding="utf-8").split()
    a = 2000 + 997 * salt
    return " ".join(body[a:a + n])


def corrupted(t: str) -> str:
    swap = {"she": "he", "She": "He", "her": "his", "Her": "His"}
    return re.sub(r"\b(she|She|her|Her)\b", lambda m: swap[m.group(1)], t)


def clipped_words(t: str) -> int:
    """The words of `t` the app reads (it clips at settings.MAX_CHARS)."""
    sys.path.insert(0, str(ROOT))
    from explorer import clip_text
    return len(clip_text(t)[0].split())


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> float:
    """Reset the process's peak resident set; its resident set now, MB."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass
    return _status(pid, "VmRSS")


OBSERVE = """() => { window.__long = 0; new PerformanceObserver(l => { for (const e of l.getEntries())
  window.__long += e.duration; }).observe({type: 'longtask', buffered: false}); }"""
COUNT = """() => ({
  ticks: [...document.querySelectorAll('.js-plotly-plot')].reduce((n, p) => n + p.querySelectorAll('.xtick').length, 0),
  chips: [...document.querySelectorAll('[data-testid=token-strip], [data-testid=pair-strip]')]
           .reduce((n, s) => n + s.querySelectorAll('[data-pos]').length, 0)})"""


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


def measure(browser, url: str, page: str, body: str, pid: int) -> dict:
    path, sel, key, done = PAGES[page]
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(900_000)
    frames = [0]
    pg.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.__setitem__(
        0, max(frames[0], len(f) if isinstance(f, (bytes, str)) else 0))))
    pg.goto(url + path)
    pg.wait_for_selector('[data-testid="stSidebar"]')
    idle(pg)
    boxes = pg.locator(f'[data-testid="stMain"] {sel}')
    box = boxes.first
    if page == "patch":                      # the clean passage and its she -> he, her -> his twin
        boxes.nth(1).fill(corrupted(body))
        boxes.nth(1).press(key)
        idle(pg)
    box.fill(body)
    before = pg.locator(done).first.inner_text() if done not in ("strip", "limit") and pg.locator(done).count() else ""
    pg.evaluate(OBSERVE)
    frames[0] = 0
    rss = reset_peak(pid)
    t0 = time.perf_counter()
    box.press(key)
    if done == "strip":
        idle(pg, clipped_words(body))
    elif done == "limit":
        pg.wait_for_function("() => /works on up to [0-9,]+ tokens; your texts? ha(s|ve) [0-9,]+/.test("
                             "document.querySelector('[data-testid=stMain]').innerText)", timeout=900_000)
        idle(pg)
    else:
        pg.wait_for_function("([s, b]) => { const e = document.querySelector(s); return e && e.innerText !== b; }",
                             arg=[done, before], timeout=900_000)
        idle(pg)
    for _ in range(8):                       # scroll through the page: charts below the fold are drawn too
        pg.mouse.move(700, 500)
        pg.mouse.wheel(0, 2500)
        pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    pg.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))",
                         timeout=900_000)
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    seconds = time.perf_counter() - t0
    peak = _status(pid, "VmHWM")
    out = {"seconds": seconds, "long_tasks_s": pg.evaluate("() => window.__long") / 1000,
           "peak_growth_mb": peak - rss, "peak_mb": peak, "max_frame_mb": frames[0] / 2 ** 20,
           "limit": pg.locator('[data-testid=stMain]').inner_text().count("works on up to") > 0, **pg.evaluate(COUNT)}
    pg.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / "pretrained"))
    ap.add_argument("--words", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    ap.add_argument("--app-root", default=str(ROOT))
    ap.add_argument("--port", type=int, default=8591)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    pages = ["explore"] + [p for p in a.pages if p != "explore"]       # Explore: the baseline
    log = Path(tempfile.mkdtemp()) / "streamlit.log"
    proc, url = start(Path(a.app_root), Path(a.models), a.port, log)
    runs: dict[tuple, list[dict]] = {(p, n): [] for n in a.words for p in pages}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            measure(browser, url, "explore", text(20, 99), proc.pid)          # warm-up: model, imports
            for r in range(a.rounds):
                order = pages if r % 2 == 0 else pages[::-1]
                for n in a.words:
                    for page in order:
                        runs[(page, n)].append(measure(browser, url, page, text(n, r), proc.pid))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    for n in a.words:
        base = statistics.median(x["seconds"] for x in runs[("explore", n)])
        summary = {}
        for page in pages:
            xs = runs[(page, n)]
            med = statistics.median(x["seconds"] for x in xs)
            row = {"page": page, "words": n, "median_s": round(med, 2), "ratio_to_explore": round(med / base, 2),
                   "peak_growth_mb": round(max(x["peak_growth_mb"] for x in xs)),
                   "peak_server_mb": round(max(x["peak_mb"] for x in xs)),
                   "max_frame_mb": round(max(x["max_frame_mb"] for x in xs), 2),
                   "stated_limit": xs[-1]["limit"],
                   "long_tasks_s": round(statistics.median(x["long_tasks_s"] for x in xs), 2),
                   "tick_labels": xs[-1]["ticks"], "strip_chips": xs[-1]["chips"],
                   "runs": [round(x["seconds"], 2) for x in xs]}
            summary[page] = [row["median_s"], row["peak_growth_mb"]]
            print(json.dumps(row), flush=True)
        print(json.dumps({"app_root": a.app_root, "words": n, "explore_s": round(base, 2),
                          "median_s_and_peak_growth_mb": summary}), flush=True)


if __name__ == "__main__":
    main()
