"""Cached calls every page shares, and the one way results are cached: `per_model`.

Results. Every cached call that computes something from a model (a trace, a contrast, a patch grid, a
corpus query...) is a function `fn(model, *args)` decorated with `@per_model(name, spinner)`. Pages call
it as `fn(ctx, *args)`, where ctx is the sidebar's ModelContext (or a ModelRef, or a model that
model_at loaded): the result is kept in results_cache(), one LRU cache bounded by bytes and shared by
every session, under (name, the model's identity (path, weights' stamp), *args). A bundle rewritten on
disk gets a new stamp, so its old results are never served for it. Results are frozen dataclasses with
read-only arrays, DataFrames and read-only mappings: no page may change one in place.

Resources. st.cache_resource is kept for the shared objects that are not per-call results, each loaded
once per server and only read afterwards (tests/test_ui_cache.py holds the list and checks ui/):
  * cached._load_model: the model itself (eval mode, frozen parameters; the results cache calls it);
  * cached._ngram: a bundle's n-gram model (a file loaded, like the model);
  * cached.results_cache: the results cache itself;
  * cached_analysis._classifier: the author classifier stored beside a bundle (a file loaded);
  * cached_analysis.evaluation_items: the evaluation's test items (files read; shared by every model);
  * corpus_index._open: an opened corpus index (arrays on disk, read by every query).
There is no st.cache_data: it copies results by pickling, and nothing here needs a private copy.

The cached calls of a family of pages live beside this module: cached_analysis, cached_causal and
corpus_index. Every number comes from `explorer`; these modules only cache. get_trace and
trace_or_prompt show a message on the page instead of raising.
"""
from __future__ import annotations

import functools
import logging
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

import explorer as E
from explorer import settings
from explorer.bundle import WEIGHTS
from explorer.cache import ByteLRU
from explorer.present import views

log = logging.getLogger("rnn_explorer.ui")

#: Next-word candidates kept per token.
TOP_K = 10


def _threads() -> int:
    """Intra-op threads for torch in the app. A trace is a few small matrix products; with all cores
    busy (a browser, other sessions, a training run) OpenMP threads spin-wait on each other and one
    trace took from 10 to 380 ms. Half the cores, at most 4, unless RNN_EXPLORER_THREADS says
    (explorer.settings.threads)."""
    return settings.threads(os.cpu_count() or 2)


torch.set_num_threads(_threads())


def stamp(path: str | Path) -> float:
    """Modification time of the weights: a bundle rewritten on disk (a new epoch) is loaded afresh."""
    try:
        return (Path(path) / WEIGHTS).stat().st_mtime
    except OSError:
        return 0.0


# ------------------------------------------------------------------------------------- models
#: The identity each model was loaded under, (path, stamp): a model passed to a cached call (a cached
#: call calling another) is keyed like the context it was loaded for.
_IDENTITY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load_model(path: str, stamp: float) -> E.LoadedModel:
    # Shared read-only by every session: explorer.load_model puts it in eval mode with frozen params.
    model = E.load_model(path)
    _IDENTITY[model] = (path, float(stamp))
    return model


def model_at(path: str, stamp_: float | None = None) -> E.LoadedModel:
    """A bundle by path, from the app's shared model cache (loaded once for every page and session).
    `stamp_` is the weights' stamp when the caller has read it already."""
    return _load_model(str(path), stamp(path) if stamp_ is None else stamp_)


@dataclass(frozen=True)
class ModelRef:
    """A bundle's identity, (path, weights' stamp), for a cached call made without a ModelContext
    (a second model, a bundle the page names)."""
    path: str
    stamp: float

    @classmethod
    def at(cls, path: str | Path) -> "ModelRef":
        """The bundle at `path` as it is on disk now."""
        return cls(str(path), stamp(path))


def identity(m) -> tuple:
    """The results cache's key for a model: (path, stamp) of a ModelContext or ModelRef, the identity a
    model was loaded under by model_at, or a tuple of those for a tuple of models."""
    if isinstance(m, tuple):
        return tuple(identity(x) for x in m)
    if isinstance(m, E.LoadedModel):
        try:
            return _IDENTITY[m]
        except KeyError:
            raise TypeError(f"the model {m.name!r} was not loaded by ui.cached.model_at: "
                            "pass its ModelContext or a ModelRef") from None
    return (str(m.path), float(m.stamp))


def _models(m):
    """The models `identity(m)` names (loaded once, from the shared model cache)."""
    if isinstance(m, tuple):
        return tuple(_models(x) for x in m)
    return m if isinstance(m, E.LoadedModel) else model_at(m.path, m.stamp)


# ------------------------------------------------------------------------- the results cache
@st.cache_resource(show_spinner=False)
def results_cache() -> ByteLRU:
    """The one cache of traces and analysis results, shared by every session and bounded by bytes
    (settings.CACHE_MB, env RNN_EXPLORER_CACHE_MB), not by a count of entries: one long trace holds
    as much as thousands of short ones. Entries are sized by explorer.cache.nbytes_of (arrays, tensors,
    DataFrames, and the arrays inside fitted objects such as a probe's sklearn pipelines)."""
    return ByteLRU(settings.CACHE_MB * 2**20)


def per_model(name: str, spinner: str | None = None):
    """Decorator for a cached call that computes a result from a model.

    Write the function as `fn(model, *args)` (model: a LoadedModel, or a tuple of them); call it as
    `fn(ctx, *args)` with the page's ModelContext, a ModelRef, a model model_at loaded, or a tuple of
    those. The result is kept in results_cache() under (name, identity(ctx), *args); on a miss,
    fn(the model(s), *args) is computed once (sessions asking at the same time wait for it) with
    `spinner` shown. Args must be hashable: callers pass tuples, not lists, and texts clipped with
    E.clip_text. The result is shared: it must never be changed in place."""
    def wrap(fn):
        @functools.wraps(fn)
        def cached(model, *args):
            cache = results_cache()
            key = (name, identity(model), *args)
            try:
                hash(key)
            except TypeError as e:
                raise TypeError(f"{fn.__qualname__}: cached arguments must be hashable ({e})") from None

            def compute():
                return fn(_models(model), *args)

            if spinner and key not in cache:
                with st.spinner(spinner):
                    return cache.get_or_compute(key, compute)
            return cache.get_or_compute(key, compute)
        return cached
    return wrap


# --------------------------------------------------------------------- colour ranges, n-gram
@per_model("value_ranges", spinner="Calibrating colour ranges…")
def _value_ranges(model) -> dict:
    return views.value_ranges(model)


def value_ranges(path: str, stamp_: float) -> dict:
    """The model's fixed colour ranges (explorer.present.views.value_ranges), computed once per bundle."""
    return _value_ranges(ModelRef(str(path), stamp_))


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


# ---------------------------------------------------------------------------------- traces
@per_model("trace")
def _trace(model, text: str, top_k: int) -> E.Trace:
    return E.trace(model, text, top_k=top_k)


def cached_trace(model, text: str) -> E.Trace:
    """The shared, cached trace of `text` (no messages; errors raise). `model`: as for per_model."""
    return _trace(model, text, TOP_K)


@per_model("ngram_bits")
def _ngram_bits(model, ng_path: str, ng_stamp: float, text: str):
    from explorer.present.player import ngram_bits as surprisal_bits
    return surprisal_bits(cached_trace(model, text), ngram_model(ng_path))


def ngram_bits(path: str, stamp_: float, ng_path: str, ng_stamp: float, text: str):
    """The n-gram's surprisal of every token of the model's trace of `text` (the player's second track)."""
    return _ngram_bits(ModelRef(str(path), stamp_), ng_path, ng_stamp, text)


def get_trace(ctx, text: str) -> E.Trace | None:
    """Trace `text` by the sidebar's model `ctx` (cached per model and text). Over-long text is cut to
    settings.MAX_CHARS with a warning; errors are shown as messages and give None."""
    clipped, cut = E.clip_text(text)
    if cut:
        st.warning(f"The text is {len(text):,} characters long; the limit is {settings.MAX_CHARS:,} "
                   f"characters (RNN_EXPLORER_MAX_CHARS). Showing the first {len(clipped):,} characters.",
                   icon=":material/content_cut:")
    try:
        return cached_trace(ctx, clipped)
    except E.ExplorerError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:  # noqa: BLE001
        log.exception("trace failed")
        st.error(f"The model could not read this text: {type(e).__name__}: {e}", icon=":material/error:")
    return None


def trace_or_prompt(ctx, text: str, empty: str, no_words: str) -> E.Trace | None:
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
