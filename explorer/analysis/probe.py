"""Probes with control tasks: does a layer encode a property of the text, better than chance explains?

Linear diagnostic classifiers (Hupkes et al. 2018; Giulianelli et al. 2018) read one layer's h or c
after each token and predict a label that comes from the text itself. A probe's accuracy alone says
little: a classifier over 384 numbers can often learn the answer from which word was just read.
Hewitt & Liang (2019, "Designing and Interpreting Probes with Control Tasks") give each word type
a random label instead, fixed per type and drawn from the task's own label frequencies; the same
probe is trained on that control task. Selectivity = task accuracy − control accuracy. A probe
that does as well on the control as on the task says nothing about the layer.

Data: the probe is fitted on the states of the model reading the corpus's validation books and
scored on its test books, split as training splits a corpus (explorer.training.data.read_corpus:
SPLITS.json, pytorch/examples' train.txt / valid.txt / test.txt, files named by the caller, or one
text file split by position). Both must be held out from the model's training: a book the model's
card lists as training text is refused unless `allow_training_text` (check_held_out). The books are
traced directly with the engine's layer runner (`explorer.engine.run_layers`), the state carried from
chunk to chunk.

Tasks (labels for the state after reading token t), read as the text means them
(explorer.corpus.labels): a paragraph is a blank line, which is every <eos> only where <eos> marks a
paragraph end (the model's eos_means: "paragraph" for this project's word and char tokenizers,
"line" for pytorch/examples' whitespace split of hard-wrapped text, unless its card says otherwise).
  quote     inside a quotation. “ opens, ” closes, a straight " toggles; a paragraph break ends it
            (fiction opens every quoted paragraph again).
  gender    the gender of the most recent gendered word so far: none / female / male, from
            GENDER_WORDS below (word models).
  distance  tokens since the last sentence end (. ! ? or a paragraph break), bucketed.
  line      (character models) characters since the last line end, bucketed.
The report gives each split's label counts and warns (`warnings`, and a Python UserWarning) where the
labels look implausible (see labels.paragraph_warnings).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..trace import significant
from ..corpus import labels as LB
from ..engine import layer_index, run_layers, torch_threads
from ..errors import InputError

TASKS = ("quote", "gender", "distance", "line")
DESCRIPTIONS = {
    "quote": "inside a quotation",
    "gender": "gender of the most recent gendered word",
    "distance": "distance since the last sentence end",
    "line": "position in the line",
}

#: The documented word lists of the gender task (lower-case vocabulary forms).
GENDER_WORDS = {
    "female": ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "lady", "ladies", "mother",
               "daughter", "daughters", "sister", "sisters", "wife", "aunt", "niece", "miss", "mrs", "madam",
               "ma'am", "queen", "princess", "mistress", "widow", "bride", "grandmother", "mamma", "heroine"),
    "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "gentleman", "gentlemen", "father",
             "son", "sons", "brother", "brothers", "husband", "uncle", "nephew", "sir", "mr", "lord", "king",
             "prince", "master", "widower", "bridegroom", "grandfather", "papa", "hero"),
}
SENTENCE_END = LB.SENTENCE_END
WORD_BUCKETS = (1, 3, 6, 11, 21)            # 0 | 1-2 | 3-5 | 6-10 | 11-20 | 21+
CHAR_BUCKETS = (1, 6, 16, 41, 81)           # 0 | 1-5 | 6-15 | 16-40 | 41-80 | 81+
LINE_BUCKETS = (5, 10, 20, 30, 40)          # 0-4 | 5-9 | 10-19 | 20-29 | 30-39 | 40+


def _bucket_names(edges) -> list[str]:
    out, lo = [], 0
    for e in edges:
        out.append(f"{lo}" if e - lo == 1 else f"{lo}-{e - 1}")
        lo = e
    return out + [f"{lo}+"]


def is_char_model(model) -> bool:
    return type(model.tokenizer).__name__ == "CharTokenizer"


#: Why a model other than a character model has no `line` task, by tokenizer kind.
NO_LINE_TASK = {
    "word": "the word tokenizer drops single line ends (only a blank line becomes <eos>) and its tokens are "
            "words, so it cannot count characters along a line",
    "whitespace": "the whitespace tokenizer keeps every line end (as <eos>), but its tokens are whole words, "
                  "so it cannot count characters along a line",
}


def _texts(tokens) -> list[str]:
    return [LB.EOS if t.special else t.text for t in tokens]


def _breaks(tokens, eos_means: str):
    """labels.paragraph_breaks of `tokens`, a file's start included: the boundary <eos> read before a
    file (trace's and the index's position 0) is the one token with an empty span."""
    starts = [t.special and getattr(t, "start", 1) == getattr(t, "end", 0) for t in tokens]
    return LB.paragraph_breaks(_texts(tokens), eos_means, starts)


def task_labels(task: str, tokens, char: bool = False, *, eos_means: str = "paragraph",
                kind: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Labels [tokens] (int) and their names, for `tokens` (explorer Tokens, or anything with
    .text, .norm, .special) read in order. `eos_means`: what <eos> marks in the text ("paragraph" or
    "line", explorer.tokenizer.eos_means); `kind`: the tokenizer's kind (for the words of a refusal)."""
    n = len(tokens)
    y = np.zeros(n, np.int64)
    if task in ("quote", "distance"):
        texts, breaks = _texts(tokens), _breaks(tokens, eos_means)
    if task == "quote":
        y[:] = LB.quote_labels(texts, breaks)[0]
        return y, ["outside", "inside"]
    if task == "gender":
        if char:
            raise InputError("the gender task needs a word model (its labels come from whole words)")
        fem, mal = set(GENDER_WORDS["female"]), set(GENDER_WORDS["male"])
        cur = 0
        for j, t in enumerate(tokens):
            w = LB.word_of(t.norm)
            cur = 1 if w in fem else 2 if w in mal else cur
            y[j] = cur
        return y, ["none", "female", "male"]
    if task == "distance":
        edges = CHAR_BUCKETS if char else WORD_BUCKETS
        d = 0
        for j, t in enumerate(texts):
            d = 0 if breaks[j] or LB.is_sentence_end(t) else d + 1
            y[j] = np.searchsorted(edges, d, side="right")
        return y, _bucket_names(edges)
    if task == "line":
        if not char:
            why = NO_LINE_TASK.get(kind, "this model's tokens are not characters")
            raise InputError(f"position in the line needs a character model: {why}")
        d = 0
        for j, t in enumerate(tokens):
            d = 0 if (t.special or t.text == "\n") else d + 1
            y[j] = np.searchsorted(LINE_BUCKETS, d, side="right")
        return y, _bucket_names(LINE_BUCKETS)
    raise InputError(f"task must be one of {', '.join(TASKS)}, not {task!r}")


def control_labels(ids: np.ndarray, train_labels: np.ndarray, n_labels: int, vocab_size: int,
                   seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task: one random label per word type, drawn from the task's label
    frequencies on the training tokens, the same table for training and test tokens."""
    freq = np.bincount(train_labels, minlength=n_labels).astype(np.float64)
    freq /= freq.sum()
    table = np.random.default_rng(seed).choice(n_labels, size=vocab_size, p=freq)
    return table[np.asarray(ids)]


@torch.no_grad()
def states(model, ids: Sequence[int], chunk: int = 512, threads: int | None = 1) -> dict[tuple[int, str], np.ndarray]:
    """{(layer, quantity): [tokens, units]} for h (and c) of every layer (1 = the bottom layer) while
    reading `ids` in order, the state carried from chunk to chunk (so a long book reads as one text)."""
    lm = model.lm
    qs = ("h", "c") if model.config.cell == "lstm" else ("h",)
    parts: dict = {(l, q): [] for l in range(1, model.config.layers + 1) for q in qs}
    state = None
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    with torch_threads(threads):          # a per-step loop: one thread unless told (engine.torch_threads)
        for s in range(0, len(ids), chunk):
            layers, _, state = run_layers(lm, ids[s:s + chunk], state)
            for l, v in enumerate(layers, start=1):
                for q in qs:
                    parts[(l, q)].append(v[q])
    return {k: np.concatenate(v) for k, v in parts.items()}


def corpus_tokens(model, books, max_tokens: int):
    """Tokens of a split's books [(name, text), ...], in order, up to max_tokens (each book's first
    part, so every book of the split is represented), and the book names."""
    per = max(1, max_tokens // len(books))
    toks, names = [], []
    for name, text in books:
        t = model.tokenizer.tokenize(text[: per * 12])   # enough characters for `per` tokens
        toks.extend(t[:per])
        names.append(name)
    return toks, names


@dataclass(frozen=True)
class ProbeScore:
    layer: int                         # 1 = the bottom layer
    quantity: str
    accuracy: float
    control_accuracy: float
    majority: float
    control_majority: float

    @property
    def selectivity(self) -> float:
        return self.accuracy - self.control_accuracy

    @property
    def verdict(self) -> str:
        if self.accuracy <= self.majority + 0.01:
            return "no better than always answering the most common label"
        if self.selectivity < 0.05:
            return "says nothing: the probe learns the random control labels as well as the task"
        return "selective: the layer encodes more than which word was just read"


@dataclass(frozen=True)
class ProbeReport:
    """Scores of one task for every layer and quantity, with the fitted probes (for readouts)."""
    task: str
    label_names: tuple[str, ...]
    model: str
    train_books: tuple[str, ...]
    test_books: tuple[str, ...]
    n_train: int
    n_test: int
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]
    scores: tuple[ProbeScore, ...]
    probes: dict = field(default_factory=dict, repr=False, compare=False)   # (layer from 1, quantity) -> fitted pipeline
    eos_means: str = "paragraph"       # what <eos> marked when the labels were read (labels.paragraph_breaks)
    warnings: tuple[str, ...] = ()     # where the labels look implausible (labels.paragraph_warnings)
    held_out: dict = field(default_factory=dict)   # the split and the training-text check (probe())

    @property
    def counts(self) -> dict:
        """{"train"|"test": {label: tokens, ..., "unlabelled": 0}}: the label counts of each split."""
        return {s: {**dict(zip(self.label_names, c)), "unlabelled": 0}
                for s, c in (("train", self.train_counts), ("test", self.test_counts))}

    def frame(self):
        import pandas as pd
        return pd.DataFrame([{"layer": s.layer, "quantity": s.quantity, "accuracy": s.accuracy,
                              "control": s.control_accuracy, "selectivity": s.selectivity,
                              "majority": s.majority, "verdict": s.verdict} for s in self.scores])

    def best(self) -> ProbeScore:
        return max(self.scores, key=lambda s: s.selectivity)

    def to_json(self) -> dict:
        r = lambda v: significant(v, 6)
        return {"task": self.task, "description": DESCRIPTIONS[self.task], "labels": list(self.label_names),
                "model": self.model, "train_books": list(self.train_books), "test_books": list(self.test_books),
                "n_train": self.n_train, "n_test": self.n_test,
                "train_counts": dict(zip(self.label_names, self.train_counts)),
                "test_counts": dict(zip(self.label_names, self.test_counts)),
                "label_counts": self.counts, "eos_means": self.eos_means, "warnings": list(self.warnings),
                **self.held_out,
                "scores": [{"layer": s.layer, "quantity": s.quantity, "accuracy": r(s.accuracy),
                            "control_accuracy": r(s.control_accuracy), "selectivity": r(s.selectivity),
                            "majority": r(s.majority), "control_majority": r(s.control_majority),
                            "verdict": s.verdict} for s in self.scores]}


#: Logistic regression on standardised states; C=0.1 (mild L2) because 384 features fit a few
#: thousand tokens perfectly otherwise. Capped at MAX_ITER (a control task may not converge: its
#: labels are random, and the cap is the same for task and control).
C = 0.1
MAX_ITER = 200


def _fit(X, y, seed: int):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, C=C, tol=1e-3, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y)


def probe_tokens(model, task: str, train_tokens, test_tokens, *, train_books=(), test_books=(),
                 seed: int = 0, progress=None, states_=None, held_out=None) -> ProbeReport:
    """Fit and score the task's probes and their control probes on already chosen token lists
    (`states_`: their states, (train, test) dicts as `states` returns, when already read). The labels
    read <eos> as the model's card says (explorer.tokenizer.eos_means); implausible labels warn."""
    from ..tokenizer import eos_means as eos_of
    char = is_char_model(model)
    eos = eos_of(model)
    kind = getattr(model.tokenizer, "kind", None)
    y_tr, names = task_labels(task, train_tokens, char, eos_means=eos, kind=kind)
    y_te, _ = task_labels(task, test_tokens, char, eos_means=eos, kind=kind)
    notes = []
    if task in ("quote", "distance"):         # the tasks whose labels end at a paragraph
        for toks in (train_tokens, test_tokens):
            notes += [w for w in LB.paragraph_warnings(_texts(toks), _breaks(toks, eos), eos) if w not in notes]
    LB.emit(notes)
    if len(np.unique(y_tr)) < 2:
        raise InputError(f"the training text has only one label ({names[int(y_tr[0])]}) for the {task} task")
    ids_tr = np.array([t.id for t in train_tokens])
    ids_te = np.array([t.id for t in test_tokens])
    V = model.config.vocab_size
    ctl = control_labels(np.concatenate([ids_tr, ids_te]), y_tr, len(names), V, seed)
    c_tr, c_te = ctl[:len(ids_tr)], ctl[len(ids_tr):]
    S_tr, S_te = states_ if states_ is not None else (states(model, ids_tr), states(model, ids_te))
    maj = float(np.mean(y_te == np.bincount(y_tr).argmax()))
    cmaj = float(np.mean(c_te == np.bincount(c_tr).argmax()))
    scores, probes = [], {}
    keys = sorted(S_tr)
    for n, key in enumerate(keys):
        if progress:
            progress(n / len(keys), f"layer {key[0]} {key[1]}")
        clf = _fit(S_tr[key], y_tr, seed)
        acc = float(np.mean(clf.predict(S_te[key]) == y_te))
        if len(np.unique(c_tr)) > 1:
            cacc = float(np.mean(_fit(S_tr[key], c_tr, seed).predict(S_te[key]) == c_te))
        else:
            cacc = float(np.mean(c_te == c_tr[0]))
        scores.append(ProbeScore(key[0], key[1], acc, cacc, maj, cmaj))
        probes[key] = clf
    if progress:
        progress(1.0, "done")
    return ProbeReport(task, tuple(names), model.name, tuple(train_books), tuple(test_books), len(ids_tr),
                       len(ids_te), tuple(int(v) for v in np.bincount(y_tr, minlength=len(names))),
                       tuple(int(v) for v in np.bincount(y_te, minlength=len(names))), tuple(scores), probes,
                       eos, tuple(notes), dict(held_out or {}))


@dataclass(frozen=True)
class _Tok:
    """A token read back from a corpus index's token table."""
    text: str
    norm: str
    id: int
    special: bool
    start: int = 0                     # the character span in the file ([0, 0) for the boundary <eos>)
    end: int = 0


def _index_for(model, corpus, index):
    """The corpus index to read states from: `index` (a path) when given, else the app's cached
    index for this model and corpus when one has been built (explorer.corpus.index), else None."""
    from ..corpus.index import index_dir_for, open_index
    if index is not None:
        return open_index(index, model)
    try:
        d = index_dir_for(model, corpus)
    except Exception:              # noqa: BLE001 - no usable cached index: trace the corpus instead
        return None
    return open_index(d, model) if (d / "card.json").is_file() else None


def _index_split(model, idx, books, max_tokens: int):
    """Tokens and states of a split's books (their names) from an index, or None when the index lacks a book."""
    files = {Path(f["path"]).name: f for f in idx.files}
    if not all(b in files for b in books):
        return None
    per = max(1, max_tokens // len(books))
    table = idx.tokens
    itos = model.tokenizer.itos
    toks, S = [], {}
    for b in books:
        f = files[b]
        a, n = f["row_start"], min(per, f["tokens"])
        rows = table.iloc[a:a + n]
        toks += [_Tok(t, itos[i], int(i), t == "<eos>", int(a), int(e))
                 for t, i, a, e in zip(rows["text"], rows["id"], rows["start"], rows["end"])]
        for l in idx.layers:
            for q in idx.quantities:
                if q in ("h", "c"):
                    S.setdefault((l, q), []).append(idx.rows(l, q, a, a + n))
    return toks, {k: np.concatenate(v) for k, v in S.items()}, books


def probe(model, corpus, task: str, *, max_train: int = 10_000, max_test: int = 5_000, seed: int = 0,
          index=None, progress=None, split_file=None, files=None, allow_training_text: bool = False) -> ProbeReport:
    """Fit on the validation books, score on the test books (see the module docstring). The corpus is
    split as read_corpus splits it (`split_file`, `files`: {"valid": [...], "test": [...]}); a book the
    model's card lists as training text is refused (CorpusError) unless `allow_training_text`. States
    come from a corpus index when one exists for this model and corpus (`index`, or the app's
    cache), else the books are traced here."""
    from ..training.data import check_held_out, read_corpus
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    task_labels(task, [], is_char_model(model), kind=getattr(model.tokenizer, "kind", None))   # fails early
    split = read_corpus(corpus, split_file, need=("valid", "test"), files=files)
    held_out = {"splits": split.files(), "split_source": split.source,
                **check_held_out(model.card, split, ("valid", "test"), allow_training_text)}
    # an index holds whole files: a text split by position is traced here, from its held-out part
    idx = None if split.by_position else _index_for(model, corpus, index)
    if idx is not None:
        got_tr = _index_split(model, idx, [n for n, _ in split["valid"]], max_train)
        got_te = _index_split(model, idx, [n for n, _ in split["test"]], max_test)
        if got_tr is not None and got_te is not None:
            return probe_tokens(model, task, got_tr[0], got_te[0], train_books=got_tr[2], test_books=got_te[2],
                                seed=seed, progress=progress, states_=(got_tr[1], got_te[1]), held_out=held_out)
    tr, trn = corpus_tokens(model, split["valid"], max_train)
    te, ten = corpus_tokens(model, split["test"], max_test)
    return probe_tokens(model, task, tr, te, train_books=trn, test_books=ten, seed=seed, progress=progress,
                        held_out=held_out)


def readout(report: ProbeReport, model, tr, layer: int, quantity: str = "h") -> np.ndarray:
    """[tokens, labels] the probe's label probabilities for each token of a Trace `tr`: what the
    layer (1 = the bottom layer, -1 = the top) 'thinks' the label is, word by word."""
    layer = layer_index(layer, len(tr.layers)) + 1
    clf = report.probes.get((layer, quantity))
    if clf is None:
        raise InputError(f"no probe for layer {layer} {quantity}")
    X = np.asarray(tr.layer(layer)[quantity])
    p = np.zeros((len(X), len(report.label_names)))
    p[:, clf.classes_] = clf.predict_proba(X)
    return p
