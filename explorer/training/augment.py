"""Counterfactual data augmentation: a copy of the training text with gendered words swapped.

The books say "he" far more often than "she" and "sir" far more often than "madam", so a language
model trained on them learns a prior that drowns what the sentence says: after "The girl said that"
it still expects "he". Adding a copy of the training text in which every gendered word is swapped
(Lu et al. 2018, "Gender bias in neural natural language processing"; Zmigrod et al. 2019) makes
the prior even, so the only way left to predict "she" or "madam" is to remember who the sentence is
about. Validation and test text are never augmented: the perplexity we report is on the books as
written.

The swap list (`SWAPS`) is word-level and case-preserving ("He" -> "She", "MR" -> "MRS"). Three
words need a rule rather than a table:

* "her" is both object and possessive: it becomes "his" when a word follows that is not a function
  word or punctuation ("her hat" -> "his hat"), else "him" ("told her ." -> "told him .").
* "miss" (in these books nearly always the title "Miss Bennet" or the address "yes, miss") becomes
  "mr"; "mr" becomes "mrs" and "mrs" becomes "mr".
* "ma'am" becomes "sir"; "sir" becomes "madam" and "madam" becomes "sir".

Names are not swapped (Elizabeth stays Elizabeth), so a name and a swapped pronoun can disagree in
the copy; the original text still teaches the names.
"""
from __future__ import annotations

import re

#: Pairs swapped both ways (lower case; the case of each occurrence is kept).
PAIRS = [
    ("he", "she"), ("him", "her"), ("himself", "herself"),
    ("boy", "girl"), ("boys", "girls"), ("man", "woman"), ("men", "women"),
    ("gentleman", "lady"), ("gentlemen", "ladies"), ("sir", "madam"), ("mr", "mrs"),
    ("father", "mother"), ("fathers", "mothers"), ("son", "daughter"), ("sons", "daughters"),
    ("brother", "sister"), ("brothers", "sisters"), ("husband", "wife"), ("husbands", "wives"),
    ("uncle", "aunt"), ("uncles", "aunts"), ("nephew", "niece"), ("nephews", "nieces"),
    ("king", "queen"), ("prince", "princess"), ("duke", "duchess"), ("lord", "lady"),
    ("master", "mistress"), ("papa", "mama"), ("grandfather", "grandmother"),
    ("bridegroom", "bride"), ("widower", "widow"), ("male", "female"), ("masculine", "feminine"),
    ("lad", "lass"), ("gentlemanlike", "ladylike"),
]
#: One-way replacements for words whose partner is taken by another pair.
ONE_WAY = {"miss": "mr", "ma'am": "sir", "lads": "lasses", "lasses": "lads", "his": "her"}

#: Words after which "her" is an object ("him"), not a possessive ("his").
_OBJECT_FOLLOWERS = set("""
a an the and or but nor to of in on at by for with from into upon about as that than so if when
while though although because before after since till until again too also not never ever once
very much more most all both this these those there here then now up down out off over away back
be is was were been being has had have do does did will would shall should can could may might must
what which who whom whose how why where whether own self i me my you your he him his she her it its
we us our they them their one no any some such every each either neither s
""".split())

SWAPS: dict[str, str] = {}
for _a, _b in PAIRS:
    SWAPS.setdefault(_a, _b)
    SWAPS.setdefault(_b, _a)
SWAPS.update(ONE_WAY)
del SWAPS["her"]  # by rule, see _swap_her

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


def _with_case(src: str, dst: str) -> str:
    if src.isupper() and len(src) > 1:
        return dst.upper()
    if src[:1].isupper():
        return dst[:1].upper() + dst[1:]
    return dst


def _next_word(text: str, end: int) -> str | None:
    """The next word after position `end`, or None when punctuation or the end comes first."""
    m = re.compile(r"[ \t]*(?:\n[ \t]*)?([^\W\d_]+)").match(text, end)
    return m.group(1).lower() if m else None


def swap_gender(text: str) -> str:
    """The text with every gendered word of the swap list swapped, case preserved."""

    def repl(m: re.Match) -> str:
        w = m.group(0)
        low = w.lower().replace("\u2019", "'")
        base, suffix = low, ""
        if low.endswith("'s") and low[:-2] in SWAPS:   # possessives: "lady's" -> "gentleman's"
            base, suffix = low[:-2], w[-2:]
        if base == "her":
            nxt = _next_word(m.string, m.end())
            out = "his" if nxt is not None and nxt not in _OBJECT_FOLLOWERS else "him"
            return _with_case(w, out) + suffix
        if base not in SWAPS:
            return w
        return _with_case(w, SWAPS[base]) + suffix

    return _WORD.sub(repl, text)


AUGMENTATIONS = {"gender-swap": swap_gender}


def augment(texts: list[tuple[str, str]], kind: str) -> list[tuple[str, str]]:
    """The texts followed by a transformed copy of each ("name [gender-swap]", text)."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; choose from {', '.join(AUGMENTATIONS)}")
    f = AUGMENTATIONS[kind]
    return list(texts) + [(f"{name} [{kind}]", f(t)) for name, t in texts]


__all__ = ["PAIRS", "ONE_WAY", "SWAPS", "swap_gender", "augment", "AUGMENTATIONS"]
