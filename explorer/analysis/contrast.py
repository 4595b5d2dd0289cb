"""Contrast two sentences: the same model reads both, and every quantity is compared step by step.

The point it makes (the beginner's guide): "Mary loves John ." and "John loves Mary ." have the same
bag of words, so any model that ignores order sees them as identical; an RNN's states and predictions
differ, because the state at each step depends on what came before.

Alignment is by position: row t of A against row t of B (align="start"), or last token against last
token (align="end"). Where one text is shorter its side is missing (NaN).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..trace import Trace, trace
from ._common import cosine_distance, next_log_probs, word_id
from ..errors import InputError, PositionError

DEFAULT_WORDS = ("miss", "ma'am", "madam", "sir")


@dataclass(frozen=True)
class Contrast:
    a: Trace = field(repr=False)
    b: Trace = field(repr=False)
    align: str
    rows_a: np.ndarray = field(repr=False)      # [n] row of A at aligned position j, -1 where missing
    rows_b: np.ndarray = field(repr=False)
    tokens_a: tuple[str, ...]                   # [n] ("" where missing)
    tokens_b: tuple[str, ...]
    same_token: np.ndarray = field(repr=False)  # [n] bool
    dh: np.ndarray = field(repr=False)          # [layers, n] ‖h_A − h_B‖, NaN where missing
    dc: np.ndarray | None = field(repr=False)   # [layers, n] ‖c_A − c_B‖ (LSTM), else None
    final_cosine: dict = field(default_factory=dict)   # name -> cosine distance of final states
    bag_a: Counter = field(default_factory=Counter)
    bag_b: Counter = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return len(self.rows_a)

    @property
    def same_bag(self) -> bool:
        return self.bag_a == self.bag_b

    @property
    def bag_difference(self) -> dict[str, int]:
        """count in A − count in B for every token whose counts differ."""
        keys = set(self.bag_a) | set(self.bag_b)
        return {k: self.bag_a[k] - self.bag_b[k] for k in sorted(keys) if self.bag_a[k] != self.bag_b[k]}

    @property
    def common(self) -> np.ndarray:
        """Aligned positions where both texts have a token."""
        return np.nonzero((self.rows_a >= 0) & (self.rows_b >= 0))[0]

    def delta(self, quantity: str = "h", layer: int = -1) -> np.ndarray:
        """[n, units] B − A for one quantity of one layer (1 = the bottom layer, -1 = the top; NaN rows
        where a side is missing)."""
        qa, qb = self.a.layer(layer)[quantity], self.b.layer(layer)[quantity]
        out = np.full((self.n, qa.shape[1]), np.nan, np.float32)
        j = self.common
        out[j] = qb[self.rows_b[j]] - qa[self.rows_a[j]]
        return out

    def frame(self):
        """One row per aligned position: tokens, same?, ‖Δh‖ and ‖Δc‖ per layer (dh_l1 = the bottom layer),
        top-1 of each side."""
        import pandas as pd
        d = {"position": np.arange(self.n), "token_a": list(self.tokens_a), "token_b": list(self.tokens_b),
             "same_token": self.same_token}
        for l in range(self.dh.shape[0]):
            d[f"dh_l{l + 1}"] = self.dh[l]
            if self.dc is not None:
                d[f"dc_l{l + 1}"] = self.dc[l]
        d["top_a"] = [self.a.top_words(r, 1)[0][0] if r >= 0 else "" for r in self.rows_a]
        d["top_b"] = [self.b.top_words(r, 1)[0][0] if r >= 0 else "" for r in self.rows_b]
        return pd.DataFrame(d)

    @property
    def bag_line(self) -> str:
        """One sentence for the page: is the bag of words the same, and are the final states?"""
        fs = self.final_cosine.get("h_top", float("nan"))
        if self.same_bag:
            return (f"Same bag of words ({sum(self.bag_a.values())} tokens): a model that ignores order "
                    f"cannot tell them apart. The {self.a.cell.upper()}'s final states differ "
                    f"(cosine distance {fs:.3g}).")
        return (f"The bags of words differ ({self.bag_difference}); final-state cosine distance {fs:.3g}.")


def _align(Ta: int, Tb: int, align: str):
    n = max(Ta, Tb)
    ra, rb = np.full(n, -1), np.full(n, -1)
    if align == "start":
        ra[:Ta] = np.arange(Ta)
        rb[:Tb] = np.arange(Tb)
    elif align == "end":
        ra[n - Ta:] = np.arange(Ta)
        rb[n - Tb:] = np.arange(Tb)
    else:
        raise InputError("align must be 'start' or 'end'")
    return ra, rb


def bag_of_words(tr: Trace) -> Counter:
    """Counter of the vocabulary forms of the tokens (boundary tokens left out)."""
    return Counter(t.norm for t in tr.tokens if not t.special)


def contrast(model, text_a: str, text_b: str, *, align: str = "start", top_k: int = 10) -> Contrast:
    """Trace both texts with `model` (each read after a boundary) and compare them position by position."""
    ta, tb = trace(model, text_a, top_k=top_k), trace(model, text_b, top_k=top_k)
    return contrast_traces(ta, tb, align=align)


def contrast_traces(ta: Trace, tb: Trace, align: str = "start") -> Contrast:
    if ta.cell != tb.cell or len(ta.layers) != len(tb.layers):
        raise InputError("both traces must come from the same model")
    ra, rb = _align(len(ta), len(tb), align)
    n = len(ra)
    both = (ra >= 0) & (rb >= 0)
    j = np.nonzero(both)[0]
    wa = tuple(ta.words[r] if r >= 0 else "" for r in ra)
    wb = tuple(tb.words[r] if r >= 0 else "" for r in rb)
    same = np.array([both[i] and ta.tokens[ra[i]].id == tb.tokens[rb[i]].id for i in range(n)], bool)

    def norms(q):
        out = np.full((len(ta.layers), n), np.nan)
        for l, (la, lb) in enumerate(zip(ta.layers, tb.layers)):
            d = np.asarray(la[q], np.float64)[ra[j]] - np.asarray(lb[q], np.float64)[rb[j]]
            out[l, j] = np.linalg.norm(d, axis=1)
        return out

    dh = norms("h")
    dc = norms("c") if ta.cell == "lstm" else None
    fin = {}
    if len(ta) and len(tb):
        for la, lb in zip(ta.layers, tb.layers):         # keys name the layer: h_l1 = the bottom layer
            fin[f"h_l{la.layer}"] = cosine_distance(la.h[-1], lb.h[-1])
            if dc is not None:
                fin[f"c_l{la.layer}"] = cosine_distance(la.c[-1], lb.c[-1])
        fin["h_top"] = fin[f"h_l{len(ta.layers)}"]
        fin["state"] = cosine_distance(np.concatenate([s.numpy().ravel() for s in ta.final_state]),
                                       np.concatenate([s.numpy().ravel() for s in tb.final_state]))
    return Contrast(a=ta, b=tb, align=align, rows_a=ra, rows_b=rb, tokens_a=wa, tokens_b=wb,
                    same_token=same, dh=dh, dc=dc, final_cosine=fin, bag_a=bag_of_words(ta),
                    bag_b=bag_of_words(tb))


def bow_embedding_distance(model, c: Contrast) -> float:
    """‖Σ emb(A) − Σ emb(B)‖: what an order-blind (bag-of-embeddings) model sees; 0 for equal bags."""
    with torch.no_grad():
        e = model.lm.embedding.weight.double()
        ia = torch.tensor([t.id for t in c.a.tokens if not t.special], dtype=torch.long)
        ib = torch.tensor([t.id for t in c.b.tokens if not t.special], dtype=torch.long)
        return float((e[ia].sum(0) - e[ib].sum(0)).norm())


def next_word_comparison(model, c: Contrast, position: int | None = None,
                         words: Sequence[str] = DEFAULT_WORDS, k: int = 10):
    """The two next-word distributions at one aligned position (default: the last one both texts have).

    Returns a DataFrame with one row per word: the chosen `words` (kind="chosen"; in_vocab False and
    NaN probabilities for words the vocabulary lacks) followed by the union of both top-k lists
    (kind="top"), with p_a, p_b, log_ratio = ln p_b − ln p_a, and rank_a / rank_b (1 = top)."""
    import pandas as pd
    com = c.common
    if len(com) == 0:
        raise InputError("the texts have no aligned position in common")
    j = int(com[-1]) if position is None else int(position)
    if not (0 <= j < c.n and c.rows_a[j] >= 0 and c.rows_b[j] >= 0):
        raise PositionError(f"position {position} is not present in both texts")
    la, lb = next_log_probs(model, c.a, int(c.rows_a[j])), next_log_probs(model, c.b, int(c.rows_b[j]))
    itos = model.tokenizer.itos
    rows, seen = [], set()
    for w in words:
        i = word_id(model, w)
        rows.append((w, i, "chosen"))
        if i is not None:
            seen.add(i)
    top = list(np.argsort(-la, kind="stable")[:k]) + list(np.argsort(-lb, kind="stable")[:k])
    for i in top:
        if int(i) not in seen:
            seen.add(int(i))
            rows.append((itos[int(i)], int(i), "top"))
    rank_a = (-la).argsort(kind="stable").argsort() + 1
    rank_b = (-lb).argsort(kind="stable").argsort() + 1
    out = []
    for w, i, kind in rows:
        if i is None:
            out.append({"word": w, "kind": kind, "in_vocab": False, "p_a": np.nan, "p_b": np.nan,
                        "log_ratio": np.nan, "rank_a": -1, "rank_b": -1})
        else:
            out.append({"word": w, "kind": kind, "in_vocab": True, "p_a": float(np.exp(la[i])),
                        "p_b": float(np.exp(lb[i])), "log_ratio": float(lb[i] - la[i]),
                        "rank_a": int(rank_a[i]), "rank_b": int(rank_b[i])})
    df = pd.DataFrame(out)
    df.attrs.update(position=j, token_a=c.tokens_a[j], token_b=c.tokens_b[j],
                    js_divergence=_js(la, lb))
    return df


def _js(la: np.ndarray, lb: np.ndarray) -> float:
    """Jensen–Shannon divergence (nats) of two distributions given as log-probabilities."""
    p, q = np.exp(la), np.exp(lb)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        lm_ = np.log(m)
        kl = lambda a, la_: float(np.sum(np.where(a > 0, a * (la_ - lm_), 0.0)))
    return 0.5 * kl(p, la) + 0.5 * kl(q, lb)
