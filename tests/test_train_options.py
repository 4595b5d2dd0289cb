"""`python -m explorer train`'s flags are built from TrainConfig's fields: the same flags, defaults,
types, choices and help as when they were spelled out by hand (scripts depend on them)."""
import argparse
import re
import subprocess
import sys
from dataclasses import MISSING, dataclass, field, fields

import pytest

from explorer import cli
from explorer.commands import _train_config
from explorer.training.train import TrainConfig, cli_fields

from conftest import ROOT

SWITCH = "switch"   # a flag without an argument (--dry-run, --untied, ...)

#: The contract, as `train --help` listed it before the flags were built from TrainConfig:
#: (flag, default, type, choices, metavar, help).
TRAIN_FLAGS = [
    ("--corpus", None, None, None, None, "a folder of .txt files or one file"),
    ("--split", None, None, None, None, "split file (default: SPLITS.json in the corpus folder)"),
    ("--out", None, None, None, None, "bundle folder to write"),
    ("--tokenizer", "word", None, ["word", "char"], None, None),
    ("--vocab-size", 10000, "positive_int", None, None, None),
    ("--cell", "lstm", None, ["lstm", "gru", "rnn"], None, None),
    ("--emb-size", 256, "positive_int", None, None, None),
    ("--hidden-size", 256, "positive_int", None, None, None),
    ("--layers", 2, "positive_int", None, None, None),
    ("--dropout", 0.3, "nonneg_float", None, None, None),
    ("--untied", SWITCH, None, None, None, None),
    ("--batch-size", 64, "positive_int", None, None, None),
    ("--bptt", 35, "positive_int", None, None, None),
    ("--lr", 0.002, "nonneg_float", None, None, None),
    ("--clip", 0.5, "nonneg_float", None, None, None),
    ("--epochs", 10, "positive_int", None, None, None),
    ("--patience", 2, "positive_int", None, None, None),
    ("--seed", 1234, "seed", None, None, None),
    ("--threads", 0, "int", None, None, None),
    ("--checkpoint-minutes", 5.0, "nonneg_float", None, None, None),
    ("--max-batches", 0, "int", None, None, None),
    ("--dry-run", SWITCH, None, None, None, "a few batches only (tests, CI)"),
    ("--resume", SWITCH, None, None, None, "continue from OUT.ckpt"),
    ("--resume-lr", 0.0, "nonneg_float", None, "LR",
     "with --resume: continue at this learning rate instead of the checkpoint's"),
    ("--device", "cpu", None, None, None, "cpu or cuda"),
    ("--max-minutes", 0.0, "nonneg_float", None, None, "stop before an epoch that would end past this many minutes"),
    ("--weight-decay", 0.0, "nonneg_float", None, None, None),
    ("--init", None, None, None, None, "fine-tune this bundle (its tokenizer and sizes; the size flags are ignored)"),
    ("--augment", None, None, ["gender-swap", "gender-swap-names", "gender-swap-names-spread"], None,
     "add a copy of the training text with gendered words swapped (counterfactual augmentation); "
     "gender-swap-names also swaps first names and turns 'sir' (an address) into 'miss'; "
     "gender-swap-names-spread turns it into madam, ma'am and miss in turn"),
    ("--lr-decay", 4.0, "decay", None, None,
     "divide the learning rate by this after an epoch without a validation gain (1: keep it)"),
    ("--lr-schedule", "plateau", None, ["plateau", "budget"], None,
     "plateau: divide the rate by --lr-decay after an epoch without a validation gain and stop after --patience "
     "such epochs; budget (with --max-minutes): the rate falls linearly to 0 over the time budget, no early stop, "
     "the run ends when the budget is spent (mid-epoch) and keeps the best epoch's model"),
    ("--focus", None, None, None, "WORDS",
     "'gender' or comma-separated words whose targets weigh --focus-weight in the loss"),
    ("--focus-weight", 1.0, "nonneg_float", None, None, None),
    ("--focus-warm-start", SWITCH, None, None, None,
     "with --init: start the focus words' output bias at log(weight) above the bundle's, the weighted loss's "
     "optimum (a fine-tune with lr 0 then gives back its starting model)"),
    ("--context-focus", None, None, None, "WORDS",
     "'gender-nouns' or comma-separated words: the targets up to --context-window tokens after one weigh "
     "--context-weight in the loss"),
    ("--context-window", 20, "int", None, None, None),
    ("--context-weight", 1.0, "nonneg_float", None, None, None),
    ("--reset-state", 0.0, "nonneg_float", None, "P",
     "zero each row's carried state before a window with probability P (reads from a fresh start)"),
    ("--snapshot-every", 0, "int", None, "N", "also validate and save a bundle OUT.snapshots/eEbB every N batches"),
    ("--train-only", None, None, None, "REGEX",
     "train only the parameters whose names match, e.g. decoder.bias (the others stay frozen)"),
]
TYPES = {"positive_int": cli._positive_int, "nonneg_float": cli._nonneg_float, "decay": cli._decay,
         "seed": cli._seed, "int": int, None: None}


def train_actions() -> dict:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {s: a for a in sub.choices["train"]._actions for s in a.option_strings}


def test_every_field_but_command_is_a_flag_with_the_dataclass_default():
    actions = train_actions()
    assert [f.name for f in fields(TrainConfig) if f not in cli_fields()] == ["command"]
    for f in cli_fields():
        flag = "--untied" if f.name == "tied" else "--" + f.name.replace("_", "-")
        a = actions[flag]
        assert a.dest == f.name
        if f.default is MISSING:
            assert a.required, flag
        else:
            assert a.default == f.default and not a.required, flag


@pytest.mark.parametrize("flag,default,kind,choices,metavar,help", TRAIN_FLAGS, ids=[r[0] for r in TRAIN_FLAGS])
def test_each_flag_keeps_its_default_type_choices_and_help(flag, default, kind, choices, metavar, help):
    a = train_actions()[flag]
    if default is SWITCH:
        assert a.nargs == 0 and a.type is None
    else:
        assert a.default == default and type(a.default) is type(default) and a.type is TYPES[kind]
    assert a.required == (flag in ("--corpus", "--out"))
    assert (a.choices, a.metavar, a.help) == (choices, metavar, help)


def test_train_help_still_lists_every_flag():
    r = subprocess.run([sys.executable, "-m", "explorer", "train", "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", r.stdout))
    assert {row[0] for row in TRAIN_FLAGS} <= listed


def test_parsed_flags_make_the_config():
    p = cli.build_parser()
    plain = _train_config(p.parse_args(["train", "--corpus", "c", "--out", "o"]), "cmd")
    assert plain == TrainConfig(corpus="c", out="o", command="cmd")
    args = p.parse_args(["train", "--corpus", "c", "--out", "o", "--untied", "--lr", "0.1", "--bptt", "7",
                         "--augment", "gender-swap", "--dry-run", "--focus", "gender", "--seed", "5"])
    assert _train_config(args, "") == TrainConfig(corpus="c", out="o", tied=False, lr=0.1, bptt=7,
                                                  augment="gender-swap", dry_run=True, focus="gender", seed=5)


def test_a_new_field_is_a_new_flag():
    @dataclass
    class Extra:
        new_knob: int = 3
        rate: float = field(default=0.5, metadata={"cli": {"type": "nonneg_float", "help": "a rate"}})
        fast: bool = False

    flags = dict(cli._train_argument(f) for f in fields(Extra))
    assert flags["--new-knob"] == {"dest": "new_knob", "default": 3, "type": int}
    assert flags["--rate"] == {"dest": "rate", "default": 0.5, "type": cli._nonneg_float, "help": "a rate"}
    assert flags["--fast"] == {"dest": "fast", "default": False, "action": "store_true"}
