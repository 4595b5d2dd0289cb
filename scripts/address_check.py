"""The address items of the teaching bar on templates the snapshot rule never saw.

    python scripts/address_check.py BUNDLE_OR_SNAPSHOT_FOLDER [...]

The teaching model's snapshot is chosen on the project's pairs (explorer.training.evals.
agreement_pairs), which are also what is reported. This asks the same question, each of miss,
ma'am and madam against "sir" after a woman and "sir" against each after a man, in three other
scenes (an inn, a dinner, a doctor's door), so a choice that only fitted the pairs' own wording shows
here. Plain accuracy per address word and overall (whole sentences, as the pairs score them), the
paired score (prior cancelled), and the next word alone: after each scene's comma, how often each
female address is more probable than "sir" after a woman and less probable after a man."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explorer.training.evals import FEMALE_ADDRESS  # noqa: E402

SCENES = [
    ('the {n} came to the door of the inn , and {p} asked for a room . the landlord said " yes ,', 'inn'),
    ('when the {n} had finished dinner , {p} asked for the bill . the waiter said " at once ,', 'dinner'),
    ('the {n} knocked at the door , and {p} asked to see the doctor . the maid said " this way ,', 'doctor'),
]
FEMALE = [("girl", "she"), ("woman", "she"), ("lady", "she")]
MALE = [("boy", "he"), ("man", "he"), ("gentleman", "he")]


def items() -> list[dict]:
    out = []
    for scene, name in SCENES:
        for (fn, fp), (mn, mp) in zip(FEMALE, MALE):
            f, m = scene.format(n=fn, p=fp), scene.format(n=mn, p=mp)
            for addr in FEMALE_ADDRESS:
                pair = len(out) // 2
                out.append({"suite": f"held-apart/{addr}", "condition": f"{name}_female", "pair": pair,
                            "good": f'{f} {addr} . "', "bad": [f'{f} sir . "']})
                out.append({"suite": f"held-apart/{addr}", "condition": f"{name}_male", "pair": pair,
                            "good": f'{m} sir . "', "bad": [f'{m} {addr} . "']})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    args = ap.parse_args(argv)
    import torch
    from explorer import load_model
    from explorer.training.evals import minimal_pairs
    torch.set_num_threads(2)
    for path in args.models:
        m = load_model(path)
        r = minimal_pairs(m, items())
        nxt = {a: [0, 0] for a in FEMALE_ADDRESS}
        for scene, _ in SCENES:
            for nouns, female in ((FEMALE, True), (MALE, False)):
                for n, p in nouns:
                    probs = dict(m.next_words(scene.format(n=n, p=p), len(m.tokenizer)))
                    for a in nxt:
                        nxt[a][0] += (probs.get(a, 0.0) > probs.get("sir", 0.0)) == female
                        nxt[a][1] += 1
        print(json.dumps({"model": path, "accuracy": r["accuracy"], "items": r["items"],
                          "items_total": r["items_total"],
                          "per_word": {k: v["accuracy"] for k, v in r["suites"].items()},
                          "paired": {k: v["accuracy"] for k, v in r.get("paired", {}).items()},
                          "next_word": {a: round(ok / n, 4) for a, (ok, n) in nxt.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
