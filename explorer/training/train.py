"""Training: word- or character-level language models with truncated BPTT.

The recipe is the usual one for small LSTM language models (Zaremba et al. 2014; Merity et al.
2018): dropout on embeddings, between layers and before the decoder; tied input/output embeddings;
gradient-norm clipping; the learning rate divided by 4 when validation perplexity stalls; early
stopping. With a time budget, `lr_schedule="budget"` (the app's runs) instead lowers the rate linearly
to 0 over the budget and trains until it is spent, with no early stop: the linear schedule is the one
that does best for a fixed budget (Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020), and a small
text whose validation perplexity wobbles no longer ends the run after a few seconds. A seed makes a run reproducible. A checkpoint (safetensors + JSON, no pickle) is written
every few minutes and on Ctrl-C/SIGTERM; `resume=True` continues at the exact batch it stopped at,
with the same carried hidden state, optimizer moments and random state.
"""
from __future__ import annotations

import json
import math
import os
import platform
import random
import signal
import subprocess
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ..bundle import save_bundle
from .augment import AUGMENTATIONS
from .data import SPLIT_FILES_HELP, batchify, bptt_windows, encode_texts, read_corpus, split_spec
from ..errors import CorpusError
from ..files import atomic_dir
from ..model import LanguageModel, ModelConfig, detach_state, weights_hash
from ..tokenizer import CharTokenizer, WordTokenizer


def _flag(default=MISSING, **cli):
    """A TrainConfig field with what its `python -m explorer train` flag needs beyond the field's own
    name, type and default (explorer.cli builds the flag): help, metavar, choices, type (a name:
    positive_int, nonneg_float, decay or seed) and flag (when it is not --field-name). A field
    without this is a flag too (an int or float field parses as one); metadata {"cli": None}: no flag."""
    return field(default=default, metadata={"cli": cli})


@dataclass
class TrainConfig:
    corpus: str = _flag(help="a folder of .txt files or one file")
    out: str = _flag(help="bundle folder to write")
    split: str | None = _flag(None, help="split file (default: SPLITS.json in the corpus folder)")
    train_files: str | None = _flag(None, metavar="A.txt,B.txt", help=SPLIT_FILES_HELP["train"])
    valid_files: str | None = _flag(None, metavar="A.txt,B.txt", help=SPLIT_FILES_HELP["valid"])
    test_files: str | None = _flag(None, metavar="A.txt,B.txt", help=SPLIT_FILES_HELP["test"])
    tokenizer: str = _flag("word", choices=["word", "char"])
    vocab_size: int = _flag(10_000, type="positive_int")
    cell: str = _flag("lstm", choices=["lstm", "gru", "rnn"])
    emb_size: int = _flag(256, type="positive_int")
    hidden_size: int = _flag(256, type="positive_int")
    layers: int = _flag(2, type="positive_int")
    dropout: float = _flag(0.3, type="nonneg_float")
    tied: bool = _flag(True, flag="--untied")
    batch_size: int = _flag(64, type="positive_int")
    bptt: int = _flag(35, type="positive_int")
    lr: float = _flag(2e-3, type="nonneg_float")      # Adam
    clip: float = _flag(0.5, type="nonneg_float")
    epochs: int = _flag(10, type="positive_int")
    patience: int = _flag(2, type="positive_int")     # epochs without a validation gain before stopping
    lr_decay: float = _flag(4.0, type="decay", help="divide the learning rate by this after an epoch without a "
                            "validation gain (1: keep it)")
    lr_schedule: str = _flag("plateau", choices=["plateau", "budget"],
                             help="plateau: divide the rate by --lr-decay after an epoch without a validation gain "
                                  "and stop after --patience such epochs; budget (with --max-minutes): the rate falls "
                                  "linearly to 0 over the time budget, no early stop, the run ends when the budget is "
                                  "spent (mid-epoch) and keeps the best epoch's model")
    resume_lr: float = _flag(0.0, type="nonneg_float", metavar="LR",  # 0: the checkpoint's
                             help="with --resume: continue at this learning rate instead of the checkpoint's")
    seed: int = _flag(1234, type="seed")
    threads: int = 0               # 0: torch's default
    checkpoint_minutes: float = _flag(5.0, type="nonneg_float")
    dry_run: bool = _flag(False, help="a few batches only (tests, CI)")
    max_batches: int = 0           # stop an epoch after this many batches (0: no limit)
    resume: bool = _flag(False, help="continue from OUT.ckpt")
    device: str = _flag("cpu", help="cpu or cuda")
    max_minutes: float = _flag(0.0, type="nonneg_float",   # 0: no budget
                               help="stop before an epoch that would end past this many minutes")
    weight_decay: float = _flag(0.0, type="nonneg_float")
    init: str | None = _flag(None, help="fine-tune this bundle (its tokenizer and sizes; the size flags are ignored)")
    augment: str | None = _flag(None, choices=list(AUGMENTATIONS),    # augment.py (training text only)
                                help="add a copy of the training text with gendered words swapped (counterfactual "
                                     "augmentation); gender-swap-names also swaps first names and turns 'sir' (an "
                                     "address) into 'miss'; gender-swap-names-spread turns it into madam, ma'am and "
                                     "miss in turn")
    train_only: str | None = _flag(None, metavar="REGEX", help="train only the parameters whose names match, e.g. "
                                   "decoder.bias (the others stay frozen)")
    focus: str | None = _flag(None, metavar="WORDS", help="'gender' or comma-separated words whose targets weigh "
                              "--focus-weight in the loss")
    focus_weight: float = _flag(1.0, type="nonneg_float")
    focus_warm_start: bool = _flag(False, help="with --init: start the focus words' output bias at log(weight) above "
                                   "the bundle's, the weighted loss's optimum (a fine-tune with lr 0 then gives back "
                                   "its starting model)")
    context_focus: str | None = _flag(None, metavar="WORDS", help="'gender-nouns' or comma-separated words: the "
                                      "targets up to --context-window tokens after one weigh --context-weight in the "
                                      "loss")
    # context_focus weighs contexts, not words: the best prediction in every context stays the books' own
    context_window: int = 20
    context_weight: float = _flag(1.0, type="nonneg_float")
    reset_state: float = _flag(0.0, type="nonneg_float", metavar="P", help="zero each row's carried state before a "
                               "window with probability P (reads from a fresh start)")
    snapshot_every: int = _flag(0, metavar="N", help="also validate and save a bundle OUT.snapshots/eEbB every N "
                                "batches")
    command: str = field(default="", metadata={"cli": None})   # main() passes the command line it ran

    def read_split(self):
        """The corpus split as these settings say (explorer.training.data.read_corpus)."""
        return read_corpus(self.corpus, self.split, files=split_spec(self.train_files, self.valid_files,
                                                                     self.test_files))

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(cell=self.cell, vocab_size=vocab_size, emb_size=self.emb_size,
                           hidden_size=self.hidden_size, layers=self.layers,
                           dropout=self.dropout, tied=self.tied)


def cli_fields() -> list:
    """The TrainConfig fields that are `python -m explorer train` flags, in order (all but `command`)."""
    return [f for f in fields(TrainConfig) if f.metadata.get("cli", {}) is not None]


class Interrupted(Exception):
    pass


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except Exception:
        return "unknown"
    if len(out) != 40:
        return "unknown (not a git checkout)"
    return out + (" (with uncommitted changes)" if dirty else "")


@torch.no_grad()
def evaluate(lm: LanguageModel, data: torch.Tensor, bptt: int = 70, max_batches: int = 0) -> dict:
    """Perplexity over a batchified stream (every token predicted from all the text before it in its row)."""
    was = lm.training
    lm.eval()
    state, total, n = None, 0.0, 0
    for b, (_, x, y) in enumerate(bptt_windows(data, bptt)):
        if max_batches and b >= max_batches:
            break
        logits, state = lm(x, state)
        total += nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                             reduction="sum").item()
        n += y.numel()
    lm.train(was)
    nll = total / max(n, 1)
    return {"perplexity": math.exp(nll), "nll": nll, "tokens": n}


def _ckpt_dir(cfg: TrainConfig) -> Path:
    out = Path(cfg.out)
    return out.with_name(out.name + ".ckpt")


def _save_checkpoint(cfg, lm, opt, progress: dict, state, rng=None) -> None:
    """Write the checkpoint folder whole (explorer.files.atomic_dir): an interrupted write leaves the
    previous checkpoint as it was."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in lm.state_dict().items()
               if not (cfg.tied and k == "decoder.weight")}
    names = {id(p): n for n, p in lm.named_parameters()}
    step = 0
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    tensors[f"opt.{names[id(p)]}.{key}"] = st[key].cpu().contiguous().clone()
            if "step" in st:
                step = float(st["step"])
    if state is not None:
        for j, s in enumerate(state if isinstance(state, tuple) else (state,)):
            tensors[f"carry.{j}"] = s.detach().cpu().contiguous().clone()
    tensors["rng.torch"] = torch.get_rng_state() if rng is None else rng
    progress = dict(progress, opt_step=step, lr=opt.param_groups[0]["lr"],
                    py_random=repr(random.getstate()), train_config=asdict(cfg))
    with atomic_dir(_ckpt_dir(cfg)) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "progress.json").write_text(json.dumps(progress, indent=1))


def _load_checkpoint(cfg, lm, opt):
    d = _ckpt_dir(cfg)
    if not (d / "progress.json").exists():
        raise CorpusError(f"--resume: no checkpoint at {d}")
    progress = json.loads((d / "progress.json").read_text())
    t = load_file(str(d / "state.safetensors"), device=cfg.device)
    lm.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")}, strict=False)
    for n, p in lm.named_parameters():
        if f"opt.{n}.exp_avg" in t:
            opt.state[p] = {"step": torch.tensor(progress["opt_step"]),
                            "exp_avg": t[f"opt.{n}.exp_avg"], "exp_avg_sq": t[f"opt.{n}.exp_avg_sq"]}
    for g in opt.param_groups:
        g["lr"] = cfg.resume_lr or progress["lr"]
    if cfg.resume_lr:      # e.g. a lower rate for the last epochs; the history shows each epoch's rate
        progress["lr_changes"] = progress.get("lr_changes", []) + [
            {"epoch": progress["epoch"] + 1, "batch": progress["batch"], "from": progress["lr"], "to": cfg.resume_lr}]
    carry = [t[f"carry.{j}"] for j in range(2) if f"carry.{j}" in t]
    state = None if not carry else (tuple(carry) if len(carry) == 2 else carry[0])
    torch.set_rng_state(t["rng.torch"].cpu())
    import ast
    st = ast.literal_eval(progress["py_random"])
    random.setstate((st[0], tuple(st[1]), st[2]))
    return progress, state


@dataclass
class _Setup:
    """What the epochs read: the corpus and its batches, the model, its optimiser, the loss weights and
    the schedule (epochs to run, batches an epoch)."""
    corpus: dict
    tokenizer: object
    init: object              # the bundle fine-tuned from (a LoadedModel), or None
    aug_info: dict
    dev: torch.device
    train_data: torch.Tensor
    valid_data: torch.Tensor
    test_data: torch.Tensor
    lm: LanguageModel
    opt: torch.optim.Optimizer
    weights: torch.Tensor | None  # per-word loss weights (--focus)
    ctx_w: torch.Tensor | None    # per-position loss weights, batchified (--context-focus)
    epochs: int
    n_batches: int


@dataclass
class _Run:
    """What changes as the run goes: the progress a checkpoint records, the carried state, the clocks."""
    progress: dict
    state: object
    t_start: float                # train_seconds counts up to here
    last_ckpt: float = field(default_factory=time.time)
    batch_start: tuple | None = None  # (state, rng) before the batch in flight: what an interrupt restores
    stop: bool = False            # set by SIGTERM
    t_budget: float = field(default_factory=time.time)   # lr_schedule "budget": the clock starts here
    lr_base: float = 0.0          # lr_schedule "budget": the rate at the budget's start
    budget_spent: bool = False    # lr_schedule "budget": the budget ended inside an epoch


def train(cfg: TrainConfig, log=print, on_batch=None) -> dict:
    """Train, write the best model as a bundle at cfg.out after every improving epoch, return the card.

    on_batch(info): called after every training batch with {"epoch", "epochs", "batch", "batches",
    "loss", "tokens_per_s", "tokens_seen"} (the app's background runs write it to a status file);
    raising KeyboardInterrupt there stops the run as Ctrl-C does (checkpoint, then Interrupted)."""
    t_start = time.time()
    if cfg.lr_schedule == "budget" and not cfg.max_minutes > 0:
        raise CorpusError("lr_schedule 'budget' needs a time budget (--max-minutes)")
    s = _setup(cfg, log)
    run = _Run(*_start_progress(cfg, s, log), t_start=t_start, t_budget=t_start)
    # a resumed budgeted run goes on from the rate it stopped at (at least a tenth of --lr: a run
    # resumed after its budget was spent would otherwise start at 0)
    run.lr_base = cfg.lr if not cfg.resume else max(s.opt.param_groups[0]["lr"], cfg.lr / 10)
    old_term = _stop_on_sigterm(run)
    try:
        _run_epochs(cfg, s, run, log, on_batch)
    except KeyboardInterrupt:
        _checkpoint_interrupted(cfg, s, run, log)
        raise Interrupted() from None
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return _final_card(cfg, s, run.progress)


# ------------------------------------------------------------------------------------ set-up
def _setup(cfg, log) -> _Setup:
    """Seeds, corpus, tokenizer, batches, model, optimiser and loss weights (in the order that the
    random generators are drawn in, which a seed reproduces)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    corpus = _load_corpus(cfg)
    init, tokenizer = _tokenizer(cfg, corpus)
    aug_info: dict = {}
    streams = _streams(cfg, corpus, tokenizer, aug_info)
    dev = torch.device(cfg.device)
    train_data = batchify(streams["train"], cfg.batch_size).to(dev)
    valid_data = batchify(streams["valid"], 10).to(dev)
    test_data = batchify(streams["test"], 10).to(dev)
    lm = _model(cfg, tokenizer, init, dev)
    opt = torch.optim.Adam(_trainable(cfg, lm, log), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = _focus_weights(cfg, tokenizer, log)
    weights = None if weights is None else weights.to(dev)
    if cfg.focus_warm_start and init is not None and weights is not None and not cfg.resume:
        # the starting bundle predicts the books' probabilities; the weighted loss's optimum is
        # those plus log weight on the focus words (the inverse of _calibrated), so start there
        # instead of spending thousands of Adam steps moving the bias by log weight
        _shift_bias(lm, torch.log(weights))
    ctx_w = _context_weights(cfg, tokenizer, streams["train"], log)
    ctx_w = None if ctx_w is None else batchify(ctx_w, cfg.batch_size).to(dev)
    return _Setup(corpus, tokenizer, init, aug_info, dev, train_data, valid_data, test_data, lm, opt, weights, ctx_w,
                  *_schedule(cfg, train_data))


def _load_corpus(cfg) -> dict:
    corpus = cfg.read_split()
    if cfg.dry_run:  # a few thousand characters of each split
        corpus = {s: [(n, t[:20_000 if s == "train" else 5_000]) for n, t in v[:2]] for s, v in corpus.items()}
    return corpus


def _tokenizer(cfg, corpus):
    """(the bundle to fine-tune or None, the tokenizer). Fine-tuning: the starting bundle fixes the
    tokenizer and the sizes (written into cfg). Else a tokenizer built on the training text."""
    if cfg.init:
        from ..bundle import load_model
        init = load_model(cfg.init)
        tokenizer = init.tokenizer
        ic = init.lm.config
        cfg.tokenizer, cfg.cell, cfg.emb_size, cfg.hidden_size = tokenizer.kind, ic.cell, ic.emb_size, ic.hidden_size
        cfg.layers, cfg.tied, cfg.vocab_size = ic.layers, ic.tied, ic.vocab_size
        return init, tokenizer
    tok_cls = {"word": WordTokenizer, "char": CharTokenizer}[cfg.tokenizer]
    vocab_size = cfg.vocab_size
    try:
        tokenizer = tok_cls.build((t for _, t in corpus["train"]), max_size=None if cfg.dry_run else vocab_size)
    except ValueError as e:
        raise CorpusError(str(e)) from None
    if cfg.dry_run:
        tokenizer = tok_cls(tokenizer.itos[:min(len(tokenizer), vocab_size)])
    return None, tokenizer


def _streams(cfg, corpus, tokenizer, aug_info: dict) -> dict:
    """Each split as one stream of token ids; the training text augmented first (aug_info: what was)."""
    train_texts = corpus["train"]
    if cfg.augment:  # only the training text: validation and test stay the books as written
        from .augment import augment
        train_texts = augment(train_texts, cfg.augment, aug_info)
    return {s: encode_texts(tokenizer, train_texts if s == "train" else corpus[s]) for s in corpus}


def _model(cfg, tokenizer, init, dev) -> LanguageModel:
    lm = LanguageModel(cfg.model_config(len(tokenizer)))
    if init is not None:
        lm.load_state_dict(init.lm.state_dict())
    return lm.to(dev)


def _trainable(cfg, lm, log) -> list:
    """The parameters the optimiser updates: all, or with --train-only those whose names match (the
    others are frozen)."""
    if not cfg.train_only:
        return list(lm.parameters())
    # e.g. "decoder.bias": re-learn the output prior, keep everything the model reads with
    import re
    names = [n for n, _ in lm.named_parameters()]
    keep = [n for n in names if re.fullmatch(cfg.train_only, n)]
    if not keep:
        raise CorpusError(f"--train-only {cfg.train_only!r} matches no parameter; the names are {', '.join(names)}")
    for n, p in lm.named_parameters():
        p.requires_grad_(n in keep)
    log(f"training only {', '.join(keep)}")
    return [p for n, p in lm.named_parameters() if n in keep]


def _schedule(cfg, train_data) -> tuple[int, int]:
    """(epochs to run, batches per epoch): a dry run is one epoch of 3 batches."""
    epochs = 1 if cfg.dry_run else cfg.epochs
    max_batches = 3 if cfg.dry_run else cfg.max_batches
    n_batches = math.ceil((train_data.size(1) - 1) / cfg.bptt)
    return epochs, (min(n_batches, max_batches) if max_batches else n_batches)


def _start_progress(cfg, s: _Setup, log) -> tuple[dict, object]:
    """(progress, carried state): a fresh start, or where the checkpoint stopped (--resume)."""
    progress = {"epoch": 0, "batch": 0, "best_valid": None, "history": [], "bad_epochs": 0,
                "train_seconds": 0.0, "tokens_seen": 0}
    if s.init is not None:
        progress["init_weights_sha256"] = weights_hash(s.init.lm)  # the model identity the corpus index records too
        # how the starting weights were made (a fine-tune of a fine-tune keeps its whole recipe)
        progress["init_training"] = {k: v for k, v in (s.init.card.get("training") or {}).items()
                                     if k not in ("split", "history")} | {"name": s.init.card.get("name")}
    if not cfg.resume:
        return progress, None
    progress, state = _load_checkpoint(cfg, s.lm, s.opt)
    log(f"resumed at epoch {progress['epoch'] + 1}, batch {progress['batch']}")
    return progress, state


def _stop_on_sigterm(run: _Run):
    """SIGTERM behaves like Ctrl-C: checkpoint, then stop. Returns the handler it replaced (None off
    the main thread, where signals cannot be caught)."""
    def _on_term(signum, frame):
        run.stop = True
    return signal.signal(signal.SIGTERM, _on_term) if _main_thread() else None


# ------------------------------------------------------------------------------------ epochs
def _run_epochs(cfg, s: _Setup, run: _Run, log, on_batch) -> None:
    """Epochs until the last, early stopping or the time budget: each one trains, validates, keeps the
    best model, decays the learning rate when there was no gain, and checkpoints."""
    t_budget = time.time()
    while run.progress["epoch"] < s.epochs:
        if _over_budget(cfg, run, t_budget, log):
            break
        ep = run.progress["epoch"]
        t_ep = time.time()
        _train_epoch(cfg, s, run, ep, t_ep, log, on_batch)
        if run.budget_spent and run.progress["batch"] == 0:
            break                                  # spent before this epoch's first batch
        v = _estimate_loss(cfg, s.lm, s.weights, s.valid_data)
        if _end_epoch(cfg, s, run, ep, v, t_ep, log):
            _save_best(cfg, s, run, v)
        elif cfg.lr_schedule == "budget":
            run.progress["bad_epochs"] += 1        # counted; the rate follows the clock, the run goes on
        elif _no_gain(cfg, s.opt, run.progress, log):
            _checkpoint(cfg, s, run)
            break
        if cfg.snapshot_every:
            _snapshot(cfg, s.corpus, s.tokenizer, s.lm, run.progress, s.valid_data, ep, s.n_batches, s.aug_info, log,
                      s.weights, valid=v)
        _checkpoint(cfg, s, run)
        run.last_ckpt = time.time()


def _over_budget(cfg, run: _Run, t_budget: float, log) -> bool:
    """True (and progress says so) when another epoch, as long as the last, would end past --max-minutes;
    with lr_schedule "budget", when the budget is spent (the epoch in flight was cut short)."""
    progress = run.progress
    if cfg.lr_schedule == "budget":
        if not (run.budget_spent or _budget_fraction(cfg, run) >= 1.0):
            return False
        log(f"stopping: the {cfg.max_minutes:.3g}-minute budget is spent")
        progress["stopped"] = "time budget"
        return True
    if not (cfg.max_minutes and progress["history"]):
        return False
    if time.time() - t_budget + progress["history"][-1]["seconds"] <= cfg.max_minutes * 60:
        return False
    log(f"stopping: another epoch would pass the {cfg.max_minutes:g}-minute budget")
    progress["stopped"] = "time budget"
    return True


def _train_epoch(cfg, s: _Setup, run: _Run, ep: int, t_ep: float, log, on_batch) -> None:
    """One epoch's batches from where the progress stands (a resumed run starts mid-epoch), with the
    snapshots and timed checkpoints that fall in it."""
    s.lm.train()
    bar = tqdm(total=s.n_batches, initial=run.progress["batch"], desc=f"epoch {ep + 1}/{s.epochs}",
               unit="batch", disable=cfg.dry_run, dynamic_ncols=False, ncols=110, mininterval=10)
    tokens_ep = 0
    for b, (i, x, y) in enumerate(bptt_windows(s.train_data, cfg.bptt)):
        if b < run.progress["batch"]:
            continue
        if b >= s.n_batches:
            break
        if run.stop:
            raise KeyboardInterrupt
        if cfg.lr_schedule == "budget" and _budget_lr(cfg, s.opt, run):
            run.budget_spent = True                # the epoch ends here; _run_epochs validates and stops
            break
        loss = _train_step(cfg, s, run, i, x, y)
        run.progress["batch"] = b + 1
        run.batch_start = None
        run.progress["tokens_seen"] += y.numel()
        tokens_ep += y.numel()
        tok_s = tokens_ep / max(time.time() - t_ep, 1e-9)
        bar.set_postfix(loss=f"{loss.item():.3f}", ppl=f"{math.exp(loss.item()):.0f}", tok_s=f"{tok_s:.0f}",
                        refresh=False)
        bar.update(1)
        if on_batch is not None:
            on_batch({"epoch": ep + 1, "epochs": s.epochs, "batch": b + 1, "batches": s.n_batches,
                      "loss": float(loss.item()), "tokens_per_s": tok_s, "tokens_seen": run.progress["tokens_seen"]})
        if cfg.snapshot_every and (b + 1) % cfg.snapshot_every == 0 and b + 1 < s.n_batches:
            _snapshot(cfg, s.corpus, s.tokenizer, s.lm, run.progress, s.valid_data, ep, b + 1, s.aug_info, log,
                      s.weights)
        if time.time() - run.last_ckpt > cfg.checkpoint_minutes * 60:
            _bank_time(run)
            _checkpoint(cfg, s, run)
            run.last_ckpt = time.time()
    bar.close()


def _train_step(cfg, s: _Setup, run: _Run, i: int, x, y) -> torch.Tensor:
    """Forward, (weighted) loss, backward, clip, step on one window; the carried state goes on."""
    run.state = detach_state(run.state) if run.state is not None else None
    # What a checkpoint taken mid-batch must restore, so that a resumed run redoes
    # this batch exactly (same carried state, same dropout masks).
    run.batch_start = (run.state, torch.get_rng_state())
    if cfg.reset_state and run.state is not None:
        run.state = _reset_rows(run.state, cfg.reset_state)
    logits, run.state = s.lm(x, run.state)
    loss = _loss(logits, y, i, s.weights, s.ctx_w)
    s.opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(s.lm.parameters(), cfg.clip)
    s.opt.step()
    return loss


def _loss(logits, y, i: int, weights, ctx_w) -> torch.Tensor:
    """Mean cross-entropy of a window (targets y, starting at stream column i + 1); with focus or context
    weights a weighted mean: focus words' targets and focus contexts count more."""
    if weights is None and ctx_w is None:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    yy = y.reshape(-1)
    ce = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), yy, reduction="none")
    if weights is not None:
        ce = ce * weights[yy]
    if ctx_w is not None:
        ce = ce * ctx_w[:, i + 1:i + 1 + y.size(1)].reshape(-1)
    return ce.sum() / yy.numel()


def _eval_batches(cfg) -> int:
    """How many batches a validation or test pass reads (0: all; a dry run reads 3)."""
    return 3 if cfg.dry_run else 0


def _estimate_loss(cfg, lm, weights, data) -> dict:
    """Validation perplexity of the model as it would be saved (focus weights undone)."""
    with _calibrated(lm, weights):
        return evaluate(lm, data, max_batches=_eval_batches(cfg))


def _end_epoch(cfg, s: _Setup, run: _Run, ep: int, v: dict, t_ep: float, log) -> bool:
    """Record the epoch in the history and log it; the next one starts at batch 0 with no carried
    state. True when validation improved on the best so far."""
    p = run.progress
    improved = p["best_valid"] is None or v["perplexity"] < p["best_valid"]
    lr = s.opt.param_groups[0]["lr"]
    p["history"].append({"epoch": ep + 1, "valid_perplexity": round(v["perplexity"], 3), "lr": lr,
                         "seconds": round(time.time() - t_ep, 1)})
    log(f"epoch {ep + 1}: valid perplexity {v['perplexity']:.2f}{' (best)' if improved else ''}, lr {lr:.2e}")
    p["epoch"] = ep + 1
    p["batch"] = 0
    run.state = None
    return improved


def _save_best(cfg, s: _Setup, run: _Run, v: dict) -> None:
    """A new best: write the bundle at cfg.out (calibrated, as it was measured)."""
    run.progress["best_valid"] = v["perplexity"]
    run.progress["bad_epochs"] = 0
    _bank_time(run)
    card = _card(cfg, s.corpus, s.tokenizer, s.lm, run.progress, valid=v, test=None, aug_info=s.aug_info)
    with _calibrated(s.lm, s.weights):
        save_bundle(cfg.out, s.lm, s.tokenizer, card)


def _budget_fraction(cfg, run: _Run) -> float:
    return (time.time() - run.t_budget) / (cfg.max_minutes * 60)


def _budget_lr(cfg, opt, run: _Run) -> bool:
    """lr_schedule "budget": set the rate for the next batch, falling linearly from run.lr_base to 0 as
    the time budget is spent. True when it is spent."""
    frac = _budget_fraction(cfg, run)
    if frac >= 1.0:
        return True
    for g in opt.param_groups:
        g["lr"] = run.lr_base * (1.0 - frac)
    return False


def _decay_lr(opt, factor: float) -> None:
    """The learning-rate schedule: divide the rate by `factor` (--lr-decay) after an epoch without gain."""
    for g in opt.param_groups:
        g["lr"] /= factor


def _no_gain(cfg, opt, progress, log) -> bool:
    """An epoch without a validation gain: count it and decay the rate. True when patience is spent
    (early stop)."""
    progress["bad_epochs"] += 1
    _decay_lr(opt, cfg.lr_decay)
    if progress["bad_epochs"] < cfg.patience:
        return False
    log(f"early stop: no gain for {cfg.patience} epochs")
    return True


def _bank_time(run: _Run) -> None:
    """Add the time since the last banking to progress["train_seconds"]."""
    run.progress["train_seconds"] += time.time() - run.t_start
    run.t_start = time.time()


def _checkpoint(cfg, s: _Setup, run: _Run, rng=None) -> None:
    _save_checkpoint(cfg, s.lm, s.opt, run.progress, run.state, rng)


def _checkpoint_interrupted(cfg, s: _Setup, run: _Run, log) -> None:
    """Ctrl-C or SIGTERM: checkpoint where the run stands; inside a batch, from before it (its update
    never happened)."""
    _bank_time(run)
    rng = None
    if run.batch_start is not None:
        run.state, rng = run.batch_start
    _checkpoint(cfg, s, run, rng)
    log(f"interrupted at epoch {run.progress['epoch'] + 1}, batch {run.progress['batch']}; checkpoint "
        f"saved in {_ckpt_dir(cfg)}; continue with --resume")


def _final_card(cfg, s: _Setup, progress: dict) -> dict:
    """Test perplexity of the best (saved) model; the bundle's card completed with it and why the run
    stopped."""
    from ..bundle import load_model
    best = load_model(cfg.out)
    best.lm.to(s.dev)
    t = evaluate(best.lm, s.test_data, max_batches=_eval_batches(cfg))
    best.lm.cpu()
    card = dict(best.card)
    card["metrics"]["test"] = {"perplexity": round(t["perplexity"], 3), "tokens": t["tokens"]}
    card["status"] = "complete"
    card["training"]["stopped_because"] = progress.get("stopped") or (
        "early stopping" if cfg.lr_schedule != "budget" and progress["bad_epochs"] >= cfg.patience else "epoch limit")
    card["training"]["epochs_total"] = progress["epoch"]
    save_bundle(cfg.out, best.lm, best.tokenizer, card)
    return card


def _word_ids(spec: str, presets: dict, tokenizer, flag: str) -> tuple[list[str], list[int]]:
    """The words of a --focus-style flag (a preset's name or comma-separated words) and their ids;
    CorpusError when none is in the vocabulary."""
    words = presets[spec] if spec in presets else [w.strip() for w in spec.split(",") if w.strip()]
    ids = [tokenizer.stoi[w] for w in words if w in tokenizer.stoi]
    if not ids:
        raise CorpusError(f"{flag} {spec!r}: none of its words is in the vocabulary")
    return words, ids


def _focus_weights(cfg, tokenizer, log):
    """Per-word loss weights over the vocabulary, or None without --focus."""
    if not cfg.focus or cfg.focus_weight == 1.0:
        return None
    from .augment import GENDER_WORDS
    words, ids = _word_ids(cfg.focus, {"gender": GENDER_WORDS}, tokenizer, "--focus")
    w = torch.ones(len(tokenizer))
    w[ids] = cfg.focus_weight
    log(f"loss weight {cfg.focus_weight:g} on {len(ids)} words ({', '.join(words[:8])}, ...)")
    return w


def _reset_rows(state, p: float):
    """The carried state with each batch row zeroed with probability p: that row's next window is read
    from a fresh start, as a sentence is scored or typed into the app (no text before it)."""
    parts = state if isinstance(state, tuple) else (state,)
    keep = (torch.rand(parts[0].size(1), device=parts[0].device) >= p).to(parts[0].dtype)[None, :, None]
    out = tuple(s * keep for s in parts)
    return out if isinstance(state, tuple) else out[0]


def _context_weights(cfg, tokenizer, stream: torch.Tensor, log):
    """A weight per position of the training stream: context_weight for the context_window tokens
    after each context-focus word, else 1. Or None without --context-focus."""
    if not cfg.context_focus or cfg.context_weight == 1.0:
        return None
    from .augment import GENDER_NOUNS
    words, ids = _word_ids(cfg.context_focus, {"gender-nouns": GENDER_NOUNS}, tokenizer, "--context-focus")
    hit = torch.isin(stream, torch.tensor(ids, dtype=torch.long))
    pos = torch.arange(stream.numel())
    last = torch.where(hit, pos, torch.full_like(pos, -10**9)).cummax(0).values    # the latest trigger so far
    dist = pos - last
    w = torch.ones(stream.numel())
    w[(dist >= 1) & (dist <= cfg.context_window)] = cfg.context_weight
    log(f"context weight {cfg.context_weight:g} on {int((w != 1).sum()):,} of {stream.numel():,} positions "
        f"(up to {cfg.context_window} tokens after {len(ids)} words: {', '.join(words[:6])}, ...)")
    return w


class _calibrated:
    """While inside: the decoder bias corrected for the focus weights, so that what is evaluated and
    saved predicts the books' own probabilities. A weighted cross-entropy's optimum is
    p(w) ∝ weight(w)·q(w): the focus words would be over-predicted by their weight, so log weight(w)
    comes off their output bias (exact at the optimum)."""

    def __init__(self, lm, weights):
        self.lm, self.shift = lm, None if weights is None else torch.log(weights)

    def __enter__(self):
        if self.shift is not None:
            _shift_bias(self.lm, -self.shift)
        return self.lm

    def __exit__(self, *exc):
        if self.shift is not None:
            _shift_bias(self.lm, self.shift)
        return False


def _shift_bias(lm, shift: torch.Tensor) -> None:
    """Add `shift` (one value per word) to the output bias, in place."""
    with torch.no_grad():
        lm.decoder.bias.add_(shift.to(lm.decoder.bias.device))


def _snapshot(cfg, corpus, tokenizer, lm, progress, valid_data, ep, batch, aug_info, log, weights, valid=None):
    """Validate now and save the weights as a bundle OUT.snapshots/e{epoch}b{batch} (for choosing a
    point of a fine-tune by measurement; the run goes on)."""
    name = f"e{ep + 1}b{batch:05d}"
    out = Path(cfg.out)
    with _calibrated(lm, weights):     # what is measured is what is saved
        v = valid or evaluate(lm, valid_data, max_batches=_eval_batches(cfg))
        snap = dict(progress, history=list(progress["history"]) + ([] if valid else [
            {"epoch": ep + 1, "batch": batch, "valid_perplexity": round(v["perplexity"], 3)}]))
        card = _card(cfg, corpus, tokenizer, lm, snap, valid=v, test=None, aug_info=aug_info)
        card["training"]["snapshot"] = {"epoch": ep + 1, "batch": batch}
        save_bundle(out.with_name(out.name + ".snapshots") / name, lm, tokenizer, card)
    lm.train()
    log(f"snapshot {name}: valid perplexity {v['perplexity']:.2f}")


def _augment_doc(kind: str, info: dict | None = None) -> dict:
    from . import augment as A
    extra = {}
    if kind in A.ADDRESS_SWAP:
        to = A.ADDRESS_SWAP[kind]
        to = to if isinstance(to, str) else " / ".join(to) + " in turn"
        extra = {"names": dict(sorted((info or {}).get("names", {}).items())),
                 "rule_names": "first names and single-gender surnames found by augment.name_genders, paired by frequency",
                 "rule_address": f"sir (an address) -> {to}; miss, ma'am, madam (addresses) -> sir; "
                                 "Sir X -> Lady X; Lady X -> Sir X; miss (a verb) unchanged"}
    return {**extra, "kind": kind, "what": "each training file is followed by a copy with gendered words swapped "
                                  "(explorer/training/augment.py); validation and test text are not augmented",
            "pairs": [list(p) for p in A.PAIRS], "one_way": A.ONE_WAY,
            "rule_her": "her -> his before a content word, else him"}


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _card(cfg, corpus, tokenizer, lm, progress, valid, test, aug_info=None) -> dict:
    return {
        "name": Path(cfg.out).name,
        "description": f"{cfg.layers}-layer {cfg.cell.upper()} {cfg.tokenizer}-level language model",
        "training": {
            "command": cfg.command or "(called from Python)",
            "corpus": str(cfg.corpus),
            "split": {s: [n for n, _ in corpus[s]] for s in corpus},
            "seed": cfg.seed,
            **({"init": {"bundle": str(cfg.init), "weights_sha256": progress.get("init_weights_sha256"),
                         "its_training": progress.get("init_training")}} if cfg.init else {}),
            **({"augment": _augment_doc(cfg.augment, aug_info)} if cfg.augment else {}),
            **({"focus": {"words": cfg.focus, "weight": cfg.focus_weight,
                          "calibration": "saved weights: decoder.bias minus log(weight) on the focus words, which "
                                         "undoes the weighted loss's over-prediction of them (train._calibrated)",
                          **({"warm_start": "the starting bundle's decoder.bias plus log(weight) on the focus words"}
                             if cfg.focus_warm_start and cfg.init else {})}}
               if cfg.focus and cfg.focus_weight != 1.0 else {}),
            **({"context_focus": {"words": cfg.context_focus, "window": cfg.context_window, "weight": cfg.context_weight,
                                  "what": "targets up to `window` tokens after one of the words weigh `weight` in the "
                                          "loss; a weight on contexts, so no calibration is needed"}}
               if cfg.context_focus and cfg.context_weight != 1.0 else {}),
            "epochs_run": progress["epoch"],
            **({"lr_changes": progress["lr_changes"]} if progress.get("lr_changes") else {}),
            "history": progress["history"],
            "tokens_seen": progress["tokens_seen"],
            "wall_seconds": round(progress["train_seconds"], 1),
            "hardware": (f"{torch.cuda.get_device_name()} GPU, " if cfg.device.startswith("cuda") else "")
                        + f"{platform.machine()} CPU, {torch.get_num_threads()} threads "
                        f"({os.cpu_count()} cores), torch {torch.__version__}",
            "git_commit": _git_commit(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_config": {k: v for k, v in asdict(cfg).items() if k not in ("command",)},
            "dry_run": cfg.dry_run,
        },
        "parameters": lm.n_params(),
        "metrics": {"valid": {"perplexity": round(valid["perplexity"], 3), "tokens": valid["tokens"]}},
        "status": "training",
    }
