"""The shipped teaching model (pretrained/fiction-lstm-balanced): what its card says is what it does.

Each figure of the teaching bar is measured again here, with the project's own code, and compared
with the card: the bartender margins, the pairs' plain accuracy (overall and per type), and, when
../shared is present, the perplexity on the original test books against the Kneser-Ney baseline."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import FICTION, ROOT

BUNDLE = ROOT / "pretrained" / "fiction-lstm-balanced"
pytestmark = pytest.mark.skipif(not (BUNDLE / "weights.safetensors").is_file(),
                                reason=f"{BUNDLE} is not in this checkout")


@pytest.fixture(scope="module")
def model():
    from explorer import load_model
    torch.set_num_threads(2)
    return load_model(BUNDLE)


@pytest.fixture(scope="module")
def card():
    return json.loads((BUNDLE / "card.json").read_text())


def test_the_card_records_the_whole_recipe(card):
    """Every stage of the fine-tune, back to fiction-lstm: its command, seed, data, time, hardware,
    the hash of the weights it started from and how its snapshot was chosen."""
    tr, stages = card["training"], 0
    while True:
        stages += 1
        assert tr["command"].startswith("python -m explorer train") and "--augment gender-swap-names" in tr["command"]
        assert len(tr["init"]["weights_sha256"]) == 64
        assert tr["seed"] == 1234 and tr["hardware"] and tr["wall_seconds"] > 0 and tr["date"]
        assert tr["augment"]["kind"].startswith("gender-swap-names") and tr["augment"]["names"]
        assert tr["selection"]["chosen"] and tr["selection"]["table"]
        if tr["init"]["bundle"].endswith("pretrained/fiction-lstm"):
            break
        assert stages < 5, "the chain of fine-tunes does not end at fiction-lstm"
        tr = tr["init"]["its_training"]
    m = card["metrics"]
    for key in ("valid", "test", "ngram_order5", "syneval", "agreement_pairs", "bartender", "teaching"):
        assert key in m, key
    assert (BUNDLE / "ngram-kn3.npz").is_file()
    logs = ROOT / "pretrained" / "training-logs"
    assert (logs / "fiction-lstm-balanced.log").is_file()
    assert stages == 1 or all((logs / f"fiction-lstm-balanced-stage{k}.log").is_file() for k in range(1, stages))


def test_the_bar_measured_again_is_what_the_card_says(model, card):
    from explorer.training.evals import teaching_report
    rep, saved = teaching_report(model), card["metrics"]["teaching"]
    for k in ("girl_margin", "boy_margin"):
        assert rep["bartender"][k] == pytest.approx(saved["bartender"][k], abs=2e-3)
    assert rep["pairs_accuracy"] == pytest.approx(saved["pairs_accuracy"], abs=1e-4)
    assert {k: v["accuracy"] for k, v in rep["pair_types"].items()} == \
        pytest.approx({k: v["accuracy"] for k, v in saved["pair_types"].items()}, abs=1e-4)
    assert {k: v for k, v in saved["checks"].items() if k in rep["checks"]} == rep["checks"]


def test_the_bartender_reads_girl_and_boy_the_right_way(model):
    """The lesson's example on the default model: after girl/she the female addresses together beat
    "sir", after boy/he "sir" wins."""
    from explorer.training.evals import bartender_margin
    b = bartender_margin(model)
    assert b["girl"]["margin"] > 0 > b["boy"]["margin"]


@pytest.mark.skipif(not FICTION.is_dir(), reason="needs ../shared/data/fiction (the test books)")
def test_test_perplexity_on_the_original_books_matches_the_card(model, card):
    from explorer.training.data import batchify, encode_texts, read_corpus
    from explorer.training.train import evaluate
    c = read_corpus(FICTION)
    r = evaluate(model.lm, batchify(encode_texts(model.tokenizer, c["test"]), 10))
    assert r["perplexity"] == pytest.approx(card["metrics"]["test"]["perplexity"], rel=1e-3)
    assert r["tokens"] == card["metrics"]["test"]["tokens"]
    kn = card["metrics"]["ngram_order5"]["test"]
    assert abs(kn["tokens"] - r["tokens"]) < 50      # the same books and vocabulary (batching drops a few tokens)
    ratio = r["perplexity"] / kn["perplexity"]
    assert ratio == pytest.approx(card["metrics"]["teaching"]["test_perplexity_over_kn5"], abs=1e-3)
