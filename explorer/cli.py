"""Command line: python -m explorer {trace,score,generate,train,eval,ngram,syneval,classify,import,compare} ...

Every command prints JSON on stdout. A bad argument, a missing model or unusable input prints one
line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import MISSING


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{s} must be at least 1")
    return v


def _layer(s):
    """A layer flag's type (explorer.engine.layer_flag: 1 = the bottom layer, 0 and negatives refused)."""
    from .engine import layer_flag
    return layer_flag(s)


def _nonneg_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{s} is not a finite number")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{s} must be at least 0")
    return v


def _decay(s):
    v = _nonneg_float(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{s} must be at least 1 (1 keeps the learning rate)")
    return v


def _int_between(lo, hi, what=""):
    """An integer type for argparse that must lie in [lo, hi] (hi None: no upper bound)."""
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{what}{s} must be at least {lo}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"{what}{s} must be at most {hi}")
        return v
    return parse


_seed = _int_between(0, 2 ** 64 - 1, "seed ")

#: The argparse types that TrainConfig fields name in their metadata (explorer.training.train._flag), and
#: those of plain int and float fields.
_TRAIN_TYPES = {"positive_int": _positive_int, "nonneg_float": _nonneg_float, "decay": _decay, "seed": _seed,
                "int": int, "float": float}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    for add in (_trace_parser, _score_parser, _generate_parser, _train_parser, _eval_parser, _ngram_parser,
                _syneval_parser, _import_parser, _export_parser, _intervene_parser, _patch_parser, _probe_parser,
                _classify_parser, _compare_parser):
        add(sub)
    from .corpus.commands import add_parsers as corpus_parsers   # index, match, units
    corpus_parsers(sub, _positive_int, _nonneg_float, _layer)
    return p


def _trace_parser(sub) -> None:
    t = sub.add_parser("trace", help="trace a text: tokens, every layer's quantities, top-k next words")
    t.add_argument("--model", required=True)
    t.add_argument("text", nargs="?", help="the text (or give --file)")
    t.add_argument("--file", help="read the text from this file; - reads standard input")
    t.add_argument("--top-k", type=_positive_int, default=5)
    t.add_argument("--no-states", action="store_true", help="omit the per-layer arrays")


def _score_parser(sub) -> None:
    s = sub.add_parser("score", help="log-probability of each line of a file: one JSON line per input "
                                     "line, blank lines included (logprob null); - reads standard input")
    s.add_argument("--model", required=True)
    s.add_argument("file")


def _generate_parser(sub) -> None:
    from .api import MAX_NEW_TOKENS
    g = sub.add_parser("generate", help="sample a continuation of a prompt")
    g.add_argument("--model", required=True)
    g.add_argument("prompt")
    g.add_argument("--n", type=_int_between(1, MAX_NEW_TOKENS), default=20,
                   help=f"tokens to sample, 1 to {MAX_NEW_TOKENS}")
    g.add_argument("--temperature", type=_nonneg_float, default=1.0, help="0: greedy; a finite number")
    g.add_argument("--top-k", type=_int_between(0, None), default=0, help="sample among the k most probable (0: all)")
    g.add_argument("--seed", type=_seed, default=0, help="0 to 2**64 - 1")


def _train_parser(sub) -> None:
    """One flag per TrainConfig field (explorer.training.train): a new field is a new flag."""
    from .training.train import cli_fields
    tr = sub.add_parser("train", help="train a language model and write a bundle")
    for f in cli_fields():
        flag, kw = _train_argument(f)
        tr.add_argument(flag, **kw)


def _train_argument(f) -> tuple[str, dict]:
    """The flag and add_argument keywords of a TrainConfig field: --name-with-dashes unless its metadata
    names the flag; the field's default, or required without one; a bool is a switch away from its
    default; the type the metadata names, else int or float as annotated; help, metavar, choices as given."""
    spec = dict(f.metadata.get("cli") or {})
    flag = spec.pop("flag", "--" + f.name.replace("_", "-"))
    kw = {"dest": f.name, **({"required": True} if f.default is MISSING else {"default": f.default})}
    annotation = f.type if isinstance(f.type, str) else f.type.__name__
    if annotation == "bool":
        kw["action"] = "store_false" if f.default else "store_true"
    elif spec.get("type", annotation) in _TRAIN_TYPES:
        kw["type"] = _TRAIN_TYPES[spec.pop("type", annotation)]
    return flag, kw | spec


def _split_arguments(p, held_out: bool = False) -> None:
    """--split-file, --train-files, --valid-files, --test-files (explorer.training.data.read_corpus), and
    for readers of held-out text --allow-training-text (explorer.training.data.check_held_out)."""
    p.add_argument("--split-file", help="a split file like ../shared/data/fiction/SPLITS.json (default: the "
                   "folder's SPLITS.json, else train.txt / valid.txt / test.txt by name)")
    from .training.data import SPLIT_FILES_HELP
    for s in ("train", "valid", "test"):
        p.add_argument(f"--{s}-files", metavar="A.txt,B.txt", help=SPLIT_FILES_HELP[s])
    if held_out:
        p.add_argument("--allow-training-text", action="store_true",
                       help="read held-out text even where the model's card lists it as training text "
                            "(recorded in the output)")


def _eval_parser(sub) -> None:
    e = sub.add_parser("eval", help="perplexity of a model on a split of a corpus")
    e.add_argument("--model", required=True)
    e.add_argument("--corpus", required=True)
    e.add_argument("--split", choices=["train", "valid", "test"], default="valid")
    _split_arguments(e, held_out=True)


def _ngram_parser(sub) -> None:
    n = sub.add_parser("ngram", help="interpolated Kneser-Ney baseline on a model's vocabulary")
    n.add_argument("--model", required=True, help="bundle whose tokenizer/vocabulary to use")
    n.add_argument("--corpus", required=True)
    _split_arguments(n)
    n.add_argument("--order", type=_positive_int, default=5)
    n.add_argument("--record", action="store_true", help="write the result into the model's card.json")
    n.add_argument("--save", help="also write the fitted model's counts to this .npz (the app's n-gram track)")


def _syneval_parser(sub) -> None:
    y = sub.add_parser("syneval", help="targeted syntactic evaluation (minimal pairs)")
    y.add_argument("--model", required=True)
    y.add_argument("--suite", required=True, help="folder of *.jsonl(.gz) minimal-pair files")
    y.add_argument("--max-items", type=int, default=0, help="per suite file (0: all)")
    y.add_argument("--record", action="store_true", help="write the result into the model's card.json")


def _import_parser(sub) -> None:
    im = sub.add_parser("import", help="make a bundle from a PyTorch state dict (.pt / .safetensors) and a vocabulary")
    im.add_argument("--weights", required=True, help="a plain state dict: torch.save(model.state_dict()) or "
                    "safetensors; or a folder with model.safetensors or pytorch_model.bin, config.json, a vocabulary")
    im.add_argument("--vocab", help="JSON list or {token: id}, or a text file with one token per line "
                    "(default: the --weights folder's vocab.json, vocab.txt or tokenizer.json)")
    im.add_argument("--out", required=True, help="bundle folder to write")
    im.add_argument("--cell", choices=["lstm", "gru", "rnn"], help="check the cell read from the shapes")
    im.add_argument("--nonlinearity", choices=["tanh", "relu"],
                    help="a plain RNN's (pytorch/examples' RNN_TANH / RNN_RELU): needed unless the checkpoint records it")
    im.add_argument("--key", help="the checkpoint entry (or key prefix) of the state dict to import, where it holds "
                    "several, e.g. --key ema")
    im.add_argument("--check", metavar="REF", help="your model's log-probabilities (or logits) on --check-text, "
                    "[tokens, vocabulary] as .npy or safetensors; the import is refused above 1e-4")
    im.add_argument("--check-text", metavar="FILE", help="the UTF-8 text REF was computed on, split by the imported "
                    "tokenizer; REF's rows say whether <eos> was read first (N + 1 rows) or not (N)")
    im.add_argument("--eos-means", choices=["line", "paragraph"],
                    help="what a line end (<eos> of the whitespace split) marks in the training text; "
                    "default: read from --sample-text, else line")
    im.add_argument("--sample-text", metavar="FILE", help="a sample of the training text, to tell --eos-means")
    im.add_argument("--map", action="append", default=[], metavar="OLD=NEW",
                    help="rename keys starting with OLD (repeatable), e.g. --map lstm.=rnn. --map embed.=encoder.")
    im.add_argument("--name", help="the model's name in the app (default: the weights file's name)")
    im.add_argument("--tokenizer", choices=["whitespace", "word", "char"],
                    help="how text is split: whitespace (default; pytorch/examples), word (this project's), char")
    im.add_argument("--chars", action="store_true", help="a character model: VOCAB's characters are the tokens")
    im.add_argument("--unk", help="the vocabulary's token for unknown words, if it is not <unk>")
    im.add_argument("--eos", help="the vocabulary's boundary token, if it is not <eos>")


def _export_parser(sub) -> None:
    ex = sub.add_parser("export", help="write a trace's data (csv/parquet/json) or a figure (png/svg/html) to a file")
    ex.add_argument("--model", required=True)
    ex.add_argument("--text", required=True)
    ex.add_argument("--what", required=True, help="states, predictions or figure:NAME (heatmaps, gates, step, next-words)")
    ex.add_argument("--format", required=True, choices=["csv", "parquet", "json", "png", "svg", "html"])
    ex.add_argument("--out", required=True)
    ex.add_argument("--layer", type=_layer, help="figures: the layer, 1 = the bottom layer (default: the top)")
    ex.add_argument("--position", type=int, help="figures: the selected token row (default: the last)")


def _intervene_parser(sub) -> None:
    iv = sub.add_parser("intervene", help="set, add to or scale units of one layer and read on (Δ log P at every step)")
    iv.add_argument("--model", required=True)
    iv.add_argument("--text", required=True)
    iv.add_argument("--layer", type=_layer, required=True, help="the layer changed, 1 = the bottom layer")
    iv.add_argument("--quantity", required=True, choices=["h", "c", "i", "f", "g", "o"])
    iv.add_argument("--units", required=True, help="comma-separated unit numbers, e.g. 161,40")
    op = iv.add_mutually_exclusive_group(required=True)
    op.add_argument("--set", type=float, help="write this value")
    op.add_argument("--add", type=float, help="add this value")
    op.add_argument("--scale", type=float, help="multiply by this value")
    iv.add_argument("--from", dest="start", type=int, default=0, help="first step (0 = the boundary <eos>)")
    iv.add_argument("--to", dest="stop", type=int, default=None, help="last step, inclusive (default: the end)")
    iv.add_argument("--words", default="miss,ma'am,madam,sir", help="comma-separated words to follow")


def _patch_parser(sub) -> None:
    pa = sub.add_parser("patch", help="causal tracing: restore clean states into a corrupted run, layer x position")
    pa.add_argument("--model", required=True)
    pa.add_argument("--clean", required=True)
    pa.add_argument("--corrupt", required=True)
    pa.add_argument("--target", required=True)
    pa.add_argument("--versus", required=True)
    pa.add_argument("--quantities", default="", help="h,c (default: every state quantity of the model)")


def _probe_parser(sub) -> None:
    pr = sub.add_parser("probe", help="linear probes with a control task on held-out books")
    pr.add_argument("--model", required=True)
    pr.add_argument("--corpus", required=True, help="a corpus folder (with SPLITS.json, or train.txt, valid.txt "
                    "and test.txt) or one text file; fitted on valid, scored on test")
    pr.add_argument("--task", required=True, choices=["quote", "gender", "distance", "line"])
    pr.add_argument("--max-train", type=_positive_int, default=10_000, help="tokens of the validation books")
    pr.add_argument("--max-test", type=_positive_int, default=5_000, help="tokens of the test books")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--index", help="read the states from this corpus index (default: the cached one for "
                    "this model and corpus when built, else trace the books)")
    _split_arguments(pr, held_out=True)


def _compare_parser(sub) -> None:
    from .analysis.compare import MAX_TOKENS
    co = sub.add_parser("compare", help="two checkpoints (or models) on one text: Δ surprisal per token, "
                        "the units that changed most")
    co.add_argument("--model", required=True, action="append", metavar="BUNDLE",
                    help="give it twice: --model A --model B (Δ = B − A)")
    src = co.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the text both models read")
    src.add_argument("--file", help="a UTF-8 text file both models read (- for standard input)")
    src.add_argument("--corpus", help="a corpus folder (or file): read its held-out split, split as eval splits "
                     "it (a folder of held-out books with no split: its last book tests)")
    co.add_argument("--split", choices=["train", "valid", "test"], default="test", help="--corpus: the split read")
    _split_arguments(co, held_out=True)
    co.add_argument("--max-tokens", type=_positive_int, default=MAX_TOKENS,
                    help=f"--corpus: about this many tokens, the first part of each book (default {MAX_TOKENS})")
    co.add_argument("--layer", type=_layer, help="1 = the bottom layer; the layer of the unit summary "
                    "(default: every layer)")
    co.add_argument("--top", type=_positive_int, default=5, help="tokens listed as most worse and most better")
    co.add_argument("--units", type=_positive_int, default=10, help="units listed as changed most")


def _classify_parser(sub) -> None:
    # listed for --help; main() hands its arguments to explorer.training.classify's own parser
    sub.add_parser("classify", add_help=False, help="train the author classifier on a model's final state "
                   "(python -m explorer classify --help for its options)")


def main(argv=None) -> int:
    from .errors import ExplorerError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["classify"]:   # the many-to-one author classifier has its own parser
        from .training.classify import main as classify_main
        return classify_main(argv[1:], parser_class=_Parser)
    args = build_parser().parse_args(argv)
    try:
        out = _run(args, argv)
    except ExplorerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {e.filename}: no such file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    try:
        if out is not None:
            print(json.dumps(out, ensure_ascii=False))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = None
    return 0


def _run(args, argv):
    from . import commands
    return getattr(commands, f"cmd_{args.cmd}")(args, "python -m explorer " + shlex.join(argv))
