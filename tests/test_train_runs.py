"""Background training runs from the app (issue 22, item 6): a run uses its time budget (no early stop
that ends it after a few seconds), its status shows real progress, only its owner stops it, and after
Stop the form comes back as it was with Resume ticked."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import explorer.training.train as T
from explorer.errors import ExplorerError
from explorer.training import runner
from explorer.training.train import TrainConfig, train

from apptest_support import assert_clean, new_app
from conftest import write_split_corpus


@pytest.fixture
def corpus(tmp_path):
    return write_split_corpus(tmp_path / "corpus")


class _Clock:
    """A clock that moves 0.25 s at every reading: the run's schedule, without waiting for it."""

    def __init__(self):
        self.t = time.time()

    def time(self):
        self.t += 0.25
        return self.t


def test_a_budgeted_run_trains_until_its_budget_with_a_linear_rate(corpus, tmp_path, monkeypatch):
    """Validation never improves after the first epoch (as on a short text): the plateau schedule stops
    after `patience` epochs; the budget schedule goes on, the rate falling linearly, until the budget."""
    ppl = iter(range(100, 100_000))
    monkeypatch.setattr(T, "_estimate_loss", lambda cfg, lm, w, data: {"perplexity": float(next(ppl)), "nll": 1.0,
                                                                       "tokens": 1})
    monkeypatch.setattr(T, "time", _Clock())
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "m"), vocab_size=60, emb_size=8, hidden_size=8,
                      batch_size=4, bptt=8, max_batches=4, epochs=1_000_000, patience=2, seed=3, threads=1,
                      checkpoint_minutes=1e6, max_minutes=0.5, lr_schedule="budget")
    card = train(cfg, log=lambda m: None)
    hist = json.loads((tmp_path / "m.ckpt" / "progress.json").read_text())["history"]   # every epoch's
    assert card["training"]["stopped_because"] == "time budget"
    assert len(hist) > cfg.patience + 3, "the run stopped early instead of using its budget"
    lrs = [h["lr"] for h in hist]
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and 0 <= lrs[-1] < cfg.lr / 2   # linear towards 0
    # the plateau schedule (the CLI's default) still stops early on the same run
    plateau = train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "p"), "lr_schedule": "plateau"}),
                    log=lambda m: None)
    assert plateau["training"]["stopped_because"] == "early stopping"


def test_the_app_runs_with_the_budget_schedule(corpus, tmp_path, monkeypatch):
    started = {}

    class P:
        pid = 999_999

    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **k: started.setdefault("p", P()))
    run = runner.start("story", corpus / "a.txt", tmp_path / "models", minutes=3, root=tmp_path / "runs",
                       owner="tok")
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["lr_schedule"] == "budget" and cfg["max_minutes"] == 3.0 and cfg["epochs"] >= 10_000


def _record_status(monkeypatch) -> list[dict]:
    seen: list[dict] = []
    real = runner._write_json

    def rec(path, obj):
        if Path(path).name == "status.json":
            seen.append(dict(obj))
        real(path, obj)
    monkeypatch.setattr(runner, "_write_json", rec)
    return seen


def test_the_status_shows_the_phase_and_the_batches(corpus, tmp_path, monkeypatch):
    """The label moved on from 'reading the text': epoch and batch while training, then each epoch's
    validation perplexity."""
    run = tmp_path / "runs" / "story"
    run.mkdir(parents=True)
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "models" / "story"), vocab_size=60, emb_size=8,
                      hidden_size=8, batch_size=4, bptt=8, epochs=1, threads=1, dry_run=True, max_minutes=1.0,
                      lr_schedule="budget")
    (run / "config.json").write_text(json.dumps({"config": cfg.__dict__, "preset": "tiny", "minutes": 1.0}))
    seen = _record_status(monkeypatch)
    old = signal.getsignal(signal.SIGTERM)
    try:
        assert runner._worker(run) == 0
    finally:
        signal.signal(signal.SIGTERM, old)
    running = [s["message"] for s in seen if s.get("state") == "running"]
    assert any(m.startswith("training: epoch 1, batch") for m in running), running
    assert any("valid perplexity" in m for m in running), running
    assert seen[-1]["state"] == "done"


def _fake_run(root: Path, name: str, owner: str | None, models: Path) -> subprocess.Popen:
    """A 'running' run held by a sleeping process (nothing trains)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": proc.pid, "name": name,
                                                 "out": str(models / name), "preset": "tiny", "fraction": 0.2,
                                                 "message": "training: epoch 1, batch 2 of 9"}))
    (root / "current.json").write_text(json.dumps({"run": str(run), "pid": proc.pid, "owner": owner}))
    return proc


def test_only_the_owner_stops_a_run(tmp_path):
    root = tmp_path / "runs"
    proc = _fake_run(root, "story", "secret", tmp_path / "models")
    try:
        with pytest.raises(ExplorerError, match="only the session that started"):
            runner.stop(root, owner="someone-else")
        with pytest.raises(ExplorerError):
            runner.stop(root)
        assert proc.poll() is None
        assert runner.stop(root, owner="secret")
        assert proc.wait(timeout=30) is not None
    finally:
        proc.kill()


def test_another_session_sees_the_run_read_only(tmp_path, models_dir, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("RNN_EXPLORER_RUNS", str(root))
    proc = _fake_run(root, "story", "secret", models_dir)
    try:
        at = new_app(models_dir, monkeypatch)
        at.switch_page("ui/pages/train.py")
        at.run()
        assert_clean(at)
        assert not [b for b in at.button if b.key == "train_stop"]
        assert "read-only" in " ".join(c.value for c in at.caption)
        at.session_state["_train_owner"] = "secret"     # the session that started it
        at.run()
        assert [b for b in at.button if b.key == "train_stop"]
    finally:
        proc.kill()


def test_after_stop_the_form_comes_back_with_resume_ticked(tmp_path, models_dir, corpus, monkeypatch):
    """Start (the run is faked: a sleeping process), Stop, and the form shows what was started, with
    Resume ticked: starting again continues the run instead of silently training from scratch."""
    root = tmp_path / "runs"
    monkeypatch.setenv("RNN_EXPLORER_RUNS", str(root))
    procs: list = []
    calls: list = []

    def fake_start(name, corpus_, models, **kw):
        calls.append(dict(kw, name=name, corpus=str(corpus_)))
        procs.append(_fake_run(root, name, kw.get("owner"), Path(models)))
        return root / name

    monkeypatch.setattr(runner, "start", fake_start)
    try:
        at = new_app(models_dir, monkeypatch)
        at.switch_page("ui/pages/train.py")
        at.run()
        at.text_input(key="train_folder").set_value(str(corpus))
        at.text_input(key="train_name").set_value("story")
        at.slider(key="train_minutes").set_value(7)
        at.run()
        at.button(key="train_start").click().run()
        assert_clean(at)
        assert calls and calls[0]["minutes"] == 7 and not calls[0]["resume"]
        assert not [t for t in at.text_input if t.key == "train_name"]        # the form hides while it runs
        at.button(key="train_stop").click().run()                            # the owner's Stop
        procs[0].wait(timeout=30)
        st = json.loads((root / "story" / "status.json").read_text())
        (root / "story" / "status.json").write_text(json.dumps(dict(st, state="stopped", message="stopped")))
        runner.checkpoint_of(models_dir / "story").mkdir()                   # what Stop leaves
        at.run()
        assert_clean(at)
        assert at.text_input(key="train_name").value == "story"
        assert at.text_input(key="train_folder").value == str(corpus)
        assert at.slider(key="train_minutes").value == 7
        assert at.checkbox(key="train_resume").value is True
        at.button(key="train_start").click().run()
        assert calls[-1]["resume"] is True and calls[-1]["minutes"] == 7
    finally:
        for p in procs:
            p.kill()
        ck = runner.checkpoint_of(models_dir / "story")
        if ck.is_dir():
            ck.rmdir()
