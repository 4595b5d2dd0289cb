import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from explorer import CharTokenizer, WordTokenizer
from explorer.tokenizer import EOS, UNK, tokenizer_from_dict

from conftest import FICTION_LSTM, TEXT as TINY_TEXT

TEXT = 'A girl said "Can I have a drink, please?" I don\'t know, ma\'am. It was 10:30 on the 21st.\n\nNew paragraph.'


@pytest.fixture(scope="module")
def tok():
    return WordTokenizer.build([TEXT])


def test_words_punctuation_contractions(tok):
    norms = [t.norm for t in tok.tokenize(TEXT)]
    assert norms[:5] == ["a", "girl", "said", '"', "can"]
    for w in ("don't", "ma'am", "10:30", "21st", ",", "?", "."):
        assert w in norms
    assert EOS in norms  # paragraph break
    assert norms[-3:] == ["new", "paragraph", "."]


def test_case_folding_and_typographic_quotes(tok):
    a = tok.tokenize("Girl \u201cdon\u2019t\u201d")
    assert [t.norm for t in a] == ["girl", '"', "don't", '"']
    assert not any(t.unk for t in a)
    assert a[2].text == "don\u2019t"  # the surface form is kept


def test_spans_point_into_the_text(tok):
    for t in tok.tokenize(TEXT):
        if not t.special:
            assert TEXT[t.start:t.end] == t.text


def test_unknown_words(tok):
    toks = tok.tokenize("zebra girl")
    assert toks[0].unk and toks[0].id == tok.unk_id and toks[0].text == "zebra"
    assert not toks[1].unk


def test_underscore_italics_are_markup(tok):
    assert [t.norm for t in tok.tokenize("_girl_")] == ["girl"]


def test_vocab_by_frequency_and_size_limit():
    t = WordTokenizer.build(["b b b a a c"], max_size=4)
    assert t.itos == [UNK, EOS, "b", "a"]
    with pytest.raises(ValueError, match="larger than the 3 distinct"):
        WordTokenizer.build(["b b b a a c"], max_size=50)


def test_save_and_load_roundtrip(tok, tmp_path):
    tok.save(tmp_path / "t.json")
    back = tokenizer_from_dict(json.loads((tmp_path / "t.json").read_text()))
    assert back.itos == tok.itos and back.encode(TEXT) == tok.encode(TEXT)


@pytest.mark.parametrize("bad", [{"vocab": "abc"}, {"vocab": ["a"]}, {"kind": "bpe", "vocab": [UNK, EOS]},
                                 [1, 2], {"vocab": [UNK, EOS, "a", "a"]}])
def test_bad_tokenizer_json(bad):
    with pytest.raises(ValueError):
        tokenizer_from_dict(bad)


def test_char_tokenizer_same_interface():
    t = CharTokenizer.build(["hello world"])
    toks = t.tokenize("hello\n\nzz")
    assert [x.norm for x in toks][:5] == list("hello")
    assert toks[5].special and toks[6].unk
    assert t.decode(t.encode("he")) == ["h", "e"]


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀🎉", "北京欢迎你", "a\x00b\x07c\x1b[31m",
                                  "<script>alert('x')</script>", "\u200b\u200d"])
def test_odd_inputs_do_not_break(tok, text):
    toks = tok.tokenize(text)
    for t in toks:
        assert 0 <= t.start <= t.end <= len(text)
        assert "\x00" not in t.text and "\x07" not in t.text
    if text == "<script>alert('x')</script>":
        assert "script" in [t.norm for t in toks] and "<" in [t.text for t in toks]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_spans_inside_in_order_without_overlap(text):
    tok = WordTokenizer.build(["a b c the girl"])
    last = 0
    for t in tok.tokenize(text):
        assert last <= t.start <= t.end <= len(text)
        assert t.special or text[t.start:t.end] == t.text
        last = t.end


# ------------------------------------------------ issue 14: detokenising round-trips (conftest's TEXT)
def test_word_detokenize_round_trips():
    tok = WordTokenizer.build([TINY_TEXT])
    rng = random.Random(3)
    ids = [i for i in range(len(tok)) if i != tok.unk_id]
    for _ in range(50):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 30))]
        text = tok.detokenize(seq)
        assert [t.id for t in tok.tokenize(text)] == seq, text
    assert tok.detokenize(["mary", "said", ",", '"', "i", "don't", "know", '"', ".", "<eos>", "john"]) == \
        'mary said, "i don\'t know".\n\njohn'


def test_char_detokenize_round_trips():
    tok = CharTokenizer.build([TINY_TEXT])
    rng = random.Random(4)
    ids = [i for i in range(len(tok)) if i not in (tok.unk_id, tok.eos_id) and tok.itos[i] not in "\n\t "]
    for _ in range(50):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 40))]
        seq.insert(rng.randrange(len(seq)), tok.eos_id)
        text = tok.detokenize(seq)
        assert [t.id for t in tok.tokenize(text)] == seq, repr(text)


@pytest.mark.skipif(not (FICTION_LSTM / "tokenizer.json").exists(), reason="pretrained/fiction-lstm is absent")
def test_fiction_vocabulary_round_trips():
    from explorer.tokenizer import tokenizer_from_dict
    tok = tokenizer_from_dict(json.loads((FICTION_LSTM / "tokenizer.json").read_text(encoding="utf-8")))
    rng = random.Random(5)
    ids = [i for i in range(len(tok)) if i != tok.unk_id]
    for _ in range(200):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 40))]
        assert [t.id for t in tok.tokenize(tok.detokenize(seq))] == seq


# ----------------------------------------- issue 14: Windows paragraph breaks, decomposed accents
@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_windows_paragraph_breaks_are_boundaries(cls):
    tok = cls.build(["mary came\n\njohn went"])
    unix = [t.norm for t in tok.tokenize("mary came\n\njohn went")]
    win = tok.tokenize("mary came\r\n\r\njohn went")
    assert [t.norm for t in win] == unix and "<eos>" in unix
    assert all(t.special or "mary came\r\n\r\njohn went"[t.start:t.end] == t.text for t in win)


@pytest.mark.parametrize("cls", [WordTokenizer, CharTokenizer])
def test_decomposed_accents_are_normalised_with_spans_into_the_original(cls):
    tok = cls.build(["a na\u00efve caf\u00e9 owner"])
    text = "the nai\u0308ve cafe\u0301 owner"
    got, want = tok.tokenize(text), tok.tokenize("the na\u00efve caf\u00e9 owner")
    assert [t.id for t in got] == [t.id for t in want]
    assert [(t.start, t.end) for t in got if t.norm in ("na\u00efve", "\u00ef")] == \
        ([(4, 10)] if cls is WordTokenizer else [(6, 8)])
    for t in got:
        assert text[t.start:t.end] == t.text
    if cls is WordTokenizer:
        naive = [t for t in got if t.norm == "na\u00efve"][0]
        assert (naive.start, naive.end) == (4, 10) and naive.text == "nai\u0308ve"
