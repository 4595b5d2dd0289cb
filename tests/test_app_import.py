"""The sidebar's checkpoint import through AppTest: a staged weights file + vocabulary shows what was
inferred, 'Use this model' selects it, and a bad pair says what is wrong (ui/importing.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
    m = _examples_model(cell, 12, 20)
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
