"""explorer.present.player: the data the Explore page's player draws (every number it shows comes from here)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import explorer as E
from explorer.present import figures as F
from explorer.present import views as V
from explorer.present.player import GATE_BINS, b64_f32, decode_f32, player_data, reported_position

TEXT = "the cat saw the dog and the dog saw the cat ."


@pytest.fixture(scope="module")
def tr(tiny_lstm):
    return E.trace(tiny_lstm, TEXT, top_k=5)


def rows(d, key, q):
    return decode_f32(d[key][q], (-1, d["units"]))


def test_float32_round_trip_is_exact():
    a = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_array_equal(decode_f32(b64_f32(a), a.shape), a)


def test_whole_text(tr):
    n = len(tr)
    d = player_data(tr, 2, pos=n - 1, k=5, sig="s1")
    json.dumps(d)                                           # JSON-ready as it is
    assert (d["n"], d["lo"], d["hi"], d["pos"], d["units"]) == (n, 0, n, n - 1, 16)
    assert [t["label"] for t in d["tokens"]] == V.token_labels(tr)
    np.testing.assert_array_equal(rows(d, "states", "h"), tr.layers[1].values["h"])
    np.testing.assert_array_equal(rows(d, "states", "c"), tr.layers[1].values["c"])
    np.testing.assert_array_equal(rows(d, "prev", "h"), np.zeros((1, 16), np.float32))   # before token 0
    assert d["readout"] == [V.describe_step(tr, t) for t in range(n)]
    assert d["dmax"]["h"] == pytest.approx(V.delta_limits(tr, 2)["h"], rel=1e-5)
    h = tr.layers[1].values["h"]
    dh = np.abs(np.diff(np.vstack([np.zeros((1, 16), np.float32), h]), axis=0))
    assert d["dlim"]["h"] == pytest.approx(float(np.percentile(dh, 99)), rel=1e-5)
    assert d["dlim"]["h"] <= d["dmax"]["h"]


def test_next_words_match_the_trace(tr):
    d = player_data(tr, 1, pos=0, k=3)
    for t, nx in enumerate(d["next"]):
        assert [w for w, _ in nx["top"]] == [w for w, _ in tr.top_words(t, 3)]
        assert sum(p for _, p in nx["top"]) <= 1 + 1e-6
        if t + 1 < len(tr):
            a = nx["actual"]
            assert a["word"] == tr.vocab[tr.tokens[t + 1].id] and a["rank"] == int(tr.next_rank[t])
            assert a["prob"] == pytest.approx(float(tr.next_prob[t]), abs=1e-6)
            assert a["in_top"] == (a["rank"] <= 3)
        else:
            assert nx["actual"] is None


def test_gate_histograms_and_means(tr):
    d = player_data(tr, 2, pos=2)
    assert set(d["gates"]) == {"i", "f", "o"}
    for g, v in d["gates"].items():
        hist = np.asarray(v["hist"])
        assert hist.shape == (len(tr), GATE_BINS)
        np.testing.assert_allclose(hist.sum(1), 1.0, atol=1e-4)          # shares of units
        np.testing.assert_allclose(v["mean"], tr.layers[1].values[g].mean(1), atol=1e-5)


def test_a_window_and_the_row_before_it(tr):
    d = player_data(tr, 2, pos=1, window=(4, 9), heat=["i", "h"])
    assert (d["lo"], d["hi"], d["pos"]) == (4, 9, 4)                  # pos is kept inside the window
    assert len(d["tokens"]) == len(d["next"]) == len(d["readout"]) == 5
    lay = tr.layers[1].values
    np.testing.assert_array_equal(rows(d, "states", "h"), lay["h"][4:9])
    np.testing.assert_array_equal(rows(d, "prev", "c"), lay["c"][3:4])   # Δc at token 4 needs c_3
    (i, h) = d["heat"]
    assert i["q"] == "i" and h["q"] == "h" and h["data"] is None         # h is not sent twice
    np.testing.assert_array_equal(decode_f32(i["data"], (5, 16)), lay["i"][4:9])
    assert np.asarray(d["gates"]["f"]["hist"]).shape == (5, GATE_BINS)


def test_colour_scales_are_the_app_wide_ones(tiny_lstm, tr):
    ranges = V.value_ranges(tiny_lstm)
    d = player_data(tr, 1, pos=0, ranges=ranges, heat=["h", "c", "f", "g"])
    for hm in d["heat"]:
        cr = F.colour_range(hm["q"], ranges)
        assert (hm["scale"]["zmin"], hm["scale"]["zmax"]) == (cr["zmin"], cr["zmax"])
        assert hm["scale"]["stops"] == cr["colorscale"]
    scale = {hm["q"]: hm["scale"] for hm in d["heat"]}
    assert scale["c"]["log"] and scale["c"]["signed"] and not scale["h"]["log"]
    assert not scale["f"]["signed"] and scale["g"]["signed"]


def test_rnn_and_gru(tiny_rnn, tiny_gru):
    r = player_data(E.trace(tiny_rnn, TEXT), 1, pos=3)
    assert r["cell"] == "rnn" and r["gates"] == {} and set(r["states"]) == {"h"} and set(r["dlim"]) == {"h"}
    assert [h["q"] for h in r["heat"]] == ["h"]                          # "c" asked for by default, absent
    g = player_data(E.trace(tiny_gru, TEXT), 2, pos=3, heat=["h", "n"])
    assert set(g["gates"]) == {"r", "z"} and [h["q"] for h in g["heat"]] == ["h", "n"]


def test_bad_arguments(tiny_lstm, tr):
    with pytest.raises(IndexError):
        player_data(tr, 6, pos=0)
    d = player_data(tr, 1, pos=10_000)
    assert d["pos"] == len(tr) - 1


def test_unknown_words_and_markup_travel_as_text(tiny_lstm):
    tr = E.trace(tiny_lstm, 'zyzzyva <b>bold</b> & "quoted"')
    d = player_data(tr, 1, pos=0)
    labels = [t["label"] for t in d["tokens"]]
    assert "zyzzyva" in labels and any("<" in w for w in labels)        # raw: the player sets textContent
    assert all(t["unk"] for t in d["tokens"] if t["label"] == "zyzzyva")


def test_gate_histograms_of_a_window_are_the_rows_of_the_whole(tr):
    whole = V.gate_histograms(tr, 2, 8)                      # layer 2: tr.layers[1]
    part = V.gate_histograms(tr, 2, 8, window=(2, 5))
    for g in ("i", "f", "o"):
        np.testing.assert_array_equal(part[g], whole[g][2:5])
        # each row counts every unit once, in the bin its value falls in
        expected = np.stack([np.histogram(np.clip(v, 0, 1 - 1e-9), bins=8, range=(0, 1))[0] for v in tr.layers[1].values[g]])
        np.testing.assert_allclose(whole[g] * 16, expected, atol=1e-4)


def test_position_reports():
    assert reported_position({"pos": 3, "sig": "a", "seq": 17}, "a") == 3
    assert reported_position({"pos": 3, "sig": "old text", "seq": 18}, "a") is None   # arrives late: ignored
    for bad in (None, 3, "3", {"pos": "3", "sig": "a"}, {"pos": -1, "sig": "a"}, {"pos": True, "sig": "a"},
                {"sig": "a"}, {"pos": 2.5, "sig": "a"}):
        assert reported_position(bad, "a") is None, bad


def test_gate_axis_is_the_whole_texts_and_nan_travels_as_null(tr):
    import dataclasses

    from explorer.trace import LayerTrace

    whole = V.gate_histograms(tr, 2, GATE_BINS)
    d = player_data(tr, 2, pos=5, window=(4, 8))
    assert d["gate_max"] == pytest.approx(max(float(h.max()) for h in whole.values()))
    vals = {q: np.array(a) for q, a in tr.layers[1].values.items()}
    vals["i"][2, :] = np.nan                                  # a diverged model
    bad = dataclasses.replace(tr, layers=(tr.layers[0], LayerTrace(1, vals)))
    d = player_data(bad, 2, pos=2)
    assert d["gates"]["i"]["mean"][2] is None
    json.dumps(d, allow_nan=False)                          # the browser's JSON.parse takes no NaN


def test_player_data_is_one_typed_record(tr):
    """The app's component and the notebook widget both send PlayerData.to_json(); player_data is that dict."""
    import dataclasses

    from explorer.present.player import HEATMAP_TABS, PlayerData, build_player_data
    rec = build_player_data(tr, 2, pos=3, k=5, sig="s", views=[name for name, _ in HEATMAP_TABS["lstm"]])
    assert isinstance(rec, PlayerData) and dataclasses.is_dataclass(rec)
    d = rec.to_json()
    assert set(d) == {f.name for f in dataclasses.fields(PlayerData)}
    assert d["views"] == ["States h · c", "Gates i · f · o and candidate g"]
    assert d == player_data(tr, 2, pos=3, k=5, sig="s", views=rec.views)
    assert rec.with_views(["x"]).to_json()["views"] == ["x"] and player_data(tr, 2, pos=3)["views"] == []
    json.dumps(d, allow_nan=False)
