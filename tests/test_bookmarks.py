"""Bookmarks (issue 22, item 3): a copied address reproduces what the person saw, on every page. Each test
changes a page's state through its widgets, reads the address the app wrote, opens the page cold on that
address in a new session and compares every widget value (and, where it matters, what the page drew).
Also: the Lesson's position survives a page switch, and a long text goes into the address as a short id
of the text store (and an unknown id is a clear message)."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1.element_tree import Button, Widget

from conftest import TEXT

from apptest_support import assert_clean, html_with, open_page
from test_pages_causal import eval_models  # noqa: F401 - a fixture: two bundles that read the project's pairs

pytestmark = pytest.mark.slow


@pytest.fixture
def env(models_dir, tmp_path, monkeypatch):
    """The tiny bundles, a small default corpus (Corpus, Units) and a fresh cache folder (the text store)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text(TEXT, encoding="utf-8")
    (corpus / "two.txt").write_text('She said "yes." He said "no."\n\n' * 4, encoding="utf-8")
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models_dir))
    monkeypatch.setenv("RNN_EXPLORER_DEFAULT_CORPUS", str(corpus))
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def indexed(env, models_dir):
    """env, with the default corpus's index for tiny-lstm built beforehand (the app builds it in the background)."""
    from explorer import load_model
    from explorer.corpus import index
    from ui.corpus_index import QUANTITIES
    corpus = env / "corpus"
    model = load_model(models_dir / "tiny-lstm")
    index.build_index(model, corpus, index.index_dir_for(model, corpus, QUANTITIES), quantities=QUANTITIES,
                      progress=False)
    return env


def widget_values(at) -> dict:
    """Every keyed widget on the page (main area and sidebar) -> its value; buttons have none to keep."""
    out = {}
    for node in at._tree:
        if isinstance(node, Widget) and not isinstance(node, Button) and node.key and not node.key.startswith("$$"):
            v = node.value
            out[node.key] = list(v) if isinstance(v, tuple) else v
    return out


def reopen(at, page: str):
    """A new session opened cold on the address `at` shows (as a copied link would be)."""
    query = dict(at.query_params)
    cold = open_page(None, None, page, query=query)
    return cold, query


def same_state(at, page: str, changed: dict):
    """Reopen `at`'s address cold; every widget comes back, and the values in `changed` (key -> value set by
    the test) are really there (not the defaults)."""
    assert_clean(at)
    before = widget_values(at)
    for k, v in changed.items():
        assert before.get(k) == v, (k, before.get(k), v)
    cold, query = reopen(at, page)
    after = widget_values(cold)
    diff = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not diff, f"not restored from {query}: {diff}"
    return cold, query


def test_contrast_bookmark(env):
    page = "ui/pages/contrast.py"
    at = open_page(None, None, page)
    at.text_area(key="ct_a").input("Mary loves John . It was the best of times").run()
    at.text_area(key="ct_b").input("John loves Mary . It was the worst of times").run()
    at.radio(key="ct_align").set_value("end").run()
    at.text_input(key="ct_words").input("times, mary").run()
    at.select_slider(key="ct_step").set_value(3).run()
    at.radio(key="ct_q").set_value("c").run()
    at.sidebar.radio(key="layer").set_value(1).run()
    cold, q = same_state(at, page, {"ct_align": "end", "ct_words": "times, mary", "ct_step": 3, "ct_q": "c",
                                    "layer": 1})
    assert q["step"] == "3" and q["align"] == "end" and q["layer"] == "1"
    strip = 'data-testid="pair-strip"'
    if any(strip in h.proto.body for h in at.get("html")):
        assert html_with(cold, strip) == html_with(at, strip)


def test_memory_bookmark(env):
    page = "ui/pages/memory.py"
    at = open_page(None, None, page)
    at.text_area(key="mem_text").input("A girl walked into a bar , and she said the bartender said").run()
    at.select_slider(key="mem_step").set_value(5).run()
    at.radio(key="mem_method").set_value("grad_x_input").run()
    at.text_input(key="mem_word").input("miss").run()
    at.text_input(key="mem_versus").input("sir").run()
    at.selectbox(key="mem_unit").set_value(3).run()
    at.radio(key="mem_mm").set_value("layer").run()
    at.radio(key="mem_hl").set_value("text").run()
    at.multiselect(key="mem_fade_reps").set_value(["john", "she"]).run()
    at.selectbox(key="mem_fade_metric").set_value("tv").run()
    cold, q = same_state(at, page, {"mem_step": 5, "mem_method": "grad_x_input", "mem_word": "miss",
                                    "mem_versus": "sir", "mem_unit": 3, "mem_mm": "layer", "mem_hl": "text",
                                    "mem_fade_reps": ["john", "she"], "mem_fade_metric": "tv"})
    assert q["lstm"] == "tiny-lstm" and q["rnn"] == "tiny-rnn"       # bundles by name, not server paths
    assert html_with(cold, 'data-testid="attr-readout"') == html_with(at, 'data-testid="attr-readout"')


def test_generate_bookmark_samples_the_same_text(env):
    page = "ui/pages/generate.py"
    at = open_page(None, None, page)
    at.text_input(key="gen_prompt").input("Holmes looked at me and").run()
    at.slider(key="gen_temp").set_value(1.35).run()
    at.number_input(key="gen_topk").set_value(15).run()
    at.number_input(key="gen_seed").set_value(7).run()
    at.slider(key="gen_n").set_value(12).run()
    at.select_slider(key="gen_pos").set_value(9).run()
    at.sidebar.radio(key="layer").set_value(1).run()
    cold, q = same_state(at, page, {"gen_temp": 1.35, "gen_topk": 15, "gen_seed": 7, "gen_n": 12, "gen_pos": 9,
                                    "layer": 1})
    assert q["temp"] == "1.35" and q["topk"] == "15"
    text = 'data-testid="generated-text"'
    assert html_with(cold, text) == html_with(at, text)


def test_intervene_bookmark(env):
    page = "ui/pages/intervene.py"
    at = open_page(None, None, page)
    at.selectbox(key="iv_layer").set_value(1).run()
    at.radio(key="iv_quantity").set_value("h").run()
    at.text_input(key="iv_units").input("2, 5").run()
    at.radio(key="iv_op").set_value("add").run()
    at.number_input(key="iv_value").set_value(1.5).run()
    at.select_slider(key="iv_steps").set_value((2, 6)).run()
    at.text_input(key="iv_words").input("miss, he").run()
    at.select_slider(key="iv_step").set_value(4).run()
    at.text_input(key="iv_target").input("she").run()
    at.toggle(key="iv_rank").set_value(True).run()
    cold, q = same_state(at, page, {"iv_layer": 1, "iv_quantity": "h", "iv_units": "2, 5", "iv_op": "add",
                                    "iv_value": 1.5, "iv_steps": [2, 6], "iv_words": "miss, he", "iv_step": 4,
                                    "iv_target": "she", "iv_rank": True})
    assert q["units"] == "2, 5" and q["change"] == "add" and q["value"] == "1.5"
    readout = 'data-testid="iv-readout"'
    assert html_with(cold, readout) == html_with(at, readout)


def test_patch_bookmark(env):
    page = "ui/pages/patch.py"
    at = open_page(None, None, page)
    at.text_input(key="pt_target").input("she").run()
    at.text_input(key="pt_versus").input("he").run()
    at.radio(key="pt_q").set_value("h").run()
    at.selectbox(key="pt_layer").set_value(1).run()
    at.select_slider(key="pt_pos").set_value(3).run()
    cold, q = same_state(at, page, {"pt_target": "she", "pt_versus": "he", "pt_q": "h", "pt_layer": 1, "pt_pos": 3})
    cell = 'data-testid="patch-cell"'
    assert html_with(cold, cell) == html_with(at, cell)


def test_units_bookmark(indexed):
    page = "ui/pages/units.py"
    at = open_page(None, None, page)
    at.sidebar.radio(key="layer").set_value(1).run()
    at.number_input(key="units_unit").set_value(5).run()
    at.selectbox(key="units_pred").set_value("sentence_start").run()
    cold, q = same_state(at, page, {"layer": 1, "units_unit": 5, "units_pred": "sentence_start"})
    assert q["layer"] == "1"
    assert [m.value for m in cold.markdown if "unit 5" in m.value] == [m.value for m in at.markdown if "unit 5" in m.value]


def test_corpus_bookmark(indexed):
    page = "ui/pages/corpus.py"
    at = open_page(None, None, page)
    at.slider(key="corpus_sel").set_value((3, 6)).run()
    at.slider(key="corpus_thr").set_value(0.3).run()
    at.checkbox(key="corpus_quiet").check().run()
    at.number_input(key="corpus_drop").set_value(1).run()
    at.text_input(key="traj_b").input("Mary loves John .").run()
    at.pills(key="corpus_nb_pos").set_value(4).run()            # the token whose nearest states are listed
    same_state(at, page, {"corpus_sel": [3, 6], "corpus_thr": 0.3, "corpus_quiet": True,
                          "corpus_drop": 1, "traj_b": "Mary loves John .", "corpus_nb_pos": 4})


def test_probe_bookmark(env, models_dir):
    corpus = env / "probe"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text((TEXT + "\n\n") * 8, encoding="utf-8")
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["b.txt"], "test": ["c.txt"], "train": ["a.txt"]}))
    page = "ui/pages/probe.py"
    at = open_page(None, None, page)
    at.text_input(key="pr_corpus").input(str(corpus)).run()
    at.toggle(key="pr_run").set_value(True).run()
    at.selectbox(key="pr_probe").set_value(0).run()
    at.text_input(key="pr_text").input("He said \" no . \" She said").run()
    cold, q = same_state(at, page, {"pr_corpus": str(corpus), "pr_run": True, "pr_probe": 0,
                                    "pr_text": "He said \" no . \" She said"})
    verdict = 'data-testid="probe-verdict"'
    assert html_with(cold, verdict) == html_with(at, verdict)


def test_evaluate_bookmark(eval_models, monkeypatch, tmp_path):  # noqa: F811 - the imported fixture
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path / "cache"))
    page = "ui/pages/evaluate.py"
    at = open_page(eval_models, monkeypatch, page)
    lstm = str(eval_models / "tiny-lstm")
    at.multiselect(key="ev_models").set_value([lstm]).run()
    at.toggle(key="ev_by_cond").set_value(True).run()
    if any(b.key == "ev_find" for b in at.button):                     # the items are scored when asked for
        at.button(key="ev_find").click().run()
    at.selectbox(key="ev_suite").set_value("pronoun").run()
    first = at.selectbox(key="ev_item").value
    assert len(at.selectbox(key="ev_item").options) > 1
    at.selectbox(key="ev_item").select_index(1).run()
    second = at.selectbox(key="ev_item").value
    assert second != first
    cold, q = same_state(at, page, {"ev_models": [lstm], "ev_by_cond": True, "ev_suite": "pronoun",
                                    "ev_item": second})
    assert q["models"] == "tiny-lstm"                                   # by name, not a server path


def test_explore_unit_inspector_bookmark(env):
    page = "ui/pages/explore.py"
    at = open_page(None, None, page, query={"view": "Unit inspector"})
    at.selectbox(key="unit_q").set_value("c").run()
    at.radio(key="unit_how").set_value("by number").run()
    at.multiselect(key="unit_ids").set_value([4, 9]).run()
    same_state(at, page, {"unit_q": "c", "unit_how": "by number", "unit_ids": [4, 9]})


# ------------------------------------------------------------------------------------------ the Lesson
def test_lesson_position_survives_a_page_switch(env):
    at = open_page(None, None, "ui/pages/lesson.py")
    for _ in range(3):
        at.button(key="lesson_next").click().run()
    assert at.select_slider(key="lesson_pos").value == 4
    at.switch_page("ui/pages/explore.py").run()
    assert_clean(at)
    at.switch_page("ui/pages/lesson.py").run()
    assert_clean(at)
    assert at.select_slider(key="lesson_pos").value == 4
    assert at.query_params["pos"] == "4"


def test_lesson_long_text_goes_under_a_short_id(env):
    long = ("Holmes looked at me and said , \" You have been in Afghanistan , I perceive . \" " * 40).strip()
    at = open_page(None, None, "ui/pages/lesson.py")
    at.text_area(key="lesson_text_reading").input(long).run()
    assert_clean(at)
    q = dict(at.query_params)
    assert len(json.dumps(q)) < 300, q                                   # a short address
    assert q["text"].startswith("saved-")
    assert list((env / "cache" / "texts").glob("saved-*.txt"))            # kept under the cache root
    cold, _ = reopen(at, "ui/pages/lesson.py")
    assert cold.text_area(key="lesson_text_reading").value == long
    assert widget_values(cold) == widget_values(at)


def test_short_texts_stay_readable_and_unknown_ids_are_a_message(env):
    at = open_page(None, None, "ui/pages/contrast.py")
    assert at.query_params["a"].startswith("A girl")                     # a preset stays as it is
    long = "It was the best of times , it was the worst of times . " * 30
    at.text_area(key="ct_a").input(long).run()
    assert at.query_params["a"].startswith("saved-") and len(at.query_params["a"]) == 22
    cold, _ = reopen(at, "ui/pages/contrast.py")
    assert cold.text_area(key="ct_a").value == long
    lost = open_page(None, None, "ui/pages/contrast.py", query={"a": "saved-0123456789abcdef"})
    assert not lost.exception and not lost.error
    assert any("saved-0123456789abcdef" in w.value and "does not hold" in w.value for w in lost.warning)
    assert lost.text_area(key="ct_a").value.startswith("A girl")         # the page's own text instead


def test_compare_bookmark(env):
    page = "ui/pages/compare.py"
    at = open_page(None, None, page)
    at.selectbox(key="cmp_b").set_value("tiny-lstm").run()             # the same shapes: units are compared
    at.radio(key="cmp_layer").set_value(1).run()
    tokens = at.select_slider(key="cmp_token").options
    at.select_slider(key="cmp_token").set_value(int(str(tokens[2]).split(" ")[0])).run()
    same_state(at, page, {"cmp_b": "tiny-lstm", "cmp_layer": 1})


def test_lesson_method_and_seed_bookmark(env):
    page = "ui/pages/lesson.py"
    at = open_page(None, None, page, query={"step": "shapes", "shape": "one-to-many"})
    at.number_input(key="lesson_seed").set_value(5).run()
    cold, q = same_state(at, page, {"lesson_seed": 5, "lesson_step": "shapes", "lesson_shape": "one-to-many"})
    assert q["seed"] == "5" and q["step"] == "shapes"
    at = open_page(None, None, page, query={"step": "bartender"})
    at.radio(key="lesson_method").set_value("grad_x_input").run()
    cold, q = same_state(at, page, {"lesson_method": "grad_x_input", "lesson_step": "bartender"})
    assert q["method"] == "grad_x_input"


def test_a_slider_value_out_of_range_in_a_link_is_ignored(env):
    at = open_page(None, None, "ui/pages/generate.py", query={"temp": "7", "n": "500", "topk": "12"})
    assert at.slider(key="gen_temp").value == 0.8 and at.slider(key="gen_n").value == 30
    assert at.number_input(key="gen_topk").value == 12
