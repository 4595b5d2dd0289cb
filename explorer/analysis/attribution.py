"""Which earlier tokens made the model expect a word? Attribution of log P(word | tokens ≤ t).

For a row t of the trace (the state after reading token t) and a candidate next word w, the score of
token k ≤ t says how much it contributed to f = log P(w | tokens 0..t). With a second word v
(`versus`), f = log P(w) − log P(v): which tokens make "miss" more likely than "sir". The shared
context (a comma and a quote announce that a form of address may follow) cancels out of the
log-ratio, which isolates the evidence that tells the two words apart. Three methods:

* gradient × input: Σ_e x_{k,e} ∂f/∂x_{k,e} on the token embeddings x (first-order, cheap).
* integrated gradients (Sundararajan et al. 2017): (x_k − b_k) · ∫_0^1 ∂f/∂x_k(b + α(x − b)) dα,
  here with Gauss–Legendre quadrature. Completeness: Σ_k IG_k = f(x) − f(b) up to quadrature error,
  which `Attribution.completeness_error` reports. The baseline b replaces every word by the <unk>
  embedding (default; the same comparison as occlusion, all words at once) or by zeros; boundary
  tokens are kept, so they get 0. ig_steps="auto" doubles the nodes (64, 256, 1024) until the
  completeness error is below ig_tol of |f(x) − f(b)|: trained recurrent networks can be rough along
  the path (the shipped tanh RNN with the zero baseline never gets there; with <unk> it does at 64).
* occlusion: f(x) − f(x with token k replaced by <unk>). Needs no gradient; works for any model.

Safe on a model shared between threads (Streamlit sessions): gradients are taken only with
`torch.autograd.grad` with respect to an embedding tensor created here; no backward pass on the model, no
parameter `.grad`, no hooks, no change to train/eval mode. Grad mode is thread-local in PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
import torch

from ._common import logprob_from_embeddings, require_word_id, tokens_for
from ..errors import InputError, PositionError

METHODS = ("grad_x_input", "integrated_gradients", "occlusion")
AUTO_STEPS = (64, 256, 1024)
LABELS = {"grad_x_input": "gradient × input", "integrated_gradients": "integrated gradients",
          "occlusion": "occlusion (<unk>)"}
#: The most tokens scored: the window of the text ending at the step explained. Earlier tokens are read
#: as its context (the state the window starts from) and get no score (NaN). Occlusion reads one
#: continuation per token, and integrated gradients 64 to 1,024 paths, each over the window: both grow
#: with its length (occlusion with its square), never with the length of the text.
WINDOW = 100
#: Bytes one block of occlusion rows may take (their embeddings and every layer's outputs): a text of
#: up to ~130 tokens runs as one batch; longer windows in blocks, within float rounding (~1e-6) of one.
BLOCK_BYTES = 128 * 2 ** 20


@dataclass(frozen=True)
class Attribution:
    """Scores of tokens 0..step for log P(target | tokens ≤ step). Arrays are float64 [step + 1]."""
    text: str
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    step: int
    target: str
    target_id: int
    logprob: float                          # f(x) = log P(target | tokens ≤ step) [− log P(versus | …)]
    scores: Mapping[str, np.ndarray] = field(repr=False)
    baseline: str = "unk"                   # IG baseline: "unk" or "zeros" embeddings at every word
    baseline_logprob: float = float("nan")  # f(b)
    ig_steps: int = 0                       # quadrature nodes used (0: IG not computed)
    versus: str | None = None               # the second word of a log-ratio, if any
    versus_id: int | None = None
    window_start: int = 0                   # tokens before it are context only: no score (NaN)

    @property
    def prob(self) -> float:
        """P(target) (or, with `versus`, the ratio P(target) / P(versus))."""
        return float(np.exp(self.logprob))

    @property
    def quantity(self) -> str:
        """What the scores explain, for a caption."""
        return (f"log P({self.target!r}) − log P({self.versus!r})" if self.versus is not None
                else f"log P({self.target!r})")

    @property
    def completeness_error(self) -> float:
        """Σ IG − (f(x) − f(b)); small when the quadrature is fine enough."""
        ig = self.scores.get("integrated_gradients")
        if ig is None:
            return float("nan")
        return float(np.nansum(ig) - (self.logprob - self.baseline_logprob))   # NaN: context before the window

    @property
    def completeness_relative(self) -> float:
        """|completeness_error| / |f(x) − f(b)|: the share of the total IG did not account for."""
        return abs(self.completeness_error) / max(abs(self.logprob - self.baseline_logprob), 1e-3)

    def window(self) -> "Attribution":
        """Only the scored tokens (from window_start on), positions kept: what a chart of the scores shows."""
        lo = self.window_start
        if not lo or len(self.tokens) != self.step + 1:
            return self
        return replace(self, tokens=self.tokens[lo:], special=self.special[lo:],
                       scores=MappingProxyType({m: v[lo:] for m, v in self.scores.items()}))

    def frame(self):
        """One row per token: position, token, and a column per method."""
        import pandas as pd
        first = self.step + 1 - len(self.tokens)          # 0, or window_start for a window()
        d = {"position": np.arange(first, self.step + 1), "token": list(self.tokens), "special": list(self.special)}
        d.update({m: v for m, v in self.scores.items()})
        return pd.DataFrame(d)

    def top(self, method: str = "integrated_gradients", n: int = 5) -> list[tuple[int, str, float]]:
        """The n tokens with the largest positive scores: (position, token, score)."""
        s = np.nan_to_num(self.scores[method], nan=-np.inf)
        order = np.argsort(-s, kind="stable")[:n]
        return [(int(k), self.tokens[k], float(self.scores[method][k])) for k in order]


def _gauss_legendre(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1) / 2, w / 2            # nodes and weights on [0, 1]


def _integrated_gradients(lm, x, b, target: int, vs, steps: int, batch: int, state=None,
                          progress=None) -> np.ndarray:
    alphas, weights = _gauss_legendre(steps)
    total = torch.zeros(x.shape[1:], dtype=torch.float64)
    for s in range(0, steps, batch):
        if progress is not None:
            progress(s / steps, f"integrated gradients, {steps} nodes: {s} done")
        a = torch.tensor(alphas[s:s + batch], dtype=x.dtype)[:, None, None]
        w = torch.tensor(weights[s:s + batch], dtype=torch.float64)[:, None, None]
        _, g = _grad(lm, b + a * (x - b), target, vs, state)
        total += (g.double() * w).sum(0)
    return (total * (x - b)[0].double()).sum(-1).numpy()


def _grad(lm, path: torch.Tensor, target: int, vs=None, state=None) -> tuple[torch.Tensor, torch.Tensor]:
    """f and ∂f/∂path for a batch of embedded sequences [B, T, E] (each from `state`, default zeros)."""
    path = path.detach().requires_grad_(True)
    with torch.enable_grad():
        f = logprob_from_embeddings(lm, path, target, vs, state)
        (g,) = torch.autograd.grad(f.sum(), path)
    return f.detach(), g


@torch.no_grad()
def _prefix_state(lm, ids: torch.Tensor):
    """The state [layers, 1, units] after reading ids [T] from zeros (an LSTM's (h, c))."""
    _, state = lm.rnn(lm.embedding(ids)[None])
    return state


def _occlusion_rows(lm, ids, pos, unk: int, target: int, vs, state, block_bytes: int, progress=None):
    """f with the token at each position of `pos` replaced by `unk`, in blocks of rows that fit in
    `block_bytes` (a block of one row is run beside a copy: the kernel's numbers for a lone row differ)."""
    T, E, H = len(ids), lm.embedding.weight.shape[1], lm.config.hidden_size
    per_row = 4 * T * (E + 2 * H * lm.config.layers)
    rows = max(2, block_bytes // max(1, per_row))
    out = np.empty(len(pos))
    for a in range(0, len(pos), rows):
        if progress is not None:
            progress(a / len(pos), f"occlusion: {a} of {len(pos)} tokens")
        p = pos[a:a + rows]
        q = p + p if len(p) == 1 < len(pos) else p
        batch = ids.repeat(len(q), 1)
        batch[torch.arange(len(q)), torch.tensor(q)] = unk
        with torch.no_grad():
            out[a:a + len(p)] = logprob_from_embeddings(lm, lm.embedding(batch), target, vs,
                                                        state).double().numpy()[:len(p)]
    return out


def attribute(model, text: str, step: int | None = None, word: str | None = None, *, versus: str | None = None,
              methods: Sequence[str] = METHODS, ig_steps: int | str = "auto", baseline: str = "unk",
              ig_tol: float = 0.01, internal_batch_size: int = 64, window: int | None = None,
              block_bytes: int | None = None, progress=None) -> Attribution:
    """Attribute log P(word | tokens ≤ step) to the tokens 0..step of `text` (read after <eos>).

    step: a row of trace(model, text) (default: the last token, i.e. the prediction after the text).
    word: the candidate next word (default: the model's most probable word there, <unk> excluded).
    versus: a second word; then the scores explain log P(word) − log P(versus).
    window: the most tokens scored (default WINDOW), those ending at `step`; the tokens before them
    are read once as the context the window starts from, and score NaN (`window_start` says where
    the scores begin). Within the window the methods are what they are on a text that short, so a
    text no longer than the window is scored as a whole, as before. Memory is bounded by the window
    and `block_bytes` (occlusion's rows run in blocks), not by the text. progress(fraction, what) is
    called between blocks and integration batches: a caller can stop the work there by raising.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise InputError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if baseline not in ("zeros", "unk"):
        raise InputError("baseline must be 'zeros' or 'unk'")
    if ig_steps == "auto":
        schedule = AUTO_STEPS
    elif isinstance(ig_steps, int) and not isinstance(ig_steps, bool) and ig_steps >= 1:
        schedule = (ig_steps,)
    else:
        raise InputError("ig_steps must be a positive integer or 'auto'")
    lm, tok = model.lm, model.tokenizer
    toks = tokens_for(model, text)
    T = len(toks)
    if step is None:
        step = T - 1
    if not -T <= step < T:
        raise PositionError(f"step {step} is outside the {T} tokens")
    step = step % T
    toks = toks[: step + 1]
    W = WINDOW if window is None else int(window)
    if W < 1:
        raise InputError("the window must hold at least one token")
    lo = max(0, step + 1 - W)                                  # tokens before lo: context, not scored
    all_ids = torch.tensor([t.id for t in toks], dtype=torch.long)
    state = _prefix_state(lm, all_ids[:lo]) if lo else None
    toks = toks[lo:]
    ids = all_ids[lo:]
    with torch.no_grad():
        x = lm.embedding(ids).detach()[None]                   # [1, T, E]
        if word is None:
            out, _ = lm.rnn(x) if state is None else lm.rnn(x, state)
            lp = torch.log_softmax(lm.decoder(out[0, -1]), -1)
            lp[tok.unk_id] = -float("inf")
            target = int(lp.argmax())
        else:
            target = require_word_id(model, word)
    vs = None if versus is None else require_word_id(model, versus)
    scores: dict[str, np.ndarray] = {}
    f_x, g_x = _grad(lm, x, target, vs, state)
    if "grad_x_input" in methods:
        scores["grad_x_input"] = (g_x[0] * x[0]).sum(-1).double().numpy()
    f_b = float("nan")
    used = 0
    if "integrated_gradients" in methods:
        words = torch.tensor([not t.special for t in toks])
        with torch.no_grad():
            fill = (torch.zeros_like(x) if baseline == "zeros"
                    else lm.embedding(torch.full_like(ids, tok.unk_id))[None].detach())
            b = torch.where(words[None, :, None], fill, x)      # boundary tokens stay as they are
            f_b = float(logprob_from_embeddings(lm, b, target, vs, state)[0])
        gap = float(f_x[0]) - f_b
        for used in schedule:
            ig = _integrated_gradients(lm, x, b, target, vs, used, internal_batch_size, state, progress)
            if abs(ig.sum() - gap) <= ig_tol * max(abs(gap), 1e-3):
                break
        scores["integrated_gradients"] = ig
    if "occlusion" in methods:
        occ = np.full(len(toks), np.nan)
        pos = [k for k, t in enumerate(toks) if not t.special]
        if pos:
            f_o = _occlusion_rows(lm, ids, pos, tok.unk_id, target, vs, state,
                                  BLOCK_BYTES if block_bytes is None else int(block_bytes), progress)
            occ[pos] = float(f_x[0]) - f_o
        scores["occlusion"] = occ
    scores = {m: scores[m] for m in METHODS if m in scores}
    if lo:                                                    # the context before the window: no score
        scores = {m: np.concatenate([np.full(lo, np.nan), v]) for m, v in scores.items()}
        toks = tokens_for(model, text)[: step + 1]
    for v in scores.values():
        v.setflags(write=False)
    return Attribution(text=text, tokens=tuple(t.text for t in toks), special=tuple(t.special for t in toks),
                       step=step, target=tok.itos[target], target_id=target, logprob=float(f_x[0]),
                       scores=MappingProxyType(scores), baseline=baseline, baseline_logprob=f_b,
                       ig_steps=used, versus=None if vs is None else tok.itos[vs], versus_id=vs,
                       window_start=lo)
