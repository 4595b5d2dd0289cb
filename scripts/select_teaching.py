"""Measure every snapshot of a fine-tune against the teaching model's bar and choose one.

    python scripts/select_teaching.py runs/fiction-lstm-balanced.snapshots [--json out.json]

For each snapshot bundle (train --snapshot-every): its validation perplexity (from its card, measured
on the validation books), the bartender margins and the project's pairs (explorer.training.evals.
teaching_report). The choice: among the snapshots that meet the whole bar, the one with the lowest
validation perplexity; if none does, the one closest to it (most checks met, then the highest pair
accuracy, then the lowest validation perplexity). The held-out test books are never read here."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots", help="a folder of snapshot bundles (OUT.snapshots)")
    ap.add_argument("--json", help="also write the table here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    from explorer import load_model
    from explorer.errors import ExplorerError
    from explorer.training.evals import teaching_report
    torch.set_num_threads(args.threads)
    folder = Path(args.snapshots)
    snaps = sorted(p for p in folder.iterdir() if (p / "card.json").is_file()) if folder.is_dir() else []
    if not snaps:
        print(f"error: no snapshot bundles in {folder}", file=sys.stderr)
        return 2
    rows = []
    for p in snaps:
        try:
            m = load_model(p)
        except ExplorerError as e:
            print(f"skipping {p.name}: {e}", file=sys.stderr)
            continue
        r = teaching_report(m)
        r = {"snapshot": p.name, "valid_perplexity": m.card["metrics"]["valid"]["perplexity"], **r}
        rows.append(r)
        print(json.dumps({k: r[k] for k in ("snapshot", "valid_perplexity", "bartender", "pairs_accuracy", "meets_bar")}
                         | {"types": {k: v["accuracy"] for k, v in r["pair_types"].items()}}), flush=True)
    ok = [r for r in rows if r["meets_bar"]]
    if ok:
        chosen = min(ok, key=lambda r: r["valid_perplexity"])
    else:
        chosen = max(rows, key=lambda r: (sum(r["checks"].values()), r["pairs_accuracy"] or 0.0, -r["valid_perplexity"]))
    out = {"chosen": chosen["snapshot"], "meets_bar": chosen["meets_bar"],
           "rule": "lowest validation perplexity among snapshots meeting the bar; else the closest (most checks met, "
                   "then the highest pair accuracy, then the lowest validation perplexity)", "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps({"chosen": out["chosen"], "meets_bar": out["meets_bar"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
