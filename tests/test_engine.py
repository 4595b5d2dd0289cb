"""explorer.engine: the one place that runs the network. Its gate arithmetic against torch's own
cells, its named edits against hand-written runs, and its next-token statistics against log_softmax."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import engine as EN
from explorer.trace import trace

TEXT = "A girl walked into a bar, and she said hello to the bartender"


def _ids(m, text=TEXT):
    return torch.tensor([t.id for t in trace(m, text).tokens])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_values_match_torch_cells(cell, tiny_lstm, tiny_gru):
    m = tiny_lstm if cell == "lstm" else tiny_gru
    lm = m.lm
    H = lm.config.hidden_size
    torch.manual_seed(0)
    x, h = torch.randn(5, lm.config.emb_size), torch.randn(5, H)
    p = EN.layer_params(lm.rnn, 0)
    g = EN.gate_values(cell, x, h, p)
    w_ih, w_hh, b_ih, b_hh = p
    a_x, a_h = x @ w_ih.t() + b_ih, h @ w_hh.t() + b_hh
    if cell == "lstm":
        a = a_x + a_h
        want = {"i": a[:, :H].sigmoid(), "f": a[:, H:2 * H].sigmoid(), "g": a[:, 2 * H:3 * H].tanh(),
                "o": a[:, 3 * H:].sigmoid()}
        c0 = torch.randn(5, H)
        ref_cell = torch.nn.LSTMCell(x.shape[1], H)
        with torch.no_grad():
            for dst, src in zip(ref_cell.parameters(), p):
                dst.copy_(src)
            h1, c1 = ref_cell(x, (h, c0))
        c = g["f"] * c0 + g["i"] * g["g"]
        torch.testing.assert_close(c, c1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(g["o"] * torch.tanh(c), h1, atol=1e-5, rtol=1e-5)
    else:
        r = (a_x[:, :H] + a_h[:, :H]).sigmoid()
        want = {"r": r, "z": (a_x[:, H:2 * H] + a_h[:, H:2 * H]).sigmoid(),
                "n": torch.tanh(a_x[:, 2 * H:] + r * a_h[:, 2 * H:])}
    assert set(g) == set(want)
    for q in want:
        torch.testing.assert_close(g[q], want[q], atol=1e-6, rtol=1e-5)


def test_an_edit_that_writes_a_units_own_value_changes_no_bit(tiny_lstm):
    lm = tiny_lstm.lm
    ids = _ids(tiny_lstm)
    h0, c0 = EN.run_rows(lm, ids[None])
    for q in ("h", "c", "f"):
        e = EN.StepEdit(row=1, index=0, quantity=q, units=(1, 2), op="scale", value=1.0, start=3)
        h, c = EN.run_rows(lm, torch.stack([ids, ids]), [e])
        assert np.array_equal(h[:, 1], h0[:, 0]) and np.array_equal(c[:, 1], c0[:, 0]), q


def test_clamp_and_copy_edits(tiny_lstm):
    """clamp bounds the chosen units at the chosen steps; copy writes another run's states; each
    equals the same change written by hand as an edit function."""
    lm = tiny_lstm.lm
    ids = _ids(tiny_lstm)
    other = _ids(tiny_lstm, TEXT.replace("girl", "boy").replace("she", "he"))
    h_other, c_other = EN.run_rows(lm, other[None])
    T = len(ids)
    clamp = EN.StepEdit(row=1, index=1, quantity="h", units=(0, 3), op="clamp", value=(-0.1, 0.1), start=2, stop=5)
    copy = EN.StepEdit(row=1, index=0, quantity="c", op="copy", value=c_other[0, 0], start=4, stop=4, recompute=False)
    h, c = EN.run_rows(lm, torch.stack([ids, ids]), [clamp, copy])
    assert np.all(np.abs(h[1, 1, 2:6][:, [0, 3]]) <= 0.1 + 1e-7)
    np.testing.assert_array_equal(c[0, 1, 4], c_other[0, 0, 4])
    np.testing.assert_array_equal(h[0, 1, :5], h[0, 0, :5])        # h_t of the copied step stays

    def by_hand(index, t, x_t, prev, new, params):
        hn, cn = new
        if index == 1 and 2 <= t <= 5:
            hn = hn.clone()
            hn[0, 1, [0, 3]] = hn[0, 1, [0, 3]].clamp(-0.1, 0.1)
        if index == 0 and t == 4:
            cn = cn.clone()
            cn[0, 1] = torch.from_numpy(c_other[0, 0, 4])
        return hn, cn

    h2, c2 = EN.run_rows(lm, torch.stack([ids, ids]), by_hand)
    np.testing.assert_array_equal(h, h2)
    np.testing.assert_array_equal(c, c2)
    assert T > 6


def test_next_token_stats_match_log_softmax(tiny_lstm):
    torch.manual_seed(1)
    logits = torch.randn(9, 40)
    ids = torch.randint(0, 40, (9,))
    s = EN.next_token_stats(logits, ids, 5)
    logp = torch.log_softmax(logits, -1)
    tp, ti = logp.topk(5, -1)
    torch.testing.assert_close(s.topk_logp, tp)
    assert torch.equal(s.topk_ids, ti)
    torch.testing.assert_close(s.log_norm, torch.logsumexp(logits, -1))
    want_next = logp[:-1].gather(1, ids[1:, None])[:, 0]
    torch.testing.assert_close(s.next_logp, want_next)
    want_rank = (logp[:-1] > want_next[:, None]).sum(1) + 1
    np.testing.assert_array_equal(s.rank, want_rank.numpy())


def test_run_layers_equals_stock_module(tiny_lstm, tiny_gru, tiny_rnn):
    for m in (tiny_lstm, tiny_gru, tiny_rnn):
        ids = _ids(m)
        layers, top, _ = EN.run_layers(m.lm, ids)
        with torch.no_grad():
            out, _ = m.lm.rnn(m.lm.embedding(ids)[None])
        torch.testing.assert_close(top, out[0], atol=1e-5, rtol=1e-5)
        assert set(layers[0]) == set(EN.QUANTITIES[m.config.cell])


def test_a_relu_rnn_is_traced_with_relu():
    """nn.RNN(nonlinearity="relu") is run with relu everywhere (the trace, rows with edits, patching),
    and a tanh model's config and identity are what they were before the field existed."""
    from conftest import make_model
    from explorer.analysis import patch
    from explorer.model import LanguageModel, ModelConfig, weights_hash
    tanh = make_model("rnn", seed=5)
    cfg = ModelConfig.from_dict(dict(tanh.config.to_dict(), nonlinearity="relu"))
    assert "nonlinearity" not in tanh.config.to_dict()
    lm = LanguageModel(cfg).eval()
    lm.load_state_dict(tanh.lm.state_dict())
    assert lm.rnn.nonlinearity == "relu"
    relu = type(tanh)(lm, tanh.tokenizer, dict(tanh.card, config=cfg.to_dict()), None)
    ids = _ids(relu)
    with torch.no_grad():
        want, _ = lm.rnn(lm.embedding(ids)[None])
    tr = trace(relu, TEXT)
    torch.testing.assert_close(torch.from_numpy(np.array(tr.layers[-1].h)), want[0], atol=1e-5, rtol=1e-5)
    assert float(want.min()) >= 0.0
    h, _ = EN.run_rows(lm, ids[None])
    np.testing.assert_allclose(h[-1, 0], want[0].numpy(), atol=1e-5, rtol=1e-5)
    assert not np.allclose(trace(tanh, TEXT).layers[-1].h, tr.layers[-1].h)
    assert weights_hash(tanh.lm) != weights_hash(lm)
    with pytest.raises(ValueError, match="nonlinearity"):
        ModelConfig(cell="rnn", nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="only a plain RNN"):
        ModelConfig(cell="lstm", nonlinearity="relu")
    run = patch.patch_one(relu, "a girl said she", "a boy said he", "miss", "sir", layer=1, position=2)
    assert run.h.min() >= 0.0


def test_torch_threads_sets_and_restores(monkeypatch):
    before = torch.get_num_threads()
    with EN.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with EN.torch_threads(None):
        assert torch.get_num_threads() == before


def test_an_index_build_runs_on_one_thread_by_default(tiny_lstm, tmp_path, monkeypatch):
    from explorer.corpus import index as IX
    seen = []
    real = IX.index_group
    monkeypatch.setattr(IX, "index_group", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text(TEXT + "\n\n" + TEXT, encoding="utf-8")
    torch.set_num_threads(2)
    try:
        IX.build_index(tiny_lstm, tmp_path / "c", tmp_path / "ix", progress=False)
    finally:
        after = torch.get_num_threads()
    assert seen == [1] and after == 2


def test_probe_states_run_on_one_thread_by_default(tiny_lstm, monkeypatch):
    import importlib
    P = importlib.import_module("explorer.analysis.probe")
    seen = []
    real = P.run_layers
    monkeypatch.setattr(P, "run_layers", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    torch.set_num_threads(2)
    P.states(tiny_lstm, list(_ids(tiny_lstm)))
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


def test_the_blocked_log_normaliser_is_the_whole_matrix_one():
    torch.manual_seed(2)
    for T in (1, 63, 64, 65, 200):
        logits = torch.randn(T, 300) * 4
        mx = logits.max(1).values
        want = (logits - mx[:, None]).exp_().sum(1).log_().add_(mx)
        assert torch.equal(EN._log_norm(logits, mx), want)


@pytest.mark.parametrize("mostly_hit", [False, True])
def test_ranks_in_blocks_match_a_full_count(mostly_hit):
    """Both rank paths (most rows outside the top k; a few), over more rows than one block."""
    torch.manual_seed(3)
    T, V = 200, 300
    logits = torch.randn(T, V)
    ids = torch.randint(0, V, (T,))
    if mostly_hit:                                  # the next token is the top-1 except every 7th row
        top = logits.argmax(1)
        ids[1:] = torch.where(torch.arange(1, T) % 7 == 0, ids[1:], top[:-1])
    s = EN.next_token_stats(logits, ids, 3)
    logp = torch.log_softmax(logits, -1)
    want_next = logp[:-1].gather(1, ids[1:, None])[:, 0]
    want = ((logits[:-1] > logits[:-1].gather(1, ids[1:, None])).sum(1) + 1).numpy()
    np.testing.assert_array_equal(s.rank, want)
    torch.testing.assert_close(s.next_logp, want_next)
