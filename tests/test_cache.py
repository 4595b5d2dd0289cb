"""explorer.cache.ByteLRU: the app's shared cache of traces and analyses is bounded by bytes."""
from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import weakref

import numpy as np
import pytest
import torch

from explorer import trace
from explorer.cache import ByteLRU, nbytes_of

MB = 2**20


class Box:
    """A value that can be weakly referenced (numpy arrays can, but a box makes the intent plain)."""
    def __init__(self, a):
        self.a = a


def test_nbytes_counts_arrays_tensors_and_views_once():
    a = np.zeros((1000, 250), np.float32)                 # 1,000,000 bytes
    t = torch.zeros(1000, 250)                            # 1,000,000 bytes
    assert 2_000_000 <= nbytes_of({"a": a, "view": a[:10], "t": t, "tview": t[:5]}) < 2_000_000 + 4096
    assert nbytes_of([a, a]) < 1_000_000 + 1024


def test_a_trace_is_sized_by_its_states(tiny_lstm):
    tr = trace(tiny_lstm, "the cat sat on the mat . " * 40)
    states = sum(v.nbytes for lay in tr.layers for v in lay.values.values())
    assert states <= nbytes_of(tr) <= states * 1.5 + 200_000


def test_memory_falls_back_below_the_budget_after_filling_past_it():
    budget = 64 * MB + 64 * 1024                          # eight 8 MB values and their wrappers
    cache = ByteLRU(budget)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        refs = []
        for i in range(40):                               # 40 x 8 MB = 320 MB asked for, 5x the budget
            v = cache.get_or_compute(("k", i), lambda: Box(np.ones(2 * MB, np.float32)))
            refs.append(weakref.ref(v))
            del v
            assert cache.nbytes <= budget
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert cache.nbytes <= budget and len(cache) == 8
    assert held <= budget + 4 * MB, f"{held / MB:.0f} MB still allocated for a {budget / MB:.0f} MB budget"
    alive = [i for i, r in enumerate(refs) if r() is not None]
    assert alive == list(range(32, 40))                   # the least recently used went first
    assert cache.stats()["evictions"] == 32


def test_recently_used_entries_survive():
    cache = ByteLRU(3 * MB)
    for k in "abc":
        cache.put(k, np.zeros(MB // 4, np.float32))       # 1 MB each
    assert cache.get("a") is not None                     # a is now the most recent
    cache.put("d", np.zeros(MB // 4, np.float32))
    assert "a" in cache and "b" not in cache and "c" in cache and "d" in cache


def test_a_value_bigger_than_the_budget_is_returned_not_kept():
    cache = ByteLRU(MB)
    cache.put("small", np.zeros(10, np.float32))
    v = cache.get_or_compute("big", lambda: np.zeros(MB, np.float32))
    assert v.shape == (MB,) and "big" not in cache and "small" in cache


def test_concurrent_requests_for_one_key_compute_it_once():
    cache = ByteLRU(10 * MB)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return np.arange(10)

    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.get_or_compute("k", slow))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 6 and all(o is out[0] for o in out)


def test_a_failed_computation_is_not_cached_and_does_not_block():
    cache = ByteLRU(MB)
    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("k", lambda: 1 / 0)
    assert cache.get_or_compute("k", lambda: 5) == 5


def test_the_app_cache_budget_comes_from_the_environment(monkeypatch):
    import importlib

    import explorer.settings as S
    monkeypatch.setenv("RNN_EXPLORER_CACHE_MB", "256")
    try:
        assert importlib.reload(S).CACHE_MB == 256
    finally:
        monkeypatch.delenv("RNN_EXPLORER_CACHE_MB")
        importlib.reload(S)
    assert S.CACHE_MB == 1024
