"""The trace is exact: it reproduces the stock fused modules' outputs and final states."""
import numpy as np
import pytest
import torch

from explorer import trace
from explorer.trace import QUANTITIES

from conftest import make_model

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
    row = df[(df.layer == 1) & (df.quantity == "c") & (df.position == 2) & (df.unit == 3)]
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
