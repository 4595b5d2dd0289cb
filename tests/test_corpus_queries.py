"""Corpus queries agree with a brute-force computation over trace(): select -> match, the unit dictionary,
predicate AUCs, and the trajectory projection."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TEXT, small_index
from explorer.cli import main
from explorer.corpus import queries as Q
from explorer.corpus.index import IndexProblem, build_index, open_index
from explorer.trace import trace

LAYER, QTY, THR = 2, "h", 0.2          # layer 2: the top layer of the tiny models (1 = the bottom)


@pytest.fixture(autouse=True, scope="module")
def one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory, models_dir):
    m, d, out = small_index(tmp_path_factory, models_dir, "q", 64)
    idx = open_index(out, m)
    # the brute force reference: each file traced whole, values rounded as the index stores them
    ref = {}
    for f in idx.files:
        tr = trace(m, (d / f["path"]).read_text(encoding="utf-8"), max_chars=10**9)
        ref[f["path"]] = (tr.words, {q: tr.layer(LAYER)[q].astype(np.float16).astype(np.float32) for q in ("h", "c")})
    return m, idx, ref


def brute_matches(ref, units, thr, length, quiet, k_min=None):
    """The rule of explorer.corpus.queries, written out with loops."""
    k_min = len(units) if k_min is None else k_min
    found = []
    for path, (words, vals) in ref.items():
        V = vals[QTY][:, units]
        T = len(V)
        t = 0
        while t < T:
            if sum(V[t] > thr) >= k_min:
                a = t
                while t < T and sum(V[t] > thr) >= k_min:
                    t += 1
                b = t
                if quiet and a > 0 and any(V[a - 1] > thr):
                    continue
                score = float(np.mean([np.mean(V[k] - thr) for k in range(a, b)]))
                found.append((abs((b - a) - length), -score, path, a, b, score))
            else:
                t += 1
    return found


@pytest.mark.parametrize("quiet, relaxed", [(False, False), (True, False), (False, True)])
def test_match_agrees_with_brute_force(setup, quiet, relaxed):
    m, idx, ref = setup
    text = 'She said "yes, sir." The girl.'
    S, E = 3, 6
    k_min = 2 if relaxed else None
    r = Q.match(idx, m, text, S, E, LAYER, QTY, THR, top=1000, quiet_before=quiet, min_units=k_min)
    v = trace(m, text).layer(LAYER)[QTY]
    want_units = [u for u in range(v.shape[1]) if all(v[S:E, u] > THR) and (not quiet or v[S - 1, u] <= THR)]
    assert list(r.selection.units) == want_units and want_units, "pick a selection with some units on"
    assert not relaxed or len(want_units) > 2
    brute = brute_matches(ref, want_units, THR, E - S, quiet, k_min)
    assert r.total == len(brute) > (1 if quiet else 3)
    file_order = {f["path"]: i for i, f in enumerate(idx.files)}
    brute.sort(key=lambda x: (x[0], round(x[1], 4), file_order[x[2]], x[3]))
    got = [(x.length_gap, x.file, x.start, x.end) for x in r.matches]
    assert sorted(got) == sorted((g, p, a, b) for g, _, p, a, b, _ in brute)
    # ranking: by length gap, then score (ties within float rounding may swap)
    gaps = [x.length_gap for x in r.matches]
    assert gaps == sorted(gaps)
    for x in r.matches:
        words, vals = ref[x.file]
        assert list(x.tokens[x.focus[0]:x.focus[1]]) == words[x.start:x.end]
        want = float(np.mean(vals[QTY][x.start:x.end][:, want_units] - THR))
        assert x.score == pytest.approx(want, abs=1e-5)
        on = vals[QTY][x.start:x.end][:, want_units] > THR
        assert x.units_on == pytest.approx(on.mean(), abs=1e-6)
        assert on.sum(1).min() >= (k_min or len(want_units))
        c0 = x.start - x.focus[0]
        np.testing.assert_allclose(x.values, vals[QTY][c0:c0 + len(x.tokens)][:, want_units].T, atol=1e-6)
    # the full-scan implementation (benchmark baseline) gives the same answer
    full, total = Q.match_full_scan(idx, LAYER, QTY, want_units, THR, E - S, quiet, top=1000, min_units=k_min)
    assert total == r.total and [(x.file, x.start) for x in full] == [(x.file, x.start) for x in r.matches]


def test_match_with_no_units_and_bad_range(setup):
    m, idx, _ = setup
    r = Q.match(idx, m, "Mary loves John.", 1, 4, LAYER, QTY, 0.999)
    assert r.selection.units == () and r.matches == () and r.total == 0
    with pytest.raises(IndexProblem, match="must lie within the text's 5 tokens"):
        Q.match(idx, m, "Mary loves John.", 3, 9, LAYER, QTY)


def test_unit_profile_agrees_with_brute_force(setup):
    m, idx, ref = setup
    unit = 5
    p = Q.unit_profile(idx, LAYER, QTY, unit, top=3, model=m)
    allv = np.concatenate([vals[QTY][:, unit] for _, vals in ref.values()])
    assert p.top[0].value == pytest.approx(allv.max(), abs=1e-6)
    assert p.bottom[0].value == pytest.approx(allv.min(), abs=1e-6)
    words, vals = ref[p.top[0].file]
    assert p.top[0].tokens[p.top[0].focus] == words[p.top[0].position]
    assert vals[QTY][p.top[0].position, unit] == pytest.approx(p.top[0].value, abs=1e-6)
    assert [c.value for c in p.top] == sorted([c.value for c in p.top], reverse=True)
    assert p.hist_counts.sum() == idx.n_tokens
    assert p.mean == pytest.approx(allv.mean(), abs=1e-5)
    w = m.lm.decoder.weight[:, unit].numpy()
    assert p.promotes[0] == (m.tokenizer.itos[int(w.argmax())], pytest.approx(float(w.max())))
    assert p.suppresses[0][0] == m.tokenizer.itos[int(w.argmin())]
    assert Q.unit_profile(idx, 1, QTY, unit, model=m).promotes == ()    # not the top layer: no decoder view


def test_predicates():
    import pandas as pd
    toks = pd.DataFrame({"file": ["f"] * 12, "text": ["<eos>", "He", "said", '"', "no", ".", '"', "She",
                                                      "went", ".", "<eos>", "Her"]})
    q = Q.pred_inside_quotes(toks)
    assert np.isnan(q[[0, 3, 6, 10]]).all() and q[4] == 1 and q[5] == 1 and q[2] == 0 and q[7] == 0
    g = Q.pred_after_female(toks)
    assert np.isnan(g[0]) and g[1] == 0 and g[6] == 0 and g[7] == 1 and g[9] == 1 and np.isnan(g[10]) and g[11] == 1
    s = Q.pred_sentence_start(toks)
    assert s[1] == 1 and s[3] == 1 and s[4] == 0 and s[6] == 1 and s[7] == 1
    chars = pd.DataFrame({"file": "f", "text": list("x" * 45 + "\n" + "y" * 3)})
    line = Q.pred_late_in_line(chars)
    assert (line[:40] == 0).all() and (line[40:45] == 1).all() and np.isnan(line[45]) and (line[46:] == 0).all()


def test_rank_units_auc_agrees_with_sklearn(setup):
    from sklearn.metrics import roc_auc_score
    m, idx, ref = setup
    df = Q.rank_units(idx, LAYER, QTY, "inside_quotes", top=idx.n_units)
    y = Q.predicate_values(idx, "inside_quotes")
    keep = ~np.isnan(y)
    allv = np.concatenate([vals[QTY] for _, vals in ref.values()])
    for r in df.itertuples():
        want = roc_auc_score(y[keep] > 0.5, allv[keep, r.unit])
        assert r.auc == pytest.approx(want, abs=1e-9)
    assert list(df["separation"]) == sorted(df["separation"], reverse=True)
    with pytest.raises(IndexProblem, match="unknown predicate"):
        Q.rank_units(idx, LAYER, QTY, "nonsense")


def test_projection_and_trajectory(setup):
    from sklearn.decomposition import PCA
    m, idx, ref = setup
    pr = Q.fit_projection(idx, LAYER, "h", cache=False)
    allv = np.concatenate([idx.rows(LAYER, "h", 0, idx.n_tokens)])
    pca = PCA(2).fit(allv)
    np.testing.assert_allclose(pr.explained, pca.explained_variance_ratio_, rtol=1e-3)
    for k in range(2):
        assert abs(abs(float(pr.components[k] @ pca.components_[k])) - 1) < 1e-3
    assert pr.density.sum() > 0.95 * idx.n_tokens
    df = Q.trajectory(pr, m, "Mary loves John.")
    assert df["token"].tolist() == ["<eos>", "Mary", "loves", "John", "."]
    v = trace(m, "Mary loves John.").layer(LAYER)["h"]
    np.testing.assert_allclose(df[["x", "y"]].to_numpy(), (v - pr.mean) @ pr.components.T, atol=1e-5)
    cached = Q.fit_projection(idx, LAYER, "h")        # written to extras/ then read back
    again = Q.fit_projection(idx, LAYER, "h")
    np.testing.assert_array_equal(cached.components, again.components)


def test_cli_units_predicate(setup, capsys):
    m, idx, _ = setup
    rc = main(["units", "--index", str(idx.path), "--layer", "2", "--predicate", "after_female", "--top", "4"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(out["units"]) == 4 and out["n_pos"] > 0 and out["n_neg"] > 0
    rc = main(["units", "--index", str(idx.path), "--layer", "2"])
    assert rc == 2 and "give --unit U" in capsys.readouterr().err


def test_figures_carry_the_numbers(setup):
    from explorer.present import corpus_figures as CF
    m, idx, _ = setup
    r = Q.match(idx, m, 'She said "yes, sir." The girl.', 3, 6, LAYER, QTY, THR, top=3)
    fig = CF.selection_figure(r.selection)
    z = np.array(fig.data[0].z)
    assert z.shape == (len(r.selection.units), len(r.selection.tokens))
    np.testing.assert_allclose(z, r.selection.values.T)
    rect = fig.layout.shapes[0]
    assert (rect.x0, rect.x1) == (2.5, 5.5)
    assert list(fig.layout.xaxis.tickvals) == list(range(len(r.selection.tokens)))   # integer positions
    mf = CF.match_figure(r.matches[0], r.selection.units)
    np.testing.assert_allclose(np.array(mf.data[0].z), r.matches[0].values)
    assert (mf.layout.shapes[0].x0, mf.layout.shapes[0].x1) == (r.matches[0].focus[0] - 0.5, r.matches[0].focus[1] - 0.5)
    html = CF.context_html(list(r.matches[0].tokens), r.matches[0].values.mean(0), r.matches[0].focus, numbers=True)
    assert html.count('class="t f"') == r.matches[0].end - r.matches[0].start
    pr = Q.fit_projection(idx, LAYER, "h", cache=False)
    tf = CF.trajectory_figure(pr, [("a", Q.trajectory(pr, m, "Mary loves John.")),
                                   ("b", Q.trajectory(pr, m, "John loves Mary."))])
    assert [d.type for d in tf.data] == ["heatmap", "scatter", "scatter"]
    assert list(tf.data[1].text) == ["¶", "Mary", "loves", "John", "."]
    p = Q.unit_profile(idx, LAYER, QTY, 2, model=m)
    assert sum(CF.histogram_figure(p).data[0].y) == idx.n_tokens
    df = Q.rank_units(idx, LAYER, QTY, "inside_quotes", top=5)
    assert list(CF.auc_figure(df, "q").data[0].y) == [f"unit {u}" for u in df["unit"]]


def test_single_file_corpus(tmp_path, setup):
    m, _, _ = setup
    f = tmp_path / "one.txt"
    f.write_text("Mary loves John. John loves Mary.", encoding="utf-8")
    card = build_index(m, f, tmp_path / "i", progress=False)
    assert [x["path"] for x in card["files"]] == ["one.txt"] and card["tokens"] == len(trace(m, f.read_text()))


@pytest.mark.parametrize("thr", [0.3, 0.2, 0.0, -0.0, -0.25, 0.30004883, 0.2998, 1.0, -1.0])
def test_count_above_on_the_stored_bits_equals_the_values(setup, thr):
    """match counts the units on by comparing float16 bit patterns (no conversion); the same as v > θ on
    the values, at representable, unrepresentable, zero and negative thresholds."""
    _, idx, _ = setup
    us = list(range(idx.n_units))
    V = idx.units(LAYER, QTY, us)
    assert np.array_equal(idx.count_above(LAYER, QTY, us, thr), (V > thr).sum(1))
    r0 = int(np.argmax((V > thr).sum(1)))
    assert np.array_equal(idx.units_at(LAYER, QTY, [3, 1], [r0, 0, r0]), V[[r0, 0, r0]][:, [3, 1]].T)
