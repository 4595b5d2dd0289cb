"""Regression tests for issue 14's backend defects (each failed before its fix).

1 a named split file that is missing (or names missing files) is an error, and a default split says
  which files it used; 2 one boundary rule for score/next_words/generate and trace; 3 detokenising
  belongs to the tokenizer (characters join as characters); 4 clip and continue at token boundaries;
  5 one-line CLI errors instead of tracebacks; 6 the exactness check is stated as relative;
  7 Windows paragraph breaks, NFC normalisation, significant digits in to_json, no float32 noise.
"""
import gzip
import json
import math
import random
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import CharTokenizer, CorpusError, LanguageModel, ModelConfig, WordTokenizer, trace
from explorer.analysis import cell_provenance, generate_trace
from explorer.api import LoadedModel
from explorer.present import lesson as LS
from explorer.trace import clip_text
from explorer.training.data import read_corpus

from conftest import ROOT, TEXT

FICTION_LSTM = ROOT / "pretrained" / "fiction-lstm"


def run_cli(argv, capsys):
    """The CLI in-process: (status, stdout, stderr). An uncaught exception (a traceback) fails the test."""
    from explorer.cli import main
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------------ 1. split files
@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    rng = random.Random(0)
    words = TEXT.split()
    for name in ("a.txt", "b.txt", "c.txt", "v.txt", "t.txt"):
        (d / name).write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(60)) for _ in range(8)),
                              encoding="utf-8")
    return d


def test_named_split_file_that_does_not_exist_is_an_error(corpus):
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(corpus, corpus / "nonexistent" / "SPLITS.json")


@pytest.mark.parametrize("cmd", ["eval", "ngram", "train"])
def test_missing_split_file_exits_2_in_every_command(cmd, corpus, bundle_dir, tmp_path, capsys):
    missing = tmp_path / "nope" / "SPLITS.json"
    argv = {"eval": ["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test", "--split-file", missing],
            "ngram": ["ngram", "--model", bundle_dir, "--corpus", corpus, "--split-file", missing],
            "train": ["train", "--corpus", corpus, "--split", missing, "--out", tmp_path / "m", "--dry-run"]}[cmd]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2 and out == "" and one_line(err) and "does not exist" in err, (rc, err)


def test_split_file_naming_absent_files_exits_2(corpus, bundle_dir, tmp_path, capsys):
    spec = tmp_path / "splits.json"
    spec.write_text(json.dumps({"valid": ["v.txt"], "test": ["holmes_the_yellow_face.txt"]}))
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test",
                            "--split-file", spec], capsys)
    assert rc == 2 and one_line(err) and "holmes_the_yellow_face.txt" in err


def test_default_split_says_which_files_it_used(corpus, bundle_dir, capsys):
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test"], capsys)
    assert rc == 0, err
    r = json.loads(out)
    assert r["files"] == ["v.txt"]          # files sorted: a b c t v; the default tests on the last
    assert r["split_file"] is None and "no split file" in r["split_source"]
    rc, out, err = run_cli(["ngram", "--model", bundle_dir, "--corpus", corpus, "--order", "2"], capsys)
    r = json.loads(out)
    assert rc == 0 and r["files"]["test"] == ["v.txt"] and r["files"]["valid"] == ["t.txt"]
    assert "no split file" in r["split_source"]
    # with a SPLITS.json in the folder, the output names it
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["a.txt"], "test": ["b.txt"]}))
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test"], capsys)
    r = json.loads(out)
    assert rc == 0 and r["files"] == ["b.txt"] and r["split_file"].endswith("SPLITS.json")


# ------------------------------------------------------------------------ 2. one boundary rule
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


@pytest.mark.parametrize("prompt", ["\n\nMary loves", "Mary loves", "\n\n"])
def test_greedy_generation_emits_the_traces_top1(tiny_lstm, prompt):
    g = generate_trace(tiny_lstm, prompt, 10, temperature=0)
    tr = g.trace
    for row in g.generated_rows:
        top = [w for w, _ in tr.top_words(row - 1, 3) if w != "<unk>"][0]
        assert tr.tokens[row].norm == top
    assert list(g.words) == tiny_lstm.generate(prompt, 10, temperature=0)


@pytest.mark.skipif(not (FICTION_LSTM / "weights.safetensors").exists(), reason="pretrained/fiction-lstm is absent")
def test_holmes_said_scores_as_the_trace_reads_it():
    from explorer import load_model
    m = load_model(FICTION_LSTM)
    tr = trace(m, "\n\nHolmes said")
    want = float(np.log(tr.next_prob[:-1].astype(np.float64)).sum())
    assert m.score("\n\nHolmes said")["logprob"] == pytest.approx(want, rel=1e-4)   # was -16.43 vs -10.70


# ------------------------------------------------------------------------ 3. detokenising
def char_model(seed=0) -> LoadedModel:
    torch.manual_seed(seed)
    tok = CharTokenizer.build([TEXT])
    cfg = ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=12, hidden_size=12, layers=1, dropout=0.0)
    lm = LanguageModel(cfg).eval()
    return LoadedModel(lm, tok, {"name": "tiny-char", "config": cfg.to_dict(), "metrics": {}}, None)


def test_character_generation_joins_characters():
    m = char_model()
    g = generate_trace(m, "ROMEO:\n", 40, seed=1)
    cont = "".join("\n\n" if w == "<eos>" else w for w in g.words)
    assert g.text == "ROMEO:\n" + cont
    assert m.tokenizer.detokenize(list(g.ids)) == cont
    for row, w in zip(g.generated_rows, g.words):     # spans point at the characters
        t = g.trace.tokens[row]
        assert t.special or g.text[t.start:t.end] == w


def test_word_detokenize_round_trips():
    tok = WordTokenizer.build([TEXT])
    rng = random.Random(3)
    ids = [i for i in range(len(tok)) if i != tok.unk_id]
    for _ in range(50):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 30))]
        text = tok.detokenize(seq)
        assert [t.id for t in tok.tokenize(text)] == seq, text
    assert tok.detokenize(["mary", "said", ",", '"', "i", "don't", "know", '"', ".", "<eos>", "john"]) == \
        'mary said, "i don\'t know".\n\njohn'


def test_char_detokenize_round_trips():
    tok = CharTokenizer.build([TEXT])
    rng = random.Random(4)
    ids = [i for i in range(len(tok)) if i not in (tok.unk_id, tok.eos_id) and tok.itos[i] not in "\n\t "]
    for _ in range(50):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 40))]
        seq.insert(rng.randrange(len(seq)), tok.eos_id)
        text = tok.detokenize(seq)
        assert [t.id for t in tok.tokenize(text)] == seq, repr(text)


@pytest.mark.skipif(not (FICTION_LSTM / "tokenizer.json").exists(), reason="pretrained/fiction-lstm is absent")
def test_fiction_vocabulary_round_trips():
    from explorer.tokenizer import tokenizer_from_dict
    tok = tokenizer_from_dict(json.loads((FICTION_LSTM / "tokenizer.json").read_text(encoding="utf-8")))
    rng = random.Random(5)
    ids = [i for i in range(len(tok)) if i != tok.unk_id]
    for _ in range(200):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 40))]
        assert [t.id for t in tok.tokenize(tok.detokenize(seq))] == seq


def test_word_generation_text_is_joined_by_the_tokenizer(tiny_lstm):
    g = generate_trace(tiny_lstm, "Mary loves", 12, seed=2)
    assert [t.id for t in tiny_lstm.tokenizer.tokenize(g.text)][-12:] == list(g.ids)


# ------------------------------------------------------------------------ 4. cuts at token boundaries
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


# ------------------------------------------------------------------------ 5. one-line CLI errors
@pytest.mark.parametrize("extra,needle", [
    (["--temperature", "inf"], "finite"),
    (["--temperature", "nan"], "finite"),
    (["--seed", str(2 ** 64)], "seed"),
    (["--seed", "-1"], "seed"),
    (["--top-k", "-5"], "at least 0"),
    (["--n", "100000000"], "at most 2000"),
])
def test_generate_bad_arguments_are_one_line(bundle_dir, capsys, extra, needle):
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "3", *extra], capsys)
    assert rc == 2 and one_line(err) and needle in err, (rc, err)


def test_tiny_temperature_is_greedy_not_nan(bundle_dir, capsys):
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "5", "--temperature", "1e-45"], capsys)
    assert rc == 0, err
    rc0, out0, _ = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "5", "--temperature", "0"], capsys)
    assert json.loads(out)["generated"] == json.loads(out0)["generated"]
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "3", "--seed", str(2 ** 64 - 1)], capsys)
    assert rc == 0, err


def test_library_refuses_bad_sampling_arguments(tiny_lstm):
    for kw in (dict(temperature=float("inf")), dict(temperature=float("nan")), dict(top_k=-1),
               dict(seed=2 ** 64), dict(n=10 ** 8)):
        with pytest.raises(ValueError):
            tiny_lstm.generate("Mary", **{"n": 3, **kw})


def test_classify_is_listed_and_its_errors_are_one_line(capsys):
    rc, out, err = run_cli(["--help"], capsys)
    assert rc == 0 and "classify" in out.split("positional arguments:")[1]
    rc, out, err = run_cli(["classify", "--bogus"], capsys)
    assert rc == 2 and one_line(err), err
    rc, out, err = run_cli(["classify", "--model", "x", "--corpus", "y", "--out", "z", "--passage-tokens", "abc"], capsys)
    assert rc == 2 and one_line(err), err


def _suite(tmp_path, items):
    d = tmp_path / "suite"
    d.mkdir(exist_ok=True)
    with gzip.open(d / "s.jsonl.gz", "wt", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it) + "\n")
    return d


@pytest.mark.parametrize("item,needle", [
    ({"good": 5, "bad": ["mary loves john ."]}, "'good'"),
    ({"good": "mary loves john .", "bad": "john loves mary ."}, "'bad'"),
    ({"good": "mary loves john .", "bad": []}, "'bad'"),
    ({"good": "mary loves john .", "bad": [3]}, "'bad'"),
])
def test_syneval_rejects_malformed_items(bundle_dir, tmp_path, capsys, item, needle):
    d = _suite(tmp_path, [{"good": "john loves mary .", "bad": ["mary john loves ."]}, item])
    rc, out, err = run_cli(["syneval", "--model", bundle_dir, "--suite", d], capsys)
    assert rc == 2 and one_line(err) and needle in err and "line 2" in err, (rc, err)


# ------------------------------------------------------------------------ 6. exactness, relative
def test_provenance_check_states_a_relative_tolerance(tiny_lstm):
    rng = random.Random(0)
    text = " ".join(rng.choice(TEXT.split()) for _ in range(600))
    tr = trace(tiny_lstm, text)
    p = cell_provenance(tr, layer=1)
    u = LS.strongest_units(p)[0]
    chk = LS.provenance_check(p, u)
    assert chk["relative_error"] == pytest.approx(abs(chk["error"]) / max(abs(chk["c"]), 1.0))
    assert chk["layer_max_relative_error"] <= chk["tolerance"] == LS.PROVENANCE_RTOL
    assert "relative" in (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")[1]


# ------------------------------------------------------------------------ 7. smaller input cases
@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_windows_paragraph_breaks_are_boundaries(cls):
    tok = cls.build(["mary came\n\njohn went"])
    unix = [t.norm for t in tok.tokenize("mary came\n\njohn went")]
    win = tok.tokenize("mary came\r\n\r\njohn went")
    assert [t.norm for t in win] == unix and "<eos>" in unix
    assert all(t.special or "mary came\r\n\r\njohn went"[t.start:t.end] == t.text for t in win)


@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_decomposed_accents_are_normalised_with_spans_into_the_original(cls):
    tok = cls.build(["a na\u00efve caf\u00e9 owner"])
    text = "the nai\u0308ve cafe\u0301 owner"
    got, want = tok.tokenize(text), tok.tokenize("the na\u00efve caf\u00e9 owner")
    assert [t.id for t in got] == [t.id for t in want]
    assert [(t.start, t.end) for t in got if t.norm in ("na\u00efve", "\u00ef")] == \
        ([(4, 10)] if cls is WordTokenizer else [(6, 8)])
    for t in got:
        assert text[t.start:t.end] == t.text
    if cls is WordTokenizer:
        naive = [t for t in got if t.norm == "na\u00efve"][0]
        assert (naive.start, naive.end) == (4, 10) and naive.text == "nai\u0308ve"


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
