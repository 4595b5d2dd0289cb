"""Attribution: exact against references, complete (IG), causal, and safe on a shared model."""
import threading

import numpy as np
import pytest
import torch

from explorer import trace
from explorer.analysis import attribute
from explorer.analysis._common import next_log_probs

from conftest import make_model

BAR = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly ,'


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("baseline", ["zeros", "unk"])
def test_ig_completeness(cell, baseline):
    m = make_model(cell, layers=2, hidden=16, seed=1)
    steps = 512 if (cell, baseline) == ("rnn", "zeros") else 64   # the random tanh RNN is rough from 0
    a = attribute(m, BAR, word="miss", ig_steps=steps, baseline=baseline)
    gap = a.logprob - a.baseline_logprob
    assert abs(gap) > 5e-4                      # a real difference to explain
    assert abs(a.completeness_error) < 1e-4 * max(abs(gap), 1e-3)
    assert a.completeness_relative < 1e-4
    np.testing.assert_allclose(a.scores["integrated_gradients"].sum(), gap, atol=1e-5)
    assert a.scores["integrated_gradients"][0] == 0          # the boundary is in the baseline too
    assert a.ig_steps == steps


def test_ig_auto_steps_reach_the_tolerance():
    m = make_model("rnn", layers=2, hidden=16, seed=1)
    a = attribute(m, BAR, word="miss", baseline="zeros", methods=("integrated_gradients",))
    assert a.ig_steps == 256 and a.completeness_relative <= 0.01      # 64 nodes are not enough here
    b = attribute(m, BAR, word="miss", baseline="zeros", ig_tol=0.9, methods=("integrated_gradients",))
    assert b.ig_steps == 64
    with pytest.raises(ValueError, match="ig_steps"):
        attribute(m, BAR, ig_steps=0)


def test_logprob_and_default_target_match_trace(tiny_lstm):
    tr = trace(tiny_lstm, BAR)
    for step in (5, len(tr) - 1):
        a = attribute(tiny_lstm, BAR, step=step, methods=("grad_x_input",))
        lp = next_log_probs(tiny_lstm, tr, step)
        lp[tiny_lstm.tokenizer.unk_id] = -np.inf
        assert a.target_id == int(np.argmax(lp))
        assert a.logprob == pytest.approx(lp[a.target_id], abs=1e-5)
        assert a.tokens == tuple(tr.words[: step + 1])


def test_ig_matches_captum(tiny_lstm):
    captum = pytest.importorskip("captum.attr")
    m = tiny_lstm
    text = "Mary loves John ."
    a = attribute(m, text, word="said", ig_steps=20, baseline="zeros", methods=("integrated_gradients",))
    ids = torch.tensor([[m.tokenizer.eos_id] + m.tokenizer.encode(text)])
    x = m.lm.embedding(ids).detach()
    base = torch.zeros_like(x)
    base[0, 0] = x[0, 0]                                    # the boundary <eos> stays
    target = m.tokenizer.stoi["said"]

    def f(emb):
        out, _ = m.lm.rnn(emb)
        return torch.log_softmax(m.lm.decoder(out[:, -1]), -1)[:, target]

    ig = captum.IntegratedGradients(f).attribute(x, baselines=base, n_steps=20,
                                                  method="gausslegendre")
    np.testing.assert_allclose(a.scores["integrated_gradients"], ig[0].sum(-1).double().numpy(), atol=1e-5)


def test_grad_x_input_matches_finite_differences(tiny_gru):
    """∂f/∂x · x equals d/dε f((1+ε)x_k) at ε=0 (central differences in float64)."""
    m = tiny_gru
    text = "John loves Mary"
    a = attribute(m, text, word="mary", methods=("grad_x_input",))
    ids = torch.tensor([[m.tokenizer.eos_id] + m.tokenizer.encode(text)])
    lm64 = make_model("gru", seed=0).lm.double()   # the same weights (same seed), a private float64 copy
    x = lm64.embedding(ids).detach()
    t = m.tokenizer.stoi["mary"]

    def f(e):
        out, _ = lm64.rnn(e)
        return float(torch.log_softmax(lm64.decoder(out[0, -1]), -1)[t])

    eps = 1e-6
    for k in range(x.shape[1]):
        up, dn = x.clone(), x.clone()
        up[0, k] *= 1 + eps
        dn[0, k] *= 1 - eps
        assert a.scores["grad_x_input"][k] == pytest.approx((f(up) - f(dn)) / (2 * eps), abs=1e-4)


def test_occlusion_equals_retracing_with_unknown_word(tiny_lstm):
    m = tiny_lstm
    text = "Mary loves John . She said"
    a = attribute(m, text, word="miss", methods=("occlusion",))
    tr = trace(m, text)
    assert np.isnan(a.scores["occlusion"][0])         # the boundary is not occluded
    words = text.split()
    for k in range(1, len(tr)):
        occluded = " ".join(w if j != k - 1 else "zzzunknown" for j, w in enumerate(words))
        t2 = trace(m, occluded)
        assert t2.tokens[k].unk
        lp = next_log_probs(m, t2, len(t2) - 1)[a.target_id]
        assert a.scores["occlusion"][k] == pytest.approx(a.logprob - lp, abs=1e-5)


def test_causal_later_tokens_do_not_matter(tiny_lstm):
    a = attribute(tiny_lstm, BAR, step=9, word="she", ig_steps=16)
    b = attribute(tiny_lstm, "A girl walked into a bar, and she ignored everything after", step=9, word="she",
                  ig_steps=16)
    assert a.tokens == b.tokens
    for k in a.scores:
        np.testing.assert_array_equal(a.scores[k], b.scores[k])


def test_errors(tiny_lstm):
    with pytest.raises(ValueError, match="vocabulary"):
        attribute(tiny_lstm, "Mary loves", word="zebra")
    with pytest.raises(IndexError):
        attribute(tiny_lstm, "Mary loves", step=10)
    with pytest.raises(ValueError, match="unknown methods"):
        attribute(tiny_lstm, "Mary loves", methods=("saliency",))


def test_frame_and_top(tiny_lstm):
    a = attribute(tiny_lstm, BAR, word="miss")
    df = a.frame()
    assert list(df.columns[:3]) == ["position", "token", "special"] and len(df) == len(a.tokens)
    top = a.top("integrated_gradients", 3)
    assert len(top) == 3 and top[0][2] >= top[1][2] >= top[2][2]


def test_two_threads_give_the_sequential_results():
    m = make_model("lstm", layers=2, hidden=16, seed=3)
    jobs = [(BAR, "miss"), ("Holmes looked at me and said , \" You have been in Afghanistan", "perceive")]
    expected = [attribute(m, t, word=w, ig_steps=16) for t, w in jobs]
    results: dict = {}
    errors = []
    barrier = threading.Barrier(len(jobs))

    def work(j):
        try:
            barrier.wait()
            results[j] = [attribute(m, jobs[j][0], word=jobs[j][1], ig_steps=16) for _ in range(3)]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(j,)) for j in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for j, exp in enumerate(expected):
        for got in results[j]:
            assert got.logprob == exp.logprob
            for k in exp.scores:
                np.testing.assert_array_equal(got.scores[k], exp.scores[k])
    # the shared model is left as it was: no gradients, no grad flags, eval mode
    assert all(p.grad is None and not p.requires_grad for p in m.lm.parameters())
    assert not m.lm.training


def test_versus_is_the_difference_of_two_attributions(tiny_rnn):
    """Every method is linear in f, so attributing log P(miss) − log P(sir) equals the difference."""
    kw = dict(ig_steps=64, baseline="unk")
    d = attribute(tiny_rnn, BAR, word="miss", versus="sir", **kw)
    a, b = attribute(tiny_rnn, BAR, word="miss", **kw), attribute(tiny_rnn, BAR, word="sir", **kw)
    assert d.versus == "sir" and d.quantity == "log P('miss') − log P('sir')"
    assert d.logprob == pytest.approx(a.logprob - b.logprob, abs=1e-5)
    assert d.baseline_logprob == pytest.approx(a.baseline_logprob - b.baseline_logprob, abs=1e-5)
    for k in d.scores:
        np.testing.assert_allclose(d.scores[k], a.scores[k] - b.scores[k], atol=1e-5)
    assert d.completeness_relative < 0.01
    with pytest.raises(ValueError, match="vocabulary"):
        attribute(tiny_rnn, BAR, word="miss", versus="zebra")
