"""The Explore player's n-gram track: the Kneser-Ney model's surprisal of each word under the strip."""
from __future__ import annotations

import math

import numpy as np
import pytest

from explorer import trace
from explorer.present.player import ngram_bits, player_data
from explorer.training.ngram import KneserNey

from conftest import TEXT


@pytest.fixture(scope="module")
def kn(tiny_lstm):
    ids = [t.id for t in trace(tiny_lstm, TEXT).tokens]
    return KneserNey(3, len(tiny_lstm.tokenizer)).fit(ids)


def test_bits_are_the_ngram_surprisal_of_each_token_given_the_ones_before(tiny_lstm, kn):
    tr = trace(tiny_lstm, "The bartender said \"Certainly, miss.\"")
    bits = ngram_bits(tr, kn)
    ids = [t.id for t in tr.tokens]
    assert bits.shape == (len(tr),) and math.isnan(bits[0])
    for i in range(1, len(ids)):                      # brute force: −log2 P(w_i | w_{i−2}, w_{i−1})
        assert bits[i] == pytest.approx(-math.log2(kn.prob(ids[max(0, i - 2):i], ids[i])), rel=1e-5)


def test_the_track_in_player_data_holds_bits_colours_and_what_memory_saved(tiny_lstm, kn):
    tr = trace(tiny_lstm, TEXT)
    bits = ngram_bits(tr, kn)
    lo, hi = 5, 25
    d = player_data(tr, 2, pos=10, window=(lo, hi), ngram=("Kneser-Ney 3-gram", bits))
    track = d["ngram"]
    assert track["name"] == "Kneser-Ney 3-gram"
    assert len(track["bits"]) == len(track["gain"]) == len(track["bg"]) == hi - lo
    for j, t in enumerate(range(lo, hi)):
        model_bits = -math.log2(tr.next_prob[t - 1])     # the network's own surprisal of token t
        assert track["bits"][j] == pytest.approx(float(bits[t]), abs=1e-3)
        assert track["gain"][j] == pytest.approx(float(bits[t]) - model_bits, abs=2e-3)
        assert track["bg"][j].startswith("#") and len(track["bg"][j]) == 7
    assert player_data(tr, 2, pos=10, window=(lo, hi))["ngram"] is None


def test_an_ngram_of_another_vocabulary_is_refused(tiny_lstm):
    tr = trace(tiny_lstm, "Mary loves John.")
    with pytest.raises(ValueError, match="vocabulary"):
        ngram_bits(tr, KneserNey(2, len(tiny_lstm.tokenizer) + 1).fit([0, 1, 2]))


def test_the_first_token_has_no_track_value_and_json_has_no_nan(tiny_lstm, kn):
    import json
    tr = trace(tiny_lstm, "Mary loves John.")
    d = player_data(tr, 1, pos=0, ngram=("3-gram", ngram_bits(tr, kn)))
    assert d["ngram"]["bits"][0] is None and d["ngram"]["gain"][0] is None
    json.dumps(d, allow_nan=False)
    assert np.isfinite([b for b in d["ngram"]["bits"][1:]]).all()


# ---- on the Explore page -------------------------------------------------------------------------
def _app_with_ngram(tmp_path, monkeypatch):
    """A models folder whose tiny LSTM bundle carries its own 3-gram file, and the app on it."""
    from apptest_support import open_page
    from conftest import make_model
    from explorer import save_bundle
    m = make_model("lstm")
    b = tmp_path / "models" / "tiny-lstm"
    save_bundle(b, m.lm, m.tokenizer, {"name": "tiny-lstm", "description": "tiny", "metrics": {}})
    ids = [t.id for t in trace(m, TEXT).tokens]
    KneserNey(3, len(m.tokenizer)).fit(ids).save(b / "ngram-kn3.npz")
    return open_page(tmp_path / "models", monkeypatch, errors_ok=True)


def _player(at):
    import json
    (data,) = json.loads(at.get("bidi_component")[0].proto.json)
    return data


def test_explore_toggle_draws_the_track_and_the_address_keeps_it(tmp_path, monkeypatch):
    at = _app_with_ngram(tmp_path, monkeypatch)
    toggle = [t for t in at.toggle if t.key == "ngram"]
    assert toggle, "the n-gram toggle is shown when the bundle has an n-gram"
    assert _player(at)["ngram"] is None                           # off by default
    toggle[0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    d = _player(at)
    assert d["ngram"]["name"] == "Kneser-Ney 3-gram"
    assert len(d["ngram"]["bits"]) == d["hi"] - d["lo"]
    assert at.query_params.get("ngram") in ("1", ["1"])


def test_no_toggle_without_an_ngram_file(models_dir, monkeypatch):
    from apptest_support import new_app
    at = new_app(models_dir, monkeypatch)
    at.run()
    assert not at.exception
    assert not [t for t in at.toggle if t.key == "ngram"]
    assert _player(at)["ngram"] is None
