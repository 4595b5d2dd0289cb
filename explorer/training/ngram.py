"""Interpolated Kneser-Ney n-gram language model (Kneser & Ney 1995; Chen & Goodman 1999).

The baseline the networks are measured against, trained on the same training tokens with the same
vocabulary. It is also a teaching tool: it predicts from the last n-1 tokens only, so it shows what
a model without a long memory can and cannot do.

P_KN(w | h) = max(c(h w) - D_n, 0) / c(h)  +  D_n · N1+(h •) / c(h) · P_KN(w | h')
for the highest order (h' is h without its first word), with continuation counts N1+(• h w) in place
of c(h w) for every lower order, and the uniform distribution under the unigram. One discount per
order, D_n = n1 / (n1 + 2 n2) from the counts of counts, kept within [0.05, 0.95].
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np


class KneserNey:
    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order, self.V = order, vocab_size

    def fit(self, ids: Sequence[int]) -> "KneserNey":
        ids = [int(i) for i in ids]
        N = self.order
        # counts[n]: for the highest order raw counts of n-grams; lower orders continuation counts
        self.counts: list[dict] = [dict() for _ in range(N + 1)]
        top = Counter(tuple(ids[i:i + N]) for i in range(len(ids) - N + 1))
        self.counts[N] = dict(top)
        for n in range(N - 1, 0, -1):  # N1+(• w_2..w_{n+1}) from the distinct (n+1)-grams
            cont: Counter = Counter()
            for g in self.counts[n + 1]:
                cont[g[1:]] += 1
            self.counts[n] = dict(cont)
        self._totals()
        return self

    def _totals(self) -> None:
        """Context totals, distinct followers and discounts per order, from the counts."""
        N = self.order
        # context totals and number of distinct followers, per order
        self.ctx_total: list[dict] = [dict() for _ in range(N + 1)]
        self.ctx_types: list[dict] = [dict() for _ in range(N + 1)]
        self.D = [0.0] * (N + 1)
        for n in range(1, N + 1):
            tot, typ = defaultdict(int), defaultdict(int)
            for g, c in self.counts[n].items():
                tot[g[:-1]] += c
                typ[g[:-1]] += 1
            self.ctx_total[n], self.ctx_types[n] = dict(tot), dict(typ)
            cc = Counter(self.counts[n].values())
            n1, n2 = cc.get(1, 0), cc.get(2, 0)
            # clamped so that every order keeps some mass for the one below (no zero probabilities)
            self.D[n] = min(max(n1 / (n1 + 2 * n2) if n1 + n2 else 0.5, 0.05), 0.95)

    def prob(self, history: Sequence[int], w: int) -> float:
        """P(w | the last order-1 tokens of history)."""
        h = tuple(int(x) for x in history[-(self.order - 1):]) if self.order > 1 else ()
        p = 1.0 / self.V
        for n in range(1, len(h) + 2):   # from unigram up to the full history
            ctx = h[len(h) - (n - 1):] if n > 1 else ()
            tot = self.ctx_total[n].get(ctx)
            if not tot:
                continue  # unseen context: keep the lower-order estimate
            c = self.counts[n].get(ctx + (w,), 0)
            D = self.D[n]
            p = max(c - D, 0.0) / tot + D * self.ctx_types[n][ctx] / tot * p
        return p

    def evaluate(self, ids: Sequence[int]) -> dict:
        """Perplexity over a stream, each token predicted from the tokens before it in the stream."""
        ids = [int(i) for i in ids]
        nll = 0.0
        for i in range(1, len(ids)):
            nll -= math.log(self.prob(ids[max(0, i - self.order + 1):i], ids[i]))
        n = max(len(ids) - 1, 1)
        return {"perplexity": math.exp(nll / n), "nll": nll / n, "tokens": n}

    def surprisal(self, ids: Sequence[int]) -> np.ndarray:
        """Bits of surprise of each token after the first, given the tokens before it: [len(ids) - 1]."""
        ids = [int(i) for i in ids]
        return np.array([-math.log2(self.prob(ids[max(0, i - self.order + 1):i], ids[i]))
                         for i in range(1, len(ids))], dtype=np.float32)

    # ---- storage: plain integer arrays in an .npz (no pickle), a few MB for a trigram model ----
    def save(self, path) -> None:
        """Write the counts as integer arrays (np.savez_compressed; read back with allow_pickle=False)."""
        arrays = {"order": np.array([self.order]), "V": np.array([self.V])}
        dtype = np.int16 if self.V < 2**15 else np.int32
        for n in range(1, self.order + 1):
            grams = self.counts[n]
            arrays[f"grams{n}"] = np.array(list(grams.keys()), dtype=dtype).reshape(len(grams), n)
            arrays[f"counts{n}"] = np.array(list(grams.values()), dtype=np.int32)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> "KneserNey":
        with np.load(path, allow_pickle=False) as z:
            kn = cls(int(z["order"][0]), int(z["V"][0]))
            kn.counts = [dict()] + [dict(zip(map(tuple, z[f"grams{n}"].tolist()), z[f"counts{n}"].tolist()))
                                    for n in range(1, kn.order + 1)]
        kn._totals()
        return kn

    def next_distribution(self, history: Sequence[int]) -> np.ndarray:
        """The full next-token distribution (for the app's 'what does a 5-gram predict' view)."""
        return np.array([self.prob(history, w) for w in range(self.V)])
