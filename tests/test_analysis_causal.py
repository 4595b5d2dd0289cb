"""Interventions, causal tracing (activation patching) and probes with control tasks, on the tiny
models of conftest.py; the shipped fiction-lstm and the held-out books where present."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import FICTION, ROOT, TEXT, make_model, needs_fiction
from explorer.analysis import intervene as IV
from explorer.analysis import patch as PA
from explorer.analysis import probe as PR
from explorer.engine import layer_params, run_layer, run_rows
from explorer.trace import trace

GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,'
FICTION_LSTM = ROOT / "pretrained" / "fiction-lstm"


# ----------------------------------------------------------------------- the runner's premises
def test_rows_do_not_depend_on_the_batch_or_on_splitting(tiny_lstm):
    """What exactness rests on: with >= 2 rows a row's numbers do not depend on the other rows, and
    a run split into a prefix, single steps and a rest equals the run in one call."""
    lm = tiny_lstm.lm
    ids = torch.tensor([t.id for t in trace(tiny_lstm, GIRL).tokens])
    x = lm.embedding(ids)[None]
    p = layer_params(lm.rnn, 0)
    H = lm.config.hidden_size
    with torch.no_grad():
        two = x.expand(2, -1, -1).contiguous()
        full, _, cn = run_layer("lstm", two, torch.zeros(1, 2, H), torch.zeros(1, 2, H), p)
        many = torch.cat([two, torch.randn(5, x.shape[1], x.shape[2])])
        big, _, _ = run_layer("lstm", many, torch.zeros(1, 7, H), torch.zeros(1, 7, H), p)
        assert torch.equal(big[0], full[0]) and torch.equal(full[0], full[1])
        o1, h1, c1 = run_layer("lstm", two[:, :5], torch.zeros(1, 2, H), torch.zeros(1, 2, H), p)
        o2, h2, c2 = run_layer("lstm", two[:, 5:6], h1, c1, p)
        o3, _, c3 = run_layer("lstm", two[:, 6:], h2, c2, p)
        assert torch.equal(torch.cat([o1, o2, o3], 1), full) and torch.equal(c3, cn)


def test_stepwise_rows_match_the_trace(tiny_lstm, tiny_gru, tiny_rnn):
    for m in (tiny_lstm, tiny_gru, tiny_rnn):
        tr = trace(m, GIRL)
        ids = torch.tensor([t.id for t in tr.tokens])
        h, c = run_rows(m.lm, ids[None])
        for l in range(m.config.layers):
            np.testing.assert_allclose(h[l, 0], tr.layers[l].h, atol=1e-5)
            if c is not None:
                np.testing.assert_allclose(c[l, 0], tr.layers[l].c, atol=1e-5)


# ---------------------------------------------------------------------------- interventions
@pytest.mark.parametrize("quantity", ["h", "c"])
def test_setting_units_to_their_own_values_is_bit_identical(tiny_lstm, quantity):
    probe_iv = IV.Intervention(1, quantity, (3, 7), "scale", 1.0, 4, 9)
    base = IV.intervene(tiny_lstm, GIRL, probe_iv)
    own = getattr(base, quantity)[0, 0, 6, [3, 7]]               # row 0 = the unchanged run, step 6
    r = IV.intervene(tiny_lstm, GIRL, IV.Intervention(1, quantity, (3, 7), "set", tuple(own), 6, 6))
    assert np.array_equal(r.h[:, 1], r.h[:, 0]) and np.array_equal(r.c[:, 1], r.c[:, 0])
    assert np.array_equal(r.next_logp[1], r.next_logp[0], equal_nan=True)
    assert np.array_equal(r.word_logp[1], r.word_logp[0])
    assert np.all(r.delta_next[:-1] == 0) and np.all(r.state_change("c") == 0)
    assert np.array_equal(r.h[:, 0], base.h[:, 0])              # the unchanged run is the same run


def test_own_value_in_an_rnn_and_a_gru(tiny_rnn, tiny_gru):
    for m in (tiny_rnn, tiny_gru):
        base = IV.intervene(m, GIRL, IV.Intervention(2, "h", (2,), "add", 0.0, 3))
        own = float(base.h[1, 0, 8, 2])
        r = IV.intervene(m, GIRL, IV.Intervention(2, "h", (2,), "set", own, 8, 8))
        assert r.c is None and np.array_equal(r.h[:, 1], r.h[:, 0])
        assert np.array_equal(r.next_logp[1], r.next_logp[0], equal_nan=True)


def _cell_loop(m, text, layer, quantity, units, value, start, stop):
    """The reference: nn.LSTMCell step by step with the same clamp, written out by hand."""
    lm = m.lm
    ids = torch.tensor([t.id for t in trace(m, text).tokens])
    H, T = lm.config.hidden_size, len(ids)
    x = lm.embedding(ids)
    out_h, out_c = [], []
    for l in range(lm.config.layers):
        cell = torch.nn.LSTMCell(x.shape[1], H)
        w_ih, w_hh, b_ih, b_hh = layer_params(lm.rnn, l)
        with torch.no_grad():
            cell.weight_ih.copy_(w_ih), cell.weight_hh.copy_(w_hh), cell.bias_ih.copy_(b_ih), cell.bias_hh.copy_(b_hh)
        h, c = torch.zeros(1, H), torch.zeros(1, H)
        hs, cs = [], []
        with torch.no_grad():
            for t in range(T):
                h_prev, c_prev = h, c
                h, c = cell(x[t:t + 1], (h, c))
                if l == layer and start <= t <= stop:
                    a = x[t:t + 1] @ w_ih.t() + b_ih + h_prev @ w_hh.t() + b_hh
                    i, f, g, o = a.sigmoid()[:, :H], a.sigmoid()[:, H:2 * H], a[:, 2 * H:3 * H].tanh(), a[:, 3 * H:].sigmoid()
                    if quantity == "c":
                        c = c.clone()
                        c[0, units] = value
                        h = o * c.tanh()
                    elif quantity == "h":
                        h = h.clone()
                        h[0, units] = value
                    elif quantity == "f":
                        f = f.clone()
                        f[0, units] = value
                        c = f * c_prev + i * g
                        h = o * c.tanh()
                hs.append(h[0])
                cs.append(c[0])
        x = torch.stack(hs)
        out_h.append(x.numpy())
        out_c.append(torch.stack(cs).numpy())
    logp = torch.log_softmax(lm.decoder(x), -1).numpy()
    return np.stack(out_h), np.stack(out_c), logp


@pytest.mark.parametrize("layer,quantity,value", [(1, "c", 0.0), (2, "c", 2.5), (1, "h", -0.7), (1, "f", 0.0)])
def test_clamping_matches_a_hand_written_lstmcell_loop(tiny_lstm, layer, quantity, value):
    units, start, stop = [1, 5, 11], 3, 14
    r = IV.intervene(tiny_lstm, GIRL, IV.Intervention(layer, quantity, tuple(units), "set", value, start, stop))
    h, c, logp = _cell_loop(tiny_lstm, GIRL, layer - 1, quantity, units, value, start, stop)   # a list index
    np.testing.assert_allclose(r.h[:, 1], h, atol=1e-5)
    np.testing.assert_allclose(r.c[:, 1], c, atol=1e-5)
    ids = r.ids
    np.testing.assert_allclose(r.next_logp[1, :-1], logp[np.arange(len(ids) - 1), ids[1:]], atol=1e-5)
    assert r.state_change("c")[layer - 1, start:].max() > 0 and np.all(r.state_change("h")[:, :start] == 0)


def test_intervention_refuses_what_does_not_fit(tiny_lstm, tiny_rnn):
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        IV.intervene(tiny_lstm, GIRL, IV.Intervention(3, "c", (1,)))
    with pytest.raises(ValueError, match="layers are numbered from 1, the bottom layer"):
        IV.Intervention(0, "c", (1,))
    with pytest.raises(ValueError, match="unit 99"):
        IV.intervene(tiny_lstm, GIRL, IV.Intervention(1, "c", (99,)))
    with pytest.raises(ValueError, match="can be changed in h"):
        IV.intervene(tiny_rnn, GIRL, IV.Intervention(1, "c", (1,)))
    with pytest.raises(ValueError, match="outside the text"):
        IV.intervene(tiny_lstm, GIRL, IV.Intervention(1, "c", (1,), start=500))
    with pytest.raises(ValueError, match="op must be"):
        IV.Intervention(1, "c", (1,), "zap")


def test_unit_effects_agree_with_single_interventions(tiny_lstm):
    df = IV.unit_effects(tiny_lstm, GIRL, 2, "c", "miss", "sir", batch=7)
    assert sorted(df["unit"]) == list(range(16)) and df["effect"].abs().is_monotonic_decreasing
    u = int(df["unit"][0])
    r = IV.intervene(tiny_lstm, GIRL, IV.Intervention(2, "c", (u,), "set", 0.0), words=["miss", "sir"])
    d = r.delta_words[-1]
    assert df["effect"][0] == pytest.approx(d[0] - d[1], abs=1e-5)


# -------------------------------------------------------------------------------- patching
@pytest.fixture(scope="module")
def grid(tiny_lstm):
    return PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir")


def test_patching_the_top_h_at_the_last_position_restores_exactly_all(grid):
    assert grid.restored[grid.quantities.index("h"), -1, -1] == 1.0
    assert grid.metric_clean != grid.metric_corrupt


def test_patching_nothing_restores_nothing(tiny_lstm, grid):
    assert np.all(grid.restored[:, :, 0] == 0.0)        # position 0: the boundary, the same in both runs
    assert np.all(grid.restored[:, :, 1] == 0.0)        # "A": still the same
    none = PA.patch_one(tiny_lstm, GIRL, BOY, "miss", "sir", 1, 5, None)
    assert none.restored == 0.0 and np.all(none.state_change("h") == 0)
    assert np.all(grid.restored[grid.quantities.index("c"), :, -1] == 0.0)   # c at the end feeds nothing


def test_the_grid_agrees_with_the_one_at_a_time_loop(tiny_lstm, grid):
    loop = PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir", batched=False)
    assert np.array_equal(loop.metric, grid.metric)
    for q, l, t in [("h", 0, 2), ("c", 0, 9), ("h", 1, 12), ("c", 1, 20)]:
        one = PA.patch_one(tiny_lstm, GIRL, BOY, "miss", "sir", l + 1, t, q)   # layer l + 1: list index l
        assert one.restored == pytest.approx(float(grid.restored[grid.quantities.index(q), l, t]), abs=1e-6)


def test_patching_an_rnn_and_refusals(tiny_rnn, tiny_lstm):
    g = PA.patch_grid(tiny_rnn, GIRL, BOY, "miss", "sir")
    assert g.quantities == ("h",) and g.restored.shape == (1, 2, len(g.clean_tokens))
    # The tanh RNN kernel's one-call and step-by-step paths round differently on some CPUs (this
    # project's AVX-512 machine: 4.5e-6), so position 0 restores 0 within float rounding here; the
    # LSTM grid's exact 0 is checked in test_patching_nothing_restores_nothing.
    assert g.restored[0, -1, -1] == 1.0 and np.allclose(g.restored[0, :, 0], 0, atol=1e-5)
    with pytest.raises(ValueError, match="same count"):
        PA.patch_grid(tiny_lstm, "A girl walked", "A tall boy walked", "miss", "sir")
    with pytest.raises(ValueError, match="same word"):
        PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "miss")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        PA.patch_grid(tiny_lstm, GIRL, BOY, "zebra", "sir")
    js = PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir").to_json()
    assert set(js["restored"]) == {"h", "c"} and js["strongest"][0]["layer"] in (1, 2)


def test_two_sessions_patching_at_once_match_sequential_runs(tiny_lstm):
    """The shared model is never changed: no gradients, no hooks, no mode switch."""
    before = {k: v.clone() for k, v in tiny_lstm.lm.state_dict().items()}
    seq = [PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir").metric,
           IV.intervene(tiny_lstm, GIRL, IV.Intervention(2, "c", (3,), "set", 0.0)).h]
    out = {}

    def work(name):
        for _ in range(3):
            out[name] = (PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir").metric,
                         IV.intervene(tiny_lstm, GIRL, IV.Intervention(2, "c", (3,), "set", 0.0)).h)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        assert np.array_equal(out[name][0], seq[0]) and np.array_equal(out[name][1], seq[1])
    lm = tiny_lstm.lm
    assert not lm.training and all(p.grad is None for p in lm.parameters())
    assert not any(mod._forward_hooks or mod._forward_pre_hooks for mod in lm.modules())
    assert all(torch.equal(v, before[k]) for k, v in lm.state_dict().items())


@pytest.mark.skipif(not (FICTION_LSTM / "weights.safetensors").is_file(), reason="pretrained/fiction-lstm absent")
def test_bartender_grid_on_fiction_lstm():
    from explorer import load_model
    m = load_model(FICTION_LSTM)
    g = PA.patch_grid(m, GIRL, BOY, "miss", "sir")
    assert g.metric_clean > g.metric_corrupt               # "girl" makes miss more likely than "boy" does
    assert g.restored[0, -1, -1] == 1.0 and np.all(g.restored[:, :, :2] == 0)
    assert g.restored[:, :, 2].max() > 0.3                  # the word that differs carries much of it


# ----------------------------------------------------------------------------------- probes
class T:
    def __init__(self, text, norm=None, special=False, id=0):
        self.text, self.norm, self.special, self.id = text, norm or text.lower(), special, id


def test_task_labels_from_the_text():
    toks = [T(w) for w in ["he", "said", "“", "yes", ".", "”", "she", "went", '"', "no", '"', "out"]] + \
           [T("<eos>", special=True), T("a")]
    q, names = PR.task_labels("quote", toks)
    assert names == ["outside", "inside"] and list(q) == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    g, names = PR.task_labels("gender", toks)
    assert names == ["none", "female", "male"] and list(g[:7]) == [2, 2, 2, 2, 2, 2, 1]
    d, names = PR.task_labels("distance", toks)
    assert list(d[:6]) == [1, 1, 2, 2, 0, 1] and names[0] == "0"
    with pytest.raises(ValueError, match="character model"):
        PR.task_labels("line", toks)
    chars = [T(c) for c in "ab\ncdefgh"]
    ln, names = PR.task_labels("line", chars, char=True)
    assert list(ln) == [0, 0, 0, 0, 0, 0, 0, 1, 1] and names[:2] == ["0-4", "5-9"]


def test_control_labels_are_fixed_per_word_type():
    ids = np.array([5, 7, 5, 9, 7, 5, 1])
    y = np.array([0, 1, 1, 0, 0, 0, 1])
    c = PR.control_labels(ids, y, 2, 20, seed=3)
    assert c[0] == c[2] == c[5] and c[1] == c[4]
    assert np.array_equal(c, PR.control_labels(ids, y, 2, 20, seed=3))
    many = PR.control_labels(np.arange(4000), np.array([0] * 3 + [1]), 2, 4000, seed=0)
    assert 0.2 < many.mean() < 0.3                            # drawn from the task's label frequencies


def test_probe_with_a_control_task_on_a_tiny_model(tiny_lstm):
    tok = tiny_lstm.tokenizer
    toks = tok.tokenize((TEXT + "\n\n") * 6)
    rep = PR.probe_tokens(tiny_lstm, "quote", toks[: len(toks) // 2], toks[len(toks) // 2:], seed=1)
    assert {(s.layer, s.quantity) for s in rep.scores} == {(1, "h"), (1, "c"), (2, "h"), (2, "c")}
    for s in rep.scores:
        assert 0 <= s.control_accuracy <= 1 and 0 <= s.accuracy <= 1
        assert s.selectivity == pytest.approx(s.accuracy - s.control_accuracy)
    assert sum(rep.test_counts) == rep.n_test and rep.label_names == ("outside", "inside")
    tr = trace(tiny_lstm, GIRL)
    p = PR.readout(rep, tiny_lstm, tr, 2, "h")
    assert p.shape == (len(tr), 2) and np.allclose(p.sum(1), 1)
    js = rep.to_json()
    assert js["scores"][0]["verdict"] and set(js["test_counts"]) == {"outside", "inside"}


def test_a_probe_no_better_than_its_control_says_nothing():
    s = PR.ProbeScore(1, "h", accuracy=0.91, control_accuracy=0.89, majority=0.6, control_majority=0.6)
    assert "says nothing" in s.verdict
    assert "selective" in PR.ProbeScore(1, "h", 0.95, 0.7, 0.6, 0.6).verdict
    assert "most common label" in PR.ProbeScore(1, "h", 0.605, 0.5, 0.6, 0.6).verdict


@needs_fiction()
@pytest.mark.skipif(not (FICTION_LSTM / "weights.safetensors").is_file(), reason="pretrained/fiction-lstm absent")
def test_quote_probe_on_held_out_books():
    from explorer import load_model
    m = load_model(FICTION_LSTM)
    rep = PR.probe(m, FICTION, "quote", max_train=1500, max_test=800, index=None)
    assert set(rep.test_books).isdisjoint(rep.train_books) and rep.n_test == 800
    best = rep.best()
    assert best.accuracy > best.majority + 0.1 and best.selectivity > 0


# ------------------------------------------------------------------------------- evaluation
def test_item_scores_agree_with_the_minimal_pair_evaluation(tiny_lstm):
    from explorer.analysis import evaluate as EV
    from explorer.training.evals import minimal_pairs
    sents = ["Mary loves John .", "John loves Mary .", "The bartender said miss .", "The bartender said sir .",
             "She took his hat .", "He took his hat .", "zyzzyva loves Mary ."]
    items = [{"source": "pairs", "suite": "s", "condition": f"c{i % 2}", "good": sents[i], "bad": [sents[i + 1]],
              "pair": i // 4} for i in range(0, 6, 2)] + \
            [{"source": "syneval", "suite": "s", "condition": "c0", "good": sents[6], "bad": [sents[0]], "pair": None}]
    df = EV.score_items(tiny_lstm, items)
    assert list(df["in_vocab"]) == [True] * 3 + [False] and not df["correct"].iloc[-1]
    ref = minimal_pairs(tiny_lstm, [{k: d[k] for k in ("suite", "condition", "good", "bad")} for d in items])
    assert ref["accuracy"] == pytest.approx(df[df["in_vocab"]]["correct"].mean(), abs=1e-4)
    assert (df["correct"] == (df["margin"] > 0))[df["in_vocab"]].all()
    t = EV.suite_table({"a": df, "b": df})
    assert list(t.columns) == ["source", "suite", "a", "b", "items"] and t["items"].sum() == 3
    assert EV.first_difference(tiny_lstm, "The bartender said miss .", "The bartender said sir .") == \
        ("The bartender said", "miss", "sir")


def test_patched_trace_is_the_patched_run(tiny_lstm, tiny_gru):
    tr0 = trace(tiny_lstm, BOY)
    none = PA.patched_trace(tiny_lstm, GIRL, BOY, "miss", "sir", 1, 3, None)      # nothing patched: the trace
    for l in range(2):
        for q in ("h", "c", "i", "f", "g", "o"):
            np.testing.assert_allclose(none.layers[l][q], tr0.layers[l][q], atol=1e-5)
    np.testing.assert_allclose(none.next_prob[:-1], tr0.next_prob[:-1], rtol=1e-4)
    assert np.array_equal(none.topk_ids[:, 0], tr0.topk_ids[:, 0])
    run = PA.patch_one(tiny_lstm, GIRL, BOY, "miss", "sir", 1, 9, "c")
    pt = PA.patched_trace(tiny_lstm, GIRL, BOY, "miss", "sir", 1, 9, "c")
    assert np.array_equal(pt.layers[1].h, run.h[1, 1]) and np.array_equal(pt.layers[0].c, run.c[0, 1])
    np.testing.assert_allclose(pt.layers[0].c[9], trace(tiny_lstm, GIRL).layers[0].c[9], atol=1e-5)  # the clean c
    assert not np.allclose(pt.layers[1].h[10:], tr0.layers[1].h[10:], atol=1e-4)
    g = PA.patched_trace(tiny_gru, GIRL, BOY, "miss", "sir", 2, 5, "h")
    assert set(g.layers[0].names) == {"h", "r", "z", "n"}


def test_probe_reads_a_corpus_index_when_there_is_one(models_dir, tmp_path, monkeypatch):
    import json

    from explorer import load_model
    from explorer.corpus.index import build_index
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    m = load_model(models_dir / "tiny-lstm")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text((TEXT + "\n\n") * 5, encoding="utf-8")
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["b.txt"], "test": ["c.txt"], "train": ["a.txt"]}))
    build_index(m, corpus, tmp_path / "index", progress=False)
    monkeypatch.setattr(PR, "states", lambda *a, **k: pytest.fail("traced the books although an index exists"))
    rep = PR.probe(m, corpus, "quote", max_train=300, max_test=200, index=tmp_path / "index")
    assert rep.train_books == ("b.txt",) and rep.test_books == ("c.txt",) and rep.n_train == 300
    assert len(rep.scores) == 4 and all(0 <= s.accuracy <= 1 for s in rep.scores)


def test_suite_table_counts_items_per_model_when_vocabularies_differ(tiny_lstm):
    import pandas as pd

    from explorer.analysis import evaluate as EV
    a = pd.DataFrame({"source": ["p"] * 3, "suite": ["s"] * 3, "in_vocab": [True, True, True], "correct": [1, 0, 1]})
    b = a.assign(in_vocab=[True, False, True], correct=[1, 0, 0])
    t = EV.suite_table({"a": a, "b": b})
    assert list(t.columns) == ["source", "suite", "a", "b", "items (a)", "items (b)"]
    assert t["a"][0] == pytest.approx(2 / 3) and t["b"][0] == 0.5 and t["items (b)"][0] == 2


def test_json_numbers_keep_six_significant_figures(tiny_lstm):
    """A probability of 4.1e-06 is printed as 4.1e-06, never rounded to 0.0."""
    from explorer.analysis.intervene import Intervention, intervene
    from explorer.trace import significant
    res = intervene(tiny_lstm, GIRL, Intervention(1, "c", (1,), "set", 0.0, 2), words=("miss", "sir"))
    js = res.to_json()
    probs = [p for s in js["steps"] for w in s["words"].values() for p in (w["p_before"], w["p_after"])]
    tiny = [p for p in probs if 0 < p < 1e-4]
    want = [significant(np.exp(v), 6) for v in res.word_logp.ravel()]
    assert sorted(probs) == sorted(want)
    assert all(p > 0 for p in probs)
    assert significant(4.1e-06) == 4.1e-06 and significant(0.123456789) == 0.123457
    assert tiny or min(probs) > 1e-4
