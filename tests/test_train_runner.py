"""Training in the background (explorer.training.runner) and the Train page through AppTest: one run
per server, a status file with progress, Stop saves a checkpoint and a later run resumes from it."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import explorer as E
from explorer.training import runner as R

from apptest_support import new_app

WORDS = "the cat sat on the mat and the dog saw the cat . mary loves john . john loves mary .".split()


def _text(path: Path, paragraphs: int, seed: int = 0) -> Path:
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(" ".join(rnd.choice(WORDS) for _ in range(60)) for _ in range(paragraphs)))
    return path


def _wait(run, states, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = R.status(run)
        if s and s.get("state") in states:
            return s
        time.sleep(0.5)
    raise AssertionError(f"run did not reach {states}: {R.status(run)}\n{(Path(run) / 'log.txt').read_text()[-2000:]}")


@pytest.mark.slow
def test_a_dry_run_writes_a_bundle_and_frees_the_slot(tmp_path):
    root, models = tmp_path / "runs", tmp_path / "models"
    corpus = _text(tmp_path / "text" / "a.txt", 100).parent
    run = R.start("dry", corpus, models, preset="tiny", minutes=5, dry_run=True, root=root)
    with pytest.raises(E.ExplorerError, match="already going on this server"):
        R.start("other", corpus, models, root=root)
    s = _wait(run, R.FINAL)
    assert s["state"] == "done", s
    m = E.load_model(models / "dry")
    assert m.card["status"] == "complete" and "app: train dry (tiny" in m.card["training"]["command"]
    assert R.busy(root) is None
    assert [p.name for p in E.list_models(models)] == ["dry"]          # what the model picker lists


@pytest.mark.slow
def test_stop_saves_a_checkpoint_and_a_later_run_resumes(tmp_path):
    root, models = tmp_path / "runs", tmp_path / "models"
    corpus = _text(tmp_path / "text" / "a.txt", 4000).parent
    run = R.start("long", corpus, models, preset="tiny", minutes=30, root=root)
    deadline = time.time() + 120
    while time.time() < deadline:                                       # until batches are running
        s = R.status(run)
        if s.get("state") == "running" and (s.get("batch") or 0) >= 2:
            break
        time.sleep(0.3)
    assert 0 <= s["fraction"] <= 1 and s["loss"] > 0 and s["tokens_per_s"] > 0 and s["eta_s"] > 0
    assert R.stop(root)
    s = _wait(run, R.FINAL)
    assert s["state"] == "stopped" and "checkpoint" in s["message"]
    assert R.checkpoint_of(models / "long").is_dir()
    run = R.start("long", corpus, models, preset="tiny", minutes=0.2, resume=True, root=root)
    s = _wait(run, R.FINAL)
    assert s["state"] in ("done", "stopped"), s
    assert "resumed at epoch" in (Path(run) / "log.txt").read_text()


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(E.ExplorerError, match="model name"):
        R.start("../x", tmp_path, tmp_path, root=tmp_path / "r")
    with pytest.raises(E.ExplorerError, match="holds no .txt files"):
        R.start("x", tmp_path, tmp_path, root=tmp_path / "r")
    _text(tmp_path / "t" / "a.txt", 5)
    with pytest.raises(E.ExplorerError, match="no checkpoint to resume"):
        R.start("x", tmp_path / "t", tmp_path / "m", resume=True, root=tmp_path / "r")


@pytest.mark.slow
def test_train_page_starts_a_run_and_shows_the_bundle(tmp_path, monkeypatch, models_dir):
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    monkeypatch.setenv("RNN_EXPLORER_RUNS", str(tmp_path / "runs"))
    corpus = _text(tmp_path / "text" / "a.txt", 60).parent
    at = new_app(models, monkeypatch).run()
    at.switch_page("ui/pages/train.py").run()
    assert not at.exception
    at.text_input(key="train_folder").input(str(corpus))
    at.text_input(key="train_name").input("page-run")
    at.checkbox(key="train_dry").check()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _wait(tmp_path / "runs" / "page-run", R.FINAL)
    at.run()
    assert not at.exception
    assert any("page-run" in s.value and "finished" in s.value for s in at.success)
    assert "page-run" in [Path(p).name for p in at.selectbox(key="model").options] or \
        any("page-run" in o for o in at.selectbox(key="model").options)
    at.button(key="train_open").click().run()
    assert at.session_state["model"].endswith("page-run")
