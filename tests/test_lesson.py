"""explorer.present.lesson: the numbers, sentences, HTML strips and URL state behind the analysis pages."""
from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from explorer.present import lesson as LS
from explorer import trace
from explorer.analysis import (attribute, bow_embedding_distance, cell_provenance, contrast, half_lives,
                               next_word_comparison, replacement_fade)
from explorer.present.presets import PRESETS

from conftest import ROOT, TEXT

GIRL, BOY = PRESETS["Bartender (girl / she)"], PRESETS["Bartender (boy / he)"]


def test_reply_prompt_cuts_after_the_cue():
    assert LS.reply_prompt(GIRL).endswith('"Certainly,') and "miss" not in LS.reply_prompt(GIRL)
    assert LS.reply_prompt("no cue here") == "no cue here"


def test_pairs_come_from_the_presets():
    assert LS.PAIRS["bartender"].a == GIRL and LS.PAIRS["bartender"].b == BOY
    assert LS.PAIRS["mary-john"].words == ("he", "she")


def test_compare_step(tiny_lstm):
    c = contrast(tiny_lstm, GIRL, BOY)
    j = LS.compare_step(c, "reply")
    assert c.tokens_a[j] == "," and c.tokens_a[j - 1] == "Certainly"
    assert c.tokens_a[j + 1] == "miss" and c.tokens_b[j + 1] == "sir"
    assert LS.compare_step(c, "last") == c.n - 1
    same = contrast(tiny_lstm, "the cat .", "the cat .")
    assert LS.compare_step(same, "reply") == same.n - 1          # never differs: falls back to the last step
    with pytest.raises(ValueError):
        LS.compare_step(c, "middle")


def test_bag_sentence_and_final_distances(tiny_lstm):
    c = contrast(tiny_lstm, "Mary loves John .", "John loves Mary .")
    bow = bow_embedding_distance(tiny_lstm, c)
    s = LS.bag_sentence(c, bow)
    assert "identical" in s and "differ by 0" in s and f"{c.final_cosine['state']:.3g}" in s
    fd = LS.final_distances(c)
    assert fd["state"].iloc[0].startswith("whole final state") and len(fd) == 1 + 2 * 2
    assert np.isclose(fd["cosine_distance"].iloc[0], c.final_cosine["state"])
    d = contrast(tiny_lstm, GIRL, BOY)
    s2 = LS.bag_sentence(d, bow_embedding_distance(tiny_lstm, d))
    assert "differ in their words" in s2 and "girl" in s2 and "boy" in s2


def _fake_comparison(p_a: dict, p_b: dict) -> pd.DataFrame:
    rows = [{"word": w, "kind": "chosen", "in_vocab": True, "p_a": p_a[w], "p_b": p_b[w], "log_ratio": 0.0,
             "rank_a": 1, "rank_b": 1} for w in p_a]
    return pd.DataFrame(rows)


def test_address_sentence_states_the_caveat():
    # the numbers measured on the shipped fiction-lstm
    df = _fake_comparison({"miss": 0.00165, "ma'am": 0.00057, "madam": 0.00254, "sir": 0.0257},
                          {"miss": 0.00143, "ma'am": 0.00030, "madam": 0.00227, "sir": 0.0299})
    s = LS.address_summary(df)
    assert s["all_expected"] and s["versus_wins_both"]
    assert s["factor"] == pytest.approx((0.00165 / 0.0257) / (0.00143 / 0.0299))
    text = LS.address_sentence(df, "girl", "boy")
    assert "1.34× higher after girl" in text or "1.35× higher after girl" in text
    assert "stays more probable" in text
    wrong = _fake_comparison({"miss": 0.001, "sir": 0.01}, {"miss": 0.002, "sir": 0.01})
    assert "Not every word" in LS.address_sentence(wrong)
    assert "vocabulary" in LS.address_sentence(pd.DataFrame(columns=df.columns))


def test_compare_sentence():
    df = _fake_comparison({"he": 0.051}, {"he": 0.025})
    assert LS.compare_sentence(df, "A", "B") == "P(“he”) is 5.10% after A and 2.50% after B (2× higher after A)."


def test_pair_strip_html_aligns_and_escapes(tiny_lstm):
    c = contrast(tiny_lstm, "the <b>cat</b> saw", "the dog saw it")
    h = LS.pair_strip_html(c, selected=2)
    assert 'data-testid="pair-strip"' in h and f'data-n="{c.n}"' in h and 'data-selected="2"' in h
    assert '<span class="lx-a">&lt;</span>' in h and '<span class="lx-a"><</span>' not in h
    assert h.count('class="lx-col') == c.n
    assert h.count("lx-col diff") == int((~c.same_token).sum())


def test_attribution_chips(tiny_lstm):
    a = attribute(tiny_lstm, 'A girl said "Certainly ,', word="miss", versus="sir", methods=("occlusion",))
    h = LS.attribution_chips_html(a, "occlusion", vmax=0.5)
    assert 'data-method="occlusion"' in h and 'data-target="miss"' in h and "saturate at ±0.5" in h
    assert h.count('class="lx-chip') == len(a.tokens)
    assert 'data-score=""' in h                             # the boundary token has no occlusion score
    b = attribute(tiny_lstm, 'A boy said "Certainly ,', word="miss", versus="sir", methods=("occlusion",))
    d = LS.differing_scores(a, b, "occlusion")
    assert [(x["token_a"], x["token_b"]) for x in d] == [("girl", "boy")]
    s = LS.attribution_sentence(a, b, "occlusion")
    assert "“girl”" in s and "“boy”" in s
    big = LS.largest_scores(a, "occlusion", 2)
    assert abs(big[0][2]) >= abs(big[1][2])


def test_provenance_check_is_exact(tiny_lstm):
    tr = trace(tiny_lstm, GIRL)
    p = cell_provenance(tr, 12, layer=2)
    u = LS.strongest_units(p)[0]
    assert abs(p.c[u]) == pytest.approx(np.abs(p.c).max())
    chk = LS.provenance_check(p, u)
    assert abs(chk["error"]) < 1e-5 and chk["layer_max_error"] < 1e-5
    assert chk["total"] == pytest.approx(chk["sum_parts"] + chk["initial"])
    old = LS.oldest_share(p, u)
    assert 0 <= old["position"] <= 12 and old["steps_ago"] == 12 - old["position"] and 0 < old["share"] <= 1


def test_half_life_summary(tiny_lstm):
    s = LS.half_life_summary(half_lives(trace(tiny_lstm, GIRL)))
    assert s["units"] == 16 and s["over_10"] >= s["over_100"] and np.isfinite(s["median"])


def _fade_frame():
    """Four curves: three keep shrinking (one of them slowly, still large at the end), one drops to a
    plateau and stays there, as the shipped vanilla RNN does after some replacements."""
    rows = []
    curves = {("LSTM", "a"): lambda d: 0.8 ** d, ("LSTM", "b"): lambda d: 0.93 ** d,
              ("RNN", "a"): lambda d: 0.6 ** d, ("RNN", "b"): lambda d: 1.0 if d == 0 else 0.5}
    for (model, rep), f in curves.items():
        for d in range(20):
            rows.append({"model": model, "replacement": rep, "distance": d, "position": d + 1, "token": f"w{d}",
                         "dh_rel": f(d), "tv": 0.1, "dh": 1.0, "kl": 0.0})
    return pd.DataFrame(rows)


def test_fade_table_and_sentence():
    t = LS.fade_table(_fade_frame())
    assert list(t["persists"]) == [False, False, False, True]
    b = t[(t.model == "LSTM") & (t.replacement == "b")].iloc[0]
    assert b["late_share"] > 0.25                    # still large, but shrinking: not called persistent
    s = LS.fade_sentence(t)
    assert "LSTM: the difference keeps shrinking for every replacement, to 5%–36%" in s
    assert "RNN: it depends on the word. After “a” the difference keeps shrinking" in s
    assert "after “b” it stops shrinking and stays large (50% or more)" in s
    fig = LS.fade_panels(_fade_frame())
    assert fig.layout.meta["models"] == ["LSTM", "RNN"] and len(fig.data) == 4
    assert fig.data[0].line.color == fig.data[2].line.color        # one colour per replacement in both panels
    assert "too short" in LS.fade_sentence(LS.fade_table(_fade_frame()[lambda d: d.distance < 5]))


def test_long_memory_units(tiny_lstm):
    tr = trace(tiny_lstm, GIRL)
    p = cell_provenance(tr, 20, layer=2)
    units = LS.long_memory_units(p, min_age=5)
    assert len(units) == 12 and len(set(units)) == 12
    u = units[0]
    old = np.abs(p.parts[:16, u]).max() / (np.abs(p.parts[:, u]).sum() + abs(p.initial[u])) * min(abs(p.c[u]), 1)
    for v in range(16):
        s = np.abs(p.parts[:16, v]).max() / (np.abs(p.parts[:, v]).sum() + abs(p.initial[v])) * min(abs(p.c[v]), 1)
        assert s <= old + 1e-12
    assert LS.long_memory_units(cell_provenance(tr, 2, layer=2), min_age=5) == []


def test_fade_on_real_analysis(tiny_lstm, tiny_rnn):
    df = replacement_fade({"LSTM": tiny_lstm, "RNN": tiny_rnn}, "Mary loves John and John loves Mary and the cat "
                          "saw the dog and the dog saw the cat .", ("<unk>", "she"))
    t = LS.fade_table(df)
    assert len(t) == 4 and np.isfinite(t["late_share"]).all()
    json.loads(LS.fade_panels(df, "tv").to_json())


def test_synced_frame_and_html(tiny_lstm):
    tr = trace(tiny_lstm, "the <cat> saw the dog .")          # "<" and ">" are tokens of their own
    df = LS.synced_frame(tr)
    assert len(df) == len(tr) and pd.isna(df["actual"].iloc[-1]) and not df["right"].iloc[-1]
    assert (df["guess"] == [tr.top_words(t, 1)[0][0] for t in range(len(tr))]).all()
    h = LS.synced_html(tr)
    assert f'data-right="{int(df["right"].sum())}"' in h and '"lx-a"><<' not in h and "&lt;" in h


def test_step_change(tiny_lstm, tiny_rnn):
    tr = trace(tiny_lstm, "the cat saw")
    ch = LS.step_change(tr, 2, 2)                                       # layer 2: tr.layers[1]
    assert ch["dh"] == pytest.approx(float(np.linalg.norm(tr.layers[1].h[2] - tr.layers[1].h[1])), rel=1e-6)
    assert "dc" in ch and ch["units"] == 16
    assert LS.step_change(tr, 1, 0)["dh"] == pytest.approx(float(np.linalg.norm(tr.layers[0].h[0])), rel=1e-6)
    assert "dc" not in LS.step_change(trace(tiny_rnn, "the cat"), 1, 1)


def test_final_state_figure(tiny_lstm, tiny_rnn):
    fig = LS.final_state_figure(trace(tiny_lstm, "the cat saw"))
    assert len(fig.data) == 2 and fig.data[0].zmin == -1 and fig.data[1].zmid == 0
    assert np.allclose(np.asarray(fig.data[0].z)[1], trace(tiny_lstm, "the cat saw").layers[1].h[-1])
    assert len(LS.final_state_figure(trace(tiny_rnn, "the cat")).data) == 1


def test_projector_and_mark_generated():
    fig = go.Figure(go.Bar(x=[0, 1], y=[1, 2]), layout=dict(title="t", xaxis=dict(tickfont=dict(size=10))))
    fig.add_annotation(text="a", x=0, y=0, font=dict(size=9))
    LS.projector(fig, 20, height=500)
    assert fig.layout.font.size == 20 and fig.layout.xaxis.tickfont.size == 18 and fig.layout.height == 500
    assert fig.layout.annotations[0].font.size == 18 and fig.layout.xaxis.automargin
    LS.mark_generated(fig, 5)
    assert fig.layout.shapes[0].x0 == 4.5 and fig.layout.shapes[0].name == "generated"


def test_lesson_query_round_trip():
    st = LS.lesson_from_query({})
    assert st.step == "reading" and st.text == LS.LESSON_TEXTS["reading"][0]
    assert LS.lesson_to_query(st) == {"step": "reading"}
    st = LS.lesson_from_query({"step": "bartender", "text": "A girl said", "text_b": "A boy said", "pos": "3"})
    assert (st.step, st.text, st.text_b, st.pos) == ("bartender", "A girl said", "A boy said", 3)
    assert LS.lesson_from_query(LS.lesson_to_query(st)) == st
    st = LS.lesson_from_query({"step": ["order", "shapes"], "shape": "many-to-one"})   # repeated keys: the last
    assert st.step == "shapes" and st.shape == "many-to-one" and st.text == LS.LESSON_TEXTS["shapes"][0]
    assert LS.lesson_to_query(st) == {"step": "shapes", "shape": "many-to-one"}
    bad = LS.lesson_from_query({"step": "nonsense", "shape": "two-to-two", "pos": "-1", "text": "x" * 5000})
    assert bad.step == "reading" and bad.shape == "one-to-one" and bad.pos is None and len(bad.text) == LS.MAX_QUERY_TEXT
    assert LS.lesson_from_query({"step": "order", "text": "   "}).text == LS.LESSON_TEXTS["order"][0]


def test_bundle_cell_and_pick_pair(models_dir, tmp_path):
    assert LS.bundle_cell(models_dir / "tiny-lstm") == "lstm"
    assert LS.bundle_cell(models_dir / "tiny-rnn") == "rnn"
    assert LS.bundle_cell(tmp_path) is None
    opts = {str(models_dir / "tiny-lstm"): "tiny-lstm", str(models_dir / "tiny-rnn"): "tiny-rnn"}
    assert LS.pick_pair(opts, "rnn", "fiction-rnn") == [str(models_dir / "tiny-rnn")]
    assert LS.pick_pair(opts, "gru", "x") == []


def test_first_word(tiny_lstm):
    assert LS.first_word(tiny_lstm, "  Holmes said nothing") == "Holmes"
    assert LS.first_word(tiny_lstm, "   ") is None


def test_classifier_summary():
    from explorer.training.classify import AuthorClassifier
    clf = AuthorClassifier(torch.zeros(4, dtype=torch.float64), 0.0, torch.zeros(4, dtype=torch.float64),
                           torch.ones(4, dtype=torch.float64),
                           {"feature": "state", "passage_tokens": 30,
                            "metrics": {"test": {"accuracy": 0.851, "n": 2000}}})
    s = LS.classifier_summary(clf)
    assert "85%" in s and "2000" in s and "30-token" in s and "frozen" in s


def test_comparison_helpers_on_a_model(tiny_lstm):
    c = contrast(tiny_lstm, LS.reply_prompt(GIRL), LS.reply_prompt(BOY))
    df = next_word_comparison(tiny_lstm, c, words=LS.ADDRESS_WORDS)
    cp = LS.chosen_probs(df)
    assert list(cp["word"]) == list(LS.ADDRESS_WORDS)
    assert not cp.set_index("word").loc["madam", "in_vocab"]       # not in the tiny vocabulary
    ok = cp[cp["in_vocab"]]
    assert np.allclose(ok["ratio"], ok["p_a"] / ok["p_b"])
    s = LS.address_summary(df)
    assert set(s["expected"]) == {"miss", "ma'am", "sir"}


def test_unrolled_boxes_lie_below_the_sparklines(tiny_lstm):
    """Regression: the boxes were drawn above the traces (plotly's default shape layer), which hid
    the sparkline of h_t inside every box."""
    from explorer.present.analysis_figures import unrolled_figure
    fig = unrolled_figure(trace(tiny_lstm, "Mary loves John ."))
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(boxes) == 5 and all(s.layer == "below" for s in boxes)
    assert sum(t.type == "scatter" for t in fig.data) == 5


# ----------------------------------------------------- issue 14: the exactness check is stated as relative
def test_provenance_check_states_a_relative_tolerance(tiny_lstm):
    rng = random.Random(0)
    text = " ".join(rng.choice(TEXT.split()) for _ in range(600))
    tr = trace(tiny_lstm, text)
    p = cell_provenance(tr, layer=2)
    u = LS.strongest_units(p)[0]
    chk = LS.provenance_check(p, u)
    assert chk["relative_error"] == pytest.approx(abs(chk["error"]) / max(abs(chk["c"]), 1.0))
    assert chk["layer_max_relative_error"] <= chk["tolerance"] == LS.PROVENANCE_RTOL
    assert "relative" in (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")[1]
