"""Training: reproducible, resumable with nothing lost, and clear about bad corpora."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from explorer import CorpusError, load_model
from explorer.training.data import batchify, bptt_windows, read_corpus
from explorer.training.train import Interrupted, TrainConfig, train

from conftest import FICTION, ROOT, needs_fiction, write_split_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_split_corpus(tmp_path / "corpus")


def cfg(corpus, out, **kw):
    base = dict(corpus=str(corpus), out=str(out), vocab_size=60, emb_size=16, hidden_size=16,
                batch_size=4, bptt=8, epochs=2, checkpoint_minutes=10.0, seed=3, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def weights(path):
    return load_file(str(path / "weights.safetensors"))


def test_split_and_vocab_from_train_only(corpus):
    c = read_corpus(corpus)
    assert [n for n, _ in c["train"]] == ["a.txt", "b.txt", "c.txt"]
    assert [n for n, _ in c["valid"]] == ["v.txt"] and [n for n, _ in c["test"]] == ["t.txt"]


def test_batchify_and_windows():
    data = batchify(torch.arange(23), 2)
    assert data.shape == (2, 11) and data[1, 0] == 11
    wins = list(bptt_windows(data, 4))
    assert [w[1].shape[1] for w in wins] == [4, 4, 2]
    assert torch.equal(wins[0][2], data[:, 1:5])   # targets are inputs shifted by one


def test_train_writes_a_complete_bundle(corpus, tmp_path):
    card = train(cfg(corpus, tmp_path / "m", command="python -m explorer train ..."), log=lambda m: None)
    m = load_model(tmp_path / "m")
    assert card["status"] == "complete" and m.card["metrics"]["test"]["perplexity"] > 1
    t = m.card["training"]
    assert t["seed"] == 3 and t["command"].startswith("python -m explorer train") and t["split"]["valid"] == ["v.txt"]
    assert len(t["history"]) == 2 and m.card["tokenizer"]["vocab_size"] == 60
    assert "threads" in t["hardware"] and t["date"]


def test_same_seed_same_weights(corpus, tmp_path):
    train(cfg(corpus, tmp_path / "a"), log=lambda m: None)
    train(cfg(corpus, tmp_path / "b"), log=lambda m: None)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _interrupted_at_batch(monkeypatch, n, config):
    """Run `config` with Ctrl-C arriving in the middle of its n-th batch (expects Interrupted)."""
    import explorer.training.train as T
    real_clip = T.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real_clip(*a, **k)

    monkeypatch.setattr(T.nn.utils, "clip_grad_norm_", interrupt)
    with pytest.raises(Interrupted):
        train(config, log=lambda m: None)
    monkeypatch.setattr(T.nn.utils, "clip_grad_norm_", real_clip)


def test_interrupted_run_resumes_with_nothing_lost(corpus, tmp_path, monkeypatch):
    train(cfg(corpus, tmp_path / "full"), log=lambda m: None)

    _interrupted_at_batch(monkeypatch, 9, cfg(corpus, tmp_path / "cut"))
    prog = json.loads((tmp_path / "cut.ckpt" / "progress.json").read_text())
    assert prog["batch"] == 8                     # 8 whole batches done, the 9th is redone
    train(cfg(corpus, tmp_path / "cut", resume=True), log=lambda m: None)
    wa, wb = weights(tmp_path / "full"), weights(tmp_path / "cut")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=0)


def test_resume_lr_sets_the_rate_and_the_card_says_so(corpus, tmp_path, monkeypatch):
    _interrupted_at_batch(monkeypatch, 5, cfg(corpus, tmp_path / "r"))
    card = train(cfg(corpus, tmp_path / "r", resume=True, resume_lr=1e-4), log=lambda m: None)
    assert card["training"]["lr_changes"] == [{"epoch": 1, "batch": 4, "from": cfg(corpus, tmp_path).lr, "to": 1e-4}]
    assert card["training"]["history"][0]["lr"] == 1e-4


def test_resume_without_checkpoint(corpus, tmp_path):
    with pytest.raises(CorpusError, match="no checkpoint"):
        train(cfg(corpus, tmp_path / "x", resume=True), log=lambda m: None)


def test_empty_corpus_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt files"):
        read_corpus(tmp_path / "empty")


def test_not_utf8(corpus):
    (corpus / "a.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"a.txt is not UTF-8 text \(bad byte 0xe9 at offset 3\)"):
        read_corpus(corpus)


def test_split_names_missing_file(corpus):
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["gone.txt"], "test": ["t.txt"]}))
    with pytest.raises(CorpusError, match="'gone.txt' in 'valid'"):
        read_corpus(corpus)


def test_vocab_larger_than_distinct_words(corpus, tmp_path):
    with pytest.raises(CorpusError, match="larger than the"):
        train(cfg(corpus, tmp_path / "m", vocab_size=100_000), log=lambda m: None)


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_errors_are_one_line_status_2(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    for args, needle in [(["train", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], "no .txt files"),
                         (["train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--vocab-size", "0"], "at least 1"),
                         (["train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--lr-decay", "0.5"], "at least 1"),
                         (["eval", "--model", str(tmp_path / "nope"), "--corpus", str(corpus)], "not a folder")]:
        r = _cli(*args)
        assert r.returncode == 2, r.stderr
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_dry_run_and_eval(corpus, tmp_path):
    r = _cli("train", "--corpus", str(corpus), "--out", str(tmp_path / "m"), "--dry-run", "--emb-size", "8",
             "--hidden-size", "8", "--vocab-size", "50")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["test"]["perplexity"] > 1
    r = _cli("eval", "--model", str(tmp_path / "m"), "--corpus", str(corpus), "--split", "test")
    out = json.loads(r.stdout)
    assert set(out) >= {"perplexity", "tokens", "unk_rate"} and 0 <= out["unk_rate"] <= 1


@needs_fiction()
def test_dry_run_on_the_real_corpus(tmp_path):
    r = _cli("train", "--corpus", str(FICTION), "--out", str(tmp_path / "m"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path / "m").card["training"]["dry_run"] is True
