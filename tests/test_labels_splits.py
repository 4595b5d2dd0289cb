"""Regression tests for issue 20, parts 1 and 2 (each failed before its fix).

1 labels come from the user's text as the user's data means it: a line end is a paragraph end only
  where the tokenizer (or the card) says so; paragraphs of hard-wrapped text come from blank lines;
  every probe and predicate reports its label counts and warns where the labels look implausible;
  the `line` task and the `late_in_line` predicate say true things about word models.
2 splits never evaluate on training text: pytorch/examples' train.txt / valid.txt / test.txt are
  split by name, a folder with no split is refused (or split by --valid-files / --test-files), and a
  held-out read of a file the model's card lists as training text is refused unless
  --allow-training-text.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from explorer import LanguageModel, ModelConfig, WordTokenizer, save_bundle
from explorer.api import LoadedModel
from explorer.errors import CorpusError, InputError
from explorer.tokenizer import WhitespaceTokenizer

from conftest import FICTION, ROOT, TEXT, make_model, needs_fiction, one_line, run_cli

# Hard-wrapped prose as pytorch/examples' data.Corpus reads it: a line end inside every paragraph, a
# blank line between paragraphs, quotations that run over line wraps.
WRAPPED = ('He said "Can I have a drink\n'
           'please, miss?" and she\n'
           'said "Certainly, sir.\n'
           'I shall bring it."\n'
           '\n'
           'The bartender went out. She said\n'
           '"Yes." and he\n'
           'said no.\n')
# The same text with one paragraph a line (the layout where a line end is a paragraph end).
UNWRAPPED = WRAPPED.replace("\n\n", "\0").replace("\n", " ").replace("\0", "\n\n")


def whitespace_model(text=WRAPPED, seed=0, card=None) -> LoadedModel:
    torch.manual_seed(seed)
    tok = WhitespaceTokenizer.build([text, UNWRAPPED])
    cfg = ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=12, hidden_size=12, layers=2, dropout=0.0)
    lm = LanguageModel(cfg).eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return LoadedModel(lm, tok, {"name": "tiny-whitespace", "config": cfg.to_dict(), **(card or {})}, None)


# ------------------------------------------------------------------- 1. what <eos> means
def test_what_eos_means_comes_from_the_card_or_the_tokenizer(tmp_path):
    from explorer.tokenizer import eos_means
    word, ws = make_model(), whitespace_model()
    assert eos_means(word) == "paragraph" and eos_means(ws) == "line"        # what each tokenizer does
    assert eos_means({"tokenizer": {"kind": "whitespace", "eos_means": "paragraph"}}) == "paragraph"
    assert eos_means({"tokenizer": {"kind": "whitespace"}}) == "line" and eos_means("char") == "paragraph"
    with pytest.raises(InputError, match="line or paragraph"):
        eos_means({"tokenizer": {"kind": "whitespace", "eos_means": "sentence"}})
    # the word tokenizer: a single newline is no token, a blank line is one <eos>
    assert [t.text for t in word.tokenizer.tokenize("Mary\nloves\n\nJohn")] == ["Mary", "loves", "<eos>", "John"]
    # a saved bundle records it in its card
    save_bundle(tmp_path / "ws", ws.lm, ws.tokenizer, {"name": "ws"})
    save_bundle(tmp_path / "w", word.lm, word.tokenizer, {"name": "w"})
    card = lambda d: json.loads((tmp_path / d / "card.json").read_text())
    assert card("ws")["tokenizer"]["eos_means"] == "line" and card("w")["tokenizer"]["eos_means"] == "paragraph"
    save_bundle(tmp_path / "ws2", ws.lm, ws.tokenizer, {"name": "ws2", "tokenizer": {"eos_means": "paragraph"}})
    assert card("ws2")["tokenizer"]["eos_means"] == "paragraph"               # an importer's word is kept


#: WRAPPED's whitespace tokens, line by line, each with its label "inside a quotation" read by hand
#: (paragraphs from the blank line; a token holding a quote mark is inside when its word is).
BY_HAND = [("He", 0), ("said", 0), ('"Can', 1), ("I", 1), ("have", 1), ("a", 1), ("drink", 1), ("<eos>", 1),
           ("please,", 1), ('miss?"', 1), ("and", 0), ("she", 0), ("<eos>", 0),
           ("said", 0), ('"Certainly,', 1), ("sir.", 1), ("<eos>", 1),
           ("I", 1), ("shall", 1), ("bring", 1), ('it."', 1), ("<eos>", 0),
           ("<eos>", 0),
           ("The", 0), ("bartender", 0), ("went", 0), ("out.", 0), ("She", 0), ("said", 0), ("<eos>", 0),
           ('"Yes."', 1), ("and", 0), ("he", 0), ("<eos>", 0),
           ("said", 0), ("no.", 0), ("<eos>", 0)]


def test_quote_labels_of_hard_wrapped_text_run_over_line_wraps():
    from explorer.analysis import probe as PR
    toks = whitespace_model().tokenizer.tokenize(WRAPPED)
    y, names = PR.task_labels("quote", toks, eos_means="line")
    words = [t.text for t in toks]
    lab = dict(zip(range(len(words)), y))
    # "please," (line 2) and "I shall bring it." (line 4) are inside quotations that opened a line before
    assert lab[words.index("please,")] == 1 and lab[words.index("shall")] == 1 and lab[words.index("bring")] == 1
    assert lab[words.index("and")] == 0 and lab[words.index("bartender")] == 0
    assert lab[words.index('"Yes."')] == 1 and lab[words.index("no.")] == 0
    assert [(t.text, int(v)) for t, v in zip(toks, y)] == BY_HAND
    # where <eos> is a paragraph end (the card says so), the same tokens close at each line wrap
    yp, _ = PR.task_labels("quote", toks, eos_means="paragraph")
    assert yp[words.index("please,")] == 0 and yp[words.index("shall")] == 0


def test_distance_and_gender_predicates_do_not_reset_at_a_line_wrap():
    import pandas as pd
    from explorer.corpus import queries as Q
    toks = whitespace_model().tokenizer.tokenize(WRAPPED)
    table = pd.DataFrame({"text": [t.text for t in toks], "position": range(len(toks))})
    words = list(table["text"])
    fem = Q.pred_after_female(table, eos_means="line")
    assert fem[words.index("said", 4)] == 1.0                  # "she <eos> said": she is still the latest
    start = Q.pred_sentence_start(table, eos_means="line")
    assert start[words.index("please,")] == 0.0 and start[words.index('miss?"')] == 0.0  # 7th, 8th of a sentence
    assert start[words.index("and")] == 1.0                    # after 'miss?"', which ends a sentence
    assert start[words.index("He")] == 1.0 and start[words.index("I", 10)] == 1.0     # after "sir." <eos>
    old = Q.pred_sentence_start(table, eos_means="paragraph")
    assert old[words.index("please,")] == 1.0                  # the line wrap restarted the count


@pytest.fixture(scope="module")
def wrapped_corpus(tmp_path_factory):
    """pytorch/examples' layout: train.txt, valid.txt, test.txt of hard-wrapped prose."""
    d = tmp_path_factory.mktemp("wrapped")
    for i, name in enumerate(("train.txt", "valid.txt", "test.txt")):
        (d / name).write_text(f"Part {i}.\n\n" + (WRAPPED + "\n") * (8 + 2 * i), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def whitespace_bundle(tmp_path_factory, wrapped_corpus):
    m = whitespace_model(text=WRAPPED + " Part 0. 1. 2.")
    out = tmp_path_factory.mktemp("wsb") / "ws"
    save_bundle(out, m.lm, m.tokenizer, {"name": "ws", "training": {
        "corpus": str(wrapped_corpus), "split": {"train": ["train.txt"], "valid": ["valid.txt"], "test": ["test.txt"]}}})
    return out


def test_probe_reports_label_counts_read_from_paragraphs(whitespace_bundle, wrapped_corpus, capsys):
    from explorer import load_model
    from explorer.analysis import probe as PR
    m = load_model(whitespace_bundle)
    rep = PR.probe(m, wrapped_corpus, "quote", max_train=10_000, max_test=10_000, index=None)
    assert rep.train_books == ("valid.txt",) and rep.test_books == ("test.txt",)    # never train.txt
    toks = m.tokenizer.tokenize((wrapped_corpus / "test.txt").read_text())
    want = np.bincount(PR.task_labels("quote", toks, eos_means="line")[0], minlength=2)
    assert rep.eos_means == "line"
    assert rep.counts["test"] == {"outside": int(want[0]), "inside": int(want[1]), "unlabelled": 0}
    assert rep.warnings == ()
    rc, out, err = run_cli(["probe", "--model", whitespace_bundle, "--corpus", wrapped_corpus, "--task", "quote"],
                           capsys)
    assert rc == 0, err
    js = json.loads(out)
    assert js["label_counts"]["test"] == rep.counts["test"] and js["eos_means"] == "line"
    assert js["warnings"] == [] and js["train_books"] == ["valid.txt"] and js["test_books"] == ["test.txt"]
    assert js["allow_training_text"] is False


def test_a_paragraph_reading_of_hard_wrapped_text_warns(whitespace_bundle, wrapped_corpus, tmp_path, capsys):
    """A card that says <eos> is a paragraph end, on hard-wrapped text: the counts show it, and a warning says so."""
    from explorer import load_model
    from explorer.analysis import probe as PR
    m = load_model(whitespace_bundle)
    m.card["tokenizer"]["eos_means"] = "paragraph"
    with pytest.warns(UserWarning, match="hard-wrapped"):
        rep = PR.probe(m, wrapped_corpus, "quote", max_train=10_000, max_test=10_000, index=None)
    assert rep.eos_means == "paragraph" and any("hard-wrapped" in w for w in rep.warnings)
    assert rep.to_json()["warnings"] == list(rep.warnings)


def test_units_predicate_counts_and_warnings(whitespace_bundle, wrapped_corpus, models_dir, tmp_path, capsys):
    from explorer import load_model
    from explorer.corpus import queries as Q
    from explorer.corpus.index import build_index, open_index
    m = load_model(whitespace_bundle)
    build_index(m, wrapped_corpus, tmp_path / "idx", progress=False)
    idx = open_index(tmp_path / "idx")
    lab = Q.predicate_labels(idx, "inside_quotes")
    texts = list(idx.tokens["text"])
    assert lab.eos_means == "line"
    y = lab.values
    # "shall" is inside a quotation that opened on the line before, in every file
    assert all(y[i] == 1.0 for i, t in enumerate(texts) if t == "shall")
    assert lab.counts == {"outside": int((y == 0).sum()), "inside": int((y == 1).sum()),
                          "unlabelled": int(np.isnan(y).sum())}
    assert lab.counts["inside"] > 0 and lab.warnings == ()
    rc, out, err = run_cli(["units", "--index", tmp_path / "idx", "--layer", 2, "--predicate", "inside_quotes"], capsys)
    assert rc == 0, err
    js = json.loads(out)
    assert js["counts"] == lab.counts and js["eos_means"] == "line" and js["warnings"] == []
    df = Q.rank_units(idx, 1, "h", "inside_quotes")
    assert df.attrs["counts"] == lab.counts
    # a probe that reads its states from the index labels the same tokens (and the boundary <eos>)
    from explorer.analysis import probe as PR
    traced = PR.probe(m, wrapped_corpus, "quote", max_train=10_000, max_test=10_000, index=None).counts["test"]
    indexed = PR.probe(m, wrapped_corpus, "quote", max_train=10_000, max_test=10_000, index=tmp_path / "idx")
    assert indexed.counts["test"] == {**traced, "outside": traced["outside"] + 1}
    # late_in_line on a word model warns, in Python and in the JSON
    word = load_model(models_dir / "tiny-lstm")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.txt").write_text(TEXT, encoding="utf-8")
    build_index(word, tmp_path / "w", tmp_path / "widx", progress=False)
    widx = open_index(tmp_path / "widx")
    with pytest.warns(UserWarning, match="character model"):
        Q.rank_units(widx, 1, "h", "late_in_line")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc, out, err = run_cli(["units", "--index", tmp_path / "widx", "--layer", 2, "--predicate", "late_in_line"],
                               capsys)
    assert rc == 0, err
    assert any("character model" in w for w in json.loads(out)["warnings"])


def test_the_line_task_is_refused_with_true_words():
    from explorer.analysis import probe as PR
    ws, word = whitespace_model(), make_model()
    with pytest.raises(InputError) as e:
        PR.task_labels("line", ws.tokenizer.tokenize(WRAPPED), kind="whitespace")
    msg = str(e.value)
    assert "drops line ends" not in msg and "whitespace" in msg and "character model" in msg
    with pytest.raises(InputError, match="blank line"):
        PR.task_labels("line", word.tokenizer.tokenize(TEXT), kind="word")
    with pytest.raises(InputError, match="whitespace"):
        PR.probe(ws, ROOT / "corpora" / "heldout", "line")


# ------------------------------------------------------------------- 2. splits
def test_pytorch_examples_layout_is_split_by_name(wrapped_corpus, whitespace_bundle, capsys):
    from explorer.training.data import read_corpus
    c = read_corpus(wrapped_corpus)
    assert c.files() == {"train": ["train.txt"], "valid": ["valid.txt"], "test": ["test.txt"]}
    assert "train.txt, valid.txt, test.txt" in c.source
    rc, out, err = run_cli(["eval", "--model", whitespace_bundle, "--corpus", wrapped_corpus, "--split", "test"], capsys)
    assert rc == 0, err
    assert json.loads(out)["files"] == ["test.txt"]


@pytest.fixture
def plain_folder(tmp_path):
    d = tmp_path / "books"
    d.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (d / name).write_text(f"{name}.\n\n" + (TEXT + "\n\n") * 3, encoding="utf-8")
    return d


@pytest.mark.parametrize("cmd", ["eval", "probe", "ngram", "train"])
def test_a_folder_without_a_split_is_refused_or_split_by_flags(cmd, plain_folder, bundle_dir, tmp_path, capsys):
    base = {"eval": ["eval", "--model", bundle_dir, "--corpus", plain_folder, "--split", "test"],
            "probe": ["probe", "--model", bundle_dir, "--corpus", plain_folder, "--task", "quote",
                      "--max-train", 300, "--max-test", 200],
            "ngram": ["ngram", "--model", bundle_dir, "--corpus", plain_folder, "--order", 2],
            "train": ["train", "--corpus", plain_folder, "--out", tmp_path / "m", "--dry-run", "--epochs", 1]}[cmd]
    rc, out, err = run_cli(base, capsys)
    assert rc == 2 and out == "" and one_line(err), (rc, err)
    for option in ("SPLITS.json", "train.txt", "--valid-files", "--test-files"):
        assert option in err, err
    rc, out, err = run_cli(base + ["--valid-files", "b.txt", "--test-files", "c.txt,d.txt"], capsys)
    assert rc == 0, err
    js = json.loads(out)
    want = {"train": ["a.txt"], "valid": ["b.txt"], "test": ["c.txt", "d.txt"]}
    got = {"eval": lambda: js["splits"], "ngram": lambda: js["files"], "train": lambda: js["files"],
           "probe": lambda: js["splits"]}[cmd]()
    assert got == want


def test_explicit_split_flags_are_checked(plain_folder):
    from explorer.training.data import read_corpus
    with pytest.raises(CorpusError, match="e.txt"):
        read_corpus(plain_folder, files={"valid": "b.txt", "test": "e.txt"})
    with pytest.raises(CorpusError, match="more than one"):
        read_corpus(plain_folder, files={"valid": "b.txt", "test": "b.txt"})
    with pytest.raises(CorpusError, match="--test-files"):
        read_corpus(plain_folder, files={"valid": "b.txt"})


def test_held_out_text_the_card_lists_as_training_text_is_refused(plain_folder, tmp_path, capsys):
    m = make_model()
    bundle = tmp_path / "trained-on-abc"
    save_bundle(bundle, m.lm, m.tokenizer, {"name": "abc", "training": {
        "corpus": str(plain_folder), "split": {"train": ["a.txt", "b.txt", "c.txt"], "valid": ["d.txt"], "test": ["d.txt"]}}})
    (plain_folder / "SPLITS.json").write_text(json.dumps({"valid": ["b.txt"], "test": ["c.txt"], "train": ["a.txt"]}))
    for argv in (["eval", "--model", bundle, "--corpus", plain_folder, "--split", "test"],
                 ["probe", "--model", bundle, "--corpus", plain_folder, "--task", "quote", "--max-train", 300,
                  "--max-test", 200]):
        rc, out, err = run_cli(argv, capsys)
        assert rc == 2 and one_line(err) and "c.txt" in err and "--allow-training-text" in err, err
        rc, out, err = run_cli(argv + ["--allow-training-text"], capsys)
        assert rc == 0, err
        js = json.loads(out)
        assert js["allow_training_text"] is True and "c.txt" in js["training_text_read"]
    # the training split itself is no held-out read
    rc, out, err = run_cli(["eval", "--model", bundle, "--corpus", plain_folder, "--split", "train"], capsys)
    assert rc == 0, err


def test_one_file_split_by_position_as_in_training_is_held_out(tmp_path):
    from explorer.training.data import check_held_out, read_corpus
    f = tmp_path / "input.txt"
    f.write_text((TEXT + "\n\n") * 20, encoding="utf-8")
    c = read_corpus(f)
    same = {"training": {"split": {"train": ["input.txt"], "valid": ["input.txt"], "test": ["input.txt"]}}}
    assert check_held_out(same, c, ("test",))["training_text_read"] == []
    whole = {"training": {"split": {"train": ["input.txt"], "valid": ["other.txt"], "test": ["other.txt"]}}}
    with pytest.raises(CorpusError, match="input.txt"):
        check_held_out(whole, c, ("test",))
    assert check_held_out({}, c, ("test",))["training_text_check"].startswith("not checked")


@needs_fiction()
def test_the_fiction_split_is_unchanged_and_held_out():
    from explorer.training.data import check_held_out, read_corpus
    c = read_corpus(FICTION)
    card = json.loads((ROOT / "pretrained" / "fiction-lstm" / "card.json").read_text())
    assert c.files() == card["training"]["split"]
    assert check_held_out(card, c, ("valid", "test"))["training_text_read"] == []
