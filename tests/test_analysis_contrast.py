"""Contrast: Mary/John has one bag of words but two different states; every number is the trace's."""
from collections import Counter

import numpy as np
import pytest

from explorer import trace
from explorer.analysis import (bag_of_words, bow_embedding_distance, contrast, next_word_comparison)
from explorer.analysis._common import next_log_probs

from conftest import make_model

GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly ,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly ,'


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_mary_john_same_bag_different_state(cell):
    m = make_model(cell, seed=4)
    c = contrast(m, "Mary loves John .", "John loves Mary .")
    assert c.same_bag and c.bag_difference == {}
    assert c.bag_a == Counter({"mary": 1, "loves": 1, "john": 1, ".": 1})
    assert bow_embedding_distance(m, c) < 1e-9
    assert list(c.same_token) == [True, False, True, False, True]
    assert np.all(c.dh[:, 0] == 0)                                  # both read the same <eos> first
    assert np.all(c.dh[:, 1:] > 0)
    assert c.final_cosine["h_top"] > 0 and c.final_cosine["state"] > 0
    assert (c.dc is None) == (cell != "lstm")
    assert "Same bag of words" in c.bag_line
    df = next_word_comparison(m, c, words=["said"], k=5)
    assert df.attrs["js_divergence"] > 0


def test_norms_and_delta_equal_the_traces(tiny_lstm):
    c = contrast(tiny_lstm, GIRL, BOY)
    a, b = trace(tiny_lstm, GIRL), trace(tiny_lstm, BOY)
    assert c.n == len(a) == len(b)
    for l in range(2):
        np.testing.assert_allclose(c.dh[l], np.linalg.norm(a.layers[l].h.astype(np.float64) - b.layers[l].h, axis=1))
        np.testing.assert_allclose(c.dc[l], np.linalg.norm(a.layers[l].c.astype(np.float64) - b.layers[l].c, axis=1))
    np.testing.assert_allclose(c.delta("c", 1), b.layers[0].c - a.layers[0].c)
    diff = [j for j in range(c.n) if not c.same_token[j]]
    assert [c.tokens_a[j] for j in diff] == ["girl", "she"] and [c.tokens_b[j] for j in diff] == ["boy", "he"]
    assert np.all(c.dh[:, :2] == 0) and np.all(c.dh[:, 2:] > 0)     # identical until "girl" / "boy"
    assert c.bag_difference == {"boy": -1, "girl": 1, "he": -1, "she": 1}
    fr = c.frame()
    assert len(fr) == c.n and {"dh_l1", "dc_l2", "top_a", "top_b"} <= set(fr.columns)


def test_next_word_comparison_matches_trace(tiny_lstm):
    m = tiny_lstm
    c = contrast(m, GIRL, BOY)
    df = next_word_comparison(m, c)
    assert list(df["word"][:4]) == ["miss", "ma'am", "madam", "sir"]
    assert list(df["kind"][:4]) == ["chosen"] * 4
    madam = df[df.word == "madam"].iloc[0]
    assert not madam.in_vocab and np.isnan(madam.p_a)               # not in the tiny vocabulary
    ta, tb = trace(m, GIRL, full_probs=True), trace(m, BOY, full_probs=True)
    for w in ("miss", "ma'am", "sir"):
        i = m.tokenizer.stoi[w]
        r = df[df.word == w].iloc[0]
        assert r.p_a == pytest.approx(ta.probs[-1, i], abs=1e-6)
        assert r.p_b == pytest.approx(tb.probs[-1, i], abs=1e-6)
        assert r.rank_a == 1 + int((ta.probs[-1] > ta.probs[-1, i]).sum())
    top = df[df.kind == "top"]
    assert set(top.word) >= {w for w, _ in ta.top_words(len(ta) - 1, 10)} - {"miss", "ma'am", "sir"}
    assert df.attrs["position"] == c.n - 1 and df.attrs["token_a"] == ","
    # a chosen step in the middle
    df5 = next_word_comparison(m, c, position=5, words=["bar"])
    assert df5.iloc[0].p_a == pytest.approx(np.exp(next_log_probs(m, ta, 5)[m.tokenizer.stoi["bar"]]))


def test_different_lengths_start_and_end_alignment(tiny_lstm):
    m = tiny_lstm
    c = contrast(m, "Mary loves John .", "John said that Mary loves John .")
    assert c.n == 8 and list(c.rows_a) == [0, 1, 2, 3, 4, -1, -1, -1]
    assert np.isnan(c.dh[:, 5:]).all() and not np.isnan(c.dh[:, :5]).any()
    assert c.tokens_a[6] == "" and np.isnan(c.delta()[6]).all()
    e = contrast(m, "Mary loves John .", "John said that Mary loves John .", align="end")
    assert list(e.rows_a) == [-1, -1, -1, 0, 1, 2, 3, 4]
    assert list(e.same_token[-3:]) == [True, True, True]
    assert next_word_comparison(m, e).attrs["position"] == 7
    assert not c.same_bag and c.bag_difference == {"john": -1, "said": -1, "that": -1}
    with pytest.raises(ValueError):
        contrast(m, "a", "b", align="middle")


def test_identical_texts(tiny_gru):
    c = contrast(tiny_gru, "Mary loves John .", "Mary loves John .")
    assert c.same_token.all() and np.all(c.dh == 0) and c.final_cosine["state"] == pytest.approx(0, abs=1e-6)
    assert bag_of_words(c.a) == c.bag_a
