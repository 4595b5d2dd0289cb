"""The Corpus page's first visit on a cold server: how soon the index build's progress shows, the page
around it (the text and the selection's units, which need no index), and the results (the corpus
search), beside a plain batch-1 nn.LSTM forward over the same tokens measured in the same run.

    python benchmarks/corpus_first_visit.py [--model pretrained/fiction-lstm] [--corpus corpora/heldout]

A fresh `streamlit run app.py` with an empty cache folder (RNN_EXPLORER_CACHE in a temporary folder), so
the default corpus's index is built on the first visit, in the background (ui/jobs.py). Headless
Chromium opens /corpus right after the server answers; while the build runs, a second tab opens Explore
(every other page stays usable) and its time is printed too. The baseline is the model's own nn.LSTM run
over every file's tokens, batch 1, one torch thread, state carried across 512-token blocks, outputs
discarded: `results / forward` says how far the first visit is from the forward pass it must contain.

Prints JSON, with /proc/loadavg at the start and the end (other processes share the cores).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def forward_seconds(model_path: Path, corpus: Path) -> tuple[float, int]:
    """(seconds, tokens) of a plain batch-1 forward of the model's nn.LSTM over every file of `corpus`."""
    import torch
    from explorer.bundle import load_model
    from explorer.corpus.index import corpus_files
    model = load_model(model_path)
    _, files = corpus_files(corpus)
    ids = [torch.tensor([model.tokenizer.eos_id] + model.tokenizer.encode(f.read_text(encoding="utf-8")))
           for f in files]
    torch.set_num_threads(1)
    lm = model.lm
    t0 = time.perf_counter()
    with torch.no_grad():
        for x in ids:
            state = None
            for a in range(0, len(x), 512):
                emb = lm.embedding(x[a:a + 512].unsqueeze(0))          # [1, steps, E] (batch first)
                _, state = lm.rnn(emb, state)
    return time.perf_counter() - t0, sum(len(x) for x in ids)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "pretrained" / "fiction-lstm"))
    ap.add_argument("--corpus", default=str(ROOT / "corpora" / "heldout"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, stop_server

    out = {"load_start": loadavg()}
    fwd, n_tokens = forward_seconds(Path(args.model), Path(args.corpus))
    out.update(tokens=n_tokens, forward_s=round(fwd, 2))
    tmp = Path(tempfile.mkdtemp(prefix="corpus-first-visit-"))
    models = tmp / "models"
    models.mkdir()
    (models / Path(args.model).name).symlink_to(Path(args.model).resolve(), target_is_directory=True)
    env = dict(os.environ, RNN_EXPLORER_MODELS=str(models), RNN_EXPLORER_CACHE=str(tmp / "cache"),
               RNN_EXPLORER_DEFAULT_CORPUS=str(Path(args.corpus).resolve()), PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://localhost:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        t0 = time.time()
        log = open(tmp / "streamlit.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.headless", "true"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit((tmp / "streamlit.log").read_text())
                    time.sleep(0.1)
            out["server_up_s"] = round(time.time() - t0, 1)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(900_000)
            page.goto(url + "/corpus")
            page.locator('[data-testid="stProgress"]').first.wait_for()
            out["progress_visible_s"] = round(time.time() - t0, 1)
            page.get_by_text("Units on across the selection").first.wait_for()
            out["page_without_index_s"] = round(time.time() - t0, 1)
            building = page.locator('[data-testid="stProgress"]').count() > 0
            if building:
                out["progress_text"] = page.locator('[data-testid="stProgress"]').first.inner_text()
                other = browser.new_page(viewport={"width": 1400, "height": 1000})
                other.set_default_timeout(900_000)
                a = time.time()
                other.goto(url + "/")
                other.get_by_text(re.compile(r"^\d+ / \d+ · ")).first.wait_for()
                out["explore_during_build_s"] = round(time.time() - a, 1)
                other.close()
            page.get_by_text("Query time").first.wait_for()
            out["results_s"] = round(time.time() - t0, 1)
            out["results_over_forward"] = round(out["results_s"] / fwd, 2)
        finally:
            stop_server(proc)
            browser.close()
    out["load_end"] = loadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
