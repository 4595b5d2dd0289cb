"""Interpretable cells of a character model (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and
Understanding Recurrent Networks"): units whose value tracks the position in the line, or being
inside a quotation.

Found by measurement, not by eye. The text is traced in pieces (each continuing from the state the
previous one ended in, so the result equals one long trace), and every unit of every layer (c and h)
is scored against:

* the position in the line (characters since the last newline): Pearson correlation r, over every
  character that is not a newline;
* "late in the line" (from the 40th character on, explorer.corpus.queries.pred_late_in_line, the
  corpus lens's predicate): the Mann-Whitney AUC (explorer.corpus.queries.auc);
* being inside double quotation marks (queries.pred_inside_quotes), when the text has quotations
  at all (tiny Shakespeare has none: it marks speech by speaker lines, not quotes).

Returns numbers (a DataFrame, arrays), never pictures.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..corpus import queries as Q
from ..engine import layer_index
from ..tokenizer import EOS, CharTokenizer
from ..trace import trace
from ..errors import InputError

#: Fewest quoted characters (and unquoted ones) before "inside a quotation" is scored at all.
MIN_QUOTED = 50
#: Characters traced at once (the state carries across pieces).
PIECE = 4000


@dataclass(frozen=True)
class CellSearch:
    """Every unit scored against the line position (and quotation, when measurable).

    table: one row per (layer (1 = the bottom layer), quantity, unit) with r_position (Pearson), auc_late (AUC for
    "40th character of the line or later"), auc_quote (NaN when not measurable), sorted by |r|.
    values: {(layer from 1, quantity): float32 [chars, units]}; chars: the characters traced (no <eos>);
    column: position in the line of each character (0 = first; newline rows hold -1)."""
    table: pd.DataFrame
    chars: tuple[str, ...]
    column: np.ndarray = field(repr=False)
    values: dict = field(repr=False)
    n_quoted: int = 0

    @property
    def best(self) -> pd.Series:
        """The unit with the largest |r| against the position in the line."""
        return self.table.iloc[0]

    def unit(self, layer: int, quantity: str, unit: int) -> np.ndarray:
        """One unit's values over the characters (`layer`: 1 = the bottom layer, -1 = the top)."""
        n = max(l for l, _ in self.values)
        return self.values[(layer_index(layer, n) + 1, quantity)][:, unit]


def line_columns(chars) -> np.ndarray:
    """Position in the line of every character (0 for the first); -1 on newlines."""
    out = np.empty(len(chars), np.int32)
    col = 0
    for i, ch in enumerate(chars):
        if ch == "\n":
            out[i], col = -1, 0
        else:
            out[i], col = col, col + 1
    return out


def _pearson(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correlation of each column of X [n, units] with y [n] (0 for a constant column)."""
    X = X.astype(np.float64) - X.mean(0)
    y = y.astype(np.float64) - y.mean()
    den = np.sqrt((X * X).sum(0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (X * y[:, None]).sum(0) / den
    return np.nan_to_num(r, nan=0.0)


def trace_chars(model, text: str, quantities=("c", "h"), piece: int = PIECE):
    """(chars, {(layer, q): [chars, units]}) for a character model reading `text`, in pieces (layer 1 =
    the bottom layer)."""
    if not isinstance(model.tokenizer, CharTokenizer):
        raise InputError(f"{model.name} reads words, not characters: line positions need a character model")
    if model.config.cell != "lstm" and "c" in quantities:
        quantities = tuple(q for q in quantities if q != "c")
    chars: list[str] = []
    parts: dict = {}
    state = None
    for s in range(0, len(text), piece):
        tr = trace(model, text[s:s + piece], top_k=1, state=state, max_chars=piece + 1)
        state = tr.state()
        keep = [k for k, t in enumerate(tr.tokens) if t.text != EOS]
        chars.extend(tr.tokens[k].text for k in keep)
        for lay in tr.layers:
            for q in quantities:
                parts.setdefault((lay.layer, q), []).append(np.asarray(lay.values[q])[keep])
    return tuple(chars), {k: np.concatenate(v) for k, v in parts.items()}


def find_line_cells(model, text: str, quantities=("c", "h"), late_from: int = 40) -> CellSearch:
    """Score every unit of `model` (a character LSTM/GRU/RNN) against the position in the line of
    `text`. Raises ValueError for a word model or a text without line breaks."""
    if "\n" not in text.strip("\n"):
        raise InputError("the text needs several lines to measure the position in the line")
    chars, values = trace_chars(model, text, quantities)
    col = line_columns(chars)
    tokens = pd.DataFrame({"text": list(chars), "file": 0})
    late = Q.pred_late_in_line(tokens)
    if late_from != 40:
        late = np.where(col < 0, np.nan, (col >= late_from).astype(np.float32))
    quote = Q.pred_inside_quotes(tokens)
    n_quoted = int(np.nansum(quote))
    quotable = n_quoted >= MIN_QUOTED and int(np.nansum(1 - quote)) >= MIN_QUOTED
    on = col >= 0
    keep_late = ~np.isnan(late)
    keep_q = ~np.isnan(quote)
    rows = []
    for (layer, q), V in values.items():
        r = _pearson(V[on], col[on])
        for u in range(V.shape[1]):
            a_late = Q.auc(V[keep_late, u], late[keep_late] > 0.5)
            a_q = Q.auc(V[keep_q, u], quote[keep_q] > 0.5) if quotable else float("nan")
            rows.append((layer, q, u, float(r[u]), a_late, a_q))
    df = pd.DataFrame(rows, columns=["layer", "quantity", "unit", "r_position", "auc_late", "auc_quote"])
    df["abs_r"] = df["r_position"].abs()
    df = df.sort_values(["abs_r", "layer", "quantity", "unit"], ascending=[False, True, True, True])
    return CellSearch(df.reset_index(drop=True), chars, col, values, n_quoted)


def verdict(r: float, auc: float) -> str:
    """How well a unit tracks the position: 'well' (|r| >= 0.6 or AUC far from 0.5 by >= 0.35),
    'partly' (|r| >= 0.3), else 'poorly'."""
    if abs(r) >= 0.6 or abs(auc - 0.5) >= 0.35:
        return "well"
    if abs(r) >= 0.3:
        return "partly"
    return "poorly"
