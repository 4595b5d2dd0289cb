"""What the training text itself says about forms of address after a woman or a man.

    python scripts/address_contexts.py [--corpus ../shared/data/fiction] [--window 40] [--json out.json]

For every address ("sir", "miss", "ma'am", "madam" after a comma or a quotation mark and before
punctuation) in the training books, and in the books plus each augmented copy, the context is the
`window` words before it: "female" when it holds at least 3 of she/her/girl/woman/lady/miss/mrs and
none of he/him/his/boy/man/gentleman/mr, "male" the other way round. The table is the share of each
address in each kind of context: what a model that learned the text perfectly would predict there.

It answers a question about the teaching bar before any training: the project's pairs ask that after
a woman *each* of miss, ma'am and madam beat "sir". With "sir" turned into "miss" in the copy
(`gender-swap-names`), ma'am and madam stay below "sir" after a woman even in the text, so no amount
of training on it can pass those items; spread over the three in turn (`gender-swap-names-spread`),
each is above "sir". Reads the training books only."""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explorer.training.evals import FEMALE_ADDRESS  # noqa: E402

ADDRESSES = ("sir", *FEMALE_ADDRESS)
FEMALE = {"she", "her", "herself", "girl", "woman", "lady", "miss", "mrs"}
MALE = {"he", "him", "his", "himself", "boy", "man", "gentleman", "mr"}
_TOKEN = re.compile(r"[a-z']+|[.,!?;\"]")


def address_table(texts, window: int = 40) -> dict:
    """{"female"|"male": {"n": count, address: share}} over the addresses in texts."""
    tab = {"female": Counter(), "male": Counter()}
    for t in texts:
        toks = _TOKEN.findall(t.lower().replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"'))
        for i, w in enumerate(toks):
            if w in ADDRESSES and 0 < i < len(toks) - 1 and toks[i + 1] in '.,!?;"' and toks[i - 1] in ',"':
                ctx = toks[max(0, i - window):i - 1]
                f, m = sum(x in FEMALE for x in ctx), sum(x in MALE for x in ctx)
                if f >= 3 and m == 0:
                    tab["female"][w] += 1
                elif m >= 3 and f == 0:
                    tab["male"][w] += 1
    return {g: {"n": sum(c.values()), **{a: round(c[a] / max(1, sum(c.values())), 3) for a in ADDRESSES}}
            for g, c in tab.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "fiction"))
    ap.add_argument("--window", type=int, default=40)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    from explorer.errors import ExplorerError
    from explorer.training.augment import augment
    from explorer.training.data import read_corpus
    try:
        train = read_corpus(args.corpus)["train"]
    except ExplorerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = {"window": args.window, "books": address_table([t for _, t in train], args.window)}
    for kind in ("gender-swap-names", "gender-swap-names-spread"):
        out[kind] = address_table([t for _, t in augment(train, kind)], args.window)
    for name, tab in out.items():
        if name != "window":
            f = tab["female"]
            out[name]["female"]["each_above_sir"] = all(f[a] > f["sir"] for a in FEMALE_ADDRESS)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
