"""Helpers shared by the analysis pages (Contrast, Memory, Generate, Lesson): cached calls into
explorer.analysis / explorer.training.classify, chart placement and small widgets.

Every number comes from `explorer`; this module only caches and places. Heavy results are cached
in common.results_cache(), one LRU cache bounded by bytes (they are frozen dataclasses holding
read-only arrays, shared safely between sessions; an Attribution holds a mappingproxy, which
cache_data could not pickle). The model itself
comes from ui.common's cache, so each bundle is loaded once for every page.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import explorer as E
from explorer import analysis as A
from explorer.training import classify as C
from explorer.present.presets import REFERENCE_TEXT
from ui import common

chart = common.chart
model_at = common.model_at


# ------------------------------------------------------------------------------------ cached calls
@common.byte_cached("contrast")
def _contrast(path: str, stamp: float, a: str, b: str, align: str):
    ta, tb = common.cached_trace(path, stamp, a), common.cached_trace(path, stamp, b)
    return A.contrast_traces(ta, tb, align=align)


def contrast(ctx: common.ModelContext, a: str, b: str, align: str = "start"):
    return _contrast(ctx.path, ctx.stamp, E.clip_text(a)[0], E.clip_text(b)[0], align)


@common.byte_cached("next_words")
def _next_words(path: str, stamp: float, a: str, b: str, align: str, position: int, words: tuple, k: int):
    m = model_at(path)
    return A.next_word_comparison(m, _contrast(path, stamp, a, b, align), position, words, k)


def next_words(ctx, a: str, b: str, align: str, position: int, words, k: int = 8):
    return _next_words(ctx.path, ctx.stamp, E.clip_text(a)[0], E.clip_text(b)[0], align, int(position),
                       tuple(words), k)


@st.cache_data(max_entries=16, show_spinner=False)
def bow_distance(path: str, stamp: float, a: str, b: str, align: str) -> float:
    return A.bow_embedding_distance(model_at(path), _contrast(path, stamp, a, b, align))


@common.byte_cached("attribution", "Attributing…")
def _attribution(path: str, stamp: float, text: str, step: int, word: str | None, versus: str | None,
                 methods: tuple):
    return A.attribute(model_at(path), text, step, word, versus=versus, methods=methods)


def attribution(ctx, text: str, step: int, word: str | None, versus: str | None, methods):
    return _attribution(ctx.path, ctx.stamp, E.clip_text(text)[0], int(step), word or None, versus or None,
                        tuple(methods))


@common.byte_cached("fade", "Replacing the first word and reading again…")
def _fade(paths: tuple, stamps: tuple, names: tuple, text: str, replacements: tuple):
    models = {n: model_at(p) for n, p in zip(names, paths)}
    return A.replacement_fade(models, text, replacements)


def fade(paths: dict, text: str, replacements):
    names = tuple(paths)
    ps = tuple(paths[n] for n in names)
    return _fade(ps, tuple(common.stamp(p) for p in ps), names, text, tuple(replacements))


@common.byte_cached("generation", "Sampling…")
def _generation(path: str, stamp: float, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return A.generate_trace(model_at(path), prompt, n=n, temperature=temperature, top_k=top_k, seed=seed,
                            trace_top_k=common.TOP_K)


def generation(ctx, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return _generation(ctx.path, ctx.stamp, E.clip_text(prompt)[0], int(n), float(temperature), int(top_k), int(seed))


def reference_trace(ctx):
    """The model reading the preset paragraphs (for half-lives averaged over more than one sentence)."""
    return common.cached_trace(ctx.path, ctx.stamp, REFERENCE_TEXT)


# ------------------------------------------------------------------------------ author classifier
CLASSIFIER_DIR = "classifier"


def classifier_command(ctx) -> str:
    path = Path(ctx.path)
    try:
        path = path.resolve().relative_to(common.ROOT)      # shorter when the bundle is in the repository
    except ValueError:
        pass
    return (f"python -m explorer classify --model {path} --corpus ../shared/data/fiction "
            f"--out {path / CLASSIFIER_DIR}")


def _clf_stamp(path: Path) -> float:
    try:
        return (path / C.WEIGHTS).stat().st_mtime + (path / C.META).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=8, show_spinner=False)
def _classifier(path: str, stamp: float):
    return C.load_author_classifier(path)


def author_classifier(ctx):
    """(classifier, None) for the model in use, or (None, why) when its bundle has none or it does
    not belong to this model. Read from <bundle>/classifier/, reloaded when it is rewritten."""
    d = Path(ctx.path) / CLASSIFIER_DIR
    if not (d / C.META).is_file() or not (d / C.WEIGHTS).is_file():
        return None, (f"{ctx.name} has no author classifier yet (expected in `{d}`). Create it with\n\n"
                      f"`{classifier_command(ctx)}`")
    try:
        clf = _classifier(str(d), _clf_stamp(d))
        C.check_compatible(ctx.model, clf)
    except E.ExplorerError as e:
        return None, f"The author classifier in `{d}` cannot be used: {e}"
    return clf, None


@st.cache_data(max_entries=64, show_spinner=False)
def _predict(path: str, stamp: float, clf_stamp: float, text: str) -> dict:
    d = Path(path) / CLASSIFIER_DIR
    return C.predict(model_at(path), _classifier(str(d), clf_stamp), text)


def predict_author(ctx, text: str) -> dict:
    d = Path(ctx.path) / CLASSIFIER_DIR
    return _predict(ctx.path, ctx.stamp, _clf_stamp(d), E.clip_text(text)[0])


# -------------------------------------------------------------------------------------- widgets
def word_or_none(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw or None


def friendly(e: Exception) -> str:
    """A user-typed word the vocabulary lacks raises ValueError/IndexError with a readable message."""
    msg = str(e).strip()
    return msg if msg[:1] in ("'", '"') else msg[:1].upper() + msg[1:]
