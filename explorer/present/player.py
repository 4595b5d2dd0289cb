"""What the Explore page's player draws: `PlayerData`, one typed, JSON-ready record. Pure: no
Streamlit, no plotting.

The player (assets/player.js and assets/player.css beside this file) draws the token strip, the step
view (next-word top-k, Δh/Δc per unit, gate openness) and the units × tokens heatmaps on canvases, and
steps through the tokens in the browser: a step, a play tick or a key press never waits for the server.
One JavaScript source and one record for both of its hosts: the app's Streamlit component
(ui/player_component.py) and the notebook widget (explorer.present.widget) each build a `PlayerData`
with `build_player_data` and send `PlayerData.to_json()`. It holds, for one window of token positions,
everything each step can show:

* per token: label, flags, chip colours and tooltip, a one-line reading (views.describe_step), the
  top-k next words and the word that actually follows with its probability and rank;
* the layer's h (and c) rows for the window plus the row before it, as little-endian float32 in
  base64 (exact values: Δ and hover are computed from them in the browser), with fixed Δ axes;
* per gate: the histogram of its units' openness per token and the mean;
* the heatmap quantities asked for (h·c or the gates), float32 base64 (h and c are not sent twice),
  each with its fixed colour scale (figures.colour_range: the same colours as every Plotly view of the app);
* the heatmap tabs the player offers (`views`, HEATMAP_TABS) and the one open (`view`).

`player_data` (the same record as a plain dict) is what tests assert on; the browser only renders it.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from . import figures as F
from . import views as V
from ..trace import Trace
from .scales import colour_scale

#: The player's JavaScript and stylesheet (one source for the app's component and the notebook widget).
ASSETS = Path(__file__).resolve().parent / "assets"
PLAYER_JS = ASSETS / "player.js"
PLAYER_CSS = ASSETS / "player.css"

#: The heatmap tabs of each cell: (tab label, quantities drawn), as on the Explore page and in the
#: notebook widget. Patch shows the first tab only.
HEATMAP_TABS: dict[str, list[tuple[str, list[str]]]] = {
    "lstm": [("States h · c", ["h", "c"]), ("Gates i · f · o and candidate g", ["i", "f", "o", "g"])],
    "gru": [("State h and candidate n", ["h", "n"]), ("Gates r · z", ["r", "z"])],
    "rnn": [("State h", ["h"])],
}

#: Bins of the gate-openness histograms in the step view.
GATE_BINS = 20
#: The step view's Δ axes reach this percentile of |Δ| over the whole text.
DELTA_PERCENTILE = 99.0


def b64_f32(a: np.ndarray) -> str:
    """A float array as base64 of little-endian float32, row-major."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def decode_f32(s: str, shape) -> np.ndarray:
    """Inverse of b64_f32 (for tests and notebooks)."""
    return np.frombuffer(base64.b64decode(s), dtype="<f4").reshape(shape)


def _finite(x: float, digits: int = 6):
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def tokens_data(tr: Trace, lo: int, hi: int) -> list[dict]:
    """Chips of positions lo..hi-1: label, flags, colours by surprisal and a tooltip."""
    out = []
    for r in V.token_rows(tr, lo, hi):
        bg = F.surprisal_colour(r.surprisal_bits)
        out.append({"label": r.label, "special": bool(r.special), "unk": bool(r.unk), "bg": bg, "ink": F.ink(bg),
                    "title": F.chip_title(r)})
    return out


def ngram_bits(tr: Trace, kn) -> np.ndarray:
    """The n-gram's surprisal (bits) of every token of the trace given the tokens before it, as the
    model read them (same ids, the boundary token first); NaN at position 0, which nothing predicts.
    `kn` is an explorer.training.ngram.KneserNey over the model's own vocabulary."""
    ids = [t.id for t in tr.tokens]
    if kn.V != len(tr.vocab):
        raise ValueError(f"the n-gram has a {kn.V:,}-word vocabulary and the model {len(tr.vocab):,}")
    out = np.full(len(ids), np.nan, dtype=np.float32)
    if len(ids) > 1:
        out[1:] = kn.surprisal(ids)
    return out


def ngram_track(tr: Trace, bits: np.ndarray, lo: int, hi: int, name: str) -> dict:
    """The player's second track: for positions lo..hi-1 the n-gram's bits, its chip colour (the
    same scale as the model's), and what memory beyond the n-gram's window saved (n-gram bits minus
    the model's bits: > 0 where the network's longer memory paid off)."""
    rows = V.token_rows(tr, lo, hi)
    bits_w = [_finite(b, 3) for b in bits[lo:hi]]
    gain = [None if b is None or not np.isfinite(r.surprisal_bits) else _finite(b - r.surprisal_bits, 3)
            for b, r in zip(bits_w, rows)]
    return {"name": name, "bits": bits_w, "gain": gain,
            "bg": [F.surprisal_colour(b) for b in bits_w]}


def next_words(tr: Trace, t: int, k: int) -> dict:
    """The k most probable next tokens after t and the token that actually follows (with its
    probability and rank; `in_top` says whether it is among the k)."""
    raw = tr.top_words(t, k)
    top = [[V.visible(w), _finite(p)] for w, p in raw]          # whitespace drawn as glyphs
    actual = None
    if t + 1 < len(tr):
        word = tr.vocab[tr.tokens[t + 1].id]
        rank = int(tr.next_rank[t])
        actual = {"word": V.visible(word), "label": V.token_label(tr.tokens[t + 1]),
                  "prob": _finite(tr.next_prob[t]), "rank": rank, "in_top": any(w == word for w, _ in raw)}
    return {"top": top, "actual": actual}


def player_script() -> str:
    """player.js as the Streamlit component loads it (its `export default` entry)."""
    return PLAYER_JS.read_text(encoding="utf-8")


def player_stylesheet() -> str:
    """The player's CSS: the token chips of every strip in the app (figures.TOKEN_STRIP_CSS) and player.css."""
    return (F.TOKEN_STRIP_CSS.replace("<style>", "").replace("</style>", "")
            + PLAYER_CSS.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PlayerData:
    """Everything the player draws for token positions lo..hi-1 of one layer; `to_json()` is what the
    browser receives (player.js reads these names)."""
    sig: str                          # identifies text and model: a new one selects `pos` afresh
    cell: str                         # "lstm" | "gru" | "rnn"
    layer: int                        # 1 = the bottom layer
    n: int                            # tokens in the whole text
    lo: int                           # the window: positions lo..hi-1
    hi: int
    pos: int                          # the selected position (inside the window)
    units: int
    view: str                         # the heatmap tab open
    tokens: list[dict]                # [hi-lo] chips: label, special, unk, bg, ink, title
    readout: list[str]                # [hi-lo] one line per step (views.describe_step)
    next: list[dict]                  # [hi-lo] {"top": [[word, p]], "actual": {...} | None}
    states: dict[str, str]            # q -> float32 base64 [hi-lo, units] (h, and c for an LSTM)
    prev: dict[str, str]              # q -> float32 base64 [1, units]: the row before the window
    dlim: dict[str, float | None]     # q -> the step view's fixed Δ axis (99th percentile of |Δ|)
    dmax: dict[str, float | None]     # q -> the largest |Δ| of the text
    gates: dict[str, dict]            # g -> {"hist": [hi-lo][GATE_BINS], "mean": [hi-lo], "name"}
    gate_max: float | None            # one y axis for every window's gate histograms
    heat: list[dict]                  # [{"q", "data": base64 | None (h, c: in states), "scale"}]
    surprisal_stops: list             # the chips' colour scale
    surprisal_max: float
    gate_stops: list
    ngram: dict | None                # the n-gram's track (ngram_track) or None
    views: tuple[str, ...] = ()       # the tab labels the player offers (none: no tab bar)
    token_kind: str = "word"          # "word" or "character": how the panels name what is predicted

    def with_views(self, views: Sequence[str]) -> "PlayerData":
        return replace(self, views=tuple(views))

    def to_json(self) -> dict:
        """The record as the browser reads it (JSON-ready: lists, dicts, str, numbers, None)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["views"] = list(self.views)
        return out


def build_player_data(tr: Trace, layer: int, *, pos: int, window: tuple[int, int] | None = None,
                      ranges: dict | None = None, heat: Sequence[str] = ("h", "c"), k: int = 10,
                      sig: str = "", view: str = "", ngram: tuple[str, np.ndarray] | None = None,
                      views: Sequence[str] = ()) -> PlayerData:
    """Everything the player draws for token positions window[0]..window[1]-1 of one layer (1 = the
    bottom layer, -1 = the top).

    `pos` is the selected position (kept inside the window); `heat` the quantities drawn as heatmaps
    (none: the player draws no heatmaps); `sig` identifies the text and model: when it changes the
    player selects `pos` afresh, otherwise it keeps its own selection. `ngram` (name, bits from
    `ngram_bits`) adds the n-gram's surprisal as a second track under the token strip; `views` are
    the heatmap tabs offered (`view` the one open).
    """
    layer = V._check(tr, layer).layer
    n = len(tr)
    if n == 0:
        raise ValueError("an empty trace has nothing to play")
    lo, hi = (0, n) if window is None else (max(0, int(window[0])), min(n, int(window[1])))
    pos = min(max(int(pos), lo), hi - 1)
    lay = tr.layer(layer).values
    units = int(lay["h"].shape[1])
    states = [q for q in ("h", "c") if q in lay]
    prev = {q: V.previous(lay[q], lo) for q in states}
    gates, gate_max = {}, None
    if V.GATES[tr.cell]:
        hist = V.gate_histograms(tr, layer, GATE_BINS)      # the whole text: one y axis for every window
        gate_max = float(max(h.max() for h in hist.values())) if n else None
        for g in V.GATES[tr.cell]:
            gates[g] = {"hist": np.round(hist[g][lo:hi], 5).tolist(),
                        "mean": [_finite(m, 5) for m in lay[g][lo:hi].mean(axis=1)],
                        "name": F.LONG_NAMES.get(g, g)}
    heat = [q for q in heat if q in lay]
    return PlayerData(
        sig=sig, cell=tr.cell, layer=int(layer),
        n=n, lo=lo, hi=hi, pos=pos, units=units, view=view,
        tokens=tokens_data(tr, lo, hi),
        readout=[V.describe_step(tr, t) for t in range(lo, hi)],
        next=[next_words(tr, t, k) for t in range(lo, hi)],
        states={q: b64_f32(lay[q][lo:hi]) for q in states},
        prev={q: b64_f32(prev[q]) for q in states},
        # Δ axes: fixed over the text, at the 99th percentile of |Δ| (bars beyond are drawn clipped,
        # with a mark; hover gives the value), and the largest |Δ| for the caption
        dlim={q: _finite(v) for q, v in V.delta_limits(tr, layer, percentile=DELTA_PERCENTILE).items()},
        dmax={q: _finite(v) for q, v in V.delta_limits(tr, layer).items()},
        gates=gates, gate_max=gate_max,
        # h and c are in "states" already: their heatmaps reuse those rows ("data": None)
        heat=[{"q": q, "data": None if q in states else b64_f32(lay[q][lo:hi]), "scale": colour_scale(q, ranges)}
              for q in heat],
        surprisal_stops=[[x / F.SURPRISAL_MAX, c] for x, c in F.SURPRISAL_STOPS],
        surprisal_max=F.SURPRISAL_MAX,
        gate_stops=F.SEQUENTIAL,
        ngram=None if ngram is None else ngram_track(tr, ngram[1], lo, hi, ngram[0]),
        views=tuple(views),
        token_kind=V.token_kind(tr),
    )


def player_data(tr: Trace, layer: int, **kw) -> dict:
    """`build_player_data(...).to_json()`: the record as the browser receives it (tests assert on it)."""
    return build_player_data(tr, layer, **kw).to_json()


def reported_position(value, sig: str) -> int | None:
    """The position in a report from the player ({"pos", "sig", "seq"}), or None when the report is
    not about the text `sig` (an older text's report can arrive after a new one) or is malformed."""
    if not isinstance(value, dict) or value.get("sig") != sig:
        return None
    pos = value.get("pos")
    return pos if isinstance(pos, int) and not isinstance(pos, bool) and pos >= 0 else None
