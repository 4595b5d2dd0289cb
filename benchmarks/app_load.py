"""Many users at once: N browser pages on one server, each typing its own sentences.

    python benchmarks/app_load.py [--models pretrained] [--pages 8] [--sentences 20] [--mixed 500]

One Streamlit server (app.py) and one headless Chromium. First 1 page, then N pages at once (each a
Playwright context of its own, so a session of its own), type their own sentences into the Explore
page; the clock for a sentence runs from Ctrl+Enter until that page's player shows the sentence's
tokens in the strip, the heatmaps and the step view (the same "fully updated" test as
benchmarks/app_latency.py). It prints p50/p95 for 1 page and for N pages, measured side by side in
this one run, their ratio, the server's peak RSS (VmHWM), whether any page showed an error element,
and whether any page ever showed another page's tokens (every label set a strip ever shows is
recorded in the page by a MutationObserver and checked against that page's own sentences).

Server CPU. The server process's own CPU time (user + system of all its threads, read from
/proc/PID/stat) is read before and after each typing phase, and divided by the updates of that
phase: the server's CPU per update, which the browsers' CPU (on the same cores) no longer hides.
Beside it, in this process, the same texts are traced with the same model and thread count (the
trace's own CPU per update), and the other steps of an Explore update are timed one by one: the
player data built from the trace, its JSON, and its size. The rest of the server's CPU is
Streamlit's share: the script rerun, the widget tree, serialising and sending the delta, and the
component's round trip.

--mixed M then sends M more texts of mixed lengths (5 to ~1,500 words, so the trace cache fills and
evicts) through the N pages, and prints the server's RSS after each tenth of them: flat after the
warm-up means memory is bounded (the cache is bounded by bytes: RNN_EXPLORER_CACHE_MB).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from app_latency import APP_DONE, CHROMIUM_ARGS, SENTENCES, labels_of, start, stop, wait_health  # noqa: E402

#: Records every label set the token strip shows, from page load on.
OBSERVE = """() => {
    window.__seen = new Set();
    const grab = () => { const s = document.querySelector('[data-testid="token-strip"]');
                         if (s && s.dataset.labels) window.__seen.add(s.dataset.labels); };
    new MutationObserver(grab).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      attributeFilter: ['data-labels']});
    grab();
}"""

#: For texts longer than the player's window (120 tokens): the strip shows a run of the new text's
#: tokens (at least 50 of them, or all) and the heatmaps show the same run.
WINDOW_DONE = """([labels, last]) => {
    const strip = document.querySelector('[data-testid="token-strip"]');
    const heat = document.querySelector('[data-testid="heatmaps"]');
    if (!strip || !heat || !strip.dataset.labels) return false;
    const shown = strip.dataset.labels.split('|');
    const all = '|' + labels.join('|') + '|';
    return shown.length >= Math.min(labels.length, 50) && all.includes('|' + strip.dataset.labels + '|')
        && heat.dataset.labels === strip.dataset.labels && labels.includes('mixed');
}"""

WORDS = ("the old man walked slowly along the river bank and she opened the letter read it twice "
         "before spoke holmes sat in his chair with eyes closed carriage stopped at door of great "
         "house mary looked away there was nothing room but table lamp").split()


def own_sentences(page_no: int, n: int) -> list[str]:
    """Sentences that no other page types: each names its page and its index in words."""
    out = []
    for i in range(n):
        base = SENTENCES[i % len(SENTENCES)]
        out.append(f"page {page_no} line {i} : {base} {WORDS[(page_no * 7 + i) % len(WORDS)]}")
    return out


def mixed_texts(m: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(m):
        n = rng.choice([5, 12, 40, 150, 600, 1500])
        out.append(f"mixed {i} " + " ".join(rng.choice(WORDS) for _ in range(n)))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and all its threads so far, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")     # utime, stime


def breakdown(models: Path, texts: list[str]) -> dict:
    """CPU per update, in this process, of the steps of an Explore update the server runs: the trace,
    the player data built from it, and its JSON (with the bytes sent). Same model and thread count as
    the server (explorer.settings.threads), each text traced once as the server does on a miss."""
    import torch

    import explorer as E
    from explorer import settings
    from explorer.present.player import build_player_data
    torch.set_num_threads(settings.threads(os.cpu_count() or 2))
    from explorer.bundle import default_model
    m = E.load_model(default_model(models))            # the bundle the app opens on
    E.trace(m, texts[0])                                          # warm-up
    cpu = {"trace": 0.0, "player_data": 0.0, "json": 0.0}
    sent = 0
    for t in texts:
        a = time.process_time()
        tr = E.trace(m, t, top_k=10)
        b = time.process_time()
        data = build_player_data(tr, m.config.layers, pos=len(tr) - 1, window=(0, len(tr)))
        c = time.process_time()
        sent += len(json.dumps(data.to_json()))
        d = time.process_time()
        cpu["trace"] += b - a
        cpu["player_data"] += c - b
        cpu["json"] += d - c
    n = len(texts)
    return {f"{k}_cpu_ms_per_update": round(v / n * 1e3, 2) for k, v in cpu.items()} | {
        "player_json_kib_per_update": round(sent / n / 1024, 1), "model": m.name}


def rss_kib(pid: int) -> dict:
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                got[line.split(":")[0]] = int(line.split()[1])
    return got


async def open_page(browser, url: str, viewport):
    ctx = await browser.new_context(viewport=viewport)
    page = await ctx.new_page()
    await page.add_init_script(f"document.addEventListener('DOMContentLoaded', {OBSERVE})")
    await page.goto(url)
    await page.wait_for_function("document.querySelectorAll('[data-testid=heatmaps] canvas.rsx-heatcanvas').length"
                                 " === 2 && !!document.querySelector('[data-testid=step-topk] .rsx-title')",
                                 timeout=180_000)
    return ctx, page


async def submit(page, text: str, timeout_ms: int, done=APP_DONE) -> float:
    box = page.locator("textarea").first
    await box.fill(text)
    labels = labels_of(text)
    t0 = time.perf_counter()
    await box.press("Control+Enter")
    await page.wait_for_function(done, arg=[labels, labels[-1]], polling="raf", timeout=timeout_ms)
    return time.perf_counter() - t0


async def run_pages(browser, url: str, n_pages: int, n_sentences: int, viewport, timeout_ms=180_000,
                    first_page: int = 0, server_pid: int | None = None) -> dict:
    """n_pages concurrent sessions, each typing its own n_sentences; returns times and checks, and the
    server's CPU seconds over the typing (pages already open)."""
    opened = await asyncio.gather(*(open_page(browser, url, viewport) for _ in range(n_pages)))
    cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    own = {j: own_sentences(first_page + j, n_sentences) for j in range(n_pages)}
    times: list[float] = []
    failures: list[str] = []

    async def one(j, page):
        for s in own[j]:
            try:
                times.append(await submit(page, s, timeout_ms))
            except Exception as e:  # a timeout here is a page that never showed its own sentence
                failures.append(f"page {first_page + j}: {type(e).__name__}: {str(e).splitlines()[0]}")
                return

    await asyncio.gather(*(one(j, p) for j, (_, p) in enumerate(opened)))
    server_cpu = (cpu_seconds(server_pid) - cpu0) if server_pid else float("nan")
    errors, crossed, observed = 0, [], []
    mine_by_page = {j: {"|".join(labels_of(s)) for s in own[j]} for j in own}
    everyone = set().union(*mine_by_page.values())
    for j, (ctx, page) in enumerate(opened):
        errors += await page.locator('[data-testid="stException"]').count()
        seen = set(await page.evaluate("Array.from(window.__seen || [])"))
        others = (seen & everyone) - mine_by_page[j]
        crossed += [f"page {first_page + j} showed {o!r}" for o in sorted(others)]
        observed.append(len(seen & mine_by_page[j]))   # the observer saw the page's own sentences
        await ctx.close()
    return {"times": times, "errors": errors, "crossed": crossed, "failures": failures, "observed": observed,
            "server_cpu_s": server_cpu, "texts": [s for j in own for s in own[j]]}


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


async def amain(args) -> dict:
    from playwright.async_api import async_playwright
    port = args.port or 8600 + os.getpid() % 300
    env = dict(os.environ, RNN_EXPLORER_MODELS=str(Path(args.models).resolve()), PYTHONUNBUFFERED="1")
    if args.cache_mb:
        env["RNN_EXPLORER_CACHE_MB"] = str(args.cache_mb)
    log = open(Path(tempfile.gettempdir()) / f"app_load_{port}.log", "wb")
    proc = start("app.py", port, env, log)
    out: dict = {"pages": args.pages, "sentences_per_page": args.sentences}
    viewport = {"width": 1280, "height": 900}
    try:
        wait_health(port, proc)
        url = f"http://localhost:{port}"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            await run_pages(browser, url, 1, 2, viewport, first_page=900)          # warm-up
            rounds = []
            for r in range(args.rounds):   # alternate 1 page and N pages so both see the same load
                one = await run_pages(browser, url, 1, args.sentences, viewport, first_page=100 + r,
                                      server_pid=proc.pid)
                many = await run_pages(browser, url, args.pages, args.sentences, viewport, first_page=200 + 10 * r,
                                       server_pid=proc.pid)
                rounds.append((one, many))
            t1 = [t for one, _ in rounds for t in one["times"]]
            tn = [t for _, many in rounds for t in many["times"]]
            out.update({
                "single_p50_ms": round(pct(t1, 50) * 1e3), "single_p95_ms": round(pct(t1, 95) * 1e3),
                "many_p50_ms": round(pct(tn, 50) * 1e3), "many_p95_ms": round(pct(tn, 95) * 1e3),
                "p95_ratio": round(pct(tn, 95) / pct(t1, 95), 2),
                "error_elements": sum(o["errors"] + m["errors"] for o, m in rounds),
                "crossed": [c for o, m in rounds for c in o["crossed"] + m["crossed"]],
                "failures": [c for o, m in rounds for c in o["failures"] + m["failures"]],
                "updates_timed": len(t1) + len(tn),
            })
            cpu1 = sum(o["server_cpu_s"] for o, _ in rounds) / max(1, len(t1))
            cpun = sum(m["server_cpu_s"] for _, m in rounds) / max(1, len(tn))
            parts = breakdown(Path(args.models), [s for o, m in rounds for s in o["texts"] + m["texts"]])
            out.update({"server_cpu_ms_per_update_single": round(cpu1 * 1e3, 1),
                        "server_cpu_ms_per_update_many": round(cpun * 1e3, 1)} | parts)
            tr_ms = parts["trace_cpu_ms_per_update"]
            out["server_cpu_over_trace_cpu"] = round(cpun * 1e3 / tr_ms, 2) if tr_ms else None
            out["streamlit_share_ms_per_update"] = round(
                cpun * 1e3 - tr_ms - parts["player_data_cpu_ms_per_update"] - parts["json_cpu_ms_per_update"], 1)
            out["server_rss_after_load_mib"] = round(rss_kib(proc.pid)["VmRSS"] / 1024)
            print(json.dumps(out), flush=True)
            if args.mixed:
                texts = mixed_texts(args.mixed)
                per = max(1, args.mixed // 10)
                rss = []
                opened = await asyncio.gather(*(open_page(browser, url, viewport) for _ in range(args.pages)))

                async def one_page(page, mine):        # each page types its share one after another
                    for t in mine:
                        await submit(page, t, 300_000, done=WINDOW_DONE)

                for i in range(0, len(texts), per):
                    chunk = texts[i:i + per]
                    await asyncio.gather(*(one_page(p, chunk[j::len(opened)]) for j, (_, p) in enumerate(opened)))
                    rss.append(round(rss_kib(proc.pid)["VmRSS"] / 1024))
                    print(f"mixed {i + len(chunk)}/{len(texts)}: server RSS {rss[-1]} MiB", flush=True)
                for ctx, _ in opened:
                    await ctx.close()
                out["mixed_texts"] = args.mixed
                out["rss_mib_after_each_tenth"] = rss
            await browser.close()
        out["server_peak_rss_mib"] = round(rss_kib(proc.pid)["VmHWM"] / 1024)
    finally:
        stop(proc)
        log.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "pretrained"))
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--sentences", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--mixed", type=int, default=0, help="then this many texts of mixed lengths (RSS check)")
    ap.add_argument("--cache-mb", type=int, default=0, help="RNN_EXPLORER_CACHE_MB for the server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--chromium", default=os.environ.get("RNN_EXPLORER_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args(argv)
    out = asyncio.run(amain(args))
    print(json.dumps(out, indent=1))
    print(f"p95 with {args.pages} pages / p95 with 1 page: {out['p95_ratio']}  "
          f"(p50 {out['single_p50_ms']} -> {out['many_p50_ms']} ms, p95 {out['single_p95_ms']} -> "
          f"{out['many_p95_ms']} ms); peak RSS {out['server_peak_rss_mib']} MiB; "
          f"errors {out['error_elements']}, crossed {len(out['crossed'])}, failures {len(out['failures'])}")


if __name__ == "__main__":
    main()
