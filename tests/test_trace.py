"""The trace is exact: it reproduces the stock fused modules' outputs and final states."""
import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from explorer import WordTokenizer, trace
from explorer.trace import QUANTITIES, clip_text

from conftest import FICTION_LSTM, make_model

TEXT = 'Mary loves John . "Certainly, miss," said the bartender, and the girl smiled .'


def _stock(m, text, state=None, boundary=True):
    ids = [m.tokenizer.eos_id] * boundary + m.tokenizer.encode(text)
    x = m.lm.embedding(torch.tensor([ids]))
    with torch.no_grad():
        out, fs = m.lm.rnn(x, state)
    return out[0].numpy(), fs


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("carry", [False, True])
def test_trace_matches_stock_module(cell, layers, carry):
    m = make_model(cell, layers=layers, hidden=12, seed=layers)
    state = None
    if carry:
        g = torch.Generator().manual_seed(7)
        h0 = torch.randn(layers, 1, 12, generator=g) * 0.5
        state = (h0, torch.randn(layers, 1, 12, generator=g)) if cell == "lstm" else h0
    tr = trace(m, TEXT, state=state, boundary=True)
    out, fs = _stock(m, TEXT, state, boundary=True)
    np.testing.assert_allclose(tr.layers[-1].h, out, atol=1e-5)
    if cell == "lstm":
        hn, cn = fs
        np.testing.assert_allclose(np.stack([l.h[-1] for l in tr.layers]), hn[:, 0].numpy(), atol=1e-5)
        np.testing.assert_allclose(np.stack([l.c[-1] for l in tr.layers]), cn[:, 0].numpy(), atol=1e-5)
        torch.testing.assert_close(tr.final_state[1], cn, atol=1e-5, rtol=0)
    else:
        np.testing.assert_allclose(np.stack([l.h[-1] for l in tr.layers]), fs[:, 0].numpy(), atol=1e-5)
    assert set(tr.layers[0].names) == set(QUANTITIES[cell])


def test_lower_layers_match_single_layer_stock():
    """Every layer's h (not only the top) is what a stack of stock modules computes."""
    m = make_model("lstm", layers=3, hidden=10)
    tr = trace(m, TEXT)
    x = m.lm.embedding(torch.tensor([[m.tokenizer.eos_id] + m.tokenizer.encode(TEXT)]))
    for l in range(3):
        one = torch.nn.LSTM(10, 10, 1, batch_first=True)
        one.load_state_dict({f"{n}_l0": getattr(m.lm.rnn, f"{n}_l{l}") for n in
                             ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        with torch.no_grad():
            x, (h, c) = one(x)
        np.testing.assert_allclose(tr.layers[l].h, x[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(tr.layers[l].c[-1], c[0, 0].numpy(), atol=1e-5)


def test_lstm_identities(tiny_lstm):
    tr = trace(tiny_lstm, TEXT)
    for lay in tr.layers:
        np.testing.assert_allclose(lay.h, lay.o * np.tanh(lay.c), atol=1e-5)
        c_prev = np.vstack([np.zeros((1, lay.c.shape[1])), lay.c[:-1]])
        np.testing.assert_allclose(lay.c, lay.f * c_prev + lay.i * lay.g, atol=1e-5)


def test_gru_identity(tiny_gru):
    tr = trace(tiny_gru, TEXT)
    for lay in tr.layers:
        h_prev = np.vstack([np.zeros((1, lay.h.shape[1])), lay.h[:-1]])
        np.testing.assert_allclose(lay.h, (1 - lay.z) * lay.n + lay.z * h_prev, atol=1e-5)


def test_continuing_from_state_equals_one_trace(tiny_lstm):
    a, b = "Mary loves John .", " John loves Mary ."
    whole = trace(tiny_lstm, a + b)
    first = trace(tiny_lstm, a)
    second = trace(tiny_lstm, b, state=first.state())
    np.testing.assert_allclose(np.vstack([first.layers[1].c, second.layers[1].c]), whole.layers[1].c, atol=1e-5)
    # the first token of the continuation gets the probability the whole trace gave it
    assert second.first_prob == pytest.approx(float(whole.next_prob[len(first) - 1]), rel=1e-5)


def test_predictions_agree_with_decoder(tiny_lstm):
    tr = trace(tiny_lstm, TEXT, full_probs=True, top_k=5, entropy=True)
    np.testing.assert_allclose(tr.probs.sum(1), 1.0, atol=1e-5)
    ids = [t.id for t in tr.tokens]
    for t in range(len(tr) - 1):
        assert tr.next_prob[t] == pytest.approx(tr.probs[t, ids[t + 1]], rel=1e-5)
        assert tr.next_rank[t] == 1 + int((tr.probs[t] > tr.probs[t, ids[t + 1]]).sum())
        assert list(tr.topk_ids[t]) == list(np.argsort(-tr.probs[t], kind="stable")[:5]) or \
            np.allclose(np.sort(tr.topk_probs[t])[::-1], np.sort(tr.probs[t])[::-1][:5], atol=1e-7)
    assert np.isnan(tr.next_prob[-1]) and tr.next_rank[-1] == -1
    s = tr.surprisal
    assert np.isnan(s[0]) and s[1] == pytest.approx(-np.log2(tr.next_prob[0]), rel=1e-5)


def test_score_matches_trace(tiny_lstm):
    tr = trace(tiny_lstm, TEXT)
    sc = tiny_lstm.score(TEXT)
    assert sc["logprob"] == pytest.approx(float(np.log(tr.next_prob[:-1]).sum()), rel=1e-4)
    assert sc["n_tokens"] == len(tr) - 1
    batch = tiny_lstm.score_batch([TEXT, "Mary loves John .", "John loves Mary ."])
    assert batch[0]["logprob"] == pytest.approx(sc["logprob"], rel=1e-5)
    assert batch[1]["logprob"] == pytest.approx(tiny_lstm.score("Mary loves John .")["logprob"], rel=1e-5)


def test_trace_is_frozen(tiny_lstm):
    tr = trace(tiny_lstm, TEXT)
    with pytest.raises(Exception):
        tr.text = "x"
    with pytest.raises(ValueError):
        tr.layers[0].h[0, 0] = 1.0
    with pytest.raises(TypeError):
        tr.layers[0].values["h"] = None


def test_to_frame_is_tidy(tiny_lstm):
    tr = trace(tiny_lstm, "the the the")
    df = tr.to_frame()
    T, H = len(tr), tiny_lstm.config.hidden_size
    assert len(df) == T * H * 6 * 2
    assert set(df.columns) == {"position", "token", "layer", "quantity", "unit", "value"}
    row = df[(df.layer == 2) & (df.quantity == "c") & (df.position == 2) & (df.unit == 3)]     # layer 2: tr.layers[1]
    assert row.value.item() == pytest.approx(float(tr.layers[1].c[2, 3]))
    assert len(tr.predictions_frame()) == T


def test_no_global_state_left(tiny_lstm):
    before = {n: p.clone() for n, p in tiny_lstm.lm.named_parameters()}
    trace(tiny_lstm, TEXT)
    assert not tiny_lstm.lm.training
    assert all(torch.equal(before[n], p) for n, p in tiny_lstm.lm.named_parameters())
    assert not tiny_lstm.lm.rnn._forward_hooks and not tiny_lstm.lm._forward_hooks


def test_entropy_and_ranks(tiny_lstm):
    tr = trace(tiny_lstm, TEXT, full_probs=True, entropy=True, top_k=3)
    p = tr.probs.astype(np.float64)
    np.testing.assert_allclose(tr.entropy, -(p * np.log(p)).sum(1), rtol=1e-4)
    ids = [t.id for t in tr.tokens]
    for t in range(len(tr) - 1):   # ranks right both inside and outside the top 3
        assert tr.next_rank[t] == 1 + int((tr.probs[t] > tr.probs[t, ids[t + 1]]).sum())
    assert trace(tiny_lstm, TEXT).entropy is None


# ------------------------------------------------ issue 14: one boundary rule for score, next_words and trace
BOUNDARY_TEXTS = ["\n\nMary loves John .", "Mary loves John .", "\n\n", "", "John .\n\nMary"]


@pytest.mark.parametrize("text", BOUNDARY_TEXTS)
def test_score_agrees_with_trace(tiny_lstm, text):
    tr = trace(tiny_lstm, text)
    sc = tiny_lstm.score(text)
    want = float(np.log(tr.next_prob[:-1].astype(np.float64)).sum()) if len(tr) > 1 else 0.0
    assert sc["logprob"] == pytest.approx(want, rel=1e-4, abs=1e-5)
    assert sc["n_tokens"] == len(tr) - 1 and len(sc["tokens"]) == len(tr) - 1


@pytest.mark.parametrize("text", BOUNDARY_TEXTS)
def test_next_words_agree_with_trace(tiny_lstm, text):
    tr = trace(tiny_lstm, text, top_k=5)
    got = tiny_lstm.next_words(text, 5)
    assert [w for w, _ in got] == [w for w, _ in tr.top_words(len(tr) - 1, 5)]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in tr.top_words(len(tr) - 1, 5)], rtol=1e-5)


@pytest.mark.skipif(not (FICTION_LSTM / "weights.safetensors").exists(), reason="pretrained/fiction-lstm is absent")
def test_holmes_said_scores_as_the_trace_reads_it():
    from explorer import load_model
    m = load_model(FICTION_LSTM)
    tr = trace(m, "\n\nHolmes said")
    want = float(np.log(tr.next_prob[:-1].astype(np.float64)).sum())
    assert m.score("\n\nHolmes said")["logprob"] == pytest.approx(want, rel=1e-4)   # was -16.43 vs -10.70


# ------------------------------------------------------ issue 14: clip and continue at token boundaries
@pytest.mark.parametrize("text,limit", [("it was however good " * 20, 9 * 20 + 10 + 1),
                                        ("I don't know. " * 10, 14 * 3 + 5),
                                        ("at 10:30 on the 21st . " * 10, 23 * 2 + 5),
                                        ("Mary came .\n\nJohn went .\n\n" * 5, 12)])
def test_clip_text_cuts_at_a_token_boundary(text, limit):
    tok = WordTokenizer.build([text])
    part, cut = clip_text(text, limit)
    assert cut and 0 < len(part) <= limit and text.startswith(part)
    whole = [(t.norm, t.start, t.end) for t in tok.tokenize(text)]
    mine = [(t.norm, t.start, t.end) for t in tok.tokenize(part)]
    assert mine == whole[: len(mine)]
    assert len(part) > limit - 12          # the last whole word is kept


def test_clip_text_keeps_short_text():
    assert clip_text("however good", 100) == ("however good", False)
    assert clip_text("x" * 50, 10) == ("x" * 10, True)   # one 50-letter token: nothing better than a hard cut


@pytest.mark.parametrize("a,b", [("it was however g", "ood and fine ."), ("I don", "'t know ."),
                                 ("at 10", ":30 on the day"), ("John went .\n", "\nMary came .")])
def test_continuing_inside_a_token_warns(tiny_lstm, a, b):
    first = trace(tiny_lstm, a)
    with pytest.warns(UserWarning, match="token boundary"):
        trace(tiny_lstm, b, state=first.state())


def test_continuing_at_a_boundary_is_silent_and_exact(tiny_lstm):
    a, b = "it was however good", " and fine . I don't know ."
    whole = trace(tiny_lstm, a + b)
    first = trace(tiny_lstm, a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = trace(tiny_lstm, b, state=first.state())
    lp_whole = np.log(whole.next_prob[:-1].astype(np.float64)).sum()
    lp_pieces = (np.log(first.next_prob[:-1].astype(np.float64)).sum() + math.log(second.first_prob)
                 + np.log(second.next_prob[:-1].astype(np.float64)).sum())
    assert lp_pieces == pytest.approx(lp_whole, rel=1e-5)


# ------------------------------------------- issue 14: to_json keeps significant digits, adds no noise
def test_to_json_keeps_significant_digits_of_small_probabilities(tiny_lstm):
    tr = trace(tiny_lstm, "Mary loves John .", top_k=3)
    nxt = np.array(tr.next_prob)
    nxt[1] = np.float32(4.1e-7)
    tp = np.array(tr.topk_probs)
    tp[0, 2] = np.float32(3.3e-9)
    j = replace(tr, next_prob=nxt, topk_probs=tp).to_json(states=False)
    assert j["next"][1]["actual_prob"] == pytest.approx(4.1e-7, rel=1e-5)
    assert j["next"][0]["top"][2]["prob"] == pytest.approx(3.3e-9, rel=1e-5)


def test_trace_json_has_no_float64_noise(tiny_lstm):
    tr = trace(tiny_lstm, "Mary loves John . She said", top_k=3)
    j = tr.to_json()
    text = json.dumps(j)
    for lay, jl in zip(tr.layers, j["layers"]):
        for q, rows in jl.items():
            got = np.array(rows, np.float64)
            ref = lay.values[q].astype(np.float64)
            np.testing.assert_allclose(got, ref, rtol=6e-7, atol=1e-30)
            for v in got.ravel():
                assert float(f"{v:.7g}") == v, v        # at most 7 significant digits: no float64 noise
    assert "0000000" not in text and "9999999" not in text
