"""The sidebar's checkpoint import through AppTest: a staged weights file + vocabulary shows what was
inferred, 'Use this model' selects it, and a bad pair says what is wrong (ui/importing.py)."""
from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from test_importer import WORDS, _examples_model

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60


@dataclass
class Upload:
    """What st.file_uploader gives the callback (name, file_id, getvalue)."""
    name: str
    data: bytes
    file_id: str = ""

    def getvalue(self) -> bytes:
        return self.data


def _files(tmp_path, words=WORDS, cell="LSTM"):
    m = _examples_model(cell, 12, 20) if cell == "LSTM" else _examples_model(cell, 16, 16, tied=True)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    return [Upload("model_state.pt", (tmp_path / "w.pt").read_bytes(), "a"),
            Upload("vocab.json", json.dumps(words).encode(), "b")]


def test_split_files_says_what_is_missing(tmp_path):
    from ui import importing
    w, v = _files(tmp_path)
    assert importing.split_files([w, v])[:2] == (w, v)
    assert "needs its vocabulary" in importing.split_files([w])[2]
    assert "add the weights file" in importing.split_files([v])[2]
    newer = Upload("other.safetensors", b"x", "c")
    assert importing.split_files([w, v, newer])[0] is newer      # the latest of each kind


@pytest.fixture
def app(models_dir, monkeypatch):
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models_dir))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def test_staged_import_shows_what_was_inferred_then_is_used(app, tmp_path):
    from ui import importing
    app.session_state["_import"] = importing.stage(_files(tmp_path))
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    report = "\n".join(m.value for m in app.markdown)
    assert "pytorch/examples word_language_model" in report
    assert "LSTM · 2 layers × 20 units · embedding 12 · 18 tokens · untied decoder" in report
    assert app.session_state["model"].endswith("tiny-lstm")       # nothing is used before the click
    app.selectbox(key="imp_cell").set_value("gru").run()           # a wrong cell is named
    assert any("--cell gru, but the weights are an LSTM" in e.value for e in app.error)
    app.selectbox(key="imp_cell").set_value("").run()
    app.text_input(key="imp_name").input("my-import").run()
    app.button(key="imp_use").click().run()
    assert not app.exception
    assert "imported-" in app.session_state["model"]
    assert any("Using my-import (imported: model_state.pt)" in s.value for s in app.success)
    assert any("LSTM · 2 layers × 20 units" in c.value for c in app.sidebar.caption)
    import explorer as E
    card = E.load_model(app.session_state["model"]).card
    assert card["imported"]["weights"] == "model_state.pt" and card["name"] == "my-import"


def test_a_vocabulary_that_does_not_fit_is_refused(app, tmp_path):
    from ui import importing
    app.session_state["_import"] = importing.stage(_files(tmp_path, WORDS[:-3]))
    app.run()
    assert not app.exception
    assert any("has 15 tokens but the embedding has 18 rows" in e.value for e in app.error)
    assert all(b.key != "imp_use" for b in app.button)


# ------------------------------------------------------------------ issue 20: no silent wrong numbers
@pytest.fixture
def uploads_root(tmp_path, monkeypatch):
    """The app's uploads folder, under a temporary folder of this test's own."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d / "rnn-explorer-uploads"


def _left(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_a_refused_upload_leaves_no_file_behind(app, tmp_path, uploads_root):
    from ui import importing
    raw = Upload("evil.pt", b"\x80\x02}q\x00.", "a")                 # a plain pickle
    for files in ([raw, Upload("vocab.json", json.dumps(WORDS).encode(), "b")], _files(tmp_path, WORDS[:-3])):
        app.session_state["_import"] = importing.stage(files)
        app.run()
        assert not app.exception
        assert any("cannot be imported" in e.value for e in app.error), [e.value for e in app.error]
        assert all(b.key != "imp_use" for b in app.button)
        assert _left(uploads_root) == []


def test_a_relu_rnn_asks_for_its_nonlinearity_in_the_app(app, tmp_path, uploads_root):
    from ui import importing
    app.session_state["_import"] = importing.stage(_files(tmp_path, cell="RNN_RELU"))
    app.run()
    assert any("--nonlinearity" in e.value for e in app.error)
    assert _left(uploads_root) == []
    app.selectbox(key="imp_nonlin").set_value("relu").run()          # the upload is still there to re-read
    assert not app.error, [e.value for e in app.error]
    assert "RNN (relu) · 2 layers × 16 units" in "\n".join(m.value for m in app.markdown)
    app.button(key="imp_use").click().run()
    import explorer as E
    assert E.load_model(app.session_state["model"]).config.nonlinearity == "relu"


def _ref(seed=0, text="The cat sat on the mat ."):
    m = _examples_model("LSTM", 12, 20, seed=seed)
    ids = [WORDS.index("<eos>")] + [WORDS.index(w) for w in text.split()]
    with torch.no_grad():
        logp = m(torch.tensor(ids)[:, None], m.init_hidden(1))[0]
    buf = io.BytesIO()
    np.save(buf, logp.numpy())
    return Upload("ref.npy", buf.getvalue(), f"ref{seed}")


def test_an_uploaded_ref_is_checked_before_the_model_is_used(app, tmp_path, uploads_root):
    from ui import importing
    app.session_state["_import"] = importing.stage(_files(tmp_path) + [_ref(seed=1)])
    app.run()
    assert all(b.key != "imp_use" for b in app.button)                  # no text yet: nothing to use
    app.text_area(key="imp_check_text").input("The cat sat on the mat .").run()
    err = [e.value for e in app.error]
    assert any("largest difference" in e and "above 1e-04" in e for e in err), err
    assert all(b.key != "imp_use" for b in app.button)
    app.session_state["_import"] = importing.stage(_files(tmp_path) + [_ref(seed=0)])
    app.run()
    ok = [s.value for s in app.success]
    assert any("largest difference" in s and "<eos> first, then the 7 tokens" in s for s in ok), ok
    app.button(key="imp_use").click().run()
    import explorer as E
    check = E.load_model(app.session_state["model"]).card["imported"]["check"]
    assert check["passed"] and check["max_abs_diff"] < 1e-4
    assert [p for p in _left(uploads_root) if "/" not in p and not p.startswith("imported-")] == []


def test_a_kept_import_is_listed_in_every_new_session(tmp_path, models_dir, monkeypatch, uploads_root):
    from ui import importing
    root = tmp_path / "models"
    root.mkdir()
    (root / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(root))
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.session_state["_import"] = importing.stage(_files(tmp_path))
    app.run()
    app.text_input(key="imp_name").input("kept lstm").run()
    app.checkbox(key="imp_keep").check().run()
    app.button(key="imp_use").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert (root / "kept_lstm" / "card.json").is_file() and app.session_state["model"] == str(root / "kept_lstm")
    assert (root / "kept_lstm" / "weights.safetensors").stat().st_mode & 0o077 == 0o044   # readable by others
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
    fresh.run()
    assert "kept_lstm" in fresh.selectbox(key="model").options
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)        # the name is taken now
    again.session_state["_import"] = importing.stage(_files(tmp_path))
    again.run()
    again.text_input(key="imp_name").input("kept lstm").run()
    again.checkbox(key="imp_keep").check().run()
    again.button(key="imp_use").click().run()
    assert any("already in the models folder" in e.value for e in again.error)
