"""Session and URL state: the model chosen in the sidebar (ModelContext, require_model) and the
address bar, so that a lecturer can prepare links before class.

app.py calls open_address on every run, before the sidebar: the first run of a session reads the
address it was opened with (?present=1, ?model=NAME). Each page keeps its own keys in the address with
url_state (read once, on the page the session was opened on; written on every run).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import explorer as E

#: Query parameter and session key of the presenter view (?present=1; ui/lecture.py draws it).
PRESENT = "present"
#: Texts longer than this stay out of the address bar (a URL has to fit a browser's limits).
URL_TEXT_MAX = 2000


# ------------------------------------------------------------------------------ the model chosen
@dataclass(frozen=True)
class ModelContext:
    """The model chosen in the sidebar."""
    path: str
    stamp: float
    model: E.LoadedModel
    ranges: dict
    uploaded: bool = False

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def cell(self) -> str:
        return self.model.config.cell

    @property
    def layers(self) -> int:
        return self.model.config.layers


def require_model() -> ModelContext:
    """The model chosen in the sidebar; stops the page with a message when there is none."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        st.error(st.session_state.get("_no_model", "No model is loaded."), icon=":material/error:")
        st.stop()
    return ctx


# ---------------------------------------------------------------------------------- the address
def _flag(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def open_address(page=None):
    """Called by app.py on every run, before the sidebar. Notes the page shown; the first run of a
    session reads the address it was opened with (?present=1, ?model=NAME; the page's own keys are
    read by url_state on that page only)."""
    ss = st.session_state
    ss["_url_page_now"] = getattr(page, "url_path", None)
    if not ss.get("_url_boot"):
        ss["_url_boot"] = True
        ss["_url_query"] = st.query_params.to_dict()
        ss["_url_page"] = ss["_url_page_now"]
        q = ss["_url_query"]
        if PRESENT in q:
            ss[PRESENT] = _flag(q[PRESENT])
        if q.get("model"):
            ss["_url_model"] = q["model"]


def cold_query() -> dict:
    """The query the session was opened with, when the current page is the one it was opened on
    ({} otherwise: another page's parameters never leak into this one)."""
    ss = st.session_state
    if ss.get("_url_page") != ss.get("_url_page_now"):
        return {}
    return dict(ss.get("_url_query") or {})


def _url_fields(specs):
    """'text' | 'a=ct_a' | 'layer:layer' | 'seed=gen_seed:int' -> [(url name, state key, kind)]."""
    out = []
    for s in specs:
        name, _, kind = s.partition(":")
        url, _, key = name.partition("=")
        out.append((url, key or url, kind or "str"))
    return out


def _url_parse(raw: str, kind: str):
    raw = str(raw)
    if kind == "str":
        return raw[:URL_TEXT_MAX]
    if kind == "bool":
        return _flag(raw)
    if raw.strip().isdigit() and len(raw.strip()) <= 10:
        v = int(raw)
        if kind == "layer":                    # 1 = the bottom layer, in the address as in the app
            return v if v >= 1 else None
        return v if v < 2**31 else None
    return None


def _url_format(v, kind: str) -> str | None:
    if v is None:
        return None
    if kind == "str":
        return v if isinstance(v, str) and len(v) <= URL_TEXT_MAX else None
    if kind == "bool":
        return "1" if v else "0"
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return None


def url_base() -> dict:
    """What every page's address carries: the model (a bundle of the models folder, by name) and the
    presenter view."""
    ss = st.session_state
    q = {}
    ctx = ss.get("_ctx")
    if ctx is not None and not ctx.uploaded:
        q["model"] = Path(ctx.path).name
    if ss.get(PRESENT):
        q[PRESENT] = "1"
    return q


def url_write(*specs: str, extra: dict | None = None):
    """Put the current values of these session keys (plus url_base()) in the address bar."""
    ss = st.session_state
    q = url_base()
    for url, key, kind in _url_fields(specs):
        s = _url_format(ss.get(key), kind)
        if s is not None:
            q[url] = s
    q.update(extra or {})
    if st.query_params.to_dict() != q:
        st.query_params.from_dict(q)


def url_state(*specs: str):
    """Keep a page's session keys in the address bar, so a lecturer can prepare links before class.
    Call at the top of the page, before its widgets. Each spec is 'key', 'urlname=key', with ':int'
    (0 .. 2**31-1), ':layer' (1 = the bottom layer; 0 is ignored) or ':bool'. The first run on the page the
    session was opened on copies the address's values into the session (bad values are ignored);
    every run writes the current ones. Pages that change keys inside a fragment call url_write
    there too."""
    ss = st.session_state
    tag = "_url_loaded:" + "|".join(specs)
    if not ss.get(tag):
        ss[tag] = True
        q = cold_query()
        for url, key, kind in _url_fields(specs):
            if url in q:
                v = _url_parse(q[url], kind)
                if v is not None and (kind != "str" or v.strip()):
                    ss[key] = v
    url_write(*specs)
