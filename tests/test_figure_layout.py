"""Layout of the charts (issue 22, item 13), checked on the figures themselves: Intervene's legend sits
under its title, not over it, and a long text's token labels are thinned so they do not smear; the
step view's unit labels keep a label's width apart; the probe chart's baseline is named in the legend,
not written over the first bar; the Units page never heads positive values "most negative" nor prints
+0.000, and its context strips wrap inside their column."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from explorer.analysis import intervene as IV
from explorer.analysis import probe
from explorer.present import causal_figures, corpus_figures, figures, views

from conftest import TEXT

LINE_PX = 20          # a title or legend row, px (font 14-16)


def _legend_rows(fig, width: int = 700) -> int:
    names = [t.name for t in fig.data if t.name and t.showlegend is not False]
    return max(1, math.ceil(sum(7 * len(n) + 40 for n in names) / width))


def title_and_legend_px(fig) -> tuple[tuple[float, float], tuple[float, float]]:
    """The vertical bands (top, bottom in px from the figure's top) of the title and the legend."""
    H = fig.layout.height
    m_t = fig.layout.margin.t
    m_b = fig.layout.margin.b if fig.layout.margin.b is not None else 60
    plot_h = H - m_t - m_b
    t = fig.layout.title
    if t.yref == "container" and t.y is not None:
        top = (1 - t.y) * H if t.yanchor == "top" else (1 - t.y) * H - LINE_PX
        title = (top, top + LINE_PX)
    else:                                            # Plotly's default: centred in the top margin
        title = (m_t / 2 - LINE_PX / 2, m_t / 2 + LINE_PX / 2)
    lg = fig.layout.legend
    rows = _legend_rows(fig) * LINE_PX
    y = (1 - lg.y) * H if lg.yref == "container" else m_t + (1 - lg.y) * plot_h
    legend = (y, y + rows) if lg.yanchor == "top" else (y - rows, y)
    return title, legend


def _apart(a, b) -> bool:
    return a[1] <= b[0] or b[1] <= a[0]


@pytest.fixture(scope="module")
def long_result(tiny_lstm):
    text = " ".join((TEXT.split() * 3)[:300])
    r = IV.intervene(tiny_lstm, text, IV.Intervention(1, "h", (0, 1), "set", 0.5, 1), words=("the", "cat"))
    assert r.T > 150
    return r


@pytest.mark.parametrize("build", [causal_figures.intervention_effect, causal_figures.state_change_lines])
def test_intervene_legend_under_its_title_and_few_token_labels(long_result, build):
    fig = build(long_result)
    title, legend = title_and_legend_px(fig)
    assert _apart(title, legend), (title, legend)
    assert legend[1] <= fig.layout.margin.t + 2                  # and above the plot, not over it
    ticks = fig.layout.xaxis.tickvals
    assert len(ticks) <= 24, f"{len(ticks)} token labels on a {long_result.T}-token text smear"


def _report():
    scores = tuple(probe.ProbeScore(l, q, 0.8, 0.6, 0.7, 0.7) for l in (1, 2) for q in ("h", "c"))
    return probe.ProbeReport(task="quote", label_names=("outside", "inside"), model="m", train_books=("v",),
                             test_books=("t",), n_train=10, n_test=10, train_counts=(7, 3), test_counts=(7, 3),
                             scores=scores)


def test_probe_majority_is_named_in_the_legend_not_over_a_bar():
    fig = causal_figures.probe_bars(_report())
    over_plot = [a.text for a in fig.layout.annotations or () if a.text and "majority" in a.text]
    assert not over_plot, over_plot
    assert any(t.name and t.name.startswith("majority label 70.0%") for t in fig.data)
    assert _apart(*title_and_legend_px(fig))


def test_step_view_unit_labels_keep_a_label_width_apart(tiny_lstm, monkeypatch):
    """256 units whose biggest changes sit 15 units apart: at 400 px a label 'u123' (about 28 px) and
    its neighbour 15 units (23 px) away overlapped."""
    n = 256
    d = np.zeros(n)
    d[[100, 115, 130, 200]] = [1.0, 0.95, 0.9, 0.5]
    df = pd.DataFrame({"unit": np.arange(n), "dh": d, "h_prev": np.zeros(n), "h": d})
    monkeypatch.setattr(figures, "step_frame", lambda tr, layer, t: df)
    monkeypatch.setattr(views, "delta_limits", lambda tr, layer: {"h": 1.0})
    tr = tiny_lstm.trace(TEXT)
    fig = figures.step_figure(tr, 1, 3)
    labels = sorted((a.x, a.text) for a in fig.layout.annotations if a.text and a.text.startswith("u"))
    assert labels, "no unit labelled"
    px = [(x * 400 / n, 7 * len(t)) for x, t in labels]
    for (x0, w0), (x1, w1) in zip(px, px[1:]):
        assert x1 - x0 >= (w0 + w1) / 2, labels


class _Ctx:
    def __init__(self, value):
        self.value = value


def test_units_low_end_never_says_most_negative_over_positive_values():
    heading, shown = corpus_figures.lowest_contexts([_Ctx(0.0002), _Ctx(0.001)])
    assert "never goes below 0" in heading and len(shown) == 2
    heading, shown = corpus_figures.lowest_contexts([_Ctx(-0.4), _Ctx(0.001)])
    assert heading == "Most negative" and [c.value for c in shown] == [-0.4]
    assert corpus_figures.value_text(0.0002) not in ("+0.000", "-0.000")
    assert corpus_figures.value_text(-0.4) == "-0.400"


def test_units_context_strips_wrap_inside_their_column():
    css = corpus_figures.CHIP_CSS
    assert "display:inline-block" in css            # a line may break between chips
    assert "overflow:hidden" in css                 # and nothing spills into the histogram's column
