"""Many-to-one: a small author classifier on the language model's final hidden state.

The recurrent network reads a passage (after the boundary token <eos>, as everywhere else) and its
final state s_T is fed to a logistic regression P(doyle | passage) = σ(w · (s_T − μ) / σ + b). The
language model is frozen: only w and b are fitted, so whatever the classifier finds was already in
the state the model learnt for predicting the next word.

Which part of the final state (`feature`):
  "state"  the whole final state: h_T of every layer, and for an LSTM c_T of every layer (default);
  "h"      h_T of one layer (`layer`: 1 = the bottom layer, -1 = the top, the default): what the
           decoder sees;
  "c"      c_T of every layer (LSTM only): the long-term memory.
On the fiction LSTM the author is far easier to read from the cell state than from h_T (h is
tuned to the next word, c carries the longer context): see the README's lesson notes.

Labels come from the corpus file names: austen_*.txt -> "austen", holmes_*.txt -> "doyle". Passages
are consecutive windows of `passage_tokens` tokens from the corpus's train split (balanced by
sampling the same number per author); accuracy is measured on the test split.

A trained classifier is a folder with classifier.safetensors (weight, bias, mean, std) and
classifier.json (labels, layer (1 = the bottom; version 1 files counted from 0 and are read as
such), passage length, the model it was fitted on, metrics). Loading
validates both like the model bundle loader: safetensors only (pickles are refused unopened),
shapes, finite values and the model it belongs to.

CLI:  python -m explorer.classify --model pretrained/fiction-lstm --corpus ../shared/data/fiction \
          --out pretrained/fiction-lstm/classifier
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..bundle import check_safetensors_file, read_json_file
from ..engine import LAYER_HELP, layer_flag, layer_index
from ..errors import BundleError, CorpusError
from ..files import atomic_file, write_json

LABELS = ("austen", "doyle")
PREFIXES = {"austen_": 0, "holmes_": 1}
WEIGHTS, META = "classifier.safetensors", "classifier.json"
KIND = "author-classifier"
#: classifier.json's version: 2 numbers "layer" from 1 (the bottom layer); version 1 counted from 0.
VERSION = 2
MAX_JSON_BYTES = 1 << 20


def author_of(file_name: str) -> int | None:
    """0 for austen_*, 1 for holmes_* (Doyle), None for any other file."""
    for p, y in PREFIXES.items():
        if Path(file_name).name.startswith(p):
            return y
    return None


@dataclass(frozen=True)
class AuthorClassifier:
    weight: torch.Tensor = field(repr=False)     # [H] float64
    bias: float
    mean: torch.Tensor = field(repr=False)       # [H]
    std: torch.Tensor = field(repr=False)        # [H]
    meta: dict = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta.get("labels", LABELS))

    @property
    def layer(self) -> int:
        """The layer of feature "h": 1 = the bottom layer (-1 = the top when the meta names none)."""
        return int(self.meta.get("layer", -1))

    @property
    def feature(self) -> str:
        return str(self.meta.get("feature", "h"))

    def prob_second(self, feats: torch.Tensor) -> torch.Tensor:
        """P(labels[1]) for features [N, D]."""
        z = ((feats.double() - self.mean) / self.std) @ self.weight + self.bias
        return torch.sigmoid(z)


# ---------------------------------------------------------------------------------------------- data

def passages(tokenizer, files, passage_tokens: int = 30) -> tuple[list[list[int]], list[int]]:
    """Consecutive windows of `passage_tokens` token ids from each labelled file, with labels."""
    xs, ys = [], []
    for name, text in files:
        y = author_of(name)
        if y is None:
            continue
        ids = tokenizer.encode(text)
        for s in range(0, len(ids) - passage_tokens + 1, passage_tokens):
            xs.append(ids[s:s + passage_tokens])
            ys.append(y)
    return xs, ys


def _balance(xs, ys, per_class: int | None, rng: np.random.Generator):
    ys = np.asarray(ys)
    counts = [int((ys == c).sum()) for c in range(len(LABELS))]
    if min(counts) == 0:
        missing = [LABELS[c] for c in range(len(LABELS)) if counts[c] == 0]
        raise CorpusError(f"no passages by {', '.join(missing)} (files must start with "
                          f"{' or '.join(PREFIXES)})")
    n = min(counts) if per_class is None else min(min(counts), per_class)
    keep = np.concatenate([rng.choice(np.nonzero(ys == c)[0], n, replace=False) for c in range(len(LABELS))])
    keep.sort()
    return [xs[i] for i in keep], ys[keep]


FEATURES = ("state", "h", "c")


def feature_size(cell: str, hidden_size: int, layers: int, feature: str) -> int:
    if feature == "h":
        return hidden_size
    if feature == "c":
        if cell != "lstm":
            raise ValueError(f"feature 'c' needs an LSTM, not a {cell.upper()}")
        return hidden_size * layers
    if feature == "state":
        return hidden_size * layers * (2 if cell == "lstm" else 1)
    raise ValueError(f"feature must be one of {FEATURES}, not {feature!r}")


@torch.no_grad()
def final_states(model, id_lists, layer: int = -1, batch_size: int = 256, feature: str = "h") -> torch.Tensor:
    """The final state after reading <eos> + each id list: [N, D] float32 (see the module doc for
    `feature`; "h" gives h_T of `layer`, 1 = the bottom layer, -1 = the top). Lists of equal length
    run as one batch."""
    lm = model.lm
    cfg = lm.config
    L = cfg.layers
    index = layer_index(layer, L)
    D = feature_size(cfg.cell, cfg.hidden_size, L, feature)
    out = torch.empty(len(id_lists), D)
    by_len: dict[int, list[int]] = {}
    for j, ids in enumerate(id_lists):
        by_len.setdefault(len(ids), []).append(j)
    eos = model.tokenizer.eos_id
    for n, idx in by_len.items():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            ids = torch.tensor([[eos] + list(id_lists[j]) for j in chunk], dtype=torch.long)
            _, state = lm.rnn(lm.embedding(ids))
            h, c = state if isinstance(state, tuple) else (state, None)      # [L, B, H]
            if feature == "h":
                f = h[index]
            else:
                parts = ([] if feature == "c" else list(h)) + ([] if c is None else list(c))
                f = torch.cat(parts, 1)
            out[chunk] = f
    return out


def text_features(model, texts, layer: int = -1, feature: str = "h") -> torch.Tensor:
    """final_states of each text (`layer`: 1 = the bottom layer, -1 = the top)."""
    return final_states(model, [model.tokenizer.encode(t) for t in texts], layer, feature=feature)


# ------------------------------------------------------------------------------------------- fitting

def fit_logistic(X: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, max_iter: int = 200):
    """L2-regularised logistic regression on standardised features, fitted with L-BFGS in float64.
    Returns (weight [H], bias, mean [H], std [H]). Local tensors only; the language model is not involved."""
    X = X.double()
    yd = y.double()
    mean = X.mean(0)
    std = X.std(0, unbiased=False).clamp_min(1e-6)
    Z = (X - mean) / std
    w = torch.zeros(Z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Z @ w + b, yd) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), float(b.detach()), mean, std


def _accuracy(clf: AuthorClassifier, X, y) -> dict:
    p = clf.prob_second(X)
    pred = (p >= 0.5).long()
    out = {"accuracy": float((pred == y).double().mean()), "n": int(len(y))}
    for c, name in enumerate(LABELS):
        m = y == c
        out[f"accuracy_{name}"] = float((pred[m] == c).double().mean()) if m.any() else float("nan")
    eps = 1e-12
    pd_ = p.clamp(eps, 1 - eps)
    out["log_loss"] = float(-(y.double() * pd_.log() + (1 - y.double()) * (1 - pd_).log()).mean())
    return out


def train_author_classifier(model, corpus_dir, out_dir=None, *, passage_tokens: int = 30,
                            feature: str = "state", layer: int = -1, max_per_class: int | None = 2000,
                            max_test_per_class: int | None = 1000, l2: float = 1e-2,
                            seed: int = 0, split_file=None) -> AuthorClassifier:
    """Fit the author classifier on the train split of `corpus_dir`, measure it on the test split,
    and (when out_dir is given) save it there. Returns the classifier; metrics are in .meta."""
    from .data import read_corpus
    if passage_tokens < 1:
        raise ValueError("passage_tokens must be at least 1")
    L = model.lm.config.layers
    layer = layer_index(layer, L) + 1          # recorded as a person reads it: 1 = the bottom layer
    cfg = model.lm.config
    dim = feature_size(cfg.cell, cfg.hidden_size, L, feature)
    corpus = read_corpus(corpus_dir, split_file)
    rng = np.random.default_rng(seed)
    xs, ys = passages(model.tokenizer, corpus["train"], passage_tokens)
    xs, ys = _balance(xs, ys, max_per_class, rng)
    xt, yt = passages(model.tokenizer, corpus["test"], passage_tokens)
    xt, yt = _balance(xt, yt, max_test_per_class, rng)
    X, Xt = final_states(model, xs, layer, feature=feature), final_states(model, xt, layer, feature=feature)
    y, ytt = torch.as_tensor(ys, dtype=torch.long), torch.as_tensor(yt, dtype=torch.long)
    w, b, mean, std = fit_logistic(X, y, l2=l2)
    meta = {"kind": KIND, "version": VERSION, "labels": list(LABELS), "feature": feature, "dim": dim,
            "layer": layer, "passage_tokens": passage_tokens, "l2": l2, "seed": seed,
            "model": {"name": model.name, "cell": cfg.cell, "hidden_size": cfg.hidden_size,
                      "layers": cfg.layers, "vocab_size": cfg.vocab_size},
            "corpus": {"path": str(corpus_dir), "train_files": [n for n, _ in corpus["train"] if author_of(n) is not None],
                       "test_files": [n for n, _ in corpus["test"] if author_of(n) is not None]},
            "label_rule": {"austen_*.txt": "austen", "holmes_*.txt": "doyle"}}
    clf = AuthorClassifier(w, b, mean, std, meta)
    meta["metrics"] = {"train": _accuracy(clf, X, y), "test": _accuracy(clf, Xt, ytt)}
    if out_dir is not None:
        save_author_classifier(clf, out_dir)
    return clf


# -------------------------------------------------------------------------------------- save / load

def save_author_classifier(clf: AuthorClassifier, out_dir) -> Path:
    """Write classifier.safetensors and classifier.json into out_dir, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {"weight": clf.weight.double().contiguous(), "bias": torch.tensor([clf.bias], dtype=torch.float64),
               "mean": clf.mean.double().contiguous(), "std": clf.std.double().contiguous()}
    with atomic_file(out / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    write_json(out / META, clf.meta)
    return out


def load_author_classifier(path) -> AuthorClassifier:
    """Load and validate a classifier folder; raise BundleError naming the file that is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"classifier {path} is not a folder (expected {WEIGHTS} and {META})")
    meta = read_json_file(path / META, MAX_JSON_BYTES)
    if meta.get("kind") != KIND:
        raise BundleError(f"{META} is not an author classifier (kind must be {KIND!r})")
    labels = meta.get("labels")
    if not (isinstance(labels, list) and len(labels) == 2 and all(isinstance(s, str) for s in labels)):
        raise BundleError(f"{META}: 'labels' must be a list of two names")
    m = meta.get("model")
    if not isinstance(m, dict) or not all(isinstance(m.get(k), int) and not isinstance(m.get(k), bool)
                                          for k in ("hidden_size", "layers", "vocab_size")):
        raise BundleError(f"{META}: 'model' must give hidden_size, layers and vocab_size as integers")
    if m.get("cell") not in ("lstm", "gru", "rnn"):
        raise BundleError(f"{META}: model.cell must be lstm, gru or rnn")
    layer = meta.get("layer")
    if meta.get("version", 1) == 1 and isinstance(layer, int) and not isinstance(layer, bool):
        meta = {**meta, "version": VERSION, "layer": layer + 1}    # version 1 counted layers from 0
        layer = meta["layer"]
    if not isinstance(layer, int) or isinstance(layer, bool) or not 1 <= layer <= m["layers"]:
        raise BundleError(f"{META}: 'layer' must be an integer from 1 to {m['layers']} ({LAYER_HELP})")
    try:
        D = feature_size(m.get("cell"), m["hidden_size"], m["layers"], meta.get("feature"))
    except ValueError as e:
        raise BundleError(f"{META}: {e}") from None
    wp = path / WEIGHTS
    check_safetensors_file(wp, max_header=1 << 20)
    try:
        t = load_file(str(wp))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{WEIGHTS} is corrupt or not safetensors: {e}") from None
    want = {"weight": (D,), "bias": (1,), "mean": (D,), "std": (D,)}
    if set(t) != set(want):
        raise BundleError(f"{WEIGHTS} must hold exactly {sorted(want)}, not {sorted(t)}")
    for k, shape in want.items():
        if tuple(t[k].shape) != shape:
            raise BundleError(f"{WEIGHTS}: {k} has shape {tuple(t[k].shape)}, expected {shape}")
        if not t[k].is_floating_point() or not torch.isfinite(t[k]).all():
            raise BundleError(f"{WEIGHTS}: {k} must be finite floating-point values")
    if not (t["std"] > 0).all():
        raise BundleError(f"{WEIGHTS}: std must be positive")
    return AuthorClassifier(t["weight"].double(), float(t["bias"][0]), t["mean"].double(),
                            t["std"].double(), meta)


def check_compatible(model, clf: AuthorClassifier) -> None:
    cfg, m = model.lm.config, clf.meta.get("model", {})
    for k in ("cell", "hidden_size", "layers", "vocab_size"):
        if k in m and getattr(cfg, k) != m[k]:
            raise BundleError(f"this classifier was fitted on a model with {k}={m[k]}, "
                              f"not {getattr(cfg, k)}: it does not belong to {model.name}")


def predict(model, clf: AuthorClassifier, text: str) -> dict[str, float]:
    """{"austen": p, "doyle": p} for a text read (after <eos>) by `model`."""
    return predict_batch(model, clf, [text])[0]


def predict_batch(model, clf: AuthorClassifier, texts) -> list[dict[str, float]]:
    check_compatible(model, clf)
    if not texts:
        return []
    p1 = clf.prob_second(text_features(model, texts, clf.layer, clf.feature)).tolist()
    a, b = clf.labels
    return [{a: 1.0 - p, b: p} for p in p1]


# ----------------------------------------------------------------------------------------------- CLI

def _layer_arg(s):
    """--layer: 1 = the bottom layer, a negative layer counts from the top (-1 = the top); 0 is refused."""
    return layer_flag(s, negative=True)


def build_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The classify command's options (python -m explorer classify hands its arguments here)."""
    ap = parser_class(prog="python -m explorer classify", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model bundle folder")
    ap.add_argument("--corpus", required=True, help="corpus folder with SPLITS.json")
    ap.add_argument("--out", required=True, help="folder to write the classifier into")
    ap.add_argument("--passage-tokens", type=int, default=30)
    ap.add_argument("--feature", choices=FEATURES, default="state",
                    help="which part of the final state: all of it, h of --layer, or the cell states")
    ap.add_argument("--layer", type=_layer_arg, default=-1, help="1 = the bottom layer; the layer for "
                    "--feature h (default -1: the top)")
    ap.add_argument("--max-per-class", type=int, default=2000)
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def main(argv=None, parser_class=argparse.ArgumentParser) -> int:
    a = build_parser(parser_class).parse_args(argv)
    from ..bundle import load_model
    from ..errors import ExplorerError
    try:
        m = load_model(a.model)
        clf = train_author_classifier(m, a.corpus, None, passage_tokens=a.passage_tokens,
                                      feature=a.feature, layer=a.layer,
                                      max_per_class=a.max_per_class, l2=a.l2, seed=a.seed)
        import shlex
        clf.meta["command"] = "python -m explorer classify " + shlex.join(sys.argv[1:] if argv is None else argv)
        save_author_classifier(clf, a.out)
    except (ExplorerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": a.out, "metrics": clf.meta["metrics"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
