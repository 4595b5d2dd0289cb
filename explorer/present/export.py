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


def figure_frame(fig):
    """The numbers behind any Plotly figure as one tidy DataFrame: one row per plotted value, with the
    trace's name and type, its x and y (category labels where the axis has tick text) and, for
    heatmaps, the value z. So every analysis chart's data can be downloaded as CSV / Parquet / JSON."""
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

    rows = []
    for k, tr in enumerate(fig.data):
        name = getattr(tr, "name", None) or f"trace {k}"
        kind = tr.type
        z = arr(getattr(tr, "z", None))
        if z is not None:
            z = np.asarray(z, dtype=object)
            if z.ndim != 2:
                continue
            xs = list(arr(tr.x)) if getattr(tr, "x", None) is not None else list(range(z.shape[1]))
            ys = list(arr(tr.y)) if getattr(tr, "y", None) is not None else list(range(z.shape[0]))
            for i in range(z.shape[0]):
                for j in range(z.shape[1]):
                    rows.append({"trace": name, "type": kind, "x": xs[j] if j < len(xs) else j,
                                 "y": ys[i] if i < len(ys) else i, "value": z[i, j]})
            continue
        x, y = arr(getattr(tr, "x", None)), arr(getattr(tr, "y", None))
        if x is None and y is None:
            continue
        n = len(x) if x is not None else len(y)
        for i in range(n):
            rows.append({"trace": name, "type": kind, "x": x[i] if x is not None else i,
                         "y": y[i] if y is not None and i < len(y) else None, "value": None})
    df = pd.DataFrame(rows, columns=["trace", "type", "x", "y", "value"])
    for c in ("x", "y", "value"):     # one type per column (Parquet needs it): numbers stay numbers
        num = pd.to_numeric(df[c], errors="coerce")
        df[c] = num if num.notna().sum() == df[c].notna().sum() else df[c].map(lambda v: None if v is None else str(v))
    return df
