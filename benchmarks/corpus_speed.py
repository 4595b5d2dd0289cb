"""Match-query speed on a corpus index: the index's query (reads only the hypothesis units' by-unit
chunks) beside a straightforward full scan (reads the whole layer through the token-major array, then
applies the same rule), in the same run, with the peak memory each allocates (tracemalloc: NumPy
allocations are traced).

    python benchmarks/corpus_speed.py --index INDEX [--layer 1] [--quantity h] [--queries 15]

Hypotheses are taken from the corpus itself so the benchmark needs no model: a random range of 1-4
tokens and the units above the threshold at each of its tokens (LSTMVis's rule), as a selection in a
typed text would give. Prints JSON: medians in seconds, their ratio, peak MB, and the index's size.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.corpus.index import open_index  # noqa: E402
from explorer.corpus.queries import match_full_scan, match_units  # noqa: E402


def _timed(fn):
    """(result, seconds, peak bytes): timed without tracing (tracemalloc slows Python allocations), then
    run once more under tracemalloc for the peak."""
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True)
    ap.add_argument("--layer", type=int, default=None,
                    help="1 = the bottom layer (default: the top layer in the index)")
    ap.add_argument("--quantity", default="h")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--full-scans", type=int, default=3, help="the full scan is slow: fewer repeats")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    idx = open_index(a.index)
    layer = idx.layers[-1] if a.layer is None else a.layer
    t0 = time.perf_counter()
    idx.token_texts()                  # the token table is read once per open index (the app keeps it)
    table_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    hyps = []
    while len(hyps) < a.queries:
        r = int(rng.integers(0, idx.n_tokens - 4))
        n = int(rng.integers(1, 5))
        v = idx.rows(layer, a.quantity, r, r + n)
        units = np.flatnonzero((v > a.threshold).all(0)).tolist()
        if units:
            hyps.append((units, n))
    fast, full, peaks_fast, peaks_full, agree = [], [], [], [], True
    for k, (units, n) in enumerate(hyps):
        (m1, t1), dt, pk = _timed(lambda: match_units(idx, layer, a.quantity, units, a.threshold, n, top=20))
        fast.append(dt)
        peaks_fast.append(pk)
        if k < a.full_scans:
            (m2, t2), dt2, pk2 = _timed(lambda: match_full_scan(idx, layer, a.quantity, units, a.threshold, n, top=20))
            full.append(dt2)
            peaks_full.append(pk2)
            agree &= t1 == t2 and [(m.row, m.end) for m in m1] == [(m.row, m.end) for m in m2]
    size = sum(p.stat().st_size for p in Path(a.index).rglob("*") if p.is_file())
    layer_bytes = idx.n_tokens * idx.n_units * np.dtype(idx.card["dtype"][a.quantity]).itemsize
    out = {"index": a.index, "tokens": idx.n_tokens, "units": idx.n_units, "layer": layer,
           "quantity": a.quantity, "queries": len(hyps),
           "hypothesis_units_median": statistics.median(len(u) for u, _ in hyps),
           "match_median_s": round(statistics.median(fast), 4),
           "full_scan_median_s": round(statistics.median(full), 4),
           "speedup": round(statistics.median(full) / statistics.median(fast), 1),
           "match_peak_mb": round(max(peaks_fast) / 2**20, 1),
           "full_scan_peak_mb": round(max(peaks_full) / 2**20, 1),
           "one_layer_quantity_mb": round(layer_bytes / 2**20, 1),
           "index_on_disk_mb": round(size / 2**20, 1),
           "token_table_load_s_once": round(table_s, 3),
           "same_answers": bool(agree)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
