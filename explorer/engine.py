"""The engine: the one place that runs the network step by step.

Everything that reads a text through the recurrent stack comes here: `trace` (every quantity of every
layer, with the fused kernel), patching, interventions, provenance and the corpus index. Nothing else
calls the kernels or repeats the gate arithmetic, so there is one set of equations to check against
`torch.nn.LSTM` / `GRU` / `RNN` (tests/test_trace.py, tests/test_analysis_causal.py).

What it holds, top to bottom:

- **Layer numbers.** `layer_index(layer, n_layers)`: the one rule for a layer a person names. Layer 1
  is the bottom layer in every CLI flag, output field and Python keyword called `layer`; a negative
  layer counts from the top (-1 = the top layer); 0 is refused. A 0-based position in a list such as
  `Trace.layers` is a list index, and is called `index`, never `layer`.
- **Layer parameters.** `layer_params(rnn, index)`: [W_ih, W_hh, b_ih, b_hh] of the layer at list
  index `index` (0 = the bottom layer, which a person calls layer 1).
- **The fused kernel.** `run_layer(kernel, x, h0, c0, params)`: one layer over a sequence with
  `torch.lstm` / `gru` / `rnn_tanh`, what a stock `nn.LSTM` etc. call.
- **The gate arithmetic**, once, for all steps (or all rows) at once (PyTorch's gate order i, f, g, o):

    LSTM  a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh            [.., 4H]
          i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
          c_t = f ⊙ c_{t-1} + i ⊙ g                             (`cell_states`, an element-wise recurrence)
          h_t = o ⊙ tanh(c_t)
    GRU   r = σ(W_ir x + b_ir + W_hr h + b_hr)   z = σ(...)   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
          h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)   (or relu, as the model's config says)

  `gate_values(cell, x, h_prev, params)` computes the gates of every row from its input x [N, in] and
  the state before it h_prev [N, H]; rows may be the steps of one run (trace, the patched run) or the
  rows of one step (an intervention).
- **Whole layers.** `run_layers(lm, ids, state)`: the stack over one text, every quantity kept.
- **Rows with per-step edits.** `run_rows(lm, ids, edits)`: several runs side by side, one kernel call
  per step, so that an edit can change a state after any step of any layer and the run reads on from
  the changed state. `StepEdit` names the edits (set/clamp, add, scale, or copy from another run).
- **Next-token statistics.** `next_token_stats(logits, ids, k)`: top-k, the log-normaliser and the
  rank of the actual next token, without materialising log_softmax.

Why rows, and why at least two. The fused CPU kernel takes a matrix-vector path for a batch of one,
whose float rounding differs from the matrix-matrix path by ~1e-6. With two rows or more, every row's
numbers are the same whatever the other rows hold and however many there are, and a run split into
pieces (a prefix, single steps, a rest) gives the same numbers as the run in one call. Both properties
are checked by tests/test_analysis_causal.py. So every run of `run_rows` has at least `MIN_ROWS` rows
(a lone row is doubled), and a baseline computed beside a changed run is its exact reference: an edit
that changes nothing changes no bit, and a patch that copies a state onto itself restores exactly 0.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from .errors import InputError, PositionError

#: the quantities each cell exposes, every one an array [tokens, units]
QUANTITIES = {"lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n"), "rnn": ("h",)}
#: the LSTM gates, in PyTorch's order
LSTM_GATES = ("i", "f", "g", "o")
#: every run of `run_rows` has at least this many rows (see the module's docstring)
MIN_ROWS = 2


@contextlib.contextmanager
def torch_threads(n: int | None = 1):
    """Run the block with `n` torch threads (None: leave them as they are), then restore the count.

    The per-step loops (the corpus index, probes) default to one thread per process: in a batch-1
    recurrent loop, torch's threads spin against each other under load (7-20x slower than
    OMP_NUM_THREADS=1 on this project's 2-core machine). Parallelism comes from processes."""
    if n is None or n < 1:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def freeze(a: np.ndarray) -> np.ndarray:
    """`a`, made read-only (the arrays of frozen results)."""
    a.setflags(write=False)
    return a


def as_np(a) -> np.ndarray:
    """A read-only contiguous NumPy copy-or-view of `a`."""
    return freeze(np.ascontiguousarray(a))


# ------------------------------------------------------------------------------------- layer numbers
#: What every --help that takes a layer says, and what the errors below repeat.
LAYER_HELP = "1 = the bottom layer"
ZERO_LAYER = "layers are numbered from 1, the bottom layer"


def layer_flag(s: str, *, negative: bool = False) -> int:
    """The type of every --layer flag: 1 = the bottom layer; 0 is refused, and so are negative layers
    unless `negative` (-1 = the top). Raises argparse's ArgumentTypeError so that the command line
    prints the rule in one line."""
    import argparse
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a layer number ({LAYER_HELP})") from None
    if v == 0 or (v < 0 and not negative):
        raise argparse.ArgumentTypeError(ZERO_LAYER if v == 0 else f"{s}: {ZERO_LAYER}")
    return v


def check_layer(layer, *, negative: bool = True) -> int:
    """`layer` as an int, refused with an InputError when it is no layer number at all: 0 (layers are
    numbered from 1), not an integer, or negative where `negative` is False. The model's layer count is
    not needed; `layer_index` also checks the layer is one the model has."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise InputError(f"a layer is a whole number ({LAYER_HELP}), not {layer!r}")
    layer = int(layer)
    if layer == 0:
        raise InputError(ZERO_LAYER)
    if layer < 0 and not negative:
        raise InputError(f"layer {layer}: {ZERO_LAYER}")
    return layer


def layer_index(layer: int | None, n_layers: int, *, negative: bool = True) -> int:
    """The 0-based list index (into `Trace.layers`, the engine's per-layer lists) of `layer` as a person
    numbers it: 1 = the bottom layer, `n_layers` = the top one; a negative layer counts from the top
    (-1 = the top layer) where `negative`; None = the top layer. An InputError (a PositionError) says
    why otherwise: 0 ("layers are numbered from 1, the bottom layer") or a layer the model lacks."""
    if layer is None:
        return n_layers - 1
    layer = check_layer(layer, negative=negative)
    if not -n_layers <= layer <= n_layers:
        raise PositionError(f"layer {layer} does not exist: the model has {n_layers} layer"
                            f"{'s' if n_layers != 1 else ''} ({LAYER_HELP}"
                            f"{', -1 = the top' if negative else ''})")
    return layer - 1 if layer > 0 else n_layers + layer


def layer_number(index: int) -> int:
    """The layer a person reads (1 = the bottom) of list index `index` (0 = the bottom)."""
    return int(index) + 1


# ---------------------------------------------------------------------------------- layer parameters
def layer_params(rnn: torch.nn.Module, index: int) -> list[torch.Tensor]:
    """[W_ih, W_hh, b_ih, b_hh] of the layer at list index `index` (0 = the bottom layer)."""
    return [getattr(rnn, f"{n}_l{index}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


# -------------------------------------------------------------------------------------- the kernel
def kernel_of(config) -> str:
    """The kernel a model's layers run: "lstm", "gru", "rnn_tanh" or "rnn_relu"."""
    if config.cell == "rnn":
        return f"rnn_{getattr(config, 'nonlinearity', 'tanh')}"
    return config.cell


_KERNELS = {"gru": torch.gru, "rnn": torch.rnn_tanh, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def run_layer(kernel: str, x: torch.Tensor, h0: torch.Tensor, c0, params):
    """The fused kernel for one layer: x [B, T, in], h0/c0 [1, B, H] -> out [B, T, H], h_n, c_n
    (c_n None for GRU/RNN). `kernel` is `kernel_of(config)` ("rnn" alone means tanh)."""
    if kernel == "lstm":
        out, hn, cn = torch.lstm(x, (h0, c0), params, True, 1, 0.0, False, False, True)
        return out, hn, cn
    fn = _KERNELS[kernel]
    out, hn = fn(x, h0, params, True, 1, 0.0, False, False, True)
    return out, hn, None


def run_layer_from_zero(lm, index: int, x: torch.Tensor) -> torch.Tensor:
    """Layer `index` of the stack on x [B, T, in] from a zero state; returns its outputs [B, T, H]."""
    cfg = lm.config
    h0 = torch.zeros(1, x.shape[0], cfg.hidden_size, dtype=x.dtype)
    c0 = h0.clone() if cfg.cell == "lstm" else None
    out, _, _ = run_layer(kernel_of(cfg), x, h0, c0, layer_params(lm.rnn, index))
    return out


# ---------------------------------------------------------------------------- the gate arithmetic
def preactivations(x: torch.Tensor, h_prev: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
    """W_ih x + b_ih and W_hh h_prev + b_hh for every row, [N, G*H] each (kept apart: the GRU's n
    needs them apart)."""
    w_ih, w_hh, b_ih, b_hh = params
    return torch.addmm(b_ih, x, w_ih.t()), torch.addmm(b_hh, h_prev, w_hh.t())


def gate_values(cell: str, x: torch.Tensor, h_prev: torch.Tensor | None, params,
                shifted: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The gates of every row from its input x [N, in] and the state before it h_prev [N, H]:
    i, f, g, o for an LSTM, r, z, n for a GRU, nothing for a plain RNN. Tensors [N, H].
    shifted=(h0 [H], hseq [N, H]) gives the rows of one run instead of h_prev: row t read h_{t-1},
    h0 before the first step (no [h0, hseq[:-1]] copy is made for an LSTM)."""
    if shifted is not None and cell != "lstm":
        h_prev, shifted = torch.cat([shifted[0][None], shifted[1][:-1]], 0), None
    H = (h_prev if shifted is None else shifted[1]).shape[-1]
    if cell == "lstm":
        # Gate by gate, two GEMMs into one contiguous [N, H] block each (W_ih x + (b_ih + b_hh), then
        # + W_hh h_{t-1} in place), and the activation in place: no [x, h] concatenation, no [N, 4H]
        # block to copy each gate out of. Fresh memory is dear here (page faults cost more than the
        # arithmetic on a 1,000-token text), so the trace allocates each gate once, as it keeps it.
        w_ih, w_hh, b_ih, b_hh = params
        out = {}
        for j, q in enumerate(LSTM_GATES):
            rows = slice(j * H, (j + 1) * H)
            a = torch.addmm(b_ih[rows] + b_hh[rows], x, w_ih[rows].t())
            if shifted is None:
                a.addmm_(h_prev, w_hh[rows].t())
            else:                                   # row t reads h_{t-1}: h0 for row 0, hseq[t-1] after
                h0, hseq = shifted
                a[1:].addmm_(hseq[:-1], w_hh[rows].t())
                a[:1].addmm_(h0[None], w_hh[rows].t())
            out[q] = a.tanh_() if q == "g" else a.sigmoid_()
        return out
    if cell == "gru":   # PyTorch order r, z, n: n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        a_x, a_h = preactivations(x, h_prev, params)
        rz = torch.sigmoid(a_x[:, :2 * H] + a_h[:, :2 * H])
        r = rz[:, :H]
        return {"r": r, "z": rz[:, H:], "n": torch.tanh(a_x[:, 2 * H:] + r * a_h[:, 2 * H:])}
    return {}


def cell_states(i: np.ndarray, f: np.ndarray, g: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t for every step, from c0 [H]; [T, H] float32. The one
    sequential part of a trace: element-wise and cheap, run in NumPy."""
    c = np.multiply(i, g)                     # i_t ⊙ g_t, then + f_t ⊙ c_{t-1} row by row, in place
    tmp = np.empty_like(c[0]) if len(c) else None
    prev = c0
    for t in range(len(c)):
        np.multiply(f[t], prev, out=tmp)
        c[t] += tmp
        prev = c[t]
    return c


# -------------------------------------------------------------------------------- whole layers
def normalize_state(cell: str, state):
    """Accept (h, c) for an LSTM and h or (h,) for GRU/RNN; tensors [layers, 1, units]."""
    if cell == "lstm":
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise InputError("an LSTM state is a pair (h, c)")
        return tuple(state)
    if isinstance(state, (tuple, list)):
        if len(state) != 1:
            raise InputError(f"a {cell.upper()} state is a single tensor h")
        state = state[0]
    return state


@torch.no_grad()
def run_layers(lm, ids: torch.Tensor, state=None):
    """Run the recurrent stack on ids [T]; return per-layer dicts of [T, H] float32 arrays (every
    quantity of `QUANTITIES[cell]`), the top layer's outputs [T, H] (a tensor) and the final state."""
    cfg = lm.config
    cell, L = cfg.cell, cfg.layers
    x = lm.embedding(ids).unsqueeze(0)           # [1, T, E]
    state = normalize_state(cell, state) if state is not None else lm.init_state(1)
    state = tuple(s.to(x.device) for s in state) if isinstance(state, tuple) else state.to(x.device)
    h_all, c_all = (state if cell == "lstm" else (state, None))
    layers, hns, cns = [], [], []
    for l in range(L):
        params = layer_params(lm.rnn, l)
        h0 = h_all[l:l + 1].contiguous()
        c0 = c_all[l:l + 1].contiguous() if c_all is not None else None
        out, hn, cn = run_layer(kernel_of(cfg), x, h0, c0, params)
        hns.append(hn)
        if cn is not None:
            cns.append(cn)
        layers.append(quantities_of_layer(cell, x[0], h0[0, 0], out[0], params,
                                          c0=c0[0, 0].cpu().numpy() if c0 is not None else None))
        x = out
    final = (torch.cat(hns, 0), torch.cat(cns, 0)) if cell == "lstm" else torch.cat(hns, 0)
    return layers, x[0], final


@torch.no_grad()
def run_layers_batch(lm, rows: Sequence[torch.Tensor]) -> list[tuple]:
    """Several texts (ids [T_r] each, non-empty) as rows of one batch through the stack, each from a
    zero state: for each row what `run_layers` gives for it alone (within float rounding: a batch
    of rows takes the kernel's matrix-matrix path). Rows are right-padded; a row's padding comes
    after its last step and changes nothing before it."""
    if len(rows) == 1:
        return [run_layers(lm, rows[0])]
    cfg = lm.config
    lens = [len(r) for r in rows]
    ids = torch.zeros(len(rows), max(lens), dtype=torch.long, device=rows[0].device)
    for j, r in enumerate(rows):
        ids[j, :len(r)] = r
    x = lm.embedding(ids)                                   # [B, T, E]
    h0 = torch.zeros(1, len(rows), cfg.hidden_size, device=x.device)
    c0 = h0.clone() if cfg.cell == "lstm" else None
    zero_h = torch.zeros(cfg.hidden_size, device=x.device)
    zero_c = np.zeros(cfg.hidden_size, np.float32)
    per_row: list[list[dict]] = [[] for _ in rows]
    for l in range(cfg.layers):
        params = layer_params(lm.rnn, l)
        out, _, _ = run_layer(kernel_of(cfg), x, h0, c0, params)
        for j, n in enumerate(lens):
            per_row[j].append(quantities_of_layer(cfg.cell, x[j, :n], zero_h, out[j, :n], params, c0=zero_c))
        x = out
    result = []
    for j, n in enumerate(lens):
        h_n = torch.stack([torch.from_numpy(v["h"][n - 1]) for v in per_row[j]])[:, None].to(x.device)
        final = (h_n, torch.stack([torch.from_numpy(v["c"][n - 1]) for v in per_row[j]])[:, None].to(x.device)) \
            if cfg.cell == "lstm" else h_n
        result.append((per_row[j], x[j, :n], final))
    return result


@torch.no_grad()
def run_block(lm, ids: torch.Tensor, state, keep: dict[int, Sequence[str]], cache: dict | None = None):
    """A block of steps for rows that each carry their own state (the corpus index's batched build).

    ids [B, T] (B >= MIN_ROWS for numbers that do not depend on the other rows; a row that ends inside
    the block is right-padded: padding comes after its last step and changes nothing before it);
    state: (h [L, B, H], c [L, B, H]) for an LSTM, h [L, B, H] otherwise (rows that start a text hold
    zeros). `keep`: {layer index (0 = the bottom): quantities to return}. Returns ({(index, q): float32
    tensor [B, T, H]}, final state after the block's last step).

    Every layer runs the fused kernel (`run_layer`). The gates it does not return are computed
    afterwards for all steps at once from [x_t, h_{t-1}] (`gate_values`; for an LSTM that keeps only c,
    just i, f and g, in one GEMM), and c by the element-wise recurrence `c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t`
    from the block's c0. `cache` (a dict kept across calls with the same model) holds the bottom
    layer's input term W_ih e + b of every vocabulary entry, so that its gates need only W_hh h_{t-1}."""
    cfg = lm.config
    cell, B, T = cfg.cell, ids.shape[0], ids.shape[1]
    x = lm.embedding(ids)                                    # [B, T, E]
    h_all, c_all = (state if cell == "lstm" else (state, None))
    out_q, hns, cns = {}, [], []
    for l in range(cfg.layers):
        params = layer_params(lm.rnn, l)
        h0 = h_all[l:l + 1].contiguous()
        c0 = c_all[l:l + 1].contiguous() if c_all is not None else None
        want = tuple(keep.get(l, ()))
        out, hn, cn = run_layer(kernel_of(cfg), x, h0, c0, params)
        H = out.shape[-1]
        h_prev = torch.cat([h0[0][:, None], out[:, :-1]], 1).reshape(B * T, H) \
            if any(q != "h" for q in want) else None
        if cell == "lstm" and want and set(want) <= {"h", "c"} and "c" in want:
            w_ih, w_hh, b_ih, b_hh = params
            ifg = slice(0, 3 * H)                            # PyTorch's order i, f, g, o
            if l == 0 and cache is not None:
                table = cache.get("ifg0")
                if table is None:
                    table = cache["ifg0"] = torch.addmm(b_ih[ifg] + b_hh[ifg], lm.embedding.weight, w_ih[ifg].t())
                a = table[ids.reshape(-1)].addmm_(h_prev, w_hh[ifg].t())
            else:
                a = torch.addmm(b_ih[ifg] + b_hh[ifg], x.reshape(B * T, -1), w_ih[ifg].t())
                a.addmm_(h_prev, w_hh[ifg].t())
            a = a.reshape(B, T, 3 * H)
            a[..., :2 * H].sigmoid_()
            a[..., 2 * H:].tanh_()
            c = a[..., :H] * a[..., 2 * H:]                   # i ⊙ g, then + f ⊙ c_{t-1} step by step
            f = a[..., H:2 * H]
            prev = c0[0]
            for t in range(T):
                c[:, t].addcmul_(f[:, t], prev)
                prev = c[:, t]
            out_q[(l, "c")] = c
        elif any(q != "h" for q in want):
            gates = gate_values(cell, x.reshape(B * T, -1), h_prev, params)
            if cell == "lstm" and "c" in want:
                c = gates["i"] * gates["g"]
                f = gates["f"].reshape(B, T, H)
                c = c.reshape(B, T, H)
                prev = c0[0]
                for t in range(T):
                    c[:, t].addcmul_(f[:, t], prev)
                    prev = c[:, t]
                gates["c"] = c
            out_q.update({(l, q): gates[q].reshape(B, T, H) for q in want if q != "h"})
        if "h" in want:
            out_q[(l, "h")] = out
        hns.append(hn)
        if cn is not None:
            cns.append(cn)
        x = out
    final = (torch.cat(hns, 0), torch.cat(cns, 0)) if cell == "lstm" else torch.cat(hns, 0)
    return out_q, final


def quantities_of_layer(cell: str, x: torch.Tensor, h0: torch.Tensor, hseq: torch.Tensor, params,
                        c0: np.ndarray | None = None, c: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every quantity of one layer over one text, float32 [T, H] arrays, from its inputs x [T, in],
    the state it started from h0 [H] and its outputs hseq [T, H]: the gates for all steps at once
    from [x_t, h_{t-1}], and for an LSTM the cell states — `c` when given (a run's own, e.g. a
    patched one), else the recurrence from c0."""
    vals = {"h": hseq.cpu().numpy()}
    if cell in ("lstm", "gru"):
        gates = {q: v.cpu().numpy() for q, v in gate_values(cell, x, None, params, shifted=(h0, hseq)).items()}
        if cell == "lstm" and c is None:
            c = cell_states(gates["i"], gates["f"], gates["g"], c0)
        if c is not None:
            vals["c"] = c
        vals.update(gates)
    return {q: np.ascontiguousarray(vals[q], dtype=np.float32) for q in QUANTITIES[cell]}


# --------------------------------------------------------------------------- rows, with edits
def pad_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Repeat the last row until there are MIN_ROWS rows; return the batch and the real row count."""
    n = x.shape[0]
    if n >= MIN_ROWS:
        return x, n
    return torch.cat([x] + [x[-1:]] * (MIN_ROWS - n), 0), n


def zero_state(lm, rows: int):
    """A zero state (h, c) [1, rows, H] (c None for GRU/RNN)."""
    z = torch.zeros(1, rows, lm.config.hidden_size)
    return z, (z.clone() if lm.config.cell == "lstm" else None)


def step(kernel: str, x_t: torch.Tensor, h: torch.Tensor, c, params):
    """One step of one layer with the fused kernel: x_t [R, in], h/c [1, R, H] -> (h_t, c_t)."""
    _, hn, cn = run_layer(kernel, x_t[:, None, :].contiguous(), h.contiguous(),
                          c.contiguous() if c is not None else None, params)
    return hn, cn


#: edit(index, t, x_t [R, in], (h_prev, c_prev), (h_t, c_t), params) -> (h_t, c_t); states [1, R, H]
EditFn = Callable[..., tuple]

#: what StepEdit can do to the chosen units
EDIT_OPS = ("set", "add", "scale", "clamp", "copy")


@dataclass(frozen=True)
class StepEdit:
    """One named change to a run, applied by `run_rows` after a step of one layer.

    row: which row of the batch is changed; index: the layer's list index (0 = the bottom layer);
    quantity: h, c or an LSTM gate (i, f, g, o); units: the units changed (None: all);
    op: "set" (write `value`), "add", "scale" (multiply by `value`), "clamp" (value = (low, high)),
    or "copy" (value: a tensor [T, units] of another run's states, step t's row written at step t);
    start..stop: the steps (inclusive; stop None = to the end).
    recompute: when c or a gate changes, recompute c_t and h_t = o_t ⊙ tanh(c_t) from it (an
    intervention); off, only the changed quantity is carried on (a patch of c leaves h_t as it was).
    """
    row: int
    index: int
    quantity: str
    units: tuple[int, ...] | None = None
    op: str = "set"
    value: object = 0.0
    start: int = 0
    stop: int | None = None
    recompute: bool = True

    def __post_init__(self):
        if self.op not in EDIT_OPS:      # apply() would otherwise read an unknown op as a clamp
            raise InputError(f"an edit's op is one of {', '.join(EDIT_OPS)}, not {self.op!r}")

    def active(self, t: int, T: int) -> bool:
        stop = T - 1 if self.stop is None else self.stop
        return self.start <= t <= stop

    @property
    def unit_index(self):
        return slice(None) if self.units is None else list(self.units)

    def apply(self, v: torch.Tensor, t: int) -> torch.Tensor:
        """The new values of the chosen units at step t, from their old values v [..., units]."""
        val = self.value
        if self.op == "copy":
            return torch.as_tensor(np.asarray(val[t])[self.unit_index], dtype=v.dtype).expand_as(v).clone()
        if isinstance(val, (tuple, list, np.ndarray)):
            val = torch.tensor(np.asarray(val, np.float64), dtype=v.dtype)
        if self.op == "set":
            return torch.zeros_like(v) + val
        if self.op == "add":
            return v + val
        if self.op == "scale":
            return v * val
        lo, hi = val
        return v.clamp(lo, hi)


def editor(edits: Sequence[StepEdit], T: int) -> EditFn:
    """The edit function `run_rows` calls after each step, from named edits over a text of T steps.

    The changes of one step are made first (c and the gates), then — for edits that recompute —
    c_t and h_t are recomputed where a value moved, and the h changes come last, so that they are
    what the run reads on from. Only the units whose value actually changed are recomputed; the
    others keep the kernel's numbers, so an edit that writes a unit's own value changes no bit."""
    by_layer: dict[int, list[StepEdit]] = {}
    for e in edits:
        by_layer.setdefault(e.index, []).append(e)

    def edit(index, t, x_t, prev, new, params):
        (h_prev, c_prev), (h, c) = prev, new
        todo = [e for e in by_layer.get(index, ()) if e.active(t, T)]
        if not todo:
            return h, c
        h, c0 = h.clone(), c
        plain = [e for e in todo if e.quantity == "c" and not e.recompute]
        mixed = [e for e in todo if e.quantity != "h" and e not in plain]
        if plain or mixed:
            c = c0.clone()
        for e in plain:                               # c carried on as given; h_t stays
            c[0, e.row, e.unit_index] = e.apply(c[0, e.row, e.unit_index], t)
        if mixed:
            g0 = gate_values("lstm", x_t, h_prev[0], params)
            g = {q: v.clone() for q, v in g0.items()}
            c_before = c.clone()
            for e in mixed:
                u = e.unit_index
                if e.quantity == "c":
                    c[0, e.row, u] = e.apply(c[0, e.row, u], t)
                else:
                    g[e.quantity][e.row, u] = e.apply(g[e.quantity][e.row, u], t)
            gate_moved = torch.zeros_like(c[0], dtype=torch.bool)
            for q in LSTM_GATES:
                gate_moved |= g[q] != g0[q]
            if bool(gate_moved.any()):            # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t from the changed gates
                c[0] = torch.where(gate_moved, g["f"] * c_prev[0] + g["i"] * g["g"], c[0])
            moved = gate_moved | (c[0] != c_before[0])
            h[0] = torch.where(moved, g["o"] * torch.tanh(c[0]), h[0])   # h_t = o_t ⊙ tanh(c_t)
        for e in todo:
            if e.quantity == "h":
                h[0, e.row, e.unit_index] = e.apply(h[0, e.row, e.unit_index], t)
        return h, c

    return edit


@torch.no_grad()
def run_rows(lm, ids: torch.Tensor, edits: Sequence[StepEdit] | EditFn | None = None,
             edit_layers: set | None = None):
    """Read token rows ids [R, T] (R >= 1) step by step; return (h [L, R, T, H], c [L, R, T, H] or
    None), float32 arrays.

    `edits` (named StepEdits, or an edit function) change the states after a step of the layers
    they name (an edit function: of `edit_layers`, all layers when None); the run then reads on from
    the changed states (the same layer's next step and the layer above)."""
    cell, L = lm.config.cell, lm.config.layers
    kernel = kernel_of(lm.config)
    x_all, R = pad_rows(lm.embedding(ids))
    T = x_all.shape[1]
    edit = edits
    if edits is not None and not callable(edits):
        edits = list(edits)
        edit, edit_layers = editor(edits, T), {e.index for e in edits}
    hs, cs = [], []
    x = x_all
    for l in range(L):
        params = layer_params(lm.rnn, l)
        h, c = zero_state(lm, x.shape[0])
        h_seq = torch.empty(x.shape[0], T, lm.config.hidden_size)
        c_seq = torch.empty_like(h_seq) if cell == "lstm" else None
        for t in range(T):
            hn, cn = step(kernel, x[:, t], h, c, params)
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


# ------------------------------------------------------------------------ next-token statistics
@dataclass(frozen=True)
class NextTokenStats:
    """What the decoder says after each row: topk_ids / topk_logp [T, k]; log_norm [T] the
    log-normaliser logsumexp(logits); next_logp [T-1] log P(actual token t+1 | ..t); rank [T-1] its
    rank (1 = the most probable)."""
    topk_ids: torch.Tensor
    topk_logp: torch.Tensor
    log_norm: torch.Tensor
    next_logp: torch.Tensor
    rank: np.ndarray


#: rows of logits exponentiated at a time by _log_norm: a [64, vocabulary] buffer stays in cache
_LSE_ROWS = 64


def _log_norm(logits: torch.Tensor, mx: torch.Tensor) -> torch.Tensor:
    """logsumexp of each row of logits [T, V], shifted by the row's maximum mx [T]. Row blocks go
    through one small reused buffer: a fresh [T, V] temporary (40 MB at 1,000 tokens of a
    10,000-word model) cost more in page faults than the exponentials themselves. The same
    operations in the same order as on the whole matrix, so the same bits."""
    T, V = logits.shape
    out = torch.empty(T, dtype=logits.dtype, device=logits.device)
    buf = torch.empty(min(T, _LSE_ROWS), V, dtype=logits.dtype, device=logits.device)
    for a in range(0, T, _LSE_ROWS):
        b = min(T, a + _LSE_ROWS)
        blk = buf[:b - a]
        torch.sub(logits[a:b], mx[a:b, None], out=blk)
        torch.sum(blk.exp_(), 1, out=out[a:b])
    return out.log_().add_(mx)


def next_token_stats(logits: torch.Tensor, ids: torch.Tensor, k: int) -> NextTokenStats:
    """Top-k, the log-normaliser and the rank of the next token from logits [T, V] and the ids [T]
    read, working on the logits and one log-normaliser per row instead of materialising log_softmax:
    log P(w) = logit_w - logsumexp(logits)."""
    tl, ti = logits.topk(k, dim=-1)
    # log-sum-exp shifted by each row's maximum, which the top-k has just found (torch.logsumexp
    # would look for it again): one pass fewer over [tokens, vocab].
    mx = tl[:, 0]
    lse = _log_norm(logits, mx)                                  # [T]
    nxt = ids[1:]
    l_next = logits[:-1].gather(1, nxt[:, None])[:, 0]
    # rank = 1 + #tokens more probable. Where the next token is in the top k its rank is its place
    # there; only the other rows need a pass over the whole vocabulary.
    hit = ti[:-1] == nxt[:, None]
    rank = torch.where(hit.any(1), hit.int().argmax(1) + 1, 0).cpu().numpy()
    miss = np.flatnonzero(rank == 0)
    if len(miss):
        # NumPy's count of a comparison is a single vectorised pass; torch's bool .sum() converts to
        # int64 first and costs several times more (benchmarks/trace_speed.py).
        # Rows in blocks through one reused boolean buffer (a fresh [T, V] one cost more in page
        # faults than the comparisons); blocks of the missed rows only when they are few.
        ln, lt = logits.cpu().numpy(), l_next.cpu().numpy()
        rows = np.arange(len(nxt)) if 2 * len(miss) > len(nxt) else miss
        buf = np.empty((min(len(rows), _LSE_ROWS), ln.shape[1]), bool)
        counts = np.empty(len(rows), np.int64)
        for a in range(0, len(rows), _LSE_ROWS):
            r = rows[a:a + _LSE_ROWS]
            blk = buf[:len(r)]
            np.greater(ln[r] if rows is miss else ln[r[0]:r[-1] + 1], lt[r, None], out=blk)
            counts[a:a + len(r)] = np.count_nonzero(blk, axis=1)
        rank[rows] = np.where(rank[rows] == 0, counts + 1, rank[rows])
    return NextTokenStats(ti, tl - lse[:, None], lse, l_next - lse[:-1], rank)


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
