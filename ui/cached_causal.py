"""Cached calls of the Intervene, Patch and Probe pages (explorer.analysis.intervene / patch / probe).
Every number comes from `explorer`; this module only caches.

Results are frozen dataclasses with read-only arrays, shared between sessions with
st.cache_resource. The model comes from ui.cached and is only read: the runs use the engine's layer
runner under torch.no_grad, with no hooks and no gradients, so two sessions at once get what each
would get alone (tests/test_analysis_causal.py checks it).
"""
from __future__ import annotations

import streamlit as st

import explorer as E
from explorer.analysis import intervene, patch, probe
from ui import cached


# ------------------------------------------------------------------------------------- intervene
@st.cache_resource(max_entries=32, show_spinner="Reading the text again with the change…")
def _intervention(path: str, stamp: float, text: str, ivs: tuple, words: tuple):
    return intervene.intervene(cached.model_at(path), text, ivs, words=words)


def intervention(ctx, text: str, ivs, words) -> intervene.InterventionResult:
    return _intervention(ctx.path, ctx.stamp, E.clip_text(text)[0], tuple(ivs), tuple(words))


@st.cache_resource(max_entries=16, show_spinner="Changing every unit on its own and reading on…")
def _unit_effects(path: str, stamp: float, text: str, layer: int, quantity: str, target: str, versus: str | None,
                  op: str, value: float):
    return intervene.unit_effects(cached.model_at(path), text, layer, quantity, target, versus, op=op, value=value)


def unit_effects(ctx, text, layer, quantity, target, versus, op="set", value=0.0):
    return _unit_effects(ctx.path, ctx.stamp, E.clip_text(text)[0], int(layer), quantity, target, versus or None,
                         op, float(value))


# ----------------------------------------------------------------------------------------- patch
@st.cache_resource(max_entries=32, show_spinner="Patching every layer and position…")
def _grid(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str):
    return patch.patch_grid(cached.model_at(path), clean, corrupt, target, versus)


def grid(ctx, clean, corrupt, target, versus) -> patch.PatchGrid:
    return _grid(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus)


@st.cache_resource(max_entries=64, show_spinner=False)
def _patched(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int,
             quantity: str):
    return patch.patch_one(cached.model_at(path), clean, corrupt, target, versus, layer, position, quantity)


def patched(ctx, clean, corrupt, target, versus, layer, position, quantity) -> patch.PatchedRun:
    return _patched(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus,
                    int(layer), int(position), quantity)


@st.cache_resource(max_entries=32, show_spinner=False)
def _patched_trace(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str, layer: int,
                   position: int, quantity: str):
    return patch.patched_trace(cached.model_at(path), clean, corrupt, target, versus, layer, position, quantity,
                               top_k=cached.TOP_K)


def patched_trace(ctx, clean, corrupt, target, versus, layer, position, quantity) -> E.Trace:
    return _patched_trace(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus,
                          int(layer), int(position), quantity)


# ----------------------------------------------------------------------------------------- probe
@st.cache_resource(max_entries=16, show_spinner=False)
def _probe(path: str, stamp: float, corpus: str, task: str, max_train: int, max_test: int):
    bar = st.progress(0.0, text="Reading the books and fitting the probes…")

    def progress(frac, what):
        bar.progress(min(1.0, frac), text=f"Fitting the probes: {what}")

    try:
        return probe.probe(cached.model_at(path), corpus, task, max_train=max_train, max_test=max_test,
                           progress=progress)
    finally:
        bar.empty()


#: Probes fitted in this server, per model path (newest last), for the readout line on Explore.
_FITTED: dict[str, list] = {}


def fit_probes(ctx, corpus, task, max_train, max_test) -> probe.ProbeReport:
    """The probes of `task` on every layer and quantity (fitted once per model, task and size)."""
    rep = _probe(ctx.path, ctx.stamp, str(corpus), task, int(max_train), int(max_test))
    fitted = _FITTED.setdefault(ctx.path, [])
    if not any(r is rep for r in fitted):
        fitted.append(rep)
    return rep


def fitted_probes(ctx) -> list[probe.ProbeReport]:
    """The probe reports fitted in this server for the model in use (oldest first)."""
    return _FITTED.get(ctx.path, [])
