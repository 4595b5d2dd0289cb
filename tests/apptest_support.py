"""What the AppTest tests share (streamlit.testing.v1): the app's path, a raised timeout, the app opened
on a models folder (at a page, with a query string), and what it sent: the Plotly specs, the st.html
bodies, the charts by their meta view and Plotly's typed arrays. Plain functions; the model folders
they open the app on are conftest.py's fixtures (models_dir, char_models)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120  # the first run imports torch and loads a model; AppTest's default of 3 s is too short


def new_app(models: Path | None = None, monkeypatch=None) -> AppTest:
    """app.py under AppTest with TIMEOUT, not run yet; on the models folder `models` (set through
    monkeypatch as RNN_EXPLORER_MODELS) when given, else on what the environment names."""
    if models is not None:
        monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def open_page(models: Path | None, monkeypatch, page: str | None = None, query: dict | None = None,
              errors_ok: bool = False) -> AppTest:
    """The app run once on `models` (see new_app), opened at `page` (e.g. "ui/pages/contrast.py"; the
    Explore page when None) with the query string `query`; asserts it raised nothing and, unless
    errors_ok, showed no st.error."""
    at = new_app(models, monkeypatch)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if page:
        at.switch_page(page)
    at.run()
    if errors_ok:
        assert not at.exception, [e.value for e in at.exception]
    else:
        assert_clean(at)
    return at


def assert_clean(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def specs(at: AppTest) -> list[dict]:
    """The Plotly specs the app sent, as the browser gets them."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def meta_chart(at: AppTest, view: str) -> dict:
    """The first chart whose layout.meta names `view`."""
    found = [s for s in specs(at) if (s["layout"].get("meta") or {}).get("view") == view]
    assert found, f"no {view} chart"
    return found[0]


def html_with(at: AppTest, marker: str) -> str:
    """The body of the first st.html element that contains `marker`."""
    for h in at.get("html"):
        if marker in h.proto.body:
            return h.proto.body
    raise AssertionError(f"no st.html element containing {marker!r}")


def array(v) -> np.ndarray:
    """A Plotly array from the spec: a list, or a typed array {bdata, dtype, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        shape = [int(x) for x in str(v.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(shape)
    return np.asarray(v, dtype=float)
