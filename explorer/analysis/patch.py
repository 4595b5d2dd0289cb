"""Causal tracing (activation patching; Meng et al. 2022, "Locating and Editing Factual Associations
in GPT"): which layer and which step carry the information that tells two texts apart?

Two aligned texts: a clean one ('A girl ... she said ...') and a corrupted one ('A boy ... he said
...'). Alignment rule: position by position, so both must read as the same number of tokens (the
boundary <eos> first, as trace does). A metric is read after the last token:
m = log P(target) − log P(versus), e.g. log P(miss) − log P(sir).

For every layer l, every position t and each state quantity q (h, and c for an LSTM), the corrupted
run is read with q of layer l at position t replaced by the clean run's value, and read on to the end:

    restored(q, l, t) = (m_patched − m_corrupt) / (m_clean − m_corrupt)

1 means that state alone carries everything that separates the two texts at the end; 0 means it
carries nothing the rest of the run uses. Patching h replaces the layer's output at t (what the layer
above reads at t and the layer itself at t+1); patching c replaces only the cell state carried to
t+1 (the h of step t stays the corrupted one).

Speed: the patched runs share everything before their patch point, so only their continuations run,
all of one layer's patch points as one batch through the fused kernel (right-padded: a row's padding
comes after its last real step and changes nothing before it). Layer by layer, the rows patched
below continue in the same batch. Size: the patch points go in blocks of rows ordered by position
(BLOCK_BYTES each), and pairs longer than MAX_TOKENS are refused before anything runs, so a request's
memory is bounded whatever the text. Exactness: every batch has at least two rows, so each row's numbers
are those of the same run alone (see `explorer.engine`); the grid equals the one-patch-at-a-time loop exactly,
a patch that copies a state equal in both runs (the boundary at position 0) restores exactly 0 (for a
plain RNN within float rounding: on some CPUs its kernel rounds a many-step call and single steps
differently, by ~1e-6), and
the top layer's h at the last position exactly 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..engine import (QUANTITIES, StepEdit, as_np, freeze, kernel_of, layer_index, layer_params, logit_difference,
                      next_token_stats, pad_rows, quantities_of_layer, run_layer, run_rows)
from ..trace import significant
from ._common import require_word_id, tokens_for
from ..errors import InputError


#: The longest pair patch_grid takes, in tokens (the boundary <eos> included). The grid runs
#: quantities × layers × T continuations of up to T steps each, so its time grows with T²: the 2 × 2 × 200
#: continuations of a 2 × 384 LSTM take about 2 s on one core. Longer pairs are refused before
#: anything runs, with the limit and their length (size_limit).
MAX_TOKENS = 200
#: Bytes one block of continuations may take (inputs, states and outputs of its rows, float32).
BLOCK_BYTES = 128 * 2 ** 20


@dataclass(frozen=True)
class PatchGrid:
    """The tracing grid. metric[q, l, t]: m after patching quantity q of the layer at list index l
    (0 = the bottom layer, which frame() and to_json() call layer 1) at position t."""
    clean_tokens: tuple[str, ...]
    corrupt_tokens: tuple[str, ...]
    target: str
    versus: str
    quantities: tuple[str, ...]
    metric_clean: float
    metric_corrupt: float
    metric: np.ndarray = field(repr=False)          # [quantities, layers, positions]

    @property
    def difference(self) -> float:
        return self.metric_clean - self.metric_corrupt

    @property
    def restored(self) -> np.ndarray:
        """[quantities, layers, positions] the fraction of m_clean − m_corrupt restored."""
        return (self.metric - self.metric_corrupt) / self.difference

    @property
    def differs(self) -> np.ndarray:
        """[positions] True where the two texts have different tokens."""
        return np.array([a.lower() != b.lower() for a, b in zip(self.clean_tokens, self.corrupt_tokens)])

    def labels(self) -> list[str]:
        """Position labels: the clean token, with the corrupted one where they differ ('girl/boy')."""
        return [a if not d else f"{a}/{b}" for a, b, d in zip(self.clean_tokens, self.corrupt_tokens, self.differs)]

    def frame(self):
        """One row per cell: quantity, layer (1 = the bottom layer), position, token, restored, metric."""
        import pandas as pd
        Q, L, T = self.metric.shape
        lab = self.labels()
        return pd.DataFrame({
            "quantity": np.repeat(self.quantities, L * T), "layer": np.tile(np.repeat(np.arange(1, L + 1), T), Q),
            "position": np.tile(np.arange(T), Q * L), "token": lab * (Q * L),
            "restored": self.restored.reshape(-1), "metric": self.metric.reshape(-1)})

    def strongest(self, n: int = 5):
        """The n cells that restore the most (by |restored|), strongest first."""
        df = self.frame()
        return df.reindex(df["restored"].abs().sort_values(ascending=False).index).head(n).reset_index(drop=True)

    def to_json(self) -> dict:
        r = lambda v: significant(v, 6)
        return {"clean": list(self.clean_tokens), "corrupt": list(self.corrupt_tokens),
                "metric": f"log P({self.target}) - log P({self.versus}) after the last token",
                "metric_clean": r(self.metric_clean), "metric_corrupt": r(self.metric_corrupt),
                "quantities": list(self.quantities),
                "restored": {q: [[r(v) for v in row] for row in self.restored[i]]
                             for i, q in enumerate(self.quantities)},
                "strongest": [{k: (r(v) if isinstance(v, float) else v) for k, v in row.items()}
                              | {"layer": int(row["layer"]), "position": int(row["position"])}
                              for row in self.strongest(5).to_dict("records")]}


@dataclass(frozen=True)
class _Pair:
    lm: object
    ids: torch.Tensor            # [2, T] clean, corrupt
    clean_tokens: tuple[str, ...]
    corrupt_tokens: tuple[str, ...]
    target: int
    versus: int
    h: np.ndarray                # [L, 2, T, H] exact per-step states of both runs
    c: np.ndarray | None


def _prepare(model, clean: str, corrupt: str, target: str, versus: str) -> _Pair:
    ta, tb = tokens_for(model, clean), tokens_for(model, corrupt)
    if len(ta) != len(tb):
        raise InputError(f"the clean text reads as {len(ta)} tokens and the corrupted one as {len(tb)}; "
                         "patching aligns them position by position, so they need the same count")
    if len(ta) < 2:
        raise InputError("the texts hold no words the tokenizer can read")
    ti, vi = require_word_id(model, target), require_word_id(model, versus)
    if ti == vi:
        raise InputError("target and versus are the same word")
    ids = torch.tensor([[t.id for t in ta], [t.id for t in tb]], dtype=torch.long)
    h, c = run_rows(model.lm, ids)
    return _Pair(model.lm, ids, tuple(t.text for t in ta), tuple(t.text for t in tb), ti, vi, h, c)


def _grid_cells(p: _Pair, quantities) -> list[tuple[int, int, int]]:
    L, T = p.h.shape[0], p.h.shape[2]
    return [(qi, l, t) for qi in range(len(quantities)) for l in range(L) for t in range(T)]


@torch.no_grad()
def _continue(p: _Pair, quantities: Sequence[str], cells: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """m after each patch in `cells` ((quantity index, layer, position)), all cells as one batch
    per layer. Returns [len(cells)] float32."""
    lm, cell = p.lm, p.lm.config.cell
    L, _, T, H = p.h.shape
    h = torch.from_numpy(np.ascontiguousarray(p.h))
    c = torch.from_numpy(np.ascontiguousarray(p.c)) if p.c is not None else None
    emb = lm.embedding(p.ids[1])                                  # corrupted inputs of layer 0, [T, E]
    cells = list(cells)
    rows: list[int] = []            # indices into cells, in the order of `out`
    out: torch.Tensor | None = None  # [rows, T, H]: layer-k outputs, valid from each row's position on
    for k in range(L):
        params = layer_params(lm.rnn, k)
        x_corrupt = emb if k == 0 else h[k - 1, 1]                # [T, in]
        new = [j for j, (qi, l, t) in enumerate(cells) if l == k]
        old = rows
        B = len(old) + len(new)
        if B == 0:
            continue
        # steps of the longest row (a row patched at t reads T - t steps here, T - 1 - t if patched here):
        # no padding beyond it, which would change nothing but cost time and memory
        S = max(1, T - min([cells[j][2] for j in old] + [cells[j][2] + 1 for j in new]))
        x = torch.zeros(B, S, x_corrupt.shape[1])
        h0 = torch.zeros(1, B, H)
        c0 = torch.zeros(1, B, H) if cell == "lstm" else None
        first = torch.empty(B, H)                                 # the patched h_t of new rows
        start = []
        for r, j in enumerate(old):                               # patched below: read on from t
            t = cells[j][2]
            x[r, :T - t] = out[r, t:]
            if t > 0:
                h0[0, r] = h[k, 1, t - 1]
                if c0 is not None:
                    c0[0, r] = c[k, 1, t - 1]
            start.append(t)
        for r0, j in enumerate(new):                              # patched here: state at t, read on from t+1
            r = len(old) + r0
            qi, _, t = cells[j]
            q = quantities[qi]
            hs, cs = h[k, 1, t], (c[k, 1, t] if c is not None else None)
            if q == "h":
                hs = h[k, 0, t]
            else:
                cs = c[k, 0, t]
            h0[0, r] = hs
            if c0 is not None:
                c0[0, r] = cs
            first[r] = hs
            x[r, :T - 1 - t] = x_corrupt[t + 1:]
            start.append(t + 1)
        xb, n = pad_rows(x)
        h0b, _ = pad_rows(h0[0])
        c0b = pad_rows(c0[0])[0][None] if c0 is not None else None
        res, _, _ = run_layer(kernel_of(lm.config), xb, h0b[None].contiguous(), c0b.contiguous() if c0b is not None else None, params)
        res = res[:n]
        nxt = torch.zeros(B, T, H)
        for r in range(B):
            s = start[r]
            if r >= len(old):
                nxt[r, s - 1] = first[r]
            nxt[r, s:] = res[r, :T - s]
        out = nxt
        rows = old + new
    order = {j: r for r, j in enumerate(rows)}
    top = out[[order[j] for j in range(len(cells))], T - 1]         # [cells, H]
    base = torch.from_numpy(np.ascontiguousarray(p.h[-1, :, T - 1]))  # [2, H] clean, corrupt
    m = logit_difference(lm, torch.cat([base, top]), p.target, p.versus)
    return m.numpy()


def _quantities(model, quantities):
    allowed = ("h", "c") if model.config.cell == "lstm" else ("h",)
    qs = tuple(quantities) if quantities else allowed
    bad = [q for q in qs if q not in allowed]
    if bad:
        raise InputError(f"a {model.config.cell.upper()} can be patched in {', '.join(allowed)}, not {bad[0]!r}")
    return qs


def size_limit(model, clean: str, corrupt: str, max_tokens: int | None = None) -> tuple[int, str | None]:
    """(the tokens the longer text reads as, None) when patch_grid takes the pair, else (tokens, why):
    "patching works on up to N tokens; your texts have M". Only tokenizes: call it before starting."""
    limit = MAX_TOKENS if max_tokens is None else int(max_tokens)
    n = max(len(tokens_for(model, clean)), len(tokens_for(model, corrupt)))
    if n > limit:
        return n, (f"patching works on up to {limit:,} tokens; your texts have {n:,}. Shorten them to the "
                   f"sentences around the words that differ")
    return n, None


def _blocks(cells: Sequence[tuple[int, int, int]], T: int, H: int, E: int, budget: int) -> list[list[int]]:
    """Indices of `cells` in blocks whose continuations fit in `budget` bytes (at least MIN_ROWS rows
    a block; float32 inputs, states and outputs of every row over the T steps), ordered by position
    so that a block's rows start close together and are not padded far."""
    per_row = 4 * T * (E + 8 * H)
    rows = max(2, budget // max(1, per_row))
    order = sorted(range(len(cells)), key=lambda j: (cells[j][2], cells[j][1], cells[j][0]))
    return [order[a:a + rows] for a in range(0, len(order), rows)]


def patch_grid(model, clean: str, corrupt: str, target: str, versus: str,
               quantities: Sequence[str] | None = None, batched: bool = True, *,
               max_tokens: int | None = None, block_bytes: int | None = None,
               progress: Callable[[float, str], None] | None = None) -> PatchGrid:
    """The full tracing grid: every quantity × layer × position. `batched=False` runs the same
    continuations one patch at a time (the reference the benchmark and the tests compare with).

    Size: texts longer than `max_tokens` (default MAX_TOKENS) are refused with an InputError before
    anything runs (size_limit); the continuations run in blocks of at most `block_bytes` (default
    BLOCK_BYTES), so memory does not grow with the square of the length. Every block gives the same
    numbers as one batch of all (see the module's docstring). `progress(fraction, what)` is called
    before each block: a caller can stop the work there by raising."""
    qs = _quantities(model, quantities)
    _, why = size_limit(model, clean, corrupt, max_tokens)
    if why:
        raise InputError(why)
    p = _prepare(model, clean, corrupt, target, versus)
    cells = _grid_cells(p, qs)
    if batched:
        L, _, T, H = p.h.shape
        blocks = _blocks(cells, T, H, p.lm.embedding.weight.shape[1],
                         BLOCK_BYTES if block_bytes is None else int(block_bytes))
        vals = np.empty(len(cells), np.float32)
        m = None
        for b, idx in enumerate(blocks):
            if progress is not None:
                progress(b / len(blocks), f"block {b + 1} of {len(blocks)} ({len(cells):,} patched runs)")
            m = _continue(p, qs, [cells[j] for j in idx])
            vals[idx] = m[2:]
        mc, mx = float(m[0]), float(m[1])
    else:
        vals = np.empty(len(cells), np.float32)
        for j, cell_ in enumerate(cells):
            m = _continue(p, qs, [cell_])
            vals[j] = m[2]
        mc, mx = float(m[0]), float(m[1])
    if mc == mx:
        raise InputError(f"both texts give the same log P({target}) − log P({versus}); there is nothing to restore")
    L, T = p.h.shape[0], p.h.shape[2]
    return PatchGrid(p.clean_tokens, p.corrupt_tokens, target, versus, qs, mc, mx,
                     as_np(np.asarray(vals, np.float32).reshape(len(qs), L, T)))


@dataclass(frozen=True)
class PatchedRun:
    """The corrupted run with one state patched, read step by step beside the unpatched corrupted run.

    h, c: [layers, 2, tokens, units] (row 0 corrupted, row 1 patched); metric: [2] m of each row;
    restored: the fraction of the clean − corrupted difference this patch restores; layer: the patched
    layer, 1 = the bottom layer."""
    layer: int
    position: int
    quantity: str | None
    tokens: tuple[str, ...]
    h: np.ndarray = field(repr=False)
    c: np.ndarray | None = field(repr=False)
    metric: np.ndarray = field(repr=False)
    metric_clean: float = float("nan")
    restored: float = float("nan")

    def state_change(self, quantity: str = "h") -> np.ndarray:
        """[layers, tokens] ‖patched − corrupted‖ at each step."""
        a = self.h if quantity == "h" else self.c
        return np.linalg.norm(a[:, 1].astype(np.float64) - a[:, 0], axis=-1)


@torch.no_grad()
def patch_one(model, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int,
              quantity: str | None = "h") -> PatchedRun:
    """One patch, computed independently of the grid: the corrupted text is read again step by step
    with the clean value written into `quantity` of `layer` (1 = the bottom layer, -1 = the top) at
    `position` (quantity None: nothing is patched). Gives every state of the patched run, for the player."""
    index = layer_index(layer, model.config.layers)
    p = _prepare(model, clean, corrupt, target, versus)
    L, _, T, H = p.h.shape
    if quantity is not None:
        _quantities(model, [quantity])
    if not 0 <= position < T:
        raise InputError(f"position {position} is outside the texts (0 to {T - 1})")
    # Row 1 reads the corrupted text with the clean run's value copied into `quantity` at `position`;
    # a patch of c is carried on as it is (h_t stays the corrupted one). Row 0 is the unpatched twin.
    edits = [] if quantity is None else [
        StepEdit(row=1, index=index, quantity=quantity, op="copy", start=position, stop=position,
                 value=(p.h if quantity == "h" else p.c)[index, 0], recompute=False)]
    ids = torch.stack([p.ids[1], p.ids[1]])
    h, c = run_rows(p.lm, ids, edits)
    top = torch.from_numpy(np.ascontiguousarray(np.concatenate([p.h[-1, :, T - 1], h[-1, :, T - 1]])))
    m = logit_difference(p.lm, top, p.target, p.versus).numpy()
    mc, mx = float(m[0]), float(m[1])
    restored = (float(m[3]) - mx) / (mc - mx) if mc != mx else float("nan")
    return PatchedRun(index + 1, position, quantity, p.corrupt_tokens, as_np(h), as_np(c) if c is not None else None,
                      as_np(m[2:]), mc, restored)


@torch.no_grad()
def patched_trace(model, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int,
                  quantity: str | None = "h", top_k: int = 10):
    """The patched run (patch_one; `layer` 1 = the bottom layer) as a Trace, for the player: its states
    are the patched run's own
    per-step values; the gates are recomputed from them with the trace's equations (each step's
    [x_t, h_{t-1}]), and the predictions from its top layer."""
    from types import MappingProxyType

    from ..trace import LayerTrace, Trace
    run = patch_one(model, clean, corrupt, target, versus, layer, position, quantity)
    lm, cfg = model.lm, model.config
    toks = tokens_for(model, corrupt)
    ids = torch.tensor([t.id for t in toks], dtype=torch.long)
    x = lm.embedding(ids)
    layers = []
    for l in range(cfg.layers):
        hseq = torch.tensor(run.h[l, 1])
        vals = quantities_of_layer(cfg.cell, x, torch.zeros(cfg.hidden_size), hseq, layer_params(lm.rnn, l),
                                   c=run.c[l, 1] if run.c is not None else None)
        layers.append(LayerTrace(l, MappingProxyType({q: freeze(vals[q]) for q in QUANTITIES[cfg.cell]})))
        x = hseq
    k = max(1, min(top_k, cfg.vocab_size))
    stats = next_token_stats(lm.decoder(x), ids, k)
    final = (torch.tensor(run.h[:, 1, -1])[:, None],)
    if cfg.cell == "lstm":
        final = final + (torch.tensor(run.c[:, 1, -1])[:, None],)
    return Trace(text=corrupt, cell=cfg.cell, tokens=tuple(toks), layers=tuple(layers), vocab=model.tokenizer.itos,
                 topk_ids=freeze(stats.topk_ids.numpy()), topk_probs=freeze(stats.topk_logp.exp().numpy()),
                 next_prob=freeze(np.append(stats.next_logp.exp().numpy(), np.nan).astype(np.float32)),
                 next_rank=freeze(np.append(stats.rank, -1).astype(np.int64)), entropy=None,
                 first_prob=float("nan"), final_state=final, probs=None)
