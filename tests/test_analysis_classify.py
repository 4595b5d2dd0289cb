"""The many-to-one author classifier: fits, round-trips through safetensors + json, and refuses bad files."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from explorer import BundleError, CorpusError
from explorer.training.classify import (author_of, final_states, load_author_classifier, main, predict,
                               predict_batch, train_author_classifier)

from conftest import make_model, one_line, run_cli

AUSTEN = ["miss", "ma'am", "she", "mary", "girl", "daughters", "affectionate", "father", "youngest", "loves"]
DOYLE = ["holmes", "sir", "he", "afghanistan", "perceive", "hat", "men", "boy", "bartender", "drink"]


def _write(path, words, rng, n=400):
    toks = []
    for _ in range(n // 8):
        toks += list(rng.choice(words, 7)) + ["."]
    path.write_text(" ".join(toks), encoding="utf-8")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("fiction")
    rng = np.random.default_rng(0)
    for name, words in [("austen_a", AUSTEN), ("austen_b", AUSTEN), ("austen_v", AUSTEN), ("austen_t", AUSTEN),
                        ("holmes_a", DOYLE), ("holmes_b", DOYLE), ("holmes_v", DOYLE), ("holmes_t", DOYLE)]:
        _write(d / f"{name}.txt", words, rng)
    (d / "notes.txt").write_text("Mary loves John . " * 40)         # no author prefix: ignored
    (d / "SPLITS.json").write_text(json.dumps({"valid": ["austen_v.txt", "holmes_v.txt"],
                                               "test": ["austen_t.txt", "holmes_t.txt"], "train": "rest"}))
    return d


@pytest.fixture(scope="module")
def fitted(corpus, tmp_path_factory):
    m = make_model("lstm", seed=0)
    out = tmp_path_factory.mktemp("clf")
    clf = train_author_classifier(m, corpus, out, passage_tokens=10, max_per_class=200)
    return m, clf, out


def test_labels_from_file_names():
    assert author_of("austen_emma.txt") == 0 and author_of("holmes_silver_blaze.txt") == 1
    assert author_of("dickens_bleak_house.txt") is None


def test_fits_and_generalises(fitted):
    m, clf, out = fitted
    met = clf.meta["metrics"]
    assert met["train"]["n"] == 2 * 2 * 40 and met["test"]["n"] == 2 * 40     # 400 tokens / 10 per passage
    assert met["train"]["accuracy"] >= 0.85 and met["test"]["accuracy"] >= 0.8   # a random tiny LSTM's states
    assert "notes.txt" not in clf.meta["corpus"]["train_files"]
    assert clf.meta["layer"] == 2 and clf.meta["model"]["hidden_size"] == 16      # the top layer (1 = the bottom)
    assert clf.meta["feature"] == "state" and clf.meta["dim"] == 2 * 2 * 16 == clf.weight.numel()
    assert (out / "classifier.safetensors").is_file() and (out / "classifier.json").is_file()


def test_predict_roundtrip(fitted, corpus):
    m, clf, out = fitted
    loaded = load_author_classifier(out)
    texts, truth = [], []
    for name, label in (("austen_t.txt", "austen"), ("holmes_t.txt", "doyle")):
        words = (corpus / name).read_text().split()
        texts += [" ".join(words[i:i + 10]) for i in range(0, 200, 10)]
        truth += [label] * 20
    got = [predict(m, loaded, t) for t in texts]
    want = predict_batch(m, clf, texts)
    for g, w in zip(got, want):
        assert set(g) == {"austen", "doyle"} and g["austen"] + g["doyle"] == pytest.approx(1.0)
        assert g["doyle"] == pytest.approx(w["doyle"], abs=1e-4)   # batched float32 vs one by one
    right = [g[t] > 0.5 for g, t in zip(got, truth)]
    assert np.mean(right) >= 0.75
    assert predict_batch(m, clf, []) == []


def test_final_states_are_the_trace_final_states(fitted, tiny_rnn):
    from explorer import trace
    m = fitted[0]
    texts = ["Mary loves John .", "John loves Mary .", "He took his hat ."]
    ids = [m.tokenizer.encode(t) for t in texts]
    X = final_states(m, ids, layer=1)
    S = final_states(m, ids, feature="state")
    C = final_states(m, ids, feature="c")
    for j, text in enumerate(texts):
        tr = trace(m, text)
        np.testing.assert_allclose(X[j].numpy(), tr.layers[0].h[-1], atol=1e-5)
        hc = np.concatenate([tr.layers[0].h[-1], tr.layers[1].h[-1], tr.layers[0].c[-1], tr.layers[1].c[-1]])
        np.testing.assert_allclose(S[j].numpy(), hc, atol=1e-5)
        np.testing.assert_allclose(C[j].numpy(), hc[32:], atol=1e-5)
    assert final_states(tiny_rnn, ids, feature="state").shape == (3, 32)
    with pytest.raises(ValueError, match="needs an LSTM"):
        final_states(tiny_rnn, ids, feature="c")


@pytest.mark.parametrize("feature", ["h", "c"])
def test_other_features_roundtrip(corpus, tmp_path, feature):
    m = make_model("lstm", seed=0)
    clf = train_author_classifier(m, corpus, tmp_path, passage_tokens=10, max_per_class=40,
                                  max_test_per_class=20, feature=feature, layer=1)
    assert clf.weight.numel() == {"h": 16, "c": 32}[feature]
    loaded = load_author_classifier(tmp_path)
    assert loaded.feature == feature and loaded.layer == 1
    assert predict(m, loaded, "Mary loves John .")["austen"] == pytest.approx(
        predict(m, clf, "Mary loves John .")["austen"], abs=1e-9)


def _copy(src, dst):
    dst.mkdir()
    for f in ("classifier.safetensors", "classifier.json"):
        (dst / f).write_bytes((src / f).read_bytes())
    return dst


def test_validation(fitted, tmp_path):
    m, clf, out = fitted
    d = _copy(out, tmp_path / "pickle")
    torch.save({"weight": torch.zeros(16)}, d / "classifier.safetensors")
    with pytest.raises(BundleError, match="pickle"):
        load_author_classifier(d)
    d = _copy(out, tmp_path / "shape")
    t = load_file(str(d / "classifier.safetensors"))
    t["weight"] = torch.zeros(17, dtype=torch.float64)
    save_file(t, str(d / "classifier.safetensors"))
    with pytest.raises(BundleError, match="weight has shape"):
        load_author_classifier(d)
    d = _copy(out, tmp_path / "nan")
    t = load_file(str(d / "classifier.safetensors"))
    t["bias"] = torch.tensor([float("nan")], dtype=torch.float64)
    save_file(t, str(d / "classifier.safetensors"))
    with pytest.raises(BundleError, match="finite"):
        load_author_classifier(d)
    d = _copy(out, tmp_path / "json")
    (d / "classifier.json").write_text("{not json")
    with pytest.raises(BundleError, match="JSON"):
        load_author_classifier(d)
    d = _copy(out, tmp_path / "kind")
    (d / "classifier.json").write_text(json.dumps({"kind": "model"}))
    with pytest.raises(BundleError, match="author classifier"):
        load_author_classifier(d)
    d = _copy(out, tmp_path / "missing")
    (d / "classifier.safetensors").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_author_classifier(d)
    with pytest.raises(BundleError, match="not a folder"):
        load_author_classifier(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="hidden_size"):
        predict(make_model("lstm", hidden=12), clf, "Mary loves John")
    with pytest.raises(BundleError, match="cell"):
        predict(make_model("gru"), clf, "Mary loves John")
    d = _copy(out, tmp_path / "feature")
    meta = json.loads((d / "classifier.json").read_text())
    meta["feature"] = "h"                                  # 16 numbers expected, the file holds 64
    (d / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="weight has shape"):
        load_author_classifier(d)
    meta["feature"] = "everything"
    (d / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="feature must be"):
        load_author_classifier(d)


def test_one_author_only_is_refused(tmp_path):
    for n in ("austen_a", "austen_v", "austen_t"):
        _write(tmp_path / f"{n}.txt", AUSTEN, np.random.default_rng(1))
    (tmp_path / "SPLITS.json").write_text(json.dumps({"valid": ["austen_v.txt"], "test": ["austen_t.txt"]}))
    with pytest.raises(CorpusError, match="doyle"):
        train_author_classifier(make_model(), tmp_path, None, passage_tokens=10)


def test_cli(corpus, bundle_dir, tmp_path, capsys):
    assert main(["--model", str(bundle_dir), "--corpus", str(corpus), "--out", str(tmp_path / "c"),
                 "--passage-tokens", "10", "--max-per-class", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["train"]["n"] == 100
    assert load_author_classifier(tmp_path / "c").meta["passage_tokens"] == 10
    assert main(["--model", str(tmp_path / "none"), "--corpus", str(corpus), "--out", str(tmp_path / "d")]) == 2


# ------------------------------------------------------------- issue 14: classify's CLI errors, one line
def test_classify_is_listed_and_its_errors_are_one_line(capsys):
    rc, out, err = run_cli(["--help"], capsys)
    assert rc == 0 and "classify" in out.split("positional arguments:")[1]
    rc, out, err = run_cli(["classify", "--bogus"], capsys)
    assert rc == 2 and one_line(err), err
    rc, out, err = run_cli(["classify", "--model", "x", "--corpus", "y", "--out", "z", "--passage-tokens", "abc"], capsys)
    assert rc == 2 and one_line(err), err
