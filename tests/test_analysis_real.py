"""Sanity checks of the analyses on the shipped models (skipped where they are absent).

These check invariants that hold for any trained weights (exactness, equal bags, finite numbers) and
print what the model shows (run with -s); they do not pin numbers that change with each epoch."""
from pathlib import Path

import numpy as np
import pytest

import explorer as E
from explorer.analysis import (attribute, bow_embedding_distance, cell_provenance, contrast,
                               next_word_comparison, replacement_fade)

ROOT = Path(__file__).resolve().parents[1]
LSTM, RNN = ROOT / "pretrained" / "fiction-lstm", ROOT / "pretrained" / "fiction-rnn"
GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly ,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly ,'
WORDS = ["miss", "ma'am", "madam", "sir"]


def _load(path):
    if not (path / "card.json").is_file():
        pytest.skip(f"{path.relative_to(ROOT)} is not there yet (trained by `python -m explorer train`)")
    return E.load_model(path)


@pytest.fixture(scope="module")
def lstm():
    return _load(LSTM)


def test_bartender_pair(lstm):
    c = contrast(lstm, GIRL, BOY)
    df = next_word_comparison(lstm, c, words=WORDS)
    chosen = df[df.kind == "chosen"].set_index("word")
    print("\nbartender:", {w: (round(r.p_a, 5), round(r.p_b, 5)) for w, r in chosen.iterrows()},
          "unk:", [t.text for t in c.a.tokens if t.unk], "final cos:", c.final_cosine["state"])
    assert not c.same_bag and c.bag_difference == {"boy": -1, "girl": 1, "he": -1, "she": 1}
    assert np.all(c.dh[:, :2] == 0) and np.all(c.dh[:, 2] > 0)
    ok = chosen[chosen.in_vocab]
    assert ((ok.p_a > 0) & (ok.p_a < 1) & (ok.p_b > 0) & (ok.p_b < 1)).all()


def test_mary_john(lstm):
    c = contrast(lstm, "Mary loves John .", "John loves Mary .")
    print("\nMary/John final-state cosine distances:", {k: round(v, 5) for k, v in c.final_cosine.items()})
    assert c.same_bag and bow_embedding_distance(lstm, c) == 0
    assert c.final_cosine["h_top"] > 0


def test_exactness_on_the_trained_weights(lstm):
    tr = E.trace(lstm, GIRL)
    for layer in range(1, lstm.config.layers + 1):          # 1 = the bottom layer
        p = cell_provenance(tr, layer=layer)
        scale = max(1.0, float(np.abs(p.c).max()))
        np.testing.assert_allclose(p.total, p.c, atol=1e-5 * scale, rtol=0)
    a = attribute(lstm, "She said , Certainly ,", word="miss", methods=("integrated_gradients",))
    print("\nIG for 'miss':", a.top("integrated_gradients", 5), "completeness error", a.completeness_error,
          "nodes", a.ig_steps)
    assert a.completeness_relative <= 0.01


def test_lstm_against_rnn_fading(lstm):
    rnn = _load(RNN)
    text = "Mary walked into the room , and after a long silence the old man looked up at the window ."
    df = replacement_fade({"LSTM": lstm, "RNN": rnn}, text, ("<unk>", "john", "she"))
    late = df[df.distance >= 10].groupby(["model", "replacement"])["dh_rel"].mean().unstack()
    print("\nmean ‖Δh‖/‖h‖ from 10 steps after the replaced first word on:\n", late.round(4).to_string())
    assert df["dh"].notna().all() and (df[df.distance == 0]["dh"] > 0).all()
