"""The n-gram baseline and the minimal-pair evaluation."""
import math
import random

import pytest

from explorer.training.evals import (BARTENDER_BOY, BARTENDER_GIRL, agreement_pairs, bartender_margin, minimal_pairs,
                            run_suite_folder)
from explorer.training.ngram import KneserNey

from conftest import SYNEVAL


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
