"""Lecture mode without a browser: the URL-state helpers, the demo links, the coloured cell text, and
the pages restoring their state from a cold address (AppTest). Browser tests: test_browser_lecture.py."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.present import cells as CL
from explorer.present import lesson as LS
from explorer.present.demos import DEMOS
from ui import session

from apptest_support import open_page


def test_url_fields_parse_and_format():
    assert session._url_fields(["text", "a=ct_a", "layer:layer", "seed=gen_seed:int"]) == [
        ("text", "text", "str"), ("a", "ct_a", "str"), ("layer", "layer", "layer"), ("seed", "gen_seed", "int")]
    assert session._url_parse("2", "layer") == 2 and session._url_parse("0", "layer") is None   # 1 = the bottom
    assert session._url_parse("17", "int") == 17
    for bad in ("-1", "x", "1e3", "99999999999", " "):
        assert session._url_parse(bad, "int") is None, bad
    assert session._url_parse("x" * 5000, "str") == "x" * 5000          # a long text comes back whole (issue 22)
    assert len(session._url_parse("x" * (session.STORE_TEXT_MAX + 9), "str")) == session.STORE_TEXT_MAX
    assert session._url_format(2, "layer") == "2" and session._url_format(5, "int") == "5"
    assert session.address_value("Mary loves John.") == "Mary loves John."       # short: readable, as it is
    assert session._url_format(0.85, "float") == "0.85" and session._url_parse("0.85", "float") == 0.85
    assert session._url_parse("nan", "float") is None and session._url_parse("x", "float") is None
    assert session._url_format((2, 6), "ints") == "2,6" and session._url_parse("2,6", "ints") == [2, 6]
    assert session._url_parse("2,x", "ints") is None
    assert session._url_format(["/m/tiny-lstm", "/m/tiny-rnn"], "names") == "tiny-lstm,tiny-rnn"
    assert session._url_format("/m/tiny-lstm", "name") == "tiny-lstm"
    assert session._url_parse("john, she", "list") == ["john", "she"]
    assert session._url_format(None, "str") is None and session._url_format(True, "bool") == "1"
    assert session._flag("1") and session._flag("on") and not session._flag("0") and not session._flag("")


def test_demo_links_cover_the_seed_examples():
    ids = {d.id for d in DEMOS}
    assert {"bartender-lesson", "bartender-explore", "mary-john-lesson", "unrolled", "shapes-one-to-many",
            "cells"} <= ids
    for d in DEMOS:
        u = urlsplit(d.url("http://host:1"))
        assert u.path == "/" + d.page
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        assert q == d.params, d.id
        if d.page == "lesson":                       # the lesson reads the same state back
            st = LS.lesson_from_query(q)
            assert st.step == q["step"] and (q.get("shape") is None or st.shape == q["shape"])
    assert DEMOS[0].url() == "./lesson?step=bartender"


def test_cell_text_html_colours_and_escapes():
    out = CL.cell_text_html("a<\nb", [1.0, -1.0, 0.0, 0.5], vmax=1.0)
    spans = re.findall(r'<span style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})" title="([^"]+)">', out)
    assert [s[0] for s in spans] == ["#b2182b", "#2166ac", CL.diverging_colour(0.5)]
    assert [s[2] for s in spans] == ["+1.000", "-1.000", "+0.500"]
    assert "&lt;" in out and "<br>" in out and "<\n" not in out
    with pytest.raises(ValueError):
        CL.cell_text_html("ab", [1.0])
    assert CL.colour_limit(np.r_[np.ones(99), 100.0]) < 2.5      # one extreme does not set the scale
    fig = CL.cell_scatter(np.array([0, 1, 2, -1, 0, 1]), np.array([0.0, 1, 2, 9, 0, 1]), "t")
    assert list(fig.data[0].x) == [0, 1, 2, 0, 1] and fig.data[1].y[1] == pytest.approx(2.0)


def _open(models: Path, monkeypatch, page: str, query: dict) -> AppTest:
    return open_page(models, monkeypatch, page, query, errors_ok=True)


def test_explore_restores_text_layer_token_and_model_from_the_url(models_dir, monkeypatch):
    at = _open(models_dir, monkeypatch, "ui/pages/explore.py",
               {"text": "Mary loves John .", "layer": "1", "pos": "2", "model": "tiny-lstm", "present": "1",
                "view": "Gates i · f · o and candidate g"})
    ss = at.session_state
    assert ss["text"] == "Mary loves John ." and ss["layer"] == 1 and ss["pos"] == 2
    assert Path(ss["model"]).name == "tiny-lstm" and ss["present"] is True
    assert ss["view"] == "Gates i · f · o and candidate g"
    q = at.query_params
    assert dict((k, v if isinstance(v, str) else v[-1]) for k, v in q.items()) == {
        "model": "tiny-lstm", "present": "1", "text": "Mary loves John .", "layer": "1", "pos": "2",
        "view": "Gates i · f · o and candidate g"}
    assert any("font-size:30px" in h.proto.body for h in at.get("html")), "presenter style missing"
    assert not at.get("download_button"), "the presenter view shows the strip and one view only"


def test_bad_url_values_are_ignored(models_dir, monkeypatch):
    at = _open(models_dir, monkeypatch, "ui/pages/explore.py", {"layer": "seven", "pos": "-3", "model": "nope"})
    assert at.session_state["layer"] == 2 and Path(at.session_state["model"]).name in ("tiny-lstm", "tiny-rnn")
    assert not at.error


def test_contrast_and_generate_restore_their_state(models_dir, monkeypatch):
    at = _open(models_dir, monkeypatch, "ui/pages/contrast.py", {"a": "Mary loves John .", "b": "John loves Mary ."})
    assert at.text_area(key="ct_a").value == "Mary loves John ." and at.text_area(key="ct_b").value == "John loves Mary ."
    at = _open(models_dir, monkeypatch, "ui/pages/generate.py", {"prompt": "John loves", "seed": "7"})
    assert at.text_input(key="gen_prompt").value == "John loves" and at.number_input(key="gen_seed").value == 7
    at.number_input(key="gen_seed").set_value(9).run()
    assert at.query_params["seed"] in ("9", ["9"])


def test_another_pages_parameters_do_not_leak(models_dir, monkeypatch):
    """Opened on the lesson with ?text=..., then Explore: Explore keeps its own text."""
    at = _open(models_dir, monkeypatch, "ui/pages/lesson.py", {"step": "reading", "text": "John loves Mary ."})
    at.switch_page("ui/pages/explore.py").run()
    assert at.session_state["text"] != "John loves Mary ."


def test_lesson_cells_step_on_a_character_model(tmp_path, monkeypatch):
    """Step 6 with a (tiny, random) character model in the models folder: the readout, the coloured
    passage (one span per character that is not a newline) and the scatter."""
    from explorer import save_bundle
    from test_char_cells import _char_model
    m = _char_model(LS.LESSON_TEXTS["cells"][0])
    save_bundle(tmp_path / "tiny-char", m.lm, m.tokenizer, {"name": "tiny-char", "metrics": {}})
    at = _open(tmp_path, monkeypatch, "ui/pages/lesson.py", {"step": "cells"})
    assert not at.error
    readout = next(h.proto.body for h in at.get("html") if 'data-testid="cells-readout"' in h.proto.body)
    assert "correlation with the position in the line" in readout and "no quotation marks" in readout
    text = next(h.proto.body for h in at.get("html") if 'data-testid="cell-text"' in h.proto.body)
    passage = LS.LESSON_TEXTS["cells"][0]
    assert text.count("<span ") == len(passage) - passage.count("\n")
    assert any("position in the line" in str(c.proto.spec) for c in at.get("plotly_chart"))
