"""The Corpus and Units pages through AppTest, on the tiny bundles and a small default corpus: the index is
built on first use into a temporary cache folder (never into the repository)."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from conftest import TEXT

from apptest_support import open_page, specs as _specs


@pytest.fixture
def env(models_dir, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text(TEXT, encoding="utf-8")
    (corpus / "two.txt").write_text('She said "yes." He said "no."\n\n' * 4, encoding="utf-8")
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models_dir))
    monkeypatch.setenv("RNN_EXPLORER_DEFAULT_CORPUS", str(corpus))
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _open(page: str):
    """The app at `page`, on the folders the env fixture set."""
    return open_page(None, None, page)


def _views(at):
    return [(s["layout"].get("meta") or {}).get("view") for s in _specs(at)]


def test_corpus_page_builds_the_default_index_and_matches(env):
    at = _open("ui/pages/corpus.py")
    cards = list((env / "cache" / "indexes").glob("*/card.json"))
    assert len(cards) == 1, "the default index is built on first use, in the cache folder"
    assert "trajectory" in _views(at)
    at.slider(key="corpus_thr").set_value(0.2).run()      # the tiny random model's units are weaker
    assert "corpus-selection" in _views(at)
    n_units = int(at.metric[0].value)
    assert n_units > 0
    # a lower threshold puts more units on
    at.slider(key="corpus_thr").set_value(0.05).run()
    assert not at.exception and int(at.metric[0].value) >= n_units
    assert int(at.metric[1].value.replace(",", "")) > 0
    assert "corpus-match" in _views(at)
    # the selection widget moves the range
    at.slider(key="corpus_sel").set_value((1, 3)).run()
    assert not at.exception
    sel = [s for s in _specs(at) if (s["layout"].get("meta") or {}).get("view") == "corpus-selection"][0]
    rect = sel["layout"]["shapes"][0]
    assert (rect["x0"], rect["x1"]) == (0.5, 3.5)
    # the bartender pair draws two paths
    at.button(key="traj_pair_bar").click().run()
    traj = [s for s in _specs(at) if (s["layout"].get("meta") or {}).get("view") == "trajectory"][0]
    assert len([d for d in traj["data"] if d["type"] == "scatter"]) == 2


def test_corpus_page_with_a_threshold_no_unit_passes(env):
    at = _open("ui/pages/corpus.py")
    at.slider(key="corpus_thr").set_value(0.95).run()
    assert not at.exception and not at.error
    if int(at.metric[0].value) == 0:
        assert any("No unit of layer" in i.value for i in at.info)


def test_units_page_dictionary_and_predicate_search(env):
    at = _open("ui/pages/units.py")
    views = _views(at)
    assert "unit-histogram" in views and "unit-decoder" in views and "unit-auc" in views
    assert any("Most positive" in m.value for m in at.markdown)
    at.number_input(key="units_unit").set_value(7).run()
    assert not at.exception and any("unit 7" in m.value for m in at.markdown)
    at.selectbox(key="units_pred").set_value("after_female").run()
    assert not at.exception and not at.error
    label = at.button(key="units_go_0").label          # "Unit U · AUC"
    at.button(key="units_go_0").click().run()
    assert not at.exception
    assert at.number_input(key="units_unit").value == int(label.split()[1])


def test_own_folder_needs_a_button_and_bad_folder_is_a_message(env, tmp_path):
    at = _open("ui/pages/corpus.py")
    at.radio(key="corpus_src").set_value("A folder on this machine").run()
    at.text_input(key="corpus_dir").set_value(str(tmp_path / "nothing-here")).run()
    assert not at.exception and at.error and "does not exist" in at.error[0].value
    own = tmp_path / "own"
    own.mkdir()
    (own / "x.txt").write_bytes(b"caf\xe9")
    at.text_input(key="corpus_dir").set_value(str(own)).run()
    assert not at.exception
    at.button(key="corpus_build").click().run()
    assert not at.exception and at.error and "not UTF-8" in at.error[0].value



def _array(v) -> np.ndarray:
    """A Plotly array from the spec: a list, or a typed array {bdata, dtype, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, dtype=float)


def test_contrast_page_trajectories_over_the_default_index(env):
    """Contrast draws both texts through the corpus's principal plane, behind an expander; with no index
    yet it says so and builds only on its button (never during an ordinary Contrast run)."""
    from explorer.corpus import index as IX
    from explorer.corpus import queries as Q
    from explorer.present import lesson as LS
    from conftest import make_model
    at = _open("ui/pages/contrast.py")
    n_charts = len(_specs(at))
    assert n_charts >= 3 and "trajectory" not in _views(at)      # closed: nothing is projected
    at.session_state["ct_traj"] = True                             # open the expander
    at.run()
    assert not at.exception and not at.error
    assert "trajectory" not in _views(at)
    assert any("not built yet for this model" in c.value for c in at.caption)
    assert any("not indexed yet" in i.value for i in at.info)
    assert not list((env / "cache").glob("indexes/*/card.json")), "no silent build on the Contrast page"
    at.button(key="corpus_build").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cards = list((env / "cache").glob("indexes/*/card.json"))
    assert len(cards) == 1
    assert len(_specs(at)) == n_charts + 1 and _views(at).count("trajectory") == 1   # the page above stays
    spec = [s for s in _specs(at) if (s["layout"].get("meta") or {}).get("view") == "trajectory"][0]
    assert spec["data"][0]["type"] == "heatmap"                   # the corpus density behind the paths
    paths = [d for d in spec["data"] if d["type"] == "scatter"]
    pair = LS.PAIRS["bartender"]                                   # the page's first pair
    assert [p["name"] for p in paths] == [f"A: {pair.name_a}", f"B: {pair.name_b}"]
    # each path is its text's states projected on the index's principal plane (top layer, h)
    model = make_model("lstm")                                     # the same weights as the tiny bundle
    proj = Q.fit_projection(IX.open_index(cards[0].parent), model.lm.config.layers, "h")    # the top layer
    for p, text in zip(paths, (pair.a, pair.b)):
        want = Q.trajectory(proj, model, text)
        np.testing.assert_allclose(_array(p["x"]), want["x"], atol=1e-4)
        np.testing.assert_allclose(_array(p["y"]), want["y"], atol=1e-4)
        assert len(p["text"]) == len(want) and "%{text}" in p["hovertemplate"]   # hover names each token
    assert paths[0]["text"][2] == "girl" and paths[1]["text"][2] == "boy"
    # the second run (index built) reopens it from the cache and draws the same figure
    at.run()
    assert not at.exception and _views(at).count("trajectory") == 1
