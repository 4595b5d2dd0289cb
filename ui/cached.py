"""Cached calls every page shares: a model bundle loaded once per server (st.cache_resource: read-only,
shared by every session), its traces and other results in one LRU cache bounded by bytes
(results_cache, byte_cached), its colour ranges and its n-gram. get_trace and trace_or_prompt show a
message on the page instead of raising.

The cached calls of a family of pages live beside this module: cached_analysis, cached_causal and
corpus_index. Every number comes from `explorer`; these modules only cache.
"""
from __future__ import annotations

import logging
import os
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
@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load_model(path: str, stamp: float) -> E.LoadedModel:
    # Shared read-only by every session: explorer.load_model puts it in eval mode with frozen params.
    return E.load_model(path)


def model_at(path: str, stamp_: float | None = None) -> E.LoadedModel:
    """A bundle by path, from the app's shared model cache (loaded once for every page and session).
    `stamp_` is the weights' stamp when the caller has read it already."""
    return _load_model(path, stamp(path) if stamp_ is None else stamp_)


@st.cache_resource(max_entries=8, show_spinner="Calibrating colour ranges…")
def value_ranges(path: str, stamp: float) -> dict:
    """The model's fixed colour ranges (explorer.present.views.value_ranges), computed once per bundle."""
    return views.value_ranges(_load_model(path, stamp))


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


# ---------------------------------------------------------------------- traces and results
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


def cached_trace(path: str, stamp_: float, text: str) -> E.Trace:
    """The shared, cached trace of `text` by the bundle at `path` (no messages; errors raise)."""
    return _trace(path, stamp_, text, TOP_K)


@byte_cached("ngram_bits")
def ngram_bits(path: str, stamp: float, ng_path: str, ng_stamp: float, text: str):
    """The n-gram's surprisal of every token of the model's trace of `text` (the player's second track)."""
    from explorer.present.player import ngram_bits as surprisal_bits
    return surprisal_bits(cached_trace(path, stamp, text), ngram_model(ng_path))


def get_trace(ctx, text: str) -> E.Trace | None:
    """Trace `text` by the sidebar's model `ctx` (cached per model and text). Over-long text is cut to
    settings.MAX_CHARS with a warning; errors are shown as messages and give None."""
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
