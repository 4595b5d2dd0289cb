"""Runs of several token rows side by side through the engine's own layer runner, so that a changed
run and its unchanged twin can be compared number for number.

Why rows, and why at least two. The fused CPU kernel (`torch.lstm`, reached through
`explorer.trace._run_layer`) takes a matrix-vector path for a batch of one, whose float rounding
differs from the matrix-matrix path by ~1e-6. With two rows or more, every row's numbers are the
same whatever the other rows hold and however many there are, and a run split into pieces
(a prefix, single steps, a rest) gives the same numbers as the run in one call. Both properties
are checked by tests/test_analysis_causal.py. So every run here has at least `MIN_ROWS` rows
(a lone row is doubled), and a baseline computed beside a changed run is its exact reference: an
intervention that changes nothing changes no bit, and a patch that copies a state onto itself
restores exactly 0.

`run_rows` steps through time one step per kernel call (so the cell state c_t of every step is the
kernel's own, which the fused call over many steps does not return) and lets an `edit` function
change the state after any step of any layer before the run reads on.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..trace import _layer_params, _run_layer

MIN_ROWS = 2

#: edit(layer, t, x_t [R, in], (h_prev, c_prev), (h_t, c_t), params) -> (h_t, c_t); states [1, R, H]
Edit = Callable[..., tuple]


def pad_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Repeat the last row until there are MIN_ROWS rows; return the batch and the real row count."""
    n = x.shape[0]
    if n >= MIN_ROWS:
        return x, n
    return torch.cat([x] + [x[-1:]] * (MIN_ROWS - n), 0), n


def zero_state(lm, rows: int):
    H = lm.config.hidden_size
    z = torch.zeros(1, rows, H)
    return z, (z.clone() if lm.config.cell == "lstm" else None)


def step(cell: str, x_t: torch.Tensor, h: torch.Tensor, c, params):
    """One step of one layer with the fused kernel: x_t [R, in], h/c [1, R, H] -> (h_t, c_t)."""
    _, hn, cn = _run_layer(cell, x_t[:, None, :].contiguous(), h.contiguous(),
                           c.contiguous() if c is not None else None, params)
    return hn, cn


def gates(x_t: torch.Tensor, h_prev: torch.Tensor, params) -> dict[str, torch.Tensor]:
    """The LSTM gates i, f, g, o at one step from x_t [R, in] and h_{t-1} [R, H] (PyTorch's order)."""
    w_ih, w_hh, b_ih, b_hh = params
    a = torch.addmm(b_ih, x_t, w_ih.t()) + torch.addmm(b_hh, h_prev, w_hh.t())
    i, f, g, o = a.chunk(4, 1)
    return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "g": torch.tanh(g), "o": torch.sigmoid(o)}


@torch.no_grad()
def run_rows(lm, ids: torch.Tensor, edit: Edit | None = None, edit_layers: set | None = None):
    """Read token rows ids [R, T] (R >= 1) step by step; return (h [L, R, T, H], c [L, R, T, H] or
    None), float32 arrays.

    `edit` is called after every step of the layers in `edit_layers` (all layers when None) and may
    return changed states, which the run then reads on from (the same layer's next step and the
    layer above)."""
    cell, L = lm.config.cell, lm.config.layers
    x_all, R = pad_rows(lm.embedding(ids))
    T = x_all.shape[1]
    hs, cs = [], []
    x = x_all
    for l in range(L):
        params = _layer_params(lm.rnn, l)
        h, c = zero_state(lm, x.shape[0])
        h_seq = torch.empty(x.shape[0], T, lm.config.hidden_size)
        c_seq = torch.empty_like(h_seq) if cell == "lstm" else None
        for t in range(T):
            hn, cn = step(cell, x[:, t], h, c, params)
            if edit is not None and (edit_layers is None or l in edit_layers):
                hn, cn = edit(l, t, x[:, t], (h, c), (hn, cn), params)
            h_seq[:, t] = hn[0]
            if c_seq is not None:
                c_seq[:, t] = cn[0]
            h, c = hn, cn
        hs.append(h_seq)
        cs.append(c_seq)
        x = h_seq
    h_out = torch.stack(hs)[:, :R].numpy()
    c_out = torch.stack(cs)[:, :R].numpy() if cell == "lstm" else None
    return h_out, c_out


@torch.no_grad()
def log_probs(lm, h_top: np.ndarray) -> np.ndarray:
    """log P(next token) [R, T, V] float32 from top-layer states h_top [R, T, H] (rows padded as above)."""
    h, R = pad_rows(torch.as_tensor(np.asarray(h_top)))
    return torch.log_softmax(lm.decoder(h), -1)[:R].numpy()


def logit_difference(lm, h: torch.Tensor, target: int, versus: int) -> torch.Tensor:
    """log P(target) − log P(versus) = logit_target − logit_versus (the normaliser cancels), from
    top-layer states h [..., H]. An element-wise product and a sum over units, row by row: a row's
    value does not depend on how many rows there are."""
    w = lm.decoder.weight
    b = lm.decoder.bias
    return (h * (w[target] - w[versus])).sum(-1) + (b[target] - b[versus])


def as_np(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a
