"""Shared fixtures: tiny models built in-process, so the suite runs on a fresh clone in seconds,
without the shipped weights and without ../shared; the in-process CLI; and the browser tests' Chromium,
model folders and Streamlit servers (their helpers: tests/browser_support.py; the AppTest helpers:
tests/apptest_support.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer import CharTokenizer, LanguageModel, ModelConfig, WordTokenizer, save_bundle
from explorer.api import LoadedModel

pytest.register_assert_rewrite("apptest_support", "browser_support")   # their asserts explain themselves

from browser_support import FICTION_MODELS, chromium, fresh_page, link_models, real_models, running_server

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FICTION = SHARED / "data" / "fiction"
SYNEVAL = SHARED / "eval" / "syneval"
FICTION_LSTM = ROOT / "pretrained" / "fiction-lstm"

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


def make_char_model(text: str, hidden: int = 12, seed: int = 0) -> LoadedModel:
    """A tiny character-level LSTM whose vocabulary is the characters of `text`."""
    torch.manual_seed(seed)
    tok = CharTokenizer.build([text])
    cfg = ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=hidden, hidden_size=hidden, layers=2,
                      dropout=0.0, tied=True)
    lm = LanguageModel(cfg).eval()
    with torch.no_grad():
        for p in lm.rnn.parameters():
            p.uniform_(-0.8, 0.8)
    return LoadedModel(lm, tok, {"name": "tiny-char", "config": cfg.to_dict(), "metrics": {}}, None)


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


@pytest.fixture(scope="session")
def char_models(tmp_path_factory) -> Path:
    """A models folder with a tiny character-level LSTM (its vocabulary: the characters of TEXT and a tab)."""
    root = tmp_path_factory.mktemp("char-models")
    m = make_char_model(TEXT + "\t")
    save_bundle(root / "tiny-char", m.lm, m.tokenizer, {"name": "tiny-char", "metrics": {}})
    return root


def needs_fiction():
    return pytest.mark.skipif(not FICTION.is_dir(), reason=f"corpus not present at {FICTION} "
                              "(../shared is not part of the repository)")


def write_split_corpus(d: Path) -> Path:
    """A small corpus folder at `d`: five files of random words from TEXT, split by SPLITS.json."""
    import json
    import random
    d.mkdir()
    rng = random.Random(0)
    words = TEXT.split()
    for name in ("a.txt", "b.txt", "c.txt", "v.txt", "t.txt"):
        paras = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(12)]
        (d / name).write_text("\n\n".join(paras), encoding="utf-8")
    (d / "SPLITS.json").write_text(json.dumps({"valid": ["v.txt"], "test": ["t.txt"], "train": "every other"}))
    return d

def small_index(tmp_path_factory, models_dir, name: str, segment_tokens: int = 50):
    """The tiny LSTM, a two-file corpus (TEXT and a quotes paragraph three times) and its index: (model,
    corpus folder, index folder), for the corpus query tests."""
    from explorer.bundle import load_model
    from explorer.corpus.index import build_index
    m = load_model(models_dir / "tiny-lstm")
    d = tmp_path_factory.mktemp(f"{name}corpus")
    (d / "a.txt").write_text(TEXT, encoding="utf-8")
    (d / "b.txt").write_text('He said "no." She said "yes, sir." The girl and the boy.\n\n' * 3, encoding="utf-8")
    out = tmp_path_factory.mktemp(f"{name}idx") / "i"
    build_index(m, d, out, segment_tokens=segment_tokens, progress=False)
    return m, d, out


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: on tiny models more threads only spin-wait on a busy machine."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

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


# ------------------------------------------------------------------ browser tests (tests/browser_support.py)
@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, one per test module (Playwright's sync API allows one at a time)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def browser_models(models_dir, tmp_path_factory) -> Path:
    """The shipped fiction-lstm and fiction-rnn when both exist, else the tiny LSTM and RNN."""
    root = tmp_path_factory.mktemp("browser-models")
    if real_models():
        return link_models(root, FICTION_MODELS)
    return link_models(root, {name: models_dir / name for name in ("tiny-lstm", "tiny-rnn")})


@pytest.fixture(scope="module")
def server(browser_models, tmp_path_factory):
    """A Streamlit server on `browser_models` (a module may override either); yields its url."""
    with running_server(browser_models, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def char_server(models_dir, char_models, tmp_path_factory):
    """A Streamlit server on the tiny LSTM and the tiny character model; yields its url. A test class
    deriving from browser_support.OnTinyCharServer gets it as `server`, and char_pg as `pg`."""
    root = link_models(tmp_path_factory.mktemp("char-server-models"),
                       {"tiny-lstm": models_dir / "tiny-lstm", "tiny-char": char_models / "tiny-char"})
    with running_server(root, tmp_path_factory.mktemp("char-server") / "streamlit.log") as url:
        yield url


@pytest.fixture
def pg(browser):
    """A new 1500 x 1000 page of the module's browser, closed after the test."""
    with fresh_page(browser, 1500, timeout=120_000) as page:
        yield page


@pytest.fixture
def char_pg(browser):
    """A new 1400 x 1000 page, for the tests on char_server (browser_support.OnTinyCharServer)."""
    with fresh_page(browser, 1400, timeout=120_000) as page:
        yield page


@pytest.fixture(autouse=True)
def _forget_fitted_probes():
    """The app lists the probes fitted on a model for every session of the server (ui.cached_causal);
    in the test process AppTests share that list, so a probe fitted by one test must not show up on
    another test's Explore page."""
    yield
    import sys
    mod = sys.modules.get("ui.cached_causal")
    if mod is not None:
        mod._FITTED.clear()
