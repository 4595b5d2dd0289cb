"""Cached calls of the analysis pages (Contrast, Compare, Memory, Generate, Lesson, Evaluate) into
explorer.analysis and explorer.training.classify: contrasts, comparisons of two models, attributions,
generations, the first word's fade, the author classifier, the lesson's tables and the syntactic
evaluation.

Every number comes from `explorer`; this module only caches. Heavy results are cached in
cached.results_cache(), one LRU cache bounded by bytes (they are frozen dataclasses holding read-only
arrays, shared safely between sessions; an Attribution holds a mappingproxy, which cache_data could
not pickle). The model itself comes from ui.cached, so each bundle is loaded once for every page.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import explorer as E
from explorer import analysis
from explorer.analysis import evaluate
from explorer.corpus.index import default_index_dir
from explorer.present.presets import REFERENCE_TEXT
from explorer.training import classify
from ui import ROOT, cached


# ---------------------------------------------------------------------------- contrast and memory
@cached.byte_cached("contrast")
def _contrast(path: str, stamp: float, a: str, b: str, align: str):
    ta, tb = cached.cached_trace(path, stamp, a), cached.cached_trace(path, stamp, b)
    return analysis.contrast_traces(ta, tb, align=align)


def contrast(ctx, a: str, b: str, align: str = "start"):
    return _contrast(ctx.path, ctx.stamp, E.clip_text(a)[0], E.clip_text(b)[0], align)


@cached.byte_cached("next_words")
def _next_words(path: str, stamp: float, a: str, b: str, align: str, position: int, words: tuple, k: int):
    m = cached.model_at(path)
    return analysis.next_word_comparison(m, _contrast(path, stamp, a, b, align), position, words, k)


def next_words(ctx, a: str, b: str, align: str, position: int, words, k: int = 8):
    return _next_words(ctx.path, ctx.stamp, E.clip_text(a)[0], E.clip_text(b)[0], align, int(position),
                       tuple(words), k)


@st.cache_data(max_entries=16, show_spinner=False)
def bow_distance(path: str, stamp: float, a: str, b: str, align: str) -> float:
    return analysis.bow_embedding_distance(cached.model_at(path), _contrast(path, stamp, a, b, align))


@cached.byte_cached("attribution", "Attributing…")
def _attribution(path: str, stamp: float, text: str, step: int, word: str | None, versus: str | None,
                 methods: tuple):
    return analysis.attribute(cached.model_at(path), text, step, word, versus=versus, methods=methods)


def attribution(ctx, text: str, step: int, word: str | None, versus: str | None, methods):
    return _attribution(ctx.path, ctx.stamp, E.clip_text(text)[0], int(step), word or None, versus or None,
                        tuple(methods))


@cached.byte_cached("fade", "Replacing the first word and reading again…")
def _fade(paths: tuple, stamps: tuple, names: tuple, text: str, replacements: tuple):
    models = {n: cached.model_at(p) for n, p in zip(names, paths)}
    return analysis.replacement_fade(models, text, replacements)


def fade(paths: dict, text: str, replacements):
    names = tuple(paths)
    ps = tuple(paths[n] for n in names)
    return _fade(ps, tuple(cached.stamp(p) for p in ps), names, text, tuple(replacements))


@cached.byte_cached("generation", "Sampling…")
def _generation(path: str, stamp: float, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return analysis.generate_trace(cached.model_at(path), prompt, n=n, temperature=temperature, top_k=top_k, seed=seed,
                                   trace_top_k=cached.TOP_K)


def generation(ctx, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return _generation(ctx.path, ctx.stamp, E.clip_text(prompt)[0], int(n), float(temperature), int(top_k), int(seed))


def reference_trace(ctx):
    """The model reading the preset paragraphs (for half-lives averaged over more than one sentence)."""
    return cached.cached_trace(ctx.path, ctx.stamp, REFERENCE_TEXT)


# ------------------------------------------------------------------------------ compare two models
@cached.byte_cached("compare", "Reading the text with both models…")
def _comparison(path_a: str, stamp_a: float, path_b: str, stamp_b: float, text: str, layer: int | None):
    return analysis.compare(cached.model_at(path_a, stamp_a), cached.model_at(path_b, stamp_b), text, layer,
                            top_k=cached.TOP_K)


def comparison(ctx, path_b: str, text: str, layer: int | None = None):
    """The sidebar's model (A) and the bundle at `path_b` (B) reading `text` (explorer.analysis.compare)."""
    return _comparison(ctx.path, ctx.stamp, path_b, cached.stamp(path_b), E.clip_text(text)[0], layer)


# ------------------------------------------------------------------------------ author classifier
CLASSIFIER_DIR = "classifier"


def classifier_command(ctx) -> str:
    path = Path(ctx.path)
    try:
        path = path.resolve().relative_to(ROOT)      # shorter when the bundle is in the repository
    except ValueError:
        pass
    return (f"python -m explorer classify --model {path} --corpus ../shared/data/fiction "
            f"--out {path / CLASSIFIER_DIR}")


def _clf_stamp(path: Path) -> float:
    try:
        return (path / classify.WEIGHTS).stat().st_mtime + (path / classify.META).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=8, show_spinner=False)
def _classifier(path: str, stamp: float):
    return classify.load_author_classifier(path)


def author_classifier(ctx):
    """(classifier, None) for the model in use, or (None, why) when its bundle has none or it does
    not belong to this model. Read from <bundle>/classifier/, reloaded when it is rewritten."""
    d = Path(ctx.path) / CLASSIFIER_DIR
    if not (d / classify.META).is_file() or not (d / classify.WEIGHTS).is_file():
        return None, (f"{ctx.name} has no author classifier yet (expected in `{d}`). Create it with\n\n"
                      f"`{classifier_command(ctx)}`")
    try:
        clf = _classifier(str(d), _clf_stamp(d))
        classify.check_compatible(ctx.model, clf)
    except E.ExplorerError as e:
        return None, f"The author classifier in `{d}` cannot be used: {e}"
    return clf, None


@st.cache_data(max_entries=64, show_spinner=False)
def _predict(path: str, stamp: float, clf_stamp: float, text: str) -> dict:
    d = Path(path) / CLASSIFIER_DIR
    return classify.predict(cached.model_at(path), _classifier(str(d), clf_stamp), text)


def predict_author(ctx, text: str) -> dict:
    d = Path(ctx.path) / CLASSIFIER_DIR
    return _predict(ctx.path, ctx.stamp, _clf_stamp(d), E.clip_text(text)[0])


# ------------------------------------------------------------------------------ the lesson's tables
@cached.byte_cached("books_vs_sentence")
def books_vs_sentence(paths: tuple, stamps: tuple, ngram_path: str | None, ngram_stamp: float):
    """The faithful and the balanced model (and the n-gram) on the bartender pair and the reply alone."""
    from explorer.present import lesson
    models = {Path(p).name: cached.model_at(p) for p in paths}
    ng = cached.ngram_model(ngram_path) if ngram_path else None
    return lesson.books_vs_sentence(models, ng)


@cached.byte_cached("char_cells", spinner="Measuring every unit against the position in the line…")
def line_cells(path: str, stamp: float, text: str):
    """Every unit of a character model measured against the position in the line (the cells step)."""
    from explorer.analysis import char_cells
    return char_cells.find_line_cells(cached.model_at(path), text)


# --------------------------------------------------------------------------- syntactic evaluation
def evaluation_cache() -> Path:
    """Where scores are kept on disk (read when called: tests point the cache elsewhere)."""
    return default_index_dir().parent / "evaluations"


@st.cache_resource(max_entries=4, show_spinner=False)
def evaluation_items(folder: str, per_file: int) -> list:
    return evaluate.load_items(folder if Path(folder).is_dir() else None, per_file=per_file)


@st.cache_resource(max_entries=16, show_spinner=False)
def evaluation_scores(path: str, stamp: float, folder: str, per_file: int):
    """Every item scored by the bundle at `path`: from the disk cache, or computed once behind a bar."""
    m = cached.model_at(path)
    items = evaluation_items(folder, per_file)
    store = evaluation_cache()
    if evaluate.cache_path(m, items, store).is_file():
        return evaluate.cached_scores(m, items, store)
    bar = st.progress(0.0, text=f"Scoring the items with {m.name} (once; kept on disk)…")
    try:
        return evaluate.cached_scores(m, items, store,
                                      progress=lambda f, what: bar.progress(f, text=f"{m.name}: {what}"))
    finally:
        bar.empty()
