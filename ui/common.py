"""Shared front-end helpers for every page: the model sidebar, cached loading and tracing, the layer
picker, preset sentences and error handling.

Pages call these and place what `explorer` computes; they never do maths themselves. A new page
(Contrast, Memory, Lesson, ...) typically starts with

    ctx = common.require_model()          # the model chosen in the sidebar (stops with a message if none)
    layer = common.layer_picker(ctx)      # sidebar radio, kept across pages
    common.preset_buttons("text")         # sidebar buttons that fill the text box with key "text"
    tr = common.get_trace(ctx, text)      # cached per (model, text); None after showing a message

and wraps its body in `with common.guard():` so that nothing ever leaves a traceback on the page.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

import explorer as E
from explorer import settings
from explorer.present import views
from explorer.bundle import WEIGHTS, extract_bundle_zip
from explorer.cache import ByteLRU
from explorer.present.presets import DEFAULT_PRESET, PRESETS

log = logging.getLogger("rnn_explorer.ui")

ROOT = Path(__file__).resolve().parents[1]
#: Folder of model bundles; tests and deployments point it elsewhere.
MODELS_ENV = "RNN_EXPLORER_MODELS"
#: The bundles the app opens on, in order of preference (the first one present): the teaching model
#: whose prior was balanced (README, "The teaching model"), then the faithful model of the books.
DEFAULT_MODELS = ("fiction-lstm-balanced", "fiction-lstm")
DEFAULT_MODEL = DEFAULT_MODELS[0]
#: Next-word candidates kept per token.
TOP_K = 10
#: Longest stretch of tokens drawn at once; longer texts show a window that follows the selection.
WINDOW = 120


def _threads() -> int:
    """Intra-op threads for torch in the app. A trace is a few small matrix products; with all cores
    busy (a browser, other sessions, a training run) OpenMP threads spin-wait on each other and one
    trace took from 10 to 380 ms. Half the cores, at most 4, unless RNN_EXPLORER_THREADS says."""
    raw = os.environ.get("RNN_EXPLORER_THREADS", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, min(4, (os.cpu_count() or 2) // 2))


torch.set_num_threads(_threads())


def models_root() -> Path:
    raw = os.environ.get(MODELS_ENV)
    return Path(raw).expanduser() if raw else ROOT / "pretrained"


def stamp(path: str | Path) -> float:
    """Modification time of the weights: a bundle rewritten on disk (a new epoch) is loaded afresh."""
    try:
        return (Path(path) / WEIGHTS).stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------------------- caching
@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load_model(path: str, stamp: float) -> E.LoadedModel:
    # Shared read-only by every session: explorer.load_model puts it in eval mode with frozen params.
    return E.load_model(path)


def model_at(path: str) -> E.LoadedModel:
    """A bundle by path, from the app's shared model cache (loaded once for every page and session)."""
    return _load_model(path, stamp(path))


def cached_trace(path: str, stamp_: float, text: str) -> E.Trace:
    """The shared, cached trace of `text` by the bundle at `path` (no messages; errors raise)."""
    return _trace(path, stamp_, text, TOP_K)


PLOT_CONFIG = {"displaylogo": False, "displayModeBar": "hover",
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def chart(fig, key: str, downloads: bool = True):
    """Place a Plotly figure the same way on every page, with a Download menu under it (PNG, SVG,
    offline HTML, and the figure's data as CSV / Parquet / JSON; ui/downloads.py)."""
    st.plotly_chart(fig, key=key, theme=None, config=PLOT_CONFIG, width="stretch")
    if downloads:
        from ui.downloads import figure_menu
        figure_menu(fig, key)


#: The n-gram a bundle may carry (python -m explorer ngram --model M --order 3 --save M/ngram-kn3.npz).
NGRAM_GLOB = "ngram-kn*.npz"


def ngram_file(bundle: str | Path) -> Path | None:
    """The bundle's own Kneser-Ney n-gram file (fitted on its vocabulary), or None."""
    found = sorted(Path(bundle).glob(NGRAM_GLOB)) if bundle else []
    return found[0] if found else None


@st.cache_resource(max_entries=2, show_spinner="Loading the n-gram model…")
def _ngram(path: str, stamp: float):
    from explorer.training.ngram import KneserNey
    return KneserNey.load(path)


def ngram_model(path: str | Path):
    """The n-gram stored at `path`, loaded once per server (reloaded when the file changes)."""
    return _ngram(str(path), Path(path).stat().st_mtime)


@st.cache_resource(max_entries=8, show_spinner="Calibrating colour ranges…")
def _value_ranges(path: str, stamp: float) -> dict:
    return views.value_ranges(_load_model(path, stamp))


@st.cache_resource(show_spinner=False)
def results_cache() -> ByteLRU:
    """The one cache of traces and analysis results, shared by every session and bounded by bytes
    (settings.CACHE_MB, env RNN_EXPLORER_CACHE_MB), not by a count of entries: one long trace holds
    as much as thousands of short ones. Results are frozen (read-only arrays), so sharing is safe."""
    return ByteLRU(settings.CACHE_MB * 2**20)


def byte_cached(name: str, spinner: str | None = None):
    """Decorator: cache a function's results in results_cache() under (name, *args).
    `spinner` is shown while a missing result is computed."""
    def wrap(fn):
        def cached(*args):
            cache = results_cache()
            key = (name, *args)
            if spinner and key not in cache:
                with st.spinner(spinner):
                    return cache.get_or_compute(key, lambda: fn(*args))
            return cache.get_or_compute(key, lambda: fn(*args))
        cached.__wrapped__ = fn
        cached.__name__ = fn.__name__
        return cached
    return wrap


@byte_cached("trace")
def _trace(path: str, stamp: float, text: str, top_k: int) -> E.Trace:
    return E.trace(_load_model(path, stamp), text, top_k=top_k)


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


# ---------------------------------------------------------------------------------------- errors
@contextlib.contextmanager
def guard(what: str = "this view"):
    """Show any error as a message instead of a traceback. ExplorerError messages are written for
    people and shown as they are; anything else is logged with its traceback on the server."""
    try:
        yield
    except E.ExplorerError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # noqa: BLE001 - the page must never show a traceback
        log.exception("error while drawing %s", what)
        st.error(f"Something went wrong while drawing {what}: {type(e).__name__}: {e}",
                  icon=":material/error:")


# ---------------------------------------------------------------------------------------- models
def bundle_options() -> dict[str, str]:
    """Label -> path for every bundle in the models folder, then the uploads of this session."""
    out: dict[str, str] = {}
    for p in E.list_models(models_root()):
        out[str(p)] = p.name
    for path, label in st.session_state.get("_uploads", {}).items():
        out[path] = label
    return out


def card_summary(model: E.LoadedModel) -> str:
    cfg = model.config
    vocab = f"{cfg.vocab_size:,} tokens"
    bits = [f"{cfg.cell.upper()} · {cfg.layers} layer{'s' if cfg.layers > 1 else ''} × {cfg.hidden_size} units",
            f"vocabulary {vocab}"]
    metrics = model.card.get("metrics") or {}
    ppl = (metrics.get("test") or {}).get("perplexity") or (metrics.get("valid") or {}).get("perplexity")
    if ppl:
        bits.append(f"perplexity {ppl:,.0f}")
    return " · ".join(bits)


def load_upload(data: bytes, filename: str = "bundle.zip") -> tuple[str, str]:
    """Validate an uploaded bundle zip; return (path, label). Raises ExplorerError with a message
    that says what is wrong (missing file, pickle instead of safetensors, shapes, size, ...)."""
    digest = hashlib.sha256(data).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / "rnn-explorer-uploads"
    prune_uploads(root, keep=digest)
    dest = root / digest
    try:
        path = extract_bundle_zip(data, dest, settings.MAX_UPLOAD_BYTES)
        model = _load_model(str(path), stamp(path))      # full validation happens here
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)          # a rejected bundle leaves nothing on disk (its
        raise                                            # folder is named by its bytes: never a good one)
    stem = Path(filename).stem or "upload"
    return str(path), f"{stem} (uploaded: {model.name})"


#: Unpacked uploads older than this are removed when the next bundle is uploaded.
UPLOAD_MAX_AGE_S = 7 * 24 * 3600


def prune_uploads(root: Path, keep: str = "", max_age_s: float | None = None) -> list[Path]:
    """Remove unpacked upload folders under `root` not touched for `max_age_s` seconds (except
    `keep`); returns what was removed. Errors (a folder in use, permissions) are logged, not raised."""
    limit = UPLOAD_MAX_AGE_S if max_age_s is None else max_age_s
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        try:
            if p.name == keep or not p.is_dir() or p.is_symlink() or now - p.stat().st_mtime < limit:
                continue
            shutil.rmtree(p)
            removed.append(p)
        except OSError as e:
            log.warning("could not remove old upload %s: %s", p, e)
    return removed


def _on_upload():
    """file_uploader callback: validate a new bundle zip before the script runs and select it if it is
    good; a weights file plus a vocabulary is staged for import (ui/importing.py shows what was
    inferred before it is used)."""
    files = st.session_state.get("upload") or []
    st.session_state.pop("_import", None)
    st.session_state.pop("_import_msg", None)
    if not files:
        st.session_state.pop("_upload_msg", None)
        return
    if not files[-1].name.lower().endswith(".zip"):
        from ui import importing
        st.session_state.pop("_upload_msg", None)
        st.session_state.pop("imp_name", None)
        st.session_state["_import"] = importing.stage(files)
        return
    f = files[-1]      # the uploader keeps earlier files: the newest is the one to load
    try:
        path, label = load_upload(f.getvalue(), f.name)
    except E.ExplorerError as e:
        st.session_state["_upload_msg"] = (f.file_id, "error", f"{f.name} is not a usable bundle: {e}")
    except Exception as e:  # noqa: BLE001
        log.exception("upload failed")
        st.session_state["_upload_msg"] = (f.file_id, "error", f"{f.name} could not be read: {type(e).__name__}: {e}")
    else:
        st.session_state.setdefault("_uploads", {})[path] = label
        st.session_state["model"] = path
        st.session_state["_upload_msg"] = (f.file_id, "ok", f"Loaded {label}.")


def _upload_box():
    from ui import importing
    with st.sidebar.expander("Upload a model bundle (.zip) or a PyTorch checkpoint", icon=":material/upload:"):
        st.caption("A zip of a bundle folder: weights.safetensors, tokenizer.json, card.json "
                   "(safetensors only), or a PyTorch state dict (.pt saved with "
                   "torch.save(model.state_dict()), or .safetensors) together with its vocabulary "
                   f"(.json or .txt); at most {settings.MAX_UPLOAD_BYTES // 2**20} MB.")
        files = st.file_uploader("Bundle zip, or weights + vocabulary", type=importing.TYPES, key="upload",
                                 label_visibility="collapsed", accept_multiple_files=True,
                                 max_upload_size=max(1, settings.MAX_UPLOAD_BYTES // 2**20), on_change=_on_upload)
        msg = st.session_state.get("_upload_msg")
        if files and msg and msg[0] == files[-1].file_id:
            (st.error if msg[1] == "error" else st.success)(msg[2])
        importing.pending_box()


def model_sidebar() -> ModelContext | None:
    """Model picker and upload in the sidebar (rendered by app.py on every page). Stores and returns
    the chosen model, or None after saying why there is none."""
    st.session_state["_ctx"] = None
    st.sidebar.subheader("Model")
    options = bundle_options()
    if options:
        want = st.session_state.pop("_url_model", None)        # ?model=NAME in the address opened
        named = [p for p, lab in options.items() if want and lab == want]
        if named:
            st.session_state["model"] = named[0]
        if st.session_state.get("model") not in options:
            by_label = {lab: p for p, lab in options.items()}
            default = next((by_label[n] for n in DEFAULT_MODELS if n in by_label), next(iter(options)))
            st.session_state["model"] = default
        st.sidebar.selectbox("Model", list(options), format_func=lambda p: options.get(p, Path(p).name),
                             key="model", label_visibility="collapsed",
                             help=f"Every bundle in {models_root()} (set {MODELS_ENV} to use another folder), "
                                  "and bundles uploaded in this session.")
    _upload_box()
    if not options:
        st.session_state["_no_model"] = (f"No model bundle found in `{models_root()}`. Train one with "
                                         "`python -m explorer train --corpus ... --out pretrained/NAME`, "
                                         "or upload a bundle zip in the sidebar.")
        return None
    path = st.session_state["model"]
    try:
        st_ = stamp(path)
        model = _load_model(path, st_)
        ranges = _value_ranges(path, st_)
    except E.ExplorerError as e:
        st.session_state["_no_model"] = f"The model bundle `{path}` cannot be used: {e}"
        return None
    except Exception as e:  # noqa: BLE001
        log.exception("loading %s failed", path)
        st.session_state["_no_model"] = f"The model bundle `{path}` could not be loaded: {type(e).__name__}: {e}"
        return None
    ctx = ModelContext(path, st_, model, ranges, uploaded=path in st.session_state.get("_uploads", {}))
    st.sidebar.caption(card_summary(model))
    st.session_state["_ctx"] = ctx
    return ctx


def require_model() -> ModelContext:
    """The model chosen in the sidebar; stops the page with a message when there is none."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        st.error(st.session_state.get("_no_model", "No model is loaded."), icon=":material/error:")
        st.stop()
    return ctx


# ------------------------------------------------------------------------------- shared controls
def keep(key: str, default=None):
    """Before a widget with this key is drawn: hand its value to the browser through the Session State
    API on every run (issue 14). A widget remounted after a page switch or a change above it otherwise
    shows its own default (index 0) or nothing, while Python holds the kept value."""
    ss = st.session_state
    if key in ss:
        ss[key] = ss[key]
    elif default is not None:
        ss[key] = default


def layer_picker(ctx: ModelContext) -> int:
    """Sidebar radio 'Layer 1 .. L' (key 'layer', kept across pages); returns the 0-based layer."""
    n = ctx.layers
    if st.session_state.get("layer") not in range(n):
        st.session_state["layer"] = n - 1
    keep("layer")                    # the default (top layer) too, not only a layer the user clicked
    st.sidebar.subheader("Layer")
    return st.sidebar.radio("Layer", list(range(n)), format_func=lambda i: f"Layer {i + 1}",
                            key="layer", horizontal=True, label_visibility="collapsed",
                            persist_state="session",
                            help="Layer 1 reads the word embeddings; each higher layer reads the h of the one below.")


def _set_text(target: str, text: str):
    st.session_state[target] = text


def preset_buttons(target: str = "text"):
    """Sidebar buttons that put a preset sentence into the text widget with key `target`."""
    st.sidebar.subheader("Preset sentences")
    for i, (name, text) in enumerate(PRESETS.items()):
        st.sidebar.button(name, key=f"preset_{i}", on_click=_set_text, args=(target, text),
                          width="stretch", help=text)


def default_text() -> str:
    return PRESETS[DEFAULT_PRESET]


def trace_or_prompt(ctx: ModelContext, text: str, empty: str, no_words: str) -> E.Trace | None:
    """The trace of a page's text, or None after a friendly message: `empty` for blank text,
    `no_words` when nothing but the boundary token was read, get_trace's messages otherwise."""
    if not text.strip():
        st.info(empty, icon=":material/edit:")
        return None
    tr = get_trace(ctx, text)
    if tr is not None and len(tr) <= 1:
        st.info(no_words, icon=":material/edit:")
        return None
    return tr


def get_trace(ctx: ModelContext, text: str) -> E.Trace | None:
    """Trace `text` (cached per model and text). Over-long text is cut to settings.MAX_CHARS with a
    warning; errors are shown as messages and give None."""
    clipped, cut = E.clip_text(text)
    if cut:
        st.warning(f"The text is {len(text):,} characters long; the limit is {settings.MAX_CHARS:,} "
                   f"characters (RNN_EXPLORER_MAX_CHARS). Showing the first {len(clipped):,} characters.",
                   icon=":material/content_cut:")
    try:
        return _trace(ctx.path, ctx.stamp, clipped, TOP_K)
    except E.ExplorerError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # noqa: BLE001
        log.exception("trace failed")
        st.error(f"The model could not read this text: {type(e).__name__}: {e}", icon=":material/error:")
    return None


# ------------------------------------------------------------------ lecture mode and the URL state
#: Query parameter and session key of the presenter view (?present=1).
PRESENT = "present"
#: Texts longer than this stay out of the address bar (a URL has to fit a browser's limits).
URL_TEXT_MAX = 2000

#: The presenter view: large type, black on white with heavy strokes (a washed-out projector loses
#: greys and thin lines), the page's chrome hidden; the Explore player keeps its strip and one view.
PRESENT_CSS = """<style>
.stApp, .stApp [data-testid="stMain"] { background:#ffffff !important; color:#000000 !important; }
[data-testid="stMain"] .block-container { padding-top:3.2rem; max-width:100% }
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label,
[data-testid="stMain"] .stMarkdown, [data-testid="stMain"] textarea, [data-testid="stMain"] input
  { font-size:24px !important; line-height:1.4 !important; color:#000000 !important; font-weight:500 }
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3, [data-testid="stMain"] h4
  { font-size:34px !important; color:#000000 !important; font-weight:800 !important }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { display:none }
[data-testid="stMain"] button { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
[data-testid="stMain"] button[kind="primary"], [data-testid="stMain"] button[data-testid="stBaseButton-primary"]
  { background:#000 !important; color:#fff !important }
[data-testid="stMain"] button[data-testid="stBaseButton-primary"] * { color:#fff !important }
[data-testid="stHeader"] { background:#ffffff }
.tok-strip .tok { font-size:30px !important; padding:6px 10px !important; border:2px solid #000 !important; color:#000 !important }
.tok-strip .tok.sel { outline:5px solid #000 !important; box-shadow:none !important }
.st-key-text { display:none }
.rsx { color:#000 !important }
.rsx-step, .rsx-speed, .rsx-where { display:none !important }
.rsx-readout { font-size:28px !important; font-weight:600 }
.rsx-btn { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
[data-testid="stMain"] .rsx-play { background:#000 !important; color:#fff !important }
.rsx-tab { font-size:22px !important; border:2px solid #000 !important; color:#000 !important }
</style>"""


def _flag(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def presenting() -> bool:
    """Is the presenter view on (URL ?present=1 or the sidebar switch)?"""
    return bool(st.session_state.get(PRESENT))


def lecture_mode(page=None) -> bool:
    """Called by app.py on every run, before the model sidebar. The first run of a session reads the
    address it was opened with (?present=1, ?model=NAME; the page's own keys are read by url_state on
    that page only). Draws the sidebar switch "Presenter view" and, when it is on, the presenter
    style and a sidebar collapsed once per switch-on."""
    from ui import clicker
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
    on = st.sidebar.toggle("Presenter view", key=PRESENT,
                           help="For a projector: large type, high contrast, the sidebar folded away and, on "
                                "Explore, the token strip and one view. A presentation remote (PageDown/PageUp, "
                                "'.'/'b') steps the player and the lesson. Add ?present=1 to a link to open in it.")
    if on and not ss.get("_present_n"):
        ss["_present_n"] = int(time.time() * 1000) % 2**31 or 1
    elif not on:
        ss["_present_n"] = 0
    if on:                           # (off: no component at all, nothing more to send)
        st.html(PRESENT_CSS)
        clicker.mount("_lecture", collapse=ss["_present_n"])
    return on


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
        if kind == "layer":                    # 1-based in the address, 0-based in the app
            return v - 1 if v >= 1 else None
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
        return str(int(v) + (1 if kind == "layer" else 0))
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
    (0 .. 2**31-1), ':layer' (1-based in the address) or ':bool'. The first run on the page the
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
