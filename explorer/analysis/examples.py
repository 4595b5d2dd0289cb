"""The causal pages' opening examples, chosen per model and computed, never hard-coded unit numbers.

A word model opens Intervene and Patch on the bartender pair and miss against sir. A character model
has no token "miss": it opens on a pair of the same length in characters (a speaker's name in capitals
against the same name in a line of verse) and the characters that follow them (":" against ",").

Intervene's opening units are the top layer's units of h that push the next-token choice hardest
toward the first word rather than the second, by their direct effect at the last token:
h_u · (W_word − W_versus)_u through the decoder. For h of the top layer at the last step this is
exactly what setting the unit to 0 takes away from log P(word) − log P(versus), so the opening
example moves the readout instead of showing a null effect (issue 22: units 161 and 40 moved
P(miss)/P(sir) from 1.51 to 1.49).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._common import word_id

#: The character model's pair: the same characters but for the case of the name. A name in
#: capitals on a line of its own is a speaker's and is followed by ":" in the plays.
CHAR_CLEAN = "Good night, good night! Parting is such sweet sorrow.\n\nROMEO"
CHAR_CORRUPT = "Good night, good night! Parting is such sweet sorrow.\n\nRomeo"


@dataclass(frozen=True)
class CausalExample:
    """What Intervene and Patch open on for one model."""
    clean: str            # Intervene's text; Patch's clean text
    corrupt: str          # Patch's corrupted text (the same number of tokens as `clean`)
    word: str             # the word (a character, for a character model) whose log-ratio is traced
    versus: str
    follow: tuple[str, ...]      # Intervene's "words to follow" (no comma: they are typed comma-separated)
    unit_kind: str = "word"      # "word" or "character": what the model predicts, for the pages' wording


def is_char_model(model) -> bool:
    """Whether the model reads characters (its tokenizer is a character tokenizer)."""
    return type(model.tokenizer).__name__ == "CharTokenizer"


def token_kind(model, plural: bool = False) -> str:
    """What one of the model's tokens is: "word" or "character" (plural: "words", "characters")."""
    k = "character" if is_char_model(model) else "word"
    return k + "s" if plural else k


def causal_example(model) -> CausalExample:
    """The bartender pair with miss / sir for a model that knows both words; else the character pair
    with ":" / "," (the speaker's colon, or a comma after the name in a line of verse), and for
    Intervene ":" / "!"."""
    from ..training.evals import BARTENDER_BOY, BARTENDER_GIRL
    if word_id(model, "miss") is not None and word_id(model, "sir") is not None:
        return CausalExample(BARTENDER_GIRL, BARTENDER_BOY, "miss", "sir", ("miss", "sir"))
    return CausalExample(CHAR_CLEAN, CHAR_CORRUPT, ":", ",", (":", "!"), token_kind(model))


@torch.no_grad()
def direct_units(model, tr, word: str, versus: str, n: int = 3) -> tuple[int, ...]:
    """The n units of the top layer's h whose direct effect on log P(word) − log P(versus) after the
    last token of the trace `tr` (of `model`) is largest and positive (they push toward `word`), most
    first. () when either word is not one token of the model or the trace is empty."""
    a, b = word_id(model, word), word_id(model, versus)
    if a is None or b is None or len(tr) == 0:
        return ()
    h = torch.as_tensor(np.array(tr.layers[-1].h[-1], dtype=np.float32))
    w = model.lm.decoder.weight.detach().float()
    contrib = (h * (w[a] - w[b])).numpy()
    order = np.argsort(-contrib, kind="stable")[:n]
    return tuple(int(u) for u in order if contrib[u] > 0)
