"""Small helpers shared by the analyses: token ids as the trace reads them, word lookup, the
next-word distribution at a row of a trace, and a grad-safe forward from embeddings."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..tokenizer import Token
from ..trace import read_tokens
from ..errors import InputError


def tokens_for(model, text: str, boundary: bool = True) -> list[Token]:
    """The tokens trace() reads for `text` (the boundary <eos> first, as trace does by default)."""
    return read_tokens(model.tokenizer, text, boundary)


def word_id(model, word: str) -> int | None:
    """Vocabulary id of `word` as the tokenizer normalises it; None when it is not one known token."""
    tok = model.tokenizer
    if word in tok.stoi:
        return tok.stoi[word]
    pieces = tok.tokenize(word)
    if len(pieces) != 1 or pieces[0].unk:
        return None
    return pieces[0].id


def require_word_id(model, word: str) -> int:
    i = word_id(model, word)
    if i is None:
        pieces = [p.norm for p in model.tokenizer.tokenize(word)]
        why = "is not in the vocabulary" if len(pieces) == 1 else f"is {len(pieces)} tokens {pieces}, not one"
        raise InputError(f"{word!r} {why}")
    return i


@torch.no_grad()
def next_log_probs(model, tr, t: int) -> np.ndarray:
    """log P(· | tokens ≤ t) as float64 [vocab], from the top layer's h in row t of the trace."""
    h = torch.tensor(np.array(tr.layers[-1].h[t]))
    return torch.log_softmax(model.lm.decoder(h).double(), -1).numpy()


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan") if na == nb == 0 else 1.0
    return float(1.0 - a @ b / (na * nb))


@contextlib.contextmanager
def _no_cudnn(x: torch.Tensor):
    """cuDNN refuses RNN backward in eval mode; the fallback kernels do not. The flag is global,
    so it is only touched when the tensor is on a GPU (never on the CPU path the app uses)."""
    if x.is_cuda:
        with torch.backends.cudnn.flags(enabled=False):
            yield
    else:
        yield


def expand_state(state, rows: int):
    """A state [layers, 1, units] (an LSTM's (h, c), or h) repeated for `rows` rows, contiguous."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.expand(-1, rows, -1).contiguous() for s in state)
    return state.expand(-1, rows, -1).contiguous()


def logprob_from_embeddings(lm, emb: torch.Tensor, target: int, versus: int | None = None,
                            state=None) -> torch.Tensor:
    """emb [B, T, E] -> log P(target | the T embedded tokens) [B], differentiable w.r.t. emb only;
    with `versus`, the log-ratio log P(target) − log P(versus). `state`: the state [layers, 1, units]
    (an LSTM's (h, c)) every row starts from, e.g. after a prefix of the text (default: zeros).

    Runs the stock recurrent module forward; the model's parameters are never given gradients
    (callers use torch.autograd.grad with respect to `emb`)."""
    with _no_cudnn(emb):
        out, _ = lm.rnn(emb) if state is None else lm.rnn(emb, expand_state(state, emb.shape[0]))
    logits = lm.decoder(out[:, -1])
    if versus is not None:
        return logits[:, target] - logits[:, versus]      # the log-ratio: the normaliser cancels
    return torch.log_softmax(logits, -1)[:, target]
