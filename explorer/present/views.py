"""The numbers behind the explorer's views, computed from a Trace. No plotting, no Streamlit.

Everything a page shows besides the raw trace is computed here (or in explorer.figures, which turns
these tables into Plotly figures), so a notebook gets the same numbers as the app:

* `value_ranges(model)`  fixed colour ranges per quantity (the unbounded cell state is calibrated once
  per model on a reference text, so a colour means the same thing in every sentence);
* `token_table(tr)`      one row per token: label, surprisal, unknown/boundary flags;
* `step_change(tr, l, t)` per-unit values at step t and their change from step t-1;
* `gate_values(tr, l, t)` per-unit gate openness at step t;
* `choose_units(...)`     units to inspect: "most active" or "most changed at this step".

Every `layer` argument is a layer number as the app shows it: 1 = the bottom layer, -1 = the top; 0 is
refused (explorer.engine.layer_index).
"""
from __future__ import annotations

import math

from typing import NamedTuple

import numpy as np

from ._lazy import LazyModule
from ..trace import DESCRIPTIONS, Trace
from .scales import C_RANGE_DEFAULT, fixed_range, is_signed, nice_ceiling, value_ranges  # noqa: F401 (re-exported)
from ..errors import InputError, PositionError

pd = LazyModule("pandas")

#: The gates of each cell: sigmoids in [0, 1], 0 = closed, 1 = open. (g and n are candidates, not gates.)
GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z"), "rnn": ()}

UNIT_CHOICES = ("most active", "most changed at this step", "by number")


#: Whitespace drawn visibly, one glyph per character, the same in every view (the player's strip,
#: tick labels, lesson strips, readouts): a character model reads spaces and newlines as tokens.
WHITESPACE_GLYPHS = {" ": "␣", "\n": "↵", "\t": "⇥"}


def visible(s: str) -> str:
    """A token or vocabulary word as drawn: whitespace-only text becomes one glyph per character
    (space ␣, newline ↵, tab ⇥, any other space ␣); the empty string is '·'; anything else as is."""
    if s == "":
        return "·"
    if s.strip():
        return s
    return "".join(WHITESPACE_GLYPHS.get(ch, "␣") for ch in s)


def explained(attr) -> str:
    """What an attribution explains, its words drawn with `visible`: log P(“␣”) − log P(“↵”)."""
    q = f"log P(“{visible(attr.target)}”)"
    return q + (f" − log P(“{visible(attr.versus)}”)" if attr.versus is not None else "")


def token_kind(tr: Trace) -> str:
    """What the model behind `tr` predicts, for the wording of a view: "character" when every
    vocabulary entry but the specials (<unk>, <eos>) is one character, else "word"."""
    plain = [v for v in tr.vocab if not (v.startswith("<") and v.endswith(">") and len(v) > 2)]
    return "character" if plain and all(len(v) == 1 for v in plain) else "word"


def token_label(tok) -> str:
    """How a token is written on axes and chips: the surface text, '<eos>' for a boundary,
    whitespace as glyphs (`visible`)."""
    if tok.special:
        return "<eos>"
    return visible(tok.text)


def token_labels(tr: Trace) -> list[str]:
    return [token_label(t) for t in tr.tokens]


def token_columns(tr: Trace) -> dict[str, list | np.ndarray]:
    """The columns of `token_table`, as plain lists and arrays."""
    s = tr.surprisal
    prev_p = np.concatenate([[tr.first_prob], tr.next_prob[:-1]]) if len(tr) else np.zeros(0)
    prev_rank = np.concatenate([[-1], tr.next_rank[:-1]]) if len(tr) else np.zeros(0, np.int64)
    return {
        "position": np.arange(len(tr)),
        "label": token_labels(tr),
        "text": [t.text for t in tr.tokens],
        "norm": [t.norm for t in tr.tokens],
        "start": [t.start for t in tr.tokens],
        "end": [t.end for t in tr.tokens],
        "unk": [t.unk for t in tr.tokens],
        "special": [t.special for t in tr.tokens],
        "surprisal_bits": s,
        "prob": prev_p.astype(np.float32),
        "rank": prev_rank.astype(np.int64),
        "top1_next": [tr.vocab[int(i)] for i in tr.topk_ids[:, 0]] if len(tr) else [],
    }


class TokenRow(NamedTuple):
    """One row of `token_table`."""
    position: int
    label: str
    text: str
    norm: str
    start: int
    end: int
    unk: bool
    special: bool
    surprisal_bits: float
    prob: float
    rank: int
    top1_next: str


def token_rows(tr: Trace, lo: int = 0, hi: int | None = None) -> list[TokenRow]:
    """Rows lo..hi-1 of `token_table` without building a DataFrame."""
    cols = token_columns(tr)
    hi = len(tr) if hi is None else hi
    return [TokenRow(*(cols[f][i] for f in TokenRow._fields)) for i in range(lo, hi)]


def token_table(tr: Trace) -> pd.DataFrame:
    """One row per token: position, label, surface text, character span, flags, surprisal (bits of
    this token given the ones before it), its probability and rank when it was predicted, and the
    most probable next token after it."""
    return pd.DataFrame(token_columns(tr))


def unknown_words(tr: Trace) -> list[str]:
    """Distinct surface forms the model's vocabulary lacks, in order of appearance."""
    seen: dict[str, None] = {}
    for t in tr.tokens:
        if t.unk:
            seen.setdefault(t.text, None)
    return list(seen)


def _check(tr: Trace, layer: int, t: int | None = None):
    """The LayerTrace of `layer` (1 = the bottom layer, -1 = the top; explorer.engine.layer_index),
    after checking token position t."""
    lay = tr.layer(layer)
    _check_position(tr, t)
    return lay


def _check_position(tr: Trace, t: int | None):
    if t is not None and not 0 <= t < len(tr):
        raise PositionError(f"token position {t} is outside 0..{len(tr) - 1}")


def previous(arr: np.ndarray, t: int) -> np.ndarray:
    """Row t-1 of a [tokens, units] array; zeros before the first row (the initial state is zero)."""
    return arr[t - 1] if t > 0 else np.zeros(arr.shape[1], arr.dtype)


def step_change(tr: Trace, layer: int, t: int) -> pd.DataFrame:
    """Per unit: h (and c for an LSTM) of `layer` (1 = the bottom) after token t, before it (after t-1;
    zeros at t=0), and the change."""
    lay = _check(tr, layer, t)
    cols: dict[str, np.ndarray] = {"unit": np.arange(lay.values["h"].shape[1])}
    for q in ("h", "c"):
        if q in lay.values:
            a = lay.values[q]
            cols[q] = a[t]
            cols[f"{q}_prev"] = previous(a, t)
            cols[f"d{q}"] = a[t] - previous(a, t)
    return pd.DataFrame(cols)


def delta_limits(tr: Trace, layer: int, percentile: float | None = None) -> dict[str, float]:
    """Largest |change| of h (and c) over all steps of this trace: a fixed axis for the step view, so
    stepping through a sentence never rescales it. With `percentile` (e.g. 99.5), that percentile of
    |change| over all steps and units instead: a few counting units of c change by 10 and more while
    most change by less than 1, and an axis wide enough for them leaves every other bar flat."""
    lay = _check(tr, layer)
    out = {}
    for q in ("h", "c"):
        a = lay.values.get(q)
        if a is None:
            continue
        if len(a) == 0:
            out[q] = 1.0
            continue
        d = np.abs(np.diff(np.vstack([np.zeros((1, a.shape[1]), a.dtype), a]), axis=0))
        top = float(d.max()) if percentile is None else float(np.percentile(d, percentile))
        out[q] = max(top, 1e-3)
    return out


def gate_values(tr: Trace, layer: int, t: int) -> pd.DataFrame:
    """Long table (gate, unit, value, description) of the gates after reading token t. Empty for a
    simple RNN, which has no gates."""
    lay = _check(tr, layer, t)
    rows = []
    for g in GATES[tr.cell]:
        v = lay.values[g][t]
        rows.append(pd.DataFrame({"gate": g, "unit": np.arange(len(v)), "value": v,
                                  "description": DESCRIPTIONS.get(g, g)}))
    if not rows:
        return pd.DataFrame(columns=["gate", "unit", "value", "description"])
    return pd.concat(rows, ignore_index=True)


def gate_summary(tr: Trace, layer: int, t: int, closed: float = 0.1, open_: float = 0.9) -> pd.DataFrame:
    """Per gate: mean openness and the share of units nearly closed (< closed) and nearly open (> open_)."""
    g = gate_values(tr, layer, t)
    if g.empty:
        return pd.DataFrame(columns=["gate", "mean", "closed", "open"])
    return (g.groupby("gate", sort=False)["value"]
            .agg(mean="mean", closed=lambda v: float((v < closed).mean()), open=lambda v: float((v > open_).mean()))
            .reset_index())


def gate_histograms(tr: Trace, layer: int, bins: int = 20, window=None) -> dict[str, np.ndarray]:
    """Per gate, an array [tokens, bins]: the share of units whose value after token t falls in each of
    `bins` equal bins of [0, 1]. Empty for a simple RNN. `window` (a, b) keeps token positions a..b-1."""
    lay = _check(tr, layer)
    a_, b_ = (0, len(tr)) if window is None else (max(0, int(window[0])), min(len(tr), int(window[1])))
    out = {}
    for g in GATES[tr.cell]:
        a = lay.values[g][a_:b_]
        T, U = a.shape
        ok = np.isfinite(a)                                   # a diverged model's NaN counts in no bin
        idx = np.clip((np.where(ok, a, 0) * bins).astype(np.int64), 0, bins - 1) + bins * np.arange(T)[:, None]
        counts = np.bincount(idx[ok], minlength=T * bins).reshape(T, bins).astype(np.float32)
        out[g] = counts / max(1, U)
    return out


def unit_scores(tr: Trace, layer: int, quantity: str, how: str, t: int | None = None) -> np.ndarray:
    """A score per unit for `choose_units`.

    "most active": mean |value| over the sentence (for gates, mean |value - 0.5|: how decided the
      gate is, open or shut);
    "most changed at this step": |value_t - value_{t-1}| (zeros before the first token).
    """
    a = _check(tr, layer, t).values[quantity]
    if len(a) == 0:
        return np.zeros(a.shape[1], np.float32)
    if how == "most active":
        centre = 0.5 if quantity in GATES[tr.cell] else 0.0
        return np.abs(a - centre).mean(0)
    if how == "most changed at this step":
        if t is None:
            raise InputError("'most changed at this step' needs a token position t")
        return np.abs(a[t] - previous(a, t))
    raise InputError(f"unknown choice {how!r}; expected one of {UNIT_CHOICES[:2]}")


def choose_units(tr: Trace, layer: int, quantity: str, how: str, t: int | None = None, k: int = 5) -> list[int]:
    """The k units with the highest `unit_scores` (ties broken by unit number)."""
    s = unit_scores(tr, layer, quantity, how, t)
    order = np.lexsort((np.arange(len(s)), -s))
    return [int(u) for u in order[:k]]


def unit_series(tr: Trace, layer: int, quantity: str, units) -> pd.DataFrame:
    """Long table (position, token, unit, value) of chosen units across the sentence."""
    a = _check(tr, layer).values[quantity]
    units = [int(u) for u in units]
    bad = [u for u in units if not 0 <= u < a.shape[1]]
    if bad:
        raise PositionError(f"unit(s) {bad} outside 0..{a.shape[1] - 1}")
    labels = token_labels(tr)
    T = len(tr)
    return pd.DataFrame({
        "position": np.tile(np.arange(T), len(units)),
        "token": labels * len(units),
        "unit": np.repeat(units, T).astype(np.int64),
        "value": a[:, units].T.reshape(-1) if units else np.zeros(0, np.float32),
    })


def pct(p: float) -> str:
    """A probability as a percentage with enough digits to be non-zero: 12.2%, 0.04%, 0.0003%."""
    if not np.isfinite(p):
        return "–"
    if p <= 0:
        return "0%"
    if p >= 0.001:
        return f"{p:.1%}"
    digits = min(8, -int(math.floor(math.log10(p * 100))))
    return f"{p * 100:.{digits}f}%"


#: At most this many token labels on a chart's axis; longer stretches label every k-th token (issue 14:
#: past about 60 tokens the labels overlapped, and thousands of ticks froze the browser).
MAX_TICKS = 40
#: Longest stretch of tokens a Plotly chart draws (the player's window); longer texts show the
#: stretch around the selected token.
CHART_WINDOW = 120


def thin_ticks(n: int, start: int = 0, keep: int | None = None, most: int = MAX_TICKS) -> list[int]:
    """Positions start .. start+n-1 to label: all of them up to `most`, else every k-th (and `keep`)."""
    step = max(1, -(-n // most))
    return [start + i for i in range(n) if i % step == 0 or start + i == keep]


def window(n_tokens: int, t: int, size: int) -> tuple[int, int]:
    """A stretch [a, b) of at most `size` token positions that contains t, centred on it where
    possible: long texts are drawn a window at a time."""
    if n_tokens <= size:
        return 0, n_tokens
    t = min(max(t, 0), n_tokens - 1)
    a = min(max(0, t - size // 2), n_tokens - size)
    return a, a + size


def describe_step(tr: Trace, t: int) -> str:
    """One plain sentence about token t: how surprising it was and what the model expects next."""
    _check_position(tr, t)
    tok = tr.tokens[t]
    label = token_label(tok)
    if tok.special:
        head = f"Token {t} is the boundary {label}: the model reads it first, as at the start of a paragraph."
    else:
        s = float(tr.surprisal[t])
        unk = " It is unknown to the model, which reads it as <unk>." if tok.unk else ""
        if np.isfinite(s):
            p = 2.0 ** -s
            rank = int(tr.next_rank[t - 1]) if t > 0 else -1
            head = (f"Token {t} “{label}”: surprisal {s:.1f} bits (the model gave it {pct(p)}"
                    + (f", rank {rank}" if rank > 0 else "") + f").{unk}")
        else:
            head = f"Token {t} “{label}”.{unk}"
    if len(tr) == 0 or tr.topk_ids.shape[1] == 0:
        return head
    w, p = tr.top_words(t, 1)[0]
    nxt = f" Best guess for the next token: “{visible(w)}” ({pct(p)})"
    if t + 1 < len(tr):
        actual = tr.vocab[tr.tokens[t + 1].id]
        as_unk = " (as <unk>)" if tr.tokens[t + 1].unk else ""
        nxt += (f"; the text continues with “{token_label(tr.tokens[t + 1])}”{as_unk}"
                f" ({pct(float(tr.next_prob[t]))}, rank {int(tr.next_rank[t])})."
                if actual != w else " — and that is what comes next.")
    else:
        nxt += "."
    return head + nxt
