"""Everything out: traces as tidy data files, figures as PNG / SVG (Kaleido, driving the system
Chromium) and as self-contained HTML (plotly.js inlined: no CDN, works offline), and a "copy as
Python" snippet that rebuilds a view through the API.

    python -m explorer export --model M --text T --what states|predictions|figure:NAME
                              --format csv|parquet|json|png|svg|html --out FILE

Data are tidy, one row per observation, exactly as `Trace.to_frame` (states: position, token, layer,
quantity, unit, value) and `Trace.predictions_frame` (one row per token). JSON is a list of records.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from .. import settings
from ..engine import layer_index
from ..errors import ExplorerError
from ..trace import QUANTITIES, Trace

DATA = ("states", "predictions")
DATA_FORMATS = ("csv", "parquet", "json")
FIGURE_FORMATS = ("png", "svg", "html")
MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json",
        "png": "image/png", "svg": "image/svg+xml", "html": "text/html"}
#: The system browser Kaleido drives (Kaleido >= 1 ships none); RNN_EXPLORER_CHROMIUM overrides.
CHROMIUM = settings.chromium()


def data_frame(tr: Trace, what: str):
    if what == "states":
        return tr.to_frame()
    if what == "predictions":
        return tr.predictions_frame()
    raise ExplorerError(f"unknown data {what!r}: choose one of {', '.join(DATA)}")


def frame_bytes(df, fmt: str) -> bytes:
    """A DataFrame as CSV, Parquet (pyarrow) or JSON records."""
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False, engine="pyarrow")
        return buf.getvalue()
    if fmt == "json":
        return df.to_json(orient="records", force_ascii=False).encode("utf-8")
    raise ExplorerError(f"data can be written as {', '.join(DATA_FORMATS)}, not {fmt!r}")


# ------------------------------------------------------------------------------------- figures
def _quantities(tr: Trace) -> list[str]:
    return ["h", "c"] if tr.cell == "lstm" else ["h"]


def _heatmaps(tr, model, layer, t):
    from . import figures, scales
    return figures.heatmaps_figure(tr, layer, _quantities(tr), selected=t, ranges=scales.value_ranges(model))


def _gates(tr, model, layer, t):
    from . import figures, scales
    qs = [q for q in QUANTITIES[tr.cell] if q not in ("h", "c")]
    if not qs:
        raise ExplorerError("a plain RNN has no gates: choose figure:heatmaps, figure:step or figure:next-words")
    return figures.heatmaps_figure(tr, layer, qs, selected=t, ranges=scales.value_ranges(model))


def _step(tr, model, layer, t):
    from . import figures
    return figures.step_view_figure(tr, layer, t)


def _next_words(tr, model, layer, t):
    from . import figures
    return figures.topk_figure(tr, t)


#: figure:NAME -> builder(trace, model, layer (1 = the bottom), position): the Explore page's views.
FIGURES = {"heatmaps": _heatmaps, "gates": _gates, "step": _step, "next-words": _next_words}


def build_figure(name: str, tr: Trace, model, layer: int, t: int):
    if name not in FIGURES:
        raise ExplorerError(f"unknown figure {name!r}: choose one of {', '.join('figure:' + n for n in FIGURES)}")
    if not len(tr):
        raise ExplorerError("the text holds no tokens to draw")
    return FIGURES[name](tr, model, layer, t)


def figure_html(fig) -> bytes:
    """Self-contained HTML: plotly.js inlined, no MathJax, nothing fetched from a CDN."""
    return fig.to_html(full_html=True, include_plotlyjs=True, include_mathjax=False,
                       config={"displaylogo": False}).encode("utf-8")


def image_problem() -> str | None:
    """Why PNG/SVG export cannot work here (no kaleido, no Chromium), or None: checked before the app
    offers it, so a person reads the reason instead of clicking a download that fails."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "PNG/SVG export needs kaleido (pip install -r requirements.txt); HTML export works without it"
    browser = os.environ.get("BROWSER_PATH") or CHROMIUM
    if not Path(browser).exists():
        return (f"PNG/SVG export needs Chromium, and there is none at {browser} (set RNN_EXPLORER_CHROMIUM or "
                "BROWSER_PATH); HTML export works without it")
    return None


def figure_image(fig, fmt: str, scale: float = 2.0) -> bytes:
    """PNG or SVG through Kaleido, which drives the system Chromium (offline; nothing downloaded)."""
    if fmt not in ("png", "svg"):
        raise ExplorerError(f"images are png or svg, not {fmt!r}")
    if "BROWSER_PATH" not in os.environ and Path(CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = CHROMIUM        # choreographer (Kaleido's driver) reads it
    try:
        import kaleido  # noqa: F401 - a clear message when it is missing
    except ImportError:
        raise ExplorerError("PNG/SVG export needs kaleido (pip install -r requirements.txt); "
                            "HTML export works without it") from None
    width = fig.layout.width or 1050
    height = fig.layout.height or 450
    try:
        return fig.to_image(format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1)
    except Exception as e:  # noqa: BLE001 - Kaleido's errors are long; say what to check
        raise ExplorerError(f"Kaleido could not draw the {fmt.upper()} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}); it needs Chromium at {CHROMIUM} "
                            "(set RNN_EXPLORER_CHROMIUM or BROWSER_PATH)") from None


def figure_bytes(fig, fmt: str) -> bytes:
    if fmt == "html":
        return figure_html(fig)
    if fmt in ("png", "svg"):
        return figure_image(fig, fmt)
    raise ExplorerError(f"figures can be written as {', '.join(FIGURE_FORMATS)}, not {fmt!r}")


# -------------------------------------------------------------------------------------- one call
def export(model, text: str, what: str, fmt: str, layer: int | None = None, position: int | None = None,
           tr: Trace | None = None) -> bytes:
    """The bytes of one export: `what` is states, predictions or figure:NAME; `layer` 1 = the bottom
    layer (-1 and the default: the top layer), `position` a token row (default: the last)."""
    tr = tr if tr is not None else model.trace(text)
    if what in DATA:
        if fmt not in DATA_FORMATS:
            raise ExplorerError(f"--what {what} is data: write it as {', '.join(DATA_FORMATS)}, not {fmt}")
        return frame_bytes(data_frame(tr, what), fmt)
    if what.startswith("figure:"):
        if fmt not in FIGURE_FORMATS:
            raise ExplorerError(f"--what {what} is a figure: write it as {', '.join(FIGURE_FORMATS)}, not {fmt}")
        layer = layer_index(layer, model.config.layers) + 1      # 0 and layers the model lacks are refused
        t = len(tr) - 1 if position is None else position
        if not 0 <= t < max(1, len(tr)):
            raise ExplorerError(f"--position must lie in 0..{len(tr) - 1}")
        return figure_bytes(build_figure(what[len("figure:"):], tr, model, layer, t), fmt)
    raise ExplorerError(f"--what must be states, predictions or figure:NAME "
                        f"({', '.join(FIGURES)}), not {what!r}")


def python_snippet(model_path: str, text: str, layer: int, position: int, figure: str = "heatmaps") -> str:
    """Python that rebuilds the current view through the API (the "copy as Python" of the app)."""
    return f'''import explorer as E
from explorer.present import export

model = E.load_model({str(model_path)!r})
tr = model.trace({text!r})
states = tr.to_frame()              # tidy: position, token, layer, quantity, unit, value
predictions = tr.predictions_frame()
fig = export.build_figure({figure!r}, tr, model, layer={layer}, t={position})   # layer {layer} (1 = the bottom), token {position}
# fig.show(); fig.write_html("view.html"); states.to_parquet("states.parquet")
'''


def _plain(v):
    """A label as a person reads it: Plotly's HTML (<b>, &lt;eos&gt;) taken out."""
    import html
    import re
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        v = " · ".join(str(x) for x in v)
    return html.unescape(re.sub(r"<[^>]+>", "", str(v))).strip()


def _axis(fig, tr, which: str):
    """The layout axis a trace is drawn on (following `matches`: a shared axis keeps its ticks on one)."""
    ref = getattr(tr, which + "axis", None) or which
    seen = set()
    while ref and ref not in seen:
        seen.add(ref)
        try:
            ax = fig.layout[which + "axis" + ref[1:]]
        except (KeyError, ValueError, AttributeError):
            return None
        if ax is None:
            return None
        if ax.tickvals is not None and ax.ticktext is not None:
            return ax
        ref = ax.matches
    return None


def _ticks(fig, tr, which: str) -> dict:
    ax = _axis(fig, tr, which)
    if ax is None:
        return {}
    out = {}
    for v, t in zip(ax.tickvals, ax.ticktext):
        try:
            out[float(v)] = _plain(t)
        except (TypeError, ValueError):
            out[v] = _plain(t)
    # a token axis (analysis_figures.token_ticks, figures.token_axis) keeps every label as its
    # categoryarray, positions from the first tick on: the labels of thinned-out ticks too
    every = ax.categoryarray
    if every is not None and ax.type in (None, "-", "linear") and len(ax.tickvals):
        try:
            start = int(ax.tickvals[0])
        except (TypeError, ValueError):
            return out
        for i, t in enumerate(every):
            out.setdefault(float(start + i), _plain(t))
    return out


def _panel_title(fig, tr) -> str | None:
    """The subplot title over a trace's panel (make_subplots' annotations), if any."""
    try:
        xd = fig.layout["xaxis" + ((getattr(tr, "xaxis", None) or "x")[1:])].domain or (0, 1)
        yd = fig.layout["yaxis" + ((getattr(tr, "yaxis", None) or "y")[1:])].domain or (0, 1)
    except (KeyError, ValueError, AttributeError):
        return None
    for a in fig.layout.annotations or ():
        if (a.xref == "paper" and a.yref == "paper" and a.text and a.x is not None and a.y is not None
                and xd[0] - 1e-6 <= a.x <= xd[1] + 1e-6 and abs(a.y - yd[1]) < 0.03):
            return _plain(a.text)
    return None


def figure_frame(fig):
    """The numbers behind any Plotly figure as one tidy DataFrame: one row per plotted value, with the
    trace's name (or its panel's title) and type, its x and y, the labels a person reads on the chart
    (x_label, y_label: the axis tick text at that value, e.g. the token; label: the point's own label,
    e.g. the word of a bar, from its customdata; text: the text drawn on it) and, for heatmaps, the
    value z. So every chart's data can be downloaded as CSV / Parquet / JSON with its labels."""
    import numpy as np
    import pandas as pd

    def arr(v):
        """A trace's array: plain lists, or Plotly's typed-array spec {"dtype", "bdata", "shape"}."""
        if isinstance(v, dict) and "bdata" in v:
            import base64
            a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
            shape = v.get("shape")
            if shape is not None:
                a = a.reshape([int(x) for x in str(shape).replace("(", "").replace(")", "").split(",") if x.strip()]
                              if not isinstance(shape, (list, tuple)) else shape)
            return a
        return v

    def tick(ticks: dict, v):
        if not ticks:
            return None
        try:
            return ticks.get(float(v))
        except (TypeError, ValueError):
            return ticks.get(v)

    def per_point(v, shape):
        """customdata / text as one label per point (None when it is a single value or absent)."""
        v = arr(v)
        if v is None or isinstance(v, str):
            return None
        a = np.asarray(v, dtype=object)
        if len(shape) == 2 and a.ndim >= 2 and a.shape[:2] == shape:
            return a
        if len(shape) == 1 and a.ndim >= 1 and a.shape[0] == shape[0]:
            return a
        return None

    rows = []
    for k, tr in enumerate(fig.data):
        name = getattr(tr, "name", None) or _panel_title(fig, tr) or f"trace {k}"
        kind = tr.type
        xt, yt = _ticks(fig, tr, "x"), _ticks(fig, tr, "y")
        z = arr(getattr(tr, "z", None))
        if z is not None:
            z = np.asarray(z, dtype=object)
            if z.ndim != 2:
                continue
            cd = per_point(getattr(tr, "customdata", None), z.shape)
            tx = per_point(getattr(tr, "text", None), z.shape)
            xs = list(arr(tr.x)) if getattr(tr, "x", None) is not None else list(range(z.shape[1]))
            ys = list(arr(tr.y)) if getattr(tr, "y", None) is not None else list(range(z.shape[0]))
            for i in range(z.shape[0]):
                for j in range(z.shape[1]):
                    x, y = xs[j] if j < len(xs) else j, ys[i] if i < len(ys) else i
                    rows.append({"trace": name, "type": kind, "x": x, "y": y, "value": z[i, j],
                                 "x_label": tick(xt, x), "y_label": tick(yt, y),
                                 "label": None if cd is None else _plain(cd[i, j]),
                                 "text": None if tx is None else _plain(tx[i, j])})
            continue
        x, y = arr(getattr(tr, "x", None)), arr(getattr(tr, "y", None))
        if x is None and y is None:
            continue
        n = len(x) if x is not None else len(y)
        cd = per_point(getattr(tr, "customdata", None), (n,))
        tx = per_point(getattr(tr, "text", None), (n,))
        for i in range(n):
            xv = x[i] if x is not None else i
            yv = y[i] if y is not None and i < len(y) else None
            rows.append({"trace": name, "type": kind, "x": xv, "y": yv, "value": None,
                         "x_label": tick(xt, xv), "y_label": tick(yt, yv),
                         "label": None if cd is None else _plain(cd[i]),
                         "text": None if tx is None else _plain(tx[i])})
    cols = ["trace", "type", "x", "y", "value", "x_label", "y_label", "label", "text"]
    df = pd.DataFrame(rows, columns=cols)
    df = df[[c for c in cols if c in cols[:5] or df[c].notna().any()]]   # label columns the chart has
    for c in ("x", "y", "value"):     # one type per column (Parquet needs it): numbers stay numbers
        num = pd.to_numeric(df[c], errors="coerce")
        df[c] = num if num.notna().sum() == df[c].notna().sum() else df[c].map(lambda v: None if v is None else str(v))
    return df
