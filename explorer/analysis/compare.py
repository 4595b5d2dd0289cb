"""Compare two checkpoints (or two models) reading the same text: what got better, what got worse,
and which units moved.

Both models must read the text as the same tokens (the same tokenizer: kind and vocabulary), so that
row t of one trace is row t of the other. Per token, the surprisal under each model (bits) and
Δ = B − A: Δ > 0 means B was more surprised by that token than A (B got worse there), Δ < 0 that it
got better.

Where the state shapes match (same cell, hidden size and number of layers), the states are compared
unit by unit: mean over the text's tokens of |h_B − h_A| (and |c_B − c_A| for LSTMs), per layer and
unit. Unit k of A is compared with unit k of B, which means something only when B descends from A
(two checkpoints of one run, or a model fine-tuned from another); for unrelated models of the same
shape the numbers are computed but say little. The unit summary covers every layer by default (the
units that changed most are ranked across layers, since fine-tuning can move any layer); `layer`
restricts it to one.

Layers are numbered from 1, the bottom layer, in the Python keyword `layer` (-1 = the top), the
`Comparison.layer` field, tables and JSON (explorer.engine.layer_index). The arrays dh and dc are
indexed by list index (0 = the bottom layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import layer_index
from ..errors import InputError, PositionError
from ..trace import Trace, clip_text, significant, trace

#: Tokens of held-out text that `heldout_text` reads by default: a few seconds for two word models.
MAX_TOKENS = 2000
#: Characters of context shown on each side of a token that got much better or worse.
CONTEXT_CHARS = (48, 24)


@dataclass(frozen=True)
class Comparison:
    """Model A and model B reading the same text. Arrays are indexed by token row (the boundary
    <eos> is row 0 and is never scored)."""
    a: Trace = field(repr=False)
    b: Trace = field(repr=False)
    name_a: str
    name_b: str
    layer: int | None                           # the unit summary's layer (1 = the bottom); None: every layer
    surprisal_a: np.ndarray = field(repr=False)  # [tokens] bits; NaN where a token is not scored
    surprisal_b: np.ndarray = field(repr=False)  # [tokens]
    delta: np.ndarray = field(repr=False)        # [tokens] surprisal_b − surprisal_a, bits
    dh: np.ndarray | None = field(repr=False)    # [layers, units] mean over tokens of |h_B − h_A|
    dc: np.ndarray | None = field(repr=False)    # [layers, units] the same for c (LSTMs); else None
    units_note: str = ""                         # why there is no unit summary ("" when there is one)

    # ---------------------------------------------------------------------------------- tokens
    @property
    def text(self) -> str:
        return self.a.text

    @property
    def tokens(self) -> list[str]:
        return self.a.words

    @property
    def n(self) -> int:
        return len(self.a)

    @property
    def scored(self) -> np.ndarray:
        """Rows whose token has a surprisal under both models."""
        return np.nonzero(np.isfinite(self.delta))[0]

    @property
    def mean_delta(self) -> float:
        """Mean Δ over the scored tokens, bits (> 0: B is worse on this text)."""
        return float(np.mean(self.delta[self.scored], dtype=np.float64)) if len(self.scored) else float("nan")

    @property
    def most_changed(self) -> int:
        """The scored token whose surprisal changed most (largest |Δ|; the first of equals), or 1."""
        rows = self.scored
        return int(rows[np.argmax(np.abs(self.delta[rows]))]) if len(rows) else 1

    def mean_surprisal(self, which: str) -> float:
        s = {"a": self.surprisal_a, "b": self.surprisal_b}[which]
        return float(np.mean(s[self.scored], dtype=np.float64)) if len(self.scored) else float("nan")

    def context(self, t: int) -> str:
        """The text around token t with the token marked «so», on one line."""
        tok = self.a.tokens[t]
        left, right = CONTEXT_CHARS
        before = " ".join(self.text[max(0, tok.start - left):tok.start].split())
        after = " ".join(self.text[tok.end:tok.end + right].split())
        gap_l = " " if before and self.text[tok.start - 1:tok.start].isspace() else ""
        gap_r = " " if after and self.text[tok.end:tok.end + 1].isspace() else ""
        word = "<eos>" if tok.special else tok.text
        return (("…" if tok.start > left else "") + before + gap_l + f"«{word}»" + gap_r + after
                + ("…" if tok.end + right < len(self.text) else ""))

    def frame(self):
        """One row per token: position, token, surprisal_a, surprisal_b, delta (bits)."""
        import pandas as pd
        return pd.DataFrame({"position": np.arange(self.n), "token": self.tokens,
                             "surprisal_a": self.surprisal_a, "surprisal_b": self.surprisal_b,
                             "delta": self.delta})

    def _extreme(self, n: int, worse: bool):
        rows = self.scored
        d = self.delta[rows]
        keep = rows[d > 0] if worse else rows[d < 0]
        order = np.argsort(-self.delta[keep] if worse else self.delta[keep], kind="stable")[:n]
        df = self.frame().iloc[keep[order]].reset_index(drop=True)
        df["context"] = [self.context(int(t)) for t in df["position"]]
        return df

    def worse(self, n: int = 5):
        """The n tokens B is most surprised by relative to A (largest Δ > 0), with their context."""
        return self._extreme(n, True)

    def better(self, n: int = 5):
        """The n tokens B predicts best relative to A (most negative Δ), with their context."""
        return self._extreme(n, False)

    # ---------------------------------------------------------------------------------- units
    @property
    def layers(self) -> list[int]:
        """The layers of the unit summary (1 = the bottom layer)."""
        if self.dh is None:
            return []
        return list(range(1, self.dh.shape[0] + 1)) if self.layer is None else [self.layer]

    def changed_units(self, n: int | None = 10):
        """The n units whose state moved most (mean |Δh| > 0, largest first; ties by layer and unit;
        n None: all), over the summary's layers: rank, layer (1 = the bottom), unit, dh, dc (NaN
        without a cell state). Empty when the state shapes differ (units_note says why)."""
        import pandas as pd
        cols = ["rank", "layer", "unit", "dh", "dc"]
        if self.dh is None:
            return pd.DataFrame(columns=cols)
        ls = self.layers
        rows = [l - 1 for l in ls]                  # list indices of dh and dc
        dh = self.dh[rows].ravel()
        dc = self.dc[rows].ravel() if self.dc is not None else np.full(dh.shape, np.nan)
        U = self.dh.shape[1]
        order = np.argsort(-dh, kind="stable")
        order = order[dh[order] > 0][:n]            # a unit that did not move did not change
        return pd.DataFrame({"rank": np.arange(1, len(order) + 1),
                             "layer": np.array([ls[i // U] for i in order], np.int64),
                             "unit": order % U, "dh": dh[order], "dc": dc[order]}, columns=cols)

    # ---------------------------------------------------------------------------------- predictions
    def predictions(self, t: int, k: int = 10):
        """What each model expected at token t (the distribution token t was drawn against: row t − 1
        of the traces), side by side: rank, word_a, p_a, word_b, p_b. attrs: the token that came, and
        its probability and rank under each model."""
        import pandas as pd
        if not 1 <= t < self.n:
            raise PositionError(f"token {t} is not a scored token (1 to {self.n - 1})")
        k = min(k, self.a.topk_ids.shape[1], self.b.topk_ids.shape[1])
        top_a, top_b = self.a.top_words(t - 1, k), self.b.top_words(t - 1, k)
        df = pd.DataFrame({"rank": np.arange(1, k + 1), "word_a": [w for w, _ in top_a],
                           "p_a": [p for _, p in top_a], "word_b": [w for w, _ in top_b],
                           "p_b": [p for _, p in top_b]})
        df.attrs.update(position=t, token=self.a.tokens[t].norm,
                        p_a=float(self.a.next_prob[t - 1]), p_b=float(self.b.next_prob[t - 1]),
                        rank_a=int(self.a.next_rank[t - 1]), rank_b=int(self.b.next_rank[t - 1]))
        return df

    # ---------------------------------------------------------------------------------- JSON
    def to_json(self, top: int = 5, units: int = 10) -> dict:
        """Plain JSON data; numbers keep 6 significant digits, unscored values are null, layers are
        numbered from 1."""
        def r(x):
            return significant(x, 6) if np.isfinite(x) else None

        def token_rows(df, context: bool):
            return [{"position": int(row.position), "token": row.token, "surprisal_a": r(row.surprisal_a),
                     "surprisal_b": r(row.surprisal_b), "delta": r(row.delta)}
                    | ({"context": row.context} if context else {}) for row in df.itertuples()]

        out = {"model_a": self.name_a, "model_b": self.name_b,
               "tokens": token_rows(self.frame(), False),
               "scored": int(len(self.scored)),
               "mean_surprisal_a": r(self.mean_surprisal("a")), "mean_surprisal_b": r(self.mean_surprisal("b")),
               "mean_delta": r(self.mean_delta),
               "worse": token_rows(self.worse(top), True), "better": token_rows(self.better(top), True),
               "layer": self.layer}
        if self.dh is None:
            return out | {"units": None, "units_note": self.units_note}
        ls = self.layers
        unit_table = {"layers": list(ls),
                      "mean_abs_dh": [[r(v) for v in self.dh[l - 1]] for l in ls]}
        if self.dc is not None:
            unit_table["mean_abs_dc"] = [[r(v) for v in self.dc[l - 1]] for l in ls]
        unit_table["changed_most"] = [{"layer": int(row.layer), "unit": int(row.unit), "mean_abs_dh": r(row.dh)}
                                      | ({"mean_abs_dc": r(row.dc)} if self.dc is not None else {})
                                      for row in self.changed_units(units).itertuples()]
        return out | {"units": unit_table}


# ------------------------------------------------------------------------------------------ checks

def _describe_tokenizer(model) -> str:
    tok = model.tokenizer
    return f"{tok.kind} tokenizer, {len(tok):,} tokens"


def check_same_tokenizer(model_a, model_b) -> None:
    """InputError naming both models unless they read text as the same tokens (kind and vocabulary)."""
    ta, tb = model_a.tokenizer, model_b.tokenizer
    if ta.kind == tb.kind and list(ta.itos) == list(tb.itos):
        return
    why = "" if ta.kind != tb.kind or len(ta) != len(tb) else ", a different vocabulary"
    raise InputError(f"model A ({model_a.name}: {_describe_tokenizer(model_a)}) and model B ({model_b.name}: "
                     f"{_describe_tokenizer(model_b)}{why}) have different tokenizers; compare models that "
                     "read text as the same tokens")


def _shape(model) -> str:
    c = model.config
    return f"{c.layers}-layer {c.cell.upper()} of {c.hidden_size} units"


def shape_mismatch(model_a, model_b) -> str:
    """Why the states of two models cannot be compared unit by unit ("" when they can)."""
    ca, cb = model_a.config, model_b.config
    if (ca.cell, ca.hidden_size, ca.layers) == (cb.cell, cb.hidden_size, cb.layers):
        return ""
    return (f"no unit comparison: the state shapes differ (A, {model_a.name}, is a {_shape(model_a)}; "
            f"B, {model_b.name}, a {_shape(model_b)})")


def _mean_abs_delta(ta: Trace, tb: Trace, q: str) -> np.ndarray:
    """[layers, units] mean over rows of |q_B − q_A| (float64)."""
    return np.stack([np.abs(np.asarray(lb[q], np.float64) - np.asarray(la[q], np.float64)).mean(0)
                     for la, lb in zip(ta.layers, tb.layers)])


# ------------------------------------------------------------------------------------------ compare

def compare(model_a, model_b, text: str, layer: int | None = None, *, top_k: int = 10,
            max_chars: int | None = None) -> Comparison:
    """Trace `text` with both models and compare them token by token (surprisal, bits) and, where
    the state shapes match, unit by unit (mean |Δh|, |Δc|).

    layer: the layer of the unit summary (1 = the bottom layer, -1 = the top; default None = every layer).
    top_k: next words kept per token (`Comparison.predictions`). max_chars: trace()'s text limit.
    Raises InputError when the models have different tokenizers (naming both) or the text has no
    token to score, PositionError for a layer the models lack."""
    check_same_tokenizer(model_a, model_b)
    why = shape_mismatch(model_a, model_b)
    layer = None if layer is None else layer_index(layer, model_a.config.layers) + 1
    ta = trace(model_a, text, top_k=top_k, max_chars=max_chars)
    tb = trace(model_b, text, top_k=top_k, max_chars=max_chars)
    if len(ta) < 2:
        raise InputError("the text has no tokens to compare: type a sentence")
    sa, sb = ta.surprisal, tb.surprisal
    dh = dc = None
    if not why:
        dh = _mean_abs_delta(ta, tb, "h")
        dc = _mean_abs_delta(ta, tb, "c") if ta.cell == "lstm" else None
    return Comparison(a=ta, b=tb, name_a=model_a.name, name_b=model_b.name, layer=layer,
                      surprisal_a=sa, surprisal_b=sb, delta=(sb.astype(np.float64) - sa).astype(np.float32),
                      dh=dh, dc=dc, units_note=why)


def heldout_text(model, books, max_tokens: int = MAX_TOKENS) -> str:
    """The text to compare on, from held-out books [(file name, text), ...] (e.g.
    explorer.training.data.split_books(corpus, "test"), or read_corpus(...)["test"]): the first part
    of each book (so every book is represented), about max_tokens tokens of `model`'s tokenizer in
    all, cut at token boundaries and joined by paragraph breaks."""
    if max_tokens < 1:
        raise InputError("max_tokens must be at least 1")
    if not books:
        raise InputError("no held-out book to read")
    per = max(1, max_tokens // len(books))
    parts = []
    for _, text in books:
        head, _ = clip_text(text.strip(), per * 12)       # enough characters for `per` word tokens
        toks = model.tokenizer.tokenize(head)
        parts.append((head[: toks[per].start] if len(toks) > per else head).strip())
    joined = "\n\n".join(p for p in parts if p)
    if not joined:
        raise InputError("the held-out books hold no text")
    return joined
