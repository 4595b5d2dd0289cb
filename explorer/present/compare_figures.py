"""Figures of a comparison of two models (explorer.analysis.compare): the token strip coloured by
Δ surprisal, and the units that changed most. Each figure has a *_data twin returning the DataFrame
it draws, labels included.

The strip's colours are fixed (scales.DELTA_SURPRISAL_BITS), centred at 0: red where B is more
surprised than A (worse), blue where it is less (better), white for no change, grey for the
boundary token (not scored).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .analysis_figures import DIVERGING, axis_label, style_figure, token_colors, token_ticks
from .scales import DELTA_SURPRISAL_BITS

#: Up to this many tokens the strip writes each token's Δ in its cell; past it the cells are too narrow.
CELL_TEXT_MAX = 40


def _span(n: int, window) -> tuple[int, int]:
    return (0, n) if window is None else (max(0, int(window[0])), min(n, int(window[1])))


def delta_strip_data(cmp, window=None, vmax: float = DELTA_SURPRISAL_BITS) -> pd.DataFrame:
    """One row per token drawn (those of `window` [a, b) when given): position, token, label (as on
    the axis), surprisal_a, surprisal_b, delta (bits, B − A), cell (the Δ written in the cell), color
    (the cell's colour), vmax."""
    lo, hi = _span(cmp.n, window)
    d = np.asarray(cmp.delta[lo:hi], np.float64)
    toks = cmp.tokens[lo:hi]
    return pd.DataFrame({"position": np.arange(lo, hi), "token": toks, "label": [axis_label(t) for t in toks],
                         "surprisal_a": cmp.surprisal_a[lo:hi], "surprisal_b": cmp.surprisal_b[lo:hi], "delta": d,
                         "cell": [("0" if abs(v) < 0.05 else f"{v:+.1f}") if np.isfinite(v) else "" for v in d],
                         "color": token_colors(d, vmax), "vmax": float(vmax)})


def delta_strip(cmp, window=None, selected: int | None = None, vmax: float = DELTA_SURPRISAL_BITS) -> go.Figure:
    """The text as one row of cells coloured by Δ surprisal (B − A, bits; red: B worse, blue: B better),
    on a fixed symmetric range; the `selected` token outlined."""
    df = delta_strip_data(cmp, window, vmax)
    x = df["position"].tolist()
    hover = [f"{lab}<br>A: {a:.2f} bits<br>B: {b:.2f} bits<br>Δ: {d:+.2f}" if np.isfinite(d) else f"{lab}: not scored"
             for lab, a, b, d in zip(df["label"], df["surprisal_a"], df["surprisal_b"], df["delta"])]
    fig = go.Figure(go.Heatmap(
        z=[df["delta"].tolist()], x=x, y=[0], colorscale=DIVERGING, zmid=0, zmin=-vmax, zmax=vmax,
        text=[df["cell"].tolist() if len(df) <= CELL_TEXT_MAX else [""] * len(df)], texttemplate="%{text}",
        textfont=dict(size=12), customdata=[hover], hovertemplate="%{customdata}<extra></extra>", xgap=1,
        colorbar=dict(title=dict(text="Δ bits", side="top"), thickness=12, len=1.0, tickvals=[-vmax, 0, vmax],
                      ticktext=[f"−{vmax:g}", "0", f"+{vmax:g}"], tickfont=dict(size=12))))
    if selected is not None and x and x[0] <= selected <= x[-1]:
        fig.add_shape(type="rect", x0=selected - 0.5, x1=selected + 0.5, y0=-0.5, y1=0.5,
                      line=dict(color="#e8a200", width=3))   # gold: seen on white and on dark blue
    fig.update_xaxes(**token_ticks(cmp.tokens[x[0]:x[-1] + 1] if x else [], x[0] if x else 0, df["label"].tolist(),
                                   selected), tickangle=-45 if len(df) > 12 else 0, showgrid=False)
    fig.update_yaxes(visible=False)
    style_figure(fig, f"Δ surprisal (bits): {axis_label(cmp.name_b)} − {axis_label(cmp.name_a)}"
                      "<br><sup>red: B is more surprised (worse) · blue: less (better)</sup>", height=260)
    return fig.update_layout(margin=dict(l=20, r=20, t=70, b=90))


def changed_units_data(cmp, n: int = 12) -> pd.DataFrame:
    """The n units that changed most (Comparison.changed_units: rank, layer from 1, unit, dh, dc) with
    the label drawn under each bar ("L2 · 255"). Empty when the state shapes differ."""
    df = cmp.changed_units(n)
    df["label"] = [f"L{int(l)} · {int(u)}" for l, u in zip(df["layer"], df["unit"])]
    return df


def changed_units_bars(cmp, n: int = 12) -> go.Figure:
    """Mean |Δh| (and |Δc| for LSTMs) over the text of the units that changed most, largest first."""
    df = changed_units_data(cmp, n)
    x = list(range(len(df)))
    bars = [go.Bar(x=x, y=df["dh"], name="mean |Δh|", marker_color="#1f77b4",
                   customdata=df["label"], hovertemplate="%{customdata}: mean |Δh| %{y:.3f}<extra></extra>")]
    if cmp.dc is not None:
        bars.append(go.Bar(x=x, y=df["dc"], name="mean |Δc|", marker_color="#ff7f0e",
                           customdata=df["label"], hovertemplate="%{customdata}: mean |Δc| %{y:.3f}<extra></extra>"))
    fig = go.Figure(bars)
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=df["label"].tolist(), title="layer · unit")
    fig.update_yaxes(title="mean |B − A| over the text", rangemode="tozero")
    where = "every layer" if cmp.layer is None else f"layer {cmp.layer}"
    return style_figure(fig, f"The units that changed most ({where}, ranked by mean |Δh|)", barmode="group",
                        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))


def summary_sentence(cmp) -> str:
    """One sentence: over how many tokens, how many bits per token B is better or worse than A."""
    n, d = len(cmp.scored), cmp.mean_delta
    a, b = cmp.mean_surprisal("a"), cmp.mean_surprisal("b")
    if not n:
        return "No token of this text is scored."
    if d == 0:
        return f"Over {n} tokens, {cmp.name_b} (B) and {cmp.name_a} (A) are equally surprised by every token."
    how = "less" if d < 0 else "more"
    verdict = "better" if d < 0 else "worse"
    return (f"Over {n} tokens, {cmp.name_b} (B) is {abs(d):.3g} bits per token {how} surprised than "
            f"{cmp.name_a} (A), i.e. {verdict}: {b:.3g} against {a:.3g} bits on average.")
