"""Property test: any Unicode text goes through tokenizer -> trace -> player_data -> JSON.

Combining marks, right-to-left text, zero-width characters, control characters, emoji and lone
surrogates (which JSON writes escaped) in 0-5,000 characters. The only exception allowed is the
documented InputTooLong; the JSON must be valid and every token's span must index the original text.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from explorer import InputTooLong, trace
from explorer.present.player import player_data

#: Characters people paste that tokenizers get wrong.
AWKWARD = ("\u0301\u0308\u20dd"          # combining marks
           "\u05d0\u05d1\u0627\u0644\u202e\u202b\u200f"   # Hebrew, Arabic, RTL overrides and marks
           "\u200b\u200c\u200d\ufeff\u2060"  # zero width space / non-joiner / joiner, BOM, word joiner
           "\x00\x07\x1b\r\n\t\u2028\u2029\x85"   # control characters, line and paragraph separators
           "\U0001f600\U0001f469\u200d\U0001f467\ufe0f"   # emoji, a ZWJ sequence, a variation selector
           "\ud800\udfff"                       # lone surrogates
           "\u201c\u201d\u2019'\"--.,?! ")
text_st = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(AWKWARD),
                                     st.sampled_from("the cat sat on mat girl she said ")),
                  min_size=0, max_size=5000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          derandomize=True)
@given(text=text_st)
def test_any_text_gives_valid_json_with_spans_into_the_text(tiny_lstm, text):
    try:
        tr = trace(tiny_lstm, text, max_chars=4000)
    except InputTooLong:
        assert len(text) > 4000
        return
    for tok in tr.tokens:
        assert 0 <= tok.start <= tok.end <= len(text)
        if not tok.special:
            assert tok.text == text[tok.start:tok.end]
    if len(tr) == 0:
        return
    n = len(tr)
    pos = n // 2
    data = player_data(tr, 1, pos=pos, window=(max(0, pos - 60), min(n, pos + 60)))
    s = json.dumps(data, allow_nan=False)               # NaN/inf would be invalid JSON
    back = json.loads(s)
    assert back == json.loads(json.dumps(data, allow_nan=False))
    out = tr.to_json(states=False, k=3)
    json.loads(json.dumps(out, allow_nan=False))
