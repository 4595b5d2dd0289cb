"""Cached calls for the Intervene, Patch and Probe pages (explorer.analysis.intervene / patch /
probe). Every number comes from `explorer`; this module only caches.

Results are frozen dataclasses with read-only arrays, shared between sessions with
st.cache_resource. The model comes from ui.common's cache and is only read: the runs use the
engine's layer runner under torch.no_grad, with no hooks and no gradients, so two sessions at once
get what each would get alone (tests/test_analysis_causal.py checks it).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import explorer as E
from explorer.analysis import intervene as IV
from explorer.analysis import patch as PA
from explorer.analysis import probe as PR
from explorer.training.evals import BARTENDER_BOY, BARTENDER_GIRL
from ui import common

#: The bartender pair up to "Certainly," — where the model must choose miss or sir.
BARTENDER_CLEAN = BARTENDER_GIRL
BARTENDER_CORRUPT = BARTENDER_BOY
FICTION = common.ROOT.parent / "shared" / "data" / "fiction"
SHAKESPEARE = common.ROOT.parent / "shared" / "data" / "shakespeare"


def words_of(raw: str, limit: int = 6) -> tuple[str, ...]:
    return tuple(w.strip() for w in (raw or "").split(",") if w.strip())[:limit]


@st.cache_resource(max_entries=32, show_spinner="Reading the text again with the change…")
def _intervention(path: str, stamp: float, text: str, ivs: tuple, words: tuple):
    return IV.intervene(common.model_at(path), text, ivs, words=words)


def intervention(ctx, text: str, ivs, words) -> IV.InterventionResult:
    return _intervention(ctx.path, ctx.stamp, E.clip_text(text)[0], tuple(ivs), tuple(words))


@st.cache_resource(max_entries=16, show_spinner="Changing every unit on its own and reading on…")
def _unit_effects(path: str, stamp: float, text: str, layer: int, quantity: str, target: str, versus: str | None,
                  op: str, value: float):
    return IV.unit_effects(common.model_at(path), text, layer, quantity, target, versus, op=op, value=value)


def unit_effects(ctx, text, layer, quantity, target, versus, op="set", value=0.0):
    return _unit_effects(ctx.path, ctx.stamp, E.clip_text(text)[0], int(layer), quantity, target, versus or None,
                         op, float(value))


@st.cache_resource(max_entries=32, show_spinner="Patching every layer and position…")
def _grid(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str):
    return PA.patch_grid(common.model_at(path), clean, corrupt, target, versus)


def grid(ctx, clean, corrupt, target, versus) -> PA.PatchGrid:
    return _grid(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus)


@st.cache_resource(max_entries=64, show_spinner=False)
def _patched(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str, layer: int, position: int,
             quantity: str):
    return PA.patch_one(common.model_at(path), clean, corrupt, target, versus, layer, position, quantity)


def patched(ctx, clean, corrupt, target, versus, layer, position, quantity) -> PA.PatchedRun:
    return _patched(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus,
                    int(layer), int(position), quantity)


@st.cache_resource(max_entries=32, show_spinner=False)
def _patched_trace(path: str, stamp: float, clean: str, corrupt: str, target: str, versus: str, layer: int,
                   position: int, quantity: str):
    return PA.patched_trace(common.model_at(path), clean, corrupt, target, versus, layer, position, quantity,
                            top_k=common.TOP_K)


def patched_trace(ctx, clean, corrupt, target, versus, layer, position, quantity) -> E.Trace:
    return _patched_trace(ctx.path, ctx.stamp, E.clip_text(clean)[0], E.clip_text(corrupt)[0], target, versus,
                          int(layer), int(position), quantity)


def run_sig(ctx, *parts) -> str:
    """A stable id of one patched run for the player (a new run selects its patched position)."""
    import hashlib
    return hashlib.sha1("|".join(map(str, (ctx.path, ctx.stamp) + parts)).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def default_corpus(ctx) -> Path:
    return SHAKESPEARE if PR.is_char_model(ctx.model) else FICTION


def tasks_for(ctx) -> list[str]:
    char = PR.is_char_model(ctx.model)
    return [t for t in PR.TASKS if not (t == "gender" and char) and not (t == "line" and not char)]


@st.cache_resource(max_entries=16, show_spinner=False)
def _probe(path: str, stamp: float, corpus: str, task: str, max_train: int, max_test: int):
    bar = st.progress(0.0, text="Reading the books and fitting the probes…")

    def progress(frac, what):
        bar.progress(min(1.0, frac), text=f"Fitting the probes: {what}")

    try:
        return PR.probe(common.model_at(path), corpus, task, max_train=max_train, max_test=max_test,
                        progress=progress)
    finally:
        bar.empty()


#: Probes fitted in this server, per model path (newest last), for the readout line on Explore.
_FITTED: dict[str, list] = {}


def probe(ctx, corpus, task, max_train, max_test) -> PR.ProbeReport:
    rep = _probe(ctx.path, ctx.stamp, str(corpus), task, int(max_train), int(max_test))
    fitted = _FITTED.setdefault(ctx.path, [])
    if not any(r is rep for r in fitted):
        fitted.append(rep)
    return rep


def probe_line(ctx, tr):
    """On Explore: once a probe has been fitted for this model on the Probe page, its readout of the
    text word by word, as lines under the player. Draws nothing otherwise."""
    from explorer.present import causal_figures as CF
    from explorer.present import views as V
    reps = _FITTED.get(ctx.path, [])
    if not reps:
        return
    opts = [(i, k) for i, r in enumerate(reps) for k in sorted(r.probes)]
    with st.expander("Probe readout: what a layer thinks, word by word", expanded=False):
        j = st.selectbox("Probe", list(range(len(opts))), key="ex_probe",
                         format_func=lambda n: f"{PR.DESCRIPTIONS[reps[opts[n][0]].task]} · layer "
                                               f"{opts[n][1][0] + 1} {opts[n][1][1]} (selectivity "
                                               f"{next(s.selectivity for s in reps[opts[n][0]].scores if (s.layer, s.quantity) == opts[n][1]):+.1%})")
        i, key = opts[j if j is not None and j < len(opts) else 0]
        probs = PR.readout(reps[i], ctx.model, tr, *key)
        common.chart(CF.probe_readout_lines(probs, V.token_labels(tr), reps[i].label_names), "ex_fig_probe")
