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
#: The bundle selected when the app opens (when present).
DEFAULT_MODEL = "fiction-lstm"
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


def chart(fig, key: str):
    """Place a Plotly figure the same way on every page."""
    st.plotly_chart(fig, key=key, theme=None, config=PLOT_CONFIG, width="stretch")


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
    path = extract_bundle_zip(data, dest, settings.MAX_UPLOAD_BYTES)
    model = _load_model(str(path), stamp(path))          # full validation happens here
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
        if st.session_state.get("model") not in options:
            default = next((p for p, lab in options.items() if lab == DEFAULT_MODEL), next(iter(options)))
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
def layer_picker(ctx: ModelContext) -> int:
    """Sidebar radio 'Layer 1 .. L' (key 'layer', kept across pages); returns the 0-based layer."""
    n = ctx.layers
    if st.session_state.get("layer") not in range(n):
        st.session_state["layer"] = n - 1
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
