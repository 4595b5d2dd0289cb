"""Background jobs of the server process: long work (a corpus index build) that runs once per server,
whichever session asked for it first, while every session that asks for the same job watches it.

A job is a function `fn(progress)` run in a daemon thread; it reports with `progress(done, total)`
(tokens, for an index build). The registry is module-level, guarded by a lock, and keyed by what the
job makes (an index's folder): `start` returns the running job of that key when there is one, so two
tabs, or a page switch and back, never start a second build. A job does not belong to a session or a
script run: leaving the page, closing the tab or a rerun neither pauses nor stops it. A job that
raised keeps its reason (an ExplorerError's message as written for people; otherwise the exception's
type and message, with the traceback in the server's log) until `start(..., again=True)` retries it.

Pages read a job through `get(key)`: a frozen `Progress` snapshot with the rate (units per second,
over the last REFRESH_WINDOW seconds) and the time left. Nothing here imports Streamlit: the job
thread never touches a page; ui/corpus_index.py draws the progress in a fragment that refreshes
itself.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from explorer.errors import ExplorerError

log = logging.getLogger("rnn_explorer.ui")

#: Seconds of progress reports the rate is measured over (older ones are forgotten).
RATE_WINDOW = 15.0

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True)
class Progress:
    """What a page shows of a job at one moment."""
    key: str
    label: str
    state: str                  # "running", "done" or "failed"
    done: int                   # units of work done (tokens); 0 before the first report
    total: int                  # units of work in all; 0 before the first report
    elapsed: float              # seconds since the job started (until it ended, once it has)
    rate: float | None          # units per second over the last RATE_WINDOW seconds; None before two reports
    error: str | None           # why it failed (state "failed")
    runs: int                   # how many times this key was started in this server (1 = never retried)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds left at the current rate, or None while unknown."""
        if not self.rate or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


class _Job:
    def __init__(self, key: str, label: str, fn: Callable[[Callable[[int, int], None]], object], runs: int):
        self.key, self.label, self.fn, self.runs = key, label, fn, runs
        self.state = RUNNING
        self.done = self.total = 0
        self.error: str | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._samples: deque = deque()
        self._lock = threading.Lock()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"job:{label}", daemon=True)

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.done, self.total = int(done), int(total)
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
                self._samples.popleft()

    def _run(self) -> None:
        try:
            self.fn(self._progress)
            state, error = DONE, None
        except ExplorerError as e:
            state, error = FAILED, str(e)
        except Exception as e:  # noqa: BLE001 - the reason goes to every page that watches the job
            log.exception("background job %s failed", self.label)
            state, error = FAILED, f"{type(e).__name__}: {e}"
        with self._lock:
            self.state, self.error, self.ended = state, error, time.monotonic()
        self.finished.set()

    def view(self) -> Progress:
        with self._lock:
            rate = None
            if len(self._samples) >= 2:
                (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
                if t1 > t0 and d1 > d0:
                    rate = (d1 - d0) / (t1 - t0)
            # the first report comes after the first piece of work: count it from the start
            if rate is None and self.done > 0 and self.state == RUNNING:
                since = (self._samples[-1][0] if self._samples else time.monotonic()) - self.started
                rate = self.done / since if since > 0 else None
            end = self.ended if self.ended is not None else time.monotonic()
            return Progress(self.key, self.label, self.state, self.done, self.total, end - self.started, rate,
                            self.error, self.runs)


_JOBS: dict[str, _Job] = {}
_GUARD = threading.Lock()


def start(key: str, label: str, fn: Callable[[Callable[[int, int], None]], object], *,
          again: bool = False) -> Progress:
    """The job `key`, started now in a background thread unless it runs already (then that one is
    returned: never a second). A job of that key that failed is returned as it is unless `again`
    (the person asked to retry); one that finished is started anew (what it made has gone since)."""
    with _GUARD:
        job = _JOBS.get(key)
        if job is not None and (job.state == RUNNING or (job.state == FAILED and not again)):
            return job.view()
        job = _Job(key, label, fn, runs=(job.runs + 1) if job is not None else 1)
        _JOBS[key] = job
        job.thread.start()
        return job.view()


def get(key: str) -> Progress | None:
    """The job `key` as it stands now, or None when no session of this server started it."""
    with _GUARD:
        job = _JOBS.get(key)
    return job.view() if job is not None else None


def wait(key: str, timeout: float | None = None) -> Progress | None:
    """Block until the job `key` has ended (or `timeout` seconds passed); its Progress, or None when
    there is no such job. For tests and scripts: a page never waits on a job."""
    with _GUARD:
        job = _JOBS.get(key)
    if job is None:
        return None
    job.finished.wait(timeout)
    return job.view()


def keys() -> list[str]:
    """The keys of every job this server started (running or ended), oldest first."""
    with _GUARD:
        return list(_JOBS)


def running() -> list[Progress]:
    """The jobs running now."""
    with _GUARD:
        jobs = list(_JOBS.values())
    return [p for p in (j.view() for j in jobs) if p.running]
