"""Tokenizers: text -> tokens with character spans -> ids.

The tokenizers share one interface (`tokenize`, `encode`, `decode`, `save`, `from_dict`):

* `WordTokenizer` — word level, for English prose. Case-folded; punctuation is a token of its own
  (quotes and commas carry memory: a network can learn to track "inside a quotation"); contractions
  and forms such as "ma'am", "don't" and "o'clock" stay whole; numbers are tokens; a paragraph break
  becomes the boundary token ``<eos>``; words outside the vocabulary map to ``<unk>``.
* `CharTokenizer` — one token per character (newlines of a paragraph break become ``<eos>``).
* `WhitespaceTokenizer` — split on whitespace, case kept, each line end ``<eos>`` (pytorch/examples'
  word language model; for imported checkpoints, see explorer.importer).

What ``<eos>`` marks therefore depends on the tokenizer: a paragraph end for the word and character
tokenizers, a line end for the whitespace tokenizer, which is a paragraph end only where the text held
one paragraph a line. `eos_means` answers it for a model, from its card (``card["tokenizer"]["eos_means"]``,
"line" or "paragraph") or else from what its tokenizer does.

Text is NFC-normalised before tokenising (a decomposed accent reads as the composed letter), and a
Windows paragraph break (``\r\n\r\n``) is a paragraph break. `detokenize` is the inverse: it writes
tokens back as text (characters joined as characters, words as words).

Every token keeps its ``(start, end)`` character span in the original text, so a front end can
highlight exactly the characters a token came from, whatever normalisation was applied.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import InputError

UNK = "<unk>"
EOS = "<eos>"
SPECIALS = (UNK, EOS)
#: What a boundary token <eos> can mark in a model's text (card["tokenizer"]["eos_means"]).
EOS_MEANS = ("line", "paragraph")

# Typographic variants folded to one vocabulary form (the span still points at the original).
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'",
                       "\u2014": "--", "\u2013": "-"})

# Order matters: the first alternative that matches at a position wins.
_WORD_RE = re.compile(
    r"""
    (?P<para>\r?\n[ \t\r]*\n\s*)                            # paragraph break -> <eos> (\n\n or \r\n\r\n)
  | (?P<num>\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?)                # 1895, 3.5, 10:30, 21st
  | (?P<word>[^\W\d_]+(?:['\u2019][^\W\d_]+)*)               # words; don't, ma'am, o'clock
  | (?P<dash>--+|\u2014+)                                    # em-dashes written as -- or —
  | (?P<skip>[\s_]+)                                         # spaces; _italics_ markup
  | (?P<other>.)                                             # any other character, one token each
    """,
    re.VERBOSE | re.DOTALL,
)
_CHAR_RE = re.compile(r"\r?\n[ \t\r]*\n\s*|.", re.DOTALL)

# Detokenising words: no space before these (a space after them is kept, so "3 . 5" cannot become
# the number "3.5"); every other pair of tokens is joined by one space.
_NO_SPACE_BEFORE = frozenset(",.;:!?)]}")
_NO_SPACE_AFTER = frozenset("([{")


def _nfc_map(text: str) -> tuple[str, list[int], list[int]]:
    """NFC-normalise `text` and say where each normalised character came from.

    Returns (normalised, starts, ends): normalised[j] came from text[starts[j]:ends[j]]. The text is
    normalised in segments (a character with its following combining marks), so each segment's
    characters map back to that segment's span.
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        seg = unicodedata.normalize("NFC", text[i:j]) if j - i > 1 else text[i]
        out.append(seg)
        starts.extend([i] * len(seg))
        ends.extend([j] * len(seg))
        i = j
    return "".join(out), starts, ends


@dataclass(frozen=True)
class Token:
    """One token: its surface text, vocabulary form, character span and id."""

    text: str          # exactly text[start:end] of the input (or "<eos>" for a boundary)
    norm: str          # the vocabulary form that was looked up (case-folded, quotes folded)
    start: int
    end: int
    id: int
    unk: bool          # True when `norm` is not in the vocabulary (id is the <unk> id)
    special: bool = False  # True for <eos>


def _clean_char(ch: str) -> bool:
    """Characters that carry no text (control characters, NUL) are not tokens."""
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\n\t"


class _Base:
    kind = "base"
    #: what <eos> marks in text this tokenizer splits: "paragraph" (it reads <eos> at a blank line only)
    #: or "line" (at every line end)
    eos_means = "paragraph"

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        for s in SPECIALS:
            if s not in vocab:
                raise ValueError(f"vocabulary lacks the special token {s!r}")
        if len(set(vocab)) != len(vocab):
            dup = [w for w, n in Counter(vocab).items() if n > 1][:5]
            raise ValueError(f"vocabulary has repeated entries: {dup}")
        self.itos: list[str] = vocab
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(vocab)}
        self.unk_id = self.stoi[UNK]
        self.eos_id = self.stoi[EOS]

    def __len__(self) -> int:
        return len(self.itos)

    # -- subclasses provide _pieces(text) -> iterable of (norm, start, end, is_boundary)
    def _pieces(self, text: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def _norm_pieces(self, text: str):
        """_pieces of the NFC form of `text`, with spans pointing into `text` itself (a decomposed
        accent, "nai\u0308ve", reads as the composed word "na\u00efve")."""
        if unicodedata.is_normalized("NFC", text):
            yield from self._pieces(text)
            return
        norm_text, starts, ends = _nfc_map(text)
        for norm, s, e, boundary in self._pieces(norm_text):
            yield norm, starts[s] if s < len(starts) else len(text), ends[e - 1] if e > s else starts[s], boundary

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of `text` (after NFC normalisation; spans and `Token.text` refer to `text` itself)."""
        out = []
        for norm, start, end, boundary in self._norm_pieces(text):
            if boundary:
                out.append(Token(EOS, EOS, start, end, self.eos_id, False, True))
                continue
            i = self.stoi.get(norm)
            out.append(Token(text[start:end], norm, start, end,
                             self.unk_id if i is None else i, i is None))
        return out

    def encode(self, text: str) -> list[int]:
        return [t.id for t in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    #: how a boundary token <eos> is written back into text
    paragraph = "\n\n"

    def _join(self, prev: str, piece: str, quotes: int) -> str:
        """The separator written between the previous token's text `prev` and the next one's,
        `piece`; `quotes`: how many '"' the text holds before `piece`."""
        return ""

    def extend_text(self, text: str, tokens: Iterable) -> tuple[str, list[tuple[int, int]]]:
        """Append tokens (ids or vocabulary forms) to `text` as this tokenizer writes them; return the
        new text and each token's (start, end) span in it. <eos> is written as a paragraph break."""
        parts = [text]
        spans = []
        end = len(text)
        prev = text
        quotes = text.count('"')
        for t in tokens:
            w = self.itos[int(t)] if not isinstance(t, str) else t
            piece = self.paragraph if w == EOS else w
            sep = "" if (w == EOS or not prev or prev.endswith(("\n", " ", "\t"))) else self._join(prev, piece, quotes)
            quotes += piece.count('"')
            start = end + len(sep)
            end = start + len(piece)
            parts.append(sep + piece)
            spans.append((start, end))
            prev = piece
        return "".join(parts), spans

    def detokenize(self, tokens: Iterable) -> str:
        """Text that reads back as `tokens` (ids or vocabulary forms): characters are joined as
        characters, words as words (one space between words, none before , . ; : ! ? and closing
        brackets or quotes, nor after opening ones), <eos> as a paragraph break. `tokenize(detokenize(ids))`
        gives the ids back, apart from <unk> and, for characters, newlines or spaces next to a
        paragraph break (which the tokenizer folds into that break)."""
        return self.extend_text("", tokens)[0]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.itos}

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    def pieces(self, text: str) -> list[str]:
        """Vocabulary forms of the text, boundary tokens included (for counting)."""
        return [EOS if b else n for n, _, _, b in self._norm_pieces(text)]

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int | None = None, min_count: int = 1, **kw):
        """Vocabulary by frequency (ties broken alphabetically, so a build is reproducible)."""
        tmp = cls(list(SPECIALS), **kw)
        counts: Counter = Counter()
        for t in texts:
            counts.update(p for p in tmp.pieces(t) if p not in SPECIALS)
        words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            room = max_size - len(SPECIALS)
            if room < 1:
                raise ValueError(f"vocabulary size {max_size} leaves no room beside {SPECIALS}")
            if room > len(words):
                raise ValueError(
                    f"vocabulary size {max_size} is larger than the {len(words)} distinct tokens "
                    f"(+{len(SPECIALS)} specials) in the training text; ask for at most "
                    f"{len(words) + len(SPECIALS)}")
            words = words[:room]
        return cls(list(SPECIALS) + words, **kw)


class WordTokenizer(_Base):
    kind = "word"

    def _join(self, prev: str, piece: str, quotes: int) -> str:
        # '"' alternates: an opening quote sticks to the word after it, a closing one to the word
        # before it. (Never "'": "don" "'" "t" written together would read as one word.)
        if piece in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER:
            return ""
        if (piece == '"' or prev == '"') and quotes % 2 == 1:
            return ""
        return " "

    def _pieces(self, text: str):
        for m in _WORD_RE.finditer(text):
            group = m.lastgroup
            if group == "skip":
                continue
            start, end = m.span()
            if group == "para":
                yield EOS, start, end, True
                continue
            s = m.group()
            if group == "other" and not _clean_char(s):
                continue  # control characters, NUL, private-use: not text
            yield s.translate(_FOLD).casefold(), start, end, False


class CharTokenizer(_Base):
    kind = "char"

    def _pieces(self, text: str):
        for m in _CHAR_RE.finditer(text):
            start, end = m.span()
            s = m.group()
            if len(s) > 1:
                yield EOS, start, end, True
            elif _clean_char(s):
                yield s, start, end, False


class WhitespaceTokenizer(_Base):
    """Split on whitespace, case kept, every line end is ``<eos>``: the split of pytorch/examples'
    word_language_model (``line.split() + ['<eos>']``) and of many imported models."""
    kind = "whitespace"
    eos_means = "line"
    paragraph = "\n"

    def _join(self, prev: str, piece: str, quotes: int) -> str:
        return " "

    def _pieces(self, text: str):
        for m in re.finditer(r"\n|[^\s]+", text):
            start, end = m.span()
            s = m.group()
            if s == "\n":
                yield EOS, start, end, True
            else:
                s = "".join(ch for ch in s if _clean_char(ch))
                if s:
                    yield s, start, end, False


Tokenizer = WordTokenizer  # the default kind
_KINDS = {"word": WordTokenizer, "char": CharTokenizer, "whitespace": WhitespaceTokenizer}


def eos_means(source) -> str:
    """What the boundary token <eos> marks for a model: "paragraph" or "line" (EOS_MEANS).

    `source`: a loaded model (anything with .card and .tokenizer), a bundle's card (dict), a tokenizer
    or a tokenizer kind. The card's ``tokenizer.eos_means`` where it records one (an import of a
    pytorch/examples model whose text held one paragraph a line records "paragraph"); else what the
    tokenizer does: the word and char tokenizers read <eos> at a blank line only ("paragraph"), the
    whitespace tokenizer at every line end ("line"). InputError for a value other than those two."""
    said, kind = None, source
    if isinstance(source, _Base):
        kind = source.kind
    elif not isinstance(source, str):
        card = source if isinstance(source, dict) else (getattr(source, "card", None) or {})
        info = card.get("tokenizer") if isinstance(card.get("tokenizer"), dict) else {}
        said = info.get("eos_means")
        tok = getattr(source, "tokenizer", None)
        kind = tok.kind if isinstance(tok, _Base) else info.get("kind", "word")
    if said is None:
        return _KINDS[kind].eos_means if kind in _KINDS else "paragraph"
    if said not in EOS_MEANS:
        raise InputError(f"the card's tokenizer.eos_means must be line or paragraph, not {said!r}")
    return said


def tokenizer_from_dict(d: dict) -> _Base:
    if not isinstance(d, dict) or "vocab" not in d:
        raise ValueError("tokenizer.json must be an object with a 'vocab' list")
    kind = d.get("kind", "word")
    if kind not in _KINDS:
        raise ValueError(f"tokenizer.json: unknown kind {kind!r} (expected one of {sorted(_KINDS)})")
    vocab = d["vocab"]
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ValueError("tokenizer.json: 'vocab' must be a list of strings")
    return _KINDS[kind](vocab)
