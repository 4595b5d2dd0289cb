"""One layer numbering (issue 20): layer 1 is the bottom layer in every command, every output field
named `layer` and every Python keyword `layer`; 0 is refused; every --help that takes a layer says so.

Each command and public function that takes a layer is called with layer 1 on a 2-layer model and
must reach the numbers of `trace(model, text).layers[0]` (the bottom layer), not those of the top one."""
from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import explorer as E
from conftest import TEXT, make_model, run_cli
from explorer.errors import InputError
from explorer.trace import trace

SENT = 'The bartender said "Certainly, miss." Mary loves John .'
GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,'
ZERO = "layers are numbered from 1, the bottom layer"


@pytest.fixture(scope="module")
def model(models_dir):
    return E.load_model(models_dir / "tiny-lstm")


@pytest.fixture(scope="module")
def tr(model):
    t = trace(model, SENT)
    assert len(t.layers) == 2 and not np.allclose(t.layers[0].h, t.layers[1].h)   # the layers differ
    return t


def bottom(tr, q="h"):
    return np.asarray(tr.layers[0][q])


# ------------------------------------------------------------------------------------ the helper
def test_layer_index_is_the_one_rule():
    from explorer.engine import layer_index
    assert [layer_index(n, 2) for n in (1, 2, -1, -2, None)] == [0, 1, 1, 0, 1]
    assert layer_index(np.int64(1), 3) == 0
    with pytest.raises(InputError, match=ZERO):
        layer_index(0, 2)
    for bad in (3, -3):
        with pytest.raises(InputError, match="1 = the bottom layer"):
            layer_index(bad, 2)
    with pytest.raises(InputError):
        layer_index(1.5, 2)


def test_trace_layer_and_frame(tr):
    assert tr.layer(1) is tr.layers[0] and tr.layer(-1) is tr.layers[1]
    df = tr.to_frame()
    assert sorted(set(df["layer"])) == [1, 2]
    rows = df[(df["layer"] == 1) & (df["quantity"] == "h")].sort_values(["position", "unit"])
    np.testing.assert_array_equal(rows["value"].to_numpy().reshape(len(tr), -1), bottom(tr))


# ------------------------------------------------------------------------------------ commands
def test_export_states_csv_and_parquet(models_dir, tr, tmp_path, capsys):
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"states.{fmt}"
        rc, _, err = run_cli(["export", "--model", models_dir / "tiny-lstm", "--text", SENT, "--what", "states",
                              "--format", fmt, "--out", out], capsys)
        assert rc == 0, err
        df = pd.read_csv(out) if fmt == "csv" else pq.read_table(out).to_pandas()
        rows = df[(df["layer"] == 1) & (df["quantity"] == "h")].sort_values(["position", "unit"])
        np.testing.assert_allclose(rows["value"].to_numpy().reshape(len(tr), -1), bottom(tr), atol=1e-6)


def test_export_figure_layer_1(models_dir, tr, tmp_path, capsys, monkeypatch):
    from explorer.present import export as X
    drawn = []
    monkeypatch.setattr(X, "figure_bytes", lambda fig, fmt: drawn.append(fig) or b"x")
    rc, _, err = run_cli(["export", "--model", models_dir / "tiny-lstm", "--text", SENT, "--what", "figure:heatmaps",
                          "--format", "html", "--out", tmp_path / "f.html", "--layer", 1], capsys)
    assert rc == 0, err
    fig = drawn[0]
    assert fig.layout.meta["layer"] == 1
    h = X.figure_frame(fig).query("trace == 'h'").sort_values(["x", "y"])       # x: position, y: unit
    np.testing.assert_allclose(h["value"].to_numpy(np.float32).reshape(len(tr), -1), bottom(tr), atol=1e-6)
    rc, _, err = run_cli(["export", "--model", models_dir / "tiny-lstm", "--text", SENT, "--what", "figure:heatmaps",
                          "--format", "html", "--out", tmp_path / "f.html", "--layer", 0], capsys)
    assert rc == 2 and ZERO in err


def test_intervene_layer_1(models_dir, model, tr, capsys):
    from explorer.analysis.intervene import Intervention, intervene
    r = intervene(model, SENT, Intervention(layer=1, quantity="h", units=(0, 1), op="add", value=1.0, start=2))
    np.testing.assert_allclose(r.h[0, 0], bottom(tr), atol=1e-5)                   # the unchanged run
    np.testing.assert_allclose(r.h[0, 1, 2, :2], bottom(tr)[2, :2] + 1.0, atol=1e-5)   # changed in layer 1
    assert np.array_equal(r.h[0, 1, :2], r.h[0, 0, :2])
    assert r.interventions[0].describe().startswith("layer 1 h[0, 1]")
    top = intervene(model, SENT, Intervention(layer=2, quantity="h", units=(0,), op="add", value=1.0, start=2))
    assert np.array_equal(top.h[0, 1], top.h[0, 0])                            # layer 2 leaves layer 1 alone
    rc, out, err = run_cli(["intervene", "--model", models_dir / "tiny-lstm", "--text", SENT, "--layer", 1,
                            "--quantity", "h", "--units", "0,1", "--add", 1, "--from", 2], capsys)
    assert rc == 0, err
    js = json.loads(out)
    assert js["layer"] == 1 and js["interventions"][0].startswith("layer 1 ")
    assert js["steps"][2]["dh"][0] == pytest.approx(np.sqrt(2), rel=1e-4)        # ‖Δh‖ of layer 1
    with pytest.raises(InputError, match=ZERO):
        Intervention(layer=0, quantity="h", units=(0,))
    rc, _, err = run_cli(["intervene", "--model", models_dir / "tiny-lstm", "--text", SENT, "--layer", 0,
                          "--quantity", "h", "--units", "0", "--add", 1], capsys)
    assert rc == 2 and ZERO in err


def test_patch_layer_1(models_dir, model, capsys):
    from explorer.analysis.patch import patch_grid, patch_one, patched_trace
    clean = trace(model, GIRL)
    run = patch_one(model, GIRL, BOY, "she", "he", layer=1, position=2, quantity="h")
    assert run.layer == 1
    np.testing.assert_allclose(run.h[0, 1, 2], bottom(clean)[2], atol=1e-5)       # the clean bottom h, copied
    pt = patched_trace(model, GIRL, BOY, "she", "he", layer=1, position=2, quantity="h")
    np.testing.assert_allclose(pt.layers[0].h[2], bottom(clean)[2], atol=1e-5)
    g = patch_grid(model, GIRL, BOY, "she", "he", ["h"])
    df = g.frame()
    assert sorted(set(df["layer"])) == [1, 2]
    row = df[(df["layer"] == 1) & (df["position"] == 2)].iloc[0]
    assert row["restored"] == g.restored[0, 0, 2] and row["restored"] == pytest.approx(run.restored, abs=1e-4)
    for r in g.strongest(5).itertuples():
        assert r.restored == g.restored[0, r.layer - 1, r.position]
    rc, out, err = run_cli(["patch", "--model", models_dir / "tiny-lstm", "--clean", GIRL, "--corrupt", BOY,
                            "--target", "she", "--versus", "he", "--quantities", "h"], capsys)
    assert rc == 0, err
    js = json.loads(out)
    for r in js["strongest"]:
        assert r["restored"] == pytest.approx(float(g.restored[0, r["layer"] - 1, r["position"]]), rel=1e-4)
    with pytest.raises(InputError, match=ZERO):
        patch_one(model, GIRL, BOY, "she", "he", layer=0, position=2)


def test_memory_layer_1(model, tr):
    from explorer.analysis.memory import cell_provenance, half_lives, memory_matrix, occlusion_fade
    p = cell_provenance(tr, step=4, layer=1)
    assert p.layer == 1
    np.testing.assert_allclose(p.c, bottom(tr, "c")[4])
    np.testing.assert_allclose(p.total, bottom(tr, "c")[4], atol=1e-5)
    mm = memory_matrix(tr, layer=1, unit=3)
    assert mm.layer == 1
    np.testing.assert_allclose(np.diag(mm.values), bottom(tr, "i")[:, 3].astype(np.float64) * bottom(tr, "g")[:, 3])
    hl = half_lives(tr, layer=1).set_index("unit").sort_index()
    np.testing.assert_allclose(hl["mean_forget"], bottom(tr, "f").astype(np.float64).mean(0))
    a, b = trace(model, "she said hello to Mary ."), trace(model, "he said hello to Mary .")
    fade = occlusion_fade(model, "she said hello to Mary .", position=1, replacement="he", layer=1)
    want = np.linalg.norm(bottom(a).astype(np.float64) - bottom(b), axis=1)[1:]
    np.testing.assert_allclose(fade["dh"].to_numpy(), want, atol=1e-5)
    with pytest.raises(InputError, match=ZERO):
        cell_provenance(tr, layer=0)


def test_show_and_figures_layer_1(model, tr):
    from explorer.present import analysis_figures, figures, player, views
    from explorer.present.widget import show
    pytest.importorskip("anywidget")
    w = show(tr, model=model, layer=1)
    assert w.data["layer"] == 1
    got = np.frombuffer(__import__("base64").b64decode(w.data["states"]["h"]), "<f4").reshape(len(tr), -1)
    np.testing.assert_array_equal(got, bottom(tr))
    d = player.player_data(tr, 1, pos=3)
    assert d["layer"] == 1 and d["states"] == w.data["states"]
    fig = figures.heatmap_figure(tr, 1, "h")
    assert fig.layout.meta["layer"] == 1 and "layer 1" in fig.layout.title.text
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), bottom(tr).T)
    st = views.step_change(tr, 1, 3)
    np.testing.assert_array_equal(st["h"], bottom(tr)[3])
    assert figures.step_figure(tr, 1, 3).layout.meta["layer"] == 1
    assert figures.gates_figure(tr, 1, 3).layout.meta["layer"] == 1
    np.testing.assert_array_equal(views.gate_values(tr, 1, 3).query("gate == 'f'")["value"], bottom(tr, "f")[3])
    u = figures.units_frame(tr, 1, "h", [2])
    np.testing.assert_array_equal(u["value"], bottom(tr)[:, 2])
    un = analysis_figures.unrolled_data(tr, layer=1)
    assert un["layer"] == 1
    with pytest.raises(InputError, match=ZERO):
        figures.heatmap_figure(tr, 0, "h")


def test_compare_layer_1(models_dir, model, tmp_path, capsys):
    from explorer.analysis.compare import compare
    other = make_model("lstm", seed=1)
    E.save_bundle(tmp_path / "b", other.lm, other.tokenizer, {"name": "b", "metrics": {}})
    ta, tb = trace(model, SENT), trace(other, SENT)
    want = np.abs(bottom(tb).astype(np.float64) - bottom(ta)).mean(0)
    c = compare(model, other, SENT, layer=1)
    assert c.layer == 1 and set(c.changed_units(None)["layer"]) == {1}
    js = c.to_json()
    assert js["layer"] == 1 and js["units"]["layers"] == [1]
    np.testing.assert_allclose(js["units"]["mean_abs_dh"][0], want, rtol=1e-5)
    rc, out, err = run_cli(["compare", "--model", models_dir / "tiny-lstm", "--model", tmp_path / "b",
                            "--text", SENT, "--layer", 1], capsys)
    assert rc == 0, err
    js = json.loads(out)
    assert js["layer"] == 1 and js["units"]["layers"] == [1]
    np.testing.assert_allclose(js["units"]["mean_abs_dh"][0], want, rtol=1e-5)


def test_contrast_layer_1(model):
    from explorer.analysis.contrast import contrast
    c = contrast(model, GIRL, BOY)
    ta, tb = trace(model, GIRL), trace(model, BOY)
    np.testing.assert_allclose(c.delta("h", layer=1), bottom(tb) - bottom(ta), atol=1e-6)
    df = c.frame()
    np.testing.assert_allclose(df["dh_l1"], np.linalg.norm(bottom(ta) - bottom(tb), axis=1), rtol=1e-5)


# ------------------------------------------------------------------------------------ the corpus
@pytest.fixture(scope="module")
def index(model, tmp_path_factory):
    d = tmp_path_factory.mktemp("layer-corpus")
    (d / "a.txt").write_text(TEXT, encoding="utf-8")
    return d, tmp_path_factory.mktemp("layer-index") / "i"


def test_index_match_units_layer_1(models_dir, model, index, capsys):
    from explorer.corpus import queries as Q
    from explorer.corpus.index import open_index
    corpus, out = index
    rc, o, err = run_cli(["index", "--model", models_dir / "tiny-lstm", "--corpus", corpus, "--out", out,
                          "--layers", "1", "--no-progress"], capsys)
    assert rc == 0, err
    assert json.loads(o)["layers"] == [1]
    idx = open_index(out, model)
    assert idx.layers == [1] and json.loads((out / "card.json").read_text())["layers"] == [1]
    ref = trace(model, TEXT, max_chars=10**9)
    np.testing.assert_allclose(idx.units(1, "h", [0, 5]), bottom(ref)[:, [0, 5]], atol=1e-3)   # float16
    sel = Q.select(model, SENT, 2, 4, 1, "h", 0.0)
    assert sel.layer == 1 and sel.units
    assert sel.units == tuple(np.flatnonzero((bottom(trace(model, SENT))[2:4] > 0.0).all(0)))
    r = Q.match(idx, model, SENT, 2, 4, layer=1, threshold=0.0)
    assert r.to_json()["selection"]["layer"] == 1 and r.selection.units == sel.units
    prof = Q.unit_profile(idx, 1, "h", 5)
    assert prof.layer == 1 and prof.mean == pytest.approx(float(bottom(ref)[:, 5].mean()), abs=1e-3)
    rc, o, err = run_cli(["match", "--index", out, "--model", models_dir / "tiny-lstm", "--text", SENT,
                          "--start", 2, "--end", 4, "--layer", 1, "--threshold", 0.0], capsys)
    assert rc == 0, err
    js = json.loads(o)
    assert js["selection"]["layer"] == 1 and tuple(js["selection"]["units"]) == sel.units
    rc, o, err = run_cli(["units", "--index", out, "--model", models_dir / "tiny-lstm", "--layer", 1,
                          "--unit", 5], capsys)
    assert rc == 0, err
    js = json.loads(o)
    assert js["layer"] == 1 and js["mean"] == pytest.approx(float(bottom(ref)[:, 5].mean()), abs=1e-3)
    rc, _, err = run_cli(["units", "--index", out, "--model", models_dir / "tiny-lstm", "--layer", 0,
                          "--unit", 5], capsys)
    assert rc == 2 and ZERO in err
    with pytest.raises(InputError, match=ZERO):
        Q.match(idx, model, SENT, 2, 4, layer=0)


def test_an_index_of_the_old_numbering_is_refused_with_how_to_rebuild(model, tmp_path):
    """An index built before layers were numbered from 1 (format version 1: "layers": [0, 1], arrays L0,
    L1) is an older format (issue 21: float32 c, every array twice): refused, saying how to rebuild."""
    from explorer.corpus.index import IndexProblem, build_index, open_index
    d = tmp_path / "c"
    d.mkdir()
    (d / "a.txt").write_text(SENT, encoding="utf-8")
    out = tmp_path / "i"
    build_index(model, d, out, progress=False)
    assert open_index(out).layers == [1, 2]
    card = json.loads((out / "card.json").read_text())
    card.update(version=1, layers=[0, 1])
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(IndexProblem, match="format version 1.*Delete the folder and build it again"):
        open_index(out, model)


# ------------------------------------------------------------------------------------ probes, classifier
def test_probe_layer_1(model, tr, tmp_path, capsys, models_dir):
    from explorer.analysis import probe as PR
    ids = [t.id for t in tr.tokens]
    S = PR.states(model, ids)
    assert sorted(S) == [(1, "c"), (1, "h"), (2, "c"), (2, "h")]
    np.testing.assert_allclose(S[(1, "h")], bottom(tr), atol=1e-5)
    toks = model.tokenizer.tokenize((TEXT + "\n\n") * 4)
    rep = PR.probe_tokens(model, "quote", toks[: len(toks) // 2], toks[len(toks) // 2:], seed=1)
    assert {s.layer for s in rep.scores} == {1, 2} and set(rep.frame()["layer"]) == {1, 2}
    clf = rep.probes[(1, "h")]
    np.testing.assert_allclose(PR.readout(rep, model, tr, 1, "h")[:, clf.classes_], clf.predict_proba(bottom(tr)))
    corpus = tmp_path / "books"
    corpus.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (corpus / name).write_text((TEXT + "\n\n") * 3, encoding="utf-8")
    rc, out, err = run_cli(["probe", "--model", models_dir / "tiny-lstm", "--corpus", corpus, "--task", "quote",
                            "--max-train", 200, "--max-test", 100], capsys)
    assert rc == 0, err
    js = json.loads(out)
    assert {s["layer"] for s in js["scores"]} == {1, 2}


def test_classify_layer_1(models_dir, model, tmp_path, capsys):
    from explorer.training.classify import final_states, load_author_classifier, text_features
    ids = model.tokenizer.encode("Mary loves John .")                # read after <eos>, as trace reads it
    want = bottom(trace(model, "Mary loves John ."))[-1]
    np.testing.assert_allclose(final_states(model, [ids], layer=1, feature="h")[0].numpy(), want, atol=1e-5)
    np.testing.assert_allclose(text_features(model, ["Mary loves John ."], layer=1)[0].numpy(), want, atol=1e-5)
    corpus = tmp_path / "fiction"
    corpus.mkdir()
    for name in ("austen_a", "austen_v", "austen_t", "holmes_a", "holmes_v", "holmes_t"):
        (corpus / f"{name}.txt").write_text(("Mary loves John . " if name[0] == "a" else "He took his hat . ") * 20)
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["austen_v.txt", "holmes_v.txt"],
                                                    "test": ["austen_t.txt", "holmes_t.txt"], "train": "rest"}))
    rc, _, err = run_cli(["classify", "--model", models_dir / "tiny-lstm", "--corpus", corpus, "--out",
                          tmp_path / "clf", "--feature", "h", "--layer", 1, "--passage-tokens", 4], capsys)
    assert rc == 0, err
    clf = load_author_classifier(tmp_path / "clf")
    assert clf.layer == 1 and clf.meta["layer"] == 1
    meta = json.loads((tmp_path / "clf" / "classifier.json").read_text())       # a file of the old numbering
    meta.update(version=1, layer=0)
    (tmp_path / "clf" / "classifier.json").write_text(json.dumps(meta))
    assert load_author_classifier(tmp_path / "clf").layer == 1
    rc, _, err = run_cli(["classify", "--model", models_dir / "tiny-lstm", "--corpus", corpus, "--out",
                          tmp_path / "clf0", "--feature", "h", "--layer", 0], capsys)
    assert rc == 2 and ZERO in err


def test_char_cells_layer_1(char_models):
    from explorer.analysis.char_cells import find_line_cells
    m = E.load_model(char_models / "tiny-char")
    text = "abc def\nghi jk\n" * 3
    s = find_line_cells(m, text)
    assert set(s.table["layer"]) == {1, 2}
    t = trace(m, text, max_chars=10**9)
    np.testing.assert_allclose(s.unit(1, "h", 0), bottom(t)[1:, 0], atol=1e-5)


# ------------------------------------------------------------------------------------ help
def _parsers():
    from explorer.cli import build_parser
    from explorer.training.classify import build_parser as classify_parser
    top = build_parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    yield from subs.choices.items()
    yield "classify", classify_parser()


def test_every_layer_flag_says_1_is_the_bottom_layer():
    seen = []
    for name, p in _parsers():
        for a in p._actions:
            if any("layer" in s for s in a.option_strings) and (name, a.dest) != ("train", "layers"):
                # (train --layers is how many layers a new model has, not a layer)
                seen.append(f"{name} {a.option_strings[0]}")
                assert "1 = the bottom layer" in (a.help or ""), f"{name} {a.option_strings[0]}: {a.help!r}"
                assert "1 = the bottom layer" in " ".join(p.format_help().split()), name
    assert {"index --layers", "match --layer", "units --layer", "intervene --layer", "export --layer",
            "compare --layer", "classify --layer"} <= set(seen)
