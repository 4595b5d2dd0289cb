"""One-to-many: sample a continuation and keep the trace of the prompt and every generated word,
so the app can show the state as each sampled word is fed back in."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from .. import settings
from ..api import check_sampling
from ..errors import InputTooLong
from ..tokenizer import EOS, Token
from ..trace import Trace, trace
from ._common import tokens_for


@dataclass(frozen=True)
class Generation:
    prompt: str
    words: tuple[str, ...]                  # the sampled tokens (vocabulary forms; "<eos>" = paragraph end)
    ids: tuple[int, ...]
    trace: Trace = field(repr=False)        # prompt (after <eos>) + generated tokens, fed back in
    n_prompt: int                           # rows of the trace that read the prompt (boundary included)
    seed: int
    temperature: float
    top_k: int

    @property
    def generated_rows(self) -> np.ndarray:
        return np.arange(self.n_prompt, len(self.trace))

    @property
    def text(self) -> str:
        """The prompt and the continuation as text, written by the tokenizer (`extend_text`):
        characters joined as characters, words as words, <eos> as a paragraph break."""
        return self.trace.text

    @property
    def continuation(self) -> str:
        """Only the generated part of `text`."""
        return self.trace.text[len(self.prompt):]

    def frame(self):
        """One row per trace row: token, generated?, P(token | before) under the model."""
        import pandas as pd
        tr = self.trace
        p_tok = np.concatenate([[np.nan], tr.next_prob[:-1]]) if len(tr) else np.zeros(0)
        return pd.DataFrame({"position": np.arange(len(tr)), "token": tr.words,
                             "generated": np.arange(len(tr)) >= self.n_prompt, "prob": p_tok})


def sample(model, prompt: str, n: int = 20, temperature: float = 1.0, top_k: int = 0,
           seed: int = 0) -> list[int]:
    """Token ids sampled after the prompt: LoadedModel.sample_ids (one sampling loop for all)."""
    return model.sample_ids(prompt, n, temperature, top_k, seed)


def generate_trace(model, prompt: str, n: int = 20, temperature: float = 1.0, top_k: int = 0,
                   seed: int = 0, trace_top_k: int = 10) -> Generation:
    """Sample n tokens after `prompt` and trace prompt + continuation in one Trace.

    Reproducible: the same seed gives the same words (and they equal model.generate(...)). The
    trace reads exactly the sampled ids (not a re-tokenisation of the joined text), so row
    n_prompt + j is the state after the j-th generated word was fed back in.
    """
    check_sampling(n, temperature, top_k, seed)
    if len(prompt) > settings.MAX_CHARS:
        raise InputTooLong(len(prompt), settings.MAX_CHARS)
    tok = model.tokenizer
    ids = sample(model, prompt, n, temperature, top_k, seed)
    toks = tokens_for(model, prompt)
    text, spans = tok.extend_text(prompt, ids)       # the tokenizer writes its own tokens back as text
    for i, (start, end) in zip(ids, spans):
        w = tok.itos[i]
        toks.append(Token(EOS, EOS, start, end, i, False, True) if w == EOS
                    else Token(w, w, start, end, i, False, False))
    tr = trace(model, text, top_k=trace_top_k, max_chars=max(len(text), 1), tokens=toks)
    return Generation(prompt=prompt, words=tuple(tok.itos[i] for i in ids), ids=tuple(ids), trace=tr,
                      n_prompt=len(toks) - len(ids), seed=int(seed), temperature=float(temperature),
                      top_k=int(top_k))
