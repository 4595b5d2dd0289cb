"""The teaching model's recipe (counterfactual augmentation, fine-tuning from a bundle), the stored
n-gram, and the lesson's "what the books say / what the sentence says" numbers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from explorer import load_model
from explorer.present import lesson as LS
from explorer.training.augment import PAIRS, SWAPS, augment, swap_gender
from explorer.training.ngram import KneserNey
from explorer.training.train import TrainConfig, train


def test_swap_gender_swaps_both_ways_and_keeps_case():
    assert swap_gender("He gave her his hat; she thanked him.") == "She gave him her hat; he thanked her."
    assert swap_gender('"Yes, sir," said the BOY to Mr. Holmes.') == '"Yes, madam," said the GIRL to Mrs. Holmes.'
    assert swap_gender("The lady's brother and the gentleman's wife") == "The gentleman's sister and the lady's husband"
    assert swap_gender("Certainly, ma'am. Miss Bennet") == "Certainly, sir. Mr Bennet"
    assert swap_gender("Nothing to swap in 1895 here.") == "Nothing to swap in 1895 here."


def test_her_becomes_his_before_a_noun_and_him_otherwise():
    assert swap_gender("took her hat") == "took his hat"
    assert swap_gender("told her that") == "told him that"
    assert swap_gender("I saw her.") == "I saw him."
    assert swap_gender("I saw her\nyesterday") == "I saw his\nyesterday"   # a content word follows


def test_every_pair_swaps_back():
    for a, b in PAIRS:
        assert SWAPS[a] == b
        if SWAPS.get(b) == a:
            assert swap_gender(swap_gender(a)) == a


def test_augment_adds_a_swapped_copy_and_only_to_what_it_is_given():
    texts = [("a.txt", "She said he was tired."), ("b.txt", "The boy ran.")]
    out = augment(texts, "gender-swap")
    assert out[:2] == texts
    assert out[2] == ("a.txt [gender-swap]", "He said she was tired.")
    assert out[3] == ("b.txt [gender-swap]", "The girl ran.")
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment(texts, "shuffle")


def test_fine_tuning_from_a_bundle_keeps_its_tokenizer_and_records_the_recipe(bundle_dir, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i, name in enumerate(["a", "b", "c", "d"]):
        (corpus / f"{name}.txt").write_text("the boy said that he was tired . the girl said that she was tired . " * 40)
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["c.txt"], "test": ["d.txt"], "train": "rest"}))
    start = load_model(bundle_dir)
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "ft"), init=str(bundle_dir), augment="gender-swap",
                      dry_run=True, emb_size=999, hidden_size=999)       # sizes come from the bundle, not these
    card = train(cfg, log=lambda m: None)
    m = load_model(tmp_path / "ft")
    assert m.tokenizer.itos == start.tokenizer.itos
    assert m.lm.config.hidden_size == start.lm.config.hidden_size
    tr = card["training"]
    assert tr["init"]["bundle"] == str(bundle_dir) and len(tr["init"]["weights_sha256"]) == 64
    assert tr["augment"]["kind"] == "gender-swap" and ["he", "she"] in tr["augment"]["pairs"]
    assert any(n.endswith("[gender-swap]") for n in tr["split"]["train"]) is False   # the split lists the books


def test_ngram_saves_and_loads_without_pickle(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 3000).tolist()
    kn = KneserNey(3, 50).fit(ids)
    kn.save(tmp_path / "kn.npz")
    back = KneserNey.load(tmp_path / "kn.npz")
    for h in ([1, 2], [3], [], [49, 0]):
        for w in (0, 7, 49):
            assert back.prob(h, w) == pytest.approx(kn.prob(h, w), rel=1e-12)
    assert np.allclose(back.surprisal(ids[:50]), kn.surprisal(ids[:50]))
    assert abs(sum(kn.next_distribution([1, 2])) - 1) < 1e-9


def test_books_vs_sentence_reads_each_model_and_the_ngram(tiny_lstm, tiny_rnn):
    kn = KneserNey(3, len(tiny_lstm.tokenizer)).fit([2, 3, 4, 5] * 50)
    df = LS.books_vs_sentence({"a": tiny_lstm, "b": tiny_rnn}, kn, ngram_tokenizer=tiny_lstm.tokenizer)
    assert list(df["model"].unique()) == ["a", "b", "3-gram (Kneser-Ney)"]
    assert set(df["key"]) == {"girl", "boy", "prior"} and len(df) == 9
    row = df[(df.model == "a") & (df.key == "girl")].iloc[0]
    from explorer.training.evals import BARTENDER_GIRL
    p = dict(tiny_lstm.next_words(BARTENDER_GIRL, len(tiny_lstm.tokenizer)))
    assert row["P(sir)"] == pytest.approx(p.get("sir", 0.0))
    fem = sum(p.get(w, 0.0) for w in ("miss", "ma'am", "madam"))
    assert row["log ratio"] == pytest.approx(math.log(max(fem, 1e-30)) - math.log(max(p.get("sir", 0.0), 1e-30)))
    # the n-gram sees only the last two tokens, so girl and boy get the same numbers
    g = df[df.model == "3-gram (Kneser-Ney)"].set_index("key")
    assert g.loc["girl", "P(sir)"] == g.loc["boy", "P(sir)"]
    assert len(LS.books_vs_sentence_summary(df)) == 3
    fig = LS.books_vs_sentence_figure(df)
    assert len(fig.data) == 3


def test_train_only_changes_only_the_matching_parameters(bundle_dir, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name in ["a", "b", "c", "d"]:
        (corpus / f"{name}.txt").write_text("the boy said that he was tired . the girl said that she was tired . " * 40)
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["c.txt"], "test": ["d.txt"], "train": "rest"}))
    start = load_model(bundle_dir)
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "bias"), init=str(bundle_dir), augment="gender-swap",
                      train_only="decoder.bias", dry_run=True, lr=0.05)
    train(cfg, log=lambda m: None)
    end = load_model(tmp_path / "bias")
    a, b = start.lm.state_dict(), end.lm.state_dict()
    changed = sorted(k for k in a if not np.array_equal(a[k].numpy(), b[k].numpy()))
    assert changed == ["decoder.bias"]
    with pytest.raises(Exception, match="matches no parameter"):
        train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "x"), init=str(bundle_dir), train_only="nothing.*",
                          dry_run=True), log=lambda m: None)


# ---- the teaching model's recipe: names, addresses, focus weights, snapshots ---------------------
from explorer.training.augment import FEMALE_ADDRESSES, name_genders, name_swaps, swap_gender_names  # noqa: E402

STORY = ("Mr. Darcy came in. He bowed. Elizabeth smiled; she was pleased. Miss Elizabeth took her hat. "
         "Darcy said that he was tired. Elizabeth said that she was tired. ")


def test_name_genders_reads_titles_and_pronouns_and_skips_family_names():
    text = STORY * 10 + "Mr. Bennet spoke. Mrs. Bennet spoke. " * 10 + "Walked to London. He went to London. " * 10
    g = name_genders([text], min_count=10)
    assert g.get("Darcy") == "m" and g.get("Elizabeth") == "f"
    assert "Bennet" not in g                   # Mr and Mrs Bennet: a family name, not swapped
    assert "London" not in g                   # a place the pronoun evidence would mistake


def test_name_swaps_pair_by_frequency_and_map_leftovers_one_way():
    counts = {"Emma": 9, "Jane": 5, "Anne": 1, "Holmes": 7, "Watson": 3}
    s = name_swaps({"Emma": "f", "Jane": "f", "Anne": "f", "Holmes": "m", "Watson": "m"}, counts)
    assert s["Emma"] == "Holmes" and s["Holmes"] == "Emma"
    assert s["Jane"] == "Watson" and s["Watson"] == "Jane"
    assert s["Anne"] in ("Holmes", "Watson")


def test_the_names_copy_stays_consistent_and_spreads_sir_over_the_female_addresses():
    texts = [("a.txt", STORY * 10 + '"Yes, sir." "No, sir." "Well, sir." "Oh, miss!" We shall miss her. '
                                    "Sir Walter met Lady Russell.")]
    copies, info = swap_gender_names(texts)
    (name, out), = copies
    assert info["names"]["Darcy"] == "Elizabeth" and info["names"]["Elizabeth"] == "Darcy"
    assert "Mrs. Elizabeth came in. She bowed. Darcy smiled; he was pleased. Mr Darcy took his hat." in out
    assert '"Yes, miss." "No, miss." "Well, miss." "Oh, sir!" We shall miss him.' in out
    from explorer.training.augment import swap_gender
    assert swap_gender('"Yes, sir." "No, sir." "Well, sir."', rotate_address=True, sir_to=FEMALE_ADDRESSES) == \
        '"Yes, madam." "No, ma\'am." "Well, miss."'
    assert "Lady Walter met Sir Russell." in out
    assert FEMALE_ADDRESSES == ("madam", "ma'am", "miss")
    full = augment(texts, "gender-swap-names", info := {})
    assert full[1] == ("a.txt [gender-swap-names]", out) and info["names"]["Darcy"] == "Elizabeth"
    spread = augment(texts, "gender-swap-names-spread")        # the same copy, sir over the three in turn
    assert spread[0] == texts[0] and spread[1][0] == "a.txt [gender-swap-names-spread]"
    assert '"Yes, madam." "No, ma\'am." "Well, miss." "Oh, sir!" We shall miss him.' in spread[1][1]
    assert spread[1][1].replace('"Yes, madam." "No, ma\'am."', '"Yes, miss." "No, miss."') == out


def _tiny_corpus(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name in ["a", "b", "c", "d"]:
        (corpus / f"{name}.txt").write_text("the boy said that he was tired . the girl said that she was tired . " * 40)
    (corpus / "SPLITS.json").write_text(json.dumps({"valid": ["c.txt"], "test": ["d.txt"], "train": "rest"}))
    return corpus


def test_focus_weights_are_undone_in_the_saved_bias_and_snapshots_are_bundles(bundle_dir, tmp_path):
    import torch
    corpus = _tiny_corpus(tmp_path)
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "f"), init=str(bundle_dir), augment="gender-swap-names",
                      focus="he,she", focus_weight=4.0, snapshot_every=1, dry_run=True, lr=0.0)
    card = train(cfg, log=lambda m: None)
    start, end = load_model(bundle_dir), load_model(tmp_path / "f")
    d = (end.lm.decoder.bias - start.lm.decoder.bias).detach()      # lr 0: only the calibration moved it
    ids = [start.tokenizer.stoi["he"], start.tokenizer.stoi["she"]]
    assert torch.allclose(d[ids], torch.full((2,), -math.log(4.0)), atol=1e-6)
    others = torch.ones_like(d, dtype=torch.bool)
    others[ids] = False
    assert torch.count_nonzero(d[others]) == 0
    assert card["training"]["focus"]["weight"] == 4.0
    snaps = sorted((tmp_path / "f.snapshots").iterdir())
    assert snaps[0].name == "e1b00001" and len(snaps) >= 2      # every batch, and the epoch's end
    s = load_model(snaps[0])
    assert s.card["training"]["snapshot"] == {"epoch": 1, "batch": 1}
    assert torch.allclose(s.lm.decoder.bias, end.lm.decoder.bias)
    with pytest.raises(Exception, match="none of its words"):
        train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "x"), init=str(bundle_dir), focus="zzz,qqq",
                          focus_weight=2.0, dry_run=True), log=lambda m: None)


def test_focus_warm_start_gives_back_the_starting_model_with_lr_0(bundle_dir, tmp_path):
    """--focus-warm-start adds log(weight) to the focus words' bias before training and the saved
    bundle takes it off again: with lr 0 a fine-tune is its starting model, bit for bit."""
    corpus = _tiny_corpus(tmp_path)
    cfg = TrainConfig(corpus=str(corpus), out=str(tmp_path / "w"), init=str(bundle_dir), augment="gender-swap-names-spread",
                      focus="he,she", focus_weight=4.0, focus_warm_start=True, dry_run=True, lr=0.0, lr_decay=1.0)
    card = train(cfg, log=lambda m: None)
    a, b = load_model(bundle_dir).lm.state_dict(), load_model(tmp_path / "w").lm.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert "warm_start" in card["training"]["focus"]
    assert card["training"]["train_config"]["lr_decay"] == 1.0
    assert "madam / ma'am / miss in turn" in card["training"]["augment"]["rule_address"]


def test_teaching_report_measures_every_figure_of_the_bar(tiny_lstm):
    from explorer.training.evals import TEACHING_BAR, teaching_report
    r = teaching_report(tiny_lstm)
    assert set(r["checks"]) == {"bartender_girl_female_over_sir", "bartender_boy_sir_over_female",
                                "bartender_girl_miss_over_sir", "pairs_accuracy", "every_pair_type"}
    assert r["meets_bar"] == all(r["checks"].values())
    acc = r["pairs_accuracy"]               # None: no pair is in the tiny vocabulary
    assert r["checks"]["pairs_accuracy"] == (acc is not None and acc >= TEACHING_BAR["pairs_accuracy"])
    assert r["checks"]["bartender_girl_female_over_sir"] == (r["bartender"]["girl_margin"] > 0)


def test_context_weights_cover_the_window_after_each_trigger_and_leave_words_calibrated(bundle_dir, tmp_path):
    import torch

    from explorer.training.train import _context_weights
    tok = load_model(bundle_dir).tokenizer
    ids = tok.encode("the girl said that she was tired . the boy ran .")
    cfg = TrainConfig(corpus="", out="", context_focus="girl,boy", context_window=3, context_weight=5.0)
    w = _context_weights(cfg, tok, torch.tensor(ids), log=lambda m: None)
    words = [tok.itos[i] for i in ids]
    g, b = words.index("girl"), words.index("boy")
    expect = [5.0 if (1 <= i - g <= 3) or (1 <= i - b <= 3) else 1.0 for i in range(len(ids))]
    assert w.tolist() == expect
    assert _context_weights(TrainConfig(corpus="", out=""), tok, torch.tensor(ids), log=lambda m: None) is None
    with pytest.raises(Exception, match="none of its words"):
        _context_weights(TrainConfig(corpus="", out="", context_focus="zzz", context_weight=2.0), tok,
                         torch.tensor(ids), log=lambda m: None)
    # a weight on contexts needs no calibration: with lr 0 the saved weights are the start's
    corpus = _tiny_corpus(tmp_path)
    card = train(TrainConfig(corpus=str(corpus), out=str(tmp_path / "cw"), init=str(bundle_dir),
                             context_focus="gender-nouns", context_weight=3.0, dry_run=True, lr=0.0), log=lambda m: None)
    a, e = load_model(bundle_dir).lm.state_dict(), load_model(tmp_path / "cw").lm.state_dict()
    assert all(torch.equal(a[k], e[k]) for k in a)
    assert card["training"]["context_focus"]["weight"] == 3.0


def test_reset_rows_zeroes_whole_rows_with_the_given_probability():
    import torch

    from explorer.training.train import _reset_rows
    torch.manual_seed(0)
    h, c = torch.ones(2, 1000, 8), torch.full((2, 1000, 8), 3.0)
    h2, c2 = _reset_rows((h, c), 0.5)
    zero = (h2 == 0).all(dim=2).all(dim=0)                     # a row is zeroed in every layer at once
    assert torch.equal(zero, (c2 == 0).all(dim=2).all(dim=0))
    assert ((h2 == 0) | (h2 == 1)).all() and ((c2 == 0) | (c2 == 3)).all()
    assert 400 < int(zero.sum()) < 600
    assert torch.equal(_reset_rows(h, 0.0), h)                  # a GRU/RNN state is one tensor
    assert int(_reset_rows(h, 1.0).count_nonzero()) == 0


def test_address_contexts_counts_addresses_by_the_gender_around_them():
    """scripts/address_contexts.py: what the text says after a woman or a man (the teaching bar's
    address items ask that each female address beat "sir" after a woman)."""
    import runpy
    from conftest import ROOT
    table = runpy.run_path(str(ROOT / "scripts" / "address_contexts.py"))["address_table"]
    she = "She came in. She sat down. Her hat was wet. She smiled. "
    he = "He came in. He sat down. His hat was wet. He smiled. "
    text = (she + '"Tea, ma\'am." ' + she + '"Tea, madam." ' + she + '"Tea, sir." ' + she + '"Tea, miss!" '
            + he + '"Tea, sir." ' + he + '"Tea, sir." ' + "It rained. " * 30 + '"Tea, sir."')   # the last: no context
    t = table([text], window=16)
    assert t["female"] == {"n": 4, "sir": 0.25, "miss": 0.25, "ma'am": 0.25, "madam": 0.25}
    assert t["male"] == {"n": 2, "sir": 1.0, "miss": 0.0, "ma'am": 0.0, "madam": 0.0}
    t = table(["We shall miss her. Miss Bennet, sir, came."], window=16)["female"]  # the verb and the title
    assert t["n"] == 1 and t["sir"] == 1.0                                           # are not addresses


def test_address_check_asks_the_pairs_question_in_other_scenes():
    """scripts/address_check.py: mirrored items in three scenes the snapshot rule never saw."""
    import runpy
    from conftest import ROOT
    items = runpy.run_path(str(ROOT / "scripts" / "address_check.py"))["items"]()
    assert len(items) == 54 and all(sum(d["pair"] == p for d in items) == 2 for p in range(27))
    for d in items:
        addr = d["good"].split()[-3] if d["condition"].endswith("female") else d["bad"][0].split()[-3]
        assert addr in ("miss", "ma'am", "madam") and "servant" not in d["good"] and "certainly" not in d["good"]
        assert d["good"].replace(addr, "X") == d["bad"][0].replace("sir", "X").replace(addr, "X") or \
            d["bad"][0].replace(addr, "X") == d["good"].replace("sir", "X")
    from explorer import load_model
    m = load_model(ROOT / "pretrained" / "fiction-lstm")
    assert not any(t.unk for d in items for s in (d["good"], *d["bad"]) for t in m.tokenizer.tokenize(s))
