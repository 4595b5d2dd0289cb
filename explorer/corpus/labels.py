"""Labels read from the user's text as the user's data means it: paragraphs, quotations, sentence
ends and words, for the probes (explorer.analysis.probe) and the unit predicates (queries.py); and the
label counts and plausibility checks that let a wrong rule show.

Paragraphs. A paragraph ends at a blank line of the text, never at every line end. What the token
<eos> is depends on the model (explorer.tokenizer.eos_means): where it means "paragraph" (this
project's word and char tokenizers read <eos> only at a blank line; an imported whitespace model
whose text held one paragraph a line) every <eos> ends one. Where it means "line" (pytorch/examples'
whitespace split, ``line.split() + ['<eos>']``: hard-wrapped prose has a line end inside every
paragraph) a paragraph ends only at a blank line, which that split reads as an <eos> right after
another <eos> (the empty line between them), and where a file starts.

Tokens. The whitespace split keeps punctuation on its words ('"Can', 'sir.', 'miss?"'), so a token
is read character by character for quote marks, a sentence end is a token ending in . ! or ? (before
closing quotes or brackets), and a word is compared without the punctuation around it. On the word
tokenizer's tokens (punctuation apart) these rules give what they gave before.
"""
from __future__ import annotations

import re
import warnings

import numpy as np

from ..errors import InputError
from ..tokenizer import EOS, EOS_MEANS

OPEN, CLOSE, STRAIGHT = "\u201c", "\u201d", '"'
QUOTE_MARKS = frozenset(OPEN + CLOSE + STRAIGHT)
SENTENCE_END = frozenset(".!?")
_TRAILING = "\"'\u201d\u2019)]}"
_EDGES = re.compile(r"^\W+|\W+$")

#: Quote marks are "frequent" from this share of tokens on (and at least MIN_MARKS of them).
FREQUENT_MARKS, MIN_MARKS = 0.002, 10
#: Warn where at least this share of the paragraphs that hold quote marks hold an odd number of them.
ODD_SHARE = 0.5


def paragraph_breaks(texts, eos_means: str, starts=None) -> np.ndarray:
    """bool [tokens]: True where a paragraph begins, i.e. the labels' state resets before the token
    is read (see the module docstring). `texts`: the tokens' texts ("<eos>" for the boundary token);
    `starts`: bool [tokens], True at each file's first token (where a file starts, so does a paragraph)."""
    if eos_means not in EOS_MEANS:
        raise InputError(f"eos_means must be line or paragraph, not {eos_means!r}")
    eos = np.asarray([t == EOS for t in texts], bool)
    if eos_means == "paragraph":
        out = eos.copy()
    else:                               # an <eos> right after an <eos>: the line between them is empty
        out = eos & np.concatenate([[True], eos[:-1]])
    if starts is not None:
        out |= np.asarray(starts, bool)
    return out


def quote_labels(texts, breaks) -> tuple[np.ndarray, np.ndarray]:
    """(inside, bare): bool [tokens]. “ opens a quotation, ” closes it, a straight " toggles, every
    mark of a token in order; a paragraph break closes an open quotation (fiction opens each quoted
    paragraph again). inside[t]: a token with a word is inside when a character of its word is read
    inside a quotation ('"Can' and 'miss?"' are); a token of quote marks only (`bare`) is labelled
    with the state after it (an opening mark is inside, a closing one outside); <eos> with the state."""
    n = len(texts)
    inside, bare = np.zeros(n, bool), np.zeros(n, bool)
    cur = False
    for i, t in enumerate(texts):
        if breaks[i]:
            cur = False
        if t == EOS or QUOTE_MARKS.isdisjoint(t):
            inside[i] = cur
            continue
        word = hit = False
        for ch in t:
            if ch == STRAIGHT:
                cur = not cur
            elif ch == OPEN:
                cur = True
            elif ch == CLOSE:
                cur = False
            else:
                word, hit = True, hit or cur
        inside[i], bare[i] = (hit, False) if word else (cur, True)
    return inside, bare


def is_sentence_end(text: str) -> bool:
    """A token that ends a sentence: ". ! ?" or a word ending in one (before closing quotes/brackets)."""
    t = text.rstrip(_TRAILING)
    return bool(t) and t[-1] in SENTENCE_END and text != EOS


def word_of(text: str) -> str:
    """A token's word, lower-case, without the punctuation around it ('Her,' -> 'her')."""
    return _EDGES.sub("", text.lower())


def label_counts(values, names) -> dict:
    """{name: tokens with that label, ..., "unlabelled": tokens without one}. `values`: label indices
    (ints), or floats with NaN where a token has no label."""
    v = np.asarray(values, np.float64)
    known = ~np.isnan(v)
    counts = np.bincount(v[known].astype(np.int64), minlength=len(names))
    return {**{n: int(c) for n, c in zip(names, counts)}, "unlabelled": int((~known).sum())}


def paragraph_warnings(texts, breaks, eos_means: str) -> list[str]:
    """Sentences for people where the paragraphs look wrong, read from the quote marks: quotation marks
    pair up within paragraphs in prose, so where they are frequent and most paragraphs that hold any hold
    an odd number, the paragraph rule is cutting quotations (<eos> read as a paragraph end in hard-wrapped
    text) or joining paragraphs (<eos> read as a line end in text with one paragraph a line)."""
    texts = list(texts)
    n = len(texts)
    marks = np.array([0 if t == EOS or QUOTE_MARKS.isdisjoint(t) else sum(ch in QUOTE_MARKS for ch in t)
                      for t in texts], np.int64)
    if n == 0 or marks.astype(bool).sum() < max(MIN_MARKS, FREQUENT_MARKS * n):
        return []
    para = np.cumsum(np.asarray(breaks, bool))
    per = np.bincount(para, weights=marks).astype(np.int64)
    with_marks = int((per > 0).sum())
    odd = int((per % 2 == 1).sum())
    eos = np.array([t == EOS for t in texts])
    blank_lines = bool((eos[1:] & eos[:-1]).any())      # only a tokenizer with <eos> per line reads two in a row
    out = []
    if with_marks >= 3 and odd >= ODD_SHARE * with_marks:
        if eos_means == "paragraph":
            blank = ", and the text has blank lines (two <eos> in a row) as well" if blank_lines else ""
            out.append(f"quote marks are frequent ({int(marks.astype(bool).sum())} of {n} tokens hold one) but no "
                       f"quotation runs on past an <eos>: this model's card reads every <eos> as a paragraph end "
                       f"(eos_means 'paragraph'), yet {odd} of {with_marks} stretches between two <eos> that hold "
                       f"quote marks hold an odd number of them, as the lines of hard-wrapped text do{blank}. If "
                       f"the text is hard-wrapped, record eos_means 'line' (import --eos-means line): then only "
                       f"a blank line ends a paragraph")
        else:
            out.append(f"{odd} of {with_marks} paragraphs (between blank lines) that hold quote marks hold an odd "
                       f"number of them: <eos> is read as a line end (eos_means 'line') and only a blank line ends a "
                       f"paragraph; if the text has one paragraph a line, record eos_means 'paragraph' "
                       f"(import --eos-means paragraph)")
    elif eos_means == "line" and eos.any() and not blank_lines and n >= 1000:
        out.append(f"the text has line ends but no blank line in {n} tokens, so it reads as one paragraph "
                   f"(eos_means 'line'); if each line is a paragraph, record eos_means 'paragraph'")
    return out


def emit(messages) -> None:
    """Each message as a Python UserWarning (the same sentences go into the JSON output)."""
    for m in messages:
        warnings.warn(m, UserWarning, stacklevel=3)
