"""Label counts on hard-wrapped text under the old rule (every <eos> ends a paragraph) and the new one
(paragraphs from blank lines), as JSON: the numbers behind issue 20's closing note.

    python scripts/eos_labels_report.py [--book ../shared/data/fiction/austen_persuasion.txt]
                                        [--width 70] [--tokens 10000]

The book (a held-out one: the fiction SPLITS.json's test split) is wrapped at --width columns, paragraph
by paragraph, with a blank line between paragraphs, and split as pytorch/examples' word_language_model
splits it (`line.split() + ['<eos>']`: explorer.tokenizer.WhitespaceTokenizer). The first --tokens tokens
are labelled by the probe tasks (explorer.analysis.probe.task_labels) and the unit predicates
(explorer.corpus.queries) twice: with eos_means "paragraph" (every <eos> resets, the old rule) and
"line" (only a blank line does). Each rule's warnings are printed beside its counts.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wrap(text: str, width: int) -> str:
    """Each paragraph (text between blank lines) joined into one line and wrapped at `width` columns."""
    paras = [" ".join(p.split()) for p in re.split(r"\n[ \t\r]*\n", text)]
    return "\n\n".join(textwrap.fill(p, width) for p in paras if p) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--book", default=str(ROOT.parent / "shared" / "data" / "fiction" / "austen_persuasion.txt"))
    ap.add_argument("--width", type=int, default=70)
    ap.add_argument("--tokens", type=int, default=10_000)
    args = ap.parse_args(argv)
    import pandas as pd

    from explorer.analysis.probe import task_labels
    from explorer.corpus import labels as LB
    from explorer.corpus import queries as Q
    from explorer.tokenizer import WhitespaceTokenizer

    book = Path(args.book)
    if not book.is_file():
        print(f"error: {book} does not exist (../shared is not part of the repository)", file=sys.stderr)
        return 2
    text = wrap(book.read_text(encoding="utf-8"), args.width)
    tok = WhitespaceTokenizer.build([text])
    toks = tok.tokenize(text)[: args.tokens]
    texts = [t.text for t in toks]
    table = pd.DataFrame({"text": texts, "position": range(len(texts))})
    out = {"book": book.name, "width": args.width, "tokens": len(toks),
           "line_ends": sum(t == "<eos>" for t in texts),
           "blank_lines": sum(a == b == "<eos>" for a, b in zip(texts, texts[1:])), "rules": {}}
    for rule, eos in (("old: every <eos> ends a paragraph", "paragraph"),
                      ("new: paragraphs from blank lines", "line")):
        r = {"eos_means": eos, "probe": {}, "predicates": {}}
        for task in ("quote", "distance"):
            y, names = task_labels(task, toks, eos_means=eos, kind="whitespace")
            r["probe"][task] = LB.label_counts(y, names)
        for name in ("inside_quotes", "after_female", "sentence_start"):
            r["predicates"][name] = LB.label_counts(Q.PREDICATES[name][1](table, eos_means=eos),
                                                    Q.PREDICATE_LABELS[name])
        r["warnings"] = LB.paragraph_warnings(texts, LB.paragraph_breaks(texts, eos), eos)
        out["rules"][rule] = r
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        raise SystemExit(main())
