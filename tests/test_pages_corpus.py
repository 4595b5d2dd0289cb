"""The Corpus and Units pages through AppTest, on the tiny bundles and a small default corpus: the index is
built on first use, in the background (ui.jobs: one build per server, whichever session asked first), into
a temporary cache folder (never into the repository). AppTest does not run the progress fragment's
timer, so the tests wait for the build (ui.jobs.wait) and run the page again, as the fragment does."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from conftest import TEXT

from apptest_support import assert_clean, open_page, specs as _specs


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


def _built(at, timeout: float = 120):
    """Wait for the background builds this server started, then run the page again (what the progress
    fragment does once a build has ended)."""
    from ui import jobs
    for p in jobs.running():
        jobs.wait(p.key, timeout)
    at.run()
    assert_clean(at)
    return at


def _open(page: str, built: bool = True):
    """The app at `page`, on the folders the env fixture set; with `built`, once its index is built."""
    at = open_page(None, None, page)
    return _built(at) if built else at


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
    from ui import jobs
    for p in jobs.running():
        jobs.wait(p.key, 60)
    at.run()
    assert not at.exception and at.error and "not UTF-8" in at.error[0].value
    assert at.button(key="corpus_build_again")          # the reason, and a way to try again



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
    _built(at)
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


# ------------------------------------------------------------------ the background build (issues 21, 22)
@pytest.fixture
def gated_build(env, monkeypatch):
    """build_index held at its first progress report within the build (some tokens done, not all) until
    `release` is set; counts its calls. The build itself is the real one: only its pace is held, so the
    tests see a build in progress. The default corpus gets a longer file: several blocks to report."""
    import threading
    (env / "corpus" / "three.txt").write_text((TEXT + "\n\n") * 12, encoding="utf-8")
    from explorer.corpus import index as IX
    real = IX.build_index
    state = {"calls": 0, "release": threading.Event(), "fail": None}

    def gated(model, corpus, out, **kw):
        state["calls"] += 1
        if state["fail"] is not None:
            raise state["fail"]
        report = kw.get("on_progress")

        def held(done, total):
            report(done, total)
            if 0 < done < total:
                state["release"].wait(60)

        kw["on_progress"] = held
        return real(model, corpus, out, **kw)

    monkeypatch.setattr(IX, "build_index", gated)
    yield state
    state["release"].set()


def _progress_text(at) -> str:
    bars = at.get("progress")
    return bars[0].proto.text if bars else ""


def _wait_report(at, timeout: float = 30):
    """Run the page again until the build's progress shows counted tokens (what the fragment's timer does)."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        if "tokens" in _progress_text(at) and "of" in _progress_text(at):
            return _progress_text(at)
        time.sleep(0.2)
    raise AssertionError(f"no progress reported: {_progress_text(at)!r}")


def test_one_background_build_for_two_sessions_and_a_page_switch(env, gated_build):
    """Two sessions open Corpus during a cold build: one build (never a second), both see its progress
    (tokens done of total, tokens/s, time left) and the rest of the page; a third session on Units sees
    the same build; the first leaves for Explore, and the build still finishes; both then show results."""
    from ui import jobs
    one = _open("ui/pages/corpus.py", built=False)
    two = _open("ui/pages/corpus.py", built=False)
    text_one, text_two = _wait_report(one), _wait_report(two)
    assert gated_build["calls"] == 1, "one build per server, whichever session asked first"
    running = [p for p in jobs.running() if str(env) in p.key]
    assert len(running) == 1
    for text in (text_one, text_two):
        assert " of " in text and "tokens/s" in text and "left" in text, text
    for at in (one, two):               # the rest of the page is drawn meanwhile: the text and its units
        assert at.text_input(key="corpus_text").value
        assert at.metric[0].label == "Units on across the selection"
        assert at.metric[1].value == "…"
        assert any("as soon as its index is built" in i.value for i in at.info)   # the trajectories wait
        assert not list((env / "cache").glob("indexes/*/card.json"))
    units = _open("ui/pages/units.py", built=False)
    assert "tokens" in _progress_text(units) and gated_build["calls"] == 1
    one.switch_page("ui/pages/explore.py").run()         # leave the page: the build goes on
    assert not one.exception and not one.get("progress")
    gated_build["release"].set()
    p = jobs.wait(running[0].key, 120)
    assert p.state == "done" and gated_build["calls"] == 1
    assert len(list((env / "cache").glob("indexes/*/card.json"))) == 1
    two.run()
    assert_clean(two)
    assert not two.get("progress") and int(two.metric[1].value.replace(",", "")) >= 0
    assert two.metric[2].label == "Query time"
    one.switch_page("ui/pages/corpus.py").run()
    assert_clean(one)
    assert one.metric[1].label == "Matches in the corpus" and one.metric[1].value != "…"


def test_a_failing_build_shows_its_reason_and_can_be_tried_again(env, gated_build):
    from explorer.corpus.index import IndexProblem
    gated_build["fail"] = IndexProblem("no space left on the test device")
    gated_build["release"].set()
    at = open_page(None, None, "ui/pages/corpus.py", errors_ok=True)
    at = _built(at) if not at.error else at
    assert not at.exception
    assert at.error and "no space left on the test device" in at.error[0].value
    assert at.button(key="corpus_build_again").label == "Try again"
    at.run()                                              # a rerun does not start it again by itself
    assert gated_build["calls"] == 1 and "no space left" in at.error[0].value
    gated_build["fail"] = None
    at.button(key="corpus_build_again").click().run()
    _built(at)
    assert gated_build["calls"] == 2
    assert at.metric[1].label == "Matches in the corpus" and at.metric[1].value != "…"


# ------------------------------------------------------------------------------- text edge cases (22)
def test_corpus_text_over_the_limit_is_clipped_once_and_shown(env, monkeypatch):
    """Issue 22 item 8: a text over MAX_CHARS is cut, with one message, and the page goes on (the
    trajectory box used to fail on the same text)."""
    monkeypatch.setenv("RNN_EXPLORER_MAX_CHARS", "2000")
    from explorer import settings
    monkeypatch.setattr(settings, "MAX_CHARS", 2000)
    long = (TEXT + "\n\n") * 6
    assert len(long) > 2000
    at = _open("ui/pages/corpus.py")
    at.text_input(key="corpus_text").set_value(long).run()
    at.text_input(key="traj_a").set_value(long).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.warning) == 1, [w.value for w in at.warning]
    assert "first" in at.warning[0].value and "Text" in at.warning[0].value
    assert at.metric[0].label == "Units on across the selection"
    assert "trajectory" in _views(at)


def test_corpus_with_empty_text_shows_a_prompt(env):
    """Issue 22 item 15: no text, no results: a prompt."""
    at = _open("ui/pages/corpus.py")
    at.text_input(key="corpus_text").set_value("").run()
    assert not at.exception and not at.error
    assert not at.metric and "corpus-selection" not in _views(at)
    assert any("Type a text" in i.value for i in at.info)


# ------------------------------------------------------------------------------- nearest states (21)
def test_clicking_a_token_lists_its_nearest_states_each_opening_in_explore(env):
    import explorer as E
    from explorer.corpus import index as IX
    from explorer.corpus import queries as Q
    from conftest import make_model
    at = _open("ui/pages/corpus.py")
    assert at.pills(key="corpus_nb_pos").value is None
    at.pills(key="corpus_nb_pos").set_value(4).run()
    assert_clean(at)
    rows = [h.proto.body for h in at.get("html") if "cosine" in h.proto.body]
    assert len(rows) == 20
    # the list is the explorer's answer (h of the top layer of the tiny model over the default corpus)
    model = make_model("lstm")
    card = list((env / "cache").glob("indexes/*/card.json"))[0]
    want = Q.neighbours(IX.open_index(card.parent), model, at.text_input(key="corpus_text").value, 4, 2, "h",
                        top=20)
    assert [f"cosine {n.similarity:.3f}" in r for n, r in zip(want.items, rows)] == [True] * 20
    # the first opens in Explore: its passage, that token selected
    first = want.items[0]
    at.button(key="corpus_nb_go_0").click().run()
    assert not at.exception
    text, pos = at.session_state["text"], at.session_state["pos"]
    assert E.trace(model, text).words[pos] == first.token
    assert first.token in text
