"""How fast the Explore page follows a new sentence, against the framework's floor.

    python benchmarks/app_latency.py [--models pretrained] [--sentences 20] [--rounds 2]

Drives headless Chromium (Playwright) against two Streamlit servers, one at a time, alternating in
rounds so that background load hits both alike:

* the explorer (app.py), opened on the model the app picks by default (pretrained/fiction-lstm), as
  it opens: the player (explorer/present/assets/player.js) with its token strip, step view (next word, Δh/Δc,
  gates) and the h and c heatmaps (the gate tab and the unit inspector are sent only when opened);
* benchmarks/bare_heatmap_app.py: a text box and one Plotly heatmap of random numbers of the same
  size (units x tokens), the cheapest page Streamlit can draw for this input.

For each of N different sentences it fills the text box, presses Ctrl+Enter and stops the clock when
the DOM shows every view updated: the token strip and the heatmaps' token axis read exactly the new
sentence's tokens, both heatmap canvases are drawn, and the step view's title names its last token.
The medians and their ratio are printed, and the time from launching the app's server process to the
first full render (cold start), and how long one step (→) takes on a 30- and a 100-token text
(stepping runs in the browser). Two sentences per server are a warm-up and are not counted.
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
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# Each ends with a different word (the step-view titles name the last token); tokens are separated by
# spaces, so str.split() gives the tokenizer's tokens and the bare page gets the same number.
SENTENCES = [
    "the old man walked slowly along the river bank",
    "she opened the letter and read it twice before she spoke",
    "it was a dark and stormy night , and the rain fell in torrents",
    "holmes sat in his chair with his eyes closed",
    "i have no doubt that you will find the answer",
    "the carriage stopped at the door of the great house",
    "mary looked at him , and then she looked away",
    "there was nothing in the room but a table and a lamp",
    "he said that he would come back in the morning",
    "my dear sister , i write to you from london",
    "the doctor shook his head and said nothing more",
    "we walked together through the garden until sunset",
    "you must not think too badly of me , said the captain",
    "a letter came for her on the following day",
    "the fire had gone out and the room was cold",
    "they had been married for nearly twenty years",
    "she could not help laughing at his serious face",
    "the inspector took out his notebook and began to write",
    "what a strange thing it is to be young",
    "the ship sailed out of the harbour at dawn",
    "he was the youngest of three brothers , and the cleverest",
    "nobody in the village had ever seen such a storm",
    "i shall never forget the look on her face",
    "at last the long winter came to an end",
]

# The explorer counts as updated when its player (explorer/present/assets/player.js) has drawn the new sentence:
# the token strip, the heatmaps' token axis and the step view's title all read the new tokens. The
# player draws strip, step view and both heatmap canvases in one synchronous pass before it sets
# these attributes, and the check runs on animation frames, so the frame that shows them is painted.
APP_DONE = """([labels, last]) => {
    const strip = document.querySelector('[data-testid="token-strip"]');
    const heat = document.querySelector('[data-testid="heatmaps"]');
    const topk = document.querySelector('[data-testid="step-topk"] .rsx-title');
    if (!strip || !heat || !topk) return false;
    const want = labels.join('|');
    return strip.dataset.labels === want && heat.dataset.labels === want && heat.dataset.quantities === 'h,c'
        && heat.querySelectorAll('canvas.rsx-heatcanvas').length === 2
        && topk.textContent.includes('\u201c' + last + '\u201d');
}"""

BARE_DONE = """([labels, last]) => {
    const p = document.querySelector('.js-plotly-plot');
    if (!p) return false;
    const ticks = Array.from(p.querySelectorAll('.xtick text')).map(e => e.textContent);
    return ticks.join('|') === labels.join('|');
}"""


def start(script: str, port: int, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_health(port: int, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def labels_of(sentence: str) -> list[str]:
    return ["<eos>"] + sentence.split()


def submit(page, sentence: str, done_js: str, timeout_ms: int) -> float:
    box = page.locator("textarea").first
    box.fill(sentence)
    labels = labels_of(sentence)
    t0 = time.perf_counter()
    box.press("Control+Enter")
    page.wait_for_function(done_js, arg=[labels, labels[-1]], polling="raf", timeout=timeout_ms)
    return time.perf_counter() - t0


def run_server(browser, kind: str, sentences, port: int, env: dict, log, viewport) -> dict:
    """Start one server, measure cold start (app only) and the given sentences, stop it."""
    script = "app.py" if kind == "app" else "benchmarks/bare_heatmap_app.py"
    page = browser.new_page(viewport=viewport)
    t0 = time.perf_counter()
    proc = start(script, port, env, log)
    try:
        wait_health(port, proc)
        page.goto(f"http://localhost:{port}")
        if kind == "app":
            page.wait_for_function("document.querySelectorAll('[data-testid=heatmaps] canvas.rsx-heatcanvas').length"
                                   " === 2 && !!document.querySelector('[data-testid=step-topk] .rsx-title')",
                                   timeout=120_000)
            cold = time.perf_counter() - t0
            page.locator('[data-testid="stMainBlockContainer"] h4').first.click()
        else:
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .xtick text').length > 0",
                                   timeout=120_000)
            cold = time.perf_counter() - t0
        done = APP_DONE if kind == "app" else BARE_DONE
        for s in ("a warm up sentence for the cache", "and a second one to warm up everything"):
            submit(page, s, done, 60_000)
        times = [submit(page, s, done, 60_000) for s in sentences]
        steps = {n: step_times(page, n) for n in (30, 100)} if kind == "app" else {}
        errors = page.locator('[data-testid="stException"]').count()
    finally:
        page.close()
        stop(proc)
    return {"cold": cold, "times": times, "steps": steps, "exceptions": errors}


STEP_DONE = """([i, word]) => {
    const strip = document.querySelector('[data-testid="token-strip"]');
    const topk = document.querySelector('[data-testid="step-topk"]');
    const heat = document.querySelector('[data-testid="heatmaps"]');
    if (!strip || strip.dataset.selected !== String(i) || !topk || topk.dataset.position !== String(i)) return false;
    return heat.dataset.selected === String(i)
        && topk.querySelector('.rsx-title').textContent.startsWith('Next word after \u201c' + word + '\u201d');
}"""


def step_times(page, n_tokens: int = 100, n_steps: int = 10) -> list[float]:
    """A text of n_tokens tokens (h and c heatmaps of as many columns): time from pressing → until
    the token strip and the step view show the next token (the heatmaps are not redrawn by a step)."""
    words = " ".join(SENTENCES).split()[:n_tokens - 1]
    box = page.locator("textarea").first
    box.fill(" ".join(words))
    box.press("Control+Enter")
    page.wait_for_function(f"document.querySelector('[data-testid=heatmaps]')?.dataset.labels?.split('|').length === {len(words) + 1}",
                           timeout=60_000)
    page.locator('[data-testid="stMainBlockContainer"] h4').first.click()
    page.keyboard.press("Home")
    page.wait_for_function(STEP_DONE, arg=[0, "<eos>"], polling="raf", timeout=60_000)
    out = []
    for i in range(1, n_steps + 1):
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(STEP_DONE, arg=[i, words[i - 1]], polling="raf", timeout=60_000)
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "pretrained"), help="folder of bundles (RNN_EXPLORER_MODELS)")
    ap.add_argument("--sentences", type=int, default=20, help="measured sentences per app (at least 20)")
    ap.add_argument("--rounds", type=int, default=2, help="alternate bare/app this many times")
    ap.add_argument("--units", type=int, default=0, help="heatmap rows of the bare page (default: the model's)")
    ap.add_argument("--chromium", default=os.environ.get("RNN_EXPLORER_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--json", help="also write the raw timings here")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    import explorer as E

    models = E.list_models(a.models)
    if not models:
        sys.exit(f"no model bundle in {a.models}")
    default = next((m for m in models if m.name == "fiction-lstm"), models[0])
    cfg = json.loads((default / "card.json").read_text())["config"]
    units = a.units or cfg["hidden_size"]
    n = max(1, a.sentences)
    pool = (SENTENCES * (n // len(SENTENCES) + 1))[:n]
    chunks = [pool[i::a.rounds] for i in range(a.rounds)]
    env = dict(os.environ, RNN_EXPLORER_MODELS=str(a.models), BARE_UNITS=str(units), PYTHONUNBUFFERED="1")
    log = open(Path(tempfile.gettempdir()) / "app_latency_servers.log", "wb")
    res = {"app": {"times": [], "cold": [], "steps": {30: [], 100: []}}, "bare": {"times": [], "cold": [], "steps": {}}}
    viewport = {"width": 1440, "height": 3000}    # every chart in view, so all of them are drawn
    print(f"model {default.name}: {cfg['cell']} {cfg['layers']}x{cfg['hidden_size']}; bare heatmap {units} rows; "
          f"{n} sentences x 2 apps in {a.rounds} rounds", flush=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=CHROMIUM_ARGS)
        for r, chunk in enumerate(chunks):
            for kind in ("bare", "app"):
                out = run_server(browser, kind, chunk, a.port, env, log, viewport)
                res[kind]["times"] += out["times"]
                res[kind]["cold"].append(out["cold"])
                for n_tok, ts in out["steps"].items():
                    res[kind]["steps"][n_tok] += ts
                print(f"  round {r + 1} {kind:4s}: median {statistics.median(out['times']) * 1000:6.0f} ms over "
                      f"{len(out['times'])} sentences, cold start {out['cold']:.2f} s, "
                      f"exceptions on page: {out['exceptions']}", flush=True)
        browser.close()
    app_med = statistics.median(res["app"]["times"])
    bare_med = statistics.median(res["bare"]["times"])
    print()
    print(f"new sentence -> every chart updated (median of {len(res['app']['times'])} sentences):")
    print(f"  explorer (app.py)          {app_med * 1000:7.0f} ms   (p90 {sorted(res['app']['times'])[int(0.9 * len(res['app']['times'])) - 1] * 1000:.0f} ms)")
    print(f"  bare Streamlit heatmap     {bare_med * 1000:7.0f} ms   (p90 {sorted(res['bare']['times'])[int(0.9 * len(res['bare']['times'])) - 1] * 1000:.0f} ms)")
    print(f"  ratio explorer / bare      {app_med / bare_med:7.2f}    (target <= 1.5)")
    print(f"cold start, server launch -> first full render of the explorer: "
          f"{', '.join(f'{c:.2f} s' for c in res['app']['cold'])} (target <= 5 s)")
    for n_tok, ts in res["app"]["steps"].items():
        if ts:
            print(f"one step (→) on a {n_tok}-token text, until strip, step view and heatmap outline "
                  f"({units} units x {n_tok} tokens) show it: median {statistics.median(ts) * 1000:.0f} ms "
                  f"over {len(ts)} steps")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
