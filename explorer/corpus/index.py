"""The corpus index: a model's states over every token of a corpus, stored for corpus-level queries.

Build one with ``python -m explorer index --model M --corpus DIR_OR_FILE --out INDEX`` or
:func:`build_index`; open one with :func:`open_index`. See :data:`FORMAT` for the layout on disk.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import CorpusError, ExplorerError
from ..files import atomic_file, write_json
from ..model import weights_hash  # noqa: F401 (the core's model identity, re-exported)

FORMAT = """\
Corpus index format, version 2 (readable without this project: zarr v3 + Parquet + JSON).

INDEX/
  card.json        Written last, atomically: its presence means the build is complete. Holds
                   "format": "rnn-explorer-corpus-index", "version": 2, "complete": true,
                   "model": {name, path, weights_sha256, config}: the model the states belong to
                     (weights_sha256 = sha256 over the model's state-dict tensors, see weights_hash),
                   "tokenizer": its kind, "eos_means": what <eos> marks in its text, "line" or
                     "paragraph" (explorer.tokenizer.eos_means; absent in older indexes),
                   "tokens": N (rows of every array and of the token table), "units": H,
                   "layers": [1, 2, ...] (layer numbers: 1 = the bottom layer),
                   "quantities": ["h", "c", ...],
                   "dtype": {"h": "float16", "c": "float32"} (c is unbounded: float32 keeps 1e-3),
                   "files": [{path, tokens, row_start, sha256, bytes}, ...] in row order,
                   "chunks": {"by_unit": [rows, 1], "by_token": [rows, H]}, "built": {...}.
  tokens.parquet   The token table, one row per stored state (row r <-> array row r):
                   file (str, path relative to the corpus root), position (int32, index of the token
                   in its file's trace; 0 is the boundary token <eos> read before the file's text),
                   text (str, the token as it appears in the text, or "<eos>"), id (int32, vocabulary
                   id), start / end (int64, the token's character span in the file; [0, 0) for the
                   boundary).
  states.zarr/     A zarr v3 group. For each layer l of the card (L1 = the bottom layer) and
                   quantity q two arrays [N, H] (card dtype;
                   uncompressed, so a row range is a plain slice of the chunk file):
                   L{l}/{q}/by_unit    chunks [65536 rows, 1 unit] (fewer rows when N is smaller):
                                       a few units over all tokens reads only those units' chunks;
                   L{l}/{q}/by_token   chunks [512 rows, all H units]: all units over a few tokens
                                       reads one or two chunks.
                   Both hold the same values. Row order: file after file (card "files"), each file's
                   tokens in reading order.
  extras/          Derived data the queries cache (PCA fits for trajectories); safe to delete.

Semantics: each file is read as one continuous text exactly as trace(model, text_of_file) reads it,
from the boundary token <eos>, the recurrent state carried across the build's segments; the value in
row r is the quantity after reading the token of row r (Trace.layer(l)[q][position], i.e.
Trace.layers[l - 1]).

Version 1 (built before layers were numbered from 1) is read as well: its card lists "layers" from 0
and its arrays are L0 (the bottom layer), L1, ...; open_index gives its card's layers from 1, and
layer 1 reads L0, so every reader sees one numbering. New builds write version 2.

While a build runs (or after it was interrupted) INDEX/ holds build.json (the plan) and parts/
(finished segments in the card's dtypes, and the float32 state at each segment's end): a rerun with the same
arguments continues from the last finished segment. No card.json means not complete: readers refuse it.
"""

VERSION = 2
#: The versions open_index reads: 1 counted layers from 0 (card and array names), 2 from 1.
READABLE_VERSIONS = (1, 2)
FORMAT_NAME = "rnn-explorer-corpus-index"
BY_UNIT_ROWS = 65536
BY_TOKEN_ROWS = 512
SEGMENT_TOKENS = 8192


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
    """float16 for the bounded quantities (h and the gates lie in [-1, 1]: error <= 2.5e-4); float32 for
    the LSTM cell state c, which is unbounded (float16 would round |c| > 2 by more than 1e-3)."""
    return "float32" if quantity == "c" else "float16"


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
# one file, segment by segment (runs in the main process, a local worker process or a Dask worker)

def _segments(n: int, seg: int) -> list[tuple[int, int]]:
    return [(a, min(a + seg, n)) for a in range(0, n, seg)] or [(0, 0)]


def _seg_path(parts: Path, file_i: int, seg_j: int) -> Path:
    return parts / f"f{file_i:06d}" / f"s{seg_j:06d}.npz"


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


def index_file(model, plan: dict, file_i: int, out: str,
               on_segment: Callable[[int], None] | None = None) -> int:
    """Trace file `file_i` of the plan segment by segment, carrying the state, writing every segment not
    already on disk to OUT/parts. Returns the number of tokens written in this call."""
    import torch
    from ..engine import run_layers
    if isinstance(model, str):
        model = _worker_model(model, plan["model"]["weights_sha256"])
    info = plan["files"][file_i]
    root = Path(plan["corpus_root"])
    path = root / info["path"]
    data = path.read_bytes()
    if _sha(data) != info["sha256"]:
        raise IndexProblem(f"{path} changed since the build began; delete {out} and build again")
    toks = _tokens(model, _read(path))
    if len(toks) != info["tokens"]:
        raise IndexProblem(f"{path}: the model's tokenizer gave {len(toks)} tokens, the plan {info['tokens']}")
    parts = Path(out) / "parts"
    (parts / f"f{file_i:06d}").mkdir(parents=True, exist_ok=True)
    segs = _segments(len(toks), plan["segment_tokens"])
    layers, quantities, cell = plan["layers"], plan["quantities"], plan["model"]["config"]["cell"]
    # resume: the first segment not on disk, from the state saved at the end of the one before
    start_j, state = 0, None
    for j in range(len(segs)):
        if _seg_path(parts, file_i, j).is_file():
            start_j = j + 1
        else:
            break
    if start_j >= len(segs):
        return 0
    if start_j > 0:
        with np.load(_seg_path(parts, file_i, start_j - 1)) as z:
            h = torch.from_numpy(z["state_h"].copy())
            state = (h, torch.from_numpy(z["state_c"].copy())) if cell == "lstm" else h
    ids_all = torch.tensor([t.id for t in toks], dtype=torch.long)
    written = 0
    for j in range(start_j, len(segs)):
        a, b = segs[j]
        lay, _, final = run_layers(model.lm, ids_all[a:b], state)
        arrays = {f"L{l}_{q}": lay[l - 1][q].astype(dtype_of(q)) for l in layers for q in quantities}
        if cell == "lstm":
            arrays["state_h"], arrays["state_c"] = final[0].numpy(), final[1].numpy()
        else:
            arrays["state_h"] = final.numpy()
        _write_npz(_seg_path(parts, file_i, j), arrays)
        state = final
        written += b - a
        if on_segment is not None:
            on_segment(b - a)
    return written


def _done_tokens(plan: dict, out: Path) -> int:
    parts = out / "parts"
    n = 0
    for i, f in enumerate(plan["files"]):
        for j, (a, b) in enumerate(_segments(f["tokens"], plan["segment_tokens"])):
            if _seg_path(parts, i, j).is_file():
                n += b - a
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


def _plan(model, corpus, layers, quantities, segment_tokens) -> tuple[dict, list]:
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
    plan = {"format": FORMAT_NAME, "version": VERSION,
            "model": {"name": model.name, "path": str(Path(model.path).resolve()) if model.path else None,
                      "weights_sha256": model_hash(model), "config": cfg.to_dict()},
            "tokenizer": model.tokenizer.kind, "eos_means": eos_means(model),
            "corpus_root": str(root.resolve()), "files": entries, "tokens": row,
            "units": cfg.hidden_size, "layers": _parse_layers(layers, cfg.layers),
            "quantities": _parse_quantities(quantities or default_quantities(cfg.cell), cfg.cell),
            "segment_tokens": int(segment_tokens),
            "chunks": {"by_unit": [max(1, min(BY_UNIT_ROWS, row)), 1],
                       "by_token": [max(1, min(BY_TOKEN_ROWS, row)), cfg.hidden_size]}}
    plan["dtype"] = {q: dtype_of(q) for q in plan["quantities"]}
    return plan, tables


def _same_plan(a: dict, b: dict, version: bool = True) -> bool:
    """Whether two plans (or a card and a plan) index the same thing the same way. `version` False: a
    finished index of an older readable format counts as the same (its layers read from 1)."""
    keys = ("version",) * version + ("files", "tokens", "layers", "quantities", "segment_tokens", "units")
    return all(a.get(k) == b.get(k) for k in keys) and \
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


def _assemble(plan: dict, out: Path, log) -> None:
    """Copy the finished segments into the two zarr layouts, block by block of BY_UNIT_ROWS rows."""
    import zarr
    N, H = plan["tokens"], plan["units"]
    store = out / "states.zarr"
    g = zarr.open_group(str(store), mode="a")
    arrays = {}
    for l in plan["layers"]:
        for q in plan["quantities"]:
            for kind in ("by_unit", "by_token"):
                chunks = tuple(plan["chunks"][kind])
                name = f"L{l}/{q}/{kind}"
                if name in g:
                    arrays[name] = g[name]
                else:
                    arrays[name] = g.create_array(name, shape=(N, H), chunks=chunks, dtype=dtype_of(q),
                                                  fill_value=0.0, compressors=None)
    # segment spans in global rows
    spans = []
    for i, f in enumerate(plan["files"]):
        for j, (a, b) in enumerate(_segments(f["tokens"], plan["segment_tokens"])):
            if b > a:
                spans.append((f["row_start"] + a, f["row_start"] + b, i, j))
    marks = out / "parts" / "assembled"
    marks.mkdir(parents=True, exist_ok=True)
    for r0 in range(0, N, BY_UNIT_ROWS):
        r1 = min(r0 + BY_UNIT_ROWS, N)
        mark = marks / f"b{r0 // BY_UNIT_ROWS:06d}"
        if mark.exists():
            continue
        inside = [(max(s0, r0), min(s1, r1), s0, i, j) for s0, s1, i, j in spans if s1 > r0 and s0 < r1]
        for l in plan["layers"]:           # one (layer, quantity) at a time: bounded memory
            for q in plan["quantities"]:
                block = np.empty((r1 - r0, H), dtype_of(q))
                for a, b, s0, i, j in inside:
                    with np.load(_seg_path(out / "parts", i, j)) as z:
                        block[a - r0:b - r0] = z[f"L{l}_{q}"][a - s0:b - s0]
                for kind in ("by_unit", "by_token"):
                    arrays[f"L{l}/{q}/{kind}"][r0:r1] = block
        mark.touch()


def build_index(model, corpus, out, *, quantities=None, layers="all", workers: int = 1,
                scheduler: str | None = None, segment_tokens: int = SEGMENT_TOKENS,
                progress: bool = True, command: str = "", threads: int | None = 1,
                on_progress: Callable[[int, int], None] | None = None,
                _after_segment: Callable[[], None] | None = None) -> dict:
    """Build (or continue building) the index of `model` (a LoadedModel) over `corpus` at `out`.

    Returns the card. Interrupted builds continue from the last finished segment when called again with
    the same arguments. `workers` > 1 runs files in local processes; `scheduler` (a Dask distributed
    scheduler address, or a distributed.Client) runs them on a cluster whose workers see the same files.
    `on_progress(done_tokens, total_tokens)` is called as segments finish (the app's progress bar).
    `threads`: torch threads of an in-process build (default 1, see engine.torch_threads; None
    leaves the process's setting).
    """
    t_start = time.time()
    out = Path(out)
    plan, tables = _plan(model, corpus, layers, quantities, segment_tokens)
    try:
        card_p = out / "card.json"
        if card_p.is_file():
            card = _read_card(out)
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
        out.mkdir(parents=True, exist_ok=True)
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
        else:
            _write_json(bp, plan)
        (out / "parts").mkdir(exist_ok=True)
        N = plan["tokens"]
        bar = _bar(N, progress)
        bar.update(_done_tokens(plan, out))

        def seg_done(n):
            bar.update(n)
            if on_progress is not None:
                on_progress(bar.n, N)
            if _after_segment is not None:
                _after_segment()

        todo = [i for i in range(len(plan["files"]))]
        try:
            if scheduler is not None:
                _run_dask(scheduler, plan, out, todo, bar)
            elif workers > 1:
                _run_local(workers, plan, out, todo, bar)
            else:
                from ..engine import torch_threads
                with torch_threads(threads):
                    for i in todo:
                        index_file(model, plan, i, str(out), seg_done)
        finally:
            bar.close()
        if _done_tokens(plan, out) != N:
            raise IndexProblem(f"the build of {out} did not finish every segment; run it again to continue")
        _assemble(plan, out, None)
        import pyarrow.parquet as pq
        with atomic_file(out / "tokens.parquet") as tmp:
            pq.write_table(_token_table(tables), tmp)
        seconds = time.time() - t_start
        card = dict(plan)
        card["complete"] = True
        card["built"] = {"seconds": round(seconds, 2), "workers": workers,
                         "scheduler": scheduler if isinstance(scheduler, str) else (None if scheduler is None else "client"),
                         "command": command, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_json(card_p, card)
    except OSError as e:
        raise _io_error(out, e) from None
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


def _poll(bar, plan, out, last):
    now = _done_tokens(plan, out)
    if now > last:
        bar.update(now - last)
    return max(now, last)


def _worker_init(threads: int):
    import torch
    torch.set_num_threads(threads)


def _run_local(workers, plan, out: Path, todo, bar):
    if not plan["model"]["path"]:
        raise IndexProblem("--workers needs a model saved as a bundle folder (the workers load it by path)")
    import concurrent.futures as cf
    import multiprocessing as mp
    threads = max(1, (os.cpu_count() or 1) // workers)
    last = bar.n
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                initargs=(threads,)) as ex:
        futs = [ex.submit(index_file, plan["model"]["path"], plan, i, str(out)) for i in todo]
        pending = set(futs)
        while pending:
            done, pending = cf.wait(pending, timeout=0.5)
            last = _poll(bar, plan, out, last)
            for f in done:
                f.result()


def _run_dask(scheduler, plan, out: Path, todo, bar):
    if not plan["model"]["path"]:
        raise IndexProblem("--scheduler needs a model saved as a bundle folder (the workers load it by path)")
    from distributed import Client, wait
    own = isinstance(scheduler, str)
    try:
        client = Client(scheduler, timeout="20s") if own else scheduler
    except OSError as e:
        raise IndexProblem(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    last = bar.n
    try:
        futs = client.map(index_file, [plan["model"]["path"]] * len(todo), [plan] * len(todo), todo,
                          [str(out)] * len(todo), pure=False)
        pending = list(futs)
        while pending:
            try:
                wait(pending, timeout=0.5)
            except TimeoutError:
                pass
            except Exception:  # distributed raises its own timeout type on some versions
                pass
            last = _poll(bar, plan, out, last)
            for f in [f for f in pending if f.done()]:
                f.result()     # re-raise a worker's error here
            pending = [f for f in pending if not f.done()]
    finally:
        if own:
            client.close()


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
        raise IndexProblem(f"{path} is an index of format version {card.get('version')}; this explorer "
                          f"reads versions {', '.join(map(str, READABLE_VERSIONS))}: delete it and build it "
                          "again (python -m explorer index)")
    if card["version"] == 1:          # layers counted from 0: read them as the numbers everyone else uses
        card["layers"] = [int(l) + 1 for l in card["layers"]]
    return card


@dataclass
class CorpusIndex:
    """An open index. Arrays are read lazily; only the chunks a query touches are loaded."""
    path: Path
    card: dict

    def __post_init__(self):
        self._group = None
        self._tokens = None

    # -- metadata
    @property
    def n_tokens(self) -> int:
        return int(self.card["tokens"])

    @property
    def n_units(self) -> int:
        return int(self.card["units"])

    @property
    def layers(self) -> list[int]:
        """The layers the index holds, numbered from 1 (the bottom layer), whatever its format version."""
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
        """The zarr group of a layer number: "L1" for the bottom layer (format version 1: "L0")."""
        number = self.layer_number(layer)
        return f"L{number - 1 if self.card.get('version') == 1 else number}"

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

    def array(self, layer: int, quantity: str, kind: str = "by_unit"):
        """The zarr array of `layer` (1 = the bottom layer) and `quantity`."""
        self._check(layer, quantity)
        return self._g()[f"{self.array_prefix(layer)}/{quantity}/{kind}"]

    def _plain_chunks(self, layer: int, quantity: str, kind: str):
        """(folder, rows per chunk, dtype) when the array's chunks are plain little-endian bytes under
        zarr v3's default '/' key encoding (how this project writes them), else None."""
        prefix = self.array_prefix(layer)
        key = (prefix, quantity, kind)
        cache = self.__dict__.setdefault("_plain", {})
        if key not in cache:
            folder = self.path / "states.zarr" / prefix / quantity / kind
            try:
                meta = json.loads((folder / "zarr.json").read_text(encoding="utf-8"))
                codecs = meta["codecs"]
                ok = (meta.get("zarr_format") == 3 and len(codecs) == 1 and codecs[0]["name"] == "bytes"
                      and codecs[0].get("configuration", {}).get("endian", "little") == "little"
                      and meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
                      and meta["chunk_grid"]["configuration"]["chunk_shape"][1] == 1
                      and not meta.get("storage_transformers"))
                rows = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
                cache[key] = (folder, rows, np.dtype(meta["data_type"]).newbyteorder("<"),
                              float(meta["fill_value"])) if ok else None
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                cache[key] = None
        return cache[key]

    def units(self, layer: int, quantity: str, units: Sequence[int]) -> np.ndarray:
        """Values of `units` over every token: float32 [N, len(units)] (reads only those units' chunks).

        The by-unit chunks are plain bytes, so they are read straight from their files (a zarr v3 chunk
        c/<row block>/<unit>, padded to the chunk length at the end); zarr's own reader, with its async
        machinery, took 10-100x longer for the same bytes on a busy 2-core machine."""
        self._check(layer, quantity)
        units = [int(u) for u in units]
        for u in units:
            if not 0 <= u < self.n_units:
                raise IndexProblem(f"unit {u} is out of range (0..{self.n_units - 1})")
        N = self.n_tokens
        out = np.empty((N, len(units)), np.float32)
        if not units:
            return out
        plain = self._plain_chunks(layer, quantity, "by_unit")
        if plain is None:
            arr = self.array(layer, quantity, "by_unit")
            out[:] = arr.get_orthogonal_selection((slice(None), units))
            return out
        folder, rows, dtype, fill = plain
        for k, u in enumerate(units):
            for i, r0 in enumerate(range(0, N, rows)):
                n = min(rows, N - r0)
                f = folder / "c" / str(i) / str(u)
                try:
                    out[r0:r0 + n, k] = np.fromfile(f, dtype=dtype, count=n)
                except FileNotFoundError:
                    out[r0:r0 + n, k] = fill       # zarr leaves chunks equal to the fill value unwritten
        return out

    def rows(self, layer: int, quantity: str, start: int, stop: int) -> np.ndarray:
        """All units over tokens [start, stop): float32 [stop-start, H] (reads one or two chunks)."""
        start, stop = max(0, int(start)), min(self.n_tokens, int(stop))
        arr = self.array(layer, quantity, "by_token")
        return np.asarray(arr[start:stop], dtype=np.float32)

    def blocks(self, layer: int, quantity: str, rows: int = 16 * BY_TOKEN_ROWS):
        """Iterate (start, values [n, H] float32) over the whole index, one block at a time."""
        arr = self.array(layer, quantity, "by_token")
        for a in range(0, self.n_tokens, rows):
            yield a, np.asarray(arr[a:a + rows], dtype=np.float32)

    # -- token table
    @property
    def tokens(self):
        """The token table as a pandas DataFrame (file, position, text, id, start, end), loaded once."""
        if self._tokens is None:
            import pyarrow.parquet as pq
            t = pq.read_table(self.path / "tokens.parquet")
            df = t.to_pandas()
            df["file"] = df["file"].astype(str)
            self._tokens = df
        return self._tokens

    def token_texts(self) -> np.ndarray:
        """The token texts as a NumPy object array [N], made once per open index."""
        if self.__dict__.get("_texts") is None:
            self._texts = self.tokens["text"].to_numpy(dtype=object)
        return self._texts

    def file_of_rows(self) -> np.ndarray:
        """The file number (index into card 'files') of every row, int32 [N]."""
        out = np.empty(self.n_tokens, np.int32)
        for i, f in enumerate(self.files):
            out[f["row_start"]:f["row_start"] + f["tokens"]] = i
        return out

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
    for name in ("tokens.parquet", "states.zarr"):
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
    """A cache folder name for (model weights, corpus files, quantities)."""
    root, files = corpus_files(corpus)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}|{st.st_size}|{int(st.st_mtime)}".encode())
    h.update(",".join(quantities or default_quantities(model.lm.config.cell)).encode())
    return default_index_dir() / f"{model.name}-{model_hash(model)[:12]}-{h.hexdigest()[:12]}"
