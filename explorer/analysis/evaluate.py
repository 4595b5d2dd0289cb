"""The syntactic evaluation item by item, for the Evaluate page: which minimal pairs a model gets
wrong, per suite and condition, side by side for several models, cached on disk once per model.

Items: the Marvin & Linzen (2018) suites (a folder of *.jsonl(.gz) minimal pairs, as read by
explorer.training.evals.read_pairs; a seeded sample of `per_file` items per file, because the full
set has 158,000 items and the app computes it on first use) and the project's own balanced pairs
(explorer.training.evals.agreement_pairs, all of them). An item is right when its good sentence
gets a higher log-probability than every bad one (the rule of explorer.training.evals); items with
a word outside the vocabulary are kept with `in_vocab` False and left out of the accuracies.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Sequence

import numpy as np

SOURCES = {"syneval": "Marvin & Linzen", "pairs": "project pairs"}


def load_items(suite_folder=None, per_file: int = 200, seed: int = 0) -> list[dict]:
    """The items, each with 'source', 'suite', 'condition', 'good', 'bad' (a list) and 'pair' (the
    mirror id of the project's pairs, else None). suite_folder None or absent: the project's pairs only."""
    from ..training.evals import agreement_pairs, read_pairs
    items: list[dict] = []
    if suite_folder is not None and Path(suite_folder).is_dir():
        files = sorted(list(Path(suite_folder).glob("*.jsonl")) + list(Path(suite_folder).glob("*.jsonl.gz")))
        for f in files:
            got = read_pairs(f)
            if per_file and len(got) > per_file:
                got = random.Random(f"{seed}:{f.name}").sample(got, per_file)
            for d in got:
                items.append({"source": "syneval", "suite": d.get("suite", f.name.split(".")[0]),
                              "condition": d.get("condition", "all"), "good": d["good"], "bad": list(d["bad"]),
                              "pair": None})
    for d in agreement_pairs():
        items.append({"source": "pairs", "suite": d["suite"], "condition": d["condition"], "good": d["good"],
                      "bad": list(d["bad"]), "pair": int(d["pair"])})
    return items


def items_key(items: Sequence[dict]) -> str:
    h = hashlib.sha256()
    for d in items:
        h.update(json.dumps([d["suite"], d["condition"], d["good"], d["bad"]], ensure_ascii=False).encode())
    return h.hexdigest()[:12]


def score_items(model, items: Sequence[dict], progress=None, chunk: int = 2000):
    """DataFrame, one row per item: source, suite, condition, good, bad (the most probable bad
    sentence), pair, in_vocab, lp_good, lp_bad (natural log), margin = lp_good − lp_bad, correct."""
    import pandas as pd
    tok = model.tokenizer
    known = {}

    def ok(s: str) -> bool:
        if s not in known:
            known[s] = not any(t.unk for t in tok.tokenize(s))
        return known[s]

    inv = [ok(d["good"]) and all(ok(b) for b in d["bad"]) for d in items]
    # only in-vocabulary items count, so only their sentences are scored
    sents = sorted({s for d, v in zip(items, inv) if v for s in [d["good"], *d["bad"]]})
    scores: dict[str, float] = {}
    for a in range(0, len(sents), chunk):
        part = sents[a:a + chunk]
        for s, r in zip(part, model.score_batch(part)):
            scores[s] = r["logprob"]
        if progress:
            progress(min(1.0, (a + len(part)) / len(sents)), f"{a + len(part):,} of {len(sents):,} sentences")
    rows = []
    nan = float("nan")
    for d, v in zip(items, inv):
        bad_lp = [scores[b] for b in d["bad"]] if v else [nan] * len(d["bad"])
        j = int(np.argmax(bad_lp)) if v else 0
        lg = scores[d["good"]] if v else nan
        rows.append({"source": SOURCES[d["source"]], "suite": d["suite"], "condition": d["condition"],
                     "good": d["good"], "bad": d["bad"][j], "pair": d["pair"] if d["pair"] is not None else -1,
                     "in_vocab": v, "lp_good": lg, "lp_bad": bad_lp[j], "margin": lg - bad_lp[j],
                     "correct": bool(v and lg > max(bad_lp))})
    return pd.DataFrame(rows)


def cache_path(model, items: Sequence[dict], cache_dir) -> Path:
    from ..corpus.index import model_hash
    return Path(cache_dir) / f"eval-{model.name}-{model_hash(model)[:12]}-{items_key(items)}.parquet"


def cached_scores(model, items: Sequence[dict], cache_dir, progress=None):
    """score_items, kept on disk (Parquet) per model weights and item set: computed once per model."""
    import pandas as pd
    p = cache_path(model, items, cache_dir)
    if p.is_file():
        try:
            return pd.read_parquet(p)
        except Exception:          # noqa: BLE001 - a damaged cache file is computed again
            pass
    df = score_items(model, items, progress)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(p)
    return df


def suite_table(results: dict, by: Sequence[str] = ("source", "suite")):
    """Accuracy (in-vocabulary items) per suite (or per suite and condition) for several models side
    by side: results {model name: score_items frame} -> one column per model, plus the item count."""
    import pandas as pd
    cols, counts = [], []
    for name, df in results.items():
        k = df[df["in_vocab"]]
        g = k.groupby(list(by))["correct"].agg(["mean", "size"])
        cols.append(g["mean"].rename(name))
        counts.append(g["size"].rename(f"items ({name})"))
    out = pd.concat(cols + counts, axis=1)
    ns = out[[c.name for c in counts]]
    if ns.nunique(axis=1, dropna=False).le(1).all():        # the same items for every model: one column
        out = out.drop(columns=list(ns.columns)).assign(items=ns.iloc[:, 0])
    return out.reset_index()


def wrong_items(df, suite: str | None = None):
    """The in-vocabulary items the model gets wrong, worst margin first (index: rows of `df`)."""
    k = df[df["in_vocab"] & ~df["correct"]]
    if suite:
        k = k[k["suite"] == suite]
    return k.sort_values("margin", kind="stable")


def first_difference(model, good: str, bad: str) -> tuple[str, str, str] | None:
    """Where two sentences first part: (the text before it, the good word, the bad word), or None
    when they do not differ in one token at the same position."""
    a, b = model.tokenizer.tokenize(good), model.tokenizer.tokenize(bad)
    for i, (x, y) in enumerate(zip(a, b)):
        if x.norm != y.norm:
            return good[: x.start].rstrip(), x.norm, y.norm
    return None


def patch_setup(model, df, row) -> dict | None:
    """Clean and corrupted texts for the Patch page from item `row` (an index label of the full
    score_items frame `df`) with a mirror (the project's pairs):
    the item's text up to the word the pair differs in against the mirror item's text up to the same
    point; target = the item's good word, versus = its bad word. None without a usable mirror."""
    from ._common import tokens_for
    r = df.loc[row]
    if int(r["pair"]) < 0:
        return None
    mates = df[(df["pair"] == r["pair"]) & (df["source"] == r["source"]) & (df["suite"] == r["suite"])
               & (df["good"] != r["good"])]
    if mates.empty:
        return None
    m = mates.iloc[0]
    d1, d2 = first_difference(model, r["good"], r["bad"]), first_difference(model, m["good"], m["bad"])
    if d1 is None or d2 is None:
        return None
    clean, corrupt = d1[0], d2[0]
    if len(tokens_for(model, clean)) != len(tokens_for(model, corrupt)):
        return None
    return {"clean": clean, "corrupt": corrupt, "target": d1[1], "versus": d1[2]}


# ------------------------------------------------------------------------- results recorded in cards
#: The card metrics `python -m explorer syneval --record` writes, per source.
RECORDED = {"syneval": "Marvin & Linzen", "agreement_pairs": "project pairs"}


def recorded(card: dict) -> dict:
    """{source label: metrics} of what a model's card records (python -m explorer syneval --record)."""
    m = card.get("metrics") or {}
    return {label: m[key] for key, label in RECORDED.items() if isinstance(m.get(key), dict) and m[key].get("suites")}


def recorded_command(card: dict) -> str | None:
    """The command that recorded the card's syneval results, as the card says."""
    return ((card.get("metrics") or {}).get("syneval") or {}).get("command")


def recorded_table(cards: dict, by: Sequence[str] = ("source", "suite")):
    """suite_table's layout from the results recorded in model cards, computing nothing: {model name:
    card} -> source, suite (and condition, when `by` has it), one accuracy column per model (NaN where
    its card records nothing) and the item count ("items", or one per model where they differ)."""
    import pandas as pd
    per_cond = "condition" in by
    cols, counts = [], []
    for name, card in cards.items():
        rows = []
        for source, met in recorded(card).items():
            if per_cond:
                rows += [{"source": source, "suite": c["suite"], "condition": c["condition"],
                          "accuracy": c["accuracy"], "items": c["items"]} for c in met.get("conditions") or []]
            else:
                rows += [{"source": source, "suite": s, "accuracy": v["accuracy"], "items": v["items"]}
                         for s, v in met["suites"].items()]
        keys = ["source", "suite"] + (["condition"] if per_cond else [])
        df = pd.DataFrame(rows, columns=keys + ["accuracy", "items"]).set_index(keys)
        cols.append(df["accuracy"].rename(name))
        counts.append(df["items"].rename(f"items ({name})"))
    if not cols:
        return pd.DataFrame()
    out = pd.concat(cols + counts, axis=1)
    ns = out[[c.name for c in counts]]
    if ns.nunique(axis=1, dropna=True).le(1).all():        # the same items wherever recorded: one column
        out = out.drop(columns=list(ns.columns)).assign(items=ns.max(axis=1))
    return out.reset_index().sort_values(["source", "suite"], kind="stable", ignore_index=True)


def differing_words(model, df) -> list[str]:
    """For each row of a score_items frame: where its good and bad sentences part, as "good → bad" (the
    word a long sentence hides at its end in a narrow table); "" when they differ in more than one token."""
    out = []
    for g, b in zip(df["good"], df["bad"]):
        d = first_difference(model, str(g), str(b))
        out.append(f"{d[1]} → {d[2]}" if d else "")
    return out
