"""Character-model cells against the position in the line (explorer.analysis.char_cells)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import explorer as E
from explorer.analysis import char_cells as CC
from explorer.corpus import queries as Q

from conftest import ROOT, SHARED, make_char_model as _char_model

SHAKESPEARE = SHARED / "data" / "shakespeare" / "input.txt"
BUNDLE = ROOT / "pretrained" / "shakespeare-char"
LINES = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" \
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n"


@pytest.fixture
def one_thread():
    """One intra-op thread, as the app uses on a 2-core machine (see ui/cached._threads): a trace of a
    few thousand characters is small work that OpenMP threads only slow down on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_line_columns():
    assert CC.line_columns("ab\ncde\n\nf").tolist() == [0, 1, -1, 0, 1, 2, -1, -1, 0]


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X[:, 2] * 3 + rng.normal(size=200)
    want = [np.corrcoef(X[:, k], y)[0, 1] for k in range(5)]
    np.testing.assert_allclose(CC._pearson(X, y), want, rtol=1e-10)
    assert CC._pearson(np.ones((10, 1)), np.arange(10.0))[0] == 0.0


def test_pieces_equal_one_trace_and_scores_agree_with_reference(one_thread):
    m = _char_model(LINES)
    text = LINES * 3
    chars, vals = CC.trace_chars(m, text, piece=37)          # cuts anywhere: every character is a token
    whole = E.trace(m, text)
    assert "".join(chars) == text
    for lay in whole.layers:
        np.testing.assert_allclose(vals[(lay.layer, "c")], lay.values["c"][1:], atol=1e-5)     # keys: layer from 1
        np.testing.assert_allclose(vals[(lay.layer, "h")], lay.values["h"][1:], atol=1e-5)
    s = CC.find_line_cells(m, text)
    assert len(s.table) == 2 * 2 * 12 and s.n_quoted == 0 and s.table["auc_quote"].isna().all()
    best = s.best
    col = CC.line_columns(chars)
    v = s.unit(int(best.layer), best.quantity, int(best.unit))
    assert best.r_position == pytest.approx(np.corrcoef(v[col >= 0], col[col >= 0])[0, 1], abs=1e-9)
    assert abs(best.r_position) == pytest.approx(s.table["abs_r"].max())
    late = (col[col >= 0] >= 40)
    f16 = v[col >= 0].astype(np.float16).astype(np.float64)     # queries.auc works on float16 values
    assert best.auc_late == pytest.approx(roc_auc_score(late, f16), abs=1e-9)


def test_quotes_scored_when_present():
    text = ('He said "I will go now, and you stay here" and left.\nShe said "no, I will not stay here at all".\n'
            * 3)
    s = CC.find_line_cells(_char_model(text), text)
    assert s.n_quoted >= CC.MIN_QUOTED and s.table["auc_quote"].notna().all()


def test_refuses_word_model_and_single_line(tiny_lstm):
    with pytest.raises(ValueError, match="characters"):
        CC.find_line_cells(tiny_lstm, LINES)
    with pytest.raises(ValueError, match="several lines"):
        CC.find_line_cells(_char_model(LINES), "one line only")


def test_verdict():
    assert CC.verdict(0.9, 0.5) == "well" and CC.verdict(0.1, 0.9) == "well"
    assert CC.verdict(-0.4, 0.6) == "partly" and CC.verdict(0.1, 0.55) == "poorly"


@pytest.mark.skipif(not (SHAKESPEARE.is_file() and (BUNDLE / "weights.safetensors").is_file()),
                    reason=f"needs {SHAKESPEARE} (../shared is not part of the repository) and {BUNDLE}")
def test_shakespeare_char_has_a_line_position_cell(one_thread):
    """Karpathy et al. 2015: a character LSTM trained on text with line breaks grows a cell that counts
    along the line. Measured on the first 6,000 characters of tiny Shakespeare."""
    m = E.load_model(BUNDLE)
    text = SHAKESPEARE.read_text(encoding="utf-8")[:6000]
    s = CC.find_line_cells(m, text)
    best = s.best
    assert abs(best.r_position) > 0.6, s.table.head()
    assert abs(best.auc_late - 0.5) > 0.3
    assert CC.verdict(best.r_position, best.auc_late) == "well"
    # a random direction does not track the line: the median unit is far weaker
    assert s.table["abs_r"].median() < 0.3


def test_script_prints_json_and_one_line_errors(tmp_path, one_thread, capsys):
    import json
    import runpy
    from explorer import save_bundle
    script = runpy.run_path(str(ROOT / "scripts" / "char_cells.py"))
    m = _char_model(LINES)
    save_bundle(tmp_path / "tiny-char", m.lm, m.tokenizer, {"name": "tiny-char", "metrics": {}})
    (tmp_path / "t.txt").write_text(LINES * 4, encoding="utf-8")
    assert script["main"](["--model", str(tmp_path / "tiny-char"), "--text", str(tmp_path / "t.txt"), "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chars"] == len(LINES * 4) and out["newlines"] == 16 and out["quoted_chars"] == 0
    assert len(out["best"]) == 3 and out["best"][0]["auc_quote"] is None
    assert abs(out["best"][0]["r_position"]) >= abs(out["best"][1]["r_position"])
    assert script["main"](["--model", str(tmp_path / "tiny-char"), "--text", str(tmp_path / "nope.txt")]) == 2
    assert script["main"](["--model", str(ROOT / "tests"), "--text", str(tmp_path / "t.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") for e in err)
