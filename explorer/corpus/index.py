"""The corpus index: a model's states over every token of a corpus, stored for corpus-level queries.

Build one with ``python -m explorer index --model M --corpus DIR_OR_FILE --out INDEX`` or
:func:`build_index`; open one with :func:`open_index`. See :data:`FORMAT` for the layout on disk.
"""
from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import CorpusError, ExplorerError
from ..files import atomic_file, write_json
from ..model import weights_hash  # noqa: F401 (the core's model identity, re-exported)

FORMAT = """\
Corpus index format, version 3 (readable without this project: zarr v3 + Arrow IPC + JSON).

INDEX/
  card.json        Written last, atomically: its presence means the build is complete. Holds
                   "format": "rnn-explorer-corpus-index", "version": 3, "complete": true,
                   "model": {name, path, weights_sha256, config}: the model the states belong to
                     (weights_sha256 = sha256 over the model's state-dict tensors, see weights_hash),
                   "tokenizer": its kind, "eos_means": what <eos> marks in its text, "line" or
                     "paragraph" (explorer.tokenizer.eos_means),
                   "tokens": N (rows of every array and of the token table), "units": H,
                   "layers": [1, 2, ...] (layer numbers: 1 = the bottom layer),
                   "quantities": ["h", "c", ...], "dtype": {"h": "float16", "c": "float16", ...},
                   "files": [{path, tokens, row_start, sha256, bytes}, ...] in row order,
                   "chunks": {"rows": R, "shard_rows": S}, "batch": {"rows", "steps", "groups"},
                   "built": {...}.
  tokens.arrow     The token table, an Arrow IPC file (uncompressed, so it is read memory-mapped: a query
                   touches only the columns and rows it needs), one row per stored state (row r <->
                   array row r): file (dictionary<str>, path relative to the corpus root), position
                   (int32, index of the token in its file's trace; 0 is the boundary token <eos> read
                   before the file's text), text (str, the token as it appears in the text, or
                   "<eos>"), id (int32, vocabulary id), start / end (int64, the token's character span
                   in the file; [0, 0) for the boundary).
  states.zarr/     A zarr v3 group. For each layer l of the card (L1 = the bottom layer) and quantity q:
                   L{l}/{q}/values  [N, H] float16, sharded (codec sharding_indexed): shards of S rows x
                                    all H units (S = min(N, 4,194,304) rounded up to R), inner chunks
                                    of R rows x 1 unit (R = min(N, 16,384)), uncompressed. Every value
                                    is stored once. Inside a shard file (c/<shard>/0) the inner
                                    chunks lie unit by unit, so a shard is a plain float16 matrix
                                    [H, W] (W = the shard's rows rounded up to R; unit u's column is
                                    the contiguous row u), followed by zarr's shard index and its
                                    crc32c. So both access patterns are plain slices of one
                                    memory-mapped file: a few units over all tokens reads those units'
                                    rows (contiguous), all units over a few tokens reads H short runs.
                   L{l}/{q}/norm    [N] float32, one chunk: the Euclidean norm of each stored (float16)
                                    state vector, for cosine searches (neighbours).
                   Row order: file after file (card "files"), each file's tokens in reading order.
  extras/          Derived data the queries cache (PCA fits for trajectories); safe to delete.

Precision: every quantity is stored as IEEE float16. h and the gates lie in [-1, 1]: the error is at
most 2^-12 (2.4e-4) absolute. The LSTM cell state c is unbounded; float16 keeps it to a relative error
of at most 2^-11 (4.9e-4) of |c| (|stored - true| <= 1e-3 * max(1, |c|)); a build stops with a
message if |c| ever exceeds float16's range (65,504). That is the 1e-3 promise: within 1e-3 of the
trace for |value| <= 1, within 1e-3 relative above.

Semantics: each file is read as one continuous text exactly as trace(model, text_of_file) reads it,
from the boundary token <eos> and the zero state; the value in row r is the quantity after reading
the token of row r (Trace.layer(l)[q][position]). The build runs the files as the rows of one batch
(card "batch": "rows" rows, blocks of "steps" steps), each row carrying its own state from block to
block; a row whose file ends takes the next file and the zero state. A file is never split: the model
does not reset its state at a paragraph, so a split would not be exact. Within float rounding the
batched run equals the one-text run (the fused kernel's matrix-matrix path; the index equals the
trace within the promise above).

While a build runs (or after it was interrupted) INDEX/ holds build.json (the plan) and parts/: per
group of files g{k}.npz, the checkpoint (the block reached and every row's state, written after the
arrays are flushed) and g{k}.json (tokens done). A rerun with the same arguments continues from each
group's last checkpoint. No card.json means not complete: readers refuse it.

Versions 1 and 2 (float32 c, every array kept twice: by_unit and by_token) are refused with a message
saying how to rebuild.
"""

VERSION = 3
#: The versions open_index reads.
READABLE_VERSIONS = (3,)
FORMAT_NAME = "rnn-explorer-corpus-index"
#: rows of an inner chunk (one unit) and at most rows of a shard (all units)
CHUNK_ROWS = 16384
SHARD_ROWS = 1 << 22
#: steps per block of the batched build, and rows (files side by side) per batch
SEGMENT_TOKENS = 512
BATCH_ROWS = 16
#: seconds between checkpoints of a build (each flushes the arrays, then saves every row's state)
CHECKPOINT_SECONDS = 20.0
STORE_DTYPE = "float16"
FLOAT16_MAX = 65504.0


class IndexProblem(ExplorerError):
    """An index cannot be built, opened or used (message meant for people)."""


# ---------------------------------------------------------------------------------------------
# model identity

# weights_hash lives in the core (explorer.model); imported here for the index's card and its readers.


_HASH_CACHE: dict[int, tuple[object, str]] = {}


def model_hash(model) -> str:
    """weights_hash of a LoadedModel, cached per model object (weights are read-only once loaded)."""
    key = id(model.lm)
    hit = _HASH_CACHE.get(key)
    if hit is None or hit[0] is not model.lm:
        hit = (model.lm, weights_hash(model.lm))
        _HASH_CACHE[key] = hit
    return hit[1]


# ---------------------------------------------------------------------------------------------
# corpus

def corpus_files(corpus) -> tuple[Path, list[Path]]:
    """(root, files): a folder's *.txt files (recursively, sorted) or one file."""
    p = Path(corpus)
    if not p.exists():
        raise CorpusError(f"corpus {p} does not exist")
    if p.is_file():
        return p.parent, [p]
    files = sorted(f for f in p.rglob("*.txt") if f.is_file() and not any(
        part.startswith(".") for part in f.relative_to(p).parts))
    if not files:
        raise CorpusError(f"corpus folder {p} holds no .txt files")
    return p, files


def _read(path: Path) -> str:
    from ..training.data import read_text
    return read_text(path)


def _tokens(model, text: str):
    from ..trace import read_tokens
    return read_tokens(model.tokenizer, text)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse_layers(layers, n_layers: int) -> list[int]:
    """The layer numbers to index (1 = the bottom layer; -1 = the top), sorted: 'all' or e.g. "1,2"."""
    from ..engine import LAYER_HELP, layer_index
    if layers in (None, "all", ""):
        return list(range(1, n_layers + 1))
    items = layers.split(",") if isinstance(layers, str) else list(layers)
    out = []
    for x in items:
        try:
            v = int(x)
        except (TypeError, ValueError):
            raise IndexProblem(f"--layers: {x!r} is not a layer number (use 'all' or e.g. 1,2; "
                               f"{LAYER_HELP})") from None
        try:
            v = layer_index(v, n_layers) + 1
        except ExplorerError as e:
            raise IndexProblem(f"--layers: {e}") from None
        if v not in out:
            out.append(v)
    return sorted(out)


def _parse_quantities(quantities, cell: str) -> list[str]:
    from ..trace import QUANTITIES
    items = quantities.split(",") if isinstance(quantities, str) else list(quantities)
    items = [q.strip() for q in items if q.strip()]
    known = QUANTITIES[cell]
    bad = [q for q in items if q not in known]
    if bad or not items:
        raise IndexProblem(f"--quantities: a {cell.upper()} has {', '.join(known)}; "
                          f"not {', '.join(bad) if bad else 'nothing'}")
    return list(dict.fromkeys(items))


def dtype_of(quantity: str) -> str:
    """float16 for every quantity (format version 3): h and the gates lie in [-1, 1] (error <= 2.4e-4);
    the LSTM cell state c is kept to a relative error <= 4.9e-4 (see FORMAT, "Precision")."""
    return STORE_DTYPE


def default_quantities(cell: str) -> list[str]:
    return ["h", "c"] if cell == "lstm" else ["h"]


# ---------------------------------------------------------------------------------------------
# atomic small writes

def _write_json(path: Path, obj) -> None:
    write_json(path, obj, indent=1, fsync=True)


def _write_npz(path: Path, arrays: dict) -> None:
    with atomic_file(path, fsync=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


# ---------------------------------------------------------------------------------------------
# layout on disk

def _layout(n_tokens: int) -> tuple[int, int]:
    """(R, S): rows of an inner chunk (one unit) and rows of a shard (all units)."""
    R = max(1, min(CHUNK_ROWS, n_tokens))
    return R, R * -(-max(1, min(n_tokens, SHARD_ROWS)) // R)


def _shards(n_tokens: int, R: int, S: int) -> list[tuple[int, int, int]]:
    """(first row, rows, W) of every shard; W = its rows rounded up to R (the stored width)."""
    return [(s0, min(S, n_tokens - s0), R * -(-min(S, n_tokens - s0) // R)) for s0 in range(0, n_tokens, S)]


def _values_dir(root: Path, layer: int, quantity: str) -> Path:
    return Path(root) / "states.zarr" / f"L{layer}" / quantity / "values"


def _shard_path(root: Path, layer: int, quantity: str, k: int) -> Path:
    return _values_dir(root, layer, quantity) / "c" / str(k) / "0"


def _norm_path(root: Path, layer: int, quantity: str) -> Path:
    return Path(root) / "states.zarr" / f"L{layer}" / quantity / "norm" / "c" / "0"


def _allocate(path: Path, size: int) -> None:
    """A file of at least `size` bytes, its blocks reserved now (a full disk fails here, with ENOSPC,
    not later as a SIGBUS inside a memory-mapped write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size >= size:
        return
    with open(path, "ab") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except (AttributeError, OSError) as e:
            if isinstance(e, OSError) and e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            f.truncate(size)


def _create_arrays(plan: dict, out: Path) -> None:
    """The zarr metadata of every array and its files, full size (idempotent: a resumed build keeps them)."""
    import zarr
    N, H = plan["tokens"], plan["units"]
    R, S = plan["chunks"]["rows"], plan["chunks"]["shard_rows"]
    g = zarr.open_group(str(out / "states.zarr"), mode="a")
    for l in plan["layers"]:
        for q in plan["quantities"]:
            if f"L{l}/{q}/values" not in g:
                g.create_array(f"L{l}/{q}/values", shape=(N, H), chunks=(R, 1), shards=(S, H), dtype=STORE_DTYPE,
                               fill_value=0.0, compressors=None)
            if f"L{l}/{q}/norm" not in g:
                g.create_array(f"L{l}/{q}/norm", shape=(N,), chunks=(N,), dtype="float32", fill_value=0.0,
                               compressors=None)
            for k, (_, _, W) in enumerate(_shards(N, R, S)):
                _allocate(_shard_path(out, l, q, k), H * W * 2)
            _allocate(_norm_path(out, l, q), N * 4)


def _finish_arrays(plan: dict, out: Path) -> None:
    """Write each shard's index (zarr's sharding_indexed: [chunks per shard, H] (offset, nbytes) uint64
    pairs, little-endian, then their crc32c) after its data, as zarr reads it."""
    import google_crc32c
    N, H = plan["tokens"], plan["units"]
    R, S = plan["chunks"]["rows"], plan["chunks"]["shard_rows"]
    J = S // R
    for l in plan["layers"]:
        for q in plan["quantities"]:
            for k, (_, n, W) in enumerate(_shards(N, R, S)):
                idx = np.full((J, H, 2), np.iinfo(np.uint64).max, np.uint64)   # absent: chunks past the end
                j_used = W // R
                u = np.arange(H, dtype=np.uint64)
                for j in range(j_used):
                    idx[j, :, 0] = (u * W + j * R) * 2
                    idx[j, :, 1] = R * 2
                raw = idx.astype("<u8").tobytes()
                with open(_shard_path(out, l, q, k), "r+b") as f:
                    f.seek(H * W * 2)
                    f.write(raw + google_crc32c.value(raw).to_bytes(4, "little"))
                    f.truncate()


class _Writer:
    """The arrays of one build, memory-mapped for writing: each block's values go straight to their
    final place (no parts to copy afterwards)."""

    def __init__(self, plan: dict, out: Path):
        N, H = plan["tokens"], plan["units"]
        R, S = plan["chunks"]["rows"], plan["chunks"]["shard_rows"]
        self.maps, self.norms = {}, {}
        for l in plan["layers"]:
            for q in plan["quantities"]:
                self.maps[(l, q)] = [(s0, n, np.memmap(_shard_path(out, l, q, k), dtype="<f2", mode="r+",
                                                       shape=(H, W)))
                                     for k, (s0, n, W) in enumerate(_shards(N, R, S))]
                self.norms[(l, q)] = np.memmap(_norm_path(out, l, q), dtype="<f4", mode="r+", shape=(N,))

    def write(self, layer: int, quantity: str, row: int, values: np.ndarray, norms: np.ndarray) -> None:
        """values float16 [H, n] of rows [row, row + n); norms float32 [n]."""
        n_rows = values.shape[1]
        for s0, n, mm in self.maps[(layer, quantity)]:
            a, b = max(row, s0), min(row + n_rows, s0 + n)
            if a < b:
                mm[:, a - s0:b - s0] = values[:, a - row:b - row]
        self.norms[(layer, quantity)][row:row + n_rows] = norms

    def flush(self) -> None:
        for shards in self.maps.values():
            for _, _, mm in shards:
                mm.flush()
        for mm in self.norms.values():
            mm.flush()


def schedule(lengths: dict[int, int], rows: int, steps: int):
    """The batched run of a group of files, block by block: yields (B, [(slot, file, start, n), ...]).
    Files go longest first to the first free row ("slot"); a row whose file ends takes the next file
    (from the zero state) at the next block. Deterministic: a resumed build replays it to its checkpoint."""
    queue = sorted(lengths, key=lambda i: (-lengths[i], i))
    B = max(2, min(rows, len(queue)))           # >= 2 rows: the kernel's matrix-matrix path (engine MIN_ROWS)
    slots: list[list[int] | None] = [None] * B
    qi = 0
    while True:
        for s in range(B):
            if slots[s] is None and qi < len(queue):
                slots[s] = [queue[qi], 0]
                qi += 1
        block = [(s, x[0], x[1], min(steps, lengths[x[0]] - x[1])) for s, x in enumerate(slots) if x is not None]
        if not block:
            return
        yield B, block
        for s, f, a, n in block:
            if a + n >= lengths[f]:
                slots[s] = None
            else:
                slots[s][1] = a + n


def _groups(files: list[dict], n: int) -> list[list[int]]:
    """Files split into `n` groups of about equal tokens (longest first to the lightest group)."""
    n = max(1, min(n, len(files)))
    load, groups = [0] * n, [[] for _ in range(n)]
    for i in sorted(range(len(files)), key=lambda i: (-files[i]["tokens"], i)):
        k = min(range(n), key=lambda k: (load[k], k))
        groups[k].append(i)
        load[k] += files[i]["tokens"]
    return [sorted(g) for g in groups if g]


def _ck_path(out: Path, k: int) -> Path:
    return Path(out) / "parts" / f"g{k:04d}.npz"


def _progress_path(out: Path, k: int) -> Path:
    return Path(out) / "parts" / f"g{k:04d}.json"


_WORKER_MODELS: dict[str, object] = {}


def _worker_model(model_path: str, expect_hash: str):
    m = _WORKER_MODELS.get(model_path)
    if m is None:
        from ..bundle import load_model
        m = load_model(model_path)
        _WORKER_MODELS[model_path] = m
    got = model_hash(m)
    if got != expect_hash:
        raise IndexProblem(f"the model at {model_path} changed during the build (weights hash {got[:12]}, "
                          f"planned {expect_hash[:12]})")
    return m


def _file_ids(model, plan: dict, i: int):
    import torch
    info = plan["files"][i]
    path = Path(plan["corpus_root"]) / info["path"]
    data = path.read_bytes()
    if _sha(data) != info["sha256"]:
        raise IndexProblem(f"{path} changed since the build began; delete the index folder and build again")
    toks = _tokens(model, _read(path))
    if len(toks) != info["tokens"]:
        raise IndexProblem(f"{path}: the model's tokenizer gave {len(toks)} tokens, the plan {info['tokens']}")
    return torch.tensor([t.id for t in toks], dtype=torch.long)


def index_group(model, plan: dict, k: int, out: str, on_block: Callable[[int], None] | None = None,
                on_checkpoint: Callable[[], None] | None = None, ids: dict | None = None,
                checkpoint_seconds: float = CHECKPOINT_SECONDS) -> int:
    """Run group `k` of the plan (its files as the rows of one batch, each row carrying its own state)
    and write its states into the arrays at OUT, from the group's last checkpoint. `model`: a LoadedModel
    or (in a worker) the bundle path. Returns the number of tokens computed in this call."""
    import torch
    from ..engine import run_block
    if isinstance(model, str):
        model = _worker_model(model, plan["model"]["weights_sha256"])
    out = Path(out)
    files = plan["batch"]["groups"][k]
    lengths = {i: plan["files"][i]["tokens"] for i in files}
    cfg = model.lm.config
    L, H, lstm = cfg.layers, cfg.hidden_size, cfg.cell == "lstm"
    ck = _ck_path(out, k)
    done_block, done = -1, 0
    state = None
    if ck.is_file():
        with np.load(ck) as z:
            if int(z["finished"]):
                return 0
            done_block, done = int(z["block"]), int(z["done"])
            h = torch.from_numpy(z["h"].copy())
            state = (h, torch.from_numpy(z["c"].copy())) if lstm else h
    if ids is None:
        ids = {i: _file_ids(model, plan, i) for i in files}
    keep = {l - 1: list(plan["quantities"]) for l in plan["layers"]}
    writer = _Writer(plan, out)
    starts = {i: plan["files"][i]["row_start"] for i in files}
    last_ck = time.monotonic()
    computed = 0
    cache: dict = {}
    blocks = list(schedule(lengths, plan["batch"]["rows"], plan["batch"]["steps"]))
    for bi, (B, block) in enumerate(blocks):
        if bi <= done_block:
            continue
        if state is None:
            z = torch.zeros(L, B, H)
            state = (z, z.clone()) if lstm else z
        T = max(n for _, _, _, n in block)
        # only the rows that hold a file run (at least two: the kernel's matrix-matrix path), so the
        # tail of a corpus with one long file costs what that file costs
        active = [s for s, _, _, _ in block]
        rows = active + [s for s in range(B) if s not in active][:max(0, 2 - len(active))]
        pos = {s: j for j, s in enumerate(rows)}
        x = torch.zeros(len(rows), T, dtype=torch.long)
        for t in (state if lstm else (state,)):
            for s, f, a, n in block:
                if a == 0:                      # a file starts: the zero state
                    t[:, s] = 0
            for s in rows[len(active):]:
                t[:, s] = 0
        for s, f, a, n in block:
            x[pos[s], :n] = ids[f][a:a + n]
        sub = tuple(t[:, rows] for t in state) if lstm else state[:, rows]
        vals, final = run_block(model.lm, x, sub, keep, cache)
        for t, v in zip(state if lstm else (state,), final if lstm else (final,)):
            t[:, rows] = v
        for (li, q), v in vals.items():
            if q == "c":
                lo, hi = torch.aminmax(v)
                too_big = max(-float(lo), float(hi)) >= FLOAT16_MAX
            else:
                too_big = False
            v16 = v.to(torch.float16)
            if too_big:
                raise IndexProblem(f"the cell state c of layer {li + 1} exceeds float16's range ({FLOAT16_MAX:g}) "
                                   "in this corpus; index it without c (--quantities h)")
            norms = torch.linalg.vector_norm(v16.float(), dim=-1).numpy()       # [rows, T]
            v16t = v16.transpose(1, 2).contiguous().numpy()                      # [rows, H, T]
            for s, f, a, n in block:
                writer.write(li + 1, q, starts[f] + a, v16t[pos[s], :, :n], norms[pos[s], :n])
        n_block = sum(n for _, _, _, n in block)
        done += n_block
        computed += n_block
        _write_progress(out, k, done)
        if on_block is not None:
            on_block(n_block)
        last = bi == len(blocks) - 1
        if last or time.monotonic() - last_ck >= checkpoint_seconds:
            writer.flush()               # the values first, then the checkpoint that says they are there
            h, c = (state if lstm else (state, None))
            _write_npz(ck, {"block": np.int64(bi), "done": np.int64(done), "finished": np.int64(last),
                            "h": h.numpy(), **({"c": c.numpy()} if lstm else {})})
            last_ck = time.monotonic()
            if on_checkpoint is not None:
                on_checkpoint()
    return computed


def _write_progress(out: Path, k: int, done: int) -> None:
    p = _progress_path(out, k)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(str(done), encoding="utf-8")
    os.replace(tmp, p)


def _done_tokens(plan: dict, out: Path, checkpoints: bool = False) -> int:
    """Tokens done over every group: from the progress files (or, `checkpoints`, what the checkpoints keep)."""
    n = 0
    for k in range(len(plan["batch"]["groups"])):
        try:
            if checkpoints:
                with np.load(_ck_path(out, k)) as z:
                    n += int(z["done"])
            else:
                n += int(_progress_path(out, k).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            pass
    return n


# ---------------------------------------------------------------------------------------------
# build

def _io_error(out: Path, e: OSError) -> IndexProblem:
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EROFS: "the file system is read-only"}.get(e.errno, e.strerror or str(e))
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    return IndexProblem(f"could not write the index {out}: {what}{where}. Nothing was marked complete; "
                       "free space or fix permissions and run the same command again to continue")


def _plan(model, corpus, layers, quantities, segment_tokens, rows) -> tuple[dict, list]:
    from ..tokenizer import eos_means
    cfg = model.lm.config
    root, files = corpus_files(corpus)
    entries, tables = [], []
    row = 0
    for p in files:
        try:
            data = p.read_bytes()
        except OSError as e:
            raise CorpusError(f"cannot read {p}: {e.strerror}") from None
        text = _read(p)          # CorpusError with the offending byte when not UTF-8
        if not text.strip():
            continue
        toks = _tokens(model, text)
        rel = p.relative_to(root).as_posix()
        entries.append({"path": rel, "tokens": len(toks), "row_start": row, "sha256": _sha(data),
                        "bytes": len(data)})
        tables.append((rel, toks))
        row += len(toks)
    if not entries:
        raise CorpusError(f"corpus {corpus} holds no text (every .txt file is empty)")
    R, S = _layout(row)
    plan = {"format": FORMAT_NAME, "version": VERSION,
            "model": {"name": model.name, "path": str(Path(model.path).resolve()) if model.path else None,
                      "weights_sha256": model_hash(model), "config": cfg.to_dict()},
            "tokenizer": model.tokenizer.kind, "eos_means": eos_means(model),
            "corpus_root": str(root.resolve()), "files": entries, "tokens": row,
            "units": cfg.hidden_size, "layers": _parse_layers(layers, cfg.layers),
            "quantities": _parse_quantities(quantities or default_quantities(cfg.cell), cfg.cell),
            "chunks": {"rows": R, "shard_rows": S},
            "batch": {"rows": int(rows), "steps": int(segment_tokens), "groups": None}}
    plan["dtype"] = {q: dtype_of(q) for q in plan["quantities"]}
    return plan, tables


def _same_plan(a: dict, b: dict, version: bool = True) -> bool:
    """Whether two plans (or a card and a plan) index the same thing the same way (the grouping of files
    into batches aside: a resumed build keeps the groups it began with)."""
    keys = ("version",) * version + ("files", "tokens", "layers", "quantities", "units")
    ba, bb = a.get("batch") or {}, b.get("batch") or {}
    return all(a.get(k) == b.get(k) for k in keys) and \
        (ba.get("rows"), ba.get("steps")) == (bb.get("rows"), bb.get("steps")) and \
        a["model"]["weights_sha256"] == b["model"]["weights_sha256"]


def _token_table(tables):
    import pyarrow as pa
    files, pos, text, ids, start, end = [], [], [], [], [], []
    for rel, toks in tables:
        n = len(toks)
        files += [rel] * n
        pos.extend(range(n))
        text += [t.text for t in toks]
        ids += [t.id for t in toks]
        start += [t.start for t in toks]
        end += [t.end for t in toks]
    return pa.table({"file": pa.array(files, pa.string()).dictionary_encode(),
                     "position": pa.array(pos, pa.int32()), "text": pa.array(text, pa.string()),
                     "id": pa.array(ids, pa.int32()), "start": pa.array(start, pa.int64()),
                     "end": pa.array(end, pa.int64())})


def _write_tokens(path: Path, table) -> None:
    import pyarrow as pa
    with atomic_file(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table, max_chunksize=max(1, table.num_rows))


def build_index(model, corpus, out, *, quantities=None, layers="all", workers: int = 1,
                scheduler: str | None = None, segment_tokens: int = SEGMENT_TOKENS, rows: int = BATCH_ROWS,
                progress: bool = True, command: str = "", threads: int | None = 1,
                on_progress: Callable[[int, int], None] | None = None,
                checkpoint_seconds: float = CHECKPOINT_SECONDS,
                _after_segment: Callable[[], None] | None = None) -> dict:
    """Build (or continue building) the index of `model` (a LoadedModel) over `corpus` at `out`.

    Returns the card. The files run as the `rows` rows of one batch, `segment_tokens` steps per block,
    each row carrying its own state; the values are written into the final arrays as they are computed.
    Interrupted builds continue from their last checkpoint (every `checkpoint_seconds`) when called again
    with the same arguments. `workers` > 1 runs groups of files in local processes; `scheduler` (a Dask
    distributed scheduler address, or a distributed.Client) runs them on a cluster whose workers see the
    same files. `on_progress(done_tokens, total_tokens)` is called after every block (at least every few
    seconds; the app's progress bar). `threads`: torch threads of an in-process build and of each local
    worker (default 1, see engine.torch_threads; None leaves the process's setting).
    """
    t_start = time.time()
    out = Path(out)
    plan, tables = _plan(model, corpus, layers, quantities, segment_tokens, rows)
    client = None
    try:
        card_p = out / "card.json"
        if card_p.is_file():
            try:
                card = _read_card(out)
            except IndexProblem as e:
                if "format version" in str(e):
                    raise IndexProblem(f"{out} holds an index of an older format; delete it and run the command "
                                       "again to rebuild it") from None
                raise
            if card["model"]["weights_sha256"] != plan["model"]["weights_sha256"]:
                raise IndexProblem(f"{out} already holds an index of model {card['model'].get('name')!r} "
                                  f"(weights {card['model']['weights_sha256'][:12]}), not of "
                                  f"{plan['model']['name']!r}; choose another --out or delete it")
            if _same_plan(card, plan, version=False):
                return card
            raise IndexProblem(f"{out} already holds a finished index with other settings or another "
                              "corpus; choose another --out or delete it")
        if out.exists() and not out.is_dir():
            raise IndexProblem(f"--out {out} is a file, not a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / "build.json").is_file():
            raise IndexProblem(f"--out {out} is a folder that holds other files; give an empty or new folder")
        if scheduler is not None:
            client = _client(scheduler)
            n_groups = max(workers, sum(client.nthreads().values()))
        else:
            n_groups = workers
        bp = out / "build.json"
        if bp.is_file():
            try:
                old = json.loads(bp.read_text(encoding="utf-8"))
            except ValueError:
                old = None
            if old is not None and old.get("version") != VERSION:
                raise IndexProblem(f"{out} holds an unfinished build of an older index format (version "
                                   f"{old.get('version')}); delete the folder and run the command again")
            if old is None or not _same_plan(old, plan):
                raise IndexProblem(f"{out} holds an unfinished build with another model, corpus or settings; "
                                  "run that command again to finish it, or delete the folder")
            plan["batch"]["groups"] = old["batch"]["groups"]
        else:
            plan["batch"]["groups"] = _groups(plan["files"], n_groups)
            out.mkdir(parents=True, exist_ok=True)
            _write_json(bp, plan)
        (out / "parts").mkdir(exist_ok=True)
        _create_arrays(plan, out)
        N = plan["tokens"]
        bar = _bar(N, progress)
        count = {"done": _done_tokens(plan, out, checkpoints=True)}
        bar.update(count["done"])

        def block_done(n):
            bar.update(n)
            count["done"] += n
            if on_progress is not None:
                on_progress(min(count["done"], N), N)

        if on_progress is not None:
            on_progress(count["done"], N)
        groups = range(len(plan["batch"]["groups"]))
        try:
            if client is not None:
                _run_dask(client, plan, out, groups, bar, on_progress)
            elif len(groups) > 1 and workers > 1:
                _run_local(workers, threads, plan, out, groups, bar, on_progress)
            else:
                from ..engine import torch_threads
                starts = {rel: toks for rel, toks in tables}
                import torch
                with torch_threads(threads):
                    for k in groups:
                        ids = {i: torch.tensor([t.id for t in starts[plan["files"][i]["path"]]], dtype=torch.long)
                               for i in plan["batch"]["groups"][k]}
                        index_group(model, plan, k, str(out), block_done, _after_segment, ids=ids,
                                    checkpoint_seconds=checkpoint_seconds)
        finally:
            bar.close()
        if _done_tokens(plan, out, checkpoints=True) != N:
            raise IndexProblem(f"the build of {out} did not finish every group; run it again to continue")
        _finish_arrays(plan, out)
        _write_tokens(out / "tokens.arrow", _token_table(tables))
        seconds = time.time() - t_start
        card = dict(plan)
        card["complete"] = True
        card["built"] = {"seconds": round(seconds, 2), "workers": workers, "threads": threads,
                         "scheduler": scheduler if isinstance(scheduler, str) else (None if scheduler is None else "client"),
                         "command": command, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_json(card_p, card)
    except OSError as e:
        raise _io_error(out, e) from None
    finally:
        if client is not None and isinstance(scheduler, str):
            client.close()
    shutil.rmtree(out / "parts", ignore_errors=True)
    try:
        (out / "build.json").unlink()
    except OSError:
        pass
    return card


def _bar(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, unit="tok", unit_scale=True, desc="indexing", disable=not enabled,
                file=sys.stderr, smoothing=0.1, dynamic_ncols=True)


def _poll(bar, plan, out, last, on_progress):
    now = _done_tokens(plan, out)
    if now > last:           # (a disabled bar counts nothing: `last` is ours)
        bar.update(now - last)
        if on_progress is not None:
            on_progress(min(now, plan["tokens"]), plan["tokens"])
    return max(now, last)


def _worker_init(threads: int):
    import torch
    torch.set_num_threads(threads)


def _run_local(workers, threads, plan, out: Path, groups, bar, on_progress):
    if not plan["model"]["path"]:
        raise IndexProblem("--workers needs a model saved as a bundle folder (the workers load it by path)")
    import concurrent.futures as cf
    import multiprocessing as mp
    last = _done_tokens(plan, out, checkpoints=True)
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                initargs=(threads or 1,)) as ex:
        futs = [ex.submit(index_group, plan["model"]["path"], plan, k, str(out)) for k in groups]
        pending = set(futs)
        while pending:
            done, pending = cf.wait(pending, timeout=0.5)
            last = _poll(bar, plan, out, last, on_progress)
            for f in done:
                f.result()


def _client(scheduler):
    if isinstance(scheduler, str):
        from distributed import Client
        try:
            return Client(scheduler, timeout="20s")
        except OSError as e:
            raise IndexProblem(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    return scheduler


def _dask_group(model_path: str, plan: dict, k: int, out: str) -> int:
    """index_group on a Dask worker, with one torch thread (parallelism comes from the workers)."""
    from ..engine import torch_threads
    with torch_threads(1):
        return index_group(model_path, plan, k, out)


def _run_dask(client, plan, out: Path, groups, bar, on_progress):
    if not plan["model"]["path"]:
        raise IndexProblem("--scheduler needs a model saved as a bundle folder (the workers load it by path)")
    from distributed import wait
    last = _done_tokens(plan, out, checkpoints=True)
    groups = list(groups)
    futs = client.map(_dask_group, [plan["model"]["path"]] * len(groups), [plan] * len(groups), groups,
                      [str(out)] * len(groups), pure=False)
    pending = list(futs)
    while pending:
        try:
            wait(pending, timeout=0.5)
        except Exception:  # a timeout (distributed raises its own type on some versions)
            pass
        last = _poll(bar, plan, out, last, on_progress)
        for f in [f for f in pending if f.done()]:
            f.result()     # re-raise a worker's error here
        pending = [f for f in pending if not f.done()]


# ---------------------------------------------------------------------------------------------
# reading

def _read_card(path: Path) -> dict:
    p = Path(path) / "card.json"
    if not p.is_file():
        if (Path(path) / "build.json").is_file():
            raise IndexProblem(f"{path} is an unfinished index build; run the same `index` command again "
                              "to finish it")
        raise IndexProblem(f"{path} is not a corpus index (no card.json)")
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexProblem(f"{p} is not valid JSON: {e}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT_NAME or not card.get("complete"):
        raise IndexProblem(f"{p} is not the card of a complete corpus index")
    if card.get("version") not in READABLE_VERSIONS:
        how = card.get("built", {}).get("command") or "python -m explorer index --model M --corpus C --out INDEX"
        raise IndexProblem(f"{path} is an index of format version {card.get('version')}; this explorer reads "
                          f"version {VERSION} (half the disk: float16 values stored once). Delete the folder "
                          f"and build it again: {how}")
    return card


@dataclass
class CorpusIndex:
    """An open index. Arrays are memory-mapped; a query reads only the units, rows and token-table columns
    it touches."""
    path: Path
    card: dict

    def __post_init__(self):
        self._group = None
        self._tokens = None
        self._table = None
        self._maps: dict = {}
        self._mmaps: dict = {}

    # -- metadata
    @property
    def n_tokens(self) -> int:
        return int(self.card["tokens"])

    @property
    def n_units(self) -> int:
        return int(self.card["units"])

    @property
    def layers(self) -> list[int]:
        """The layers the index holds, numbered from 1 (the bottom layer)."""
        return list(self.card["layers"])

    def layer_number(self, layer: int) -> int:
        """`layer` as a layer number of the model (1 = the bottom; -1 = the top, 0 refused:
        explorer.engine.layer_index), refused when the index does not hold it."""
        from ..engine import LAYER_HELP, layer_index
        n = int(self.card["model"]["config"]["layers"])
        number = layer_index(layer, n) + 1
        if number not in self.layers:
            raise IndexProblem(f"the index holds layers {self.layers} ({LAYER_HELP}), not {layer}")
        return number

    def array_prefix(self, layer: int) -> str:
        """The zarr group of a layer number: "L1" for the bottom layer."""
        return f"L{self.layer_number(layer)}"

    @property
    def quantities(self) -> list[str]:
        return list(self.card["quantities"])

    @property
    def cell(self) -> str:
        return self.card["model"]["config"]["cell"]

    @property
    def files(self) -> list[dict]:
        return list(self.card["files"])

    @property
    def eos_means(self) -> str:
        """What <eos> marks in the indexed text: the card's "eos_means" (recorded from the model when
        built), else what the model's tokenizer kind does (explorer.tokenizer.eos_means)."""
        from ..tokenizer import eos_means
        return self.card.get("eos_means") or eos_means(self.card.get("tokenizer", "word"))

    def check_model(self, model) -> None:
        got, want = model_hash(model), self.card["model"]["weights_sha256"]
        if got != want:
            raise IndexProblem(f"the index {self.path} was built for model {self.card['model'].get('name')!r} "
                              f"(weights {want[:12]}); {model.name!r} has weights {got[:12]}: build an index "
                              "for this model or pick the model the index belongs to")

    # -- arrays
    def _g(self):
        if self._group is None:
            import zarr
            self._group = zarr.open_group(str(self.path / "states.zarr"), mode="r")
        return self._group

    def _check(self, layer: int, quantity: str) -> int:
        """The layer number of `layer` (see layer_number), after checking the index holds it and `quantity`."""
        number = self.layer_number(layer)
        if quantity not in self.quantities:
            raise IndexProblem(f"the index holds {', '.join(self.quantities)}, not {quantity!r}")
        return number

    def array(self, layer: int, quantity: str, kind: str = "values"):
        """The zarr array of `layer` (1 = the bottom layer) and `quantity`: "values" [N, H] or "norm" [N]
        (what any zarr v3 reader sees; this class reads the same bytes memory-mapped)."""
        number = self._check(layer, quantity)
        return self._g()[f"L{number}/{quantity}/{kind}"]

    def shards(self, layer: int, quantity: str) -> list[tuple[int, int, np.ndarray]]:
        """(first row, rows, float16 memmap [H, W]) of every shard of the values of `layer`, `quantity`:
        unit u over the shard's rows is the contiguous row u[:rows]."""
        number = self._check(layer, quantity)
        key = (number, quantity)
        if key not in self._maps:
            N, H = self.n_tokens, self.n_units
            R, S = self.card["chunks"]["rows"], self.card["chunks"]["shard_rows"]
            maps = []
            for k, (s0, n, W) in enumerate(_shards(N, R, S)):
                p = _shard_path(self.path, number, quantity, k)
                try:
                    if p.stat().st_size < H * W * 2:
                        raise IndexProblem(f"{p} is shorter than the card says; build the index again")
                    with open(p, "rb") as f:
                        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    self._mmaps.setdefault(key, []).append(m)
                    maps.append((s0, n, np.ndarray((H, W), dtype="<f2", buffer=m)))
                except FileNotFoundError:
                    raise IndexProblem(f"the index {self.path} lacks {p}; build it again") from None
            self._maps[key] = maps
        return self._maps[key]

    def populate(self, layer: int, quantity: str) -> None:
        """Map every page of the shards of `layer`, `quantity` into this process at once (Linux's
        MADV_POPULATE_READ), before a scan that reads them all: one call instead of a page fault per
        64 KB (which cost more than the arithmetic of the scan). A no-op where the kernel lacks it."""
        number = self._check(layer, quantity)
        self.shards(layer, quantity)
        done = self.__dict__.setdefault("_populated", set())
        if (number, quantity) in done:
            return
        done.add((number, quantity))
        for m in self._mmaps.get((number, quantity), []):
            try:
                m.madvise(getattr(mmap, "MADV_POPULATE_READ", 22))
            except (OSError, ValueError, AttributeError):
                return

    def norms(self, layer: int, quantity: str) -> np.ndarray:
        """The norm of every stored state vector, float32 [N] (memory-mapped)."""
        number = self._check(layer, quantity)
        key = (number, quantity, "norm")
        if key not in self._maps:
            self._maps[key] = np.memmap(_norm_path(self.path, number, quantity), dtype="<f4", mode="r",
                                        shape=(self.n_tokens,))
        return self._maps[key]

    def units(self, layer: int, quantity: str, units: Sequence[int]) -> np.ndarray:
        """Values of `units` over every token: float32 [N, len(units)] (reads only those units' rows of
        the memory-mapped shards)."""
        units = [int(u) for u in units]
        for u in units:
            if not 0 <= u < self.n_units:
                raise IndexProblem(f"unit {u} is out of range (0..{self.n_units - 1})")
        import torch                       # its float16 -> float32 copy is vectorised (10x NumPy's here)
        shards = self.shards(layer, quantity)
        out = np.empty((len(units), self.n_tokens), np.float32)
        dst = torch.from_numpy(out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)      # a read-only memory map: torch only reads it
            for s0, n, mm in shards:
                src = torch.from_numpy(mm)
                for j, u in enumerate(units):
                    dst[j, s0:s0 + n].copy_(src[u, :n])
        return out.T

    def count_above(self, layer: int, quantity: str, units: Sequence[int], threshold: float) -> np.ndarray:
        """How many of `units` are above `threshold` at every token: int32 [N]. Compared on the stored
        float16 values without converting them: v > θ exactly when v > the largest float16 <= θ (no
        float16 lies between the two)."""
        import torch
        units = [int(u) for u in units]
        for u in units:
            if not 0 <= u < self.n_units:
                raise IndexProblem(f"unit {u} is out of range (0..{self.n_units - 1})")
        t16 = np.float16(threshold)
        if float(t16) > float(threshold):
            t16 = np.nextafter(t16, np.float16(-np.inf))
        # for a threshold >= 0 the comparison is on the bits: non-negative float16 values order as their
        # int16 bit patterns, and every negative one (sign bit set) is a negative int16
        t16 = np.float16(0.0) if t16 == 0 else t16                        # v > -0.0 exactly when v > +0.0
        bits = int(t16.view(np.int16)) if float(t16) >= 0 else None
        count = np.zeros(self.n_tokens, np.int32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)      # a read-only memory map: torch only reads it
            for s0, n, mm in self.shards(layer, quantity):
                above = np.empty(n, bool)
                row32 = np.empty(n, np.float32) if bits is None else None
                dst = count[s0:s0 + n]
                for u in units:
                    if bits is not None:
                        np.greater(mm[u, :n].view(np.int16), bits, out=above)
                    else:                 # a negative threshold: on the values (torch's float16 copy is fast)
                        torch.from_numpy(row32).copy_(torch.from_numpy(mm[u, :n]))
                        np.greater(row32, float(t16), out=above)
                    np.add(dst, above, out=dst, casting="unsafe")
        return count

    def units_at(self, layer: int, quantity: str, units: Sequence[int], rows) -> np.ndarray:
        """Values of `units` at the given rows: float32 [len(units), len(rows)] (reads only those)."""
        units = [int(u) for u in units]
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(units), len(rows)), np.float32)
        for s0, n, mm in self.shards(layer, quantity):
            inside = (rows >= s0) & (rows < s0 + n)
            if inside.any():
                r = rows[inside] - s0
                for j, u in enumerate(units):
                    out[j, inside] = mm[u, r]
        return out

    def columns(self, layer: int, quantity: str, start: int, stop: int) -> np.ndarray:
        """All units over tokens [start, stop) as stored: float16 [H, stop - start] (a view of the
        memory-mapped shard when the range lies in one shard)."""
        start, stop = max(0, int(start)), min(self.n_tokens, int(stop))
        parts = []
        for s0, n, mm in self.shards(layer, quantity):
            a, b = max(start, s0), min(stop, s0 + n)
            if a < b:
                parts.append(mm[:, a - s0:b - s0])
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts, 1) if parts else np.zeros((self.n_units, 0), np.float16)

    def rows(self, layer: int, quantity: str, start: int, stop: int) -> np.ndarray:
        """All units over tokens [start, stop): float32 [stop-start, H] (H short runs of the shard)."""
        return self.columns(layer, quantity, start, stop).T.astype(np.float32)

    def blocks(self, layer: int, quantity: str, rows: int = 16384):
        """Iterate (start, values [n, H] float32) over the whole index, one block at a time."""
        for a in range(0, self.n_tokens, rows):
            yield a, self.rows(layer, quantity, a, a + rows)

    # -- token table
    def table(self):
        """The token table as a memory-mapped pyarrow Table (no column is read until used)."""
        if self._table is None:
            import pyarrow as pa
            self._table = pa.ipc.open_file(pa.memory_map(str(self.path / "tokens.arrow"), "r")).read_all()
        return self._table

    def texts(self, start: int, stop: int) -> list[str]:
        """The token texts of rows [start, stop) (reads only those rows of the text column)."""
        start, stop = max(0, int(start)), min(self.n_tokens, int(stop))
        return self.table().column("text").slice(start, max(0, stop - start)).to_pylist()

    @property
    def tokens(self):
        """The token table as a pandas DataFrame (file, position, text, id, start, end), loaded once."""
        if self._tokens is None:
            df = self.table().to_pandas()
            df["file"] = df["file"].astype(str)
            self._tokens = df
        return self._tokens

    def token_texts(self) -> np.ndarray:
        """The token texts as a NumPy object array [N], made once per open index (the whole column; the
        queries read only the rows they show through `texts`)."""
        if self.__dict__.get("_texts") is None:
            self._texts = np.asarray(self.table().column("text").to_pylist(), dtype=object)
        return self._texts

    def file_of_rows(self) -> np.ndarray:
        """The file number (index into card 'files') of every row, int32 [N]."""
        out = np.empty(self.n_tokens, np.int32)
        for i, f in enumerate(self.files):
            out[f["row_start"]:f["row_start"] + f["tokens"]] = i
        return out

    def file_of(self, row: int) -> int:
        """The file number of one row."""
        starts = self.__dict__.get("_starts")
        if starts is None:
            starts = self._starts = np.array([f["row_start"] for f in self.files], np.int64)
        return int(np.searchsorted(starts, int(row), side="right") - 1)

    def extras(self) -> Path:
        p = self.path / "extras"
        p.mkdir(exist_ok=True)
        return p


def open_index(path, model=None) -> CorpusIndex:
    """Open a complete index; with `model`, refuse an index built for other weights."""
    path = Path(path)
    if not path.exists():
        raise IndexProblem(f"index {path} does not exist; build it with `python -m explorer index`")
    if not path.is_dir():
        raise IndexProblem(f"index {path} is not a folder")
    card = _read_card(path)
    for name in ("tokens.arrow", "states.zarr"):
        if not (path / name).exists():
            raise IndexProblem(f"index {path} lacks {name}; build it again")
    idx = CorpusIndex(path, card)
    if model is not None:
        idx.check_model(model)
    return idx


def default_index_dir() -> Path:
    """Where the app keeps indexes (explorer.settings.index_root: the cache root's indexes/)."""
    from .. import settings
    return settings.index_root()


def index_dir_for(model, corpus, quantities=None) -> Path:
    """A cache folder name for (model weights, corpus files, quantities, index format version)."""
    root, files = corpus_files(corpus)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}|{st.st_size}|{int(st.st_mtime)}".encode())
    h.update(",".join(quantities or default_quantities(model.lm.config.cell)).encode())
    h.update(f"|format {VERSION}".encode())
    return default_index_dir() / f"{model.name}-{model_hash(model)[:12]}-{h.hexdigest()[:12]}"
