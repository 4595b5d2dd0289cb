"""A least-recently-used cache bounded by bytes, for traces and analysis results shared by sessions.

A count of entries is no bound on memory: one 20,000-character trace holds about 71 MB of states,
while a five-word one holds a few kilobytes. `ByteLRU` counts the bytes of the arrays and tensors an
entry holds (`nbytes_of`) and evicts the least recently used entries until the total is within its
budget. It is thread-safe (Streamlit serves each browser session from its own thread); two sessions
asking for the same missing key at once compute it once.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from collections import OrderedDict
from types import MappingProxyType
from typing import Any, Callable, Hashable

import numpy as np

try:  # torch is a dependency of the core, but this module must not need it to size numpy data
    import torch
except ImportError:  # pragma: no cover
    torch = None


def nbytes_of(obj: Any, _seen: set | None = None) -> int:
    """Bytes held by `obj`: numpy arrays and torch tensors by their buffers (a view counts its base
    once), containers and dataclasses by their items, strings and numbers by sys.getsizeof."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is not obj:
            return nbytes_of(base, seen)
        return obj.nbytes
    if torch is not None and isinstance(obj, torch.Tensor):
        st = obj.untyped_storage()
        key = ("storage", st.data_ptr())
        if key in seen:
            return 0
        seen.add(key)
        return st.nbytes()
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return sys.getsizeof(obj)
    if isinstance(obj, (dict, MappingProxyType)):
        return sys.getsizeof(obj) + sum(nbytes_of(k, seen) + nbytes_of(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + sum(nbytes_of(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sys.getsizeof(obj) + sum(nbytes_of(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    if hasattr(obj, "memory_usage") and hasattr(obj, "columns"):      # a pandas DataFrame
        return int(obj.memory_usage(deep=True).sum())
    if hasattr(obj, "__dict__"):
        return sys.getsizeof(obj) + nbytes_of(vars(obj), seen)
    return sys.getsizeof(obj)


class ByteLRU:
    """get_or_compute(key, fn): the cached value of key, or fn() stored under it.

    The total of `sizeof(value)` over the entries stays at or below `budget` bytes after every call:
    the least recently used entries are dropped first. A value bigger than the whole budget is
    returned but not kept.
    """

    def __init__(self, budget: int, sizeof: Callable[[Any], int] = nbytes_of):
        if budget < 0:
            raise ValueError("budget must be >= 0 bytes")
        self.budget = int(budget)
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Event] = {}
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes, "budget": self.budget,
                    "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def get(self, key, default=None):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
        return default

    def put(self, key, value) -> None:
        size = int(self._sizeof(value))
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.budget:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget and self._items:
                _, (_, s) = self._items.popitem(last=False)
                self._bytes -= s
                self.evictions += 1

    def get_or_compute(self, key, fn: Callable[[], Any]):
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return self._items[key][0]
                wait = self._pending.get(key)
                if wait is None:
                    self._pending[key] = threading.Event()
                    self.misses += 1
                    break
            wait.wait()            # another thread is computing this key: use its result
            with self._lock:
                if key in self._items:
                    continue
            # its computation failed or was not kept (too big): compute it here
            with self._lock:
                if key in self._pending:
                    continue
                self._pending[key] = threading.Event()
                self.misses += 1
                break
        try:
            value = fn()
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop(key).set()


__all__ = ["ByteLRU", "nbytes_of"]
