"""Figures for interventions, causal tracing and probes: data in, plotly go.Figure out (no Streamlit).

The conventions of analysis_figures hold: tokens at integer x positions with tickvals/ticktext;
signed values on a diverging scale centred at 0 with a fixed range; each figure carries
layout.meta = {"view": ...} so tests can find it, and the *_data twins return what is drawn.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..engine import layer_index
from . import scales
from .analysis_figures import axis_label, style_figure, token_ticks

#: Restored fractions are drawn on [-1, 1]: 1 = the clean value, 0 = the corrupted one. Cells beyond
#: (a patch can overshoot) saturate; the hover shows the exact value.
RESTORED_RANGE = 1.0
QUANTITY_NAMES = {"h": "hidden state h", "c": "cell state c"}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


# -------------------------------------------------------------------------------- causal tracing
def patch_heatmap(grid, selected: tuple[str, int, int] | None = None) -> go.Figure:
    """Layer × position heatmap of the restored fraction, one panel per quantity (h, c): where the
    information that separates the two texts travels. `selected` = (quantity, layer, position), layer
    1 = the bottom, draws a box around one cell."""
    Q, L, T = grid.metric.shape
    labels = grid.labels()
    fig = make_subplots(rows=Q, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[f"patching the {QUANTITY_NAMES.get(q, q)}" for q in grid.quantities])
    r = grid.restored
    for qi, q in enumerate(grid.quantities):
        text = [[f"{v:+.0%}" if abs(v) >= 0.05 else "" for v in row] for row in r[qi]]
        fig.add_trace(go.Heatmap(
            z=r[qi], x=list(range(T)), y=[f"layer {l + 1}" for l in range(L)], zmid=0, name=q,   # h or c
            zmin=-RESTORED_RANGE, zmax=RESTORED_RANGE, colorscale=scales.DIVERGING, text=text,
            texttemplate="%{text}", textfont=dict(size=11), xgap=1, ygap=1,
            customdata=np.array([[labels] * L][0], dtype=object),
            hovertemplate="%{y}, position %{x} (%{customdata})<br>restored %{z:.3f}<extra>" + q + "</extra>",
            colorbar=dict(title="restored", len=0.9, tickformat=".0%"), showscale=qi == 0), row=qi + 1, col=1)
        fig.update_yaxes(autorange="reversed", row=qi + 1, col=1)
    fig.update_xaxes(**token_ticks(labels), tickangle=-45 if T > 12 else 0, row=Q, col=1)
    if selected is not None and selected[0] in grid.quantities:
        qi = grid.quantities.index(selected[0])
        _, layer, t = selected
        l = layer_index(layer, L)                  # the row of the heatmap (row 0 = layer 1)
        fig.add_shape(type="rect", x0=t - 0.5, x1=t + 0.5, y0=l - 0.5, y1=l + 0.5, line=dict(color="#000", width=3),
                      row=qi + 1, col=1)
    title = (f"Restored share of log P({grid.target}) − log P({grid.versus}): clean {grid.metric_clean:+.3f}, "
             f"corrupted {grid.metric_corrupt:+.3f}")
    style_figure(fig, title, height=170 + 110 * Q * L, meta={"view": "patch_heatmap"})
    fig.update_layout(title=dict(text=title, font=dict(size=15)))
    return fig


def patched_run_lines(run, clean_tokens) -> go.Figure:
    """‖patched − corrupted‖ of h (and c) in every layer at every step: where the patch spreads."""
    T = len(run.tokens)
    fig = go.Figure()
    qs = ["h"] + (["c"] if run.c is not None else [])
    for qi, q in enumerate(qs):
        d = run.state_change(q)
        for l in range(d.shape[0]):
            fig.add_trace(go.Scatter(x=list(range(T)), y=d[l], mode="lines+markers", name=f"‖Δ{q}‖ layer {l + 1}",
                                     line=dict(color=COLOURS[l % len(COLOURS)], dash="solid" if q == "h" else "dot")))
    labels = [a if a.lower() == b.lower() else f"{a}/{b}" for a, b in zip(clean_tokens, run.tokens)]
    fig.update_xaxes(**token_ticks(labels), tickangle=-45 if T > 12 else 0)
    fig.add_vline(x=run.position, line=dict(color="#555", dash="dash"))
    fig.update_yaxes(title="distance from the corrupted run")
    what = f"{run.quantity} of layer {run.layer} at position {run.position}" if run.quantity else "nothing"
    return style_figure(fig, f"Patched {what}: restored {run.restored:+.1%}", height=360,
                   meta={"view": "patched_run"}, legend=dict(orientation="h", y=1.02, x=1, xanchor="right",
                                                              yanchor="bottom"))


def strongest_table(grid, n: int = 12):
    """The n strongest cells as a table for the page (layers numbered from 1, as in PatchGrid.frame)."""
    return grid.strongest(n)


def patch_summary(grid) -> str:
    """One sentence: the two metrics and the strongest cells other than the trivial one (the top
    layer's h at the last position, which restores everything by construction)."""
    df = grid.strongest(len(grid.frame()))
    T = grid.metric.shape[2]
    L = grid.metric.shape[1]
    trivial = (df["quantity"] == "h") & (df["layer"] == L) & (df["position"] == T - 1)
    top = df[~trivial].head(3)
    cells = "; ".join(f"{r.quantity} of layer {r.layer} at “{r.token}” ({r.position}): {r.restored:+.0%}"
                      for r in top.itertuples())
    return (f"log P({grid.target}) − log P({grid.versus}) after the last token: clean {grid.metric_clean:+.3f}, "
            f"corrupted {grid.metric_corrupt:+.3f} (difference {grid.difference:+.3f}). Strongest cells: {cells}.")


# ---------------------------------------------------------------------------------- interventions
def intervention_summary(result, t: int = -1) -> str:
    """One sentence: what the change did to the chosen words after step t (default the last)."""
    ws = result.words_at(t)
    t = t % result.T
    bits = [f"P({w['word']}) {w['p_before']:.3g} → {w['p_after']:.3g}" for w in ws]
    if len(ws) >= 2 and all(w["p_before"] > 0 and w["p_after"] > 0 for w in ws[:2]):
        a, b = ws[0], ws[1]
        bits.append(f"P({a['word']})/P({b['word']}) {a['p_before'] / b['p_before']:.3g} → "
                    f"{a['p_after'] / b['p_after']:.3g}")
    what = "; ".join(iv.describe() for iv in result.interventions)
    if not bits:                       # no chosen word is one token of this model (a character model: "miss")
        unknown = ", ".join(f"“{w}”" for w in getattr(result, "unknown_words", ())) or "none chosen"
        return (f"{what}. After “{result.tokens[t]}” (step {t}): no word to follow is one token of this model "
                f"({unknown}).")
    return f"{what}. After “{result.tokens[t]}” (step {t}): " + ", ".join(bits) + "."


#: A change that moves log P(a) − log P(b) of the first two chosen words by less than this (nats, a
#: factor of about 1.1) is called a null example on the page.
NULL_NATS = 0.1


def intervention_effect_note(result, t: int = -1) -> str | None:
    """When the change barely moves the first two chosen words' log-ratio after step t: one sentence
    saying so (a null example, with the size), else None."""
    ws = result.words_at(t)
    if len(ws) < 2 or not all(w["p_before"] > 0 and w["p_after"] > 0 for w in ws[:2]):
        return None
    a, b = ws[0], ws[1]
    moved = (np.log(a["p_after"]) - np.log(b["p_after"])) - (np.log(a["p_before"]) - np.log(b["p_before"]))
    if abs(moved) >= NULL_NATS:
        return None
    return (f"A null example: this change moves log P({a['word']}) − log P({b['word']}) by only {moved:+.3f} nats. "
            "Rank the units below to find ones that matter.")


def intervention_effect(result) -> go.Figure:
    """Δ log P (changed − unchanged) of the actual next word and of each chosen word after every
    step; the steps where the intervention applies are shaded."""
    T = result.T
    fig = go.Figure()
    for iv in result.interventions:
        stop = T - 1 if iv.stop is None else iv.stop
        fig.add_vrect(x0=iv.start - 0.5, x1=stop + 0.5, fillcolor="#fdd49e", opacity=0.35, line_width=0)
    x = list(range(T - 1))
    fig.add_trace(go.Bar(x=x, y=result.delta_next[:-1], name="actual next word", marker_color="#bbbbbb",
                         customdata=list(result.tokens[1:]),
                         hovertemplate="after position %{x}: Δ log P(%{customdata}) = %{y:.3f}<extra></extra>"))
    for j, w in enumerate(result.words):
        fig.add_trace(go.Scatter(x=list(range(T)), y=result.delta_words[:, j], mode="lines+markers",
                                 name=f"“{w}”", line=dict(color=COLOURS[j % len(COLOURS)]),
                                 customdata=[axis_label(t) for t in result.tokens],     # the token: hover and data
                                 hovertemplate=f"after “%{{customdata}}” (position %{{x}}): Δ log P({w}) = "
                                               "%{y:.3f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#888", width=1))
    fig.update_xaxes(**_long_text_ticks(result.tokens))
    fig.update_yaxes(title="Δ log P (changed − unchanged)")
    fig = style_figure(fig, "What the change does to the next-word predictions", height=400,
                       meta={"view": "intervention_effect"}, barmode="overlay")
    return _legend_under_title(fig)


def state_change_lines(result) -> go.Figure:
    """‖changed − unchanged‖ of h and c in every layer at every step."""
    T = result.T
    fig = go.Figure()
    qs = ["h"] + (["c"] if result.c is not None else [])
    for q in qs:
        d = result.state_change(q)
        for l in range(d.shape[0]):
            fig.add_trace(go.Scatter(x=list(range(T)), y=d[l], mode="lines+markers", name=f"‖Δ{q}‖ layer {l + 1}",
                                     line=dict(color=COLOURS[l % len(COLOURS)], dash="solid" if q == "h" else "dot"),
                                     customdata=[axis_label(t) for t in result.tokens]))   # the token, in the data
    fig.update_xaxes(**_long_text_ticks(result.tokens))
    fig.update_yaxes(title="distance from the unchanged run")
    fig = style_figure(fig, "What the change does to the later states", height=360, meta={"view": "state_change"})
    return _legend_under_title(fig)


#: Token labels a chart of a whole text shows at most: rotated labels of a long text smeared into one
#: another at views.MAX_TICKS in a half-width chart.
LONG_TEXT_TICKS = 24


def _long_text_ticks(tokens) -> dict:
    """A token x axis for a chart over a whole (possibly long) text: at most LONG_TEXT_TICKS labels,
    rotated and smaller past 12 tokens."""
    T = len(tokens)
    return dict(**token_ticks(tokens, most=LONG_TEXT_TICKS), tickangle=-45 if T > 12 else 0,
                tickfont=dict(size=11 if T > LONG_TEXT_TICKS else 13), automargin=True)


def _legend_under_title(fig: go.Figure) -> go.Figure:
    """The title in its own band at the top and the legend in the band below it, above the plot: a
    horizontal legend anchored at the plot's top grew up into the title when it had several entries."""
    fig.update_layout(title=dict(y=0.985, yanchor="top", yref="container"), margin=dict(t=104),
                      legend=dict(orientation="h", yref="container", y=0.985 - 38 / (fig.layout.height or 400),
                                  yanchor="top", x=1, xanchor="right"))
    return fig


def next_words_data(result, t: int, k: int = 8):
    """The union of the top-k next words before and after the change at step t, with both probabilities."""
    import pandas as pd
    before = dict(result.top_words(t, k, 0))
    after = dict(result.top_words(t, k, 1))
    words = list(dict.fromkeys(list(before) + list(after)))
    rows = []
    for w in words:
        rows.append({"word": w, "p_before": before.get(w, np.nan), "p_after": after.get(w, np.nan)})
    for j, w in enumerate(result.words):
        if w not in words:
            rows.append({"word": w, "p_before": float(np.exp(result.word_logp[0, t, j])),
                         "p_after": float(np.exp(result.word_logp[1, t, j]))})
    return pd.DataFrame(rows)


def next_words_bars(result, t: int, k: int = 8, kind: str = "word") -> go.Figure:
    """The next-word distribution after step t, unchanged against changed (`kind`: "character" for a
    character model's title)."""
    df = next_words_data(result, t, k)
    fig = go.Figure()
    fig.add_trace(go.Bar(y=df["word"].map(axis_label), x=df["p_before"], orientation="h", name="unchanged",
                         marker_color="#9ecae1"))
    fig.add_trace(go.Bar(y=df["word"].map(axis_label), x=df["p_after"], orientation="h", name="changed",
                         marker_color="#e6550d"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="probability", tickformat=".0%")
    fig = style_figure(fig, f"Next {kind} after “{axis_label(result.tokens[t])}” (step {t})", height=190 + 26 * len(df),
                  meta={"view": "intervention_next_words"}, barmode="group",
                  legend=dict(orientation="h", y=-0.3, x=1, xanchor="right", yanchor="top"))
    fig.update_layout(margin=dict(b=110))
    return fig


def unit_effect_bars(df, top: int = 20) -> go.Figure:
    """The units whose change moves the metric most (explorer.analysis.intervene.unit_effects)."""
    d = df.head(top)
    fig = go.Figure(go.Bar(x=[f"unit {u}" for u in d["unit"]], y=d["effect"],
                           marker_color=["#b2182b" if v > 0 else "#2166ac" for v in d["effect"]],
                           hovertemplate="%{x}: Δ = %{y:.4f}<extra></extra>"))
    fig.update_yaxes(title=f"Δ {df.attrs.get('metric', 'metric')}")
    return style_figure(fig, f"Units of layer {df.attrs.get('layer', '')} {df.attrs.get('quantity', '')}, each changed "
                        "on its own: the largest effects", height=360, meta={"view": "unit_effects"})


# -------------------------------------------------------------------------------------- probes
def probe_bars(report) -> go.Figure:
    """Task accuracy, control accuracy and the majority baseline for every layer and quantity."""
    names = [f"layer {s.layer} {s.quantity}" for s in report.scores]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[s.accuracy for s in report.scores], name="task", marker_color="#31a354",
                         text=[f"{s.accuracy:.1%}" for s in report.scores], textposition="outside"))
    fig.add_trace(go.Bar(x=names, y=[s.control_accuracy for s in report.scores], name="control (random label per word)",
                         marker_color="#bdbdbd", text=[f"{s.control_accuracy:.1%}" for s in report.scores],
                         textposition="outside"))
    maj = report.scores[0].majority if report.scores else 0
    # the baseline is named in the legend: a label on the line was drawn over the first bar
    fig.add_hline(y=maj, line=dict(color="#d62728", dash="dash"))
    fig.add_trace(go.Scatter(x=[None], y=[maj], mode="lines", name=f"majority label {maj:.1%}",
                             line=dict(color="#d62728", dash="dash"), hoverinfo="skip"))
    fig.update_yaxes(title="accuracy on the test books", range=[0, 1.08], tickformat=".0%")
    fig = style_figure(fig, f"Probe for “{report.task}”: task against control (selectivity = the gap)", height=420,
                       meta={"view": "probe_bars"}, barmode="group")
    return _legend_under_title(fig)


def probe_readout_lines(probs, tokens, label_names) -> go.Figure:
    """A probe's label probabilities word by word: 'what the layer thinks', under a token strip."""
    T = len(tokens)
    fig = go.Figure()
    for j, n in enumerate(label_names):
        fig.add_trace(go.Scatter(x=list(range(T)), y=probs[:, j], mode="lines+markers", name=n,
                                 line=dict(color=COLOURS[j % len(COLOURS)])))
    fig.update_xaxes(**token_ticks(tokens), tickangle=-45 if T > 12 else 0)
    fig.update_yaxes(title="probability", range=[0, 1])
    return style_figure(fig, None, height=260, meta={"view": "probe_readout"},
                   legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
