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
    `split_file` (the split file read, or None), `source` (a sentence for people) and `by_position`
    (one file split by position: its splits share a file name, not text)."""
    split_file: str | None = None
    source: str = ""
    by_position: bool = False

    def files(self) -> dict[str, list[str]]:
        return {s: [n for n, _ in self[s]] for s in SPLITS}


def _corpus(parts: dict, split_file, source: str, by_position: bool = False) -> Corpus:
    c = Corpus(parts)
    c.split_file = None if split_file is None else str(split_file)
    c.source = source
    c.by_position = by_position
    return c


#: pytorch/examples' word_language_model layout (data.Corpus): a folder of these three files.
NAMED = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}

#: The ways to split a folder, for the refusal of a folder that has none.
HOW_TO_SPLIT = ("add a SPLITS.json (\"valid\" and \"test\" list file names, \"train\" a list or every other "
                "file), name the files train.txt, valid.txt and test.txt (pytorch/examples' layout), or pass "
                "--valid-files A.txt --test-files B.txt (the other .txt files train; --train-files to name them)")


#: The help of the --train-files / --valid-files / --test-files flags (train, eval, ngram, probe).
SPLIT_FILES_HELP = {
    "train": "comma-separated .txt files of the corpus folder that train (default: every file not named "
             "by --valid-files or --test-files)",
    "valid": "comma-separated .txt files of the corpus folder that validate (with --test-files: split a folder "
             "that has no SPLITS.json and no train.txt / valid.txt / test.txt)",
    "test": "comma-separated .txt files of the corpus folder that test (with --valid-files)",
}


def split_spec(train=None, valid=None, test=None) -> dict | None:
    """The `files` argument of read_corpus from the --train-files / --valid-files / --test-files flags
    (comma-separated file names, or lists); None when none is given."""
    given = {s: v for s, v in (("train", train), ("valid", valid), ("test", test)) if v}
    return given or None


def _names(v, flag: str) -> list[str]:
    names = [n.strip() for n in v.split(",")] if isinstance(v, str) else [str(n) for n in v]
    if not names or not all(names):
        raise CorpusError(f"{flag} names an empty file name: {v!r}")
    return names


def read_corpus(path, split_file=None, need=SPLITS, *, files=None, unsplit: str = "refuse") -> Corpus:
    """Return {"train"|"valid"|"test": [(file name, text), ...]} (a `Corpus`, which also says where
    its split came from).

    A folder is split, in this order, by
      * a split file (`split_file`) in the format of ../shared/data/fiction/SPLITS.json: "valid" and
        "test" list file names and "train" is a list or "every other .txt file in this folder";
      * `files`: {"valid": names, "test": names, "train": names (default: every other .txt file)},
        names as lists or comma-separated (the --valid-files / --test-files / --train-files flags);
      * SPLITS.json inside the folder;
      * the names train.txt, valid.txt and test.txt (pytorch/examples' data.Corpus layout; other .txt
        files are not read, and `source` says so);
      * a folder of one .txt file: that file, split by position as below.
    A folder with none of these is refused (CorpusError naming the ways to split it): guessing would
    evaluate on training text. (`unsplit="last"`: the last file by name tests, the one before it
    validates and the rest train, for readers of held-out books only.) A split file or a name must
    name files the folder has. A single file is split by position: the first 90% of its characters
    train, the next 5% validate, the last 5% test (`by_position`). `Corpus.source` says which rule split it.

    `need`: the splits that must not be empty (a reader of held-out text needs no training files:
    corpora/heldout holds two test books and nothing else).
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus {path} does not exist")
    if path.is_dir() and not split_file and not files and not (path / "SPLITS.json").is_file() \
            and not any((path / n).is_file() for n in NAMED.values()):
        txts = sorted(path.glob("*.txt"))
        if len(txts) == 1:                  # one text (Shakespeare): split by position, as in training
            path = txts[0]
    if path.is_file():
        text = read_text(path)
        if not text.strip():
            raise CorpusError(f"corpus file {path} is empty")
        if split_file or files:
            raise CorpusError(f"a split file or --valid-files / --test-files apply to a corpus folder; {path} is "
                              "one file (split by position: 90% train, 5% valid, 5% test)")
        a, b = int(len(text) * 0.90), int(len(text) * 0.95)
        return _corpus({"train": [(path.name, text[:a])], "valid": [(path.name, text[a:b])],
                        "test": [(path.name, text[b:])]}, None,
                       f"one file split by position (90% train, 5% valid, 5% test): {path.name}", True)
    files_here = sorted(p.name for p in path.glob("*.txt"))
    if not files_here:
        raise CorpusError(f"corpus folder {path} holds no .txt files")
    if split_file and files:
        raise CorpusError("give a split file or --valid-files / --test-files, not both")
    split_path = None
    if split_file:
        split_path = Path(split_file)
        if not split_path.is_file():
            raise CorpusError(f"split file {split_path} does not exist")
    elif not files and (path / "SPLITS.json").is_file():
        split_path = path / "SPLITS.json"
    where = "split file {split_path}"
    if split_path is not None:
        try:
            spec = json.loads(split_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise CorpusError(f"split file {split_path} is not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise CorpusError(f"split file {split_path} must be a JSON object")
        source = f"split file {split_path}"
    elif files:
        spec = {s: _names(v, f"--{s}-files") for s, v in files.items() if v}
        for s in ("valid", "test"):
            if s in need and s not in spec:
                raise CorpusError(f"--valid-files and --test-files split a folder together; --{s}-files is missing")
        named = [n for s in SPLITS for n in spec.get(s, [])]
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise CorpusError(f"{', '.join(twice)} is named in more than one of --train-files, --valid-files and "
                              "--test-files: name each file in one split (held-out text must not be training text)")
        where = "--{s}-files"
        source = "files named by --train-files / --valid-files / --test-files" if "train" in spec else \
            "files named by --valid-files / --test-files (every other .txt file trains)"
    elif any(n in files_here for n in NAMED.values()):
        spec = {s: [n] if n in files_here else [] for s, n in NAMED.items()}
        for s in need:
            if not spec[s]:
                raise CorpusError(f"{path} has {', '.join(n for n in NAMED.values() if n in files_here)} but no "
                                  f"{NAMED[s]} (pytorch/examples' layout: train.txt, valid.txt and test.txt)")
        other = [f for f in files_here if f not in NAMED.values()]
        source = ("split by name: train.txt, valid.txt, test.txt (pytorch/examples' layout)"
                  + (f"; {len(other)} other .txt file(s) not read: {', '.join(other[:5])}" if other else ""))
        where = "the file names"
    elif unsplit == "last":
        spec = {"valid": files_here[-2:-1], "test": files_here[-1:], "train": "rest"}
        source = (f"no split file (none named, no SPLITS.json in {path}): the last file by name tests, "
                  "the one before it validates, the rest train")
    else:
        raise CorpusError(f"corpus folder {path} has {len(files_here)} .txt files and no split: {HOW_TO_SPLIT}")
    names: dict[str, list[str]] = {}
    for s in ("valid", "test"):
        v = spec.get(s, [])
        if not isinstance(v, list):
            raise CorpusError(f"split file: '{s}' must be a list of file names")
        names[s] = v
    taken = set(names["valid"]) | set(names["test"])
    tr = spec.get("train", "rest")
    names["train"] = tr if isinstance(tr, list) else [f for f in files_here if f not in taken]
    for s in SPLITS:
        for f in names[s]:
            if f not in files_here:
                raise CorpusError(f"{where.format(split_path=split_path, s=s)} names {f!r} in '{s}', "
                                  f"but {path} has no such file")
        if not names[s] and s in need:
            raise CorpusError(f"split '{s}' is empty")
    out = {s: [(f, read_text(path / f)) for f in names[s]] for s in SPLITS}
    if "train" in need and not any(t.strip() for _, t in out["train"]):
        raise CorpusError(f"the training files in {path} are empty")
    return _corpus(out, split_path, source)


def card_training_files(card) -> list[str] | None:
    """The file names a bundle's card lists as its training text (card["training"]["split"]["train"]),
    or None where it lists none (an imported model, a model built in code)."""
    split = ((card or {}).get("training") or {}).get("split") or {}
    train = split.get("train") if isinstance(split, dict) else None
    return [str(n) for n in train] if isinstance(train, list) and train else None


def check_held_out(card, corpus: Corpus, splits, allow: bool = False) -> dict:
    """Refuse to read training text as held-out text: CorpusError when a file of `splits` of `corpus`
    is one the model's `card` lists as training text (by file name), unless `allow`. A file split by
    position is held out where the card's own split was by position too (its train and held-out
    lists name the same file: the model read its first 90% only). Returns what to record in an
    output: {"allow_training_text", "training_text_read" (the files read anyway), "training_text_check"
    (a sentence)}."""
    train = card_training_files(card)
    read = [n for s in splits for n, _ in corpus[s]]
    if train is None:
        return {"allow_training_text": bool(allow), "training_text_read": [],
                "training_text_check": "not checked: the model's card names no training files"}
    split = card["training"]["split"]
    held_in_card = {n for s in ("valid", "test") for n in (split.get(s) or [])}
    overlap = sorted({n for n in read if n in train and not (corpus.by_position and n in held_in_card)})
    if overlap and not allow:
        where = ", ".join(s for s in splits if any(n in overlap for n, _ in corpus[s]))
        raise CorpusError(f"{', '.join(overlap)} ({where}) is training text of this model (its card.json lists it "
                          f"in training.split.train), not held-out text; split the corpus so that valid and test "
                          f"hold other files, or pass --allow-training-text to read it anyway")
    if overlap:
        said = (f"--allow-training-text: {', '.join(overlap)} read as held-out text although the card lists it "
                "as training text")
    else:
        same = sorted({n for n in read if n in train})
        said = (f"the card's {len(train)} training file(s): none is read as held-out text"
                + (f" ({', '.join(same)}: split by position, as in training)" if same else ""))
    return {"allow_training_text": bool(allow), "training_text_read": overlap, "training_text_check": said}


def split_books(path, split: str, split_file=None) -> list[tuple[str, str]]:
    """The books [(file name, text), ...] of one split, for readers of held-out text (compare):
    split as read_corpus splits them, except that the other splits may be empty, and a folder of
    held-out books with no split (corpora/heldout) is split by name: its last file tests, the one
    before it validates (read_corpus's unsplit="last")."""
    if split not in SPLITS:
        raise CorpusError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return read_corpus(path, split_file, need=(split,), unsplit="last")[split]


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


__all__ = ["Corpus", "read_corpus", "split_spec", "check_held_out", "card_training_files", "split_books",
           "encode_texts", "batchify", "bptt_windows", "EOS"]
