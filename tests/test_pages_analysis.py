"""The Contrast, Memory, Generate and Lesson pages through streamlit.testing.v1.AppTest, on the tiny
bundles of conftest.py: every page runs without an exception, changing a widget changes what is drawn
(read from the Plotly specs and the st.html strips the app sends), and the lesson restores its step
and sentence from the URL's query string."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import explorer as E
from explorer.present import lesson as LS
from explorer.present import views as V
from explorer.training.classify import KIND, AuthorClassifier, save_author_classifier

from apptest_support import assert_clean, html_with, meta_chart, open_page, specs


def titles(at: AppTest) -> list[str]:
    out = []
    for s in specs(at):
        t = s["layout"].get("title")
        out.append(t.get("text", "") if isinstance(t, dict) else "")
    return out


def chart(at: AppTest, title_start: str) -> dict:
    found = [s for s, t in zip(specs(at), titles(at)) if t.startswith(title_start)]
    assert found, f"no chart titled {title_start!r}; have {titles(at)}"
    return found[0]


def data_of(s: dict) -> list:
    return s["data"]


@pytest.fixture
def models(models_dir) -> Path:
    return models_dir


# ------------------------------------------------------------------------------------- contrast
def test_contrast_opens_on_the_bartender_pair(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/contrast.py")
    assert at.text_area(key="ct_a").value == LS.PAIRS["bartender"].a
    strip = html_with(at, 'data-testid="pair-strip"')
    step = int(re.search(r'data-selected="(\d+)"', strip).group(1))
    assert at.select_slider(key="ct_step").value == step
    assert "Certainly" in strip and strip.count("lx-col diff") == 3          # girl/boy, she/he, miss/sir
    bag = html_with(at, 'data-testid="bag-line"')
    assert "differ in their words" in bag
    chosen = chart(at, "The chosen words")
    assert [d["name"] for d in chosen["data"]] == ["A: girl / she", "B: boy / he"]
    assert "miss" in chosen["layout"]["xaxis"]["ticktext"] and "sir" in chosen["layout"]["xaxis"]["ticktext"]
    assert chart(at, "How far apart")["data"] and chart(at, "h(B) − h(A)")["data"]
    assert len(at.dataframe) == 2


def test_contrast_pair_button_and_widgets_change_the_charts(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/contrast.py")
    lines = chart(at, "How far apart")
    at.button(key="ct_pair_mary-john").click().run()
    assert_clean(at)
    assert at.text_area(key="ct_a").value == "Mary loves John ." and at.text_input(key="ct_words").value == "he, she"
    assert "identical" in html_with(at, 'data-testid="bag-line"')
    lines2 = chart(at, "How far apart")
    assert lines2 != lines and len(lines2["layout"]["xaxis"]["tickvals"]) == 5
    assert at.select_slider(key="ct_step").value == 4                      # the last step of Mary/John
    before = chart(at, "The chosen words")
    at.select_slider(key="ct_step").set_value(2).run()
    assert_clean(at)
    after = chart(at, "The chosen words")
    assert after != before and "(step 2)" in after["layout"]["title"]["text"]
    heat = chart(at, "h(B) − h(A)")
    at.radio(key="ct_q").set_value("c").run()
    assert_clean(at)
    assert chart(at, "c(B) − c(A)") != heat
    at.radio(key="ct_align").set_value("end").run()
    assert_clean(at)


def test_contrast_unknown_words_and_empty_text(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/contrast.py")
    at.text_input(key="ct_words").input("zyzzyva, sir").run()
    assert_clean(at)
    assert any("zyzzyva" in c.value for c in at.caption)
    at.text_area(key="ct_b").input("  ").run()
    assert_clean(at)
    assert not specs(at) and any("both boxes" in i.value for i in at.info)


# --------------------------------------------------------------------------------------- memory
def test_memory_page_draws_every_section(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/memory.py")
    strip = html_with(at, 'data-testid="attr-strip"')
    assert 'data-method="occlusion"' in strip
    check = html_with(at, 'data-testid="provenance-check"')
    diff = float(re.search(r"difference ([0-9.e+-]+),", check).group(1))
    assert diff < 1e-5 and "within the float32 tolerance" in check
    assert chart(at, "c = ")["data"] and chart(at, "What each token wrote")["data"]
    assert chart(at, "Memory half-life")["data"]
    fade = meta_chart(at, "fade_panels")
    assert fade["layout"]["meta"]["models"] == ["tiny-lstm", "tiny-rnn"]
    assert fade["layout"]["meta"]["replacements"] == ["<unk>", "john", "she", "the"]
    assert "tiny-lstm" in html_with(at, 'data-testid="fade-summary"')


def test_memory_widgets_change_the_views(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/memory.py")
    strip = html_with(at, 'data-testid="attr-strip"')
    at.radio(key="mem_method").set_value("integrated_gradients").run()
    assert_clean(at)
    assert 'data-method="integrated_gradients"' in html_with(at, 'data-testid="attr-strip"')
    at.button(key="mem_example").click().run()                     # miss versus sir
    assert_clean(at)
    s2 = html_with(at, 'data-testid="attr-strip"')
    assert 'data-target="miss"' in s2 and s2 != strip
    assert "log P(“miss”) − log P(“sir”)" in html_with(at, 'data-testid="attr-readout"')
    at.toggle(key="mem_all").set_value(True).run()
    assert_clean(at)
    assert len(chart(at, "Attribution of")["data"]) == 3
    at.text_input(key="mem_word").input("zyzzyva").run()           # not in the vocabulary: a warning
    assert_clean(at)
    assert any("zyzzyva" in w.value for w in at.warning)
    at.text_input(key="mem_word").input("").run()                  # back to the top word
    prov = chart(at, "c = ")
    u = 3 if at.selectbox(key="mem_unit").value != 3 else 4
    at.selectbox(key="mem_unit").set_value(u).run()
    assert_clean(at)
    assert chart(at, "c = ") != prov and f"unit {u}," in chart(at, "c = ")["layout"]["title"]["text"]
    mm = chart(at, "What each token wrote")
    at.radio(key="mem_mm").set_value("layer").run()
    assert "norm over units" in chart(at, "What each token wrote")["layout"]["title"]["text"]
    assert chart(at, "What each token wrote") != mm
    at.select_slider(key="mem_step").set_value(4).run()
    assert_clean(at)
    assert 'data-step="4"' in html_with(at, 'data-testid="attr-strip"')
    fade = meta_chart(at, "fade_panels")
    at.multiselect(key="mem_fade_reps").set_value(["<unk>", "he"]).run()
    assert_clean(at)
    fade2 = meta_chart(at, "fade_panels")
    assert fade2 != fade and fade2["layout"]["meta"]["replacements"] == ["<unk>", "he"]
    at.selectbox(key="mem_fade_metric").set_value("tv").run()
    assert meta_chart(at, "fade_panels")["layout"]["meta"]["metric"] == "tv"
    assert_clean(at)


def test_memory_with_a_vanilla_rnn(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/memory.py")
    at.selectbox(key="model").set_value(str(models / "tiny-rnn")).run()
    assert_clean(at)
    assert any("no cell state" in i.value for i in at.info)
    assert 'data-testid="attr-strip"' in html_with(at, 'data-testid="attr-strip"')
    assert meta_chart(at, "fade_panels")


# ------------------------------------------------------------------------------------- generate
def test_generate_samples_and_shows_the_state(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/generate.py")
    text = html_with(at, 'data-testid="generated-text"')
    heat = chart(at, "<b>h</b>")
    assert any(s.get("name") == "generated" for s in heat["layout"]["shapes"])
    assert chart(at, "How probable each token was")["data"]
    topk = meta_chart(at, "topk")
    at.button(key="gen_reseed").click().run()                      # a new seed: other words
    assert_clean(at)
    assert at.number_input(key="gen_seed").value == 1
    assert html_with(at, 'data-testid="generated-text"') != text
    at.slider(key="gen_n").set_value(5).run()
    assert_clean(at)
    assert chart(at, "<b>h</b>") != heat
    n = len(chart(at, "<b>h</b>")["layout"]["xaxis"]["tickvals"])
    at.select_slider(key="gen_pos").set_value(n - 1).run()
    assert_clean(at)
    assert meta_chart(at, "topk")["layout"]["meta"]["position"] == n - 1 != topk["layout"]["meta"]["position"]


def test_generate_is_reproducible_and_greedy_at_zero(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/generate.py")
    at.slider(key="gen_temp").set_value(0.0).run()
    a = html_with(at, 'data-testid="generated-text"')
    at.number_input(key="gen_seed").set_value(7).run()             # greedy: the seed does not matter
    assert html_with(at, 'data-testid="generated-text"') == a
    at.text_input(key="gen_prompt").input("").run()
    assert_clean(at)
    assert not specs(at)


# --------------------------------------------------------------------------------------- lesson
def test_lesson_opens_on_reading_and_steps(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/lesson.py")
    assert at.session_state["lesson_step"] == "reading"
    assert at.query_params.get("step") == "reading" and at.query_params.get("pos") == "1"
    topk = meta_chart(at, "topk")
    at.button(key="lesson_next").click().run()
    assert_clean(at)
    assert meta_chart(at, "topk")["layout"]["meta"]["position"] == 2 and meta_chart(at, "topk") != topk
    assert at.query_params.get("pos") == "2"
    assert "changed the memory" in html_with(at, 'data-testid="reading-readout"')


@pytest.mark.parametrize("step", list(LS.STEPS))
def test_every_lesson_step_runs(models, monkeypatch, step):
    at = open_page(models, monkeypatch, "ui/pages/lesson.py")
    at.session_state["lesson_step"] = step
    at.run()
    assert_clean(at)
    assert at.query_params.get("step") == step
    # the cells step needs a character model; these tiny ones read words, so it says so
    assert specs(at) or step == "shapes" or (step == "cells" and at.info)


def test_lesson_order_and_bartender(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "order"})
    assert "identical" in html_with(at, 'data-testid="order-readout"')
    assert at.metric[0].value == "0"                                   # the bag-of-embeddings distance
    at.session_state["lesson_step"] = "bartender"
    at.run()
    assert_clean(at)
    chips = [h.proto.body for h in at.get("html") if 'data-testid="attr-strip"' in h.proto.body]
    assert len(chips) == 2 and all('data-target="miss"' in c for c in chips)
    assert all("saturate at ±0.5" in c for c in chips)
    assert "“girl”" in html_with(at, 'data-testid="attribution-readout"')
    at.radio(key="lesson_method").set_value("grad_x_input").run()
    assert_clean(at)
    assert 'data-method="grad_x_input"' in html_with(at, 'data-testid="attr-strip"')


def test_lesson_restores_step_and_sentence_from_the_url(models, monkeypatch):
    a, b = 'A girl said "Certainly,', 'A boy said "Certainly,'
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "bartender", "text": a, "text_b": b})
    assert at.session_state["lesson_step"] == "bartender"
    assert at.text_area(key="lesson_text_bartender").value == a
    assert at.text_area(key="lesson_textb_bartender").value == b
    # <eos> A girl said " Certainly , : both attributions explain the prediction after the comma (row 6)
    assert len([h for h in at.get("html") if 'data-step="6"' in h.proto.body]) == 2
    assert at.query_params == {"model": "tiny-lstm", "step": "bartender", "text": a, "text_b": b,
                               "method": "occlusion"}           # the step's attribution method too (issue 22)
    # and back: editing the sentence writes it into the URL
    at.text_area(key="lesson_text_bartender").input('A girl said "Certainly, miss."').run()
    assert at.query_params["text"] == 'A girl said "Certainly, miss."'


def test_lesson_url_restores_position_and_shape(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "reading", "text": "the cat saw the dog .", "pos": "3"})
    assert at.select_slider(key="lesson_pos").value == 3
    assert meta_chart(at, "topk")["layout"]["meta"]["position"] == 3
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "shapes", "shape": "many-to-many"})
    assert at.session_state["lesson_shape"] == "many-to-many"
    assert 'data-testid="synced-strip"' in html_with(at, 'data-testid="synced-strip"')
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "no-such-step", "pos": "x"})
    assert at.session_state["lesson_step"] == "reading"


@pytest.mark.parametrize("shape", list(LS.SHAPES))
def test_every_shape_runs(models, monkeypatch, shape):
    at = open_page(models, monkeypatch, "ui/pages/lesson.py", {"step": "shapes", "shape": shape})
    assert "shape-readout" in html_with(at, 'data-testid="shape-readout"')
    if shape == "many-to-one":                        # the tiny bundles have no author classifier
        assert any("python -m explorer classify" in i.value for i in at.info)
    elif shape == "encoder-decoder":
        assert any("Illustration only" in w.value for w in at.warning)
        assert meta_chart(at, "final_state")
    elif shape != "many-to-many":
        assert specs(at)


@pytest.fixture
def models_with_classifier(models_dir, tmp_path) -> Path:
    """A copy of the tiny LSTM bundle with an author classifier beside it (random weights)."""
    root = tmp_path / "models"
    shutil.copytree(models_dir / "tiny-lstm", root / "tiny-lstm")
    D = 16 * 2 * 2                                     # h and c of two layers of 16 units
    g = torch.Generator().manual_seed(0)
    clf = AuthorClassifier(torch.randn(D, generator=g, dtype=torch.float64), 0.1, torch.zeros(D, dtype=torch.float64),
                           torch.ones(D, dtype=torch.float64),
                           {"kind": KIND, "version": 1, "labels": ["austen", "doyle"], "feature": "state", "dim": D,
                            "layer": 1, "passage_tokens": 30,
                            "model": {"name": "tiny-lstm", "cell": "lstm", "hidden_size": 16, "layers": 2,
                                      "vocab_size": 70},
                            "metrics": {"test": {"accuracy": 0.5, "n": 10}}})
    save_author_classifier(clf, root / "tiny-lstm" / "classifier")
    return root


def test_many_to_one_with_a_classifier(models_with_classifier, monkeypatch):
    at = open_page(models_with_classifier, monkeypatch, "ui/pages/lesson.py", {"step": "shapes", "shape": "many-to-one"})
    bars = chart(at, "Who wrote it?")
    at.button(key="lesson_author_0").click().run()                  # an Austen passage
    assert_clean(at)
    assert at.text_area(key="lesson_text_shapes").value == list(LS.AUTHOR_EXAMPLES.values())[0]
    assert chart(at, "Who wrote it?") != bars
    assert any("50%" in c.value for c in at.caption)


def test_a_broken_classifier_is_reported(models_with_classifier, monkeypatch):
    (models_with_classifier / "tiny-lstm" / "classifier" / "classifier.safetensors").write_bytes(b"\x80\x04pickle")
    at = open_page(models_with_classifier, monkeypatch, "ui/pages/lesson.py", {"step": "shapes", "shape": "many-to-one"})
    assert any("cannot be used" in i.value and "pickle" in i.value for i in at.info)


def test_pages_survive_switching(models, monkeypatch):
    at = open_page(models, monkeypatch, "ui/pages/contrast.py")
    for page in ("ui/pages/memory.py", "ui/pages/generate.py", "ui/pages/lesson.py", "ui/pages/explore.py", "ui/pages/contrast.py"):
        at.switch_page(page).run()
        assert_clean(at)
    assert at.text_area(key="ct_a").value == LS.PAIRS["bartender"].a


# ------------------------------------------- issue 14: long texts draw a window, state survives page changes
# What only shows in a browser (the tab's freeze, glyphs, requests leaving the machine) is in
# tests/test_browser.py and tests/test_browser_analysis.py; the time a 1,000-word text takes on each page
# is measured by benchmarks/long_text_pages.py, never asserted here.
app, clean = open_page, assert_clean      # the names these tests were written with

#: A 1,000-word text in the tiny models' vocabulary (the issue's Contrast case: 5,600 characters).
WORDS = re.findall(r"[A-Za-z]+", "Mary loves John and the bartender said miss to the girl who walked into a bar "
                                 "and she said Holmes looked at me and said you have been in Afghanistan")
LONG = " ".join(WORDS[i % len(WORDS)] for i in range(1000)) + "."


def drawn(at: AppTest) -> tuple[int, int, int]:
    """(most tick labels on any axis, most x points in any trace, most token columns in any strip)."""
    ticks, points, cols = 0, 0, 0
    for s in specs(at):
        for k, ax in s["layout"].items():
            if k.startswith(("xaxis", "yaxis")) and isinstance(ax, dict) and "tickvals" in ax:
                if k.startswith("xaxis"):
                    ticks = max(ticks, len(ax["tickvals"]))
        for tr in s["data"]:
            x = tr.get("x")
            if isinstance(x, list):
                points = max(points, len(x))
            elif isinstance(x, dict) and "shape" in x:        # plotly's typed arrays
                points = max(points, int(str(x["shape"]).split(",")[0]))
            z = tr.get("z")
            if isinstance(z, list) and z and isinstance(z[0], list):
                points = max(points, len(z[0]))
            elif isinstance(z, dict) and "shape" in z:
                points = max(points, int(str(z["shape"]).split(",")[-1]))
    for h in at.get("html"):
        body = h.proto.body
        if "token-strip" in body or "pair-strip" in body:
            cols = max(cols, body.count('data-pos="'))
    return ticks, points, cols


def assert_bounded(at: AppTest, what: str):
    ticks, points, cols = drawn(at)
    assert ticks <= V.MAX_TICKS + 1, f"{what}: {ticks} tick labels on one axis"
    assert points <= V.CHART_WINDOW, f"{what}: {points} token positions in one chart"
    assert cols <= V.CHART_WINDOW, f"{what}: {cols} token columns in one strip"


def test_a_1000_word_text_draws_a_window_on_contrast(models_dir, monkeypatch):
    at = app(models_dir, monkeypatch, "ui/pages/contrast.py")
    at.text_area(key="ct_a").input(LONG).run()
    at.text_area(key="ct_b").input(LONG.replace("Mary", "John", 1)).run()
    clean(at)
    assert len(E.trace(E.load_model(models_dir / "tiny-lstm"), LONG)) > 1000
    assert_bounded(at, "Contrast")
    assert "steps before" in "".join(h.proto.body for h in at.get("html"))     # the strip says what is off-screen


def test_a_1000_word_prompt_draws_a_window_on_generate(models_dir, monkeypatch):
    at = app(models_dir, monkeypatch, "ui/pages/generate.py")
    at.text_input(key="gen_prompt").input(LONG).run()
    clean(at)
    assert_bounded(at, "Generate")


def test_a_1000_word_text_draws_a_window_on_the_lesson(models_dir, monkeypatch):
    at = app(models_dir, monkeypatch, "ui/pages/lesson.py")
    at.text_area(key="lesson_text_reading").input(LONG).run()
    clean(at)
    assert_bounded(at, "Lesson step 1")
    at.segmented_control(key="lesson_step").set_value("order").run()
    at.text_area(key="lesson_text_order").input(LONG).run()
    at.text_area(key="lesson_textb_order").input(LONG[::-1].title()).run()
    clean(at)
    assert_bounded(at, "Lesson step 2")


# ------------------------------------------------------------- 2. the lesson's address keeps up
def test_the_lesson_address_is_written_before_the_step_draws(models_dir, monkeypatch):
    """The address bar holds the new state before the step's slow part: a chart being built (or failing)
    sees it already. Before the fix it was written after every chart, so it lagged by a whole run and
    was never written when the run was cut short."""
    import streamlit as st

    from explorer.present import figures as F
    from ui import cached_analysis
    at = app(models_dir, monkeypatch, "ui/pages/lesson.py")
    seen = []
    real = F.heatmap_figure

    def spy(*a, **kw):
        seen.append(st.query_params.to_dict())
        return real(*a, **kw)

    monkeypatch.setattr(F, "heatmap_figure", spy)
    at.button(key="lesson_next").click().run()
    clean(at)
    pos = at.session_state["lesson_pos"]
    assert pos == 2 and seen and seen[-1].get("pos") == str(pos), seen

    at.segmented_control(key="lesson_step").set_value("bartender").run()

    def broken(*a, **kw):
        raise RuntimeError("attribution failed")

    monkeypatch.setattr(cached_analysis, "attribution", broken)                 # the run stops at the attribution
    at.text_area(key="lesson_text_bartender").input('A girl said "Certainly,').run()
    at.text_area(key="lesson_textb_bartender").input('A boy said "Certainly,').run()
    assert at.query_params["step"] in ("bartender", ["bartender"])
    assert at.query_params["text_b"] in ('A boy said "Certainly,', ['A boy said "Certainly,'])
    assert at.query_params["text"] in ('A girl said "Certainly,', ['A girl said "Certainly,'])


# ----------------------------------------------- 3, 4, 7. widgets show the value Python holds
def test_the_default_layer_is_sent_to_the_browser_on_every_page(models_dir, monkeypatch):
    """The radio's value is sent with set_value on every page: a page switch used to remount it at its
    own default (Layer 1) while Python held Layer 2."""
    at = app(models_dir, monkeypatch)
    for page in ("ui/pages/contrast.py", "ui/pages/memory.py", "ui/pages/generate.py"):
        at.switch_page(page).run()
        clean(at)
        r = at.radio(key="layer")
        assert r.value == 2 and r.proto.set_value and r.proto.raw_value == "Layer 2", page     # the top layer


@pytest.mark.parametrize("page,key", [("ui/pages/memory.py", "mem_step"), ("ui/pages/generate.py", "gen_pos")])
def test_the_step_slider_survives_a_visit_to_another_page(models_dir, monkeypatch, page, key):
    at = app(models_dir, monkeypatch, page)
    at.select_slider(key=key).set_value(3).run()
    at.switch_page("ui/pages/explore.py").run()
    at.switch_page(page).run()
    clean(at)
    s = at.select_slider(key=key)
    assert s.value == 3 and s.proto.set_value


def test_memorys_show_radio_keeps_its_option_after_a_text_change(models_dir, monkeypatch):
    at = app(models_dir, monkeypatch, "ui/pages/memory.py")
    at.text_area(key="mem_text").input("Mary loves John and John loves Mary.").run()
    clean(at)
    for key in ("mem_mm", "mem_hl", "mem_method"):
        r = at.radio(key=key)
        assert r.value is not None and r.proto.set_value, key


# -------------------------------------------------------- 5, 8. a character model's text and words
def test_whitespace_has_distinct_glyphs_in_every_view(char_models, monkeypatch):
    from explorer.present import analysis_figures as AF
    from explorer.present import lesson as LS
    from explorer.present.player import player_data
    m = E.load_model(char_models / "tiny-char")
    tr = E.trace(m, "ab c\nd\te")
    labels = V.token_labels(tr)
    assert [labels[i] for i in (3, 5, 7)] == ["␣", "↵", "⇥"]
    assert AF.axis_label(" ") == "␣" and AF.axis_label("\n") == "↵" and AF.axis_label("\t") == "⇥"
    assert LS._label(" ") == "␣" and LS._label("\n") == "↵"
    data = player_data(tr, 1, pos=3)
    assert [t["label"] for t in data["tokens"]][3:8:2] == ["␣", "↵", "⇥"]
    words = {w for nx in data["next"] for w, _ in nx["top"]}
    assert not any(w.isspace() for w in words)                    # top-k words drawn visibly too
    at = app(char_models, monkeypatch, "ui/pages/memory.py")
    at.text_area(key="mem_text").input("the sea\nthe sky ").run()
    clean(at)
    readout = next(h.proto.body for h in at.get("html") if "attr-readout" in h.proto.body)
    assert "“ ”" not in readout and "'\\n'" not in readout and "“␣”" in readout, readout
    at = app(char_models, monkeypatch, query={"text": "ab\u00a0c"})        # a character the model lacks
    unknown = next(h.proto.body for h in at.get("html") if "unknown-words" in h.proto.body)
    assert "“␣”" in unknown, unknown


def test_contrast_shows_no_none_for_words_a_character_model_lacks(char_models, monkeypatch):
    at = app(char_models, monkeypatch, "ui/pages/contrast.py")
    tables = [d.value for d in at.dataframe]
    for df in tables:
        assert not df.isna().any().any() and "None" not in df.astype(str).values, df
    assert any("None of the chosen words is a token" in c.value for c in at.caption)
