"""What does Explore's n-gram track cost beside the trace it is drawn under?

For 50, 200 and 1000 tokens of prose on the shipped model, prints the median time of
  * trace  — explorer.trace() (what Explore computes for every new text);
  * track  — explorer.present.player.ngram_bits with the bundle's Kneser-Ney 3-gram;
  * load   — KneserNey.load of the bundle's ngram-kn3.npz (once per server, cached);
measured side by side in this one run, alternating, with the ratio track/trace (median of per-pair
ratios).

    python benchmarks/ngram_track.py [--model pretrained/fiction-lstm-balanced] [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explorer import load_model, trace  # noqa: E402
from explorer.present.player import ngram_bits  # noqa: E402
from explorer.training.ngram import KneserNey  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "pretrained" / "fiction-lstm-balanced"))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = load_model(args.model)
    f = Path(args.model) / "ngram-kn3.npz"
    if not f.is_file():
        print(f"error: {f} does not exist (python -m explorer ngram --model M --order 3 --save {f})", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    kn = KneserNey.load(f)
    load_s = time.perf_counter() - t0
    book = ROOT / "corpora" / "heldout" / "austen_persuasion.txt"
    words = book.read_text(encoding="utf-8").split()[5000:7000]
    print(f"model {m.name}; n-gram {f.name} loaded in {load_s:.2f} s; {args.threads} thread(s)")
    print(f"{'tokens':>7} {'trace ms':>9} {'track ms':>9} {'track/trace':>12}")
    for n in (50, 200, 1000):
        text = " ".join(words[: int(n * 0.85)])
        tr = trace(m, text)
        tt, tk, ratios = [], [], []
        for _ in range(args.repeats):
            a = time.perf_counter(); tr = trace(m, text); b = time.perf_counter()
            ngram_bits(tr, kn); c = time.perf_counter()
            tt.append(b - a); tk.append(c - b); ratios.append((c - b) / (b - a))
        print(f"{len(tr):>7} {1000 * statistics.median(tt):>9.1f} {1000 * statistics.median(tk):>9.1f} "
              f"{statistics.median(ratios):>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
