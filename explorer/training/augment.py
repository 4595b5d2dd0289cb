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
* "miss" becomes "mr" only as a title (a capitalised word follows: "Miss Bennet" -> "Mr Bennet");
  the verb ("we shall miss her") is left alone, and the address ("yes, miss.") becomes "sir";
  "mr" becomes "mrs" and "mrs" becomes "mr".
* "ma'am" becomes "sir"; "sir" becomes "madam" and "madam" becomes "sir".

With `gender-swap` names are not swapped (Elizabeth stays Elizabeth), so a name and a swapped
pronoun disagree in the copy. `gender-swap-names` (Maudslay et al. 2019, "It's all in the name")
also swaps first names, so that the copy stays consistent and a pronoun is still predictable from
the person it refers to, and spreads the single male address over the three female ones:

* **Names.** `name_genders` reads the gender of capitalised words from the training text itself:
  the title before them (Mr / Mrs, Miss, Lady) and the first he/him/his or she/her after them
  within a few words. A word is a name of one gender when it is seen at least `min_count` times
  with such evidence, at least `purity` of it one way, and it is rarely written in lower case.
  Surnames shared by a family (Mr and Mrs Bennet) fail the purity test and stay. The female and
  male names are paired by frequency rank (the most frequent with the most frequent) and swapped
  both ways; names left over in the longer list map one way to the other list, round-robin.
* **Address.** "sir" as an address becomes "miss" (`SIR_TO`), the word the beginner's guide expects
  for a girl, so that in the even copy "miss" is as frequent as "sir" and the sentence alone can
  decide between them; "ma'am", "madam" and "miss" (addresses) become "sir". (`swap_gender` can also
  spread "sir" over madam, ma'am and miss in turn, `sir_to=FEMALE_ADDRESSES`; then each female form
  is a third as frequent as "sir", and only a context effect above log 3 puts one above "sir".)
  "Sir Walter" (a title) becomes "Lady Walter" and "Lady Russell" becomes "Sir Russell".
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
#: One-way replacements for words whose partner is taken by another pair ("miss" only as a title).
ONE_WAY = {"miss": "mr", "ma'am": "sir", "lads": "lasses", "lasses": "lads", "his": "her"}
#: The words a gender-focused loss weights (`train --focus gender`): every gendered word of the
#: swap list, the pronouns and the forms of address.
GENDER_WORDS = sorted(set(w for pair in PAIRS for w in pair) | {"her", "his", "hers", "miss", "ma'am", "mrs", "mr"})
#: Singular gendered nouns and titles (`train --context-focus gender-nouns`): the words after which
#: the teaching model must remember who the sentence is about ("the girl ... she", "Mrs X ... her").
GENDER_NOUNS = sorted({w for pair in PAIRS for w in pair
                       if not (w.endswith("s") or w.endswith("men")) or w in ("mistress", "princess", "duchess", "lass", "mrs")}
                      - {"he", "she", "him", "her", "himself", "herself", "sir", "madam", "male", "female",
                         "masculine", "feminine", "gentlemanlike", "ladylike"} | {"miss"})
#: What "sir" as an address becomes in `gender-swap-names`.
SIR_TO = "miss"
#: The female addresses "sir" can rotate over (swap_gender(..., sir_to=FEMALE_ADDRESSES)) in `gender-swap-names`.
FEMALE_ADDRESSES = ("madam", "ma'am", "miss")

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


def _name_of(word: str) -> str:
    """A word without its possessive ending ("Emma's" -> "Emma")."""
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _next_is_name(text: str, end: int) -> bool:
    """A capitalised word follows on the same line ("Miss Bennet", "Sir Walter")."""
    return re.compile(r"\.?[ \t]+[A-Z]").match(text, end) is not None


def swap_gender(text: str, names: dict[str, str] | None = None, rotate_address: bool = False,
                sir_to: str | tuple[str, ...] = SIR_TO) -> str:
    """The text with every gendered word of the swap list swapped, case preserved.

    names: {Name: Name} swapped too (exact, capitalised forms; see `name_genders`). rotate_address:
    the address rules of `gender-swap-names` ("sir" becomes `sir_to`, or its words in turn when it
    is a tuple; "miss" as an address becomes "sir"), and titles are handled as titles."""
    names = names or {}
    turn = [0]

    def repl(m: re.Match) -> str:
        w = m.group(0)
        if w in names:
            return names[w]
        low = w.lower().replace("\u2019", "'")
        base, suffix = low, ""
        if low.endswith("'s") and (low[:-2] in SWAPS or low[:-2] == "her"):   # "lady's" -> "gentleman's"
            base, suffix = low[:-2], w[-2:]
        if w[:-2] in names and suffix:
            return names[w[:-2]] + suffix
        if base == "her":
            nxt = _next_word(m.string, m.end())
            out = "his" if nxt is not None and nxt not in _OBJECT_FOLLOWERS else "him"
            return _with_case(w, out) + suffix
        if base == "miss":
            if _next_is_name(m.string, m.end()):
                return _with_case(w, "mr") + suffix
            if rotate_address and re.compile(r"[ \t]*[,.!?;\"\u201d]").match(m.string, m.end()) \
                    and re.search(r"[,!?\"\u201c]\s*$", m.string[max(0, m.start() - 3):m.start()]):
                return _with_case(w, "sir") + suffix            # "Yes, miss." -> "Yes, sir."
            return w                                           # the verb: "we shall miss her"
        if rotate_address and base in ("sir", "lady") and _next_is_name(m.string, m.end()):
            return _with_case(w, "lady" if base == "sir" else "sir") + suffix   # titles
        if rotate_address and base == "sir":
            if isinstance(sir_to, str):
                return _with_case(w, sir_to) + suffix
            turn[0] += 1
            return _with_case(w, sir_to[(turn[0] - 1) % len(sir_to)]) + suffix
        if base not in SWAPS:
            return w
        return _with_case(w, SWAPS[base]) + suffix

    return _WORD.sub(repl, text)


_PRONOUN_GENDER = {"he": "m", "him": "m", "his": "m", "himself": "m",
                   "she": "f", "her": "f", "hers": "f", "herself": "f"}
_TITLE_GENDER = {"mr": "m", "mrs": "f", "miss": "f", "lady": "f", "lord": "m"}


#: Capitalised words that are titles or ranks, never swapped as names.
_NOT_NAMES = set("""professor doctor dr colonel captain inspector sergeant constable major general admiral
reverend sir lady lord miss mrs mr madam king queen god heaven baron count countess duke duchess
prince princess uncle aunt mamma papa mama
london england portsmouth bath""".split())   # and the places the evidence mistook


def name_genders(texts, min_count: int = 20, purity: float = 0.65, window: int = 8,
                 title_weight: int = 3) -> dict[str, str]:
    """{Name: "f" | "m"} for the capitalised words of `texts` whose gender the text itself shows.

    Evidence for a word is its title (Mr -> m; Mrs, Miss, Lady -> f; `title_weight` votes each)
    and the first third-person singular pronoun within `window` words after it (one vote: a noisy
    signal, since a woman's name is often followed by a sentence about a man). Kept when at least
    `min_count` votes, `purity` of them one way, and the word is written capitalised at least 90%
    of the time. Possessives count for their name ("Emma's" for "Emma")."""
    from collections import Counter
    ev: dict[str, Counter] = {}
    cap: Counter = Counter()
    low: Counter = Counter()
    for text in texts:
        words = _WORD.findall(text)
        for i, w in enumerate(words):
            w = _name_of(w)
            lw = w.lower()
            if not (w[0].isupper() and not w.isupper()):
                low[lw] += 1
                continue
            cap[w] += 1
            if ("'" in w or "\u2019" in w or lw in SWAPS or lw in _PRONOUN_GENDER or lw in _TITLE_GENDER
                    or lw in _NOT_NAMES or lw == "her" or len(w) < 3):
                continue
            c = ev.setdefault(w, Counter())
            prev = words[i - 1].lower() if i else ""
            if prev in _TITLE_GENDER:
                c[_TITLE_GENDER[prev]] += title_weight
            for nxt in words[i + 1:i + 1 + window]:
                g = _PRONOUN_GENDER.get(nxt.lower())
                if g:
                    c[g] += 1
                    break
    out = {}
    for w, c in ev.items():
        n = c["f"] + c["m"]
        if n < min_count or low[w.lower()] > 0.1 * (cap[w] + low[w.lower()]):
            continue
        g, k = max(c.items(), key=lambda kv: kv[1])
        if k / n >= purity:
            out[w] = g
    return out


def name_swaps(genders: dict[str, str], counts) -> dict[str, str]:
    """Pair female and male names by frequency rank; leftovers map one way, round-robin."""
    f = sorted((w for w, g in genders.items() if g == "f"), key=lambda w: (-counts[w], w))
    m = sorted((w for w, g in genders.items() if g == "m"), key=lambda w: (-counts[w], w))
    out: dict[str, str] = {}
    for a, b in zip(f, m):
        out[a], out[b] = b, a
    short, long_ = (f, m) if len(f) < len(m) else (m, f)
    for i, w in enumerate(long_[len(short):]):
        if short:
            out[w] = short[i % len(short)]
    return out


def swap_gender_names(texts: list[tuple[str, str]], sir_to: str | tuple[str, ...] = SIR_TO
                      ) -> tuple[list[tuple[str, str]], dict]:
    """The swapped copies of `texts` with names and addresses (see the module docstring), and what
    was swapped: {"names": {Name: Name}, "genders": {Name: g}}. sir_to: what "sir" (an address)
    becomes: one word, or several in turn (`FEMALE_ADDRESSES` for `gender-swap-names-spread`)."""
    from collections import Counter
    genders = name_genders([t for _, t in texts])
    counts = Counter(_name_of(w) for _, t in texts for w in _WORD.findall(t))
    names = name_swaps(genders, counts)
    return [(n, swap_gender(t, names, rotate_address=True, sir_to=sir_to)) for n, t in texts], {"names": names, "genders": genders}


AUGMENTATIONS = {"gender-swap": swap_gender, "gender-swap-names": swap_gender_names,
                 "gender-swap-names-spread": swap_gender_names}
#: What "sir" (an address) becomes in each names augmentation.
ADDRESS_SWAP = {"gender-swap-names": SIR_TO, "gender-swap-names-spread": FEMALE_ADDRESSES}


def augment(texts: list[tuple[str, str]], kind: str, info: dict | None = None) -> list[tuple[str, str]]:
    """The texts followed by a transformed copy of each ("name [gender-swap]", text). info, when
    given, receives what a corpus-dependent augmentation decided (the name list)."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; choose from {', '.join(AUGMENTATIONS)}")
    if kind in ADDRESS_SWAP:
        copies, got = swap_gender_names(list(texts), sir_to=ADDRESS_SWAP[kind])
        if info is not None:
            info.update(got)
        return list(texts) + [(f"{name} [{kind}]", t) for name, t in copies]
    f = AUGMENTATIONS[kind]
    return list(texts) + [(f"{name} [{kind}]", f(t)) for name, t in texts]


__all__ = ["PAIRS", "ONE_WAY", "SWAPS", "FEMALE_ADDRESSES", "SIR_TO", "ADDRESS_SWAP", "GENDER_WORDS", "GENDER_NOUNS", "swap_gender", "name_genders", "name_swaps",
           "swap_gender_names", "augment", "AUGMENTATIONS"]
