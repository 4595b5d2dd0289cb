"""Cached calls of the analysis pages (Contrast, Compare, Memory, Generate, Lesson, Evaluate) into
explorer.analysis and explorer.training.classify: contrasts, comparisons of two models, attributions,
generations, the first word's fade, the author classifier, the lesson's tables and the syntactic
evaluation.

Every number comes from `explorer`; this module only caches, with ui.cached.per_model (results kept
per model identity in the shared byte-bounded results cache). st.cache_resource holds two resources
read from disk, not results: the author classifier and the evaluation's items.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import streamlit as st

import explorer as E
from explorer import analysis
from explorer.analysis import evaluate
from explorer.corpus.index import default_index_dir
from explorer.present.presets import REFERENCE_TEXT
from explorer.training import classify
from ui import ROOT, cached


def _clip(text: str) -> str:
    return E.clip_text(text)[0]


# ---------------------------------------------------------------------------- contrast and memory
@cached.per_model("contrast")
def _contrast(model, a: str, b: str, align: str):
    return analysis.contrast_traces(cached.cached_trace(model, a), cached.cached_trace(model, b), align=align)


def contrast(ctx, a: str, b: str, align: str = "start"):
    return _contrast(ctx, _clip(a), _clip(b), align)


@cached.per_model("next_words")
def _next_words(model, a: str, b: str, align: str, position: int, words: tuple, k: int):
    return analysis.next_word_comparison(model, _contrast(model, a, b, align), position, words, k)


def next_words(ctx, a: str, b: str, align: str, position: int, words, k: int = 8):
    return _next_words(ctx, _clip(a), _clip(b), align, int(position), tuple(words), int(k))


@cached.per_model("bow_distance")
def _bow_distance(model, a: str, b: str, align: str) -> float:
    return analysis.bow_embedding_distance(model, _contrast(model, a, b, align))


def bow_distance(path: str, stamp: float, a: str, b: str, align: str) -> float:
    return _bow_distance(cached.ModelRef(path, stamp), _clip(a), _clip(b), align)


#: The most tokens an attribution scores, those ending at the step explained (stated on the Memory page).
ATTRIBUTION_WINDOW = analysis.attribution.WINDOW


@cached.per_model("attribution")
def _attribution(model, text: str, step: int, word: str | None, versus: str | None, methods: tuple):
    # In blocks with the bar moved between them: a tab that has closed or moved on stops the script at
    # the bar's next update, so its work ends with the block it was in.
    bar = st.progress(0.0, text="Attributing…")
    try:
        return analysis.attribute(model, text, step, word, versus=versus, methods=methods, progress=lambda f, what:
                                  bar.progress(min(1.0, f), text=f"Attributing: {what}"))
    finally:
        bar.empty()


def attribution(ctx, text: str, step: int, word: str | None, versus: str | None, methods):
    return _attribution(ctx, _clip(text), int(step), word or None, versus or None, tuple(methods))


@cached.per_model("fade", "Replacing the first word and reading again…")
def _fade(models: tuple, names: tuple, text: str, replacements: tuple):
    return analysis.replacement_fade(dict(zip(names, models)), text, replacements)


def fade(paths: dict, text: str, replacements):
    """The first word's fade in each model of `paths` ({name: bundle path})."""
    names = tuple(paths)
    return _fade(tuple(cached.ModelRef.at(paths[n]) for n in names), names, _clip(text), tuple(replacements))


@cached.per_model("generation", "Sampling…")
def _generation(model, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return analysis.generate_trace(model, prompt, n=n, temperature=temperature, top_k=top_k, seed=seed,
                                   trace_top_k=cached.TOP_K)


def generation(ctx, prompt: str, n: int, temperature: float, top_k: int, seed: int):
    return _generation(ctx, _clip(prompt), int(n), float(temperature), int(top_k), int(seed))


def reference_trace(ctx):
    """The model reading the preset paragraphs (for half-lives averaged over more than one sentence)."""
    return cached.cached_trace(ctx, REFERENCE_TEXT)


# ------------------------------------------------------------------------------ compare two models
@cached.per_model("compare", "Reading the text with both models…")
def _comparison(models: tuple, text: str, layer: int | None):
    model_a, model_b = models
    return analysis.compare(model_a, model_b, text, layer, top_k=cached.TOP_K)


def comparison(ctx, path_b: str, text: str, layer: int | None = None):
    """The sidebar's model (A) and the bundle at `path_b` (B) reading `text` (explorer.analysis.compare)."""
    return _comparison((ctx, cached.ModelRef.at(path_b)), _clip(text), layer)


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
    """A resource, not a result: the classifier files stored beside a bundle, loaded once (like the model)."""
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


@cached.per_model("author")
def _predict(model, clf_path: str, clf_stamp: float, text: str):
    return MappingProxyType(classify.predict(model, _classifier(clf_path, clf_stamp), text))


def predict_author(ctx, text: str):
    """{label: probability} (read-only) of the author classifier beside the model's bundle."""
    d = Path(ctx.path) / CLASSIFIER_DIR
    return _predict(ctx, str(d), _clf_stamp(d), _clip(text))


# ------------------------------------------------------------------------------ the lesson's tables
@cached.per_model("books_vs_sentence")
def _books_vs_sentence(models: tuple, names: tuple, ngram_path: str | None, ngram_stamp: float):
    from explorer.present import lesson
    ng = cached.ngram_model(ngram_path) if ngram_path else None
    return lesson.books_vs_sentence(dict(zip(names, models)), ng)


def books_vs_sentence(paths: tuple, stamps: tuple, ngram_path: str | None, ngram_stamp: float):
    """The faithful and the balanced model (and the n-gram) on the bartender pair and the reply alone."""
    refs = tuple(cached.ModelRef(str(p), s) for p, s in zip(paths, stamps))
    return _books_vs_sentence(refs, tuple(Path(p).name for p in paths), ngram_path, ngram_stamp)


@cached.per_model("char_cells", spinner="Measuring every unit against the position in the line…")
def _line_cells(model, text: str):
    from explorer.analysis import char_cells
    return char_cells.find_line_cells(model, text)


def line_cells(path: str, stamp: float, text: str):
    """Every unit of a character model measured against the position in the line (the cells step)."""
    return _line_cells(cached.ModelRef(str(path), stamp), text)


# --------------------------------------------------------------------------- syntactic evaluation
def evaluation_cache() -> Path:
    """Where scores are kept on disk (read when called: tests point the cache elsewhere)."""
    return default_index_dir().parent / "evaluations"


@st.cache_resource(max_entries=4, show_spinner=False)
def evaluation_items(folder: str, per_file: int) -> list:
    """A resource, not a result: the test items read from disk, the same for every model scored."""
    return evaluate.load_items(folder if Path(folder).is_dir() else None, per_file=per_file)


@cached.per_model("evaluation")
def _evaluation_scores(m, folder: str, per_file: int):
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


def evaluation_scores(path: str, stamp: float, folder: str, per_file: int):
    """Every item scored by the bundle at `path`: from the disk cache, or computed once behind a bar."""
    return _evaluation_scores(cached.ModelRef(str(path), stamp), folder, int(per_file))
