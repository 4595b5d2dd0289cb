"""scripts/examples_lstm.py: pytorch/examples' word_language_model LSTM trained on hard-wrapped
fiction, as an engineer's own model. Its --dry-run writes the data.Corpus layout, per-epoch state
dicts, a vocabulary and a REF; `python -m explorer import` takes them (and --check agrees)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import FICTION, ROOT, needs_fiction

SCRIPT = ROOT / "scripts" / "examples_lstm.py"
pytestmark = pytest.mark.slow


def _run(*argv, timeout=120):
    return subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("exlstm")
    r = _run(SCRIPT, "--out", out, "--data", FICTION, "--dry-run", "--epochs", "2", "--seed", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@needs_fiction()
def test_dry_run_writes_the_corpus_layout_wrapped_at_70_columns(dry):
    corpus = dry / "corpus"
    texts = {s: (corpus / f"{s}.txt").read_text(encoding="utf-8") for s in ("train", "valid", "test")}
    log = json.loads((dry / "train_log.json").read_text())
    splits = json.loads((FICTION / "SPLITS.json").read_text())
    assert log["corpus"]["valid"]["books"] == splits["valid"] and log["corpus"]["test"]["books"] == splits["test"]
    assert not set(log["corpus"]["train"]["books"]) & set(splits["valid"] + splits["test"])
    for split, text in texts.items():
        lines = text.split("\n")
        assert max(len(ln) for ln in lines) <= 70, split
        assert "" in lines[:-1], f"{split}: paragraphs are separated by blank lines"
        assert "\n\n\n" not in text
        # a paragraph runs on over several lines: hard-wrapped, so <eos> marks a line end
        assert any(a.strip() and b.strip() for a, b in zip(lines, lines[1:])), split
    assert '"' in texts["train"], "quotation marks are kept"


@needs_fiction()
def test_vocabulary_is_data_corpus_idx2word(dry):
    vocab = json.loads((dry / "vocab.json").read_text(encoding="utf-8"))
    assert "<eos>" in vocab and len(set(vocab)) == len(vocab)
    assert (dry / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1] == vocab
    # pytorch/examples data.Corpus: line.split() + ['<eos>'], one dictionary over train, valid, test
    expect, seen = [], set()
    for split in ("train", "valid", "test"):
        with open(dry / "corpus" / f"{split}.txt", encoding="utf8") as f:
            for line in f:
                for w in line.split() + ["<eos>"]:
                    if w not in seen:
                        seen.add(w)
                        expect.append(w)
    assert vocab == expect


@needs_fiction()
def test_epoch_checkpoints_are_plain_state_dicts_in_the_examples_layout(dry):
    vocab = json.loads((dry / "vocab.json").read_text(encoding="utf-8"))
    log = json.loads((dry / "train_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    for e in log["epochs"]:
        assert e["train_ppl"] > 1 and e["valid_ppl"] > 1 and e["tokens_per_s"] > 0 and e["train_tokens"] > 0
        sd = torch.load(dry / e["checkpoint"], weights_only=True)
        assert set(sd) == {"encoder.weight", "decoder.weight", "decoder.bias"} | {
            f"rnn.{k}_l{i}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for i in (0, 1)}
        assert sd["encoder.weight"].shape == (len(vocab), 200) and torch.equal(sd["decoder.weight"], sd["encoder.weight"])
        assert sd["rnn.weight_hh_l0"].shape == (4 * 200, 200)
    assert log["test"]["ppl"] > 1 and log["command"].startswith("python scripts/examples_lstm.py")


@needs_fiction()
def test_explorer_imports_an_epoch_and_reproduces_its_ref(dry, tmp_path):
    r = _run("-m", "explorer", "import", "--weights", dry / "epoch1.pt", "--vocab", dry / "vocab.json",
             "--out", tmp_path / "b1", "--eos-means", "line", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["layout"].startswith("pytorch/examples word_language_model")
    assert rep["config"]["cell"] == "lstm" and rep["config"]["tied"] is True and rep["config"]["layers"] == 2
    assert rep["tokenizer"]["kind"] == "whitespace" and rep["tokenizer"]["eos_means"] == "line"
    assert (tmp_path / "b1" / "card.json").is_file()
    # the REF written by docs/own-model.md's five lines; the sample text agrees that <eos> is a line end
    ref = np.load(dry / "ref_epoch2.npy")
    assert ref.shape[0] == 1 + len((dry / "check.txt").read_text(encoding="utf-8").replace("\n", " <eos> ").split())
    r = _run("-m", "explorer", "import", "--weights", dry / "epoch2.pt", "--vocab", dry / "vocab.txt",
             "--out", tmp_path / "b2", "--eos-means", "line", "--sample-text", dry / "corpus" / "train.txt",
             "--check", dry / "ref_epoch2.npy", "--check-text", dry / "check.txt", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    check = json.loads(r.stdout)["check"]
    assert check["passed"] is True and check["max_abs_diff"] < 1e-4


def test_missing_corpus_is_a_clear_error(tmp_path):
    r = _run(SCRIPT, "--out", tmp_path / "o", "--data", tmp_path / "nothing", "--dry-run")
    assert r.returncode == 2 and "SPLITS.json" in r.stderr
