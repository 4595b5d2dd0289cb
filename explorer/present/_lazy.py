"""A module imported on first use. pandas takes about 0.4 s to import; the Explore page's first
render does not need it, and the app's cold start is measured (benchmarks/app_latency.py)."""
from __future__ import annotations

import importlib


class LazyModule:
    """Stands in for `import name as alias`: the import happens at the first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
