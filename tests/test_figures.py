"""explorer.present.views and explorer.present.figures: the data behind each view, and the Plotly specs drawn from it."""
from __future__ import annotations

import json

import numpy as np
import pytest

import explorer as E
from explorer.present import figures as F
from explorer.present import views as V
from explorer.trace import RANGES

REPEATED = "the cat saw the dog and the dog saw the cat ."


@pytest.fixture(scope="module")
def tr(tiny_lstm):
    return E.trace(tiny_lstm, REPEATED)


def spec(fig) -> dict:
    """What Streamlit sends to the browser: the figure's JSON."""
    return json.loads(fig.to_json())


# ------------------------------------------------------------------------------------ heatmaps
def test_heatmap_frame_is_tidy_and_matches_the_trace(tr):
    df = F.heatmap_frame(tr, 2, "c")
    T, U = tr.layers[1].c.shape
    assert list(df.columns) == ["position", "token", "unit", "value"]
    assert len(df) == T * U
    row = df[(df.position == 4) & (df.unit == 7)].iloc[0]
    assert row.token == "the" and row.value == pytest.approx(tr.layers[1].c[4, 7])
    assert df.position.tolist()[:U] == [0] * U          # position-major


def test_heatmap_repeated_words_get_their_own_columns(tr):
    fig = F.heatmap_figure(tr, 1, "h")
    s = spec(fig)
    ax = s["layout"]["xaxis"]
    T = len(tr)
    assert ax["tickmode"] == "array"
    assert ax["tickvals"] == list(range(T))
    assert ax["ticktext"][0] == "&lt;eos&gt;"
    assert ax["ticktext"][1:] == REPEATED.split()
    assert ax["ticktext"].count("the") == 4                # four columns, not one merged category
    heat = fig.data[0]
    assert list(heat.x) == list(range(T))
    assert np.asarray(heat.z).shape == (tr.layers[0].h.shape[1], T)
    np.testing.assert_allclose(np.asarray(heat.z)[:, 4], tr.layers[0].h[4])   # the second "the"
    np.testing.assert_allclose(np.asarray(heat.z)[:, 1], tr.layers[0].h[1])   # the first "the"
    assert not np.allclose(np.asarray(heat.z)[:, 1], np.asarray(heat.z)[:, 4])


@pytest.mark.parametrize("q", ["h", "g"])
def test_signed_quantities_are_centred_and_fixed(tr, q):
    d = spec(F.heatmap_figure(tr, 1, q))["data"][0]
    assert (d["zmin"], d["zmid"], d["zmax"]) == (RANGES[q][0], 0.0, RANGES[q][1])


@pytest.mark.parametrize("q", ["i", "f", "o"])
def test_gates_use_a_fixed_zero_to_one_scale(tr, q):
    d = spec(F.heatmap_figure(tr, 1, q))["data"][0]
    assert (d["zmin"], d["zmax"]) == (0.0, 1.0)
    assert "zmid" not in d
    assert d["colorscale"][0][1] == F.SEQUENTIAL[0][1]


def test_cell_state_uses_the_given_or_documented_range_not_autoscale(tiny_lstm, tr):
    s = spec(F.heatmap_figure(tr, 1, "c"))
    d = s["data"][0]
    r = float(F.symlog(V.C_RANGE_DEFAULT))
    assert (d["zmin"], d["zmid"], d["zmax"]) == (-r, 0.0, r)
    assert s["layout"]["meta"]["scale"] == "symlog" and s["layout"]["meta"]["range"] == [-3.0, 3.0]
    assert d["colorbar"]["ticktext"][0] == "-3" and d["colorbar"]["ticktext"][-1] == "3"
    ranges = V.value_ranges(tiny_lstm)
    lo, hi = ranges["c"]
    assert lo == -hi and hi >= 1.0
    other = E.trace(tiny_lstm, "Holmes said nothing at all for a very long time .")
    for t in (tr, other):                                   # the same range for every sentence
        d = spec(F.heatmap_figure(t, 2, "c", ranges=ranges))["data"][0]
        assert (d["zmin"], d["zmax"]) == (-float(F.symlog(hi)), float(F.symlog(hi)))


def test_cell_state_colours_by_symlog_and_hovers_the_value(tr):
    fig = F.heatmap_figure(tr, 2, "c")
    c = tr.layers[1].c
    np.testing.assert_allclose(np.asarray(fig.data[0].z), F.symlog(c.T), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fig.data[0].customdata), c.T)
    assert "%{customdata:.3f}" in fig.data[0].hovertemplate
    assert F.symlog(0.0) == 0 and F.symlog(-1.0) == -np.log(2)


def test_heatmap_hover_names_token_unit_and_value(tr):
    # plotly.js fills %{x} / %{y} of a hover template with the axes' tick text (checked in the
    # browser test): the hover box reads the token and unit without a per-cell text array
    fig = F.heatmap_figure(tr, 1, "h")
    heat = fig.data[0]
    tmpl = heat.hovertemplate
    assert "<b>%{x}</b>" in tmpl and "unit %{y}" in tmpl and "h = %{z:.3f}" in tmpl
    assert heat.text is None
    assert fig.layout.xaxis.ticktext[4] == "the" and fig.layout.xaxis.ticktext[0] == "&lt;eos&gt;"
    units = F.heatmap_figure(tr, 1, "h", units=[7, 3])
    assert units.layout.yaxis.ticktext == ("u7", "u3") and "unit %{y}" in units.data[0].hovertemplate


def test_heatmap_marks_the_selected_token(tr):
    s = spec(F.heatmap_figure(tr, 1, "f", selected=3))
    (shape,) = s["layout"]["shapes"]
    assert shape["type"] == "rect" and (shape["x0"], shape["x1"]) == (2.5, 3.5)
    assert s["layout"]["xaxis"]["ticktext"][3] == "<b>saw</b>"
    assert s["layout"]["meta"]["selected"] == 3
    assert spec(F.heatmap_figure(tr, 1, "f")).get("layout", {}).get("shapes", []) == []


def test_user_text_is_escaped_in_plotly_labels(tiny_lstm):
    t = E.trace(tiny_lstm, 'she said <b>hi</b> & <a href="x">')
    s = spec(F.heatmap_figure(t, 1, "h"))
    ticks = s["layout"]["xaxis"]["ticktext"]
    assert "<" not in "".join(ticks) and "&lt;" in "".join(ticks) and "&amp;" in ticks


def test_heatmap_window_keeps_absolute_positions(tiny_lstm):
    t = E.trace(tiny_lstm, " ".join(["the cat saw the dog ."] * 20))
    a, b = V.window(len(t), 70, 40)
    assert b - a == 40 and a <= 70 < b
    fig = F.heatmap_figure(t, 1, "h", selected=70, window=(a, b))
    assert list(fig.data[0].x) == list(range(a, b))
    assert fig.layout.xaxis.tickvals == tuple(range(a, b))
    assert fig.layout.shapes[0].x0 == 69.5


def test_heatmap_of_chosen_units(tr):
    fig = F.heatmap_figure(tr, 2, "h", units=[5, 2])
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z[0], tr.layers[1].h[:, 5])
    np.testing.assert_allclose(z[1], tr.layers[1].h[:, 2])
    assert list(fig.layout.yaxis.ticktext) == ["u5", "u2"]


# --------------------------------------------------------------------------------- token strip
def test_token_frame_marks_unknown_words_and_surprisal(tiny_lstm):
    t = E.trace(tiny_lstm, "Mary adores zyzzyva .")
    df = F.token_frame(t)
    assert df.label.tolist() == ["<eos>", "Mary", "adores", "zyzzyva", "."]
    assert df.unk.tolist() == [False, False, True, True, False]        # "adores" is not in the tiny vocabulary either
    assert df.special.tolist()[0] and np.isnan(df.surprisal_bits[0])
    np.testing.assert_allclose(df.surprisal_bits[1:], t.surprisal[1:])
    assert df.colour[0] == "#e9ecef"
    assert F.surprisal_colour(0.0) == "#ffffff" and F.surprisal_colour(99) == F.SURPRISAL_STOPS[-1][1]
    assert V.unknown_words(t) == ["adores", "zyzzyva"]


def test_token_strip_html_escapes_user_text(tiny_lstm):
    t = E.trace(tiny_lstm, "she said <script>alert(1)</script> & left")
    h = F.token_strip_html(t, selected=2)
    assert "<script>" not in h and "&lt;" in h and "&amp;" in h
    assert 'class="tok sel" data-pos="2"' in h
    assert 'class="tok special"' in h                      # the <eos> chip
    assert h.count('class="tok unk') >= 1                   # "script", "alert" are unknown
    assert 'data-selected="2"' in h


# ----------------------------------------------------------------------------------- next word
def test_topk_highlights_the_actual_next_word(tiny_lstm):
    t = E.trace(tiny_lstm, "the cat saw the dog")
    for pos in range(len(t) - 1):
        df = F.topk_frame(t, pos, k=5)
        actual = t.vocab[t.tokens[pos + 1].id]
        assert df.actual.sum() == 1
        row = df[df.actual].iloc[0]
        assert row.word == actual
        assert row.prob == pytest.approx(float(t.next_prob[pos]), rel=1e-5)
        assert row["rank"] == int(t.next_rank[pos])
        assert row.in_topk == (row["rank"] <= 5)
        assert len(df) == 5 + (not row.in_topk)
        fig = F.topk_figure(t, pos, k=5)
        colours = list(fig.data[0].marker.color)
        i = int(np.flatnonzero(df.actual.to_numpy())[0])
        assert colours[i] == F.HIGHLIGHT and colours.count(F.HIGHLIGHT) == 1
        assert fig.layout.yaxis.ticktext[i].startswith("<b>")


def test_topk_at_the_last_token_has_no_actual_word(tr):
    df = F.topk_frame(tr, len(tr) - 1, k=4)
    assert len(df) == 4 and not df.actual.any()
    assert "end of the text" in F.topk_figure(tr, len(tr) - 1, k=4).layout.title.text


# ----------------------------------------------------------------------------------- step view
def test_step_frame_is_the_change_from_the_previous_token(tr):
    df = F.step_frame(tr, 2, 3)
    lay = tr.layers[1]
    np.testing.assert_allclose(df.dh, lay.h[3] - lay.h[2], atol=1e-7)
    np.testing.assert_allclose(df.dc, lay.c[3] - lay.c[2], atol=1e-7)
    first = F.step_frame(tr, 2, 0)                         # before the first token: the zero state
    np.testing.assert_allclose(first.dh, lay.h[0])


def test_step_figure_axes_do_not_rescale_while_stepping(tr):
    a, b = spec(F.step_figure(tr, 1, 1)), spec(F.step_figure(tr, 1, 5))
    assert a["layout"]["yaxis"]["range"] == b["layout"]["yaxis"]["range"]
    assert a["layout"]["yaxis2"]["range"] == b["layout"]["yaxis2"]["range"]
    assert [d["name"] for d in a["data"]] == ["Δh", "Δh", "Δc", "Δc"]           # up and down parts
    up, down = F.step_figure(tr, 1, 5).data[:2]
    d = F.step_frame(tr, 1, 5).dh.to_numpy()
    np.testing.assert_allclose(np.asarray(up.y) + np.asarray(down.y), d, atol=1e-7)
    np.testing.assert_allclose(np.asarray(up.customdata)[:, 0], d)
    lim = V.delta_limits(tr, 1)["h"]
    assert all(abs(v) <= lim + 1e-6 for p in range(len(tr)) for v in F.step_frame(tr, 1, p).dh)


def test_step_figure_for_an_rnn_has_only_h(tiny_rnn):
    t = E.trace(tiny_rnn, "the cat saw the dog")
    assert {d.name for d in F.step_figure(t, 1, 2).data} == {"Δh"}


# --------------------------------------------------------------------------------------- gates
def test_gates_frame_lstm(tr):
    df = F.gates_frame(tr, 1, 2)
    U = tr.layers[0].h.shape[1]
    assert list(dict.fromkeys(df.gate)) == ["i", "f", "o"] and len(df) == 3 * U
    assert df.value.between(0, 1).all()
    np.testing.assert_allclose(df[df.gate == "f"].value, tr.layers[0].f[2])
    summ = V.gate_summary(tr, 1, 2)
    assert summ.set_index("gate").loc["f", "mean"] == pytest.approx(float(tr.layers[0].f[2].mean()), rel=1e-5)
    fig = F.gates_figure(tr, 1, 2)
    assert fig.layout.xaxis.range == (0, 1)                  # fixed, 0 = closed, 1 = open
    hist = V.gate_histograms(tr, 1, bins=20)
    assert set(hist) == {"i", "f", "o"} and hist["f"].shape == (len(tr), 20)
    np.testing.assert_allclose(hist["f"].sum(1), 1.0, rtol=1e-6)
    bars = [d for d in fig.data if d.type == "bar"]
    assert [b.name for b in bars] == ["i", "f", "o"]
    np.testing.assert_allclose(bars[1].y, np.histogram(tr.layers[0].f[2], bins=20, range=(0, 1))[0] / U, atol=1e-6)
    other = F.gates_figure(tr, 1, 5)                          # y axes fixed while stepping
    assert other.layout.yaxis.range == fig.layout.yaxis.range and other.layout.yaxis3.range == fig.layout.yaxis3.range


def test_gates_of_gru_and_rnn(tiny_gru, tiny_rnn):
    g = E.trace(tiny_gru, "the cat saw the dog")
    assert list(dict.fromkeys(F.gates_frame(g, 1, 1).gate)) == ["r", "z"]
    r = E.trace(tiny_rnn, "the cat saw the dog")
    assert F.gates_frame(r, 1, 1).empty
    fig = F.gates_figure(r, 1, 1)
    assert len(fig.data) == 0 and "no gates" in fig.layout.annotations[0].text


# --------------------------------------------------------------------------------------- units
def test_choose_units(tr):
    h = tr.layers[1].h
    active = V.choose_units(tr, 2, "h", "most active", k=3)
    assert active[0] == int(np.argmax(np.abs(h).mean(0)))
    assert len(active) == 3 and len(set(active)) == 3
    changed = V.choose_units(tr, 2, "h", "most changed at this step", t=4, k=2)
    assert changed[0] == int(np.argmax(np.abs(h[4] - h[3])))
    with pytest.raises(ValueError):
        V.choose_units(tr, 2, "h", "most changed at this step", k=2)
    with pytest.raises(ValueError):
        V.unit_scores(tr, 2, "h", "loudest")


def test_units_figure(tr):
    df = F.units_frame(tr, 1, "c", [3, 1])
    assert len(df) == 2 * len(tr) and set(df.unit) == {1, 3}
    np.testing.assert_allclose(df[df.unit == 3].value, tr.layers[0].c[:, 3])
    fig = F.units_figure(tr, 1, "h", [3, 1], selected=4)
    assert [d.name for d in fig.data] == ["unit 3", "unit 1"]
    assert fig.layout.xaxis.ticktext[4] == "<b>the</b>" and fig.layout.xaxis.ticktext[1] == "the"
    assert fig.layout.yaxis.range == (-1.1, 1.1)
    assert fig.layout.shapes[0].x0 == 4
    cfig = F.units_figure(tr, 1, "c", [3, 1], selected=4)     # unbounded: the units' own extent, fixed
    m = float(np.abs(tr.layers[0].c[:, [3, 1]]).max())
    assert cfig.layout.yaxis.range[1] >= m and cfig.layout.yaxis.range == F.units_figure(tr, 1, "c", [3, 1], 1).layout.yaxis.range
    with pytest.raises(IndexError):
        F.units_frame(tr, 1, "h", [10_000])


# --------------------------------------------------------------------------------- ranges, misc
def test_nice_ceiling():
    assert [V.nice_ceiling(x) for x in (0.2, 1.0, 1.2, 2.7, 3.1, 7, 11, 42)] == [1, 1, 1.5, 3, 4, 8, 15, 50]


def test_value_ranges_bounded_quantities_keep_their_math_range(tiny_lstm, tiny_gru, tiny_rnn):
    r = V.value_ranges(tiny_lstm)
    assert set(r) == {"h", "c", "i", "f", "g", "o"}
    for q in "hifgo":
        assert r[q] == RANGES[q]
    assert V.value_ranges(tiny_lstm) == r                  # deterministic
    assert set(V.value_ranges(tiny_gru)) == {"h", "r", "z", "n"}
    assert V.value_ranges(tiny_rnn) == {"h": (-1.0, 1.0)}


def test_window():
    assert V.window(10, 3, 120) == (0, 10)
    for n, size in ((500, 120), (121, 120), (7, 3)):
        for t in range(n):
            a, b = V.window(n, t, size)
            assert b - a == size and 0 <= a <= t < b <= n


def test_tick_labels_thin_past_the_limit_and_keep_the_selected_token():
    assert V.thin_ticks(30) == list(range(30))
    vals = V.thin_ticks(120, start=500, keep=537)
    assert len(vals) <= V.MAX_TICKS + 1 and 537 in vals and vals[0] == 500


def test_describe_step(tiny_lstm):
    t = E.trace(tiny_lstm, "the cat saw zyzzyva")
    assert "boundary" in V.describe_step(t, 0)
    s = V.describe_step(t, 1)
    assert "surprisal" in s and "bits" in s and "next token" in s
    assert "unknown" in V.describe_step(t, 4)


def test_bad_positions_raise(tr):
    with pytest.raises(IndexError):
        F.step_frame(tr, 1, len(tr))
    with pytest.raises(IndexError):
        F.heatmap_frame(tr, 6, "h")


# ------------------------------------------------------------------------------------- combined
def test_heatmaps_figure_combines_panels_with_linked_axes(tiny_lstm, tr):
    ranges = V.value_ranges(tiny_lstm)
    fig = F.heatmaps_figure(tr, 2, ["h", "c"], selected=4, ranges=ranges)
    s = spec(fig)
    meta = s["layout"]["meta"]
    assert meta["view"] == "combined" and [p["quantity"] for p in meta["panels"]] == ["h", "c"]
    h, c = s["data"]
    assert (h["xaxis"], h["yaxis"], c["xaxis"], c["yaxis"]) == ("x", "y", "x2", "y2")
    assert s["layout"]["xaxis2"]["matches"] == "x"                  # zoom one, zoom both
    assert s["layout"]["xaxis"]["ticktext"] == s["layout"]["xaxis2"]["ticktext"]
    assert s["layout"]["xaxis"]["domain"][1] < s["layout"]["xaxis2"]["domain"][0]   # side by side
    for ax in ("xaxis", "xaxis2", "yaxis", "yaxis2"):
        d0, d1 = s["layout"][ax]["domain"]
        assert 0 <= d0 < d1 <= 1
    assert h["colorbar"]["x"] < c["colorbar"]["x"] <= 1.0           # each panel keeps its colour bar
    assert (h["zmin"], h["zmax"]) == (-1.0, 1.0)
    assert [sh["xref"] for sh in s["layout"]["shapes"]] == ["x", "x2"]   # the selection box in both
    titles = [a["text"] for a in s["layout"]["annotations"] if a.get("name") == "title"]
    assert titles[0].startswith("<b>h</b>") and titles[1].startswith("<b>c</b>")
    stacked = spec(F.heatmaps_figure(tr, 2, ["h", "c"], cols=1))
    assert stacked["layout"]["yaxis"]["domain"][0] > stacked["layout"]["yaxis2"]["domain"][1]


def test_step_view_figure_holds_the_three_panels(tr, tiny_rnn):
    s = spec(F.step_view_figure(tr, 1, 3, k=5))
    assert [p["view"] for p in s["layout"]["meta"]["panels"]] == ["topk", "step", "gates"]
    assert s["layout"]["meta"]["position"] == 3
    # panel-relative annotations (labels of the biggest changes) now point at the renamed axes
    refs = {a.get("xref") for a in s["layout"]["annotations"]}
    assert "x2" in refs                                       # the Δh panel is the second x axis
    assert all(d["xaxis"] in {f"x{'' if i == 1 else i}" for i in range(1, 8)} for d in s["data"])
    r = E.trace(tiny_rnn, "the cat saw the dog")
    assert [p["view"] for p in spec(F.step_view_figure(r, 1, 2))["layout"]["meta"]["panels"]] == ["topk", "step"]


def test_pct():
    assert V.pct(0.122) == "12.2%" and V.pct(0.0004) == "0.04%" and V.pct(3e-6) == "0.0003%"
    assert V.pct(0.0) == "0%" and V.pct(float("nan")) == "–"
