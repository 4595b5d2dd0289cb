"""The Streamlit app through streamlit.testing.v1.AppTest: every page runs without an exception, and
changing a widget changes what is drawn (read from the Plotly specs the app sends)."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explorer as E
from explorer import settings
from explorer.presets import DEFAULT_PRESET, PRESETS

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60  # the first run imports torch and loads a model; AppTest's default of 3 s is too short


@pytest.fixture
def app(models_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(models_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    """The Plotly specs the app sent, as the browser gets them."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def specs(at: AppTest) -> list[dict]:
    return charts(at)


def panels(at: AppTest) -> list[tuple[dict, dict, int]]:
    """(chart spec, panel meta, panel index) for every view drawn; combined figures (the step view,
    the heatmaps) hold several panels, each described in layout.meta.panels."""
    out = []
    for s in charts(at):
        m = s["layout"]["meta"]
        for i, pm in enumerate(m["panels"] if m["view"] == "combined" else [m]):
            out.append((s, pm, i))
    return out


def view(at: AppTest, name: str, quantity: str | None = None) -> dict:
    """The panel of one view as a standalone spec: its meta, its x axis and its first trace."""
    for s, pm, i in panels(at):
        if pm["view"] == name and (quantity is None or pm.get("quantity") == quantity):
            return panel_spec(s, i)
    raise AssertionError(f"no {name} chart {quantity or ''}")


def panel_spec(s: dict, i: int) -> dict:
    """Cut panel i out of a combined spec: its traces, axes (renamed back to x/y), shapes, meta."""
    m = s["layout"]["meta"]
    if m["view"] != "combined":
        return s
    pm = m["panels"][i]
    # panels are laid out in order; each heatmap panel has one trace and one x/y axis pair
    view = pm["view"]
    if view == "heatmap":
        tr = s["data"][i]
        sfx = tr["xaxis"][1:]
        xref = tr["xaxis"]
        shapes = [sh for sh in s["layout"].get("shapes", []) if sh.get("xref") == xref]
        title = next(a["text"] for a in s["layout"]["annotations"] if a.get("name") == "title"
                     and a["text"].startswith(f"<b>{pm['quantity']}</b>"))
        return {"data": [tr], "layout": {"xaxis": s["layout"]["xaxis" + sfx], "shapes": shapes, "meta": pm,
                                         "title": {"text": title}}}
    return {"data": [d for d in s["data"]], "layout": dict(s["layout"], meta=pm)}


def views_drawn(at: AppTest) -> list[str]:
    """'heatmaph', 'heatmapc', ... for heatmaps; the bare view name for the others."""
    return [pm["view"] + (pm["quantity"] if pm["view"] == "heatmap" else "") for _, pm, _ in panels(at)]


def html_with(at: AppTest, marker: str) -> str:
    for h in at.get("html"):
        if marker in h.proto.body:
            return h.proto.body
    raise AssertionError(f"no st.html element containing {marker!r}")


def z_of(s: dict) -> np.ndarray:
    z = s["data"][0]["z"]
    if isinstance(z, dict):  # plotly sends numpy arrays base64-encoded
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
    return np.asarray(z, dtype=float).ravel()


def labels(text: str, model) -> list[str]:
    return ["<eos>"] + [t.text for t in model.tokenizer.tokenize(text)]


def esc(words):
    return [w.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for w in words]


# ------------------------------------------------------------------------------------ explore
def test_explore_opens_on_the_default_preset(app, tiny_lstm):
    assert app.text_area(key="text").value == PRESETS[DEFAULT_PRESET]
    assert app.selectbox(key="model").value.endswith("tiny-lstm")
    assert views_drawn(app) == ["topk", "step", "gates", "heatmaph", "heatmapc"]   # other tabs are lazy
    n = len(labels(PRESETS[DEFAULT_PRESET], tiny_lstm))
    h = view(app, "heatmap", "h")
    assert h["layout"]["xaxis"]["tickvals"] == list(range(n))
    assert view(app, "step")["layout"]["meta"]["position"] == n - 1   # a new text selects its last token
    strip = html_with(app, 'data-testid="token-strip"')
    assert strip.count('class="tok') >= n and f'data-selected="{n - 1}"' in strip


def test_typing_a_new_text_redraws_every_chart(app, tiny_lstm):
    before = charts(app)
    text = "the cat saw the dog ."
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    h = view(app, "heatmap", "h")
    assert h["layout"]["xaxis"]["ticktext"][:-1] == esc(labels(text, tiny_lstm))[:-1]
    assert h["layout"]["xaxis"]["ticktext"].count("the") == 2     # repeated words keep two columns
    after = charts(app)
    assert len(after) == len(before) == 2                        # the step view and the heatmaps
    for a, b in zip(before, after):
        assert a != b, a["layout"]["meta"]
    assert view(app, "topk")["layout"]["meta"]["position"] == len(labels(text, tiny_lstm)) - 1


def heatmaps_spec(at: AppTest) -> dict:
    return next(s for s in charts(at) if any(pm["view"] == "heatmap" for pm in s["layout"]["meta"]["panels"]))


def test_stepping_moves_the_selection_and_leaves_the_heatmaps(app):
    n = len(view(app, "heatmap", "h")["layout"]["xaxis"]["tickvals"])
    maps = heatmaps_spec(app)
    app.button(key="back").click().run()
    assert_clean(app)
    assert app.session_state["pos"] == n - 2
    assert view(app, "topk")["layout"]["meta"]["position"] == n - 2
    assert view(app, "step")["layout"]["meta"]["position"] == n - 2
    assert f'data-selected="{n - 2}"' in html_with(app, 'data-testid="token-strip"')
    assert heatmaps_spec(app) == maps          # a step does not redraw (or resend) the heatmaps
    app.button(key="first").click().run()
    assert view(app, "gates")["layout"]["meta"]["position"] == 0
    app.button(key="next").click().run()
    app.button(key="next").click().run()
    assert view(app, "step")["layout"]["meta"]["position"] == 2
    app.select_slider(key="pos_slider").set_value(5).run()
    assert_clean(app)
    assert view(app, "topk")["layout"]["meta"]["position"] == 5
    assert heatmaps_spec(app) == maps
    app.button(key="last").click().run()
    app.button(key="next").click().run()                         # stays on the last token
    assert app.session_state["pos"] == n - 1
    app.button(key="first").click().run()
    app.button(key="back").click().run()                         # stays on the first
    assert app.session_state["pos"] == 0
    assert_clean(app)


def test_switching_layer_redraws_the_heatmaps(app):
    top = view(app, "heatmap", "h")
    assert top["layout"]["meta"]["layer"] == 1                  # opens on the top layer
    app.radio(key="layer").set_value(0).run()
    assert_clean(app)
    low = view(app, "heatmap", "h")
    assert low["layout"]["meta"]["layer"] == 0 and "layer 1" in low["layout"]["title"]["text"]
    assert not np.allclose(z_of(top), z_of(low))
    assert view(app, "step")["layout"]["meta"]["layer"] == 0


GATES_TAB = "Gates i · f · o and candidate g"


def open_tab(at: AppTest, label: str, cell: str = "lstm"):
    at.session_state[f"views_tab_{cell}"] = label
    at.run()
    assert_clean(at)


def test_colour_ranges_stay_fixed_across_texts(app):
    open_tab(app, GATES_TAB)
    gates = {q: (view(app, "heatmap", q)["data"][0]["zmin"], view(app, "heatmap", q)["data"][0]["zmax"]) for q in "ifog"}
    assert gates == {"i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "g": (-1.0, 1.0)}
    open_tab(app, "States h · c")

    def ranges():
        return {q: (view(app, "heatmap", q)["data"][0]["zmin"], view(app, "heatmap", q)["data"][0]["zmax"])
                for q in "hc"}
    first = ranges()
    assert first["h"] == (-1.0, 1.0)
    assert first["c"][0] == -first["c"][1] and view(app, "heatmap", "c")["data"][0]["zmid"] == 0
    app.text_area(key="text").input("Holmes said nothing .").run()
    assert ranges() == first


def test_empty_text_shows_a_friendly_prompt(app):
    app.text_area(key="text").input("").run()
    assert_clean(app)
    assert not specs(app)
    assert any("Type a sentence" in i.value for i in app.info)
    app.text_area(key="text").input("   \n ").run()
    assert_clean(app)
    assert not specs(app)


def test_over_long_text_is_cut_with_a_warning(app, monkeypatch):
    monkeypatch.setattr(settings, "MAX_CHARS", 40)
    text = "the cat saw the dog and the dog saw the cat and they all went home ."
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    (w,) = app.warning
    assert "40" in w.value and f"{len(text)}" in w.value
    ticks = view(app, "heatmap", "h")["layout"]["xaxis"]["ticktext"]
    clipped = text[:40]
    assert len(ticks) == 1 + len(clipped.split())             # traced: the allowed part


def test_unknown_words_are_marked(app):
    app.text_area(key="text").input("the zyzzyva and the quokka").run()
    assert_clean(app)
    note = html_with(app, 'data-testid="unknown-words"')
    assert "zyzzyva" in note and "quokka" in note
    strip = html_with(app, 'data-testid="token-strip"')
    assert strip.count('data-unk="true"') == 2


def test_user_text_cannot_inject_html(app):
    app.text_area(key="text").input('she said <img src=x onerror="alert(1)"> & left').run()
    assert_clean(app)
    for marker in ('data-testid="token-strip"', 'data-testid="step-readout"'):
        body = html_with(app, marker)
        assert "<img" not in body and "&lt;" in body


def test_switching_to_an_rnn(app, models_dir):
    app.selectbox(key="model").set_value(str(models_dir / "tiny-rnn")).run()
    assert_clean(app)
    assert views_drawn(app) == ["topk", "step", "heatmaph"]
    assert any("no gates" in c.value for c in app.caption)
    step = next(s for s in charts(app) if s["layout"]["meta"]["view"] == "combined"
                and s["layout"]["meta"]["panels"][1]["view"] == "step")
    assert {d.get("name") for d in step["data"]} >= {"Δh"} and "Δc" not in {d.get("name") for d in step["data"]}
    app.radio(key="layer").set_value(0).run()
    assert_clean(app)
    app.selectbox(key="model").set_value(str(models_dir / "tiny-lstm")).run()
    assert_clean(app)
    assert "heatmapc" in views_drawn(app)


def test_preset_buttons_fill_the_text_box(app, tiny_lstm):
    names = list(PRESETS)
    i = names.index("Mary loves John .")
    app.button(key=f"preset_{i}").click().run()
    assert_clean(app)
    assert app.text_area(key="text").value == "Mary loves John ."
    assert view(app, "heatmap", "h")["layout"]["xaxis"]["ticktext"][1:4] == ["Mary", "loves", "John"]
    app.button(key=f"preset_{names.index('John loves Mary .')}").click().run()
    assert view(app, "heatmap", "h")["layout"]["xaxis"]["ticktext"][1:4] == ["John", "loves", "Mary"]


def test_play_and_pause(app):
    app.button(key="first").click().run()
    app.button(key="play").click().run()
    assert_clean(app)
    assert app.session_state["playing"] is True
    assert app.button(key="play").label == "Pause"
    app.button(key="play").click().run()
    assert app.session_state["playing"] is False
    assert app.button(key="play").label == "Play"
    app.selectbox(key="speed").set_value("4 tokens/s").run()
    assert_clean(app)


def test_play_from_the_end_restarts(app):
    app.button(key="play").click().run()
    assert app.session_state["pos"] == 0 and app.session_state["playing"]


def test_unit_inspector(app, tiny_lstm):
    open_tab(app, "Unit inspector")
    assert views_drawn(app) == ["topk", "step", "gates", "units"]
    app.radio(key="unit_how").set_value("by number").run()
    assert_clean(app)
    app.multiselect(key="unit_ids").set_value([3, 1]).run()
    assert_clean(app)
    u = view(app, "units")
    assert u["layout"]["meta"]["units"] == [3, 1] and [d["name"] for d in u["data"]] == ["unit 3", "unit 1"]
    app.radio(key="unit_how").set_value("most changed at this step").run()
    app.slider(key="unit_k").set_value(2).run()
    assert_clean(app)
    a = view(app, "units")["layout"]["meta"]["units"]
    assert len(a) == 2
    app.selectbox(key="unit_q").set_value("c").run()
    assert view(app, "units")["layout"]["meta"]["quantity"] == "c"
    assert_clean(app)


def test_tabs_draw_only_the_open_one(app):
    open_tab(app, GATES_TAB)
    assert views_drawn(app) == ["topk", "step", "gates", "heatmapi", "heatmapf", "heatmapo", "heatmapg"]
    app.button(key="back").click().run()                  # stepping keeps the tab
    assert_clean(app)
    assert views_drawn(app)[3:] == ["heatmapi", "heatmapf", "heatmapo", "heatmapg"]
    open_tab(app, "States h · c")
    assert views_drawn(app)[3:] == ["heatmaph", "heatmapc"]


def test_guide_page(app):
    app.switch_page("ui/guide.py").run()
    assert_clean(app)
    text = " ".join(m.value for m in app.markdown)
    assert "Token strip" in text and "Heatmaps" in text
    assert len(app.dataframe) == 1
    app.switch_page("ui/explore.py").run()
    assert_clean(app)
    assert app.text_area(key="text").value == PRESETS[DEFAULT_PRESET]


def test_text_survives_a_page_switch(app):
    app.text_area(key="text").input("Mary loves John .").run()
    app.switch_page("ui/guide.py").run()
    app.switch_page("ui/explore.py").run()
    assert_clean(app)
    assert app.text_area(key="text").value == "Mary loves John ."


# ----------------------------------------------------------------------------- models and uploads
def test_no_models_folder_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(tmp_path / "nothing-here"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("No model bundle found" in e.value for e in at.error)
    assert not specs(at)


def test_a_broken_bundle_shows_what_is_wrong(tmp_path, monkeypatch, bundle_dir):
    bad = tmp_path / "models" / "broken"
    bad.mkdir(parents=True)
    for f in ("card.json", "tokenizer.json"):
        (bad / f).write_bytes((bundle_dir / f).read_bytes())
    (bad / "weights.safetensors").write_bytes(b"\x80\x04pickle")
    monkeypatch.setenv("RNN_EXPLORER_MODELS", str(tmp_path / "models"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("weights.safetensors" in e.value and "pickle" in e.value for e in at.error)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_load_upload_validates_the_zip(bundle_dir):
    from ui import common

    good = {f"tiny/{f}": (bundle_dir / f).read_bytes() for f in ("weights.safetensors", "tokenizer.json", "card.json")}
    path, label = common.load_upload(_zip(good), "tiny.zip")
    assert E.load_model(path).name == "tiny-lstm" and "uploaded" in label
    with pytest.raises(E.BundleError, match="not a zip"):
        common.load_upload(b"this is not a zip", "x.zip")
    with pytest.raises(E.BundleError, match="lacks"):
        common.load_upload(_zip({"card.json": b"{}"}), "x.zip")
    pickled = dict(good, **{"tiny/weights.safetensors": b"\x80\x04\x95pickle"})
    with pytest.raises(E.BundleError, match="pickle"):
        common.load_upload(_zip(pickled), "x.zip")
    wrong = dict(good, **{"tiny/card.json": json.dumps({"config": {"cell": "lstm", "vocab_size": 3}}).encode()})
    with pytest.raises(E.BundleError):
        common.load_upload(_zip(wrong), "x.zip")


def test_upload_size_limit(monkeypatch):
    from ui import common

    monkeypatch.setattr(settings, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(E.BundleError, match="limit"):
        common.load_upload(b"x" * 100, "big.zip")
