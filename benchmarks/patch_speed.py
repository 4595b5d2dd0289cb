"""How long does the full causal-tracing grid take, batched, against one patch at a time?

For a 30-token clean/corrupted pair (the bartender pair lengthened to 30 tokens, <eos> included) on
pretrained/fiction-lstm (2 x 384 LSTM), prints the median wall time of
  * batched — explorer.analysis.patch.patch_grid: every layer's patch points continue as one batch
    through the fused kernel (2 quantities x 2 layers x 30 positions = 120 patched runs);
  * loop    — the same continuations one patch at a time (patch_grid(..., batched=False));
measured alternately in this one run, and the ratio loop/batched (median of per-pair ratios). Both
give the same numbers (checked here too). The target in the issue is <= 1 s for the batched grid.

    python benchmarks/patch_speed.py [--model pretrained/fiction-lstm] [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer import load_model  # noqa: E402
from explorer.trace import read_tokens  # noqa: E402
from explorer.analysis.patch import patch_grid  # noqa: E402

CLEAN = 'A girl walked into a bar in the old town, and she said "Can I have a drink please?" The bartender said "Certainly,'
CORRUPT = 'A boy walked into a bar in the old town, and he said "Can I have a drink please?" The bartender said "Certainly,'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "pretrained" / "fiction-lstm"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    m = load_model(a.model)
    T = len(read_tokens(m.tokenizer, CLEAN))
    assert T == len(read_tokens(m.tokenizer, CORRUPT))
    g = patch_grid(m, CLEAN, CORRUPT, "miss", "sir")                 # warm up
    loop = patch_grid(m, CLEAN, CORRUPT, "miss", "sir", batched=False)
    same = bool(np.array_equal(g.metric, loop.metric))
    tb, tl, ratios = [], [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        patch_grid(m, CLEAN, CORRUPT, "miss", "sir")
        t1 = time.perf_counter()
        patch_grid(m, CLEAN, CORRUPT, "miss", "sir", batched=False)
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        tl.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    print(f"model {m.name} ({m.config.cell}, {m.config.layers} x {m.config.hidden_size}), pair of {T} tokens, "
          f"{g.metric.size} patched runs, torch threads {torch.get_num_threads()}, {a.repeats} repeats")
    print(f"batched grid     median {statistics.median(tb) * 1000:8.1f} ms   (target <= 1000 ms)")
    print(f"one at a time    median {statistics.median(tl) * 1000:8.1f} ms")
    print(f"loop / batched   median ratio {statistics.median(ratios):.1f}x   same numbers: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
