"""The Streamlit app through streamlit.testing.v1.AppTest: every page runs without an exception, and
changing a widget changes what is drawn (read from the Plotly specs the app sends)."""
from __future__ import annotations

import base64
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explorer as E
from explorer import settings
from explorer.present.player import decode_f32
from explorer.present.presets import DEFAULT_PRESET, PRESETS

from apptest_support import APP, ROOT, TIMEOUT, assert_clean, html_with, new_app, open_page, specs


@pytest.fixture
def app(models_dir, monkeypatch) -> AppTest:
    return open_page(models_dir, monkeypatch)


def panels(at: AppTest) -> list[tuple[dict, dict, int]]:
    """(chart spec, panel meta, panel index) for every view drawn; combined figures (the step view,
    the heatmaps) hold several panels, each described in layout.meta.panels."""
    out = []
    for s in specs(at):
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
def player(at: AppTest) -> dict:
    """The data the Explore page sent to its player component (explorer.present.player.player_data)."""
    found = at.get("bidi_component")
    assert len(found) == 1, f"{len(found)} player components"
    assert found[0].proto.component_name == "rnn_explorer_player"
    (data,) = json.loads(found[0].proto.json)          # a one-element list (ui/player_component.py says why)
    return data


def no_player(at: AppTest) -> bool:
    return not at.get("bidi_component")


def token_labels(d: dict) -> list[str]:
    return [t["label"] for t in d["tokens"]]


def heat(d: dict, q: str) -> np.ndarray:
    """A heatmap's values [tokens, units] as the browser decodes them (h and c come from "states")."""
    (hm,) = [h for h in d["heat"] if h["q"] == q]
    raw = hm["data"] if hm["data"] is not None else d["states"][q]
    return decode_f32(raw, (d["hi"] - d["lo"], d["units"]))


def test_explore_opens_on_the_default_preset(app, tiny_lstm):
    assert app.text_area(key="text").value == PRESETS[DEFAULT_PRESET]
    assert app.selectbox(key="model").value.endswith("tiny-lstm")
    d = player(app)
    n = len(labels(PRESETS[DEFAULT_PRESET], tiny_lstm))
    assert token_labels(d) == labels(PRESETS[DEFAULT_PRESET], tiny_lstm)
    assert (d["n"], d["lo"], d["hi"], d["pos"]) == (n, 0, n, n - 1)       # a new text selects its last token
    assert [h["q"] for h in d["heat"]] == ["h", "c"]                      # the other tabs are sent when chosen
    assert d["views"] == ["States h · c", GATES_TAB, "Unit inspector"] and d["view"] == "States h · c"
    assert d["layer"] == 2 and set(d["gates"]) == {"i", "f", "o"}                 # the top layer
    assert len(d["next"]) == len(d["readout"]) == n and d["next"][-1]["actual"] is None
    assert not app.get("plotly_chart")                                    # no Plotly figure on the default view


def test_typing_a_new_text_redraws_every_chart(app, tiny_lstm):
    before = player(app)
    text = "the cat saw the dog ."
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    d = player(app)
    assert d["sig"] != before["sig"]
    assert token_labels(d) == labels(text, tiny_lstm)
    assert token_labels(d).count("the") == 2                          # repeated words keep their own columns
    assert d["pos"] == len(labels(text, tiny_lstm)) - 1
    tr = E.trace(tiny_lstm, text, top_k=10)
    # the same float32 values (up to the last bit: the app's torch uses another thread count)
    np.testing.assert_allclose(heat(d, "h"), tr.layers[1].values["h"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(heat(d, "c"), tr.layers[1].values["c"], rtol=0, atol=1e-6)


def test_a_reported_step_resends_the_same_data(app):
    d = player(app)
    app.session_state["pos"] = 2                 # what the player reports after a step (ui/pages/explore.py, _pos_changed)
    app.run()
    assert_clean(app)
    assert player(app) == d                      # the player holds every step of the window already
    assert app.session_state["pos"] == 2
    app.session_state["pos"] = 10_000            # clamped to the text
    app.run()
    assert app.session_state["pos"] == d["n"] - 1 and player(app) == d


def test_a_long_text_is_sent_a_window_at_a_time(app, monkeypatch):
    from ui import widgets

    monkeypatch.setattr(widgets, "WINDOW", 12)
    text = " ".join(["the cat saw the dog ."] * 6)           # 37 tokens
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    d = player(app)
    assert (d["n"], d["lo"], d["hi"], d["pos"]) == (37, 25, 37, 36)
    assert len(d["tokens"]) == len(d["next"]) == 12
    assert any("a window" in c.value for c in app.caption)
    app.session_state["pos"] = 3
    app.run()
    d = player(app)
    assert (d["lo"], d["hi"], d["pos"]) == (0, 12, 3)


def test_switching_layer_redraws_the_heatmaps(app):
    top = player(app)
    assert top["layer"] == 2                                  # opens on the top layer
    app.radio(key="layer").set_value(1).run()                # layer 1: the bottom
    assert_clean(app)
    low = player(app)
    assert low["layer"] == 1 and low["sig"] == top["sig"]      # same text: the player keeps its selection
    assert not np.allclose(heat(top, "h"), heat(low, "h"))


GATES_TAB = "Gates i · f · o and candidate g"


def open_tab(at: AppTest, label: str):
    at.session_state["view"] = label          # what the player's tab buttons set (ui/pages/explore.py, _view_changed)
    at.run()
    assert_clean(at)


def test_colour_ranges_stay_fixed_across_texts(app):
    open_tab(app, GATES_TAB)
    d = player(app)
    gates = {h["q"]: (h["scale"]["zmin"], h["scale"]["zmax"]) for h in d["heat"]}
    assert gates == {"i": (0.0, 1.0), "f": (0.0, 1.0), "o": (0.0, 1.0), "g": (-1.0, 1.0)}
    assert heat(d, "i").min() >= 0 and heat(d, "i").max() <= 1
    open_tab(app, "States h · c")

    def scales():
        return {h["q"]: h["scale"] for h in player(app)["heat"]}
    first = scales()
    assert (first["h"]["zmin"], first["h"]["zmax"]) == (-1.0, 1.0) and not first["h"]["log"]
    assert first["c"]["log"] and first["c"]["zmin"] == -first["c"]["zmax"] and first["c"]["signed"]
    app.text_area(key="text").input("Holmes said nothing .").run()
    assert scales() == first


def test_empty_text_shows_a_friendly_prompt(app):
    app.text_area(key="text").input("").run()
    assert_clean(app)
    assert no_player(app) and not specs(app)
    assert any("Type a sentence" in i.value for i in app.info)
    app.text_area(key="text").input("   \n ").run()
    assert_clean(app)
    assert no_player(app)


def test_over_long_text_is_cut_with_a_warning(app, monkeypatch):
    monkeypatch.setattr(settings, "MAX_CHARS", 40)
    text = "the cat saw the dog and the dog saw the cat and they all went home ."
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    (w,) = app.warning
    assert "40" in w.value and f"{len(text)}" in w.value
    clipped = text[:40]
    assert len(player(app)["tokens"]) == 1 + len(clipped.split())      # traced: the allowed part


def test_unknown_words_are_marked(app):
    app.text_area(key="text").input("the zyzzyva and the quokka").run()
    assert_clean(app)
    note = html_with(app, 'data-testid="unknown-words"')
    assert "zyzzyva" in note and "quokka" in note
    toks = player(app)["tokens"]
    assert [t["label"] for t in toks if t["unk"]] == ["zyzzyva", "quokka"]
    assert all("unknown" in t["title"] for t in toks if t["unk"])


def test_user_text_cannot_inject_html(app):
    text = 'she said <img src=x onerror="alert(1)"> & left'
    app.text_area(key="text").input(text).run()
    assert_clean(app)
    d = player(app)
    assert "<img" in "".join(t["label"] for t in d["tokens"])     # sent as text: the player sets textContent
    js = (ROOT / "explorer" / "present" / "assets" / "player.js").read_text()
    assert ".innerHTML" not in js and "insertAdjacentHTML" not in js and "textContent" in js


def test_switching_to_an_rnn(app, models_dir):
    app.selectbox(key="model").set_value(str(models_dir / "tiny-rnn")).run()
    assert_clean(app)
    d = player(app)
    assert d["cell"] == "rnn" and d["gates"] == {} and set(d["states"]) == {"h"}
    assert [h["q"] for h in d["heat"]] == ["h"] and d["views"] == ["State h", "Unit inspector"]
    app.radio(key="layer").set_value(1).run()
    assert_clean(app)
    app.selectbox(key="model").set_value(str(models_dir / "tiny-lstm")).run()
    assert_clean(app)
    assert [h["q"] for h in player(app)["heat"]] == ["h", "c"]


def test_preset_buttons_fill_the_text_box(app, tiny_lstm):
    names = list(PRESETS)
    i = names.index("Mary loves John .")
    app.button(key=f"preset_{i}").click().run()
    assert_clean(app)
    assert app.text_area(key="text").value == "Mary loves John ."
    assert token_labels(player(app))[1:4] == ["Mary", "loves", "John"]
    app.button(key=f"preset_{names.index('John loves Mary .')}").click().run()
    assert token_labels(player(app))[1:4] == ["John", "loves", "Mary"]


def test_unit_inspector(app, tiny_lstm):
    open_tab(app, "Unit inspector")
    assert player(app)["heat"] == [] and player(app)["view"] == "Unit inspector"
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
    app.session_state["pos"] = 1                                  # the selection moved: other units
    app.run()
    assert view(app, "units")["layout"]["meta"]["selected"] == 1
    app.selectbox(key="unit_q").set_value("c").run()
    assert view(app, "units")["layout"]["meta"]["quantity"] == "c"
    assert_clean(app)


def test_tabs_send_only_the_open_one(app):
    open_tab(app, GATES_TAB)
    assert [h["q"] for h in player(app)["heat"]] == ["i", "f", "o", "g"]
    assert not app.get("plotly_chart")
    open_tab(app, "States h · c")
    assert [h["q"] for h in player(app)["heat"]] == ["h", "c"]
    open_tab(app, "no such tab")                                  # a stale value falls back to the first tab
    assert player(app)["view"] == "States h · c"


def test_guide_page(app):
    app.switch_page("ui/pages/guide.py").run()
    assert_clean(app)
    text = " ".join(m.value for m in app.markdown)
    assert "Token strip" in text and "Heatmaps" in text
    assert len(app.dataframe) == 1
    app.switch_page("ui/pages/explore.py").run()
    assert_clean(app)
    assert app.text_area(key="text").value == PRESETS[DEFAULT_PRESET]


def test_text_survives_a_page_switch(app):
    app.text_area(key="text").input("Mary loves John .").run()
    app.switch_page("ui/pages/guide.py").run()
    app.switch_page("ui/pages/explore.py").run()
    assert_clean(app)
    assert app.text_area(key="text").value == "Mary loves John ."


# ----------------------------------------------------------------------------- models and uploads
def test_no_models_folder_says_what_to_do(tmp_path, monkeypatch):
    at = new_app(tmp_path / "nothing-here", monkeypatch).run()
    assert not at.exception
    assert any("No model bundle found" in e.value for e in at.error)
    assert not specs(at)


def test_a_broken_bundle_shows_what_is_wrong(tmp_path, monkeypatch, bundle_dir):
    bad = tmp_path / "models" / "broken"
    bad.mkdir(parents=True)
    for f in ("card.json", "tokenizer.json"):
        (bad / f).write_bytes((bundle_dir / f).read_bytes())
    (bad / "weights.safetensors").write_bytes(b"\x80\x04pickle")
    at = new_app(tmp_path / "models", monkeypatch).run()
    assert not at.exception
    assert any("weights.safetensors" in e.value and "pickle" in e.value for e in at.error)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_load_upload_validates_the_zip(bundle_dir):
    from ui import uploads

    good = {f"tiny/{f}": (bundle_dir / f).read_bytes() for f in ("weights.safetensors", "tokenizer.json", "card.json")}
    path, label = uploads.load_upload(_zip(good), "tiny.zip")
    assert E.load_model(path).name == "tiny-lstm" and "uploaded" in label
    with pytest.raises(E.BundleError, match="not a zip"):
        uploads.load_upload(b"this is not a zip", "x.zip")
    with pytest.raises(E.BundleError, match="lacks"):
        uploads.load_upload(_zip({"card.json": b"{}"}), "x.zip")
    pickled = dict(good, **{"tiny/weights.safetensors": b"\x80\x04\x95pickle"})
    with pytest.raises(E.BundleError, match="pickle"):
        uploads.load_upload(_zip(pickled), "x.zip")
    wrong = dict(good, **{"tiny/card.json": json.dumps({"config": {"cell": "lstm", "vocab_size": 3}}).encode()})
    with pytest.raises(E.BundleError):
        uploads.load_upload(_zip(wrong), "x.zip")


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


def test_upload_size_limit(monkeypatch):
    from ui import uploads

    monkeypatch.setattr(settings, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(E.BundleError, match="limit"):
        uploads.load_upload(b"x" * 100, "big.zip")


def test_old_uploads_are_pruned(tmp_path):
    import os
    import time

    from ui import uploads

    old, new, keep = (tmp_path / n for n in ("aaa", "bbb", "ccc"))
    for p in (old, new, keep):
        (p / "bundle").mkdir(parents=True)
    week_ago = time.time() - 8 * 24 * 3600
    for p in (old, keep):
        os.utime(p, (week_ago, week_ago))
    (tmp_path / "stray-file").write_text("x")
    removed = uploads.prune_uploads(tmp_path, keep="ccc")
    assert removed == [old] and not old.exists() and new.exists() and keep.exists()
    assert uploads.prune_uploads(tmp_path / "missing") == []


def test_the_first_render_does_not_import_pandas(models_dir):
    """pandas costs 0.4 s of the cold start and the Explore page's first render does not need it
    (explorer.present._lazy; ui/player_component.py sends a list, not a dict). A fresh interpreter, as a server starts."""
    import subprocess
    import sys

    script = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
              f"at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT}).run()\n"
              "assert not at.exception and len(at.get('bidi_component')) == 1, at.exception\n"
              "print('pandas' in sys.modules)\n")
    env = dict(__import__("os").environ, RNN_EXPLORER_MODELS=str(models_dir))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
