"""Interventions: set, add to or scale chosen units of h, c or a gate in one layer, at chosen steps
or from a step on, and read the rest of the text from the changed state.

    "If I clamp unit 161 of the cell state, does 'miss' lose its boost?"

How it runs. The engine (`explorer.engine.run_rows`, the fused `torch.lstm` kernel a stock `nn.LSTM`
calls) steps through the text one step at a time, reading the unchanged run and the changed run side
by side as two rows of one batch; each intervention is one of the engine's named `StepEdit`s. After a step
of the chosen layer, the chosen units are changed and the run reads on from there: the same layer's
next step and the layers above see the changed state. Because both rows go through the same kernel
calls, the difference between them is the intervention's effect and nothing else: an intervention
that sets a unit to its own value leaves every number bit-identical.

What each quantity means (PyTorch's gate order i, f, g, o; `explorer.trace` has the equations):
  h   the hidden state h_t; the cell state c_t is left as it was.
  c   the cell state c_t; the hidden state of the same step is recomputed, h_t = o_t ⊙ tanh(c_t),
      so the change is seen by the layer above at once (LSTM only).
  i, f, g, o   a gate at step t; c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t and h_t = o_t ⊙ tanh(c_t) are
      recomputed from the changed gate (LSTM only).
Only the units whose value actually changed are recomputed; the others keep the kernel's numbers.

Why not pyvene or nnsight: both hook a module's forward. A stock `nn.LSTM` runs all its steps and
layers inside one fused kernel call, so a hook sees only the whole output sequence and the final
(h_n, c_n) — there is no step or per-step cell state to hook. Intervening at step t needs the
recurrence split at t, which the engine's layer runner already does with the same kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ._common import tokens_for, word_id
from ..trace import significant
from ..engine import LSTM_GATES, StepEdit, as_np, check_layer, layer_index, log_probs, logit_difference, run_rows
from .contrast import DEFAULT_WORDS
from ..errors import InputError

OPS = ("set", "add", "scale")
#: The longest text `intervene` reads, in tokens (the boundary <eos> included): it reads the text one
#: step at a time (an edit can act after any step), two kernel calls a step per layer. Longer texts are
#: refused before anything runs, with the limit and their length (size_limit).
MAX_TOKENS = 1000
#: The longest text `unit_effects` reads: every unit of the layer is changed in a row of its own, so it
#: reads hidden_size + 1 rows step by step.
UNIT_MAX_TOKENS = 100
#: Steps whose next-word distributions are read at a time: [2, rows, vocabulary] float32 (10 MB for a
#: 10,000-word vocabulary), whatever the length of the text.
LOGP_ROWS = 128
GATES = LSTM_GATES


@dataclass(frozen=True)
class Intervention:
    """Change `units` of `quantity` in `layer` (1 = the bottom layer) at steps start..stop (inclusive;
    stop None: to the end of the text). Steps are rows of the trace (0 is the boundary <eos>).

    op "set" writes `value`, "add" adds it, "scale" multiplies by it; `value` is one number or one
    per unit."""
    layer: int
    quantity: str
    units: tuple[int, ...]
    op: str = "set"
    value: float | tuple[float, ...] = 0.0
    start: int = 0
    stop: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "layer", check_layer(self.layer, negative=False))
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        if isinstance(self.value, (list, tuple, np.ndarray)):
            object.__setattr__(self, "value", tuple(float(v) for v in self.value))
        else:
            object.__setattr__(self, "value", float(self.value))
        if self.op not in OPS:
            raise InputError(f"op must be one of {', '.join(OPS)}, not {self.op!r}")
        if not self.units:
            raise InputError("choose at least one unit")
        if isinstance(self.value, tuple) and len(self.value) != len(self.units):
            raise InputError(f"{len(self.value)} values for {len(self.units)} units")

    def active(self, t: int, T: int) -> bool:
        stop = T - 1 if self.stop is None else self.stop
        return self.start <= t <= stop

    @property
    def index(self) -> int:
        """The layer's list index (0 = the bottom layer), as the engine counts."""
        return self.layer - 1

    def edit(self, row: int) -> StepEdit:
        """This intervention as the engine's named edit of batch row `row`."""
        return StepEdit(row=row, index=self.index, quantity=self.quantity, units=self.units, op=self.op,
                        value=self.value, start=self.start, stop=self.stop, recompute=True)

    def describe(self) -> str:
        what = {"set": "set to", "add": "plus", "scale": "times"}[self.op]
        val = ", ".join(f"{v:g}" for v in self.value) if isinstance(self.value, tuple) else f"{self.value:g}"
        units = ", ".join(map(str, self.units))
        when = (f"from step {self.start}" if self.stop is None else
                f"at step {self.start}" if self.stop == self.start else f"at steps {self.start}–{self.stop}")
        return f"layer {self.layer} {self.quantity}[{units}] {what} {val} {when}"


def check(iv: Intervention, model, T: int) -> None:
    """ValueError with a one-line reason when `iv` does not fit the model or a text of T tokens."""
    cfg = model.config
    allowed = ("h", "c") + GATES if cfg.cell == "lstm" else ("h",)
    if iv.quantity not in allowed:
        raise InputError(f"a {cfg.cell.upper()} can be changed in {', '.join(allowed)}, not {iv.quantity!r}")
    layer_index(iv.layer, cfg.layers, negative=False)
    bad = [u for u in iv.units if not 0 <= u < cfg.hidden_size]
    if bad:
        raise InputError(f"unit {bad[0]} does not exist: units run from 0 to {cfg.hidden_size - 1}")
    if not 0 <= iv.start < T:
        raise InputError(f"step {iv.start} is outside the text (steps 0 to {T - 1})")
    if iv.stop is not None and not iv.start <= iv.stop:
        raise InputError(f"the last step ({iv.stop}) comes before the first ({iv.start})")


@dataclass(frozen=True)
class InterventionResult:
    """The unchanged run (`base`) and the changed run side by side, every array read-only.

    h, c: [layers, 2, tokens, units] (row 0 unchanged, row 1 changed; c None for GRU/RNN).
    next_logp: [2, tokens] log P(actual token t+1) after token t (NaN in the last row).
    word_logp: [2, tokens, words] log P(w) of each chosen word after token t.
    top_ids / top_logp: [2, tokens, k] the most probable next tokens."""
    interventions: tuple[Intervention, ...]
    tokens: tuple[str, ...]
    ids: np.ndarray = field(repr=False)
    words: tuple[str, ...]
    h: np.ndarray = field(repr=False)
    c: np.ndarray | None = field(repr=False)
    next_logp: np.ndarray = field(repr=False)
    word_logp: np.ndarray = field(repr=False)
    top_ids: np.ndarray = field(repr=False)
    top_logp: np.ndarray = field(repr=False)
    vocab: Sequence[str] = field(repr=False)
    unknown_words: tuple[str, ...] = ()            # chosen words that are not one known token

    @property
    def T(self) -> int:
        return len(self.tokens)

    @property
    def first_step(self) -> int:
        return min(iv.start for iv in self.interventions)

    @property
    def delta_next(self) -> np.ndarray:
        """[tokens] Δ log P(actual next token), changed − unchanged."""
        return self.next_logp[1] - self.next_logp[0]

    @property
    def delta_words(self) -> np.ndarray:
        """[tokens, words] Δ log P(w) of the chosen words."""
        return self.word_logp[1] - self.word_logp[0]

    def state_change(self, quantity: str = "h") -> np.ndarray:
        """[layers, tokens] ‖changed − unchanged‖ of h or c in each layer at each step."""
        a = self.h if quantity == "h" else self.c
        if a is None:
            raise InputError(f"{quantity!r} is not a quantity of this model")
        return np.linalg.norm(a[:, 1].astype(np.float64) - a[:, 0], axis=-1)

    def top_words(self, t: int, k: int = 5, row: int = 1) -> list[tuple[str, float]]:
        return [(self.vocab[int(i)], float(np.exp(lp))) for i, lp in zip(self.top_ids[row, t, :k], self.top_logp[row, t, :k])]

    def words_at(self, t: int = -1) -> list[dict]:
        """The chosen words after step t (default the last): P before and after, Δ log P."""
        t = t % self.T
        return [{"word": w, "p_before": float(np.exp(self.word_logp[0, t, j])),
                 "p_after": float(np.exp(self.word_logp[1, t, j])), "dlogp": float(self.delta_words[t, j])}
                for j, w in enumerate(self.words)]

    def frame(self):
        """One row per step: token, Δ log P(next), P(next) before/after, Δ log P of each chosen word,
        ‖Δh‖ and ‖Δc‖ of every layer, top-1 before and after."""
        import pandas as pd
        d = {"position": np.arange(self.T), "token": list(self.tokens),
             "next_token": list(self.tokens[1:]) + [""],
             "p_next_before": np.exp(self.next_logp[0]), "p_next_after": np.exp(self.next_logp[1]),
             "dlogp_next": self.delta_next}
        for j, w in enumerate(self.words):
            d[f"dlogp_{w}"] = self.delta_words[:, j]
        for l in range(self.h.shape[0]):               # columns named by layer: dh_l1 = the bottom layer
            d[f"dh_l{l + 1}"] = self.state_change("h")[l]
            if self.c is not None:
                d[f"dc_l{l + 1}"] = self.state_change("c")[l]
        d["top_before"] = [self.vocab[int(i)] for i in self.top_ids[0, :, 0]]
        d["top_after"] = [self.vocab[int(i)] for i in self.top_ids[1, :, 0]]
        return pd.DataFrame(d)

    def to_json(self, k: int = 3) -> dict:
        r = lambda v: None if not np.isfinite(v) else significant(v, 6)
        steps = []
        for t in range(self.T):
            s = {"position": t, "token": self.tokens[t],
                 "next": self.tokens[t + 1] if t + 1 < self.T else None,
                 "dlogp_next": r(self.delta_next[t]),
                 "p_next": [r(np.exp(self.next_logp[0, t])), r(np.exp(self.next_logp[1, t]))],
                 "words": {w: {"p_before": r(np.exp(self.word_logp[0, t, j])),
                               "p_after": r(np.exp(self.word_logp[1, t, j])),
                               "dlogp": r(self.delta_words[t, j])} for j, w in enumerate(self.words)},
                 "dh": [r(v) for v in self.state_change("h")[:, t]],
                 "top_before": [[w, r(p)] for w, p in self.top_words(t, k, 0)],
                 "top_after": [[w, r(p)] for w, p in self.top_words(t, k, 1)]}
            if self.c is not None:
                s["dc"] = [r(v) for v in self.state_change("c")[:, t]]
            steps.append(s)
        return {"interventions": [iv.describe() for iv in self.interventions], "tokens": list(self.tokens),
                "words": list(self.words), "unknown_words": list(self.unknown_words), "steps": steps}


def size_limit(model, text: str, max_tokens: int | None = None, what: str = "intervening") -> tuple[int, str | None]:
    """(the tokens `text` reads as, None) when it is within `max_tokens` (default MAX_TOKENS), else
    (tokens, why): "intervening works on up to N tokens; your text has M". Only tokenizes."""
    limit = MAX_TOKENS if max_tokens is None else int(max_tokens)
    n = len(tokens_for(model, text))
    if n > limit:
        return n, f"{what} works on up to {limit:,} tokens; your text has {n:,}. Shorten it to the passage that matters"
    return n, None


@torch.no_grad()
def intervene(model, text: str, interventions: Intervention | Sequence[Intervention],
              words: Sequence[str] = DEFAULT_WORDS, k: int = 10, max_tokens: int | None = None) -> InterventionResult:
    """Read `text` (after the boundary <eos>, as trace does) unchanged and with `interventions`
    applied, side by side. Chosen `words` outside the vocabulary are left out and named in
    `unknown_words`."""
    ivs = (interventions,) if isinstance(interventions, Intervention) else tuple(interventions)
    if not ivs:
        raise InputError("no intervention given")
    _, why = size_limit(model, text, max_tokens)
    if why:
        raise InputError(why)
    toks = tokens_for(model, text)
    T = len(toks)
    if T < 2:
        raise InputError("the text holds no words the tokenizer can read")
    for iv in ivs:
        check(iv, model, T)
    lm = model.lm
    ids = torch.tensor([t.id for t in toks], dtype=torch.long)
    h, c = run_rows(lm, torch.stack([ids, ids]), [iv.edit(1) for iv in ivs])
    looked_up = [(w, word_id(model, w)) for w in words]
    kept = [(w, i) for w, i in looked_up if i is not None]
    cols = [i for _, i in kept]
    V = lm.decoder.weight.shape[0]
    kk = max(1, min(k, V))
    nxt = np.append(ids[1:].numpy(), 0)
    next_logp = np.full((2, T), np.nan, np.float32)
    word_logp = np.zeros((2, T, len(cols)), np.float32)
    top_ids = np.empty((2, T, kk), np.int64)
    top_logp = np.empty((2, T, kk), np.float32)
    for a in range(0, T, LOGP_ROWS):          # [2, rows, V] log-probabilities at a time, not [2, T, V]
        b = min(T, a + LOGP_ROWS)
        logp = log_probs(lm, h[-1][:, a:b])                                # [2, rows, V]
        next_logp[:, a:b] = np.take_along_axis(logp, nxt[None, a:b, None].repeat(2, 0), 2)[..., 0]
        word_logp[:, a:b] = logp[:, :, cols]
        # the k largest, ordered as a stable sort of the whole row orders them (ties: the lower id first)
        part = np.argpartition(-logp, kk - 1, -1)[..., :kk] if kk < V else np.broadcast_to(np.arange(V), logp.shape)
        part = np.sort(part, -1)
        order = np.argsort(-np.take_along_axis(logp, part, -1), -1, kind="stable")
        top_ids[:, a:b] = np.take_along_axis(part, order, -1)
        top_logp[:, a:b] = np.take_along_axis(logp, top_ids[:, a:b], -1)
    next_logp[:, -1] = np.nan
    return InterventionResult(ivs, tuple(t.text for t in toks), as_np(ids.numpy()), tuple(w for w, _ in kept),
                              as_np(h), as_np(c) if c is not None else None, as_np(next_logp),
                              as_np(np.ascontiguousarray(word_logp)), as_np(top_ids), as_np(top_logp),
                              model.tokenizer.itos, tuple(w for w, i in looked_up if i is None))


@torch.no_grad()
def unit_effects(model, text: str, layer: int, quantity: str, target: str, versus: str | None = None,
                 op: str = "set", value: float = 0.0, start: int = 0, batch: int = 128,
                 max_tokens: int | None = None):
    """Change each unit of one layer's quantity (`layer`: 1 = the bottom layer, -1 = the top) on its own (op/value from step `start` on) and
    measure the change in log P(target) − log P(versus) (or log P(target)) after the last token.

    Returns a DataFrame sorted by |effect|: unit, effect (changed − unchanged), metric_before,
    metric_after. All units run as rows of a few batches; row 0 of every batch is the unchanged run."""
    import pandas as pd

    from ._common import require_word_id
    _, why = size_limit(model, text, UNIT_MAX_TOKENS if max_tokens is None else max_tokens, "ranking the units")
    if why:
        raise InputError(why)
    toks = tokens_for(model, text)
    T = len(toks)
    if T < 2:
        raise InputError("the text holds no words the tokenizer can read")
    H = model.config.hidden_size
    layer = layer_index(layer, model.config.layers) + 1
    check(Intervention(layer, quantity, (0,), op, value, start), model, T)
    ti = require_word_id(model, target)
    vi = require_word_id(model, versus) if versus else None
    lm = model.lm
    ids = torch.tensor([t.id for t in toks], dtype=torch.long)
    rows = []
    for s in range(0, H, batch):
        units = list(range(s, min(H, s + batch)))
        ivs = [Intervention(layer, quantity, (u,), op, value, start) for u in units]
        R = len(units) + 1
        h, _ = run_rows(lm, ids.expand(R, -1).contiguous(), [iv.edit(j + 1) for j, iv in enumerate(ivs)])
        top = torch.from_numpy(h[-1][:, -1])                         # [R, H]
        if vi is not None:
            m = logit_difference(lm, top, ti, vi).numpy()
        else:
            m = torch.log_softmax(lm.decoder(top), -1)[:, ti].numpy()
        for j, u in enumerate(units):
            rows.append({"unit": u, "effect": float(m[j + 1] - m[0]), "metric_before": float(m[0]),
                         "metric_after": float(m[j + 1])})
    df = pd.DataFrame(rows)
    df = df.reindex(df["effect"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    df.attrs.update(metric=f"log P({target})" + (f" − log P({versus})" if versus else ""), layer=layer,
                    quantity=quantity)
    return df
