"""Training as a background process, for the app: one run per server, with a status file.

The app starts `python -m explorer.training.runner RUN_DIR` in its own session (it outlives reruns,
page switches, a closed tab and the Streamlit session). The process runs explorer.training.train
with the run's TrainConfig and writes RUN_DIR/status.json (atomically) after every batch: state,
epoch, progress, loss, tokens/s, elapsed and time left. Stop sends SIGTERM: train() saves a
checkpoint (OUT.ckpt) and a later run of the same name resumes from it.

A run uses its time budget: it trains with lr_schedule "budget" (the rate falls linearly to 0 over the
budget; no early stop, which on a short text ended runs after a few seconds at near-unigram
perplexity) and ends when the budget is spent, keeping the best epoch's model.

Only its owner stops a run: start() takes an owner token (the app passes one per browser session and
shows it to that session), and stop() refuses any other token. Other visitors see the run read-only.

    runs root (RNN_EXPLORER_RUNS, default ~/.cache/rnn-state-explorer/runs)
      current.json      the run that holds the one slot: {"run": RUN_DIR, "pid": ...}
      NAME/config.json  the TrainConfig, the size preset and the time budget
      NAME/corpus/      the uploaded .txt files (or the config names a folder)
      NAME/status.json  what the page shows
      NAME/log.txt      the run's log
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import ExplorerError
from ..files import write_json
from .train import Interrupted, TrainConfig, train

#: Size presets: the model and its vocabulary. "tiny" trains in minutes on a laptop CPU.
PRESETS = {
    "tiny": dict(cell="lstm", emb_size=64, hidden_size=64, layers=1, vocab_size=2_000, dropout=0.1,
                 batch_size=16, bptt=35),
    "small": dict(cell="lstm", emb_size=128, hidden_size=128, layers=2, vocab_size=5_000, dropout=0.2,
                  batch_size=32, bptt=35),
    "medium": dict(cell="lstm", emb_size=256, hidden_size=256, layers=2, vocab_size=10_000, dropout=0.3,
                   batch_size=64, bptt=35),
}
FINAL = ("done", "stopped", "failed")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def runs_root() -> Path:
    """Where runs live (explorer.settings.runs_root: $RNN_EXPLORER_RUNS, else the cache root's runs/)."""
    from .. import settings
    return settings.runs_root()


def _write_json(path: Path, obj: dict) -> None:
    write_json(path, obj, indent=None)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a finished child of this process is a zombie until reaped: not running
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def status(run_dir) -> dict | None:
    """The run's status, with state 'failed' when its process is gone without saying so."""
    run_dir = Path(run_dir)
    st = read_json(run_dir / "status.json")
    if st is None:
        return None
    if st.get("state") not in FINAL and not _alive(st.get("pid")):
        st = dict(st, state="failed", message=st.get("message") or "the training process ended unexpectedly; "
                  f"see {run_dir / 'log.txt'}")
    return st


def current(root: Path | None = None) -> dict | None:
    """The run that holds this server's slot: {"run", "pid", "status"}, or None."""
    root = root or runs_root()
    cur = read_json(root / "current.json")
    if not cur or not cur.get("run"):
        return None
    return dict(cur, status=status(cur["run"]))


def busy(root: Path | None = None) -> dict | None:
    """The current run while it is still running (one per server), else None."""
    cur = current(root)
    if cur and cur["status"] and cur["status"].get("state") not in FINAL:
        return cur
    return None


def checkpoint_of(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def start(name: str, corpus, models_dir, preset: str = "tiny", minutes: float = 10.0, dry_run: bool = False,
          resume: bool = False, root: Path | None = None, owner: str | None = None) -> Path:
    """Start a background run; return its folder. Refused (ExplorerError) while another one runs.
    `owner`: the token that stop() must be given (None: anyone may stop it)."""
    root = root or runs_root()
    if not NAME_RE.match(name or ""):
        raise ExplorerError("the model name must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                            "letter or digit")
    if preset not in PRESETS:
        raise ExplorerError(f"size preset must be one of {', '.join(PRESETS)}")
    if not minutes > 0:
        raise ExplorerError("the time budget must be more than 0 minutes")
    corpus = Path(corpus)
    if not corpus.exists():
        raise ExplorerError(f"{corpus} does not exist")
    texts = [corpus] if corpus.is_file() else sorted(corpus.glob("*.txt"))
    if not texts:
        raise ExplorerError(f"{corpus} holds no .txt files")
    other = busy(root)
    if other:
        raise ExplorerError(f"a training run is already going on this server ({Path(other['run']).name}); "
                            "stop it or wait for it to finish")
    out = Path(models_dir) / name
    if resume and not checkpoint_of(out).is_dir():
        raise ExplorerError(f"there is no checkpoint to resume at {checkpoint_of(out)}")
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    if len(texts) < 3:
        # A folder is split by file (one validates, one tests, the rest train): with fewer than three
        # files, train on their text joined into one file, split by position (90 / 5 / 5 %).
        joined = run / "text.txt"
        joined.write_text("\n\n".join(t.read_text(encoding="utf-8", errors="replace") for t in texts),
                          encoding="utf-8")
        corpus = joined
    # epochs: no limit in practice; the budget ends the run (lr_schedule "budget")
    cfg = TrainConfig(corpus=str(corpus), out=str(out), epochs=1_000_000, patience=3, threads=1, dry_run=dry_run,
                      max_minutes=float(minutes), lr_schedule="budget", checkpoint_minutes=1.0, resume=resume,
                      command=f"app: train {name} ({preset}, {minutes:g} min{', dry run' if dry_run else ''})",
                      **PRESETS[preset])
    _write_json(run / "config.json", {"config": asdict(cfg), "preset": preset, "minutes": float(minutes),
                                      "started": time.time()})
    _write_json(run / "status.json", {"state": "starting", "pid": None, "out": str(out), "name": name,
                                      "preset": preset, "dry_run": dry_run, "fraction": 0.0,
                                      "updated": time.time(), "budget_s": minutes * 60})
    log = open(run / "log.txt", "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer.training.runner", str(run)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    log.close()
    st = read_json(run / "status.json") or {}
    if st.get("pid") is None:
        _write_json(run / "status.json", dict(st, pid=proc.pid))
    _write_json(root / "current.json", {"run": str(run), "pid": proc.pid, "started": time.time(),
                                        "owner": owner})
    return run


def owned_by(cur: dict | None, owner: str | None) -> bool:
    """Whether `owner` may stop the run `cur` (current()): it started the run, or the run has no owner."""
    if not cur:
        return False
    token = cur.get("owner")
    return token is None or (owner is not None and secrets.compare_digest(str(token), str(owner)))


def stop(root: Path | None = None, owner: str | None = None) -> bool:
    """Ask the current run to stop (SIGTERM: it saves a checkpoint first). False if none runs;
    ExplorerError when the run has an owner token and `owner` is not it."""
    cur = busy(root)
    if not cur:
        return False
    if not owned_by(cur, owner):
        raise ExplorerError("only the session that started this run (or one given its owner token) can stop it")
    st = cur["status"]
    _write_json(Path(cur["run"]) / "status.json", dict(st, state="stopping", updated=time.time()))
    try:
        os.kill(int(cur["pid"]), signal.SIGTERM)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------- the process itself
def _worker(run: Path) -> int:
    meta = read_json(run / "config.json")
    cfg = TrainConfig(**meta["config"])
    budget = meta["minutes"] * 60
    t0 = time.time()
    path = run / "status.json"
    base = {"pid": os.getpid(), "out": cfg.out, "name": Path(cfg.out).name, "budget_s": budget,
            "preset": meta["preset"], "dry_run": cfg.dry_run}
    last = {"t": 0.0, "valid": None}
    stop_flag = {"term": False}
    grace = max(60.0, 0.25 * budget)   # the run stops itself at the budget; this is a backstop

    def write(**kw):
        # the last batch's numbers (loss, tokens/s, epoch) stay in the final status
        cur = read_json(path) or {}
        state = "stopping" if cur.get("state") == "stopping" and kw.get("state") == "running" else kw.get("state")
        _write_json(path, {**cur, **base, **{k: v for k, v in kw.items() if v is not None},
                           "state": state, "updated": time.time()})

    def on_batch(info):
        now = time.time()
        elapsed = now - t0
        # progress: batches done out of what the epoch limit allows, or the time budget if that is nearer
        done = (info["epoch"] - 1) * info["batches"] + info["batch"]
        total = info["epochs"] * info["batches"]
        frac = max(done / max(total, 1), min(1.0, elapsed / budget))
        left = max(0.0, min(budget - elapsed, elapsed / max(done, 1) * (total - done)))
        if now - last["t"] > 0.5 or frac >= 1.0:
            last["t"] = now
            msg = (f"training: epoch {info['epoch']}, batch {info['batch']} of {info['batches']}"
                   + (f" · last valid perplexity {last['valid']}" if last["valid"] else ""))
            write(state="running", message=msg, epoch=info["epoch"], epochs=info["epochs"], batch=info["batch"],
                  batches=info["batches"], loss=info["loss"], tokens_per_s=info["tokens_per_s"],
                  tokens_seen=info["tokens_seen"], elapsed_s=elapsed, eta_s=left, fraction=min(frac, 1.0))
        if stop_flag["term"]:
            raise KeyboardInterrupt
        if elapsed > budget + grace:    # train() did not stop at its budget: stop as Stop would
            stop_flag["budget"] = True
            raise KeyboardInterrupt

    def log(m: str):
        print(m, flush=True)
        # the phases between batches, in the status the page shows
        got = re.match(r"epoch (\d+): valid perplexity ([\d.]+)", m)
        if got:
            last["valid"] = got.group(2)
            write(state="running", message=f"epoch {got.group(1)} done: valid perplexity {got.group(2)}")
        elif m.startswith("stopping:"):
            write(state="running", message="the budget is spent: measuring the best model's test perplexity")

    def on_term(signum, frame):
        stop_flag["term"] = True

    signal.signal(signal.SIGTERM, on_term)
    write(state="running", fraction=0.0, elapsed_s=0.0, eta_s=budget, message="reading the text")
    try:
        if not cfg.init:   # (on resume too: train() rebuilds the same vocabulary from the text)
            # a short text has fewer distinct words than the preset's vocabulary: take them all
            from ..tokenizer import SPECIALS, CharTokenizer, WordTokenizer
            tok = {"word": WordTokenizer, "char": CharTokenizer}[cfg.tokenizer](list(SPECIALS))
            distinct = {w for _, t in cfg.read_split()["train"] for w in tok.pieces(t)}
            cfg.vocab_size = max(len(SPECIALS) + 1, min(cfg.vocab_size, len(distinct - set(SPECIALS)) + len(SPECIALS)))
        write(state="running", message="building the model")
        # the budget counts from this process's start: what reading the text took comes off it
        cfg.max_minutes = max(budget - (time.time() - t0), 1.0) / 60
        card = train(cfg, log=log, on_batch=on_batch)
    except Interrupted:
        why = "the time budget ran out" if stop_flag.get("budget") else "stopped"
        bundle = (Path(cfg.out) / "card.json").is_file()
        write(state="stopped", fraction=1.0 if stop_flag.get("budget") else None, elapsed_s=time.time() - t0,
              eta_s=0.0, message=f"{why}: a checkpoint was saved in {checkpoint_of(cfg.out)}; start again with "
              f"'resume' to continue" + ("" if bundle else " (no epoch finished yet, so there is no model to open)"),
              bundle=bundle)
        return 0
    except Exception as e:  # noqa: BLE001 - the page shows it; the traceback is in log.txt
        import traceback
        traceback.print_exc()
        write(state="failed", message=f"{type(e).__name__}: {e}", elapsed_s=time.time() - t0)
        return 1
    m = card.get("metrics", {})
    write(state="done", fraction=1.0, elapsed_s=time.time() - t0, eta_s=0.0, bundle=True,
          message=f"finished: valid perplexity {(m.get('valid') or {}).get('perplexity')}, "
                  f"test perplexity {(m.get('test') or {}).get('perplexity')}")
    return 0


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1])))
