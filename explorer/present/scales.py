"""Colour scales: the one home of every range and colour scale the app draws with.

A colour must mean the same value at every step, in every sentence and in both panes of a
comparison, so ranges are fixed, never fitted to the data on screen:

* bounded quantities keep their mathematical range (explorer.trace.RANGES: tanh outputs [-1, 1],
  gates [0, 1]);
* the unbounded LSTM cell state c gets ±R, calibrated once per model (`value_ranges`) and coloured
  on a symmetric log scale (`symlog`), since most |c| are below ~2 while a few units count past 100;
* signed quantities are centred on 0 (zmid=0) on a diverging scale; the rest use a sequential one.

`scale(quantity, ranges)` gives all of it at once; the Plotly figures (figures.py), the player's
JSON (player.py) and the tables (views.py) read it from here.
"""
from __future__ import annotations

import math

import numpy as np

from ..trace import DESCRIPTIONS, QUANTITIES, RANGES

DIVERGING = [[0.0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1.0, "#b2182b"]]
SEQUENTIAL = [[0.0, "#f7fcf5"], [0.35, "#a1d99b"], [0.7, "#31a354"], [1.0, "#00441b"]]

#: Fallback colour range of the LSTM cell state c when no model calibration is at hand: |c| can grow
#: past 1 (c_t = f ⊙ c_{t-1} + i ⊙ g sums over time), but in trained word-level LSTMs it rarely
#: passes 3 on ordinary prose.
C_RANGE_DEFAULT = 3.0

#: Colour range of a change in surprisal between two models (compare: B − A, bits), ±this: a token
#: 4 bits worse is 16 times less expected; larger changes saturate rather than rescale the strip.
DELTA_SURPRISAL_BITS = 4.0


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20, ... that is >= x (and >= 1)."""
    if not math.isfinite(x) or x <= 1.0:
        return 1.0
    mag = 10 ** math.floor(math.log10(x))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * mag >= x - 1e-9:
            return float(step * mag)
    return float(10 * mag)


def fixed_range(quantity: str, ranges: dict | None = None) -> tuple[float, float]:
    """The colour/axis range of a quantity: from `ranges` (e.g. value_ranges(model)) if given there,
    else explorer.trace.RANGES, else ±C_RANGE_DEFAULT for unbounded quantities."""
    if ranges and quantity in ranges:
        lo, hi = ranges[quantity]
        return float(lo), float(hi)
    lo, hi = RANGES.get(quantity, (None, None))
    if lo is None or hi is None:
        return -C_RANGE_DEFAULT, C_RANGE_DEFAULT
    return float(lo), float(hi)


def is_signed(quantity: str, ranges: dict | None = None) -> bool:
    lo, hi = fixed_range(quantity, ranges)
    return lo < 0 < hi


def value_ranges(model, text: str | None = None, percentile: float = 99.5) -> dict[str, tuple[float, float]]:
    """Fixed (lo, hi) per quantity of this model's cell.

    Bounded quantities keep their mathematical range (explorer.trace.RANGES: tanh outputs [-1, 1],
    gates [0, 1]). Unbounded ones (the LSTM cell state c) get a symmetric range ±R, where R is the
    `percentile` of |value| over every layer while the model reads `text` (default: the presets and
    a few classic sentences), rounded up by `nice_ceiling`. Computed once per model, it stays the same
    for every sentence, layer and step.
    """
    from .presets import REFERENCE_TEXT
    from ..trace import trace

    cell = model.config.cell
    out: dict[str, tuple[float, float]] = {}
    tr = None
    for q in QUANTITIES[cell]:
        lo, hi = RANGES.get(q, (None, None))
        if lo is not None and hi is not None:
            out[q] = (float(lo), float(hi))
            continue
        if tr is None:
            tr = trace(model, text or REFERENCE_TEXT, top_k=1)
        vals = np.concatenate([np.abs(lay.values[q]).ravel() for lay in tr.layers])
        r = nice_ceiling(float(np.percentile(vals, percentile))) if vals.size else C_RANGE_DEFAULT
        out[q] = (-r, r)
    return out


def symlog(x):
    """sign(x)·ln(1 + |x|): linear near 0, logarithmic far out. Used to colour unbounded quantities."""
    return np.sign(x) * np.log1p(np.abs(x))


def log_scaled(quantity: str) -> bool:
    """Unbounded quantities (the LSTM cell state c) are coloured on a symmetric log scale: in trained
    LSTMs most |c| are below ~2 while some units count up to 100 and more, and a linear scale wide
    enough for those would leave everything else white."""
    lo, hi = RANGES.get(quantity, (None, None))
    return lo is None or hi is None


def colour_range(quantity: str, ranges: dict | None = None) -> dict:
    """zmin/zmax (and zmid=0 for signed quantities) and the colour scale of a quantity. For unbounded
    quantities zmin/zmax are symlog(∓R) of the fixed range ±R (the heatmap's z is symlog(value))."""
    lo, hi = fixed_range(quantity, ranges)
    if log_scaled(quantity):
        r = float(symlog(max(abs(lo), abs(hi))))
        return dict(zmin=-r, zmax=r, zmid=0.0, colorscale=DIVERGING)
    if lo < 0 < hi:
        return dict(zmin=lo, zmax=hi, zmid=0.0, colorscale=DIVERGING)
    return dict(zmin=lo, zmax=hi, colorscale=SEQUENTIAL)


def colorbar_ticks(quantity: str, ranges: dict | None) -> dict:
    """Colour-bar ticks in the quantity's own units (for the symlog scale: 0, ±1, ±10, ..., ±R)."""
    if not log_scaled(quantity):
        return {}
    _, r = fixed_range(quantity, ranges)
    vals = [v for v in (1, 10, 100, 1000) if v < r * 0.6] + [r]
    vals = sorted({-v for v in vals} | {0.0} | set(vals))
    return dict(tickmode="array", tickvals=[float(symlog(v)) for v in vals], ticktext=[f"{v:g}" for v in vals])


def scale(quantity: str, ranges: dict | None) -> dict:
    """How the player colours a quantity: the same scale as figures.heatmap_figure. For log-scaled
    quantities the colour position is symlog(value) on [zmin, zmax]; `lo`/`hi` are in the value's units."""
    cr = colour_range(quantity, ranges)
    lo, hi = fixed_range(quantity, ranges)
    return {"zmin": cr["zmin"], "zmax": cr["zmax"], "log": log_scaled(quantity), "lo": lo, "hi": hi,
            "stops": cr["colorscale"], "signed": lo < 0 < hi, "description": DESCRIPTIONS.get(quantity, quantity)}


#: The player's name for `scale`.
colour_scale = scale
