"""Session and URL state: the model chosen in the sidebar (ModelContext, require_model) and the
address bar, so that a lecturer can prepare links before class.

app.py calls open_address on every run, before the sidebar: the first run of a session reads the
address it was opened with (?present=1, ?model=NAME). Each page keeps its own keys in the address with
url_state (read once, on the page the session was opened on; written on every run, and once more by
url_flush after the page ran). A long text goes into the address as a short id of a text kept under
the cache folder (save_text / saved_text), so a link stays short.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import files, settings

log = logging.getLogger("rnn_explorer.ui")

#: Query parameter and session key of the presenter view (?present=1; ui/lecture.py draws it).
PRESENT = "present"
#: Texts up to this long go into the address as they are (a preset or a demo link stays readable); a
#: longer one goes in as a short id of the text store (saved_text), so an address stays short.
URL_TEXT_MAX = 300
#: Longest text the store keeps (10 x the longest text the app traces); a longer one stays out of the address.
STORE_TEXT_MAX = 200_000
#: How a stored text is named in the address: "saved-" and 16 hex digits of its SHA-256.
SAVED_ID = re.compile(r"saved-[0-9a-f]{16}")


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


def model_defaults(key: str, model_path, values: dict) -> bool:
    """Set a page's opening values for the model at `model_path`: on the first visit, and on a model change
    for every field that still holds the previous model's opening value (what the person edited stays).
    `key` names where the page keeps them (also what its "opening example again" button reads).
    Returns False when they were set for this model already."""
    ss = st.session_state
    prev = ss.get(key)
    if prev and prev[0] == model_path:
        return False
    old = prev[1] if prev else {}
    for k, v in values.items():
        if k not in ss or (k in old and ss[k] == old[k]):
            ss[k] = v
    ss[key] = (model_path, values)
    return True


def require_model() -> ModelContext:
    """The model chosen in the sidebar; stops the page with a message when there is none."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        st.error(st.session_state.get("_no_model", "No model is loaded."), icon=":material/error:")
        st.stop()
    return ctx


def _flag(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------------- long texts: a short id
def _texts_root() -> Path:
    return settings.cache_root() / "texts"


def _saved_id(text: str) -> str:
    return "saved-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def save_text(text: str) -> str | None:
    """Keep `text` in the text store (cache_root()/texts, one file per text, written atomically) and
    return its id for the address ("saved-" + 16 hex digits of its SHA-256); None for a text longer
    than STORE_TEXT_MAX or when the store cannot be written (the text then stays out of the address)."""
    if len(text) > STORE_TEXT_MAX:
        return None
    sid = _saved_id(text)
    done = st.session_state.setdefault("_url_saved", set())
    if sid in done:
        return sid
    path = _texts_root() / f"{sid}.txt"
    try:
        if not path.exists():
            files.write_bytes(path, text.encode("utf-8", "surrogatepass"))
    except OSError:
        log.exception("could not keep a long text for the address in %s", path.parent)
        return None
    done.add(sid)
    return sid


def saved_text(sid: str) -> str | None:
    """The text kept under `sid` by save_text; None when this server holds no such text."""
    if not SAVED_ID.fullmatch(str(sid)):
        return None
    try:
        text = (_texts_root() / f"{sid}.txt").read_bytes().decode("utf-8", "surrogatepass")
    except (OSError, UnicodeDecodeError):
        return None
    return text if _saved_id(text) == sid else None      # a damaged or foreign file is no match


def address_value(value: str) -> str | None:
    """How a string goes into the address: as it is when it is short, else under a short id of the
    text store (also a short text that reads as an id, so that it comes back as itself); None when
    it cannot go (too long even for the store)."""
    if len(value) <= URL_TEXT_MAX and not SAVED_ID.fullmatch(value):
        return value
    return save_text(value)


MISSING_TEXT = ("This link names a long text kept by the server that made it ({ids}), and this server does "
                "not hold it. The page opens with its own text instead; copy the text itself to share it.")


# ---------------------------------------------------------------------------------- the address
def open_address(page=None):
    """Called by app.py on every run, before the sidebar. Notes the page shown; the first run of a
    session reads the address it was opened with (?present=1, ?model=NAME; the page's own keys are
    read by url_state on that page only). Ids of long texts (saved-...) are looked up in the text
    store; one this server does not hold is left out, with a message on the page opened."""
    ss = st.session_state
    ss["_url_page_now"] = getattr(page, "url_path", None)
    if not ss.get("_url_boot"):
        ss["_url_boot"] = True
        q, missing = {}, []
        for k, v in st.query_params.to_dict().items():
            if SAVED_ID.fullmatch(v):
                text = saved_text(v)
                if text is None:
                    missing.append(v)
                    continue
                v = text
            q[k] = v
        ss["_url_query"] = q
        ss["_url_missing"] = missing
        ss["_url_page"] = ss["_url_page_now"]
        if PRESENT in q:
            ss[PRESENT] = _flag(q[PRESENT])
        if q.get("model"):
            ss["_url_model"] = q["model"]
    ss["_url_run_specs"] = ()                  # url_state names this run's keys; url_flush writes them
    ss["_url_run_extra"] = None
    if ss.get("_url_missing") and ss.get("_url_page") == ss.get("_url_page_now"):
        st.warning(MISSING_TEXT.format(ids=", ".join(ss["_url_missing"])), icon=":material/link_off:")


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
    if kind in ("str", "name"):
        return raw[:STORE_TEXT_MAX]
    if kind == "auto":                         # a choice among numbers and words ("every", 1, 2)
        return _url_parse(raw, "int") if raw.strip().isdigit() else raw[:URL_TEXT_MAX]
    if kind == "bool":
        return _flag(raw)
    if kind == "float":
        try:
            v = float(raw)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    if kind in ("ints", "names", "list"):
        parts = [p.strip() for p in raw.split(",") if p.strip()][:64]
        if kind != "ints":
            return parts or None
        vals = [_url_parse(p, "int") for p in parts]
        return vals if vals and None not in vals else None
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
        return v if isinstance(v, str) else None          # a long one: url_set puts its id in the address
    if kind == "name":
        return Path(str(v)).name
    if kind == "auto":
        return str(v)
    if kind == "bool":
        return "1" if v else "0"
    if kind == "float":
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return repr(v) if math.isfinite(v) else None       # repr: the shortest text that reads back exactly
    if kind in ("ints", "names", "list"):
        if not isinstance(v, (list, tuple)):
            return None
        parts = [_url_format(x, "int") if kind == "ints" else Path(str(x)).name if kind == "names" else str(x)
                 for x in v]
        return ",".join(parts) if parts and None not in parts else None
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
    """Put the current values of these session keys (plus url_base() and `extra`, parameters the page
    writes itself: the Lesson's; remembered for url_flush) in the address bar."""
    ss = st.session_state
    if extra is not None:
        ss["_url_run_extra"] = dict(extra)
    extra = ss.get("_url_run_extra")
    q = url_base()
    for url, key, kind in _url_fields(specs):
        s = _url_format(ss.get(key), kind.partition(":")[0])
        if s is not None:
            q[url] = s
    url_set({**q, **(extra or {})})


def url_set(q: dict):
    """Make the address bar hold exactly `q` (url_base() included by the caller); long texts go in as
    short ids (address_value)."""
    out = {}
    for k, v in q.items():
        v = address_value(str(v))
        if v is not None:
            out[k] = v
    if st.query_params.to_dict() != out:
        st.query_params.from_dict(out)


def linked(key: str) -> bool:
    """True the first time it is asked after url_state set session key `key` from the address the session
    was opened with. A page that resets a value when what it depends on changes (a step when the text
    is new) keeps a link's value on that first reset: `if not (session.linked(key) and valid): reset`."""
    got = st.session_state.get("_url_linked")
    if got and key in got:
        got.discard(key)
        return True
    return False


def link_paths(key: str, options) -> None:
    """Session key `key` holds model paths (one, or a list), which the address names by their folder
    names (kind 'names', or 'str' with Path.name): turn the names a link brought back into the paths
    of `options` (the bundles of the models folder) before the page checks them."""
    ss = st.session_state
    by_name = {Path(str(p)).name: p for p in options}
    v = ss.get(key)
    if isinstance(v, str) and v not in options and v in by_name:
        ss[key] = by_name[v]
    elif isinstance(v, list) and any(x not in options for x in v):
        ss[key] = [by_name.get(x, x) for x in v]


def url_state(*specs: str):
    """Keep a page's session keys in the address bar, so a lecturer can prepare links before class.
    Call at the top of the page, before its widgets. Each spec is 'key', 'urlname=key', with ':int'
    (0 .. 2**31-1), ':layer' (1 = the bottom layer; 0 is ignored) or ':bool'. The first run on the page the
    session was opened on copies the address's values into the session (bad values are ignored; a
    page asks session.linked(key) where it would reset a value on its first run); every run writes
    the current ones. Pages that change keys inside a fragment call url_write there too.
    More kinds: ':float', ':ints' (whole numbers, comma-separated: a range, a list of units), ':list'
    (words, comma-separated), ':name' and ':names' (a model path or a list of them, by their folder
    names; see link_paths), ':auto' (a choice among numbers and words: a number comes back as an int).
    A number kind may carry a slider's range, ':float:0:2' (a value outside it is ignored). A text longer
    than URL_TEXT_MAX goes into the address as a short id of the text store, and comes back from it
    when the link is opened."""
    ss = st.session_state
    ss["_url_run_specs"] = specs
    tag = "_url_loaded:" + "|".join(specs)
    if not ss.get(tag):
        ss[tag] = True
        q = cold_query()
        for url, key, kind in _url_fields(specs):
            if url in q:
                kind, _, bounds = kind.partition(":")
                v = _url_parse(q[url], kind)
                if bounds and v is not None:       # 'float:0:2': a slider refuses a value outside its range
                    lo, hi = (float(b) for b in bounds.split(":"))
                    v = v if lo <= v <= hi else None
                if v is not None and (kind != "str" or v.strip()):
                    ss[key] = v
                    ss.setdefault("_url_linked", set()).add(key)
    url_write(*specs)


def url_flush():
    """Called by app.py after the page ran: write the address again with the values the page settled
    on (a step reset for a new text, a value chosen by the page), so it never lags one action behind."""
    specs = st.session_state.get("_url_run_specs")
    if specs:
        url_write(*specs)
