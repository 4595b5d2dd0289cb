"""Query speed on corpus indexes: match, units (a unit's dictionary entry) and neighbours (nearest states),
at each index given (e.g. 171k and 1.3M tokens), with the growth between the first and the last.

    python benchmarks/corpus_speed.py --index SMALL_INDEX --index LARGE_INDEX [--layer 2] [--processes 3]

For each index and query it reports:

- ``fresh_s``: the query in a fresh process *beyond process start*: the child imports the project and
  pyarrow and loads the model (process start, not timed), then times open_index + the query (select's
  trace of the typed text and the model's first forward included), as `python -m explorer
  match|units|neighbours` does; median of --processes children; ``fresh_cpu_s``: the CPU seconds of
  the same (on a shared machine the wall time also counts the other jobs);
- ``warm_s``: the same query again in this process, index open (median of --queries hypotheses for
  match, taken from the corpus: a random range of 1-4 tokens and the units on at each of its tokens);
- a baseline measured side by side: match against ``match_full_scan`` (every unit of the layer read,
  the same rule), neighbours against a plain NumPy cosine over the whole layer (rows() block by block);
  with the same answers checked.

Every figure is printed with /proc/loadavg at the time: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.corpus.index import open_index  # noqa: E402
from explorer.corpus import queries as Q  # noqa: E402
from explorer.corpus.neighbours import top_cosine  # noqa: E402

TEXT = 'Holmes looked at me and said, "You have been in Afghanistan, I perceive." She smiled.'
#: the selection for match: the tokens ["You", "have"] (0 is the boundary token <eos>)
SPAN = (9, 11)
POSITION = 10

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from explorer.bundle import load_model
from explorer.corpus.index import open_index
from explorer.corpus import queries as Q
model = load_model({model!r})
import numpy as np, pyarrow.ipc  # noqa: F401  (the command's imports are part of process start)
t0, c0 = time.perf_counter(), time.process_time()
idx = open_index({index!r})
kind = {kind!r}
if kind == "match":
    r = Q.match(idx, model, {text!r}, {s}, {e}, {layer}, "h", 0.3)
    n = r.total
elif kind == "units":
    r = Q.unit_profile(idx, {layer}, "h", {unit}, model=model)
    n = len(r.top)
else:
    r = Q.neighbours(idx, model, {text!r}, {pos}, {layer}, "h", 20)
    n = len(r.items)
print(json.dumps({{"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "n": n}}))
"""


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fresh(index, model, kind, layer, unit, processes):
    """(median seconds, every run's seconds, median CPU seconds) of `kind` in fresh processes."""
    secs, cpus = [], []
    for _ in range(processes):
        code = CHILD.format(root=str(ROOT), model=model, index=str(index), kind=kind, text=TEXT, s=SPAN[0],
                            e=SPAN[1], layer=layer, unit=unit, pos=POSITION)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise SystemExit(out.stderr)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        secs.append(got["seconds"])
        cpus.append(got["cpu"])
    return round(statistics.median(secs), 4), [round(s, 4) for s in secs], round(statistics.median(cpus), 4)


def one_index(path, a):
    from explorer.bundle import load_model
    idx = open_index(path)
    model_path = a.model or idx.card["model"]["path"]
    model = load_model(model_path)
    layer = idx.layers[-1] if a.layer is None else a.layer
    rng = np.random.default_rng(a.seed)
    res = {"index": str(path), "tokens": idx.n_tokens, "units": idx.n_units, "layer": layer,
           "bytes_per_value": round(sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
                                    / (idx.n_tokens * idx.n_units * len(idx.layers) * len(idx.quantities)), 3)}
    # match: fresh processes, then warm hypotheses from the corpus beside the full scan
    res["match_fresh_s"], res["match_fresh_all"], res["match_fresh_cpu_s"] = fresh(path, model_path, "match", layer, 0, a.processes)
    res["match_fresh_loadavg"] = loadavg()
    hyps = []
    while len(hyps) < a.queries:
        r = int(rng.integers(0, idx.n_tokens - 4))
        n = int(rng.integers(1, 5))
        v = idx.rows(layer, "h", r, r + n)
        units = np.flatnonzero((v > 0.3).all(0)).tolist()
        if units:
            hyps.append((units, n))
    warm, full, agree = [], [], True
    for k, (units, n) in enumerate(hyps):
        t0 = time.perf_counter()
        m1, t1 = Q.match_units(idx, layer, "h", units, 0.3, n, top=20)
        warm.append(time.perf_counter() - t0)
        if k < a.full_scans:
            t0 = time.perf_counter()
            m2, t2 = Q.match_full_scan(idx, layer, "h", units, 0.3, n, top=20)
            full.append(time.perf_counter() - t0)
            agree &= t1 == t2 and [(m.row, m.end) for m in m1] == [(m.row, m.end) for m in m2]
    res.update({"match_warm_median_s": round(statistics.median(warm), 4),
                "hypothesis_units_median": statistics.median(len(u) for u, _ in hyps),
                "match_full_scan_median_s": round(statistics.median(full), 4),
                "match_speedup_vs_full_scan": round(statistics.median(full) / statistics.median(warm), 1),
                "match_same_answers": bool(agree), "match_warm_loadavg": loadavg()})
    # units: a unit's dictionary entry
    unit = int(hyps[0][0][0])
    res["units_fresh_s"], res["units_fresh_all"], res["units_fresh_cpu_s"] = fresh(path, model_path, "units", layer, unit, a.processes)
    res["units_fresh_loadavg"] = loadavg()
    t0 = time.perf_counter()
    Q.unit_profile(idx, layer, "h", unit, model=model)
    res["units_warm_s"] = round(time.perf_counter() - t0, 4)
    # neighbours: the exact scan beside a plain NumPy cosine over the layer's rows
    res["neighbours_fresh_s"], res["neighbours_fresh_all"], res["neighbours_fresh_cpu_s"] = fresh(path, model_path, "neighbours", layer, 0,
                                                                   a.processes)
    res["neighbours_fresh_loadavg"] = loadavg()
    t0 = time.perf_counter()
    nb = Q.neighbours(idx, model, TEXT, POSITION, layer, "h", 20)
    res["neighbours_warm_s"] = round(time.perf_counter() - t0, 4)
    from explorer.corpus.neighbours import query_state
    q, _, _ = query_state(model, TEXT, POSITION, layer, "h")
    t0 = time.perf_counter()
    rows, sims, _ = top_cosine(idx.blocks(layer, "h", 65536), q, 20)
    res["neighbours_numpy_rows_s"] = round(time.perf_counter() - t0, 4)
    res["neighbours_speedup_vs_numpy"] = round(res["neighbours_numpy_rows_s"] / nb.seconds, 1)
    res["neighbours_same_answers"] = bool(np.allclose([n.similarity for n in nb.items], sims, atol=1e-5))
    res["neighbours_loadavg"] = loadavg()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", action="append", required=True, help="an index (give two: small, then large)")
    ap.add_argument("--model", default=None, help="default: the model named by each index's card")
    ap.add_argument("--layer", type=int, default=None, help="1 = the bottom layer (default: the top one indexed)")
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--full-scans", type=int, default=2, help="the full scan is slow: fewer repeats")
    ap.add_argument("--processes", type=int, default=3, help="fresh processes per query kind")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    results = [one_index(p, a) for p in a.index]
    out = {"indexes": results}
    if len(results) > 1:
        s, l = results[0], results[-1]
        out["growth"] = {"tokens": round(l["tokens"] / s["tokens"], 2),
                         **{k: round(l[k] / s[k], 2) for k in ("match_fresh_s", "match_fresh_cpu_s",
                                                                "match_warm_median_s", "units_fresh_s",
                                                                "units_fresh_cpu_s", "units_warm_s",
                                                                "neighbours_fresh_s", "neighbours_fresh_cpu_s",
                                                                "neighbours_warm_s")}}
    out["loadavg_end"] = loadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
