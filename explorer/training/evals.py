"""Targeted evaluations: minimal pairs (Marvin & Linzen 2018 and the project's own agreement
pairs) and the bartender margin from the beginner's guide.

A model passes a minimal-pair item when it gives the good sentence a higher log-probability than
every bad one. Items with a word outside the model's vocabulary are left out and counted.
"""
from __future__ import annotations

import gzip
import itertools
import json
from collections import defaultdict
from pathlib import Path

from ..errors import CorpusError

BARTENDER = ('A {person} walked into a bar, and {pron} said "Can I have a drink please?" '
             'The bartender said "Certainly,')
BARTENDER_GIRL = BARTENDER.format(person="girl", pron="she")
BARTENDER_BOY = BARTENDER.format(person="boy", pron="he")
FEMALE_ADDRESS = ("miss", "ma'am", "madam")


def read_pairs(path: Path) -> list[dict]:
    """Minimal-pair items of a .jsonl(.gz) file: objects with "good" (a sentence) and "bad" (a
    non-empty list of sentences); CorpusError names the file and line of anything else."""
    opener = gzip.open if path.suffix == ".gz" else open
    items = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                d = json.loads(line)
                if not isinstance(d, dict) or "good" not in d or "bad" not in d:
                    raise CorpusError(f"{path.name} line {n}: expected an object with 'good' and 'bad'")
                if not isinstance(d["good"], str):
                    raise CorpusError(f"{path.name} line {n}: 'good' must be a sentence (a string), "
                                      f"not {type(d['good']).__name__}")
                bad = d["bad"]
                if not (isinstance(bad, list) and bad and all(isinstance(b, str) for b in bad)):
                    raise CorpusError(f"{path.name} line {n}: 'bad' must be a non-empty list of sentences "
                                      f"(strings), not {json.dumps(bad)[:60]}")
                items.append(d)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read minimal pairs from {path.name}: {e}") from None
    return items


def minimal_pairs(model, items: list[dict]) -> dict:
    """Accuracy per (suite, condition) on in-vocabulary items, with item counts."""
    tok = model.tokenizer

    def known(s: str) -> bool:
        return not any(t.unk for t in tok.tokenize(s))

    kept = [d for d in items if known(d["good"]) and all(known(b) for b in d["bad"])]
    sents = sorted({s for d in kept for s in [d["good"], *d["bad"]]})
    scores = {s: r["logprob"] for s, r in zip(sents, model.score_batch(sents))}
    acc: dict = defaultdict(lambda: [0, 0])
    for d in kept:
        ok = all(scores[d["good"]] > scores[b] for b in d["bad"])
        key = (d.get("suite", "?"), d.get("condition", "all"))
        acc[key][0] += ok
        acc[key][1] += 1
    total = defaultdict(lambda: [0, 0, 0])
    for d in items:
        total[d.get("suite", "?")][2] += 1
    rows = []
    for (suite, cond), (ok, n) in sorted(acc.items()):
        rows.append({"suite": suite, "condition": cond, "accuracy": round(ok / n, 4), "items": n})
        total[suite][0] += ok
        total[suite][1] += n
    suites = {s: {"accuracy": round(ok / n, 4) if n else None, "items": n, "items_total": tot}
              for s, (ok, n, tot) in sorted(total.items())}
    paired = _paired(kept, scores)
    n_all = sum(v[1] for v in total.values())
    ok_all = sum(v[0] for v in total.values())
    return {"accuracy": round(ok_all / n_all, 4) if n_all else None, "items": n_all,
            "items_total": len(items), "suites": suites, "conditions": rows,
            **({"paired": paired} if paired else {})}


def _paired(items, scores) -> dict:
    """Context-effect accuracy over mirrored pairs (items sharing a "pair" id), per suite and distance."""
    by: dict = defaultdict(list)
    for d in items:
        if "pair" in d:
            by[d["pair"]].append(d)
    acc: dict = defaultdict(lambda: [0, 0, 0.0])
    for pair in by.values():
        if len(pair) != 2:
            continue
        effect = sum(scores[d["good"]] - scores[d["bad"][0]] for d in pair)
        key = (pair[0]["suite"], pair[0]["condition"].split("_")[0])
        acc[key][0] += effect > 1e-9   # a tie (no context effect) is not a success
        acc[key][1] += 1
        acc[key][2] += effect
    return {f"{s}/{c}": {"accuracy": round(ok / n, 4), "pairs": n, "mean_effect_nats": round(e / n, 4)}
            for (s, c), (ok, n, e) in sorted(acc.items())}


def run_suite_folder(model, folder, max_items: int = 0) -> dict:
    folder = Path(folder)
    files = sorted(list(folder.glob("*.jsonl")) + list(folder.glob("*.jsonl.gz")))
    if not files:
        raise CorpusError(f"{folder} holds no *.jsonl or *.jsonl.gz minimal-pair files")
    items = []
    for f in files:
        got = read_pairs(f)
        items.extend(got[:max_items] if max_items else got)
    return minimal_pairs(model, items)


# ---- the project's own pairs, modelled on the bartender example ---------------------------------

def agreement_pairs() -> list[dict]:
    """Gender agreement and forms of address, near and far, modelled on the bartender example.

    Balanced: every item has a mirror item (same "pair" id) with the genders swapped, so a model
    that ignores the context scores exactly 50% on plain accuracy. The paired score asks the sharper
    question: does the context move the model the right way? For a pair, (log P(good_F) - log P(bad_F))
    + (log P(good_M) - log P(bad_M)) > 0 cancels the model's prior for "he"/"sir" and is positive
    only when "girl"/"she" raise the female word relative to "boy"/"he".
    """
    F = [("girl", "she", "her"), ("woman", "she", "her"), ("lady", "she", "her")]
    M = [("boy", "he", "his"), ("man", "he", "his"), ("gentleman", "he", "his")]
    gaps = ["", "who had walked all the way from the village in the rain ,",
            "after a long and weary day in the town ,"]
    items: list[dict] = []

    def mirror(suite, dist, f_good, f_bad, m_good, m_bad):
        pair = len(items) // 2
        items.append({"suite": suite, "condition": f"{dist}_female", "good": f_good, "bad": [f_bad], "pair": pair})
        items.append({"suite": suite, "condition": f"{dist}_male", "good": m_good, "bad": [m_bad], "pair": pair})

    for (fp, fs, fpos), (mp, ms, mpos) in itertools.product(F, M):
        for gap in gaps:
            dist = "far" if gap else "near"
            f, m = f"the {fp} {gap}".replace("  ", " ").strip(), f"the {mp} {gap}".replace("  ", " ").strip()
            mirror("pronoun", dist, f"{f} said that she was tired .", f"{f} said that he was tired .",
                   f"{m} said that he was tired .", f"{m} said that she was tired .")
            mirror("possessive", dist, f"{f} took her hat and went out .", f"{f} took his hat and went out .",
                   f"{m} took his hat and went out .", f"{m} took her hat and went out .")
        for where, what in (("walked into a bar", "drink"), ("came into the shop", "cup of tea")):
            for addr in FEMALE_ADDRESS:
                cf = f'a {fp} {where} , and {fs} said " can i have a {what} please ? " the servant said " certainly ,'
                cm = f'a {mp} {where} , and {ms} said " can i have a {what} please ? " the servant said " certainly ,'
                mirror("address", "far", f'{cf} {addr} . "', f'{cf} sir . "', f'{cm} sir . "', f'{cm} {addr} . "')
    return items


def bartender_margin(model) -> dict:
    """log P(female address) - log P(sir) at the blank, after the girl/she and the boy/he versions.

    The female address probability is the sum over miss, ma'am and madam (those in the vocabulary).
    The effect is the girl margin minus the boy margin: > 0 means the model used 'girl'/'she'.
    """
    import math
    out = {}
    for name, text in (("girl", BARTENDER_GIRL), ("boy", BARTENDER_BOY)):
        probs = dict(model.next_words(text, len(model.tokenizer)))
        fem = {w: probs[w] for w in FEMALE_ADDRESS if w in model.tokenizer.stoi}
        sir = probs.get("sir", 0.0)
        out[name] = {"text": text, "p_sir": sir, **{f"p_{w}": p for w, p in fem.items()},
                     "margin": math.log(max(sum(fem.values()), 1e-30)) - math.log(max(sir, 1e-30)),
                     "miss_vs_sir": (math.log(max(fem.get("miss", 0.0), 1e-30)) - math.log(max(sir, 1e-30)))}
    out["effect"] = out["girl"]["margin"] - out["boy"]["margin"]
    out["effect_miss"] = out["girl"]["miss_vs_sir"] - out["boy"]["miss_vs_sir"]
    return out


# ---- the teaching model's bar (issue: "the seed's examples must land") ---------------------------

#: What a teaching model must show on the project's own pairs and the bartender sentence.
TEACHING_BAR = {"pairs_accuracy": 0.85, "pair_type_accuracy": 0.70}


def pair_types(result: dict) -> dict:
    """Plain accuracy per pair type (suite/near|far, both genders together) from `minimal_pairs`."""
    acc: dict = defaultdict(lambda: [0.0, 0])
    for row in result["conditions"]:
        key = f"{row['suite']}/{row['condition'].split('_')[0]}"
        acc[key][0] += row["accuracy"] * row["items"]
        acc[key][1] += row["items"]
    return {k: {"accuracy": round(ok / n, 4), "items": n} for k, (ok, n) in sorted(acc.items())}


def teaching_report(model) -> dict:
    """The bartender margins, the pairs' plain accuracy (overall and per type) and whether each of
    the teaching bar's figures is met. Uses no held-out book: choosing a snapshot by it is fair."""
    b = bartender_margin(model)
    r = minimal_pairs(model, agreement_pairs())
    types = pair_types(r)
    checks = {
        "bartender_girl_female_over_sir": b["girl"]["margin"] > 0,
        "bartender_boy_sir_over_female": b["boy"]["margin"] < 0,
        "bartender_girl_miss_over_sir": b["girl"]["miss_vs_sir"] > 0,     # what lesson step 3's bars show
        # no pair in the vocabulary: nothing is shown, so nothing is met
        "pairs_accuracy": r["accuracy"] is not None and r["accuracy"] >= TEACHING_BAR["pairs_accuracy"],
        "every_pair_type": bool(types) and min(t["accuracy"] for t in types.values())
        >= TEACHING_BAR["pair_type_accuracy"],
    }
    return {"bartender": {"girl_margin": round(b["girl"]["margin"], 4), "boy_margin": round(b["boy"]["margin"], 4),
                          "effect": round(b["effect"], 4), "girl_miss_vs_sir": round(b["girl"]["miss_vs_sir"], 4),
                          "boy_miss_vs_sir": round(b["boy"]["miss_vs_sir"], 4)},
            "pairs_accuracy": r["accuracy"], "pair_types": types, "paired": r.get("paired", {}),
            "checks": checks, "meets_bar": all(checks.values())}


# ------------------------------------------------------------------------------ public entry points
def evaluate_corpus(model, corpus, split: str = "test", *, split_file=None, files=None,
                    allow_training_text: bool = False) -> dict:
    """Perplexity of `model` (a LoadedModel) on one split of a corpus folder, as `python -m explorer
    eval` prints it: perplexity, tokens, unk_rate, the files read and how the folder was split. A
    held-out split that would read a file the model's card names as training text is refused
    (InputError) unless allow_training_text, which the result then records. `files`: an explicit
    split (explorer.training.data.split_spec)."""
    from .data import batchify, check_held_out, encode_texts, read_corpus
    from .train import evaluate
    c = read_corpus(corpus, split_file, files=files)
    held = check_held_out(model.card, c, (split,), allow_training_text) if split != "train" else {}
    stream = encode_texts(model.tokenizer, c[split])
    r = evaluate(model.lm, batchify(stream, 10))
    unk = (stream == model.tokenizer.unk_id).float().mean().item()
    return {"perplexity": round(r["perplexity"], 3), "tokens": r["tokens"], "unk_rate": round(unk, 5),
            "split": split, "files": c.files()[split], "split_file": c.split_file,
            "split_source": c.source, "splits": c.files()} | held


def syneval(model, suite, max_items: int = 0) -> dict:
    """Marvin & Linzen's targeted syntactic evaluation over the suite folder, the agreement minimal
    pairs and the bartender margin, as `python -m explorer syneval` prints them."""
    return {"syneval": run_suite_folder(model, suite, max_items), "agreement": minimal_pairs(model, agreement_pairs()),
            "bartender": bartender_margin(model)}
