import json

import pytest
from hypothesis import given, settings, strategies as st

from explorer import CharTokenizer, WordTokenizer
from explorer.tokenizer import EOS, UNK, tokenizer_from_dict

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
