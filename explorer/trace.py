"""trace(model, text) -> Trace: everything the network computes while it reads a text.

Exact and fast. The network is run by `explorer.engine` (the one place that runs it). Each layer is
run with the stock fused kernel (`torch.lstm` / `gru` / `rnn_tanh`,
what `nn.LSTM` etc. call), one layer at a time so that every layer's outputs h are kept. The gates
are then recomputed for all steps at once from [x_t, h_{t-1}], two matrix products per gate into one
contiguous block (engine.gate_values) — no Python loop over time with an LSTMCell. The LSTM cell state needs one cheap
element-wise recurrence, c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, run in NumPy.

Quantities are named after the terms of the equations (PyTorch's gate order is i, f, g, o), each
an array of shape [tokens, units]:

  LSTM  i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                     cell state
        h_t = o_t ⊙ tanh(c_t)                               hidden state
  GRU   r, z, n, h  (h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1})
  RNN   h           (h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), or relu where the config says)

Row t holds the values after reading token t. The prediction in row t is the distribution of
token t+1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
import torch

from . import settings
from .engine import (QUANTITIES, freeze, layer_index, layer_number, next_token_stats, normalize_state, run_layers,
                     run_layers_batch)
from .errors import InputError, InputTooLong
from .tokenizer import EOS, Token

DESCRIPTIONS = {
    "h": "hidden state h_t (the layer's output)",
    "c": "cell state c_t (the LSTM's long-term memory)",
    "i": "input gate i_t: how much of the candidate is written",
    "f": "forget gate f_t: how much of c_{t-1} is kept",
    "g": "candidate g_t: what would be written",
    "o": "output gate o_t: how much of tanh(c_t) is shown",
    "r": "reset gate r_t", "z": "update gate z_t", "n": "new-state candidate n_t",
}
RANGES = {"h": (-1.0, 1.0), "i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "g": (-1.0, 1.0),
          "r": (0.0, 1.0), "z": (0.0, 1.0), "n": (-1.0, 1.0), "c": (None, None)}


@dataclass(frozen=True)
class LayerTrace:
    """One layer's quantities, each a read-only float32 array [tokens, units]. `index` is its position in
    `Trace.layers` (0 = the bottom layer); `layer` its number as a person reads it (1 = the bottom)."""
    index: int
    values: Mapping[str, np.ndarray]

    @property
    def layer(self) -> int:
        return layer_number(self.index)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)


@dataclass(frozen=True)
class Trace:
    """What the model computed while reading `text`. Frozen; arrays are read-only."""
    text: str
    cell: str
    tokens: tuple[Token, ...]
    layers: tuple[LayerTrace, ...]
    vocab: Sequence[str] = field(repr=False)
    topk_ids: np.ndarray = field(repr=False)        # [tokens, k]   most probable next tokens
    topk_probs: np.ndarray = field(repr=False)      # [tokens, k]
    next_prob: np.ndarray = field(repr=False)       # [tokens] P(token t+1 | ..t); NaN at the end
    next_rank: np.ndarray = field(repr=False)       # [tokens] rank (1 = top) of token t+1; -1 at the end
    entropy: np.ndarray | None = field(repr=False)  # [tokens] entropy (nats) of the next distribution, on request
    first_prob: float = float("nan")                # P(first token | carried state) when no boundary was read
    final_state: tuple = field(default=(), repr=False)   # (h_n, c_n) or (h_n,), tensors [layers, 1, units]
    probs: np.ndarray | None = field(default=None, repr=False)  # [tokens, vocab] on request

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    @property
    def surprisal(self) -> np.ndarray:
        """-log2 P of each token given the ones before it: bits; NaN where unknown (row 0 with a boundary)."""
        p = np.concatenate([[self.first_prob], self.next_prob[:-1]]) if len(self) else np.zeros(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (-np.log2(p)).astype(np.float32)

    def top_words(self, t: int, k: int | None = None) -> list[tuple[str, float]]:
        k = k or self.topk_ids.shape[1]
        return [(self.vocab[int(i)], float(p)) for i, p in zip(self.topk_ids[t, :k], self.topk_probs[t, :k])]

    def state(self):
        """The final state, to continue tracing with `trace(model, more_text, state=tr.state())`.

        Pieces must be cut at a token boundary: the network reads each piece's own tokens, so a cut
        inside a word ("however g" + "ood"), a contraction ("don" + "'t"), a number ("10" + ":30") or
        a paragraph break ("\n" + "\n") reads different tokens than the whole text. Cut after
        whitespace (`clip_text` does). The state remembers the end of this text, and trace() warns
        when the next piece does not continue it at a token boundary."""
        return State(self.final_state, self.text[-_TAIL:])

    def layer(self, layer: int | None = None) -> LayerTrace:
        """The LayerTrace of `layer`, numbered as the app numbers it: 1 = the bottom layer, -1 (and None)
        = the top one; 0 is refused (explorer.engine.layer_index). `tr.layer(1) is tr.layers[0]`."""
        return self.layers[layer_index(layer, len(self.layers))]

    def to_frame(self):
        """Tidy DataFrame: one row per (token, layer, quantity, unit); layer 1 is the bottom layer."""
        import pandas as pd
        T = len(self)
        frames = []
        for lay in self.layers:
            for q, arr in lay.values.items():
                U = arr.shape[1]
                frames.append(pd.DataFrame({
                    "position": np.repeat(np.arange(T), U), "token": np.repeat(self.words, U),
                    "layer": lay.layer, "quantity": q, "unit": np.tile(np.arange(U), T),
                    "value": arr.reshape(-1)}))
        if not frames:
            return pd.DataFrame(columns=["position", "token", "layer", "quantity", "unit", "value"])
        return pd.concat(frames, ignore_index=True)

    def predictions_frame(self):
        """One row per token: the token, its surprisal, the next token's probability and rank, top-1."""
        import pandas as pd
        return pd.DataFrame({
            "position": np.arange(len(self)), "token": self.words,
            "unk": [t.unk for t in self.tokens], "surprisal_bits": self.surprisal,
            "next_prob": self.next_prob, "next_rank": self.next_rank,
            "top1": [self.vocab[int(i)] for i in self.topk_ids[:, 0]] if len(self) else []})

    def to_json(self, states: bool = True, k: int | None = None) -> dict:
        """Plain JSON data. Probabilities and surprisals keep 6 significant digits (a probability of
        4.1e-7 stays 4.1e-7, not 0.0), the layers' float32 values 7 (no float64 noise: 0.75238, not
        0.7523800134658813)."""
        out = {
            "text": self.text, "cell": self.cell,
            "tokens": [{"text": t.text, "norm": t.norm, "span": [t.start, t.end], "id": t.id,
                        "unk": t.unk, "special": t.special} for t in self.tokens],
            "next": [{"top": [{"word": w, "prob": significant(p, 6)} for w, p in self.top_words(j, k)],
                      "actual_prob": None if np.isnan(self.next_prob[j]) else significant(self.next_prob[j], 6),
                      "actual_rank": int(self.next_rank[j]) if self.next_rank[j] > 0 else None}
                     for j in range(len(self))],
            "surprisal_bits": [None if not np.isfinite(s) else significant(s, 6) for s in self.surprisal],
        }
        if states:
            out["layers"] = [{q: _sig(a, 7).tolist() for q, a in lay.values.items()} for lay in self.layers]
        return out


def significant(x, digits: int = 6) -> float:
    """float(x) rounded to `digits` significant digits (JSON numbers: 4.1e-06 stays 4.1e-06, never 0.0)."""
    return float(f"{float(x):.{digits}g}")


def _sig(a: np.ndarray, digits: int) -> np.ndarray:
    """float64 copy of `a` with every value rounded to `digits` significant digits (vectorised):
    the nearest double to that decimal, so it prints as the short decimal."""
    x = np.asarray(a, np.float64)
    out = x.copy()
    nz = np.isfinite(x) & (x != 0)
    v = x[nz]
    keep = digits - 1 - np.floor(np.log10(np.abs(v))).astype(np.int64)   # decimals to keep
    r = np.empty_like(v)
    pos = (keep >= 0) & (keep <= 22)          # 10**keep is exact: round(v·10^k) / 10^k is correctly rounded
    sc = 10.0 ** keep[pos]
    r[pos] = np.round(v[pos] * sc) / sc
    neg = keep < 0
    sc = 10.0 ** (-keep[neg])
    r[neg] = np.round(v[neg] / sc) * sc
    tiny = keep > 22                          # |v| < 1e-16: rare, one at a time
    r[tiny] = [significant(t, digits) for t in v[tiny]]
    out[nz] = r
    return out


#: characters of a trace's text that its State keeps, to check the next piece's junction
_TAIL = 48


class State(tuple):
    """A trace's final state ((h_n, c_n) or (h_n,)), plus the end of the text it read (`tail`), so
    that trace() can check that the next piece continues at a token boundary."""

    def __new__(cls, parts, tail: str = ""):
        self = super().__new__(cls, parts)
        self.tail = tail
        return self


def check_junction(tokenizer, tail: str, text: str) -> None:
    """Warn (UserWarning) when `text`, read after a text ending in `tail`, does not start at a token
    boundary: the pieces read as different tokens than the joined text would."""
    if not tail or not text:
        return
    head = text[:_TAIL]
    apart = [t.norm for t in tokenizer.tokenize(tail)] + [t.norm for t in tokenizer.tokenize(head)]
    joined = [t.norm for t in tokenizer.tokenize(tail + head)]
    if apart != joined:
        import warnings
        warnings.warn(f"the text continues {tail[-12:]!r} with {head[:12]!r} inside a token, so it "
                      "reads different tokens than the joined text; cut pieces at a token boundary "
                      "(after whitespace, as clip_text does)", UserWarning, stacklevel=4)


def read_tokens(tokenizer, text: str, boundary: bool = True, tokens: Sequence[Token] | None = None) -> list[Token]:
    """The tokens trace() reads: `tokens` (or the tokenization of `text`), after the boundary token
    <eos> when `boundary` is set and the text does not already start with one."""
    toks = tokenizer.tokenize(text) if tokens is None else list(tokens)
    if boundary and not (toks and toks[0].special):
        toks = [Token(EOS, EOS, 0, 0, tokenizer.eos_id, False, True)] + toks
    return toks


def clip_text(text: str, limit: int | None = None) -> tuple[str, bool]:
    """The part of `text` that trace() accepts, and whether anything was cut.

    The cut falls at the last token boundary before the limit: at the start of the last run of
    whitespace that begins within it, so no word, number, contraction or paragraph break is split
    ("... however good" is cut to "... however", never "... however g"). Only text with no
    whitespace at all in its first `limit` characters is cut hard at the limit."""
    limit = settings.MAX_CHARS if limit is None else limit
    if len(text) <= limit:
        return text, False
    i = limit
    while i > 0 and not text[i].isspace():      # back to the whitespace after the last whole token
        i -= 1
    while i > 0 and text[i - 1].isspace():      # and to the start of that whitespace
        i -= 1
    return (text[:i] if i > 0 else text[:limit]), True


@torch.no_grad()
def trace(model, text: str | Sequence[str], *, top_k: int = 10, full_probs: bool = False, state=None,
          boundary: bool | None = None, max_chars: int | None = None, entropy: bool = False,
          tokens: Sequence[Token] | None = None) -> Trace | list[Trace]:
    """Trace `model` (a LoadedModel) reading `text`.

    text: a str, or a list of str: then a list of Traces, the texts read as rows of one batch (each
      from the boundary, as a lone text is; equal to tracing each alone within float rounding).
    boundary: read the boundary token <eos> first (default: when no state is given), so the first
      word is predicted as at the start of a paragraph and appears with its probability.
    state: a state to continue from (`Trace.state()` of an earlier trace). The earlier piece must
      end at a token boundary (see `Trace.state`); a UserWarning says when it does not.
    full_probs / entropy: also keep the whole next-token distribution / its entropy (one more pass
      over [tokens, vocab] each; off by default to keep a trace close to the cost of a forward pass).
    tokens: tokens already made (e.g. sampled ids fed back in); used instead of tokenizing `text`.
    Raises InputTooLong when text is longer than max_chars (default settings.MAX_CHARS).
    """
    opts = dict(top_k=top_k, full_probs=full_probs, entropy=entropy)
    if isinstance(text, (list, tuple)):
        if state is not None or tokens is not None:
            raise InputError("a list of texts is traced from the boundary: no state= or tokens=")
        return _trace_batch(model, list(text), boundary=True if boundary is None else boundary,
                            max_chars=max_chars, **opts)
    if boundary is None:
        boundary = state is None
    tokens = _tokens_to_read(model, text, max_chars, state, boundary, tokens)
    if not tokens:
        return _empty_trace(model, text, top_k, state)
    ids = torch.tensor([t.id for t in tokens], dtype=torch.long, device=model.lm.decoder.weight.device)
    first_prob = float("nan")
    if state is not None and not boundary:
        # P(first token | carried state): the previous trace's last prediction
        st = normalize_state(model.lm.config.cell, state)
        h_top = (st[0] if model.lm.config.cell == "lstm" else st)[-1, 0]
        lp0 = torch.log_softmax(model.lm.decoder(h_top), -1)
        first_prob = float(lp0[ids[0]].exp())
    layers, top, final = run_layers(model.lm, ids, state)
    return _assemble(model, text, tokens, ids, layers, top, final, first_prob, **opts)


def _tokens_to_read(model, text, max_chars, state, boundary: bool, tokens) -> list[Token]:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    limit = settings.MAX_CHARS if max_chars is None else max_chars
    if len(text) > limit:
        raise InputTooLong(len(text), limit)
    if state is not None and not boundary and tokens is None:
        check_junction(model.tokenizer, getattr(state, "tail", ""), text)
    return read_tokens(model.tokenizer, text, boundary, tokens)


def _empty_trace(model, text: str, top_k: int, state) -> Trace:
    lm, cfg = model.lm, model.lm.config
    k = max(1, min(top_k, cfg.vocab_size))
    empty = np.zeros((0, cfg.hidden_size), np.float32)
    fs = state if state is not None else lm.init_state(1)
    return Trace(text, cfg.cell, (), tuple(LayerTrace(l, MappingProxyType({q: freeze(empty.copy()) for q in QUANTITIES[cfg.cell]})) for l in range(cfg.layers)),
                 model.tokenizer.itos, freeze(np.zeros((0, k), np.int64)), freeze(np.zeros((0, k), np.float32)),
                 freeze(np.zeros(0, np.float32)), freeze(np.zeros(0, np.int64)), None,
                 float("nan"), fs if isinstance(fs, tuple) else (fs,), None)


def _trace_batch(model, texts: list[str], *, boundary: bool, max_chars, top_k, full_probs, entropy) -> list[Trace]:
    """Several texts as rows of one batch through the engine; one Trace each."""
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be str")
    toks = [_tokens_to_read(model, t, max_chars, None, boundary, None) for t in texts]
    dev = model.lm.decoder.weight.device
    ids = [torch.tensor([t.id for t in tk], dtype=torch.long, device=dev) for tk in toks]
    live = [j for j, tk in enumerate(toks) if tk]
    runs = dict(zip(live, run_layers_batch(model.lm, [ids[j] for j in live]))) if live else {}
    out = []
    for j, text in enumerate(texts):
        if j not in runs:
            out.append(_empty_trace(model, text, top_k, None))
            continue
        layers, top, final = runs[j]
        out.append(_assemble(model, text, toks[j], ids[j], layers, top, final, float("nan"),
                             top_k=top_k, full_probs=full_probs, entropy=entropy))
    return out


def _assemble(model, text, tokens, ids, layers, top, final, first_prob, *, top_k, full_probs, entropy) -> Trace:
    """The Trace of one text from the engine's per-layer values, its top layer's outputs and its
    final state: the decoder's next-token statistics, and the arrays frozen."""
    lm, cfg = model.lm, model.lm.config
    k = max(1, min(top_k, cfg.vocab_size))
    logits = lm.decoder(top)                                # [T, V]
    stats = next_token_stats(logits, ids, k)
    lse = stats.log_norm
    logp = logits - lse[:, None] if (full_probs or entropy) else None
    p = logp.exp() if logp is not None else None
    ent = (-torch.bmm(p[:, None, :], logp[:, :, None])[:, 0, 0]).cpu().numpy().astype(np.float32) if entropy else None
    next_prob = np.append(stats.next_logp.exp().cpu().numpy(), np.nan).astype(np.float32)
    next_rank = np.append(stats.rank, -1).astype(np.int64)
    fs = final if isinstance(final, tuple) else (final,)
    return Trace(
        text=text, cell=cfg.cell, tokens=tuple(tokens),
        layers=tuple(LayerTrace(l, MappingProxyType({q: freeze(v[q]) for q in QUANTITIES[cfg.cell]}))
                     for l, v in enumerate(layers)),
        vocab=model.tokenizer.itos, topk_ids=freeze(stats.topk_ids.cpu().numpy()),
        topk_probs=freeze(stats.topk_logp.exp().cpu().numpy()),
        next_prob=freeze(next_prob), next_rank=freeze(next_rank),
        entropy=freeze(ent) if ent is not None else None, first_prob=first_prob,
        final_state=tuple(s.clone() for s in fs),
        probs=freeze(p.cpu().numpy()) if full_probs else None)
