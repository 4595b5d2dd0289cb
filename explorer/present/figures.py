"""Trace -> tidy DataFrame -> Plotly figure. Pure functions, no Streamlit.

Each view has a data step (`*_frame`, a pandas DataFrame a test or notebook can assert on) and a
drawing step (`*_figure`, a plotly ``go.Figure`` built from that frame):

  heatmap_frame / heatmap_figure     units x tokens of one quantity (h, c, i, f, g, o, ...)
  token_frame / token_strip_html     the sentence as chips coloured by surprisal
  topk_frame / topk_figure           next-word top-k bars, the word that actually follows highlighted
  step_frame / step_figure           change of h and c from the previous step, per unit
  gates_frame / gates_figure         how open each gate is after a token (histogram over units)
  units_frame / units_figure         chosen units across the sentence

and `combine(figs)` puts several of these side by side in ONE figure (`step_view_figure`: next word,
change and gates; `heatmaps_figure`: several quantities with linked x axes). The app draws those:
each Plotly figure has a fixed cost in the browser, so one figure of three panels draws faster than
three figures.

Conventions (traps of this stack, learnt the hard way):

* Token axes use integer positions with ``tickvals``/``ticktext``: category axes would merge
  repeated words ("the" twice) into one column.
* Colour scales are fixed and centred: signed quantities are drawn on a diverging scale with
  ``zmid=0`` and ``zmin``/``zmax`` from explorer.present.scales.fixed_range (tanh outputs ±1), gates on a
  sequential scale fixed to [0, 1]. The unbounded cell state c is coloured by symlog(c) =
  sign(c)·ln(1+|c|) on ±symlog(R), R calibrated once per model (views.value_ranges); its colour bar
  is labelled in units of c and hover shows c itself. A colour means the same value in every
  sentence, layer and step.
* Layers are numbered as the app shows them: every `layer` argument and figure meta field is 1 for the
  bottom layer (-1 = the top; explorer.engine.layer_index).
* Text that came from the user is escaped before it reaches Plotly (its labels understand a little
  HTML) or the chip strip (HTML).
"""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from . import views
from ._lazy import LazyModule
from ..trace import DESCRIPTIONS, Trace
from .scales import DIVERGING, SEQUENTIAL, colorbar_ticks as _colorbar_ticks, colour_range, log_scaled, symlog  # noqa: F401

pd = LazyModule("pandas")     # the Explore page's first render needs no pandas (cold start)

POSITIVE, NEGATIVE = "#b2182b", "#2166ac"
HIGHLIGHT, MUTED, MARK = "#e8590c", "#9db4cc", "#111111"
FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=13, color="#262730")
# A small white template: plotly's "plotly_white" costs ~20 ms per figure to copy and validate.
# Margins are computed here rather than with automargin, which makes plotly.js lay every figure out
# twice (measured: half the drawing time of a heatmap).
TEMPLATE = dict(layout=dict(paper_bgcolor="white", plot_bgcolor="white",
                            xaxis=dict(gridcolor="#ebedf0", linecolor="#c8ccd2", ticks="", zerolinecolor="#c8ccd2",
                                       automargin=False, title=dict(standoff=6)),
                            yaxis=dict(gridcolor="#ebedf0", linecolor="#c8ccd2", ticks="", zerolinecolor="#c8ccd2",
                                       automargin=False, title=dict(standoff=6)),
                            hoverlabel=dict(font=dict(size=13))))

#: Surprisal (bits) -> chip colour; 16 bits and more share the last colour.
SURPRISAL_STOPS = [(0.0, "#ffffff"), (3.0, "#fff4c2"), (6.0, "#ffd27a"), (9.0, "#ffa94d"),
                   (12.0, "#f76707"), (16.0, "#c92a2a")]
SURPRISAL_MAX = SURPRISAL_STOPS[-1][0]

LONG_NAMES = {"h": "hidden state h", "c": "cell state c", "i": "input gate i", "f": "forget gate f",
              "g": "candidate g", "o": "output gate o", "r": "reset gate r", "z": "update gate z",
              "n": "candidate n"}


# ---------------------------------------------------------------------------------------- helpers
def esc(s: str) -> str:
    """Escape text for Plotly labels and hover boxes (they interpret <b>, <br>, <a>, entities)."""
    return html.escape(str(s), quote=False)


def _short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def figure_layout(height: int, title: str | None = None, **kw) -> dict:
    """Base layout as a plain dict: figures are built in one go.Figure(...) call, which is ~10x faster
    than a chain of update_layout/update_xaxes calls (each one copies and re-validates)."""
    out = dict(template=TEMPLATE, height=height, font=FONT,
               margin=dict(l=8, r=8, t=44 if title else 10, b=8))
    if title:
        out["title"] = dict(text=title, x=0, xanchor="left", xref="paper", font=dict(size=15))
    out.update(kw)
    return out


def _tick_font_size(n: int) -> int:
    return 13 if n <= 25 else 12 if n <= 45 else 10 if n <= 80 else 8


def _tick_angle(n: int) -> int:
    return -50 if n > 12 else 0


def token_margin(labels: list[str]) -> int:
    """Bottom margin (px) that fits the token tick labels, rotated or not."""
    n = len(labels)
    size = _tick_font_size(n)
    longest = max((len(_short(w)) for w in labels), default=1)
    if _tick_angle(n) == 0:
        return size + 14
    return int(0.55 * size * longest * 0.77 + size + 12)      # text width x sin(50°) + height


def token_axis(labels: list[str], selected: int | None = None, title: str | None = None,
               start: int = 0, **kw) -> dict:
    """An x axis of integer token positions (start, start+1, ...) with the tokens as tick text (the
    repeated-word trap: a category axis would merge the two "the" of a sentence into one column)."""
    text = [esc(_short(w)) for w in labels]
    if selected is not None and 0 <= selected - start < len(text):
        text[selected - start] = f"<b>{text[selected - start]}</b>"
    vals = views.thin_ticks(len(labels), start, selected)        # past MAX_TICKS labels: every k-th, and the selected
    ax = dict(tickmode="array", tickvals=vals, ticktext=[text[v - start] for v in vals],
              categoryarray=text,       # every label: ignored by Plotly on a linear axis, read by export.figure_frame
              tickangle=_tick_angle(len(labels)), tickfont=dict(size=_tick_font_size(len(labels))),
              range=[start - 0.5, start + len(labels) - 0.5], showgrid=False, zeroline=False)
    if title:
        ax["title"] = dict(text=title)
    ax.update(kw)
    return ax


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def surprisal_colour(bits: float) -> str:
    """Chip background for a surprisal in bits (white = expected, red = surprising); grey if unknown."""
    if bits is None or not np.isfinite(bits):
        return "#e9ecef"
    b = float(min(max(bits, 0.0), SURPRISAL_MAX))
    for (x0, c0), (x1, c1) in zip(SURPRISAL_STOPS, SURPRISAL_STOPS[1:]):
        if b <= x1:
            w = (b - x0) / (x1 - x0)
            r, g, bl = (round(a + (bb - a) * w) for a, bb in zip(_hex(c0), _hex(c1)))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return SURPRISAL_STOPS[-1][1]


def ink(bg: str) -> str:
    r, g, b = _hex(bg)
    return "#ffffff" if (0.299 * r + 0.587 * g + 0.114 * b) < 140 else "#1b1b1b"


# ---------------------------------------------------------------------------------------- heatmap
def _span(tr: Trace, window) -> tuple[int, int]:
    a, b = (0, len(tr)) if window is None else (max(0, int(window[0])), min(len(tr), int(window[1])))
    return a, max(a, b)


def heatmap_frame(tr: Trace, layer: int, quantity: str, units=None, window=None) -> pd.DataFrame:
    """Tidy table of one quantity: one row per (position, unit), position-major. `units` picks and
    orders rows; `window` (a, b) keeps token positions a..b-1."""
    a = views._check(tr, layer).values[quantity]
    U = a.shape[1]
    units = np.arange(U) if units is None else np.asarray(units, dtype=np.int64)
    lo, hi = _span(tr, window)
    labels = views.token_labels(tr)[lo:hi]
    T = hi - lo
    return pd.DataFrame({
        "position": np.repeat(np.arange(lo, hi), len(units)),
        "token": np.repeat(np.array(labels, dtype=object), len(units)),
        "unit": np.tile(units, T),
        "value": a[lo:hi][:, units].reshape(-1),
    })


def heatmap_figure(tr: Trace, layer: int, quantity: str, selected: int | None = None,
                   ranges: dict | None = None, units=None, height: int | None = None,
                   title: str | None = None, window=None) -> go.Figure:
    """Units (rows) x tokens (columns) of one quantity in one layer, with a fixed centred colour scale.

    Hover shows the token, the unit and the value. `selected` draws a box around that
    token's column and sets its tick label in bold. `units` restricts (and orders) the rows;
    `window` (a, b) draws token positions a..b-1 only (long texts).
    """
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    df = heatmap_frame(tr, layer, quantity, units, window)
    lo, hi = _span(tr, window)
    T = hi - lo
    U = tr.layer(layer).values[quantity].shape[1] if units is None else len(units)
    units_arr = df["unit"].to_numpy()[:U]
    z = df["value"].to_numpy().reshape(T, U).T if T else np.zeros((U, 0), np.float32)
    labels = views.token_labels(tr)[lo:hi]
    value = "%{z:.3f}"
    if log_scaled(quantity):                    # colour by symlog(value), hover the value itself
        value = "%{customdata:.3f}"
    # %{x} and %{y} in a hover template show the axes' tick text: the token and the unit. No per-cell
    # text array is sent (units x tokens strings made a 100-token heatmap 5x heavier to send and draw).
    template = f"token <b>%{{x}}</b><br>unit %{{y}}<br>{quantity} = {value}<extra></extra>"
    trace = dict(
        type="heatmap", z=symlog(z).astype(np.float32) if log_scaled(quantity) else z,
        x=np.arange(lo, hi), y=np.arange(U), name=quantity, hovertemplate=template,
        colorbar=dict(title=dict(text=quantity + (" (log)" if log_scaled(quantity) else ""), side="right"),
                      thickness=12, len=0.9, outlinewidth=0, tickfont=dict(size=11),
                      **_colorbar_ticks(quantity, ranges)),
        **colour_range(quantity, ranges))
    if log_scaled(quantity):
        trace["customdata"] = z
    yaxis = dict(autorange="reversed", title=dict(text="unit"), showgrid=False, zeroline=False)
    if units is not None:
        yaxis.update(tickmode="array", tickvals=list(range(U)), ticktext=[f"u{u}" for u in units_arr])
    shapes = []
    if selected is not None and lo <= selected < hi:
        shapes.append(dict(type="rect", x0=selected - 0.5, x1=selected + 0.5, y0=-0.5, y1=U - 0.5,
                           line=dict(color=MARK, width=2), fillcolor="rgba(0,0,0,0)", name="selected"))
    bottom = token_margin(labels)
    h = height or int(min(340, max(180, 0.8 * U)) + 44 + bottom)
    if title is None:
        title = f"<b>{quantity}</b> · {esc(DESCRIPTIONS.get(quantity, quantity))} · layer {layer}"
    layout = figure_layout(h, title, xaxis=token_axis(labels, selected, start=lo), yaxis=yaxis, shapes=shapes,
                     margin=dict(l=58 if units is None else 50, r=86, t=44, b=bottom),
                     meta=dict(view="heatmap", quantity=quantity, layer=layer, selected=selected, window=[lo, hi],
                               scale="symlog" if log_scaled(quantity) else "linear",
                               range=list(views.fixed_range(quantity, ranges))))
    return go.Figure(data=[trace], layout=layout)


# ------------------------------------------------------------------------------------ token strip
def token_frame(tr: Trace) -> pd.DataFrame:
    """views.token_table plus the chip colours: background by surprisal, readable ink."""
    df = views.token_table(tr)
    df["colour"] = [surprisal_colour(b) for b in df["surprisal_bits"]]
    df["ink"] = [ink(c) for c in df["colour"]]
    return df


def chip_title(row) -> str:
    if row.special:
        return "boundary token <eos>: the network reads it first, as at the start of a paragraph"
    parts = [f"#{row.position} “{row.text}”"]
    if row.unk:
        parts.append("unknown to the model: read as <unk>")
    if np.isfinite(row.surprisal_bits):
        parts.append(f"surprisal {row.surprisal_bits:.1f} bits (P = {row.prob:.2%}, rank {row.rank})")
    return " · ".join(parts)


TOKEN_STRIP_CSS = """
<style>
.tok-strip{display:flex;flex-wrap:wrap;gap:5px 4px;align-items:flex-end;line-height:1.2;
  font-family:"Source Sans Pro",Helvetica,Arial,sans-serif;padding:2px 0 6px 0}
.tok{position:relative;display:inline-flex;flex-direction:column;align-items:center;
  border:1px solid #d0d4da;border-radius:7px;padding:3px 7px 2px 7px;min-width:18px;font-size:17px}
.tok .pos{font-size:10px;opacity:.65;line-height:1}
.tok.special{font-style:italic;color:#666;background:#e9ecef}
.tok.unk{border:2px dashed #7b2cbf}
.tok.unk .w{text-decoration:underline wavy #7b2cbf;text-underline-offset:3px}
.tok .badge{position:absolute;top:-9px;right:-6px;background:#7b2cbf;color:#fff;font-size:9px;
  border-radius:6px;padding:0 4px;line-height:14px}
.tok.sel{outline:3px solid #111;outline-offset:1px;font-weight:700}
.tok-strip .more{font-size:13px;color:#777;align-self:center;padding:0 4px}
.tok-legend{display:flex;align-items:center;gap:6px;font-size:12px;color:#555;margin-top:2px}
.tok-legend .bar{width:160px;height:10px;border-radius:3px;border:1px solid #ccc}
</style>
"""


def token_strip_html(tr: Trace, selected: int | None = None, legend: bool = True, window=None) -> str:
    """The sentence as chips (HTML). Every piece of user text is escaped with html.escape."""
    lo, hi = _span(tr, window)
    df = token_frame(tr).iloc[lo:hi]
    chips = []
    if lo > 0:
        chips.append(f'<span class="more">… {lo} tokens before</span>')
    for row in df.itertuples(index=False):
        cls = ["tok"]
        if row.special:
            cls.append("special")
        if row.unk:
            cls.append("unk")
        if selected is not None and row.position == selected:
            cls.append("sel")
        badge = '<span class="badge">unk</span>' if row.unk else ""
        chips.append(
            f'<span class="{" ".join(cls)}" data-pos="{row.position}" data-unk="{str(row.unk).lower()}" '
            f'style="background:{row.colour};color:{row.ink}" title="{html.escape(chip_title(row), quote=True)}">'
            f'{badge}<span class="w">{html.escape(row.label)}</span><span class="pos">{row.position}</span></span>')
    if hi < len(tr):
        chips.append(f'<span class="more">{len(tr) - hi} tokens after …</span>')
    out = (TOKEN_STRIP_CSS + f'<div class="tok-strip" data-testid="token-strip" data-n="{len(tr)}" '
           f'data-selected="{"" if selected is None else selected}">' + "".join(chips) + "</div>")
    if legend:
        stops = ", ".join(f"{c} {100 * x / SURPRISAL_MAX:.0f}%" for x, c in SURPRISAL_STOPS)
        out += (f'<div class="tok-legend">surprisal: 0 bits <span class="bar" style="background:linear-gradient(90deg, {stops})">'
                f'</span> {SURPRISAL_MAX:.0f}+ bits &nbsp;·&nbsp; <span class="tok unk" style="font-size:11px;padding:0 4px">'
                'word</span> unknown to the model (read as &lt;unk&gt;) &nbsp;·&nbsp; outlined: selected token</div>')
    return out


# ------------------------------------------------------------------------------------- next word
def topk_frame(tr: Trace, t: int, k: int = 10) -> pd.DataFrame:
    """The k most probable next tokens after token t, and the token that actually follows (added as
    an extra row when it is not among them). Columns: word, prob, rank, actual, in_topk."""
    views._check_position(tr, t)
    top = tr.top_words(t, k)
    actual = None
    if t + 1 < len(tr):
        nxt = tr.tokens[t + 1]
        actual = tr.vocab[nxt.id]
    rows = [{"word": w, "prob": p, "rank": i + 1, "actual": w == actual, "in_topk": True}
            for i, (w, p) in enumerate(top)]
    if actual is not None and not any(r["actual"] for r in rows):
        rows.append({"word": actual, "prob": float(tr.next_prob[t]), "rank": int(tr.next_rank[t]),
                     "actual": True, "in_topk": False})
    return pd.DataFrame(rows, columns=["word", "prob", "rank", "actual", "in_topk"])


def topk_figure(tr: Trace, t: int, k: int = 10, height: int = 340) -> go.Figure:
    """Horizontal bars of the k most probable next tokens after token t; the token that actually
    follows is orange and bold (listed with its rank below the others when it is not in the top k)."""
    df = topk_frame(tr, t, k)
    n = len(df)
    labels = []
    for r in df.itertuples():
        lab = esc(_short(views.visible(r.word), 16)) + ("" if r.in_topk else f" (rank {r.rank})")
        labels.append(f"<b>{lab}</b>" if r.actual else lab)
    word = views.token_label(tr.tokens[t])
    nxt = (f"actually next: <b>{esc(_short(views.token_label(tr.tokens[t + 1]), 16))}</b>"
           if t + 1 < len(tr) else "end of the text")
    xmax = float(df["prob"].max()) if n else 1.0
    trace = dict(type="bar", x=df["prob"].to_numpy(), y=list(range(n)), orientation="h",
                 marker=dict(color=[HIGHLIGHT if a else MUTED for a in df["actual"]]),
                 text=[views.pct(p) for p in df["prob"]], textposition="outside", cliponaxis=False,
                 customdata=[esc(views.visible(w)) for w in df["word"]],
                 hovertemplate="<b>%{customdata}</b><br>P = %{x:.2%}<extra></extra>")
    layout = figure_layout(
        height, f"Next {views.token_kind(tr)} after “{esc(_short(word, 18))}”<br><span style='font-size:12px;color:#555'>{nxt}</span>",
        showlegend=False, bargap=0.25,
        margin=dict(l=int(12 + 7.2 * max((len(_short(w, 16)) + (0 if r else 9) for w, r in zip(df["word"], df["in_topk"])),
                                         default=4)), r=36, t=58, b=44),
        xaxis=dict(range=[0, min(1.0, max(0.05, xmax) * 1.3)], tickformat=".0%", title=dict(text="probability"),
                   zeroline=True),
        yaxis=dict(tickmode="array", tickvals=list(range(n)), ticktext=labels, autorange="reversed",
                   showgrid=False, automargin=True),
        meta=dict(view="topk", position=t))
    return go.Figure(data=[trace], layout=layout)


# ------------------------------------------------------------------------------------- step view
def step_frame(tr: Trace, layer: int, t: int) -> pd.DataFrame:
    """Per unit: value after token t, before it, and the change (views.step_change)."""
    return views.step_change(tr, layer, t)


#: The narrowest plot width (px) the step view is drawn at in the app, and a label character's width
#: (px, font size 10): the unit labels of the step view are kept this far apart.
STEP_MIN_PX = 400
LABEL_PX = 7


def step_figure(tr: Trace, layer: int, t: int, height: int = 340, annotate: int = 3) -> go.Figure:
    """Δh (and Δc) per unit as filled steps: red up, blue down. The y axes are fixed over the whole
    sentence (views.delta_limits), so stepping never rescales them; the biggest changes are labelled
    uN. (Filled step lines rather than one bar per unit: four SVG paths instead of 2 x units rects.)"""
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    df = step_frame(tr, layer, t)
    qs = [q for q in ("h", "c") if q in df]
    lim = views.delta_limits(tr, layer)
    n = len(qs)
    gap = 0.16
    span = (1 - gap * (n - 1)) / n
    units = df["unit"].to_numpy()
    data, annotations, layout_axes = [], [], {}
    for r, q in enumerate(qs):
        sfx = "" if r == 0 else str(r + 1)
        top = 1 - r * (span + gap)
        d = df[f"d{q}"].to_numpy()
        custom = np.stack([d, df[f"{q}_prev"].to_numpy(), df[q].to_numpy()], axis=1)
        for part, colour, hover in ((np.maximum(d, 0), POSITIVE, True), (np.minimum(d, 0), NEGATIVE, False)):
            tr_ = dict(type="scatter", x=units, y=part, xaxis=f"x{sfx}", yaxis=f"y{sfx}", name=f"Δ{q}",
                       mode="lines", line=dict(shape="hvh", width=1, color=colour), fill="tozeroy",
                       fillcolor=colour)
            if hover:
                tr_.update(customdata=custom, hovertemplate=(
                    f"unit %{{x}}<br>Δ{q} = %{{customdata[0]:+.3f}}<br>{q}: %{{customdata[1]:.3f}} → "
                    f"%{{customdata[2]:.3f}}<extra></extra>"))
            else:
                tr_.update(hoverinfo="skip", showlegend=False)
            data.append(tr_)
        m = lim[q] * 1.2
        layout_axes[f"yaxis{sfx}"] = dict(domain=[max(0.0, top - span), min(1.0, top)], range=[-m, m], zeroline=True,
                                          zerolinecolor="#888", title=dict(text=f"Δ{q}"))
        layout_axes[f"xaxis{sfx}"] = dict(anchor=f"y{sfx}", range=[-0.5, len(df) - 0.5], showgrid=False,
                                          matches="x" if r else None,
                                          title=dict(text="unit") if r == n - 1 else None,
                                          showticklabels=r == n - 1)
        annotations.append(dict(text=f"Δ{q} = {q}<sub>t</sub> − {q}<sub>t−1</sub>", x=0, xref="paper",
                                xanchor="left", y=top, yref="paper", yanchor="bottom", showarrow=False,
                                font=dict(size=12)))
        placed: list[tuple[int, bool]] = []
        # labels of nearby units on one side collided ("u324u339"): keep them a label's width apart at the
        # narrowest the step view is drawn (STEP_MIN_PX wide, LABEL_PX a character at font size 10)
        near = max(6, -(-len(d) * LABEL_PX * len(f"u{len(d) - 1}") // STEP_MIN_PX))
        for u in np.argsort(-np.abs(d))[:4 * annotate]:
            up = bool(d[u] >= 0)
            if len(placed) == annotate or abs(d[u]) <= 1e-6:
                break
            if any(side == up and abs(int(u) - v) < near for v, side in placed):
                continue
            placed.append((int(u), up))
            annotations.append(dict(x=int(u), y=float(d[u]), xref=f"x{sfx}", yref=f"y{sfx}", text=f"u{int(u)}",
                                    showarrow=False, yshift=9 if up else -9, font=dict(size=10)))
    word = views.token_label(tr.tokens[t])
    layout = figure_layout(height, f"Change at “{esc(_short(word, 18))}” (layer {layer})", showlegend=False,
                     hovermode="x", annotations=annotations, margin=dict(l=62, r=10, t=64, b=44),
                     meta=dict(view="step", layer=layer, position=t), **layout_axes)
    return go.Figure(data=data, layout=layout)


# ----------------------------------------------------------------------------------------- gates
def gates_frame(tr: Trace, layer: int, t: int) -> pd.DataFrame:
    """Per gate and unit: openness after token t (views.gate_values). gates_figure draws it binned
    (views.gate_histograms)."""
    return views.gate_values(tr, layer, t)


def gates_figure(tr: Trace, layer: int, t: int, height: int = 340, bins: int = 20) -> go.Figure:
    """How open each gate is after token t: per gate, a histogram of its units' values on [0, 1]
    (0 = closed, 1 = open), bars coloured by openness, a triangle at the mean. The y axes are fixed
    over the whole sentence (views.gate_histograms), so stepping never rescales them."""
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    word = views.token_label(tr.tokens[t])
    title = f"Gates after “{esc(_short(word, 18))}” (layer {layer})"
    hist = views.gate_histograms(tr, layer, bins)
    if not hist:
        return go.Figure(layout=figure_layout(
            height, title, xaxis=dict(visible=False), yaxis=dict(visible=False), meta=dict(view="gates", position=t),
            annotations=[dict(text="A simple RNN has no gates:<br>it rewrites h completely at every step.",
                              showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))]))
    gates = list(hist)
    n = len(gates)
    gap = 0.1
    span = (1 - gap * (n - 1)) / n
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = [_sequential_colour(c) for c in centres]
    ymax = max(float(h.max()) for h in hist.values()) * 1.25
    data, layout_axes, annotations = [], {}, []
    for r, g in enumerate(gates):
        sfx = "" if r == 0 else str(r + 1)
        top = 1 - r * (span + gap)
        share = hist[g][t]
        mean = float(tr.layer(layer).values[g][t].mean())
        data.append(dict(type="bar", x=centres, y=share, width=1 / bins * 0.92, xaxis=f"x{sfx}", yaxis=f"y{sfx}",
                         marker=dict(color=colours, line=dict(width=0.5, color="#5a6b5a")), name=g,
                         customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                         hovertemplate=(f"{g} in [%{{customdata[0]:.2f}}, %{{customdata[1]:.2f}}): "
                                        "%{y:.0%} of units<extra></extra>")))
        data.append(dict(type="scatter", x=[mean], y=[ymax * 0.86], xaxis=f"x{sfx}", yaxis=f"y{sfx}",
                         mode="markers+text", text=[f"mean {mean:.2f}"], name=f"{g} mean",
                         textposition="middle right" if mean < 0.7 else "middle left",
                         marker=dict(symbol="triangle-down", size=11, color=MARK),
                         hovertemplate=f"{g}: mean {mean:.3f}<extra></extra>"))
        layout_axes[f"yaxis{sfx}"] = dict(domain=[max(0.0, top - span), min(1.0, top)], range=[0, ymax], tickformat=".0%",
                                          nticks=3, title=dict(text=f"<b>{g}</b> {LONG_NAMES.get(g, g).split(' ')[0]}",
                                                               font=dict(size=12)))
        layout_axes[f"xaxis{sfx}"] = dict(anchor=f"y{sfx}", range=[0, 1], matches="x" if r else None,
                                          tickvals=[0, 0.25, 0.5, 0.75, 1], showticklabels=r == n - 1,
                                          title=dict(text="0 = closed · 1 = open") if r == n - 1 else None)
    layout = figure_layout(height, title, showlegend=False, bargap=0, annotations=annotations,
                     margin=dict(l=62, r=10, t=44, b=44), meta=dict(view="gates", layer=layer, position=t),
                     **layout_axes)
    return go.Figure(data=data, layout=layout)


def _sequential_colour(x: float) -> str:
    """The gate colour scale (SEQUENTIAL) at x in [0, 1]."""
    x = float(min(max(x, 0.0), 1.0))
    for (x0, c0), (x1, c1) in zip(SEQUENTIAL, SEQUENTIAL[1:]):
        if x <= x1:
            w = (x - x0) / (x1 - x0)
            r, g, b = (round(a + (bb - a) * w) for a, bb in zip(_hex(c0), _hex(c1)))
            return f"#{r:02x}{g:02x}{b:02x}"
    return SEQUENTIAL[-1][1]


# ----------------------------------------------------------------------------------------- units
def units_frame(tr: Trace, layer: int, quantity: str, units) -> pd.DataFrame:
    return views.unit_series(tr, layer, quantity, units)


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]


def units_figure(tr: Trace, layer: int, quantity: str, units, selected: int | None = None,
                 ranges: dict | None = None, height: int = 330, window=None) -> go.Figure:
    """Lines of chosen units across the sentence, on the quantity's fixed range, a rule at `selected`."""
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    lo, hi = _span(tr, window)
    df = units_frame(tr, layer, quantity, units)
    df = df[(df["position"] >= lo) & (df["position"] < hi)]
    labels = views.token_labels(tr)
    hover_tok = [esc(w) for w in labels]
    data = []
    for i, u in enumerate(dict.fromkeys(df["unit"])):
        sub = df[df["unit"] == u]
        data.append(dict(
            type="scatter", x=sub["position"].to_numpy(), y=sub["value"].to_numpy(), mode="lines+markers",
            name=f"unit {u}", line=dict(width=2, color=PALETTE[i % len(PALETTE)]), marker=dict(size=5),
            customdata=hover_tok[lo:hi], hovertemplate=(f"unit {u}<br>token %{{x}}: <b>%{{customdata}}</b><br>"
                                                 f"{quantity} = %{{y:.3f}}<extra></extra>")))
    vmin, vmax = views.fixed_range(quantity, ranges)
    if log_scaled(quantity) and len(df):       # lines: the chosen units' own extent, fixed over the text
        m = float(np.abs(units_frame(tr, layer, quantity, units)["value"]).max()) * 1.05 or 1.0
        vmin, vmax = -m, m
    pad = 0.05 * (vmax - vmin)
    shapes = []
    if selected is not None and lo <= selected < hi:
        shapes.append(dict(type="line", x0=selected, x1=selected, y0=0, y1=1, yref="paper",
                           line=dict(color=MARK, width=1.5, dash="dot"), name="selected"))
    layout = figure_layout(height, f"{esc(LONG_NAMES.get(quantity, quantity))} of chosen units (layer {layer})",
                     legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"),
                     hovermode="closest", shapes=shapes, xaxis=token_axis(labels[lo:hi], selected, start=lo),
                     margin=dict(l=58, r=10, t=44, b=token_margin(labels[lo:hi])),
                     yaxis=dict(range=[vmin - pad, vmax + pad], title=dict(text=quantity), zeroline=True,
                                zerolinecolor="#bbb"),
                     meta=dict(view="units", layer=layer, quantity=quantity, units=[int(u) for u in units],
                               selected=selected))
    return go.Figure(data=data, layout=layout)


# ------------------------------------------------------------------------------------- combining
def _axis_names(layout: dict, data: list[dict]) -> tuple[list[str], list[str]]:
    xs, ys = set(), set()
    for k in layout:
        if k.startswith("xaxis") and (k == "xaxis" or k[5:].isdigit()):
            xs.add(k[5:])
        if k.startswith("yaxis") and (k == "yaxis" or k[5:].isdigit()):
            ys.add(k[5:])
    for d in data:
        if d.get("type") not in (None, "scatter", "bar", "heatmap", "histogram", "box"):
            continue
        xs.add((d.get("xaxis") or "x")[1:])
        ys.add((d.get("yaxis") or "y")[1:])
    key = lambda s: int(s or 1)  # noqa: E731
    return sorted(xs, key=key), sorted(ys, key=key)


def _ref(ref, xmap: dict, ymap: dict):
    """Rename an axis reference ('x2', 'y', 'x2 domain') with the panel's new axis names."""
    if not isinstance(ref, str) or ref == "paper" or ref == "free":
        return ref
    base, _, rest = ref.partition(" ")
    m = xmap if base.startswith("x") else ymap
    new = m.get(base[1:], None)
    if new is None:
        return ref
    return (base[0] + new) + (" " + rest if rest else "")


def combine(figs: list[go.Figure], cols: int | None = None, width: int = 1050, hgap: int = 24,
            vgap: int = 10, link_x: bool = False, meta: dict | None = None) -> go.Figure:
    """Place figures made by this module side by side (and in rows of `cols`) in ONE figure.

    Each figure keeps its own axes, titles, annotations, shapes and colour bars; its pixel margins are
    kept by assuming the combined figure is drawn `width` px wide. One Plotly figure draws much
    faster in the browser than several (each figure has a fixed cost). `link_x` makes every x axis
    match the first one (zooming one heatmap zooms all). The result's layout.meta is
    {"view": "combined", "panels": [each figure's meta]} plus `meta`.
    """
    cols = cols or len(figs)
    parts = [f.to_dict() for f in figs]
    rows = -(-len(parts) // cols)
    row_h = [max(int(p["layout"].get("height") or 400) for p in parts[r * cols:(r + 1) * cols]) for r in range(rows)]
    H = sum(row_h) + vgap * (rows - 1)
    W = width
    col_w = (W - hgap * (cols - 1)) / cols
    data: list[dict] = []
    layout: dict = dict(template=TEMPLATE, font=FONT, height=H, margin=dict(l=0, r=0, t=0, b=0),
                        showlegend=False, hovermode="closest", annotations=[], shapes=[])
    nx = ny = 0
    first_x = None
    for i, p in enumerate(parts):
        r, c = divmod(i, cols)
        L, D = p["layout"], p["data"]
        m = L.get("margin") or {}
        top = sum(row_h[:r]) + vgap * r
        x0 = c * (col_w + hgap)
        ix0, ix1 = x0 + m.get("l", 80), x0 + col_w - m.get("r", 80)
        iy_top, iy_bot = top + m.get("t", 100), top + (L.get("height") or row_h[r]) - m.get("b", 80)

        def fx(x, ix0=ix0, ix1=ix1):
            return (ix0 + x * (ix1 - ix0)) / W

        def fy(y, iy_top=iy_top, iy_bot=iy_bot):
            return 1 - (iy_bot - y * (iy_bot - iy_top)) / H

        xs, ys = _axis_names(L, D)
        xmap, ymap = {}, {}
        for s in xs:
            nx += 1
            xmap[s] = "" if nx == 1 else str(nx)
        for s in ys:
            ny += 1
            ymap[s] = "" if ny == 1 else str(ny)
        for s in xs:
            ax = dict(L.get("xaxis" + s) or {})
            d0, d1 = ax.get("domain", [0, 1])
            ax["domain"] = [max(0.0, fx(d0)), min(1.0, fx(d1))]
            ax["anchor"] = _ref(ax.get("anchor", "y" + (s if s in ys else (ys[0] if ys else ""))), xmap, ymap)
            if ax.get("matches"):
                ax["matches"] = _ref(ax["matches"], xmap, ymap)
            name = "x" + xmap[s]
            if link_x:
                if first_x is None:
                    first_x = name
                elif "matches" not in ax:
                    ax["matches"] = first_x
            layout["xaxis" + xmap[s]] = ax
        for s in ys:
            ax = dict(L.get("yaxis" + s) or {})
            d0, d1 = ax.get("domain", [0, 1])
            ax["domain"] = [max(0.0, fy(d0)), min(1.0, fy(d1))]
            ax["anchor"] = _ref(ax.get("anchor", "x" + (s if s in xs else (xs[0] if xs else ""))), xmap, ymap)
            if ax.get("matches"):
                ax["matches"] = _ref(ax["matches"], xmap, ymap)
            layout["yaxis" + ymap[s]] = ax
        for d in D:
            d = dict(d)
            d["xaxis"] = "x" + xmap.get((d.get("xaxis") or "x")[1:], "")
            d["yaxis"] = "y" + ymap.get((d.get("yaxis") or "y")[1:], "")
            if "colorbar" in d:
                cb = dict(d["colorbar"])
                cb.update(x=(ix1 + 8) / W, xanchor="left", xref="paper", y=(fy(0) + fy(1)) / 2, yanchor="middle",
                          len=(fy(1) - fy(0)) * float(cb.get("len", 1)), lenmode="fraction")
                d["colorbar"] = cb
            data.append(d)
        for a in L.get("annotations") or []:
            a = dict(a)
            xr, yr = a.get("xref", "x"), a.get("yref", "y")
            if xr == "paper":
                a["x"] = fx(a.get("x", 0.5))
            else:
                a["xref"] = _ref(xr, xmap, ymap)
            if yr == "paper":
                a["y"] = fy(a.get("y", 0.5))
            else:
                a["yref"] = _ref(yr, xmap, ymap)
            layout["annotations"].append(a)
        for sh in L.get("shapes") or []:
            sh = dict(sh)
            if sh.get("xref", "x") == "paper":
                sh["x0"], sh["x1"] = fx(sh["x0"]), fx(sh["x1"])
            else:
                sh["xref"] = _ref(sh.get("xref", "x"), xmap, ymap)
            if sh.get("yref", "y") == "paper":
                sh["y0"], sh["y1"] = fy(sh["y0"]), fy(sh["y1"])
            else:
                sh["yref"] = _ref(sh.get("yref", "y"), xmap, ymap)
            layout["shapes"].append(sh)
        title = (L.get("title") or {}).get("text")
        if title:
            layout["annotations"].append(dict(
                text=title, x=fx(0), xref="paper", xanchor="left", y=1 - (top + 6) / H, yref="paper",
                yanchor="top", showarrow=False, align="left", font=dict(size=15), name="title"))
        for k in ("bargap",):
            if k in L and k not in layout:
                layout[k] = L[k]
    layout["meta"] = dict(view="combined", panels=[p["layout"].get("meta") for p in parts], **(meta or {}))
    return go.Figure(data=data, layout=layout)


def step_view_figure(tr: Trace, layer: int, t: int, k: int = 10, width: int = 1050) -> go.Figure:
    """The step view in one figure: next word (topk_figure), change (step_figure), gates
    (gates_figure; left out for a simple RNN)."""
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    figs = [topk_figure(tr, t, k), step_figure(tr, layer, t)]
    if views.GATES[tr.cell]:
        figs.append(gates_figure(tr, layer, t))
    return combine(figs, cols=len(figs), width=width, meta=dict(layer=layer, position=t))


def heatmaps_figure(tr: Trace, layer: int, quantities, selected: int | None = None, ranges: dict | None = None,
                    window=None, cols: int = 2, width: int = 1050) -> go.Figure:
    """Heatmaps of several quantities in one figure (`cols` per row), x axes linked for zooming."""
    layer = tr.layer(layer).layer          # the layer's number (1 = the bottom; -1 resolved, 0 refused)
    figs = [heatmap_figure(tr, layer, q, selected=selected, ranges=ranges, window=window) for q in quantities]
    return combine(figs, cols=min(cols, len(figs)), width=width, link_x=True,
                   meta=dict(layer=layer, selected=selected, quantities=list(quantities)))
