"""Cell-state provenance is exact; the memory matrix, half-lives and fading agree with it."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explorer import trace
from explorer.analysis import (cell_provenance, compare_fade, fade_length, half_lives, memory_matrix,
                               occlusion_fade, replacement_fade)

from conftest import make_model

TEXT = 'Mary loves John . "Certainly, miss," said the bartender, and the girl smiled . It was the best of times'


@pytest.mark.parametrize("layer", [1, 2])
def test_parts_sum_to_c_at_every_step(tiny_lstm, layer):
    tr = trace(tiny_lstm, TEXT)
    for t in range(len(tr)):
        p = cell_provenance(tr, step=t, layer=layer)
        assert p.parts.shape == (t + 1, 16)
        np.testing.assert_allclose(p.total, tr.layers[layer - 1].c[t], atol=1e-5, rtol=0)
        assert p.layer == layer
        assert not p.initial.any()                     # a fresh state: c_0 = 0


def test_parts_sum_to_stock_lstm_cell_state_with_carried_state():
    m = make_model("lstm", layers=2, hidden=12, seed=5)
    g = torch.Generator().manual_seed(0)
    state = (torch.randn(2, 1, 12, generator=g), 3 * torch.randn(2, 1, 12, generator=g))
    tr = trace(m, TEXT, state=state)
    _, (hn, cn) = m.lm.rnn(m.lm.embedding(torch.tensor([[t.id for t in tr.tokens]])), state)
    for layer in (1, 2):
        p = cell_provenance(tr, layer=layer, c0=state)
        assert np.abs(p.initial).max() > 0
        np.testing.assert_allclose(p.total, cn[layer - 1, 0].numpy(), atol=1e-5, rtol=0)
        # the explicit formula, term by term, for one unit
        lay, u, T = tr.layers[layer - 1], 3, len(tr)
        f, i, gg = (np.asarray(lay[q][:, u], np.float64) for q in "fig")
        for k in range(T):
            assert p.parts[k, u] == pytest.approx(np.prod(f[k + 1:]) * i[k] * gg[k], abs=1e-12)
        assert p.initial[u] == pytest.approx(np.prod(f) * float(state[1][layer - 1, 0, u]), abs=1e-12)


def test_provenance_invariants(tiny_lstm):
    tr = trace(tiny_lstm, TEXT)
    p = cell_provenance(tr)
    assert ((p.retention > 0) & (p.retention <= 1)).all()
    np.testing.assert_array_equal(p.retention[-1], 1.0)           # the last write is not yet forgotten
    assert (np.diff(p.retention, axis=0) >= 0).all()              # older writes are kept less
    uf = p.unit_frame(2)
    np.testing.assert_allclose(np.abs(uf["share"]).sum(), 1.0)
    assert list(uf["token"]) == tr.words
    np.testing.assert_allclose(p.layer_frame()["norm"], np.linalg.norm(p.parts, axis=1))


def test_memory_matrix_agrees_with_provenance(tiny_lstm):
    tr = trace(tiny_lstm, TEXT)
    T = len(tr)
    mm = memory_matrix(tr, layer=1, unit=5)
    mn = memory_matrix(tr, layer=1)
    assert mm.values.shape == (T, T)
    assert np.isnan(mm.values[np.tril_indices(T, -1)]).all()      # nothing written after "now"
    for t in (0, 7, T - 1):
        p = cell_provenance(tr, step=t, layer=1)
        np.testing.assert_allclose(mm.values[: t + 1, t], p.parts[:, 5], atol=1e-12)
        np.testing.assert_allclose(mn.values[: t + 1, t], np.linalg.norm(p.parts, axis=1), atol=1e-12)
    np.testing.assert_allclose(np.nansum(mm.values, 0), tr.layers[0].c[:, 5], atol=1e-5)
    lay = tr.layers[0]
    np.testing.assert_allclose(np.diag(mm.values), (lay.i * lay.g)[:, 5], atol=1e-6)
    assert len(mm.frame()) == T * (T + 1) // 2


def test_half_life_formula_and_order():
    f = np.array([[0.5, 0.9, 1.0, 0.8]] * 3 + [[0.5, 0.9, 1.0, 0.6]], np.float32)
    fake = SimpleNamespace(cell="lstm", layers=[SimpleNamespace(f=f, index=0)])
    df = half_lives(fake, layer=1)
    assert list(df["unit"]) == [2, 1, 3, 0]
    assert np.isinf(df["half_life"].iloc[0])
    assert df.set_index("unit").loc[1, "half_life"] == pytest.approx(np.log(0.5) / np.log(0.9), rel=1e-6)
    assert df.set_index("unit").loc[0, "half_life"] == pytest.approx(1.0, rel=1e-6)
    assert df.set_index("unit").loc[3, "mean_forget"] == pytest.approx(0.75, rel=1e-6)
    geo = half_lives(fake, layer=1, average="geometric").set_index("unit")
    assert geo.loc[3, "mean_forget"] == pytest.approx(np.exp(np.log([0.8, 0.8, 0.8, 0.6]).mean()), rel=1e-6)


def test_half_lives_on_traces(tiny_lstm):
    trs = [trace(tiny_lstm, TEXT), trace(tiny_lstm, "John loves Mary .")]
    df = half_lives(trs)
    assert len(df) == 16 and (np.diff(df["half_life"]) <= 0).all()
    assert ((df["mean_forget"] > 0) & (df["mean_forget"] < 1)).all()


def test_provenance_needs_an_lstm(tiny_rnn):
    with pytest.raises(ValueError, match="LSTM"):
        cell_provenance(trace(tiny_rnn, "Mary loves John"))
    with pytest.raises(ValueError, match="LSTM"):
        memory_matrix(trace(tiny_rnn, "Mary loves John"))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_occlusion_fade_agrees_with_two_traces(cell):
    m = make_model(cell, layers=2, hidden=16, seed=2)
    text = "Mary loves John . It was the best of times"
    df = occlusion_fade(m, text)
    a, b = trace(m, text), trace(m, "zzzunknown loves John . It was the best of times")
    assert b.tokens[1].unk
    assert list(df["position"]) == list(range(1, len(a)))
    assert df["distance"].iloc[0] == 0 and df["token"].iloc[0] == "Mary"
    dh = np.linalg.norm(a.layers[-1].h.astype(np.float64) - b.layers[-1].h, axis=1)[1:]
    np.testing.assert_allclose(df["dh"], dh, atol=1e-5)
    assert (df["dh"] > 0).all() and ((df["tv"] >= 0) & (df["tv"] <= 1)).all() and (df["kl"] > -1e-9).all()


def test_occlusion_fade_same_word_is_zero_and_layer_choice(tiny_lstm):
    df = occlusion_fade(tiny_lstm, "Mary loves John .", replacement="mary")
    assert np.allclose(df[["dh", "tv", "kl"]].to_numpy(), 0)
    low = occlusion_fade(tiny_lstm, "Mary loves John .", replacement="john", layer=1)
    a, b = trace(tiny_lstm, "Mary loves John ."), trace(tiny_lstm, "John loves John .")
    np.testing.assert_allclose(low["dh"], np.linalg.norm(a.layers[0].h - b.layers[0].h, axis=1)[1:], atol=1e-5)
    with pytest.raises(ValueError):
        occlusion_fade(tiny_lstm, "Mary loves", replacement="zebra")


def test_compare_fade(tiny_lstm, tiny_rnn):
    df = compare_fade({"LSTM": tiny_lstm, "RNN": tiny_rnn}, "Mary loves John .")
    assert list(df["model"].unique()) == ["LSTM", "RNN"] and len(df) == 8


def test_fade_length():
    import pandas as pd
    df = pd.DataFrame({"model": ["A"] * 4 + ["B"] * 4, "distance": [0, 1, 2, 3] * 2,
                       "dh_rel": [1.0, 0.5, 0.05, 0.01, 1.0, 0.9, 0.8, 0.7]})
    got = fade_length(df)
    assert got["A"] == 2 and np.isnan(got["B"])
    assert fade_length(df[df.model == "A"].drop(columns="model"), fraction=0.6) == {None: 1}


def test_replacement_fade(tiny_lstm, tiny_rnn):
    df = replacement_fade({"LSTM": tiny_lstm, "RNN": tiny_rnn}, "Mary loves John .", ("he", "mary"))
    assert list(df.columns[:2]) == ["model", "replacement"] and len(df) == 2 * 2 * 4
    same = df[df.replacement == "mary"]
    assert np.allclose(same[["dh", "tv"]].to_numpy(), 0)
    assert (df[df.replacement == "he"]["dh"] > 0).all()
