"""No silent wrong numbers at import (issue 20): a relu RNN must say so, `--check REF` compares the
imported numbers with the user's own, Hugging Face-style folders, one-line refusals that name the way
out, what a line end means (`--eos-means`), and the bundle's file permissions."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file, save_model

from explorer import load_model, trace
from explorer.cli import main
from explorer.engine import log_probs
from explorer.importer import ImportRefused, import_checkpoint, import_to_bundle

from test_importer import TEXT, WORDS, _examples_model, _reference, _save, _vocab

ROOT = Path(__file__).resolve().parents[1]

#: The five lines that write REF in pytorch/examples' word_language_model (after main.py has built
#: `corpus` and trained `model`); docs/own-model.md shows them as they are here.
REF_LINES = '''\
import numpy as np, torch
text = open("check.txt", encoding="utf-8").read()   # the file you give to --check-text
ids = [corpus.dictionary.word2idx[w] for w in ["<eos>"] + text.replace("\\n", " <eos> ").split()]
model.eval(); logp = model(torch.tensor(ids).unsqueeze(1), model.init_hidden(1))[0]
np.save("ref.npy", logp.detach().reshape(len(ids), -1).numpy())   # [tokens, vocabulary] log-probabilities
'''
CHECK_TEXT = "The cat sat on the mat .\nMary loves John , and the dog sang a bird .\n"


class Dictionary:
    """pytorch/examples word_language_model/data.py's Dictionary."""

    def __init__(self):
        self.word2idx, self.idx2word = {}, []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]


class Corpus:
    def __init__(self, words):
        self.dictionary = Dictionary()
        for w in words:
            self.dictionary.add_word(w)


def _import(tmp_path, *args, capsys=None):
    """`python -m explorer import ARGS --out tmp/bundle` in-process: (status, stdout JSON or None, stderr)."""
    out = tmp_path / "bundle"
    rc = main(["import", *map(str, args), "--out", str(out)])
    got = capsys.readouterr()
    return rc, (json.loads(got.out) if rc == 0 else None), got.err, out


# ---------------------------------------------------------------------------------- relu RNNs
def test_relu_rnn_imported_with_nonlinearity_relu_matches_its_own_forward(tmp_path):
    m = _examples_model("RNN_RELU", 16, 16, tied=True)
    model, report = import_checkpoint(_save(m, tmp_path, "pt"), _vocab(tmp_path), nonlinearity="relu")
    assert model.config.cell == "rnn" and model.config.nonlinearity == "relu"
    assert report["config"]["nonlinearity"] == "relu"
    tr = trace(model, TEXT, full_probs=True)
    logp, top_h = _reference(m, [t.id for t in tr.tokens])
    assert abs(tr.layers[-1].h - top_h).max() < 1e-5
    assert abs(log_probs(model.lm, tr.layers[-1].h[None].copy())[0] - logp).max() < 1e-5


def test_relu_rnn_without_nonlinearity_is_refused_naming_the_flag(tmp_path, capsys):
    m = _examples_model("RNN_RELU", 16, 16, tied=True)
    w = _save(m, tmp_path, "pt")
    rc, _, err, out = _import(tmp_path, "--weights", w, "--vocab", _vocab(tmp_path), capsys=capsys)
    assert rc == 2 and "--nonlinearity" in err and err.count("\n") == 1 and not out.exists()
    rc, got, _, out = _import(tmp_path, "--weights", w, "--vocab", _vocab(tmp_path), "--nonlinearity", "relu",
                              capsys=capsys)
    assert rc == 0 and got["config"]["nonlinearity"] == "relu"
    assert load_model(out).card["config"]["nonlinearity"] == "relu"
    with pytest.raises(ImportRefused, match="--nonlinearity relu: only a plain RNN"):
        import_checkpoint(_save(_examples_model("LSTM"), tmp_path, "pt"), _vocab(tmp_path), nonlinearity="relu")


@pytest.mark.parametrize("entry", [{"rnn_type": "RNN_RELU"}, {"nonlinearity": "relu"},
                                   {"args": {"model": "RNN_RELU"}}])
def test_a_checkpoint_that_records_relu_needs_no_flag(tmp_path, entry):
    m = _examples_model("RNN_RELU", 16, 16, tied=True)
    p = tmp_path / "ckpt.pt"
    torch.save({"model": m.state_dict(), "epoch": 3, **entry}, p)
    model, report = import_checkpoint(p, _vocab(tmp_path))
    assert model.config.nonlinearity == "relu"
    assert any("relu" in n and "records" in n for n in report["notes"])
    with pytest.raises(ImportRefused, match="--nonlinearity tanh, but the checkpoint records relu"):
        import_checkpoint(p, _vocab(tmp_path), nonlinearity="tanh")


# ------------------------------------------------------------------------------ import --check
def _ref_from_the_readme_lines(tmp_path, m, monkeypatch) -> Path:
    """Run REF_LINES as a user would, beside a pytorch/examples-like model and corpus."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "check.txt").write_text(CHECK_TEXT, encoding="utf-8")
    exec(REF_LINES, {"model": m, "corpus": Corpus(WORDS)})
    return tmp_path / "ref.npy"


def test_check_with_the_readme_lines_passes_and_prints_the_largest_difference(tmp_path, capsys, monkeypatch):
    m = _examples_model("LSTM", 12, 20)
    ref = _ref_from_the_readme_lines(tmp_path, m, monkeypatch)
    assert np.load(ref).shape == (1 + len(CHECK_TEXT.split()) + 2, len(WORDS))
    rc, got, err, out = _import(tmp_path, "--weights", _save(m, tmp_path, "pt"), "--vocab", _vocab(tmp_path),
                                "--check", ref, "--check-text", tmp_path / "check.txt", capsys=capsys)
    assert rc == 0, err
    c = got["check"]
    assert c["max_abs_diff"] < 1e-4 and c["passed"] and c["tokens"] == 21 and c["ref_is"] == "log-probabilities"
    assert "<eos> first" in c["rule"] and "whitespace" in c["rule"]
    assert load_model(out).card["imported"]["check"]["max_abs_diff"] == c["max_abs_diff"]


def test_the_docs_show_the_ref_lines_this_test_runs():
    assert REF_LINES in (ROOT / "docs" / "own-model.md").read_text(encoding="utf-8")


def test_check_accepts_logits_in_safetensors_and_reads_without_the_leading_eos(tmp_path, capsys):
    m = _examples_model("GRU", 10, 14)
    text = "the dog sat on a mat ."
    (tmp_path / "t.txt").write_text(text)
    ids = [WORDS.index(w) for w in text.split()]                # no leading <eos>: a zero state
    with torch.no_grad():
        out, _ = m.rnn(m.encoder(torch.tensor(ids)[:, None]))
        logits = m.decoder(out[:, 0]) + 3.0                     # logits, not normalised
    save_file({"logits": logits.contiguous()}, str(tmp_path / "ref.safetensors"))
    rc, got, err, _ = _import(tmp_path, "--weights", _save(m, tmp_path, "pt"), "--vocab", _vocab(tmp_path),
                              "--check", tmp_path / "ref.safetensors", "--check-text", tmp_path / "t.txt",
                              capsys=capsys)
    assert rc == 0, err
    assert got["check"]["ref_is"].startswith("logits") and got["check"]["max_abs_diff"] < 1e-4
    assert "no <eos> first" in got["check"]["rule"]


def test_a_wrong_ref_is_refused_with_the_largest_difference_and_no_bundle(tmp_path, capsys, monkeypatch):
    ref = _ref_from_the_readme_lines(tmp_path, _examples_model("LSTM", 12, 20, seed=1), monkeypatch)
    w = _save(_examples_model("LSTM", 12, 20, seed=0), tmp_path, "pt")
    rc, _, err, out = _import(tmp_path, "--weights", w, "--vocab", _vocab(tmp_path), "--check", ref,
                              "--check-text", tmp_path / "check.txt", capsys=capsys)
    assert rc == 2 and err.count("\n") == 1 and not out.exists()
    assert "largest difference" in err and "1e-04" in err and "<eos> first" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]   # no temporary left
    rc, _, err, _ = _import(tmp_path, "--weights", w, "--vocab", _vocab(tmp_path), "--check", ref, capsys=capsys)
    assert rc == 2 and "--check needs --check-text" in err


def test_a_ref_of_the_wrong_shape_says_the_counts(tmp_path, capsys):
    m = _examples_model("LSTM", 12, 20)
    (tmp_path / "t.txt").write_text("the cat sat")
    np.save(tmp_path / "ref.npy", np.zeros((7, len(WORDS)), np.float32))
    rc, _, err, _ = _import(tmp_path, "--weights", _save(m, tmp_path, "pt"), "--vocab", _vocab(tmp_path),
                            "--check", tmp_path / "ref.npy", "--check-text", tmp_path / "t.txt", capsys=capsys)
    assert rc == 2 and "7 rows" in err and "4 (with the leading <eos>) or 3" in err


# ----------------------------------------------------------------------- Hugging Face-style folders
@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_a_hugging_face_style_folder_imports(tmp_path, capsys, weights):
    m = _examples_model("RNN_RELU", 16, 16, tied=True)
    d = tmp_path / "hf"
    d.mkdir()
    if weights == "model.safetensors":
        save_model(m, str(d / weights))
    else:
        torch.save(m.state_dict(), d / weights)
    (d / "config.json").write_text(json.dumps({"model_type": "rnn", "rnn_type": "RNN_RELU"}))
    (d / "vocab.json").write_text(json.dumps(WORDS))
    rc, got, err, out = _import(tmp_path, "--weights", d, capsys=capsys)
    assert rc == 0, err
    assert got["weights"] == f"hf/{weights}" and got["vocab"] == "vocab.json"
    assert got["config"]["nonlinearity"] == "relu"
    tr = trace(load_model(out), TEXT, full_probs=True)
    logp, _ = _reference(m, [t.id for t in tr.tokens])
    assert abs(log_probs(load_model(out).lm, tr.layers[-1].h[None].copy())[0] - logp).max() < 1e-5


def test_a_folder_without_weights_or_vocabulary_says_what_it_lacks(tmp_path, capsys):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "README.md").write_text("hi")
    rc, _, err, _ = _import(tmp_path, "--weights", d, capsys=capsys)
    assert rc == 2 and "no such file" not in err
    assert "lacks model.safetensors or pytorch_model.bin" in err and "README.md" in err
    save_model(_examples_model(), str(d / "model.safetensors"))
    rc, _, err, _ = _import(tmp_path, "--weights", d, capsys=capsys)
    assert rc == 2 and "no such file" not in err and "lacks a vocabulary" in err and "--vocab" in err


# ----------------------------------------------------------------------------------- messages
def test_two_state_dicts_are_both_named_and_key_picks_one(tmp_path, capsys):
    a, b = _examples_model("LSTM", 8, 8, seed=0), _examples_model("LSTM", 8, 8, seed=5)
    p = tmp_path / "ckpt.pt"
    torch.save({"model": a.state_dict(), "ema": b.state_dict(), "step": 10}, p)
    with pytest.raises(ImportRefused) as e:
        import_checkpoint(p, _vocab(tmp_path))
    msg = str(e.value)
    assert "'model'" in msg and "'ema'" in msg and "--key" in msg
    model, report = import_checkpoint(p, _vocab(tmp_path), key="ema")
    assert torch.equal(model.lm.embedding.weight, b.encoder.weight.detach())
    assert any("'ema' entry" in n for n in report["notes"])
    with pytest.raises(ImportRefused, match="--key nope: .* has no entry 'nope'"):
        import_checkpoint(p, _vocab(tmp_path), key="nope")
    flat = tmp_path / "both.safetensors"       # the same two models in one flat file: prefixes
    save_file({f"{k}.{n}": t.contiguous() for k, mm in (("model", a), ("ema", b))
               for n, t in mm.state_dict().items()}, str(flat))
    with pytest.raises(ImportRefused, match=r"--key ema or --key model"):
        import_checkpoint(flat, _vocab(tmp_path))
    model, _ = import_checkpoint(flat, _vocab(tmp_path), key="ema")
    assert torch.equal(model.lm.embedding.weight, b.encoder.weight.detach())


def test_a_safetensors_file_cut_inside_its_header_is_called_truncated(tmp_path):
    p = _save(_examples_model(), tmp_path, "safetensors")
    data = p.read_bytes()
    n = int.from_bytes(data[:8], "little")
    for cut in (40, 8 + n // 2, len(data) - 10):       # inside the header, and inside the tensors
        q = tmp_path / f"cut{cut}.safetensors"
        q.write_bytes(data[:cut])
        with pytest.raises(ImportRefused, match="truncated"):
            import_checkpoint(q, _vocab(tmp_path))


def test_a_raw_pickle_gets_one_line_and_no_torch_warning(tmp_path):
    p = tmp_path / "state.pkl"
    p.write_bytes(pickle.dumps(dict(_examples_model().state_dict())))
    r = subprocess.run([sys.executable, "-m", "explorer", "import", "--weights", str(p), "--vocab",
                        str(_vocab(tmp_path)), "--out", str(tmp_path / "b")], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "default"}, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: state.pkl is a plain Python pickle") and "refused unopened" in lines[0]


def test_the_layer_norm_refusal_never_advises_dropping_the_tensors(tmp_path):
    sd = dict(_examples_model("LSTM", 8, 8).state_dict())
    for k in ("rnn.ln_ih_l0", "rnn.ln_hh_l0", "rnn.ln_c_l0"):
        sd[f"{k}.weight"], sd[f"{k}.bias"] = torch.ones(8), torch.zeros(8)
    p = tmp_path / "w.pt"
    torch.save(sd, p)
    with pytest.raises(ImportRefused) as e:
        import_checkpoint(p, _vocab(tmp_path))
    msg = str(e.value)
    assert "drop" not in msg.lower() and "\n" not in msg
    assert "LayerNorm inside the recurrence is not a stock nn.LSTM" in msg and "cannot be traced exactly" in msg
    assert "rnn.ln_c_l0.bias" in msg


# ---------------------------------------------------------------------------- what a line end means
def test_eos_means_is_recorded_in_the_card(tmp_path, capsys):
    w, v = _save(_examples_model(), tmp_path, "pt"), _vocab(tmp_path)
    rc, got, _, out = _import(tmp_path, "--weights", w, "--vocab", v, capsys=capsys)
    assert rc == 0 and got["tokenizer"]["eos_means"] == "line"                  # pytorch/examples' default
    assert load_model(out).card["tokenizer"]["eos_means"] == "line"
    rc, _, _, out = _import(tmp_path, "--weights", w, "--vocab", v, "--eos-means", "paragraph", capsys=capsys)
    assert rc == 0 and load_model(out).card["tokenizer"]["eos_means"] == "paragraph"
    rc, _, _, out = _import(tmp_path, "--weights", w, "--vocab", v, "--tokenizer", "word", capsys=capsys)
    assert rc == 0 and load_model(out).card["tokenizer"]["eos_means"] == "paragraph"   # a blank line is <eos>
    rc, _, err, _ = _import(tmp_path, "--weights", w, "--vocab", v, "--tokenizer", "word", "--eos-means", "line",
                            capsys=capsys)
    assert rc == 2 and "only at a blank line" in err


def test_eos_means_is_read_from_a_sample_text(tmp_path, capsys):
    w, v = _save(_examples_model(), tmp_path, "pt"), _vocab(tmp_path)
    wrapped = tmp_path / "wrapped.txt"       # hard-wrapped prose: line ends inside paragraphs
    wrapped.write_text("The cat sat on\nthe mat .\n\nMary loves\nJohn .\n")
    per_line = tmp_path / "wiki.txt"         # WikiText-style: one paragraph a line
    per_line.write_text(" = Cats = \n \n The cat sat on the mat .\n \n Mary loves John .\n")
    rc, got, _, _ = _import(tmp_path, "--weights", w, "--vocab", v, "--sample-text", wrapped, capsys=capsys)
    assert rc == 0 and got["tokenizer"]["eos_means"] == "line"
    assert any("wrapped.txt" in n and "line 1" in n for n in got["notes"])
    rc, got, _, _ = _import(tmp_path, "--weights", w, "--vocab", v, "--sample-text", per_line, capsys=capsys)
    assert rc == 0 and got["tokenizer"]["eos_means"] == "paragraph"
    rc, _, err, _ = _import(tmp_path, "--weights", w, "--vocab", v, "--sample-text", wrapped,
                            "--eos-means", "paragraph", capsys=capsys)
    assert rc == 2 and "--eos-means paragraph, but wrapped.txt" in err


# --------------------------------------------------------------------------------- permissions
def test_an_imported_bundle_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        import_to_bundle(tmp_path / "b", _save(_examples_model(), tmp_path, "pt"), _vocab(tmp_path))
    finally:
        os.umask(old)
    b = tmp_path / "b"
    assert b.stat().st_mode & 0o777 == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in b.iterdir()} == \
        {"weights.safetensors": 0o644, "tokenizer.json": 0o644, "card.json": 0o644}
