"""Nearest states: "where else was the network in this state?"

:func:`neighbours` traces a typed text, takes the state of one layer (``quantity``, h by default) after
one of its tokens, and finds the corpus tokens whose stored state is nearest to it by cosine
similarity. The search is exact: every stored row is compared (the stored values are float16, the
products are accumulated in float32), block by block of the memory-mapped shards, and divided by the
row norms the build stored; the best `top` are kept, ties by corpus order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..trace import significant
from .index import CorpusIndex, IndexProblem

#: rows per block of the search: a float32 block [H, rows] of a few MB, in the cache while it is used
BLOCK_ROWS = 4096


@dataclass(frozen=True)
class Neighbour:
    file: str                          # the file's path in the corpus (relative to its root)
    row: int                           # the token's position in the corpus (global row of the index)
    position: int                      # the token's position in its file's trace (0 = the boundary <eos>)
    similarity: float                  # cosine similarity of the stored state to the query state
    left: tuple[str, ...]              # up to `context` tokens before it, in its file
    token: str
    right: tuple[str, ...]             # up to `context` tokens after it, in its file

    def to_json(self) -> dict:
        return {"file": self.file, "row": self.row, "position": self.position,
                "similarity": significant(self.similarity, 6), "left": list(self.left),
                "token": self.token, "right": list(self.right)}


@dataclass(frozen=True)
class Neighbours:
    text: str
    position: int                      # the query token's position in trace(model, text)
    token: str                         # the query token
    layer: int                         # 1 = the bottom layer
    quantity: str
    items: tuple[Neighbour, ...]       # nearest first (ties: corpus order)
    searched: int                      # corpus tokens compared
    seconds: float                     # the search itself (not the trace of the text)

    def to_json(self) -> dict:
        return {"query": {"text": self.text, "position": self.position, "token": self.token,
                          "layer": self.layer, "quantity": self.quantity},
                "searched": self.searched, "seconds": significant(self.seconds, 4),
                "neighbours": [n.to_json() for n in self.items]}


def query_state(model, text: str, position: int, layer: int, quantity: str = "h"):
    """(state float32 [H], tokens of the trace, layer number) of `quantity` in `layer` after token
    `position` of trace(model, text). InputError for a position out of range, an unknown layer or
    a quantity the model lacks."""
    from ..engine import layer_index, torch_threads
    from ..trace import trace
    try:
        number = layer_index(layer, model.config.layers) + 1
    except (TypeError, ValueError) as e:
        raise InputError(f"layer {layer!r}: {e}") from None
    with torch_threads(1):        # a short batch-1 run: a second thread only spins (25x slower under load)
        tr = trace(model, text)
    T = len(tr)
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not 0 <= position < T:
        raise InputError(f"position {position!r} is outside the text's {T} tokens (0..{T - 1}; 0 is the "
                         "boundary token <eos>)")
    lay = tr.layer(number)
    if quantity not in lay.names:
        raise InputError(f"a {tr.cell.upper()} has {', '.join(lay.names)}, not {quantity!r}")
    return np.asarray(lay[quantity][int(position)], np.float32), tuple(tr.words), number


def top_cosine(blocks, q: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, similarities, rows searched): the `top` rows of the blocks (start, values [n, H]) nearest to
    `q` by cosine, best first, ties by row. A zero row (or a zero query) has similarity 0. The plain
    reference of :func:`scan` (any rows, any dtype)."""
    q = np.asarray(q, np.float32)
    qn = float(np.linalg.norm(q))
    qu = q / qn if qn > 0 else q
    sims, n = [], 0
    for start, v in blocks:
        vf = np.asarray(v, np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", vf, vf))
        dots = vf @ qu
        sims.append(np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0))
        n += len(vf)
    sims = np.concatenate(sims) if sims else np.zeros(0, np.float32)
    rows, best = _best(sims, top)
    return rows, best, n


def _best(sims: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The `top` largest of sims, largest first, ties by row (every row tied at the cut is considered)."""
    k = min(int(top), len(sims))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    cut = np.partition(sims, len(sims) - k)[len(sims) - k]
    cand = np.flatnonzero(sims >= cut)
    order = np.lexsort((cand, -sims[cand]))[:k]
    return cand[order].astype(np.int64), sims[cand[order]]


def scan(index: CorpusIndex, layer: int, quantity: str, q: np.ndarray, top: int,
         block: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray, int]:
    """The exact cosine search over the index's stored states: every row's dot product with the unit
    query, block by block of the memory-mapped float16 shards (converted to float32 a block at a time,
    accumulated in float32), divided by the row norms stored at build time. Returns (rows, similarities,
    rows searched), best first, ties by row."""
    import warnings

    import torch
    q = np.asarray(q, np.float32)
    qn = float(np.linalg.norm(q))
    qu = torch.from_numpy(q / qn if qn > 0 else q)[None]                    # [1, H]
    N = index.n_tokens
    dots = torch.empty(N)
    index.populate(layer, quantity)
    from ..engine import torch_threads
    with warnings.catch_warnings(), torch_threads(1):        # one thread: a memory-bound scan
        warnings.simplefilter("ignore", UserWarning)          # a read-only memory map: torch only reads it
        for s0, n, mm in index.shards(layer, quantity):
            tm = torch.from_numpy(mm)                         # [H, W] float16
            for a in range(0, n, block):
                b = min(n, a + block)
                torch.mm(qu, tm[:, a:b].float(), out=dots[s0 + a:s0 + b][None])
    norms = np.asarray(index.norms(layer, quantity))
    d = dots.numpy()
    sims = np.divide(d, norms, out=np.zeros_like(d), where=norms > 0)
    rows, best = _best(sims, top)
    return rows, best, N


def neighbours(index: CorpusIndex, model, text: str, position: int, layer: int, quantity: str = "h",
               top: int = 20, context: int = 5) -> Neighbours:
    """The corpus tokens whose state is nearest by cosine to the state after token `position` of `text`.

    `text` is traced by `model` (the index's model: checked by weights), `position` is a 0-based token
    position in that trace (0 is the boundary token <eos>, as in :func:`explorer.corpus.queries.select`),
    `layer` is a layer number (1 = the bottom layer, -1 = the top) the index holds, and `quantity` one of
    the index's quantities (h by default). Returns the `top` nearest corpus tokens, nearest first, each
    with its file, its corpus row and in-file position, the cosine similarity, and up to `context` tokens
    either side within its file. The search is exact over the stored (float16) values.

    Raises InputError (an IndexProblem) for a position out of range, a layer or quantity the index lacks,
    or a model that is not the index's."""
    import time
    index.check_model(model)
    if quantity not in index.quantities:
        raise IndexProblem(f"the index holds {', '.join(index.quantities)}, not {quantity!r}")
    try:
        number = index.layer_number(layer)
    except (TypeError, ValueError) as e:
        raise IndexProblem(str(e)) from None
    top = int(top)
    if top < 1:
        raise IndexProblem(f"top must be at least 1, not {top}")
    q, words, number = query_state(model, text, position, number, quantity)
    t0 = time.perf_counter()
    rows, sims, n = scan(index, number, quantity, q, top)
    items = _items(index, rows, sims, context)
    return Neighbours(text, int(position), str(words[int(position)]), number, quantity, items, n,
                      time.perf_counter() - t0)


def _items(index: CorpusIndex, rows, sims, context: int) -> tuple[Neighbour, ...]:
    out = []
    for r, s in zip(rows, sims):
        r = int(r)
        f = index.files[index.file_of(r)]
        f0, f1 = f["row_start"], f["row_start"] + f["tokens"]
        c0, c1 = max(f0, r - context), min(f1, r + 1 + context)
        texts = index.texts(c0, c1)
        out.append(Neighbour(f["path"], r, r - f0, float(s), tuple(texts[:r - c0]), str(texts[r - c0]),
                             tuple(texts[r - c0 + 1:])))
    return tuple(out)
