"""Figure builders: integer x positions (repeated words keep their column), signed scales centred
at 0 with fixed ranges, and the data behind each figure."""
import json

import numpy as np
import pytest

from explorer import trace
from explorer.analysis import (attribute, compare_fade, contrast, generate_trace, half_lives,
                               memory_matrix, next_word_comparison, cell_provenance, replacement_fade)
from explorer.present import analysis_figures as F

REPEAT = "the girl and the boy and the bartender"


def _check_ticks(fig, tokens):
    ax = fig.layout.xaxis
    assert list(ax.tickvals) == list(range(len(tokens)))
    assert len(ax.ticktext) == len(tokens)


def test_token_colors():
    c = F.token_colors([0.0, 1.0, -1.0, 0.5, np.nan, 3.0], vmax=1.0)
    assert c[0] == "#f7f7f7" and c[1] == "#b2182b" and c[2] == "#2166ac" and c[4] == "#e0e0e0"
    assert c[5] == c[1]                                   # clipped at the fixed range
    assert F.token_colors([0.0, 0.0]) == ["#f7f7f7"] * 2  # all-zero does not divide by zero


def test_attribution_figures(tiny_lstm):
    a = attribute(tiny_lstm, REPEAT, word="said")
    df = F.attribution_strip_data(a)
    assert list(df["token"]) == ["<eos>"] + REPEAT.split() and (df["vmax"] > 0).all()
    fig = F.attribution_strip(a)
    hm = fig.data[0]
    assert hm.zmid == 0 and hm.zmin == -hm.zmax and hm.zmax == pytest.approx(np.abs(a.scores["integrated_gradients"]).max())
    assert list(hm.x) == list(range(len(a.tokens)))
    _check_ticks(fig, a.tokens)
    assert list(fig.layout.xaxis.ticktext).count("the") == 3
    fig2 = F.attribution_strip(a, "occlusion", vmax=0.5)
    assert fig2.data[0].zmax == 0.5
    fb = F.attribution_bars(a)
    assert len(fb.data) == 3
    json.loads(fig.to_json())


def test_contrast_figures(tiny_lstm):
    c = contrast(tiny_lstm, "Mary loves John .", "John loves Mary .")
    lines = F.delta_norm_lines(c)
    assert len(lines.data) == 4                      # h and c for two layers
    _check_ticks(lines, c.tokens_a)
    assert "Mary | John" in lines.layout.xaxis.ticktext
    d = F.delta_norm_data(c)
    assert set(d["quantity"]) == {"h", "c"} and len(d) == 4 * c.n
    hm = F.delta_heatmap(c, "h").data[0]
    assert hm.zmid == 0 and (hm.zmin, hm.zmax) == (-2.0, 2.0)
    assert F.delta_heatmap(c, "f").data[0].zmax == 1.0
    hc = F.delta_heatmap(c, "c").data[0]
    assert hc.zmax == pytest.approx(np.nanmax(np.abs(c.delta("c"))))
    bars = F.next_word_bars(next_word_comparison(tiny_lstm, c, words=["said", "the"]))
    assert [b.name for b in bars.data] == ["A", "B"]
    assert list(bars.layout.xaxis.ticktext[:2]) == ["said", "the"]


def test_memory_figures(tiny_lstm, tiny_rnn):
    tr = trace(tiny_lstm, REPEAT)
    for unit in (None, 3):
        mm = memory_matrix(tr, unit=unit)
        hm = F.memory_matrix_heatmap(mm).data[0]
        assert np.asarray(hm.z).shape == (len(tr), len(tr))
        if unit is None:
            assert hm.zmin == 0
        else:
            assert hm.zmid == 0 and hm.zmin == -hm.zmax
    p = cell_provenance(tr)
    pb = F.provenance_bars(p, 2)
    np.testing.assert_allclose(np.sum(pb.data[0].y) + p.initial[2], tr.layers[-1].c[-1, 2], atol=1e-5)
    hl = F.half_life_chart(half_lives(tr))
    assert hl.layout.yaxis.type == "log" and len(hl.data[0].y) == 16
    fc = F.fade_curves(compare_fade({"LSTM": tiny_lstm, "RNN": tiny_rnn}, REPEAT))
    assert [t.name for t in fc.data] == ["LSTM", "RNN"]
    assert list(fc.layout.xaxis.ticktext).count("the") == 3
    rf = F.fade_curves(replacement_fade({"LSTM": tiny_lstm, "RNN": tiny_rnn}, REPEAT, ("he", "she")),
                       metric="tv", by=("model", "replacement"))
    assert [t.name for t in rf.data] == ["LSTM / he", "RNN / he", "LSTM / she", "RNN / she"]
    assert list(rf.layout.xaxis.tickvals) == list(range(1, 9))


def test_unrolled_diagram(tiny_lstm):
    tr = trace(tiny_lstm, REPEAT)
    d = F.unrolled_data(tr, max_steps=5, n_units=8)
    boxes, arrows = d["boxes"], d["arrows"]
    assert list(boxes["step"]) == [0, 1, 2, 3, 4] and list(boxes["token"]) == tr.words[:5]
    assert (arrows["kind"] == "recurrent").sum() == 4 and (arrows["kind"] == "input").sum() == 5
    for b, (xs, ys) in zip(boxes.itertuples(), d["sparklines"]):
        assert len(xs) == 8 and (xs > b.x0).all() and (xs < b.x1).all() and (ys > b.y0).all() and (ys < b.y1).all()
    assert boxes["top_word"].iloc[0] == tr.top_words(0, 1)[0][0]
    d2 = F.unrolled_data(tr, start=6, max_steps=5)
    assert list(d2["boxes"]["step"]) == [6, 7, 8]
    fig = F.unrolled_figure(tr, max_steps=5)
    assert len(fig.layout.shapes) == 5 and len(fig.data) == 5
    json.loads(fig.to_json())


def test_generation_and_author_figures(tiny_lstm):
    g = generate_trace(tiny_lstm, "Mary loves", 5, seed=1)
    fig = F.generation_bars(g)
    assert len(fig.data[0].y) == len(g.trace)
    assert list(fig.data[0].marker.color).count("#b2182b") == 5
    ab = F.author_bars({"austen": 0.7, "doyle": 0.3})
    assert list(ab.data[0].x) == [0.7, 0.3] and list(ab.layout.yaxis.ticktext) == ["austen", "doyle"]


def test_user_tokens_are_shown_as_typed_not_as_html(tiny_lstm):
    """Plotly reads HTML tags in labels: a typed "<b>" must stay visible text, not turn bold."""
    from explorer.analysis import attribute
    from explorer.present import analysis_figures as AF
    a = attribute(tiny_lstm, "Mary <b> loves", methods=("occlusion",))
    fig = AF.attribution_strip(a, "occlusion")
    ticks = list(fig.layout.xaxis.ticktext)
    assert "&lt;" in ticks and "&gt;" in ticks and "&lt;eos&gt;" in ticks
    assert not any("<" in t or ">" in t for t in ticks)
