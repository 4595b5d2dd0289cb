"""Cached calls of the Intervene, Patch and Probe pages (explorer.analysis.intervene / patch / probe).
Every number comes from `explorer`; this module only caches, with ui.cached.per_model.

Results are frozen dataclasses with read-only arrays (a ProbeReport also holds its fitted sklearn
pipelines, sized by the arrays inside them), kept per model identity in the shared byte-bounded
results cache. The model comes from ui.cached and is only read: the runs use the engine's layer
runner under torch.no_grad, with no hooks and no gradients, so two sessions at once get what each
would get alone (tests/test_analysis_causal.py checks it).
"""
from __future__ import annotations

import streamlit as st

import explorer as E
from explorer.analysis import intervene, patch, probe
from ui import cached


def _clip(text: str) -> str:
    return E.clip_text(text)[0]


# ------------------------------------------------------------------------------------- intervene
@cached.per_model("intervention", "Reading the text again with the change…")
def _intervention(model, text: str, ivs: tuple, words: tuple):
    return intervene.intervene(model, text, ivs, words=words)


def intervention(ctx, text: str, ivs, words) -> intervene.InterventionResult:
    return _intervention(ctx, _clip(text), tuple(ivs), tuple(words))


@cached.per_model("unit_effects", "Changing every unit on its own and reading on…")
def _unit_effects(model, text: str, layer: int, quantity: str, target: str, versus: str | None, op: str,
                  value: float):
    return intervene.unit_effects(model, text, layer, quantity, target, versus, op=op, value=value)


def unit_effects(ctx, text, layer, quantity, target, versus, op="set", value=0.0):
    return _unit_effects(ctx, _clip(text), int(layer), quantity, target, versus or None, op, float(value))


# ----------------------------------------------------------------------------------------- patch
#: The longest pair the Patch page patches, in tokens (stated on the page before it starts).
PATCH_MAX_TOKENS = patch.MAX_TOKENS


def patch_size(ctx, clean, corrupt) -> tuple[int, str | None]:
    """(tokens of the longer text, None), or (tokens, why) when the pair is beyond the grid's limit
    ("patching works on up to N tokens; your texts have M"): only tokenizes, so it is asked first."""
    return patch.size_limit(ctx.model, _clip(clean), _clip(corrupt))


@cached.per_model("patch_grid")
def _grid(model, clean: str, corrupt: str, target: str, versus: str):
    # Blocks of patched runs with the bar moved between them: a tab that has closed or moved on stops
    # the script at the bar's next update, so its work ends with the block it was in.
    bar = st.progress(0.0, text="Patching every layer and position…")
    try:
        return patch.patch_grid(model, clean, corrupt, target, versus, progress=lambda f, what: bar.progress(
            min(1.0, f), text=f"Patching every layer and position: {what}"))
    finally:
        bar.empty()


def grid(ctx, clean, corrupt, target, versus) -> patch.PatchGrid:
    return _grid(ctx, _clip(clean), _clip(corrupt), target, versus)


@cached.per_model("patched")
def _patched(model, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int, quantity: str):
    return patch.patch_one(model, clean, corrupt, target, versus, layer, position, quantity)


def patched(ctx, clean, corrupt, target, versus, layer, position, quantity) -> patch.PatchedRun:
    return _patched(ctx, _clip(clean), _clip(corrupt), target, versus, int(layer), int(position), quantity)


@cached.per_model("patched_trace")
def _patched_trace(model, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int,
                   quantity: str):
    return patch.patched_trace(model, clean, corrupt, target, versus, layer, position, quantity,
                               top_k=cached.TOP_K)


def patched_trace(ctx, clean, corrupt, target, versus, layer, position, quantity) -> E.Trace:
    return _patched_trace(ctx, _clip(clean), _clip(corrupt), target, versus, int(layer), int(position), quantity)


# ----------------------------------------------------------------------------------------- probe
@cached.per_model("probe")
def _probe(model, corpus: str, task: str, max_train: int, max_test: int):
    bar = st.progress(0.0, text="Reading the books and fitting the probes…")

    def progress(frac, what):
        bar.progress(min(1.0, frac), text=f"Fitting the probes: {what}")

    try:
        return probe.probe(model, corpus, task, max_train=max_train, max_test=max_test, progress=progress)
    finally:
        bar.empty()


#: Probes fitted in this server, per model path: {(corpus, task, sizes): report}, oldest first. Keyed by
#: the fit, so a report fitted again (after the results cache dropped it) replaces, not repeats, itself.
_FITTED: dict[str, dict[tuple, probe.ProbeReport]] = {}


def fit_probes(ctx, corpus, task, max_train, max_test) -> probe.ProbeReport:
    """The probes of `task` on every layer and quantity (fitted once per model, task and size)."""
    args = (str(corpus), task, int(max_train), int(max_test))
    rep = _probe(ctx, *args)
    _FITTED.setdefault(ctx.path, {})[args] = rep
    return rep


def fitted_probes(ctx) -> list[probe.ProbeReport]:
    """The probe reports fitted in this server for the model in use (oldest first)."""
    return list(_FITTED.get(ctx.path, {}).values())
