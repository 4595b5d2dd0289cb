"""Figures for the analyses: pure functions, data in, plotly go.Figure out (no Streamlit).

Conventions (traps of this stack, learnt the hard way):
* tokens sit at integer x positions with tickvals/ticktext, so a repeated word ("the", ",") keeps
  its own column instead of being merged by a categorical axis;
* signed quantities use a diverging scale centred at 0 (zmid=0) with a fixed symmetric range, so a
  colour means the same value in every step and in both panes of a comparison;
* each builder that colours tokens has a *_data twin returning the DataFrame behind it.
"""
from __future__ import annotations

import html as _html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from .views import explained, thin_ticks, visible

DIVERGING = "RdBu_r"          # negative blue, 0 white, positive red
SEQUENTIAL = "Viridis"
_NEG, _MID, _POS = (33, 102, 172), (247, 247, 247), (178, 24, 43)
FONT = dict(size=16)          # readable on a projector


def style_figure(fig: go.Figure, title: str | None = None, height: int | None = None, **kw) -> go.Figure:
    fig.update_layout(title=title, font=FONT, margin=dict(l=60, r=20, t=60 if title else 20, b=60),
                      template="plotly_white", **({"height": height} if height else {}), **kw)
    return fig


def token_ticks(tokens: Sequence[str], start: int = 0, text: Sequence[str] | None = None,
           keep: int | None = None, most: int | None = None) -> dict:
    """A token axis at integer positions start, start+1, ...; `text` replaces the labels; thinned (to
    `most` labels, default views.MAX_TICKS). Every label is also kept as the axis's categoryarray, which
    Plotly ignores on a linear axis: export.figure_frame reads it, so a chart's data download names
    every token, not only the ones with a tick."""
    text = [axis_label(t) for t in tokens] if text is None else list(text)
    vals = thin_ticks(len(text), start, keep) if most is None else thin_ticks(len(text), start, keep, most)
    return dict(tickmode="array", tickvals=vals, ticktext=[text[v - start] for v in vals], categoryarray=text)


def axis_label(t: str) -> str:
    """A token as Plotly text. Plotly reads a subset of HTML in labels, so a token such as "<b>" or
    "<eos>" is escaped to be shown as typed, never interpreted."""
    return _html.escape(visible(t), quote=False)


def _sym(values, vmax: float | None) -> float:
    if vmax is not None:
        return float(vmax)
    a = np.abs(np.asarray(values, np.float64))
    a = a[np.isfinite(a)]
    m = float(a.max()) if a.size else 0.0
    return m if m > 0 else 1.0


# ----------------------------------------------------------------------------------- token colours

def token_colors(values, vmax: float | None = None) -> list[str]:
    """Background colour of each token for a signed score: blue < 0 < red, white at 0, fixed range
    [-vmax, vmax] (default the largest |value|). NaN (e.g. the boundary token) is light grey."""
    vmax = _sym(values, vmax)
    out = []
    for v in np.asarray(values, np.float64):
        if not np.isfinite(v):
            out.append("#e0e0e0")
            continue
        s = float(np.clip(v / vmax, -1, 1))
        end = _POS if s >= 0 else _NEG
        rgb = [round(m + abs(s) * (e - m)) for m, e in zip(_MID, end)]
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return out


def _text_color(values, vmax: float) -> list[str]:
    return ["#ffffff" if np.isfinite(v) and abs(v) / vmax > 0.6 else "#000000"
            for v in np.asarray(values, np.float64)]


def attribution_strip_data(attr, method: str = "integrated_gradients", vmax: float | None = None):
    """DataFrame behind the token strip: position, token, score, colour, text colour, vmax."""
    import pandas as pd
    s = np.asarray(attr.scores[method], np.float64)
    vmax = _sym(s, vmax)
    return pd.DataFrame({"position": np.arange(len(s)), "token": list(attr.tokens), "score": s,
                         "color": token_colors(s, vmax), "text_color": _text_color(s, vmax),
                         "vmax": vmax})


def attribution_strip(attr, method: str = "integrated_gradients", vmax: float | None = None) -> go.Figure:
    """One row of tokens coloured by their contribution to log P(target) (red raises it)."""
    from ..analysis.attribution import LABELS
    s = np.asarray(attr.scores[method], np.float64)
    vmax = _sym(s, vmax)
    fig = go.Figure(go.Heatmap(
        z=[s], x=list(range(len(s))), y=[0], colorscale=DIVERGING, zmid=0, zmin=-vmax, zmax=vmax,
        text=[[axis_label(t) for t in attr.tokens]], texttemplate="%{text}", textfont=dict(size=16),
        customdata=[[axis_label(t) for t in attr.tokens]], hovertemplate="%{customdata}: %{z:.4f}<extra></extra>",
        colorbar=dict(title="Δ log P")))
    fig.update_xaxes(**token_ticks(attr.tokens), showgrid=False)
    fig.update_yaxes(visible=False)
    return style_figure(fig, f"{LABELS.get(method, method)}: which tokens raise {_html.escape(explained(attr), quote=False)} = "
                        f"{attr.logprob:.2f}", height=220)


def attribution_bars(attr) -> go.Figure:
    """Every method's scores side by side, one group of bars per token."""
    from ..analysis.attribution import LABELS
    x = list(range(len(attr.tokens)))
    fig = go.Figure([go.Bar(x=x, y=np.asarray(v), name=LABELS.get(m, m)) for m, v in attr.scores.items()])
    fig.update_xaxes(**token_ticks(attr.tokens))
    fig.update_yaxes(title="contribution to log P", zeroline=True)
    return style_figure(fig, f"Attribution of {_html.escape(explained(attr), quote=False)} after “{axis_label(attr.tokens[-1])}”",
                   barmode="group")


# ------------------------------------------------------------------------------------------ contrast

def _pair_ticks(c) -> list[str]:
    return [axis_label(a) if a == b else f"{axis_label(a)} | {axis_label(b)}" for a, b in zip(c.tokens_a, c.tokens_b)]


def _span(n: int, window) -> tuple[int, int]:
    return (0, n) if window is None else (max(0, int(window[0])), min(n, int(window[1])))


def delta_norm_data(c, window=None):
    """Long DataFrame behind delta_norm_lines: position, label, layer (1 = the bottom layer), quantity,
    value (steps window[0]..window[1]-1 only, when given)."""
    import pandas as pd
    rows = []
    lo, hi = _span(c.n, window)
    labels = _pair_ticks(c)[lo:hi]
    for name, arr in (("h", c.dh), ("c", c.dc)):
        if arr is None:
            continue
        for l in range(arr.shape[0]):
            rows.append(pd.DataFrame({"position": np.arange(lo, hi), "label": labels, "layer": l + 1,
                                      "quantity": name, "value": arr[l][lo:hi]}))
    return pd.concat(rows, ignore_index=True)


def delta_norm_lines(c, window=None, selected: int | None = None) -> go.Figure:
    """‖Δh‖ (solid) and ‖Δc‖ (dashed) per layer at every aligned step (of `window`, a long text's
    stretch around the compared step)."""
    fig = go.Figure()
    df = delta_norm_data(c, window)
    lo, hi = _span(c.n, window)
    for (q, l), g in df.groupby(["quantity", "layer"], sort=True):
        fig.add_trace(go.Scatter(x=g["position"], y=g["value"], mode="lines+markers" if hi - lo <= 120 else "lines",
                                 name=f"‖Δ{q}‖ layer {l}", line=dict(dash="solid" if q == "h" else "dash")))
    fig.update_xaxes(**token_ticks(c.tokens_a[lo:hi], lo, _pair_ticks(c)[lo:hi], selected),
                     title="step (A | B where they differ)")
    fig.update_yaxes(title="distance between the two states", rangemode="tozero")
    return style_figure(fig, "How far apart the two states are after each token")


def delta_heatmap(c, quantity: str = "h", layer: int = -1, zmax: float | None = None, window=None,
                  selected: int | None = None) -> go.Figure:
    """B − A for every unit (rows) at every aligned step (columns; those of `window` when given) in
    `layer` (1 = the bottom layer, -1 = the top).
    Fixed symmetric range: for h and the gates the largest possible difference (2 for tanh
    quantities, 1 for sigmoid gates)."""
    from ..trace import RANGES
    d = c.delta(quantity, layer)
    if zmax is None:
        lo, hi = RANGES.get(quantity, (None, None))
        zmax = (hi - lo) if lo is not None else _sym(d, None)
    lo, hi = _span(c.n, window)
    fig = go.Figure(go.Heatmap(z=d[lo:hi].T, x=list(range(lo, hi)), colorscale=DIVERGING, zmid=0, zmin=-zmax,
                               zmax=zmax, colorbar=dict(title=f"Δ{quantity}"),
                               hovertemplate="step %{x}, unit %{y}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(**token_ticks(c.tokens_a[lo:hi], lo, _pair_ticks(c)[lo:hi], selected))
    fig.update_yaxes(title="unit")
    return style_figure(fig, f"{quantity}(B) − {quantity}(A), layer {c.a.layer(layer).layer}")


def next_word_bars(df, top: int = 12) -> go.Figure:
    """The two next-word distributions at the aligned step: chosen words first, then the top words."""
    d = df[df["in_vocab"]].head(top)
    pos = d.attrs.get("position", df.attrs.get("position"))
    fig = go.Figure([go.Bar(x=list(range(len(d))), y=d["p_a"], name="A"),
                     go.Bar(x=list(range(len(d))), y=d["p_b"], name="B")])
    fig.update_xaxes(**{**token_ticks(list(d["word"]))})
    fig.update_yaxes(title="P(next word)", rangemode="tozero")
    title = "Next-word probabilities" + (f" after step {pos}" if pos is not None else "")
    return style_figure(fig, title, barmode="group")


# -------------------------------------------------------------------------------------------- memory

def memory_matrix_heatmap(mm, zmax: float | None = None) -> go.Figure:
    """Rows: when a token wrote to the cell; columns: now. Signed (one unit) or norms (layer)."""
    signed = mm.unit is not None
    kw = (dict(colorscale=DIVERGING, zmid=0, zmin=-_sym(mm.values, zmax), zmax=_sym(mm.values, zmax))
          if signed else dict(colorscale=SEQUENTIAL, zmin=0, zmax=_sym(mm.values, zmax)))
    T, start = len(mm.tokens), getattr(mm, "start", 0)       # a window of the text: steps start..start+T-1
    pos = list(range(start, start + T))
    fig = go.Figure(go.Heatmap(z=mm.values, x=pos, y=pos, **kw,
                               colorbar=dict(title="part of c" if signed else "‖part‖"),
                               hovertemplate="written at %{y}, still there at %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(**token_ticks(mm.tokens, start), title="now (step t)")
    fig.update_yaxes(**token_ticks(mm.tokens, start), title="written at step k")
    what = f"unit {mm.unit}" if signed else "norm over units"
    return style_figure(fig, f"What each token wrote that is still in the cell state (layer {mm.layer}, {what})",
                   height=min(900, max(400, 22 * T + 150)))


def provenance_bars(prov, unit: int) -> go.Figure:
    """For one unit: each earlier token's surviving part of c_t (bars sum to c_t, minus the c_0 part)."""
    df = prov.unit_frame(unit)
    v = df["part"].to_numpy()
    fig = go.Figure(go.Bar(x=df["position"], y=v, marker_color=token_colors(v),
                           customdata=np.c_[df["write"], df["retention"]],
                           hovertemplate="wrote %{customdata[0]:.3f}, kept ×%{customdata[1]:.3f}"
                                         " → %{y:.4f}<extra></extra>"))
    fig.update_xaxes(**token_ticks(prov.tokens))
    fig.update_yaxes(title="part of c now", zeroline=True)
    return style_figure(fig, f"c = {prov.c[unit]:.3f} (unit {unit}, layer {prov.layer}, after "
                        f"“{axis_label(prov.tokens[-1])}”) = sum of these bars" + (
                            f" + {prov.initial[unit]:.3f} from c₀" if prov.initial[unit] else ""))


def half_life_chart(df, cap: float | None = None) -> go.Figure:
    """Each unit's half-life (steps), sorted longest first, log scale. Infinite ones drawn at the cap."""
    hl = df["half_life"].to_numpy(np.float64)
    finite = hl[np.isfinite(hl)]
    cap = cap or (float(finite.max()) * 2 if finite.size else 1e3)
    y = np.minimum(hl, cap)
    fig = go.Figure(go.Bar(x=df["rank"], y=y, customdata=np.c_[df["unit"], df["mean_forget"]],
                           hovertemplate="unit %{customdata[0]}: f̄ = %{customdata[1]:.3f}, half-life "
                                         "%{y:.1f} steps<extra></extra>"))
    fig.update_xaxes(title="units, longest memory first")
    fig.update_yaxes(title="half-life (steps)", type="log")
    return style_figure(fig, "Memory half-life of each unit: ln 0.5 / ln f̄")


def fade_curves(df, metric: str = "dh_rel", by: str | Sequence[str] = "model") -> go.Figure:
    """How the first word's influence fades: one line per model (df from compare_fade), or per
    model and replacement word (df from replacement_fade, by=("model", "replacement"))."""
    names = {"dh": "‖Δh‖", "dh_rel": "‖Δh‖ / ‖h‖", "tv": "total variation of P(next)", "kl": "KL(P ‖ P')"}
    fig = go.Figure()
    keys = [by] if isinstance(by, str) else list(by)
    for name, g in df.groupby(keys, sort=False):
        label = " / ".join(map(str, name)) if isinstance(name, tuple) else str(name)
        fig.add_trace(go.Scatter(x=g["position"], y=g[metric], mode="lines+markers", name=label))
    first = df[(df[keys] == df[keys].iloc[0]).all(axis=1)]          # one line's steps and tokens
    fig.update_xaxes(tickmode="array", tickvals=list(first["position"]),
                     ticktext=[axis_label(t) for t in first["token"]], title="later step")
    fig.update_yaxes(title=names.get(metric, metric), rangemode="tozero")
    return style_figure(fig, "Change caused by replacing the first word, step by step")


# ----------------------------------------------------------------------------------------- unrolled

def unrolled_data(tr, layer: int = -1, start: int = 0, max_steps: int = 8, n_units: int = 24) -> dict:
    """Boxes, sparklines and arrows of the unrolled network, drawn from a real trace: h of `layer`
    (1 = the bottom layer, -1 = the top, the default); "layer" gives its number.

    boxes: DataFrame step, x0, x1, y0, y1, token, top_word, top_prob (one box per step);
    sparklines: list of (xs, ys) per step, h_t's first n_units values mapped into its box;
    arrows: DataFrame kind ("recurrent" h_{t-1}→h_t, "input" x_t→box, "output" box→ŷ), x0, y0, x1, y1.
    """
    import pandas as pd
    T = len(tr)
    steps = list(range(max(0, start), min(T, max(0, start) + max_steps)))
    lay = tr.layer(layer)
    h = lay.h
    W, G, y0, y1 = 1.0, 0.5, 0.0, 1.0
    boxes, spark, arrows = [], [], []
    for n, t in enumerate(steps):
        x0 = n * (W + G)
        w, p = tr.top_words(t, 1)[0]
        boxes.append({"step": t, "x0": x0, "x1": x0 + W, "y0": y0, "y1": y1, "token": tr.words[t],
                      "top_word": w, "top_prob": p})
        v = np.asarray(h[t, :n_units], np.float64)
        xs = x0 + 0.08 + np.linspace(0, W - 0.16, len(v)) if len(v) > 1 else np.array([x0 + W / 2])
        spark.append((xs, 0.5 + 0.4 * np.clip(v, -1, 1)))
        arrows.append({"kind": "input", "step": t, "x0": x0 + W / 2, "y0": -0.6, "x1": x0 + W / 2, "y1": y0})
        arrows.append({"kind": "output", "step": t, "x0": x0 + W / 2, "y0": y1, "x1": x0 + W / 2, "y1": 1.6})
        if n:
            arrows.append({"kind": "recurrent", "step": t, "x0": x0 - G, "y0": 0.5, "x1": x0, "y1": 0.5})
    return {"boxes": pd.DataFrame(boxes), "sparklines": spark, "arrows": pd.DataFrame(arrows),
            "layer": lay.layer}


def unrolled_figure(tr, layer: int = -1, start: int = 0, max_steps: int = 8, n_units: int = 24) -> go.Figure:
    """The network unrolled over the text: x_t below each box, a sparkline of h_t inside, the top
    prediction above, and the recurrent arrow carrying h from box to box."""
    d = unrolled_data(tr, layer, start, max_steps, n_units)
    fig = go.Figure()
    for b in d["boxes"].itertuples():
        fig.add_shape(type="rect", x0=b.x0, x1=b.x1, y0=b.y0, y1=b.y1, line=dict(color="#444", width=2),
                      fillcolor="#f2f5fa", layer="below")     # below the sparkline (shapes default to above)
        fig.add_annotation(x=(b.x0 + b.x1) / 2, y=-0.75, text=f"x<sub>{b.step}</sub> = {axis_label(b.token)}",
                           showarrow=False, font=dict(size=16))
        fig.add_annotation(x=(b.x0 + b.x1) / 2, y=1.75, text=f"{axis_label(b.top_word)} {b.top_prob:.0%}",
                           showarrow=False, font=dict(size=14, color="#8b1a1a"))
    for xs, ys in d["sparklines"]:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#1f5fa8", width=2),
                                 showlegend=False, hoverinfo="skip"))
    for a in d["arrows"].itertuples():
        fig.add_annotation(x=a.x1, y=a.y1, ax=a.x0, ay=a.y0, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowwidth=2,
                           arrowcolor="#1f5fa8" if a.kind == "recurrent" else "#777", text="")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, range=[-1.0, 2.0])
    return style_figure(fig, f"The network unrolled: one box per step (h<sub>t</sub> of layer {d['layer']} "
                        "inside, next-word guess above)", height=360)


# --------------------------------------------------------------------------------- generation, etc.

def generation_bars(gen, window=None, selected: int | None = None) -> go.Figure:
    """P(token | what came before) for the prompt and for each generated token (coloured apart);
    positions window[0]..window[1]-1 only, when given (a long prompt)."""
    df = gen.frame()
    lo, hi = _span(len(df), window)
    df = df.iloc[lo:hi]
    colors = np.where(df["generated"], "#b2182b", "#2166ac")
    fig = go.Figure(go.Bar(x=df["position"], y=df["prob"], marker_color=list(colors), name="P(token | before)",
                           customdata=[axis_label(t) for t in df["token"]],          # the word: in hover and data
                           hovertemplate="%{customdata}: %{y:.3f}<extra></extra>"))
    fig.update_xaxes(**token_ticks(list(df["token"]), lo, keep=selected))
    fig.update_yaxes(title="P(token | before)", range=[0, 1])
    return style_figure(fig, "Prompt (blue) and sampled continuation (red)")


def author_bars(probs: dict) -> go.Figure:
    """The many-to-one classifier's output, e.g. {"austen": 0.8, "doyle": 0.2}."""
    names = list(probs)
    fig = go.Figure(go.Bar(x=[probs[n] for n in names], y=list(range(len(names))), orientation="h",
                           text=[f"{probs[n]:.0%}" for n in names], textposition="auto"))
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(names))), ticktext=names)
    fig.update_xaxes(range=[0, 1], title="probability")
    return style_figure(fig, "Who wrote it? (the final state → a logistic regression)", height=250)
