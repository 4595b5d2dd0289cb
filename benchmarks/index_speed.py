"""Corpus index build speed beside a plain nn.LSTM forward of the same tokens with the same batching, in
the same run, on a quiet machine and with busy competing processes.

    python benchmarks/index_speed.py --model pretrained/fiction-lstm --corpus ../shared/data/fiction \
        [--max-tokens 200000] [--load 0 --load 2] [--rows 16] [--steps 512] [--quantities h,c]

The baseline runs the model's own `nn.LSTM` module over exactly the blocks the build runs
(explorer.corpus.index.schedule: the files as rows of one batch, each row carrying its own state, the
rows that hold a file only), one torch thread, discarding the outputs. It runs once before and once after
the build; the ratio is against their mean, so a change in the machine's load during the run is shared.
`--load N` starts N busy processes (a pure-Python spin each) for that measurement. --max-tokens picks
whole files in name order (--glob: only those matching) until that many tokens (0: the whole corpus).

Prints JSON with /proc/loadavg at the start and end of each measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from explorer.bundle import load_model  # noqa: E402
from explorer.corpus.index import build_index, corpus_files, schedule  # noqa: E402
from explorer.trace import read_tokens  # noqa: E402
from explorer.training.data import read_text  # noqa: E402


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def pick(model, corpus, max_tokens, pattern):
    root, files = corpus_files(corpus)
    chosen, ids, total = [], {}, 0
    for p in files:
        if not p.match(pattern):
            continue
        text = read_text(p)
        if not text.strip():
            continue
        toks = read_tokens(model.tokenizer, text)
        chosen.append(p)
        ids[len(ids)] = torch.tensor([t.id for t in toks], dtype=torch.long)
        total += len(toks)
        if max_tokens and total >= max_tokens:
            break
    return root, chosen, ids, total


@torch.no_grad()
def forward(model, ids: dict, rows: int, steps: int) -> float:
    """nn.LSTM over the build's blocks (same rows, same carried states); seconds."""
    lm = model.lm
    cfg = lm.config
    L, H = cfg.layers, cfg.hidden_size
    lengths = {i: len(v) for i, v in ids.items()}
    t0 = time.perf_counter()
    state = None
    for B, block in schedule(lengths, rows, steps):
        if state is None:
            state = (torch.zeros(L, B, H), torch.zeros(L, B, H)) if cfg.cell == "lstm" else torch.zeros(L, B, H)
        T = max(n for _, _, _, n in block)
        active = [s for s, _, _, _ in block]
        sel = active + [s for s in range(B) if s not in active][:max(0, 2 - len(active))]
        x = torch.zeros(len(sel), T, dtype=torch.long)
        for j, (s, f, a, n) in enumerate(block):
            x[j, :n] = ids[f][a:a + n]
            if a == 0:
                for t in (state if isinstance(state, tuple) else (state,)):
                    t[:, s] = 0
        sub = tuple(t[:, sel] for t in state) if isinstance(state, tuple) else state[:, sel]
        _, fin = lm.rnn(lm.embedding(x), sub)
        for t, v in zip(state if isinstance(state, tuple) else (state,), fin if isinstance(fin, tuple) else (fin,)):
            t[:, sel] = v
    return time.perf_counter() - t0


def busy(n):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--max-tokens", type=int, default=200_000)
    ap.add_argument("--glob", default="*.txt", help="only the files whose name matches, e.g. 'holmes_*'")
    ap.add_argument("--load", type=int, action="append", default=None,
                    help="busy competing processes during a measurement (repeat: --load 0 --load 2)")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--quantities", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(a.model)
    root, chosen, ids, total = pick(model, a.corpus, a.max_tokens, a.glob)
    results = []
    with tempfile.TemporaryDirectory(prefix="index_speed_") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for p in chosen:
            dst = corpus / p.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(p.resolve(), dst)
        for k, n_busy in enumerate(a.load or [0, 2]):
            procs = busy(n_busy)
            try:
                time.sleep(1.0 if n_busy else 0)
                la0 = loadavg()
                f1 = forward(model, ids, a.rows, a.steps)
                t0 = time.perf_counter()
                card = build_index(model, corpus, Path(tmp) / f"i{k}", quantities=a.quantities, rows=a.rows,
                                   segment_tokens=a.steps, progress=False, threads=1)
                build = time.perf_counter() - t0
                f2 = forward(model, ids, a.rows, a.steps)
                la1 = loadavg()
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            out = Path(tmp) / f"i{k}"
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            n_values = card["tokens"] * card["units"] * len(card["layers"]) * len(card["quantities"])
            base = (f1 + f2) / 2
            results.append({"busy_processes": n_busy, "tokens": total, "files": len(chosen),
                             "quantities": card["quantities"], "layers": card["layers"],
                             "rows": a.rows, "steps": a.steps,
                             "build_s": round(build, 2), "forward_s": [round(f1, 2), round(f2, 2)],
                             "build_over_forward": round(build / base, 2),
                             "build_tokens_per_s": round(total / build, 1),
                             "bytes_per_value": round(size / n_values, 3),
                             "loadavg_start": la0, "loadavg_end": la1})
            import shutil
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"model": a.model, "corpus": a.corpus, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
