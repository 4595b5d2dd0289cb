"""Corpus reading, book-level splits, and batching for truncated backpropagation through time."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import CorpusError
from ..tokenizer import EOS

SPLITS = ("train", "valid", "test")


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path} is not UTF-8 text (bad byte 0x{data[e.start]:02x} at offset "
                          f"{e.start}); convert it, e.g. iconv -f latin1 -t utf-8") from None


class Corpus(dict):
    """{"train"|"valid"|"test": [(file name, text), ...]}, and where the split came from:
    `split_file` (the split file read, or None) and `source` (a sentence for people)."""
    split_file: str | None = None
    source: str = ""

    def files(self) -> dict[str, list[str]]:
        return {s: [n for n, _ in self[s]] for s in SPLITS}


def _corpus(parts: dict, split_file, source: str) -> Corpus:
    c = Corpus(parts)
    c.split_file = None if split_file is None else str(split_file)
    c.source = source
    return c


def read_corpus(path, split_file=None) -> Corpus:
    """Return {"train"|"valid"|"test": [(file name, text), ...]} (a `Corpus`, which also says where
    its split came from).

    A folder is split by a split file in the format of ../shared/data/fiction/SPLITS.json: "valid"
    and "test" list file names and "train" is a list or "every other .txt file in this folder". A
    split file that is named must exist and name only files the folder has (CorpusError otherwise:
    a silent fallback would evaluate on training books). With none named, SPLITS.json inside the
    folder is used, and without one the last file (sorted by name) tests, the one before it
    validates and the rest train; `Corpus.source` says so. A single file is split by position: the
    first 90% of its characters train, the next 5% validate, the last 5% test.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus {path} does not exist")
    if path.is_file():
        text = read_text(path)
        if not text.strip():
            raise CorpusError(f"corpus file {path} is empty")
        if split_file:
            raise CorpusError(f"a split file applies to a corpus folder; {path} is one file "
                              "(split by position: 90% train, 5% valid, 5% test)")
        a, b = int(len(text) * 0.90), int(len(text) * 0.95)
        return _corpus({"train": [(path.name, text[:a])], "valid": [(path.name, text[a:b])],
                        "test": [(path.name, text[b:])]}, None,
                        f"one file split by position (90% train, 5% valid, 5% test): {path.name}")
    files = sorted(p.name for p in path.glob("*.txt"))
    if not files:
        raise CorpusError(f"corpus folder {path} holds no .txt files")
    if split_file:
        split_path = Path(split_file)
        if not split_path.is_file():
            raise CorpusError(f"split file {split_path} does not exist")
    else:
        split_path = path / "SPLITS.json"
    if split_path.is_file():
        try:
            spec = json.loads(split_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CorpusError(f"split file {split_path} is not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise CorpusError(f"split file {split_path} must be a JSON object")
        source = f"split file {split_path}"
    else:
        spec = {"valid": files[-2:-1], "test": files[-1:], "train": "rest"}
        source = (f"no split file (none named, no SPLITS.json in {path}): the last file by name tests, "
                  "the one before it validates, the rest train")
        split_path = None
    names: dict[str, list[str]] = {}
    for s in ("valid", "test"):
        v = spec.get(s, [])
        if not isinstance(v, list):
            raise CorpusError(f"split file: '{s}' must be a list of file names")
        names[s] = v
    taken = set(names["valid"]) | set(names["test"])
    tr = spec.get("train", "rest")
    names["train"] = tr if isinstance(tr, list) else [f for f in files if f not in taken]
    for s in SPLITS:
        for f in names[s]:
            if f not in files:
                raise CorpusError(f"split file {split_path} names {f!r} in '{s}', but {path} has no such file")
        if not names[s]:
            raise CorpusError(f"split '{s}' is empty")
    out = {s: [(f, read_text(path / f)) for f in names[s]] for s in SPLITS}
    if not any(t.strip() for _, t in out["train"]):
        raise CorpusError(f"the training files in {path} are empty")
    return _corpus(out, split_path, source)


def encode_texts(tokenizer, texts) -> torch.Tensor:
    """Token ids of several texts as one 1-D stream, each text followed by the boundary token."""
    ids: list[int] = []
    for _, t in texts:
        ids.extend(tokenizer.encode(t))
        ids.append(tokenizer.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch: int) -> torch.Tensor:
    """[N] -> [batch, N // batch]: each row a contiguous stretch of text (the state carries along a row)."""
    n = stream.numel() // batch
    if n < 2:
        raise CorpusError(f"{stream.numel()} tokens are too few for batches of {batch} rows")
    return stream[: n * batch].view(batch, n)


def bptt_windows(data: torch.Tensor, bptt: int):
    """Yield (start, inputs [B, T], targets [B, T]) windows for truncated BPTT."""
    n = data.size(1)
    for i in range(0, n - 1, bptt):
        T = min(bptt, n - 1 - i)
        yield i, data[:, i:i + T], data[:, i + 1:i + 1 + T]


__all__ = ["Corpus", "read_corpus", "encode_texts", "batchify", "bptt_windows", "EOS"]
