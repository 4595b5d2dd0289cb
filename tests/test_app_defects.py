"""Regression tests for the app items of issue 14 ("Defects found by testing as users would"), through
streamlit.testing.v1.AppTest on the tiny bundles of conftest.py (plus a tiny character model). What only
shows in a browser (the tab's freeze, glyphs, requests leaving the machine) is in
tests/test_browser_defects_app.py; the time a 1,000-word text takes on each page is measured by
benchmarks/long_text_pages.py, never asserted here."""
from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer as E
from explorer import save_bundle
from explorer.present import views as V

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120

#: A 1,000-word text in the tiny models' vocabulary (the issue's Contrast case: 5,600 characters).
WORDS = re.findall(r"[A-Za-z]+", "Mary loves John and the bartender said miss to the girl who walked into a bar "
                                 "and she said Holmes looked at me and said you have been in Afghanistan")
LONG = " ".join(WORDS[i % len(WORDS)] for i in range(1000)) + "."


def app(models: Path, monkeypatch, page: str | None = None, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if page:
        at.switch_page(page)
    at.run()
    clean(at)
    return at


def clean(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def char_models(tmp_path_factory) -> Path:
    """A models folder with a tiny character-level LSTM (its vocabulary: the characters of conftest's TEXT)."""
    from conftest import TEXT
    from test_char_cells import _char_model
    root = tmp_path_factory.mktemp("char-models")
    m = _char_model(TEXT + "\t")
    save_bundle(root / "tiny-char", m.lm, m.tokenizer, {"name": "tiny-char", "metrics": {}})
    return root


# ------------------------------------------------------------------ 1. long texts: bounded charts
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


def test_tick_labels_thin_past_the_limit_and_keep_the_selected_token():
    assert V.thin_ticks(30) == list(range(30))
    vals = V.thin_ticks(120, start=500, keep=537)
    assert len(vals) <= V.MAX_TICKS + 1 and 537 in vals and vals[0] == 500


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
        assert r.value == 1 and r.proto.set_value and r.proto.raw_value == "Layer 2", page


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
    data = player_data(tr, 0, pos=3)
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


# --------------------------------------------------------- 9. rejected uploads leave nothing behind
def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_rejected_bundle_is_deleted_at_once(bundle_dir, tmp_path, monkeypatch):
    from ui import uploads
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / "rnn-explorer-uploads"
    good = {f"tiny/{f}": (bundle_dir / f).read_bytes() for f in ("weights.safetensors", "tokenizer.json", "card.json")}
    bad = [dict(good, **{"tiny/weights.safetensors": b"\x80\x04\x95pickle"}),            # a pickle
           dict(good, **{"tiny/card.json": b"{not json"}),
           dict(good, **{"tiny/tokenizer.json": b"[]"}),
           dict(good, **{"tiny/weights.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "}),
           {"card.json": b"{}"}]
    for files in bad:
        with pytest.raises(E.ExplorerError):
            uploads.load_upload(_zip(files), "bad.zip")
        left = [p for p in root.rglob("*")] if root.exists() else []
        assert left == [], left
    path, _ = uploads.load_upload(_zip(good), "good.zip")            # a good one stays (it is in use)
    assert Path(path, "weights.safetensors").is_file()
