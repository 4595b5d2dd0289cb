"""The command line and the Python API as an engineer expects them (issue 20, part 6): a list of
texts traced as a batch, load_model(device=) never ignored, trace --file / stdin, score keeping
one output line per input line, unknown --words reported, six significant figures."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import explorer as E
from conftest import ROOT
from explorer.errors import InputError

TEXTS = ["A girl walked into a bar, and she said hello", "Mary loves John.", "", "John"]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_list_of_texts_is_traced_as_a_batch(cell, tiny_lstm, tiny_gru, tiny_rnn, monkeypatch):
    m = {"lstm": tiny_lstm, "gru": tiny_gru, "rnn": tiny_rnn}[cell]
    import importlib
    T = importlib.import_module("explorer.trace")
    calls = []
    real = T.run_layers_batch
    monkeypatch.setattr(T, "run_layers_batch", lambda lm, rows: calls.append(len(rows)) or real(lm, rows))
    got = E.trace(m, TEXTS)
    assert isinstance(got, list) and len(got) == len(TEXTS) and calls == [4]     # one batch (an empty text reads the boundary alone)
    for tr, text in zip(got, TEXTS):
        one = E.trace(m, text)
        assert tr.text == text and tr.words == one.words
        for a, b in zip(tr.layers, one.layers):
            for q in a.names:
                np.testing.assert_allclose(a[q], b[q], atol=1e-5)
        np.testing.assert_allclose(tr.next_prob, one.next_prob, rtol=1e-4)
        np.testing.assert_array_equal(tr.next_rank, one.next_rank)
        for s, t in zip(tr.final_state, one.final_state):
            np.testing.assert_allclose(s.numpy(), t.numpy(), atol=1e-5)
    with pytest.raises(InputError):
        E.trace(m, TEXTS, state=one.state())


def test_load_model_device_is_used_or_refused(models_dir):
    path = next(p for p in sorted(models_dir.iterdir()) if (p / "card.json").is_file())
    m = E.load_model(path, device="cpu")
    assert m.lm.decoder.weight.device.type == "cpu"
    for bad in ("nonsense", "meta"):
        with pytest.raises(InputError, match="device"):
            E.load_model(path, device=bad)
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            E.load_model(path, device="cuda")


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_trace_reads_a_file_or_stdin_and_score_keeps_every_line(models_dir, tmp_path):
    model = str(next(p for p in sorted(models_dir.iterdir()) if (p / "card.json").is_file()))
    f = tmp_path / "t.txt"
    f.write_text("Mary loves John.", encoding="utf-8")
    a = _cli("trace", "--model", model, "--file", str(f), "--no-states")
    b = _cli("trace", "--model", model, "--file", "-", "--no-states", stdin="Mary loves John.")
    c = _cli("trace", "--model", model, "Mary loves John.", "--no-states")
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, b.stderr)
    assert json.loads(a.stdout) == json.loads(b.stdout) == json.loads(c.stdout)
    both = _cli("trace", "--model", model, "x", "--file", str(f))
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1
    lines = "Mary loves John.\n\nJohn loves Mary.\n   \n"
    (tmp_path / "s.txt").write_text(lines, encoding="utf-8")
    s = _cli("score", "--model", model, str(tmp_path / "s.txt"))
    assert s.returncode == 0, s.stderr
    rows = [json.loads(x) for x in s.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["logprob"] is None and rows[3]["logprob"] is None
    assert rows[0]["text"] == "Mary loves John." and rows[0]["logprob"] < 0


def test_unknown_words_are_reported(tiny_lstm):
    from explorer.analysis.intervene import Intervention, intervene
    r = intervene(tiny_lstm, "a girl said", Intervention(1, "h", (1,), "set", 0.0), words=("miss", "zyzzyva", "sir"))
    assert r.words == ("miss", "sir") and r.unknown_words == ("zyzzyva",)
    assert r.to_json()["unknown_words"] == ["zyzzyva"]


def test_public_functions_for_import_eval_syneval_index_compare():
    """Each command an engineer scripts has a public Python function (listed in the README's API)."""
    from explorer.analysis.compare import compare
    from explorer.corpus.index import build_index
    from explorer.importer import import_to_bundle
    from explorer.training.evals import evaluate_corpus, syneval
    import inspect
    for fn in (compare, build_index, import_to_bundle, evaluate_corpus, syneval):
        assert fn.__doc__ and not fn.__name__.startswith("_")
    assert list(inspect.signature(evaluate_corpus).parameters)[:3] == ["model", "corpus", "split"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("compare", "build_index", "import_to_bundle", "evaluate_corpus", "syneval"):
        assert name in readme, name


def test_evaluate_corpus_matches_the_cli(models_dir, tmp_path):
    from explorer.training.evals import evaluate_corpus
    for n in ("train", "valid", "test"):
        (tmp_path / f"{n}.txt").write_text("Mary loves John .\nJohn loves Mary .\n" * 5, encoding="utf-8")
    model = next(p for p in sorted(models_dir.iterdir()) if (p / "card.json").is_file())
    got = evaluate_corpus(E.load_model(model), tmp_path, "test")
    r = _cli("eval", "--model", str(model), "--corpus", str(tmp_path), "--split", "test")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == got and got["files"] == ["test.txt"]


def test_json_output_keeps_significant_figures_not_decimal_places():
    """No to_json (nor the units command) rounds to a number of decimal places: 4.1e-06 must not print
    as 0.0 (issue 20: JSON numbers keep 6 significant figures, explorer.trace.significant)."""
    import ast
    bad = []
    files = [ROOT / "explorer" / "corpus" / "commands.py"] + sorted((ROOT / "explorer").rglob("*.py"))
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or fn.name not in ("to_json", "cmd_units"):
                continue
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and len(node.args) == 2
                        and ((isinstance(node.func, ast.Name) and node.func.id == "round")
                             or (isinstance(node.func, ast.Attribute) and node.func.attr == "round"))):
                    bad.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert bad == []
