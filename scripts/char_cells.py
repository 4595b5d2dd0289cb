"""Find the character model's units that track the position in the line (lesson step 6), on a stretch
of a text file, and print the best ones as JSON.

    python scripts/char_cells.py [--model pretrained/shakespeare-char]
                                 [--text ../shared/data/shakespeare/input.txt] [--chars 100000] [--top 8]

Scores every unit of c and h in every layer (explorer.analysis.char_cells.find_line_cells): Pearson r
against the position in the line, AUC for "the 40th character or later", and AUC for "inside a
quotation" where the text has quotations."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "pretrained" / "shakespeare-char"))
    ap.add_argument("--text", default=str(ROOT.parent / "shared" / "data" / "shakespeare" / "input.txt"))
    ap.add_argument("--chars", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    import torch

    import explorer as E
    from explorer.analysis import char_cells as CC
    torch.set_num_threads(1)            # small matrix products: more threads only spin on a busy machine
    path = Path(args.text)
    if not path.is_file():
        print(f"error: no text file at {path}", file=sys.stderr)
        return 2
    if args.chars < 100:
        print("error: --chars must be at least 100", file=sys.stderr)
        return 2
    try:
        model = E.load_model(args.model)
        text = path.read_text(encoding="utf-8", errors="replace")[: args.chars]
        t0 = time.perf_counter()
        s = CC.find_line_cells(model, text)
    except (E.ExplorerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    rows = [{"layer": int(r.layer), "quantity": r.quantity, "unit": int(r.unit),
             "r_position": round(float(r.r_position), 4), "auc_late": round(float(r.auc_late), 4),
             "auc_quote": clean(round(float(r.auc_quote), 4))} for r in s.table.head(args.top).itertuples()]
    best = s.best
    print(json.dumps({"model": model.name, "text": str(path), "chars": len(s.chars),
                      "newlines": int((s.column < 0).sum()), "quoted_chars": s.n_quoted,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "verdict": CC.verdict(float(best.r_position), float(best.auc_late)),
                      "median_abs_r": round(float(s.table["abs_r"].median()), 4), "best": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
