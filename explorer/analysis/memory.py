"""Memory: where the LSTM's cell state came from, how long units remember, and how fast the first
word's influence fades (LSTM vs vanilla RNN).

Exact provenance. The cell update c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t unrolls to

    c_t = Σ_{k≤t} (Π_{j=k+1..t} f_j) ⊙ i_k ⊙ g_k  +  (Π_{j≤t} f_j) ⊙ c_0

so the part of c_t that token k wrote and that survived until now is
    part_{k→t} = retention_{k→t} ⊙ write_k,   retention_{k→t} = Π_{j=k+1..t} f_j,   write_k = i_k ⊙ g_k.
These parts sum to c_t exactly (computed in float64 from the trace's gates). Rows of the trace are
steps (row 0 is the boundary <eos> when the text was read from a fresh state), so "token k" means
row k of the trace.

Layers: every `layer` keyword is numbered as the app numbers layers, 1 = the bottom layer, with -1 (the
default) the top one; 0 is refused (explorer.engine.layer_index). Results' `layer` fields likewise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..engine import layer_index, run_layer_from_zero
from ._common import tokens_for
from ..errors import InputError, PositionError


def _lstm_layer(tr, layer: int):
    if tr.cell != "lstm":
        raise InputError(f"cell-state provenance needs an LSTM; this trace is a {tr.cell.upper()}")
    return tr.layers[layer_index(layer, len(tr.layers))]


def _c0(lay, c0) -> np.ndarray:
    """The initial cell state of LayerTrace `lay`: zeros, or its row of a state (h, c) / its own [units]."""
    U = lay.c.shape[1]
    if c0 is None:
        return np.zeros(U)
    if isinstance(c0, (tuple, list)):          # an LSTM state (h, c) [layers, 1, units]
        c0 = c0[1][lay.index, 0]
    c0 = c0.detach().cpu().numpy() if isinstance(c0, torch.Tensor) else np.asarray(c0)
    c0 = np.asarray(c0, np.float64).reshape(-1)
    if c0.shape != (U,):
        raise InputError(f"c0 must have {U} units, not shape {c0.shape}")
    return c0


@dataclass(frozen=True)
class Provenance:
    """Where c_step of one layer came from. float64 arrays."""
    tokens: tuple[str, ...]          # tokens 0..step
    layer: int                       # 1 = the bottom layer
    step: int
    parts: np.ndarray = field(repr=False)       # [step+1, units]: part of c_step written at row k
    initial: np.ndarray = field(repr=False)     # [units]: part of c_step left of c_0
    retention: np.ndarray = field(repr=False)   # [step+1, units]: Π_{j=k+1..step} f_j
    write: np.ndarray = field(repr=False)       # [step+1, units]: i_k ⊙ g_k
    c: np.ndarray = field(repr=False)           # [units]: c_step from the trace (float32 values)

    @property
    def total(self) -> np.ndarray:
        """Σ parts + initial: equals c (up to float32 rounding of the trace)."""
        return self.parts.sum(0) + self.initial

    def unit_frame(self, unit: int):
        """One row per token for one unit: write, retention, surviving part and its share of |c|."""
        import pandas as pd
        p = self.parts[:, unit]
        denom = np.abs(p).sum() + abs(self.initial[unit])
        return pd.DataFrame({"position": np.arange(self.step + 1), "token": list(self.tokens),
                             "write": self.write[:, unit], "retention": self.retention[:, unit],
                             "part": p, "share": p / denom if denom > 0 else np.zeros_like(p)})

    def layer_frame(self):
        """One row per token: ‖surviving part‖ over the layer's units, and the signed sum."""
        import pandas as pd
        return pd.DataFrame({"position": np.arange(self.step + 1), "token": list(self.tokens),
                             "norm": np.linalg.norm(self.parts, axis=1), "sum": self.parts.sum(1)})


def cell_provenance(tr, step: int | None = None, layer: int = -1, c0=None) -> Provenance:
    """Exact decomposition of c_step (one LSTM layer) into the surviving writes of each earlier row.

    tr: a Trace of an LSTM. layer: 1 = the bottom layer, -1 (the default) = the top. c0: the layer's
    initial cell state (default zeros: a trace read from a
    fresh state); pass the state given to trace() when it continued from one.
    """
    lay = _lstm_layer(tr, layer)
    T = len(tr)
    if T == 0:
        raise InputError("the trace is empty")
    step = (T - 1) if step is None else step
    if not -T <= step < T:
        raise PositionError(f"step {step} is outside the {T} rows")
    step %= T
    f = np.asarray(lay.f[: step + 1], np.float64)
    w = np.asarray(lay.i[: step + 1], np.float64) * np.asarray(lay.g[: step + 1], np.float64)
    # retention_{k} = Π_{j=k+1..step} f_j, a reverse cumulative product (exact, no logs: f may be 0)
    ret = np.ones_like(f)
    for k in range(step - 1, -1, -1):
        ret[k] = ret[k + 1] * f[k + 1]
    initial = ret[0] * f[0] * _c0(lay, c0)
    return Provenance(tokens=tuple(tr.words[: step + 1]), layer=lay.layer, step=step, parts=ret * w,
                      initial=initial, retention=ret, write=w, c=np.asarray(lay.c[step], np.float64))


#: The most steps a memory matrix spans (its rows and its columns): a window of the text ending at the
#: chosen step. [W, W] float64 values (320 KB at 200), whatever the length of the text.
MATRIX_WINDOW = 200


@dataclass(frozen=True)
class MemoryMatrix:
    """M[k, t]: what row k wrote that is still in c_t (rows: written at k, columns: now t; k ≤ t,
    NaN above/below). For one unit the signed part; for a layer its norm over units.

    A window: rows and columns are the steps start..start + len(tokens) - 1 of the text; what was in
    the cell state before the window (c at step start − 1, the start state when start is 0) is
    `initial`, carried on by the forget gates like any write."""
    tokens: tuple[str, ...]
    layer: int                                  # 1 = the bottom layer
    unit: int | None
    values: np.ndarray = field(repr=False)      # [W, W] float64
    initial: np.ndarray = field(repr=False)     # [W]: the part left of the state before the window at each t
    start: int = 0                              # the step of row and column 0
    steps: int = 0                              # the steps of the whole text (0: the window is the text)

    @property
    def positions(self) -> np.ndarray:
        """[W] the text's step of each row and column."""
        return np.arange(self.start, self.start + len(self.tokens))

    def frame(self):
        import pandas as pd
        k, t = np.nonzero(~np.isnan(self.values))
        return pd.DataFrame({"written": k + self.start, "now": t + self.start,
                             "written_token": [self.tokens[i] for i in k],
                             "now_token": [self.tokens[i] for i in t], "value": self.values[k, t]})


def memory_matrix(tr, layer: int = -1, unit: int | None = None, c0=None, *, step: int | None = None,
                  window: int | None = None) -> MemoryMatrix:
    """The memory matrix of one LSTM layer (1 = the bottom, -1 = the top): for one unit, or norms over
    all units (unit=None), over the `window` steps (default MATRIX_WINDOW) ending at `step` (default
    the last). A text no longer than the window gives the whole matrix, from the start state c0.

    O(W) memory per step: the surviving parts are carried forward, parts ⊙= f_t, then row t is
    written, so a long text never needs a [T, T, units] tensor."""
    lay = _lstm_layer(tr, layer)
    T, U = lay.c.shape
    if unit is not None and not -U <= unit < U:
        raise PositionError(f"unit {unit} is outside the {U} units")
    step = T - 1 if step is None else int(step)
    if not -T <= step < T:
        raise PositionError(f"step {step} is outside the {T} rows")
    step %= T
    W = MATRIX_WINDOW if window is None else int(window)
    if W < 1:
        raise InputError("a memory matrix needs a window of at least one step")
    lo = max(0, step + 1 - W)
    n = step + 1 - lo
    f = np.asarray(lay.f[lo:step + 1], np.float64)
    w = np.asarray(lay.i[lo:step + 1], np.float64) * np.asarray(lay.g[lo:step + 1], np.float64)
    M = np.full((n, n), np.nan)
    init = np.empty(n)
    parts = np.zeros((n, U))
    c_init = _c0(lay, c0) if lo == 0 else np.asarray(lay.c[lo - 1], np.float64)
    for t in range(n):
        parts[:t] *= f[t]
        parts[t] = w[t]
        c_init = c_init * f[t]
        if unit is None:
            M[: t + 1, t] = np.linalg.norm(parts[: t + 1], axis=1)
            init[t] = np.linalg.norm(c_init)
        else:
            M[: t + 1, t] = parts[: t + 1, unit]
            init[t] = c_init[unit]
    return MemoryMatrix(tokens=tuple(tr.words[lo:step + 1]), layer=lay.layer, unit=unit, values=M, initial=init,
                        start=lo, steps=T)


def half_lives(traces, layer: int = -1, average: str = "arithmetic"):
    """Each unit's memory half-life in steps, ln 0.5 / ln f̄, from its forget gates, sorted longest first.

    traces: one Trace or several (e.g. a few paragraphs of the corpus); layer: 1 = the bottom layer, -1
    (the default) = the top; f̄ is the unit's mean forget
    gate over every row. average="geometric" uses exp(mean ln f) instead, which is the exact per-step
    factor of a product of forget gates. A unit with f̄ = 1 keeps forever (half-life inf).
    Returns a DataFrame: rank, unit, mean_forget, half_life.
    """
    import pandas as pd
    if average not in ("arithmetic", "geometric"):
        raise InputError("average must be 'arithmetic' or 'geometric'")
    trs = [traces] if hasattr(traces, "layers") else list(traces)
    f = np.concatenate([np.asarray(_lstm_layer(t, layer).f, np.float64) for t in trs], 0)
    if len(f) == 0:
        raise InputError("no rows to average")
    with np.errstate(divide="ignore"):
        fbar = f.mean(0) if average == "arithmetic" else np.exp(np.log(f).mean(0))
        lnf = np.log(fbar)
        hl = np.where(lnf < 0, np.log(0.5) / np.where(lnf < 0, lnf, -1.0), np.inf)
    order = np.argsort(-hl, kind="stable")
    return pd.DataFrame({"rank": np.arange(len(order)), "unit": order, "mean_forget": fbar[order],
                         "half_life": hl[order]})


#: Rows of the next-word distributions compared at a time by occlusion_fade: [2, rows, vocabulary] float64
#: (10 MB for a 10,000-word vocabulary), whatever the length of the text; a shorter text is one block.
FADE_ROWS = 256


def occlusion_fade(model, text: str, position: int = 1, replacement: str = "<unk>", layer: int | None = None):
    """How the influence of one token (default: the first word, row 1 after the boundary) fades.

    The text is read twice, once with the token at `position` replaced by `replacement` (a word or
    "<unk>"), and at every later row t the two runs are compared:
      dh: ‖h_t − h'_t‖ (the top layer, or `layer`: 1 = the bottom); dh_rel: dh / ‖h_t‖;
      tv: total variation between the next-word distributions, ½ Σ |p − p'|;
      kl: KL(p ‖ p') in nats.
    Works for every cell (LSTM, GRU, RNN). Returns a DataFrame with one row per t ≥ position.
    """
    import pandas as pd
    tok = model.tokenizer
    toks = tokens_for(model, text)
    T = len(toks)
    if not 0 <= position < T:
        raise PositionError(f"position {position} is outside the {T} tokens")
    if replacement in ("<unk>", tok.itos[tok.unk_id]):
        rid = tok.unk_id
    else:
        from ._common import require_word_id
        rid = require_word_id(model, replacement)
    ids = torch.tensor([[t.id for t in toks]] * 2, dtype=torch.long)
    ids[1, position] = rid
    lm = model.lm
    L = lm.config.layers
    lay = layer_index(layer, L)
    with torch.no_grad():
        x = lm.embedding(ids)
        hs = []
        for l in range(L):       # layer by layer so that any layer's h can be compared
            x = run_layer_from_zero(lm, l, x)
            hs.append(x)
        tv, kl = [], []
        for a in range(0, T, FADE_ROWS):    # [2, rows, V] float64 at a time, not [2, T, V]
            logp = torch.log_softmax(lm.decoder(x[:, a:a + FADE_ROWS]).double(), -1)
            p, q = logp[0].exp(), logp[1].exp()
            tv.append(0.5 * (p - q).abs().sum(-1))
            kl.append((p * (logp[0] - logp[1])).sum(-1))
        tv, kl = torch.cat(tv), torch.cat(kl)
    h = hs[lay].double()
    dh = (h[0] - h[1]).norm(dim=-1)
    hn = h[0].norm(dim=-1)
    s = slice(position, T)
    return pd.DataFrame({"position": np.arange(T)[s], "distance": np.arange(T)[s] - position,
                         "token": [t.text for t in toks][s], "dh": dh[s].numpy(),
                         "dh_rel": (dh / hn.clamp_min(1e-12))[s].numpy(), "tv": tv[s].numpy(),
                         "kl": kl[s].numpy()})


def compare_fade(models: dict, text: str, position: int = 1, replacement: str = "<unk>"):
    """occlusion_fade for several models (e.g. {"LSTM": lstm, "RNN": rnn}) in one long DataFrame."""
    import pandas as pd
    frames = []
    for name, m in models.items():
        df = occlusion_fade(m, text, position=position, replacement=replacement)
        df.insert(0, "model", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def replacement_fade(models: dict, text: str, replacements=("<unk>", "he", "she", "the"), position: int = 1):
    """compare_fade for several replacement words: one long DataFrame with a "replacement" column.

    Worth showing together: on the shipped vanilla RNN the answer depends on the word. Some
    replacements switch it into another persistent mode (a latched attractor: Δh stays large for the
    whole text), others fade within a few steps; the LSTM's differences fade gradually for all."""
    import pandas as pd
    frames = []
    for r in replacements:
        df = compare_fade(models, text, position=position, replacement=r)
        df.insert(1, "replacement", r)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def fade_length(df, metric: str = "dh_rel", fraction: float = 0.1):
    """Per model (or for one frame from occlusion_fade): the first distance at which `metric` has
    fallen below `fraction` of its value at distance 0, or NaN when it never does within the text.
    Returns a dict name -> steps ("model" column absent: key None)."""
    groups = df.groupby("model", sort=False) if "model" in df.columns else [(None, df)]
    out = {}
    for name, g in groups:
        g = g.sort_values("distance")
        v0 = float(g[metric].iloc[0])
        below = g[(g["distance"] > 0) & (g[metric] < fraction * v0)]
        out[name] = float(below["distance"].iloc[0]) if len(below) else float("nan")
    return out
