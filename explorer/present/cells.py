"""A character model's cells as coloured text (Karpathy, Johnson & Fei-Fei 2015, figure 2): every
character of a passage drawn on the colour of one unit's value after reading it, blue negative, red
positive; and the unit against the position in the line. Draws the numbers of
explorer.analysis.char_cells; user text is escaped."""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from .scales import DIVERGING
from ..errors import InputError

#: Richard III, act 1 scene 1 (public domain; the passage is also in tiny Shakespeare): verse lines of
#: different lengths, one speaker line.
CELL_PASSAGE = (
    'GLOUCESTER:' "\n"
    'Now is the winter of our discontent' "\n"
    'Made glorious summer by this sun of York;' "\n"
    "And all the clouds that lour'd upon our house" "\n"
    'In the deep bosom of the ocean buried.' "\n"
    'Now are our brows bound with victorious wreaths;' "\n"
    'Our bruised arms hung up for monuments;' "\n"
    'Our stern alarums changed to merry meetings,' "\n"
    'Our dreadful marches to delightful measures.' "\n"
    "Grim-visaged war hath smooth'd his wrinkled front;" "\n"
    'And now, instead of mounting barded steeds' "\n"
    'To fright the souls of fearful adversaries,' "\n"
    "He capers nimbly in a lady's chamber" "\n"
    'To the lascivious pleasing of a lute.' "\n"
    'But I, that am not shaped for sportive tricks,' "\n"
    'Nor made to court an amorous looking-glass;' "\n"
    "I, that am rudely stamp'd, and want love's majesty" "\n"
    'To strut before a wanton ambling nymph;' "\n"
    "I, that am curtail'd of this fair proportion," "\n"
    'Cheated of feature by dissembling nature,' "\n"
    "Deformed, unfinish'd, sent before my time" "\n"
    'Into this breathing world, scarce half made up,' "\n"
    'And that so lamely and unfashionable' "\n"
    'That dogs bark at me as I halt by them;' "\n"
    'Why, I, in this weak piping time of peace,' "\n"
    'Have no delight to pass away the time,' "\n"
    'Unless to spy my shadow in the sun' "\n"
    'And descant on mine own deformity:' "\n"
    'And therefore, since I cannot prove a lover,' "\n"
    'To entertain these fair well-spoken days,' "\n"
    'I am determined to prove a villain' "\n"
    'And hate the idle pleasures of these days.'
)


def _rgb(c: str) -> tuple[int, int, int]:
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def diverging_colour(x: float) -> str:
    """x in [-1, 1] -> the app's diverging scale (blue -, white 0, red +) as #rrggbb."""
    t = min(max((float(x) + 1) / 2, 0.0), 1.0) if np.isfinite(x) else 0.5
    for (x0, c0), (x1, c1) in zip(DIVERGING[:-1], DIVERGING[1:]):
        if t <= x1:
            w = (t - x0) / ((x1 - x0) or 1)
            a, b = _rgb(c0), _rgb(c1)
            return "#%02x%02x%02x" % tuple(round(p + (q - p) * w) for p, q in zip(a, b))
    return DIVERGING[-1][1]


def colour_limit(values) -> float:
    """The colour scale's end: the 99th percentile of |value| (a few extremes do not wash out the rest)."""
    v = np.abs(np.asarray(values, np.float64))
    v = v[np.isfinite(v)]
    return float(np.percentile(v, 99)) if v.size and np.percentile(v, 99) > 0 else 1.0


def cell_text_html(chars, values, vmax: float | None = None, font_px: int = 18, testid: str = "cell-text") -> str:
    """The passage, one <span> per character coloured by the unit's value (clipped at ±vmax); newlines
    break lines. Each span's title holds the value."""
    vals = np.asarray(values, np.float64)
    if len(chars) != len(vals):
        raise InputError(f"{len(chars)} characters but {len(vals)} values")
    vmax = colour_limit(vals) if vmax is None else float(vmax)
    out = []
    for ch, v in zip(chars, vals):
        if ch == "\n":
            out.append("<br>")
            continue
        x = v / vmax if vmax else 0.0
        ink = "#ffffff" if abs(x) > 0.75 else "#000000"
        out.append(f'<span style="background:{diverging_colour(x)};color:{ink}" title="{v:+.3f}">'
                   f'{html.escape(ch) if ch != " " else "&nbsp;"}</span>')
    return (f'<div data-testid="{testid}" data-vmax="{vmax:.4g}" style="font-family:\'DejaVu Sans Mono\','
            f'Menlo,Consolas,monospace;font-size:{font_px}px;line-height:1.55;letter-spacing:0.5px">'
            + "".join(out) + "</div>")


def scale_legend_html(vmax: float, font_px: int = 15) -> str:
    stops = ", ".join(f"{c} {100 * x:.0f}%" for x, c in DIVERGING)
    return (f'<div style="font-size:{font_px}px;color:#222">{-vmax:.2f} <span style="display:inline-block;'
            f'width:220px;height:14px;vertical-align:middle;background:linear-gradient(90deg, {stops})"></span> '
            f'+{vmax:.2f}</div>')


def cell_scatter(column, values, title: str, height: int = 380) -> go.Figure:
    """The unit's value against the position in the line (newlines left out), with the least-squares line."""
    col = np.asarray(column)
    v = np.asarray(values, np.float64)
    on = col >= 0
    x, y = col[on].astype(np.float64), v[on]
    fig = go.Figure(go.Scattergl(x=x, y=y, mode="markers", marker=dict(size=5, color="#b2182b", opacity=0.45),
                                 name="one character", hovertemplate="position %{x}<br>value %{y:.3f}<extra></extra>"))
    if len(x) > 1 and np.ptp(x) > 0:
        a, b = np.polyfit(x, y, 1)
        xs = np.array([x.min(), x.max()])
        fig.add_trace(go.Scatter(x=xs, y=a * xs + b, mode="lines", line=dict(color="#000", width=3),
                                 name="least squares", hoverinfo="skip"))
    fig.update_layout(title=title, height=height, template="simple_white", margin=dict(l=60, r=20, t=60, b=50),
                      legend=dict(orientation="h", y=1.0, x=1, xanchor="right", yanchor="bottom"))
    fig.update_xaxes(title="position in the line (characters)")
    fig.update_yaxes(title="unit value")
    return fig


def cell_sentence(best, n_chars: int, n_quoted: int, verdict: str, model: str = "the model") -> str:
    """Plain text for the lesson: which unit, how well it tracks the position, and quotations."""
    layer, q, unit = int(best["layer"]), str(best["quantity"]), int(best["unit"])     # layer 1 = the bottom
    r, auc = float(best["r_position"]), float(best["auc_late"])
    sign = "grows" if r > 0 else "falls"
    head = (f"Measured on these {n_chars:,} characters, read by {model}: unit {unit} of layer {layer} ({q}) "
            f"{sign} along the line. "
            f"Its correlation with the position in the line is r = {r:+.2f}, and it tells a character from the "
            f"40th on from an earlier one with AUC {auc:.2f} (0.5 = chance). ")
    if verdict == "well":
        head += "It tracks the position well."
    elif verdict == "partly":
        head += "It tracks the position only partly: no unit does it well on this text."
    else:
        head += "No unit tracks the position well on this text; this is the best there is."
    if n_quoted == 0:
        head += (" The text has no quotation marks (Shakespeare marks speech by speaker lines), so a "
                 "quotation cell cannot be looked for here.")
    return head
