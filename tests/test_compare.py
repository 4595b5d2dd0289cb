"""explorer.analysis.compare (two checkpoints on one text), its figures, `python -m explorer compare`
and the Compare page (AppTest). The browser test is in tests/test_browser_compare.py.

The function is checked against an independent computation: the stock nn.LSTM/nn.RNN module of each
tiny model run on the token ids, the decoder, and torch.log_softmax."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import explorer as E
from explorer import CharTokenizer, LanguageModel, ModelConfig, save_bundle
from explorer.analysis import Comparison, compare, heldout_text
from explorer.training.data import split_books
from explorer.api import LoadedModel
from explorer.errors import InputError, PositionError
from explorer.present import compare_figures as CF
from explorer.present.scales import DELTA_SURPRISAL_BITS

from conftest import TEXT, make_model

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 90            # the first run imports torch and loads the models; AppTest's 3 s is too short
SENTENCE = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly, miss."'


@pytest.fixture(scope="module")
def pair():
    return make_model("lstm", seed=0), make_model("lstm", seed=1)


def char_model() -> LoadedModel:
    torch.manual_seed(0)
    tok = CharTokenizer.build([TEXT])
    cfg = ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=8, hidden_size=8, layers=1, dropout=0.0)
    lm = LanguageModel(cfg).eval()
    return LoadedModel(lm, tok, {"name": "tiny-char", "config": cfg.to_dict(), "metrics": {}}, None)


@torch.no_grad()
def reference(model, text):
    """[T] surprisal in bits (NaN for the boundary row) and {layer: [T, H] h} from the stock module."""
    ids = [model.tokenizer.eos_id] + model.tokenizer.encode(text)
    x = model.lm.embedding(torch.tensor([ids]))
    out, _ = model.lm.rnn(x)                                  # top layer only
    logp = torch.log_softmax(model.lm.decoder(out[0]).double(), -1)
    bits = [float("nan")] + [-logp[t - 1, ids[t]].item() / np.log(2) for t in range(1, len(ids))]
    return np.array(bits), out[0].numpy()


# --------------------------------------------------------------------------------------- the function
def test_surprisal_and_delta_match_an_independent_computation(pair):
    a, b = pair
    c = compare(a, b, SENTENCE)
    assert isinstance(c, Comparison)
    ra, ha = reference(a, SENTENCE)
    rb, hb = reference(b, SENTENCE)
    assert c.n == len(ra) and c.tokens[0] == "<eos>"
    np.testing.assert_allclose(c.surprisal_a[1:], ra[1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c.surprisal_b[1:], rb[1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c.delta[1:], rb[1:] - ra[1:], atol=2e-4)
    assert np.isnan(c.delta[0]) and list(c.scored) == list(range(1, c.n))
    assert c.mean_delta == pytest.approx(np.mean(rb[1:] - ra[1:]), abs=1e-4)
    # the unit table: mean over tokens of |h_B − h_A| at the top layer, from the stock module's outputs
    np.testing.assert_allclose(c.dh[-1], np.abs(hb - ha).mean(0), atol=1e-5)
    assert c.dh.shape == (2, 16) and c.dc.shape == (2, 16) and c.units_note == ""


def test_delta_signs_worse_and_better(pair):
    a, b = pair
    c = compare(a, b, SENTENCE)
    worse, better = c.worse(3), c.better(3)
    assert len(worse) == 3 and len(better) == 3
    assert (worse["delta"] > 0).all() and (better["delta"] < 0).all()
    assert worse["delta"].is_monotonic_decreasing and better["delta"].is_monotonic_increasing
    assert worse["delta"].iloc[0] == pytest.approx(np.nanmax(c.delta))
    assert better["delta"].iloc[0] == pytest.approx(np.nanmin(c.delta))
    for row in worse.itertuples():            # Δ = B − A: B more surprised by a token that got worse
        assert row.surprisal_b > row.surprisal_a
        assert f"«{row.token}»" in row.context
    # swapping the models flips every sign
    back = compare(b, a, SENTENCE)
    np.testing.assert_allclose(back.delta[1:], -c.delta[1:], atol=1e-5)
    assert list(back.worse(3)["position"]) == list(better["position"])


def test_the_same_model_twice_gives_zeros(pair):
    a, _ = pair
    c = compare(a, a, SENTENCE)
    assert np.all(c.delta[1:] == 0) and c.mean_delta == 0
    assert c.worse().empty and c.better().empty
    assert np.all(c.dh == 0) and np.all(c.dc == 0) and c.changed_units().empty
    j = c.to_json()
    assert j["mean_delta"] == 0 and j["worse"] == [] and j["better"] == []
    assert j["units"]["changed_most"] == []


def test_different_tokenizers_are_refused_naming_both(pair):
    a, _ = pair
    with pytest.raises(InputError) as e:
        compare(a, char_model(), SENTENCE)
    msg = str(e.value)
    assert "tiny-lstm" in msg and "tiny-char" in msg and "word tokenizer" in msg and "char tokenizer" in msg
    assert "\n" not in msg
    other = make_model("lstm")
    other.tokenizer.itos[5], other.tokenizer.itos[6] = other.tokenizer.itos[6], other.tokenizer.itos[5]
    with pytest.raises(InputError, match="different vocabulary"):
        compare(a, other, SENTENCE)


def test_different_shapes_give_surprisal_but_no_unit_table(pair):
    a, _ = pair
    for b in (make_model("rnn"), make_model("lstm", hidden=12), make_model("lstm", layers=1)):
        c = compare(a, b, SENTENCE)
        rb, _ = reference(b, SENTENCE)
        np.testing.assert_allclose(c.surprisal_b[1:], rb[1:], rtol=1e-4, atol=1e-4)
        assert c.dh is None and c.dc is None and c.changed_units().empty
        assert c.units_note.startswith("no unit comparison: the state shapes differ")
        j = c.to_json()
        assert j["units"] is None and j["units_note"] == c.units_note and len(j["tokens"]) == c.n


def test_a_gru_pair_has_h_only(pair):
    c = compare(make_model("gru", seed=0), make_model("gru", seed=1), SENTENCE)
    assert c.dc is None and c.dh.shape == (2, 16)
    assert "mean_abs_dc" not in c.to_json()["units"]


def test_layer_restricts_the_unit_summary(pair):
    a, b = pair
    every = compare(a, b, SENTENCE)
    top = compare(a, b, SENTENCE, layer=-1)
    bottom = compare(a, b, SENTENCE, layer=1)
    assert every.layer is None and top.layer == 2 and bottom.layer == 1
    assert set(every.changed_units(None)["layer"]) == {1, 2}
    assert set(top.changed_units(None)["layer"]) == {2} and set(bottom.changed_units(None)["layer"]) == {1}
    best = top.changed_units(1).iloc[0]
    assert best["dh"] == pytest.approx(top.dh[1].max()) and best["unit"] == int(np.argmax(top.dh[1]))
    j = bottom.to_json(units=3)
    assert j["layer"] == 1 and j["units"]["layers"] == [1] and len(j["units"]["mean_abs_dh"][0]) == 16
    assert [u["layer"] for u in j["units"]["changed_most"]] == [1, 1, 1]
    with pytest.raises(PositionError, match="2 layers"):
        compare(a, b, SENTENCE, layer=3)
    with pytest.raises(InputError, match="layers are numbered from 1, the bottom layer"):
        compare(a, b, SENTENCE, layer=0)


def test_json_shape_and_six_significant_figures(pair):
    a, b = pair
    j = compare(a, b, SENTENCE).to_json(top=2, units=4)
    assert set(j) == {"model_a", "model_b", "tokens", "scored", "mean_surprisal_a", "mean_surprisal_b",
                      "mean_delta", "worse", "better", "layer", "units"}
    assert j["tokens"][0] == {"position": 0, "token": "<eos>", "surprisal_a": None, "surprisal_b": None,
                              "delta": None}
    assert set(j["worse"][0]) == {"position", "token", "surprisal_a", "surprisal_b", "delta", "context"}
    assert len(j["worse"]) == 2 and len(j["units"]["changed_most"]) == 4
    for x in [t["delta"] for t in j["tokens"][1:]] + [j["mean_delta"]]:
        assert len(f"{abs(x):.15g}".replace(".", "").lstrip("0")) <= 6
    json.dumps(j, allow_nan=False)


def test_predictions_are_the_distribution_each_token_was_drawn_against(pair):
    a, b = pair
    c = compare(a, b, SENTENCE)
    t = 3
    df = c.predictions(t, k=5)
    assert list(df.columns) == ["rank", "word_a", "p_a", "word_b", "p_b"] and len(df) == 5
    assert df["p_a"].is_monotonic_decreasing and df["p_b"].is_monotonic_decreasing
    assert df.attrs["token"] == c.a.tokens[t].norm
    assert 2 ** -c.surprisal_a[t] == pytest.approx(df.attrs["p_a"], rel=1e-4)
    assert 2 ** -c.surprisal_b[t] == pytest.approx(df.attrs["p_b"], rel=1e-4)
    with pytest.raises(PositionError):
        c.predictions(0)


def test_empty_text_is_refused(pair):
    with pytest.raises(InputError, match="no tokens"):
        compare(*pair, "   ")


def test_heldout_text_reads_the_test_split_within_the_budget(pair, tmp_path):
    a, _ = pair
    corpus = tmp_path / "books"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (corpus / name).write_text(f"{name} " + TEXT * 3, encoding="utf-8")
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["b.txt"], "test": ["c.txt", "d.txt"]}))
    books = split_books(corpus, "test")
    assert [n for n, _ in books] == ["c.txt", "d.txt"]
    text = heldout_text(a, books, max_tokens=40)
    assert text.startswith("c.txt") and "\n\nd.txt" in text
    assert len(a.tokenizer.tokenize(text)) <= 41            # two books of 20, and the paragraph between
    assert [n for n, _ in split_books(corpus, "valid")] == ["b.txt"]
    # a folder of two held-out books and no training file (corpora/heldout): the last book tests
    held = tmp_path / "held"
    held.mkdir()
    for name in ("x.txt", "y.txt"):
        (held / name).write_text(f"{name} {TEXT}", encoding="utf-8")
    assert [n for n, _ in split_books(held, "test")] == ["y.txt"]
    with pytest.raises(InputError):
        heldout_text(a, [("e.txt", "   ")])


# ------------------------------------------------------------------------------------------- figures
def test_strip_data_and_figure(pair):
    c = compare(*pair, SENTENCE)
    df = CF.delta_strip_data(c)
    assert list(df["position"]) == list(range(c.n)) and list(df["token"]) == c.tokens
    assert df["label"].iloc[0] == "&lt;eos&gt;" and df["color"].iloc[0] == "#e0e0e0"
    np.testing.assert_allclose(df["delta"].to_numpy()[1:], c.delta[1:], atol=1e-6)
    assert (df["vmax"] == DELTA_SURPRISAL_BITS).all()
    worst = int(np.nanargmax(c.delta))
    assert df["color"].iloc[worst] != "#f7f7f7"
    fig = CF.delta_strip(c, selected=worst)
    h = fig.data[0]
    assert (h.zmin, h.zmid, h.zmax) == (-DELTA_SURPRISAL_BITS, 0, DELTA_SURPRISAL_BITS)
    assert list(fig.layout.xaxis.tickvals) == list(range(c.n))         # integer positions: "a" twice
    assert fig.layout.shapes[0].x0 == worst - 0.5
    part = CF.delta_strip_data(c, window=(5, 9))
    assert list(part["position"]) == [5, 6, 7, 8]


def test_changed_units_data_and_bars(pair):
    c = compare(*pair, SENTENCE)
    df = CF.changed_units_data(c, 6)
    assert list(df.columns) == ["rank", "layer", "unit", "dh", "dc", "label"] and len(df) == 6
    assert df["dh"].is_monotonic_decreasing
    assert df["label"].iloc[0] == f"L{df['layer'].iloc[0]} · {df['unit'].iloc[0]}"
    fig = CF.changed_units_bars(c, 6)
    assert [d.name for d in fig.data] == ["mean |Δh|", "mean |Δc|"]
    assert list(fig.layout.xaxis.ticktext) == list(df["label"])
    no_units = compare(pair[0], make_model("rnn"), SENTENCE)
    assert CF.changed_units_data(no_units).empty


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare-models")
    for name, m in (("tiny-a", make_model("lstm", seed=0)), ("tiny-b", make_model("lstm", seed=1)),
                    ("tiny-rnn", make_model("rnn")), ("tiny-char", char_model())):
        save_bundle(root / name, m.lm, m.tokenizer, {"name": name, "description": "test", "metrics": {}})
    return root


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer", "compare", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_text_file_and_corpus(bundles, tmp_path):
    a, b = bundles / "tiny-a", bundles / "tiny-b"
    r = run_cli("--model", a, "--model", b, "--text", SENTENCE, "--layer", "2", "--top", "2", "--units", "3")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    want = compare(E.load_model(a), E.load_model(b), SENTENCE, layer=2).to_json(top=2, units=3)
    assert {k: j[k] for k in want} == want
    assert j["layer"] == 2 and j["command"].startswith("python -m explorer compare")

    f = tmp_path / "t.txt"
    f.write_text(SENTENCE, encoding="utf-8")
    r = run_cli("--model", a, "--model", b, "--file", f)
    assert r.returncode == 0, r.stderr
    j2 = json.loads(r.stdout)
    assert j2["file"] == str(f) and j2["tokens"] == json.loads(json.dumps(want["tokens"]))

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text(TEXT * 4, encoding="utf-8")
    r = run_cli("--model", a, "--model", b, "--corpus", corpus, "--max-tokens", "50")
    assert r.returncode == 0, r.stderr
    j3 = json.loads(r.stdout)
    assert j3["split"] == "test" and j3["files"] == ["c.txt"] and 40 <= j3["scored"] <= 51
    r = run_cli("--model", a, "--model", b, "--corpus", corpus, "--split", "valid", "--max-tokens", "20")
    assert json.loads(r.stdout)["files"] == ["b.txt"]
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["a.txt"], "test": ["b.txt"]}))
    r = run_cli("--model", a, "--model", b, "--corpus", corpus, "--max-tokens", "20")
    assert json.loads(r.stdout)["files"] == ["b.txt"]


def test_cli_corpus_refuses_a_books_either_model_trained_on(bundles, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text(TEXT, encoding="utf-8")
    m = make_model("lstm", seed=2)
    trained = tmp_path / "tiny-trained"
    save_bundle(trained, m.lm, m.tokenizer, {"name": "tiny-trained", "metrics": {},
                                             "training": {"split": {"train": ["a.txt", "c.txt"], "valid": ["b.txt"],
                                                                    "test": []}}})
    r = run_cli("--model", bundles / "tiny-a", "--model", trained, "--corpus", corpus)
    assert r.returncode == 2 and "c.txt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("--model", bundles / "tiny-a", "--model", trained, "--corpus", corpus, "--allow-training-text")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["training_text_read"] == ["c.txt"] and j["allow_training_text"] is True
    assert set(j["training_text_check"]) == {"model_a", "model_b"}


def test_cli_shape_mismatch_still_scores(bundles):
    r = run_cli("--model", bundles / "tiny-a", "--model", bundles / "tiny-rnn", "--text", SENTENCE)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["units"] is None and "state shapes differ" in j["units_note"] and j["mean_delta"] is not None


@pytest.mark.parametrize("args, says", [
    (["--model", "tiny-a", "--model", "tiny-char", "--text", "hi"], "tiny-char"),
    (["--model", "tiny-a", "--text", "hi"], "exactly twice"),
    (["--model", "tiny-a", "--model", "tiny-b", "--text", "hi", "--layer", "3"], "--layer 3"),
    (["--model", "tiny-a", "--model", "tiny-b", "--file", "no-such.txt"], "no such file"),
    (["--model", "tiny-a", "--model", "tiny-b", "--text", "hi", "--file", "x"], "not allowed with"),
    (["--model", "tiny-a", "--model", "tiny-b", "--corpus", "no-such-dir"], "does not exist"),
])
def test_cli_refusals_exit_2_with_one_line(bundles, args, says):
    args = [str(bundles / a) if a.startswith("tiny-") else a for a in args]
    r = run_cli(*args)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], r.stderr
    if says == "tiny-char":
        assert "tiny-a" in lines[0]


# --------------------------------------------------------------------------------------------- page
def open_page(models: Path, monkeypatch, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.switch_page("ui/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titled(at, start: str) -> dict:
    found = [s for s in specs(at) if (s["layout"].get("title") or {}).get("text", "").startswith(start)]
    assert found, f"no chart titled {start!r}"
    return found[0]


def test_page_opens_with_a_strip_two_lists_and_the_units(bundles, monkeypatch):
    at = open_page(bundles, monkeypatch, {"model": "tiny-a", "b": "tiny-b"})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cmp_b").value == "tiny-b"
    assert at.text_area(key="cmp_text").value.startswith("A girl walked into a bar")
    strip = titled(at, "Δ surprisal")
    assert strip["data"][0]["zmin"] == -DELTA_SURPRISAL_BITS and strip["data"][0]["zmid"] == 0
    t = at.select_slider(key="cmp_token").value
    c = compare(make_model("lstm", seed=0), make_model("lstm", seed=1), at.text_area(key="cmp_text").value)
    assert t == int(np.nanargmax(np.abs(c.delta)))                        # opens on the largest change
    assert strip["layout"]["shapes"][0]["x0"] == t - 0.5
    lists = [d.value for d in at.dataframe[:2]]
    assert [list(d.columns) for d in lists] == [["word", "P"], ["word", "P"]]
    p = c.predictions(t)
    assert list(lists[0]["word"]) == list(p["word_a"]) and list(lists[1]["word"]) == list(p["word_b"])
    assert titled(at, "The units that changed most")["data"]
    assert at.query_params["b"] == "tiny-b" and at.query_params["token"] == str(t)

    at.select_slider(key="cmp_token").set_value(2).run()
    assert not at.exception and at.query_params["token"] == "2"
    assert list(at.dataframe[0].value["word"]) == list(c.predictions(2)["word_a"])
    at.radio(key="cmp_layer").set_value(1).run()
    assert "layer 1" in titled(at, "The units that changed most")["layout"]["title"]["text"]


def test_page_restores_text_model_b_and_token_from_the_address(bundles, monkeypatch):
    at = open_page(bundles, monkeypatch, {"model": "tiny-a", "b": "tiny-b", "text": "Mary loves John .",
                                          "token": "3"})
    assert not at.error, [e.value for e in at.error]
    assert at.text_area(key="cmp_text").value == "Mary loves John ."
    assert at.select_slider(key="cmp_token").value == 3
    assert dict(at.query_params) == {"model": "tiny-a", "b": "tiny-b", "text": "Mary loves John .", "token": "3",
                                     "units": "every"}        # the layer of the units compared too (issue 22)
    # a token past the end of the text falls back to the largest change
    at = open_page(bundles, monkeypatch, {"model": "tiny-a", "b": "tiny-b", "text": "Mary loves John .",
                                          "token": "99"})
    assert at.select_slider(key="cmp_token").value in range(1, 5)


def test_page_shape_mismatch_and_refusal(bundles, monkeypatch):
    at = open_page(bundles, monkeypatch, {"model": "tiny-a", "b": "tiny-rnn"})
    assert not at.error
    assert titled(at, "Δ surprisal") and any("state shapes differ" in i.value for i in at.info)
    at = open_page(bundles, monkeypatch, {"model": "tiny-a", "b": "tiny-char"})
    assert len(at.error) == 1 and "tiny-char" in at.error[0].value and "tiny-a" in at.error[0].value
    assert not specs(at)
