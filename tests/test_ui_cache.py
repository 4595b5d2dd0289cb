"""ui.cached.per_model: the app's one way of caching a result computed from a model, keyed by the
model's identity (path, weights' stamp) in the shared byte-bounded results cache; and the rule that
ui/ keeps st.cache_resource for shared resources only (and never uses st.cache_data)."""
from __future__ import annotations

import ast
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import explorer as E
from explorer import settings
from explorer.bundle import WEIGHTS
from explorer.cache import ByteLRU, nbytes_of
from ui import cached

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20

#: The only functions in ui/ that may use st.cache_resource: shared objects loaded once and only read,
#: not per-call results (those go through cached.per_model). See ui/cached.py's docstring.
RESOURCES = {
    "ui/cached.py": {"_load_model", "_ngram", "results_cache"},     # a model, an n-gram, the results cache
    "ui/cached_analysis.py": {"_classifier", "evaluation_items"},  # a classifier file, the test items
    "ui/corpus_index.py": {"_open"},                                # an opened corpus index
    # the Import panel's checkpoint being imported (not a bundle yet, so no model identity) and its
    # check against REF, keyed by the upload's digest
    "ui/importing.py": {"_inferred", "_checked"},
}


@pytest.fixture
def results(monkeypatch):
    """A private results cache for the test (per_model looks results_cache up on every call)."""
    cache = ByteLRU(64 * MB)
    monkeypatch.setattr(cached, "results_cache", lambda: cache)
    return cache


def counting(name: str):
    calls = []

    @cached.per_model(name)
    def fn(model, text):
        calls.append(model)
        return len(E.trace(model, text))
    return fn, calls


def test_computed_once_per_model_identity_and_args(results, models_dir):
    n_tokens, calls = counting("test_tokens")
    lstm, rnn = models_dir / "tiny-lstm", models_dir / "tiny-rnn"
    ref = cached.ModelRef.at(lstm)
    ctx = SimpleNamespace(path=str(lstm), stamp=ref.stamp)             # what a ModelContext offers
    assert n_tokens(ref, "she said") == n_tokens(ctx, "she said") == n_tokens(ref, "she said")
    assert len(calls) == 1 and calls[0] is cached.model_at(str(lstm), ref.stamp)   # the shared model
    assert n_tokens(calls[0], "she said") and len(calls) == 1          # a loaded model is keyed like its ref
    n_tokens(ref, "he said")
    assert len(calls) == 2                                             # other args
    n_tokens(cached.ModelRef.at(rnn), "she said")
    n_tokens(cached.ModelRef(str(lstm), ref.stamp + 1), "she said")
    assert len(calls) == 4                                             # another model, another stamp
    n_tokens(cached.ModelRef.at(rnn), "she said")
    assert len(calls) == 4


def test_a_tuple_of_models_and_unhashable_args(results, models_dir):
    seen = []

    @cached.per_model("test_pair")
    def pair(models, names):
        seen.append(models)
        return tuple(m.name for m in models)

    refs = (cached.ModelRef.at(models_dir / "tiny-lstm"), cached.ModelRef.at(models_dir / "tiny-rnn"))
    assert pair(refs, ("a", "b")) == pair(refs, ("a", "b")) == ("tiny-lstm", "tiny-rnn")
    assert len(seen) == 1
    with pytest.raises(TypeError, match="hashable"):
        pair(refs, ["a", "b"])


def test_a_rewritten_bundle_misses(results, bundle_dir, tmp_path):
    path = tmp_path / "tiny-lstm"
    shutil.copytree(bundle_dir, path)
    before = cached.ModelRef.at(path)
    tr = cached.cached_trace(before, "she said")
    assert cached.cached_trace(cached.ModelRef.at(path), "she said") is tr
    w = path / WEIGHTS
    w.write_bytes(w.read_bytes())                                      # a new epoch written in place
    os.utime(w, (before.stamp + 5, before.stamp + 5))
    after = cached.ModelRef.at(path)
    assert after.stamp != before.stamp
    again = cached.cached_trace(after, "she said")
    assert again is not tr and cached.model_at(str(path), after.stamp) is not cached.model_at(str(path), before.stamp)
    assert cached.cached_trace(before, "she said") is tr                # the old identity's entry is its own


def test_the_byte_budget_evicts(monkeypatch):
    cache = ByteLRU(3 * MB + 64 * 1024)
    monkeypatch.setattr(cached, "results_cache", lambda: cache)
    calls = []

    @cached.per_model("test_block")
    def block(model, i):
        calls.append(i)
        a = np.full(MB // 4, i, np.float32)                            # 1 MB
        a.flags.writeable = False
        return a

    ref = cached.ModelRef("no-such-bundle", 0.0)
    monkeypatch.setattr(cached, "model_at", lambda path, stamp=None: None)   # the values need no model
    for i in range(4):
        assert block(ref, i)[0] == i
        assert cache.nbytes <= cache.budget
    assert len(cache) == 3 and cache.stats()["evictions"] == 1
    block(ref, 3)
    assert calls == [0, 1, 2, 3]                                       # the newest stayed
    block(ref, 0)
    assert calls == [0, 1, 2, 3, 0]                                    # the oldest was dropped


def test_the_app_results_cache_is_bounded_by_the_setting():
    assert cached.results_cache().budget == settings.CACHE_MB * MB


def test_a_fitted_sklearn_pipeline_is_sized_by_its_arrays():
    """A ProbeReport holds fitted pipelines: nbytes_of reaches their arrays through their attributes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
    pipe.fit(rng.normal(size=(300, 256)), rng.integers(0, 3, 300))
    scaler, lr = pipe[0], pipe[-1]
    arrays = lr.coef_.nbytes + lr.intercept_.nbytes + scaler.mean_.nbytes + scaler.scale_.nbytes + scaler.var_.nbytes
    assert arrays <= nbytes_of(pipe) <= 2 * len(pickle.dumps(pipe)) + 64 * 1024


def test_a_probe_fitted_again_is_listed_once(monkeypatch):
    from ui import cached_causal
    monkeypatch.setattr(cached_causal, "_FITTED", {})
    monkeypatch.setattr(cached_causal, "_probe", lambda ctx, *args: object())   # each fit a new report
    ctx = SimpleNamespace(path="m", stamp=1.0)
    cached_causal.fit_probes(ctx, "books", "quote", 10, 5)
    newest = cached_causal.fit_probes(ctx, "books", "quote", 10, 5)   # dropped from the cache, fitted again
    cached_causal.fit_probes(ctx, "books", "gender", 10, 5)
    reps = cached_causal.fitted_probes(ctx)
    assert len(reps) == 2 and reps[0] is newest


# ------------------------------------------------------------------------------ the source rules
def _ui_sources():
    for f in sorted((ROOT / "ui").rglob("*.py")):
        yield f.relative_to(ROOT).as_posix(), ast.parse(f.read_text(encoding="utf-8"), str(f))


def _decorated(tree):
    """{id(node): function name} for every decorator expression (and the call inside it)."""
    out = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in fn.decorator_list:
                for n in ast.walk(d):
                    out[id(n)] = fn.name
    return out


def test_ui_caches_results_with_per_model_only():
    bad, names = [], {}
    for rel, tree in _ui_sources():
        owners = _decorated(tree)
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and n.attr == "cache_data":
                bad.append(f"{rel}:{n.lineno} uses st.cache_data (use cached.per_model)")
            if isinstance(n, ast.Attribute) and n.attr == "cache_resource":
                owner = owners.get(id(n))
                if owner is None:
                    bad.append(f"{rel}:{n.lineno} uses st.cache_resource outside a decorator")
                elif owner not in RESOURCES.get(rel, ()):
                    bad.append(f"{rel}:{n.lineno} caches {owner} with st.cache_resource: a per-call result "
                               "goes through cached.per_model; only the resources in RESOURCES may")
            if (isinstance(n, ast.Call) and isinstance(n.func, (ast.Attribute, ast.Name))
                    and getattr(n.func, "attr", getattr(n.func, "id", None)) == "per_model" and n.args
                    and isinstance(n.args[0], ast.Constant)):
                name = n.args[0].value
                if name in names:
                    bad.append(f"{rel}:{n.lineno} per_model name {name!r} is used by {names[name]} too")
                names[name] = f"{rel}:{n.lineno}"
    assert not bad, "\n".join(bad)
    assert len(names) >= 20                                            # the analysis results all go through it
