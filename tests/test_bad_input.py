"""Bad input gets a clear message or a sensible trace, never a crash."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from explorer import InputTooLong, clip_text, settings, trace

ODD = {
    "empty": "",
    "whitespace": "  \n\t  \n",
    "emoji": "The girl 😀 said 🎉🎉 hello 👩‍👩‍👧",
    "cjk": "北京 girl 欢迎你",
    "control": "Mary\x00 loves\x07 John\x1b[31m .\r\n",
    "html": '<script>alert("x")</script> <b>Mary</b> &amp;',
    "all_unknown": "zyxw qwvu plokm",
    "rtl": "שלום girl مرحبا",
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_text_traces(tiny_lstm, name):
    text = ODD[name]
    tr = trace(tiny_lstm, text)
    for t in tr.tokens:
        assert 0 <= t.start <= t.end <= len(text)
        assert "\x00" not in t.text
    for lay in tr.layers:
        for arr in lay.values.values():
            assert arr.shape == (len(tr), tiny_lstm.config.hidden_size) and np.isfinite(arr).all()
    if name in ("empty", "whitespace"):
        assert [t.special for t in tr.tokens] == [True] * len(tr)   # only the boundary
    if name == "all_unknown":
        assert all(t.unk for t in tr.tokens[1:]) and len(tr) == 4
    if name == "html":
        assert "<" in tr.words and "script" in [t.norm for t in tr.tokens]   # plain token text


def test_empty_without_boundary(tiny_lstm):
    tr = trace(tiny_lstm, "", boundary=False)
    assert len(tr) == 0 and tr.layers[0].h.shape == (0, tiny_lstm.config.hidden_size)
    assert tr.to_frame().empty and tr.predictions_frame().empty


def test_huge_paste_is_refused_with_the_limit(tiny_lstm):
    text = "the girl said . " * 7000  # 112,000 characters
    with pytest.raises(InputTooLong, match=f"the limit is {settings.MAX_CHARS:,}"):
        trace(tiny_lstm, text)
    part, cut = clip_text(text)
    assert cut and len(part) == settings.MAX_CHARS - 1 and part.endswith(".")   # cut before the space
    tr = trace(tiny_lstm, part)
    assert len(tr) == 5001 and np.isfinite(tr.layers[-1].c).all()


def test_limit_is_a_setting(tiny_lstm):
    with pytest.raises(InputTooLong, match="the limit is 10"):
        trace(tiny_lstm, "Mary loves John very much", max_chars=10)


def test_non_string(tiny_lstm):
    with pytest.raises(TypeError):
        trace(tiny_lstm, None)


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_invariants_on_any_text(tiny_lstm, text):
    tr = trace(tiny_lstm, text, full_probs=True)
    last = 0
    for t in tr.tokens:                      # spans inside, in order, without overlap
        assert last <= t.start <= t.end <= len(text)
        last = t.end
    for lay in tr.layers:
        for q in ("i", "f", "o"):
            assert (lay[q] >= 0).all() and (lay[q] <= 1).all()
        assert (np.abs(lay.g) <= 1).all() and (np.abs(lay.h) <= 1).all()
        np.testing.assert_allclose(lay.h, lay.o * np.tanh(lay.c), atol=1e-5)
    np.testing.assert_allclose(tr.probs.sum(1), 1.0, atol=1e-5)
    assert ((tr.topk_probs >= 0) & (tr.topk_probs <= 1)).all()
