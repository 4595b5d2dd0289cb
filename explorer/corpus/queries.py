"""Queries over a corpus index: select -> match (after LSTMVis), the unit dictionary, predicate search,
and state trajectories. Every function returns numbers (dataclasses, arrays, DataFrames).

The select -> match rule (what is implemented, exactly)
-------------------------------------------------------
Let v_t(u) be the stored value of unit u (layer L, quantity q) after token t, and θ the threshold.
Layers are numbered as everywhere: 1 = the bottom layer (-1 = the top; 0 is refused).
A unit is *on* at t when v_t(u) > θ.

* Selection: trace the typed text (position 0 is the boundary token <eos>) and take the token range
  [S, E). The hypothesis H is the set of units on at every token of [S, E) (LSTMVis's rule). With
  ``quiet_before``, a unit must also be off (v ≤ θ) at token S-1 (when S > 0): the units that switch on
  where the selection starts.
* Matches: every maximal run [a, b) of corpus tokens inside one file in which at least K units of H
  are on at every token (K = ``min_units``, default all of H: LSTMVis's exact match; a smaller K
  tolerates a few units dropping out). With ``quiet_before``, *every* unit of H must be off at token
  a-1 (a run at the start of a file counts as quiet).
* Ranking (LSTMVis ranks the ranges that fit the hypothesis best first): by the length gap
  |(b - a) - (E - S)| ascending, then by the share of H on over the run (``units_on``, mean over the
  run's tokens of the fraction of H on) descending, then by the score, the mean over the run of the mean
  over H of v_t(u) - θ (how far above the threshold the units are), descending; ties by corpus order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..trace import significant
from . import labels as LB
from .index import CorpusIndex, IndexProblem
from .neighbours import Neighbour, Neighbours, neighbours  # noqa: F401 (nearest states)

# ---------------------------------------------------------------------------------------------
# select -> match


@dataclass(frozen=True)
class Selection:
    text: str
    tokens: tuple[str, ...]            # the trace's tokens (position 0 = <eos>)
    start: int
    end: int
    layer: int                         # 1 = the bottom layer
    quantity: str
    threshold: float
    quiet_before: bool
    units: tuple[int, ...]             # the hypothesis H, ascending
    values: np.ndarray = field(repr=False)   # [len(tokens), len(units)]: H over the whole typed text


@dataclass(frozen=True)
class Match:
    file: str
    start: int                         # token positions in the file's trace, [start, end)
    end: int
    row: int                           # global row of `start`
    score: float
    length_gap: int
    units_on: float                    # mean over the run of the fraction of H on
    tokens: tuple[str, ...]            # context before + the match + context after
    focus: tuple[int, int]             # the match inside `tokens`: [focus[0], focus[1])
    values: np.ndarray = field(repr=False)   # [len(H), len(tokens)]: the hypothesis units there

    def to_json(self) -> dict:
        return {"file": self.file, "start": self.start, "end": self.end, "row": self.row,
                "score": significant(self.score), "length_gap": self.length_gap,
                "units_on": significant(self.units_on),
                "text": " ".join(self.tokens[self.focus[0]:self.focus[1]]),
                "context": list(self.tokens), "focus": list(self.focus),
                "values": [[significant(v) for v in row] for row in np.asarray(self.values)]}


@dataclass(frozen=True)
class MatchResult:
    selection: Selection
    matches: tuple[Match, ...]
    total: int                         # matches in the corpus before `top` was applied
    seconds: float

    def to_json(self) -> dict:
        s = self.selection
        return {"selection": {"text": s.text, "start": s.start, "end": s.end,
                              "tokens": list(s.tokens[s.start:s.end]), "layer": s.layer,
                              "quantity": s.quantity, "threshold": s.threshold,
                              "quiet_before": s.quiet_before, "units": list(s.units)},
                "total_matches": self.total, "seconds": significant(self.seconds, 4),
                "matches": [m.to_json() for m in self.matches]}


def select(model, text: str, start: int, end: int, layer: int, quantity: str = "h",
           threshold: float = 0.3, quiet_before: bool = False) -> Selection:
    """The hypothesis of a selection: the units on across tokens [start, end) of trace(model, text), in
    `layer` (1 = the bottom layer, -1 = the top)."""
    from ..engine import layer_index, torch_threads
    from ..trace import trace
    index = layer_index(layer, model.config.layers)
    with torch_threads(1):        # a short batch-1 run: a second thread only spins (25x slower under load)
        tr = trace(model, text)
    T = len(tr)
    if not 0 <= start < end <= T:
        raise IndexProblem(f"the selection [{start}, {end}) must lie within the text's {T} tokens "
                           f"(0 is the boundary token <eos>) and hold at least one token")
    lay = tr.layers[index]
    layer = lay.layer
    if quantity not in lay.names:
        raise IndexProblem(f"a {tr.cell.upper()} has {', '.join(lay.names)}, not {quantity!r}")
    v = np.asarray(lay[quantity], np.float32)
    on = (v[start:end] > threshold).all(0)
    if quiet_before and start > 0:
        on &= v[start - 1] <= threshold
    units = tuple(int(u) for u in np.flatnonzero(on))
    return Selection(text, tuple(tr.words), start, end, layer, quantity, float(threshold),
                     bool(quiet_before), units, v[:, list(units)])


def _runs(mask: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs [a, b) of True in mask that do not cross a file start (rows in `breaks`)."""
    m = mask.astype(np.int8)
    d = np.diff(np.concatenate([[0], m, [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    if len(breaks) and len(starts):
        # split runs at file starts: a file start inside a run ends the run there and starts another
        cut = breaks[(breaks > 0)]
        cut = cut[mask[cut] & mask[cut - 1]]
        if len(cut):
            starts = np.sort(np.concatenate([starts, cut]))
            ends = np.sort(np.concatenate([ends, cut]))
    return starts, ends


def match_units(index: CorpusIndex, layer: int, quantity: str, units, threshold: float,
                length: int, quiet_before: bool = False, top: int = 20, context: int = 3,
                values: np.ndarray | None = None, min_units: int | None = None):
    """Every maximal run of the corpus where all `units` are on, ranked (see the module docstring).
    Returns (matches, total). Reads only the chunks of `units`."""
    units = [int(u) for u in units]
    if not units:
        return (), 0
    k = len(units)
    k_min = k if min_units is None else max(1, min(int(min_units), k))
    if values is None:
        # counted on the stored float16 rows; float32 values only where the answer needs them
        count = index.count_above(layer, quantity, units, threshold)

        def at(rows):
            return index.units_at(layer, quantity, units, rows)
    else:
        Vt = np.asarray(values, np.float32).T                                 # unit-major [k, N]
        count = (Vt > threshold).sum(0, dtype=np.int32)

        def at(rows):
            return Vt[:, rows]
    all_on = count >= k_min
    starts_rows = np.array([f["row_start"] for f in index.files], np.int64)
    a, b = _runs(all_on, starts_rows)
    if quiet_before and len(a):
        prev = a - 1
        first = np.isin(a, starts_rows)
        quiet = np.ones(len(a), bool)
        ok = ~first
        quiet[ok] = ~(at(prev[ok]) > threshold).any(0)
        a, b = a[quiet], b[quiet]
    total = int(len(a))
    if not total:
        return (), 0
    gap = np.abs((b - a) - int(length))
    # score and share from the rows inside the runs only (the runs are disjoint and sorted)
    lens = b - a
    rows = np.repeat(a - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
    margin = (at(rows) - threshold).mean(0, dtype=np.float64)              # mean over the units, per row
    seg = np.concatenate([[0], np.cumsum(lens)[:-1]])
    score = np.add.reduceat(margin, seg) / lens
    share = np.add.reduceat(count[rows] / k, seg) / lens
    order = np.lexsort((a, -np.round(score, 9), -np.round(share, 9), gap))[:max(0, int(top))]
    file_i = np.searchsorted(starts_rows, a[order], side="right") - 1
    out = []
    for k, o in enumerate(order):
        fi = int(file_i[k])
        f = index.files[fi]
        f0, f1 = f["row_start"], f["row_start"] + f["tokens"]
        r0, r1 = int(a[o]), int(b[o])
        c0, c1 = max(f0, r0 - context), min(f1, r1 + context)
        out.append(Match(f["path"], r0 - f0, r1 - f0, r0, float(score[o]), int(gap[o]), float(share[o]),
                         tuple(index.texts(c0, c1)), (r0 - c0, r1 - c0),
                         np.ascontiguousarray(at(np.arange(c0, c1)))))
    return tuple(out), total


def dask_units(index: CorpusIndex, layer: int, quantity: str, units, scheduler) -> np.ndarray:
    """Values of `units` over every token, float32 [N, k], read through dask.array from the index's zarr
    arrays and computed on the Dask distributed cluster at `scheduler` (an address, or a
    distributed.Client), whose workers see the index at the same path (or the same zarr store). The same
    numbers as index.units: the same stored float16 values."""
    import dask.array as da
    number = index._check(layer, quantity)
    units = [int(u) for u in units]
    for u in units:
        if not 0 <= u < index.n_units:
            raise IndexProblem(f"unit {u} is out of range (0..{index.n_units - 1})")
    arr = da.from_zarr(str(Path(index.path) / "states.zarr"), component=f"L{number}/{quantity}/values")
    sel = arr[:, units].astype(np.float32) if units else da.zeros((index.n_tokens, 0), np.float32)
    own = isinstance(scheduler, str)
    if own:
        from distributed import Client
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise IndexProblem(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    else:
        client = scheduler
    try:
        return np.asarray(client.compute(sel).result(), np.float32)
    finally:
        if own:
            client.close()


def _units_of(index: CorpusIndex, scheduler):
    """index.units, or the same read through dask.array on a cluster when `scheduler` is given."""
    if scheduler is None:
        return index.units
    return lambda layer, quantity, units: dask_units(index, layer, quantity, units, scheduler)


def match(index: CorpusIndex, model, text: str, start: int, end: int, layer: int, quantity: str = "h",
          threshold: float = 0.3, top: int = 20, quiet_before: bool = False, context: int = 3,
          min_units: int | None = None, scheduler=None) -> MatchResult:
    """Select [start, end) of `text` and find where its units are on across the corpus. `scheduler`: read
    the hypothesis units through dask.array on that Dask distributed cluster (see dask_units)."""
    import time
    index.check_model(model)
    layer = index._check(layer, quantity)
    sel = select(model, text, start, end, layer, quantity, threshold, quiet_before)
    t0 = time.perf_counter()
    values = None if scheduler is None or not sel.units else \
        _units_of(index, scheduler)(layer, quantity, sel.units)
    matches, total = match_units(index, layer, quantity, sel.units, threshold, end - start,
                                 quiet_before, top, context, values=values, min_units=min_units)
    return MatchResult(sel, matches, total, time.perf_counter() - t0)


def match_full_scan(index: CorpusIndex, layer: int, quantity: str, units, threshold: float, length: int,
                    quiet_before: bool = False, top: int = 20, context: int = 3, min_units: int | None = None):
    """The straightforward implementation, for the benchmark: load the whole [N, H] layer through the
    token-major array (every chunk), then run the same rule on the selected columns."""
    full = np.concatenate([v for _, v in index.blocks(layer, quantity)]) if index.n_tokens else \
        np.zeros((0, index.n_units), np.float32)
    return match_units(index, layer, quantity, units, threshold, length, quiet_before, top, context,
                       values=full[:, list(units)], min_units=min_units)


# ---------------------------------------------------------------------------------------------
# the unit dictionary


@dataclass(frozen=True)
class Context:
    file: str
    position: int                      # the token's position in its file
    row: int
    value: float
    tokens: tuple[str, ...]
    values: tuple[float, ...]
    focus: int                         # index of the token in `tokens`

    def to_json(self) -> dict:
        return {"file": self.file, "position": self.position, "row": self.row,
                "value": significant(self.value), "token": self.tokens[self.focus],
                "context": [[t, significant(v)] for t, v in zip(self.tokens, self.values)], "focus": self.focus}


@dataclass(frozen=True)
class UnitProfile:
    layer: int                         # 1 = the bottom layer
    quantity: str
    unit: int
    top: tuple[Context, ...]           # most positive, highest first
    bottom: tuple[Context, ...]        # most negative, lowest first
    hist_counts: np.ndarray = field(repr=False)
    hist_edges: np.ndarray = field(repr=False)
    mean: float = 0.0
    std: float = 0.0
    promotes: tuple[tuple[str, float], ...] = ()    # top layer, h only: decoder weights
    suppresses: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict:
        return {"layer": self.layer, "quantity": self.quantity, "unit": self.unit,
                "mean": significant(self.mean), "std": significant(self.std),
                "most_positive": [c.to_json() for c in self.top],
                "most_negative": [c.to_json() for c in self.bottom],
                "histogram": {"counts": self.hist_counts.tolist(),
                              "edges": [significant(v) for v in self.hist_edges]},
                "promotes": [[w, significant(x)] for w, x in self.promotes],
                "suppresses": [[w, significant(x)] for w, x in self.suppresses]}


class _FileOf:
    """file_of[row]: the file number of a row, looked up in the card's row starts (no [N] array)."""

    def __init__(self, index: CorpusIndex):
        self.starts = np.array([f["row_start"] for f in index.files], np.int64)

    def __getitem__(self, row) -> int:
        return int(np.searchsorted(self.starts, int(row), side="right") - 1)


def _extremes(col: np.ndarray, k: int, spread: int, largest: bool, file_of: np.ndarray) -> list[int]:
    """Rows of the k most extreme values, at most one per window of `spread` tokens in a file."""
    m = min(len(col), max(50 * k, 1000))
    key = -col if largest else col
    # the m most extreme rows, then sorted (ties by row, as a stable sort of the whole column gives)
    part = np.argpartition(key, m - 1)[:m] if 0 < m < len(col) else np.arange(len(col))
    cut = key[part].max() if len(part) else 0
    part = np.flatnonzero(key <= cut) if m < len(col) else part      # every row tied at the cut
    order = part[np.lexsort((part, key[part]))]
    chosen: list[int] = []
    for r in order[:m]:
        r = int(r)
        if all(file_of[c] != file_of[r] or abs(c - r) > spread for c in chosen):
            chosen.append(r)
            if len(chosen) == k:
                break
    return chosen


def decoder_effects(model, unit: int, k: int = 10):
    """The words a top-layer h unit promotes and suppresses through the decoder: the largest and smallest
    entries of the decoder's column for the unit (logit change per unit of h_u)."""
    w = model.lm.decoder.weight[:, unit].detach().cpu().numpy()
    itos = model.tokenizer.itos
    hi, lo = np.argsort(-w)[:k], np.argsort(w)[:k]
    return (tuple((itos[i], float(w[i])) for i in hi), tuple((itos[i], float(w[i])) for i in lo))


def unit_profile(index: CorpusIndex, layer: int, quantity: str, unit: int, top: int = 20,
                 context: int = 6, bins: int = 60, model=None, scheduler=None) -> UnitProfile:
    """A unit's dictionary entry: top contexts either way, a histogram, and (top layer, h) decoder effects.
    `layer`: 1 = the bottom layer, -1 = the top."""
    layer = index._check(layer, quantity)
    col = np.ascontiguousarray(_units_of(index, scheduler)(layer, quantity, [unit])[:, 0])
    file_of = _FileOf(index)

    def ctx(rows):
        out = []
        for r in rows:
            f = index.files[file_of[r]]
            f0, f1 = f["row_start"], f["row_start"] + f["tokens"]
            c0, c1 = max(f0, r - context), min(f1, r + 2)
            out.append(Context(f["path"], r - f0, r, float(col[r]), tuple(index.texts(c0, c1)),
                               tuple(float(x) for x in col[c0:c1]), r - c0))
        return tuple(out)

    counts, edges = np.histogram(col, bins=bins)
    prom = supp = ()
    cfg = index.card["model"]["config"]
    if model is not None and quantity == "h" and layer == cfg["layers"]:          # the top layer
        index.check_model(model)
        prom, supp = decoder_effects(model, unit, 10)
    return UnitProfile(layer, quantity, unit, ctx(_extremes(col, top, context, True, file_of)),
                       ctx(_extremes(col, top, context, False, file_of)), counts, edges,
                       float(col.mean()), float(col.std()), prom, supp)


# ---------------------------------------------------------------------------------------------
# predicates over the token table and unit search by AUC

FEMALE = frozenset("she her hers herself woman women girl girls lady ladies miss mrs mother daughter sister "
                   "wife aunt niece queen madam ma'am mamma mama".split())
MALE = frozenset("he him his himself man men boy boys gentleman gentlemen mr sir father son brother husband "
                 "uncle nephew king master".split())
SENTENCE_END = LB.SENTENCE_END

# The predicates read the token table as the text means it (explorer.corpus.labels): a paragraph ends
# at a blank line (every <eos> only where `eos_means` is "paragraph"), and where a file starts.


def _table(tokens, eos_means: str):
    """(texts, paragraph breaks) of a token table (columns text and, where present, position)."""
    text = tokens["text"].to_numpy(dtype=object)
    starts = tokens["position"].to_numpy() == 0 if "position" in tokens else None
    return text, LB.paragraph_breaks(text, eos_means, starts)


def pred_inside_quotes(tokens, eos_means: str = "paragraph") -> np.ndarray:
    """1 inside a quotation, 0 outside, NaN on tokens that are quote marks only and on <eos>. A quote
    mark toggles (“ opens, ” closes); a paragraph break closes an open quotation (fiction reopens it on
    the next paragraph). A token with a word and a mark ('"Can') is inside when its word is."""
    text, breaks = _table(tokens, eos_means)
    inside, bare = LB.quote_labels(text, breaks)
    out = inside.astype(np.float32)
    out[bare | (text == LB.EOS)] = np.nan
    return out


def pred_after_female(tokens, eos_means: str = "paragraph") -> np.ndarray:
    """1 after a female word, 0 after a male word (the latest gendered word since the paragraph began),
    NaN where none has been read yet and on <eos>."""
    text, breaks = _table(tokens, eos_means)
    out = np.full(len(text), np.nan, np.float32)
    last = np.nan
    for i, t in enumerate(text):
        if breaks[i]:
            last = np.nan
        w = LB.word_of(t)
        if w in FEMALE:
            last = 1.0
        elif w in MALE:
            last = 0.0
        out[i] = np.nan if t == LB.EOS else last
    return out


def pred_sentence_start(tokens, eos_means: str = "paragraph") -> np.ndarray:
    """1 for the first three tokens of a sentence (after . ! ? or a paragraph break), 0 later on; NaN
    on <eos> (a line end inside a paragraph neither starts a sentence nor counts as a token of one)."""
    text, breaks = _table(tokens, eos_means)
    out = np.zeros(len(text), np.float32)
    k = 0
    for i, t in enumerate(text):
        if breaks[i]:
            k = 0
        if t == LB.EOS:
            out[i] = np.nan
            continue
        out[i] = 1.0 if k < 3 else 0.0
        k = 0 if LB.is_sentence_end(t) else k + 1
    return out


def pred_late_in_line(tokens, eos_means: str = "paragraph") -> np.ndarray:
    """For the character model: 1 from the 40th character of a line on, 0 before; NaN on newlines. (On
    a word model the count is of word characters, spaces left out, since the last <eos>: predicate_labels
    warns.)"""
    text = tokens["text"].to_numpy(dtype=object)
    out = np.zeros(len(text), np.float32)
    col = 0
    for i, t in enumerate(text):
        if t in ("\n", "<eos>"):
            out[i], col = np.nan, 0
            continue
        out[i] = 1.0 if col >= 40 else 0.0
        col += len(t)
    return out


PREDICATES = {
    "inside_quotes": ("inside quotation marks vs outside", pred_inside_quotes),
    "after_female": ("after a female word vs after a male word", pred_after_female),
    "sentence_start": ("first three tokens of a sentence vs later", pred_sentence_start),
    "late_in_line": ("character model: from the 40th character of a line vs before", pred_late_in_line),
}
#: The names of each predicate's labels 0 and 1 (its counts).
PREDICATE_LABELS = {"inside_quotes": ("outside", "inside"), "after_female": ("male", "female"),
                    "sentence_start": ("later", "start"), "late_in_line": ("early", "late")}
#: Why late_in_line means little on a model that is not a character model, by tokenizer kind.
LATE_IN_LINE_WARNING = {
    "word": "late_in_line counts characters along a line, which needs a character model: the word tokenizer "
            "drops single line ends (only a blank line becomes <eos>), so on this word model it counts word "
            "characters, spaces left out, since the last paragraph break",
    "whitespace": "late_in_line counts characters along a line, which needs a character model: this whitespace "
                  "model's tokens are words (every line end is <eos>), so it counts word characters, spaces "
                  "left out, since the last line end",
}


@dataclass(frozen=True)
class PredicateLabels:
    """A predicate over an index's tokens: values [N] (1, 0, NaN = unlabelled), the label counts, what
    <eos> was read as, and warnings where the labels look implausible."""
    name: str
    values: np.ndarray = field(repr=False)
    counts: dict
    eos_means: str
    warnings: tuple[str, ...]

    def to_json(self) -> dict:
        return {"predicate": self.name, "counts": self.counts, "eos_means": self.eos_means,
                "warnings": list(self.warnings)}


def predicate_labels(index: CorpusIndex, name: str, eos_means: str | None = None) -> PredicateLabels:
    """The predicate `name` over the index's tokens, with its label counts and warnings (each also a Python
    UserWarning). `eos_means`: what <eos> marks ("line" / "paragraph"; default: the index's, from its model)."""
    if name not in PREDICATES:
        raise IndexProblem(f"unknown predicate {name!r}; choose one of {', '.join(PREDICATES)}")
    eos = eos_means or index.eos_means
    tokens = index.tokens
    values = PREDICATES[name][1](tokens, eos_means=eos)
    notes = []
    kind = index.card.get("tokenizer")
    if name == "late_in_line" and kind != "char":
        notes.append(LATE_IN_LINE_WARNING.get(kind, LATE_IN_LINE_WARNING["word"]))
    elif name != "late_in_line":                     # the predicates whose labels end at a paragraph
        text, breaks = _table(tokens, eos)
        notes += LB.paragraph_warnings(text, breaks, eos)
    LB.emit(notes)
    return PredicateLabels(name, values, LB.label_counts(values, PREDICATE_LABELS[name]), eos, tuple(notes))


def predicate_values(index: CorpusIndex, name: str) -> np.ndarray:
    return predicate_labels(index, name).values


def _sort_keys(v: np.ndarray) -> np.ndarray:
    """float16 values -> uint16 keys in the same order (sign-magnitude to offset binary)."""
    b = np.ascontiguousarray(v, dtype=np.float16).view(np.uint16)
    return np.where(b & 0x8000, ~b, b | 0x8000).astype(np.uint16)


def auc(values: np.ndarray, label: np.ndarray) -> float:
    """P(value of a positive > value of a negative) + 0.5 P(tie): the Mann-Whitney AUC, on values rounded to
    float16 (exact for float16 storage), via counts over the 65,536 float16 keys."""
    keys = _sort_keys(values)
    pos = np.bincount(keys[label], minlength=65536).astype(np.float64)
    neg = np.bincount(keys[~label], minlength=65536).astype(np.float64)
    n_p, n_n = pos.sum(), neg.sum()
    if not n_p or not n_n:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (n_p * n_n))


def rank_units(index: CorpusIndex, layer: int, quantity: str, predicate: str | np.ndarray, top: int = 20,
               group: int = 32, scheduler=None):
    """Units ranked by how well they separate the predicate's 1s from its 0s: AUC (0.5 = chance; far from
    0.5 either way separates). DataFrame unit, auc, separation = |auc - 0.5|, n_pos, n_neg; for a named
    predicate, df.attrs holds its label "counts", "eos_means" and "warnings" (predicate_labels)."""
    import pandas as pd
    labels = predicate_labels(index, predicate) if isinstance(predicate, str) else None
    y = labels.values if labels is not None else np.asarray(predicate, np.float32)
    if len(y) != index.n_tokens:
        raise IndexProblem(f"the predicate has {len(y)} values; the index has {index.n_tokens} tokens")
    keep = ~np.isnan(y)
    label = y[keep] > 0.5
    n_p, n_n = int(label.sum()), int((~label).sum())
    if not n_p or not n_n:
        raise IndexProblem(f"the predicate is {'never' if not n_p else 'always'} true on this corpus; "
                           "it cannot rank units")
    rows = []
    H = index.n_units
    for g0 in range(0, H, group):
        us = list(range(g0, min(H, g0 + group)))
        V = _units_of(index, scheduler)(layer, quantity, us)[keep]
        for k, u in enumerate(us):
            rows.append((u, auc(V[:, k], label)))
    df = pd.DataFrame(rows, columns=["unit", "auc"])
    df["separation"] = (df["auc"] - 0.5).abs()
    df["n_pos"], df["n_neg"] = n_p, n_n
    df = df.sort_values(["separation", "unit"], ascending=[False, True]).head(top).reset_index(drop=True)
    if labels is not None:
        df.attrs.update(counts=labels.counts, eos_means=labels.eos_means, warnings=list(labels.warnings))
    return df


# ---------------------------------------------------------------------------------------------
# trajectories


@dataclass(frozen=True)
class Projection:
    layer: int                         # 1 = the bottom layer
    quantity: str
    mean: np.ndarray
    components: np.ndarray             # [2, H]
    explained: np.ndarray              # [2] explained variance ratio
    density: np.ndarray                # [bins_y, bins_x] token counts of the corpus in the PC plane
    xedges: np.ndarray
    yedges: np.ndarray

    def project(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float64) - self.mean) @ self.components.T


def fit_projection(index: CorpusIndex, layer: int, quantity: str = "h", bins: int = 80,
                   batch: int = 8192, cache: bool = True) -> Projection:
    """IncrementalPCA (2 components) fitted chunk by chunk over every token of the index, and the density
    of the corpus in that plane. Cached in INDEX/extras."""
    from sklearn.decomposition import IncrementalPCA
    layer = index._check(layer, quantity)
    # named by the layer's array (an index of format version 1 keeps its fits under its own names)
    path = Path(index.path) / "extras" / f"pca_{index.array_prefix(layer)}_{quantity}.npz"
    if cache and path.is_file():
        with np.load(path) as z:
            return Projection(layer, quantity, z["mean"], z["components"], z["explained"], z["density"],
                              z["xedges"], z["yedges"])
    ipca = IncrementalPCA(n_components=2)
    carry = None
    for _, v in index.blocks(layer, quantity, batch):
        v = v if carry is None else np.concatenate([carry, v])
        if len(v) < 2:            # partial_fit needs at least n_components rows
            carry = v
            continue
        ipca.partial_fit(v)
        carry = None
    if not hasattr(ipca, "components_"):
        raise IndexProblem("the index holds too few tokens to fit a projection")
    mean, comp = ipca.mean_.astype(np.float64), ipca.components_.astype(np.float64)
    # orient each component so that its largest-magnitude loading is positive (a stable picture)
    sign = np.sign(comp[np.arange(2), np.abs(comp).argmax(1)])
    comp = comp * sign[:, None]
    xy = np.concatenate([(v - mean) @ comp.T for _, v in index.blocks(layer, quantity, batch)])
    lo, hi = np.percentile(xy, [0.5, 99.5], axis=0)
    pad = (hi - lo) * 0.15 + 1e-6
    xedges = np.linspace(lo[0] - pad[0], hi[0] + pad[0], bins + 1)
    yedges = np.linspace(lo[1] - pad[1], hi[1] + pad[1], bins + 1)
    dens, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=[xedges, yedges])
    proj = Projection(layer, quantity, mean, comp, ipca.explained_variance_ratio_.astype(np.float64),
                      dens.T.copy(), xedges, yedges)
    if cache:
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp.npz")
            np.savez(tmp, mean=mean, components=comp, explained=proj.explained, density=proj.density,
                     xedges=xedges, yedges=yedges)
            tmp.replace(path)
        except OSError:
            pass              # a read-only index still answers; it refits next time
    return proj


def trajectory(projection: Projection, model, text: str):
    """The typed text's path through the projection plane: DataFrame position, token, x, y."""
    import pandas as pd
    from ..trace import trace
    tr = trace(model, text)
    v = tr.layer(projection.layer)[projection.quantity]
    xy = projection.project(v) if len(tr) else np.zeros((0, 2))
    return pd.DataFrame({"position": np.arange(len(tr)), "token": tr.words, "x": xy[:, 0], "y": xy[:, 1]})
