"""Figures and HTML for the corpus lens: the selection's units over the typed text, one small heatmap per
match, a unit's top contexts and histogram, the AUC ranking of units, and state trajectories over the
corpus density. Data in (from explorer.corpus.queries), go.Figure / HTML out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from . import scales
from .figures import FONT, PALETTE, figure_layout, esc, token_axis
from .views import visible

CHIP_CSS = """
<style>
.cl-ctx{font-family:"Source Sans Pro",Helvetica,Arial,sans-serif;font-size:15px;line-height:2.0;max-width:100%;
  overflow:hidden;overflow-wrap:anywhere}
.cl-ctx span.t{display:inline-block;line-height:1.5;padding:2px 4px;margin:2px 1px;border-radius:4px;white-space:pre}
.cl-ctx span.f{outline:2px solid #262730;outline-offset:0}
.cl-ctx sub{font-size:10px;color:inherit;opacity:.65;margin-left:1px}
.cl-ctx .meta{color:#6b6f76;font-size:12.5px;margin-right:8px}
</style>
"""


def _rgb(x: float, lo: float, hi: float) -> str:
    """Diverging colour of x on [lo, hi] centred at 0 (blue negative, red positive)."""
    if not np.isfinite(x):
        return "#dddddd"
    m = max(abs(lo), abs(hi)) or 1.0
    t = float(np.clip(x / m, -1, 1))
    a = abs(t)
    if t >= 0:
        c = (247 + (178 - 247) * a, 247 + (24 - 247) * a, 247 + (43 - 247) * a)
    else:
        c = (247 + (33 - 247) * a, 247 + (102 - 247) * a, 247 + (172 - 247) * a)
    return "#%02x%02x%02x" % tuple(int(round(v)) for v in c)


def _ink(x: float, lo: float, hi: float) -> str:
    m = max(abs(lo), abs(hi)) or 1.0
    return "white" if np.isfinite(x) and abs(x) / m > 0.6 else "#262730"


def _label(t: str) -> str:
    """A token as drawn: ¶ for the boundary, whitespace as glyphs (a space ␣, a line break ↵), as in
    every other view (views.visible): a space chip must not look empty."""
    return "¶" if t == "<eos>" else visible(t)


def context_html(tokens, values, focus, vrange=(-1.0, 1.0), meta: str = "", title: str = "",
                 numbers: bool = False) -> str:
    """One line of tokens coloured by value; the tokens in `focus` ([a, b) or one index) outlined;
    with `numbers`, each token's position written under it."""
    lo, hi = vrange
    a, b = (focus, focus + 1) if isinstance(focus, (int, np.integer)) else focus
    spans = []
    for k, (t, v) in enumerate(zip(tokens, values)):
        cls = "t f" if a <= k < b else "t"
        tip = f"{_label(t)}: {v:+.3f}" if np.isfinite(v) else _label(t)
        spans.append(f'<span class="{cls}" style="background:{_rgb(v, lo, hi)};color:{_ink(v, lo, hi)}" '
                     f'title="{esc(tip)}">{esc(_label(t))}{f"<sub>{k}</sub>" if numbers else ""}</span>')
    head = f'<span class="meta">{esc(meta)}</span>' if meta else ""
    return f'<div class="cl-ctx" title="{esc(title)}">{head}{"".join(spans)}</div>'


def selection_figure(sel, vrange=(-1.0, 1.0), height: int | None = None) -> go.Figure:
    """The hypothesis units (rows) over the typed text (columns), the selected range outlined."""
    units = list(sel.units)
    words = list(sel.tokens)
    lo, hi = vrange
    z = sel.values.T if units else np.zeros((0, len(words)))
    rows = [f"unit {u}" for u in units]
    h = height or max(180, 60 + 16 * max(1, len(units)) + 90)
    shapes = [dict(type="rect", xref="x", yref="paper", x0=sel.start - 0.5, x1=sel.end - 0.5, y0=0, y1=1,
                   line=dict(color="#262730", width=2), fillcolor="rgba(0,0,0,0)")]
    fig = go.Figure(
        go.Heatmap(z=z, x=list(range(len(words))), y=list(range(len(units))), zmin=lo, zmax=hi, zmid=0,
                   colorscale=scales.DIVERGING, colorbar=dict(thickness=10, len=0.9),
                   text=[[_label(w) for w in words] for _ in units],
                   hovertemplate="token %{x} (%{text}) · row %{y}: %{z:.3f}<extra></extra>", xgap=1, ygap=1),
        layout=figure_layout(h, f"The selection's units over your text ({len(units)} on across the selection)",
                       xaxis=token_axis([_label(w) for w in words], automargin=True),
                       yaxis=dict(tickmode="array", tickvals=list(range(len(units))), ticktext=rows,
                                  autorange="reversed", showgrid=False, automargin=True),
                       shapes=shapes, meta=dict(view="corpus-selection")))
    return fig


def match_figure(m, units, vrange=(-1.0, 1.0), height: int = 0) -> go.Figure:
    """A small heatmap: the hypothesis units over one match and its context; the match outlined."""
    lo, hi = vrange
    words = [_label(t) for t in m.tokens]
    h = height or max(110, 40 + 11 * len(units) + 40)
    fig = go.Figure(
        go.Heatmap(z=m.values, x=list(range(len(words))), y=list(range(len(units))), zmin=lo, zmax=hi, zmid=0,
                   colorscale=scales.DIVERGING, showscale=False, xgap=1, ygap=0,
                   hovertemplate="token %{x} · unit row %{y}: %{z:.3f}<extra></extra>"),
        layout=figure_layout(h, None, xaxis=token_axis(words, tickangle=0, tickfont=dict(size=11), automargin=True),
                       yaxis=dict(showticklabels=False, autorange="reversed", showgrid=False),
                       shapes=[dict(type="rect", xref="x", yref="paper", x0=m.focus[0] - 0.5,
                                    x1=m.focus[1] - 0.5, y0=0, y1=1, line=dict(color="#262730", width=2))],
                       meta=dict(view="corpus-match", file=m.file, start=m.start, end=m.end)))
    fig.update_layout(margin=dict(l=4, r=4, t=4, b=4))
    return fig


def histogram_figure(profile, height: int = 240) -> go.Figure:
    e = profile.hist_edges
    centres = (e[:-1] + e[1:]) / 2
    return go.Figure(
        go.Bar(x=centres, y=profile.hist_counts, width=np.diff(e), marker_color="#6b8fb8",
               hovertemplate="%{x:.3f}: %{y:,} tokens<extra></extra>"),
        layout=figure_layout(height, f"Unit {profile.unit}: its {profile.quantity} over the corpus",
                       xaxis=dict(title="value", zeroline=True, automargin=True),
                       yaxis=dict(title="tokens", type="log", dtick=1, automargin=True),
                       bargap=0, meta=dict(view="unit-histogram")))


def words_figure(words, title: str, colour: str, height: int = 280) -> go.Figure:
    """Horizontal bars of (word, weight) pairs: the decoder's promoted or suppressed words."""
    ws = [_label(w) for w, _ in words][::-1]
    xs = [x for _, x in words][::-1]
    return go.Figure(
        go.Bar(x=xs, y=list(range(len(ws))), orientation="h", marker_color=colour,
               hovertemplate="%{customdata}: %{x:+.3f}<extra></extra>", customdata=ws),
        layout=figure_layout(height, title, yaxis=dict(tickmode="array", tickvals=list(range(len(ws))),
                                                 ticktext=[esc(w) for w in ws], automargin=True),
                       xaxis=dict(title="logit per unit of h", automargin=True), meta=dict(view="unit-decoder")))


def auc_figure(df, predicate: str, height: int | None = None) -> go.Figure:
    d = df.head(20)
    height = height or max(240, 90 + 20 * len(d))
    return go.Figure(
        go.Bar(x=d["auc"] - 0.5, y=[f"unit {u}" for u in d["unit"]], base=0.5, orientation="h",
               marker_color=["#b2182b" if a > 0.5 else "#2166ac" for a in d["auc"]],
               hovertemplate="%{y}: AUC %{x:.3f}<extra></extra>"),
        layout=figure_layout(height, f"Units that separate: {predicate}",
                       xaxis=dict(title="AUC (0.5 = chance)", range=[0, 1], automargin=True),
                       yaxis=dict(autorange="reversed", automargin=True, type="category"),
                       meta=dict(view="unit-auc")))


def trajectory_figure(projection, paths, height: int = 520) -> go.Figure:
    """Each text's path through the first two principal components, over the corpus density (grey).
    `paths` is a list of (label, DataFrame with position, token, x, y)."""
    xe, ye = projection.xedges, projection.yedges
    dens = np.log1p(projection.density)
    traces = [go.Heatmap(z=dens, x=(xe[:-1] + xe[1:]) / 2, y=(ye[:-1] + ye[1:]) / 2, showscale=False,
                         colorscale=[[0, "rgba(255,255,255,0)"], [0.15, "#e9e9ec"], [1, "#6b6f76"]],
                         hoverinfo="skip", name="corpus")]
    for k, (label, df) in enumerate(paths):
        colour = PALETTE[k % len(PALETTE)]
        traces.append(go.Scatter(
            x=df["x"], y=df["y"], mode="lines+markers+text", name=label,
            text=[_label(t) for t in df["token"]], textposition="top center",
            textfont=dict(size=11, color=colour), marker=dict(size=8, color=colour),
            line=dict(color=colour, width=2), customdata=np.stack([df["position"]], -1),
            hovertemplate=f"{esc(label)}<br>token %{{customdata[0]}}: %{{text}}<br>"
                          "PC1 %{x:.3f}, PC2 %{y:.3f}<extra></extra>"))
    ev = projection.explained
    return go.Figure(traces, layout=figure_layout(
        height, f"State trajectories: layer {projection.layer} {projection.quantity}, first two principal "
                f"components of the corpus ({100 * ev[0]:.0f}% and {100 * ev[1]:.0f}% of the variance)",
        xaxis=dict(title="PC1", range=[xe[0], xe[-1]], showgrid=False, zeroline=False),
        yaxis=dict(title="PC2", range=[ye[0], ye[-1]], showgrid=False, zeroline=False),
        legend=dict(orientation="h", y=-0.15), font=FONT, meta=dict(view="trajectory")))


def value_text(v: float) -> str:
    """A unit's value as a label: three decimals, or two significant digits where three decimals would
    read +0.000 for a value that is not 0."""
    if v != 0 and abs(v) < 0.0005:
        return f"{v:+.1e}"
    return f"{v:+.3f}"


def lowest_contexts(contexts) -> tuple[str, list]:
    """(heading, contexts) for a unit's low end: "Most negative" and the contexts below 0; where the unit
    never goes below 0 in them, says so over its lowest contexts instead (a list headed "most negative"
    showed values of +0.000)."""
    neg = [c for c in contexts if c.value < 0]
    if neg:
        return "Most negative", neg
    return "Lowest (it never goes below 0 here)", list(contexts)
