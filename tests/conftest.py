"""Shared fixtures: tiny models built in-process, so the suite runs on a fresh clone in seconds,
without the shipped weights and without ../shared."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer import LanguageModel, ModelConfig, WordTokenizer, save_bundle
from explorer.api import LoadedModel

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FICTION = SHARED / "data" / "fiction"
SYNEVAL = SHARED / "eval" / "syneval"

TEXT = """A girl walked into a bar, and she said "Can I have a drink please?" The bartender said
"Certainly, miss." A boy walked into a bar, and he said "Can I have a drink please?" The bartender
said "Certainly, sir." Mary loves John. John loves Mary. It was the best of times; it was the worst
of times. Holmes looked at me and said, "You have been in Afghanistan, I perceive." I don't know,
ma'am, but I shall see. She was the youngest of the two daughters of a most affectionate father.

He took his hat and went out. The 3 men came at 10:30 on the 21st of May, 1895."""


def make_model(cell="lstm", layers=2, hidden=16, seed=0, tied=True) -> LoadedModel:
    torch.manual_seed(seed)
    tok = WordTokenizer.build([TEXT])
    cfg = ModelConfig(cell=cell, vocab_size=len(tok), emb_size=hidden, hidden_size=hidden,
                      layers=layers, dropout=0.0, tied=tied)
    lm = LanguageModel(cfg)
    with torch.no_grad():  # larger weights than the default init, so gates and states vary visibly
        for name, p in lm.rnn.named_parameters():
            p.uniform_(-0.8, 0.8)
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return LoadedModel(lm, tok, {"name": f"tiny-{cell}", "config": cfg.to_dict(), "metrics": {}}, None)


@pytest.fixture(scope="session")
def tiny_lstm() -> LoadedModel:
    return make_model("lstm")


@pytest.fixture(scope="session")
def tiny_rnn() -> LoadedModel:
    return make_model("rnn")


@pytest.fixture(scope="session")
def tiny_gru() -> LoadedModel:
    return make_model("gru")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A pretrained/-like folder with two tiny bundles (an LSTM and an RNN)."""
    root = tmp_path_factory.mktemp("pretrained")
    for cell in ("lstm", "rnn"):
        m = make_model(cell)
        save_bundle(root / f"tiny-{cell}", m.lm, m.tokenizer,
                    {"name": f"tiny-{cell}", "description": f"tiny random {cell} for tests", "metrics": {}})
    return root


@pytest.fixture
def bundle_dir(models_dir) -> Path:
    return models_dir / "tiny-lstm"


def needs_fiction():
    return pytest.mark.skipif(not FICTION.is_dir(), reason=f"corpus not present at {FICTION} "
                              "(../shared is not part of the repository)")
