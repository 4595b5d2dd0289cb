"""The n-gram baseline and the minimal-pair evaluation; the split files they (and training) read."""
import gzip
import json
import math
import random

import pytest

from explorer import CorpusError
from explorer.training.data import read_corpus
from explorer.training.evals import (BARTENDER_BOY, BARTENDER_GIRL, agreement_pairs, bartender_margin, minimal_pairs,
                            run_suite_folder)
from explorer.training.ngram import KneserNey

from conftest import SYNEVAL, TEXT, one_line, run_cli


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_kneser_ney_is_a_distribution(order):
    rng = random.Random(order)
    ids = [rng.randint(0, 14) for _ in range(2000)]
    kn = KneserNey(order, 16).fit(ids)   # word 15 never occurs: still gets probability
    for hist in ([], [3], [3, 4, 5, 6], [15, 15]):
        p = [kn.prob(hist, w) for w in range(16)]
        assert math.isclose(sum(p), 1.0, abs_tol=1e-9) and min(p) > 0


def test_kneser_ney_learns_the_pattern():
    ids = [0, 1, 2, 3] * 300
    kn = KneserNey(3, 8).fit(ids)
    assert kn.prob([0, 1], 2) > 0.9
    assert kn.evaluate([0, 1, 2, 3] * 10)["perplexity"] < 1.5
    # continuation counts: 5 follows three different words, 4 only one, although both occur 3 times,
    # so after an unseen context 5 is the likelier continuation
    kn2 = KneserNey(2, 6).fit([0, 5, 1, 5, 2, 5, 3, 4, 3, 4, 3, 4])
    assert kn2.counts[1][(5,)] == 3 and kn2.counts[1][(4,)] == 1
    assert kn2.prob([5], 5) > kn2.prob([5], 4)


def test_agreement_pairs_are_balanced():
    items = agreement_pairs()
    pairs = {}
    for d in items:
        pairs.setdefault(d["pair"], []).append(d)
    assert all(len(p) == 2 for p in pairs.values())
    for f, m in pairs.values():   # the mirror swaps good and bad words: a context-blind model scores 50%
        assert f["condition"].endswith("female") and m["condition"].endswith("male")
        f_word = set(f["good"].split()) - set(f["bad"][0].split())
        assert f_word and f_word == set(m["bad"][0].split()) - set(m["good"].split())
    n_f = sum(d["condition"].endswith("_female") for d in items)
    assert n_f * 2 == len(items)


class Blind:
    """A context-blind 'model': the score of a sentence is a sum of fixed (arbitrary) word scores."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def score_batch(self, texts):
        import zlib
        return [{"logprob": -sum(zlib.crc32(w.encode()) % 997 for w in t.split()) / 100} for t in texts]


def test_context_blind_model_scores_50_percent(tiny_lstm):
    from explorer import WordTokenizer
    items = agreement_pairs()
    tok = WordTokenizer.build([" ".join(d["good"] for d in items)])
    r = minimal_pairs(Blind(tok), items)
    assert r["items"] == len(items)
    # of each mirrored pair exactly one item is right, whichever word the blind model prefers
    assert r["accuracy"] == 0.5
    assert all(v["accuracy"] == 0.0 for v in r["paired"].values())   # no context effect at all


def test_minimal_pairs_skip_unknown_words(tiny_lstm):
    items = [{"suite": "s", "condition": "c", "good": "the girl said", "bad": ["the girl says"]},
             {"suite": "s", "condition": "c", "good": "mary loves john", "bad": ["john loves mary"]}]
    r = minimal_pairs(tiny_lstm, items)
    assert r["items"] == 1 and r["items_total"] == 2 and r["suites"]["s"]["items_total"] == 2


def test_bartender_margin_shape(tiny_lstm):
    b = bartender_margin(tiny_lstm)
    assert b["girl"]["text"] == BARTENDER_GIRL and b["boy"]["text"] == BARTENDER_BOY
    assert b["effect"] == pytest.approx(b["girl"]["margin"] - b["boy"]["margin"])


@pytest.mark.skipif(not SYNEVAL.is_dir(), reason=f"syneval suite not present at {SYNEVAL} (../shared is not in the repo)")
def test_syneval_folder_runs(tiny_lstm):
    r = run_suite_folder(tiny_lstm, SYNEVAL, max_items=20)
    assert r["items_total"] > 0 and set(r["suites"]) >= {"simple_agrmt"}


def test_syneval_bad_folder(tmp_path, tiny_lstm):
    from explorer import CorpusError
    with pytest.raises(CorpusError, match="no \\*.jsonl"):
        run_suite_folder(tiny_lstm, tmp_path)
    (tmp_path / "x.jsonl").write_text('{"nope": 1}\n')
    with pytest.raises(CorpusError, match="line 1"):
        run_suite_folder(tiny_lstm, tmp_path)


# ------------------------------------------ issue 14: split files, named or default, in eval, ngram and train
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
    # issue 20: a folder with no split is refused (guessing one evaluated on training text) ...
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test"], capsys)
    assert rc == 2 and one_line(err) and "SPLITS.json" in err and "--valid-files" in err
    # ... and a split named by flags says which files it used
    flags = ["--valid-files", "t.txt", "--test-files", "v.txt"]
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test", *flags], capsys)
    assert rc == 0, err
    r = json.loads(out)
    assert r["files"] == ["v.txt"] and r["splits"]["train"] == ["a.txt", "b.txt", "c.txt"]
    assert r["split_file"] is None and "--valid-files" in r["split_source"]
    rc, out, err = run_cli(["ngram", "--model", bundle_dir, "--corpus", corpus, "--order", "2", *flags], capsys)
    r = json.loads(out)
    assert rc == 0 and r["files"]["test"] == ["v.txt"] and r["files"]["valid"] == ["t.txt"]
    assert "--valid-files" in r["split_source"]
    # with a SPLITS.json in the folder, the output names it
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["a.txt"], "test": ["b.txt"]}))
    rc, out, err = run_cli(["eval", "--model", bundle_dir, "--corpus", corpus, "--split", "test"], capsys)
    r = json.loads(out)
    assert rc == 0 and r["files"] == ["b.txt"] and r["split_file"].endswith("SPLITS.json")


# ------------------------------------------------------------ issue 14: malformed syneval items, one line
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
