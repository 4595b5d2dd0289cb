"""Training: word- or character-level language models with truncated BPTT.

The recipe is the usual one for small LSTM language models (Zaremba et al. 2014; Merity et al.
2018): dropout on embeddings, between layers and before the decoder; tied input/output embeddings;
gradient-norm clipping; the learning rate divided by 4 when validation perplexity stalls; early
stopping. A seed makes a run reproducible. A checkpoint (safetensors + JSON, no pickle) is written
every few minutes and on Ctrl-C/SIGTERM; `resume=True` continues at the exact batch it stopped at,
with the same carried hidden state, optimizer moments and random state.
"""
from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ..bundle import save_bundle
from .data import batchify, bptt_windows, encode_texts, read_corpus
from ..errors import CorpusError
from ..model import LanguageModel, ModelConfig, detach_state, weights_hash
from ..tokenizer import CharTokenizer, WordTokenizer


@dataclass
class TrainConfig:
    corpus: str
    out: str
    split: str | None = None
    tokenizer: str = "word"        # word | char
    vocab_size: int = 10_000
    cell: str = "lstm"
    emb_size: int = 256
    hidden_size: int = 256
    layers: int = 2
    dropout: float = 0.3
    tied: bool = True
    batch_size: int = 64
    bptt: int = 35
    lr: float = 2e-3               # Adam
    clip: float = 0.5
    epochs: int = 10
    patience: int = 2              # epochs without a validation gain before stopping
    lr_decay: float = 4.0
    resume_lr: float = 0.0         # with resume: set the learning rate to this (0: the checkpoint's)
    seed: int = 1234
    threads: int = 0               # 0: torch's default
    checkpoint_minutes: float = 5.0
    dry_run: bool = False          # a few batches of everything, for tests and CI
    max_batches: int = 0           # stop an epoch after this many batches (0: no limit)
    resume: bool = False
    device: str = "cpu"            # cpu | cuda
    max_minutes: float = 0.0       # stop before an epoch that would end past this budget (0: none)
    weight_decay: float = 0.0
    init: str | None = None        # a bundle to fine-tune: its tokenizer, sizes and weights
    augment: str | None = None     # "gender-swap": add a swapped copy of the training text (augment.py)
    train_only: str | None = None  # a regex: train only the parameters whose names match (e.g. decoder.bias)
    focus: str | None = None       # "gender" or comma-separated words: their targets weigh focus_weight in the loss
    focus_weight: float = 1.0
    focus_warm_start: bool = False  # with init: start the focus words' output bias at the weighted loss's optimum
    context_focus: str | None = None   # "gender-nouns" or words: the targets up to context_window tokens after
    context_window: int = 20           # one of them weigh context_weight (a weight on contexts, not on words:
    context_weight: float = 1.0        # the best prediction in every context stays the books' own)
    reset_state: float = 0.0       # each row's carried state is zeroed before a window with this probability
    snapshot_every: int = 0        # also validate and save a bundle OUT.snapshots/bN every N batches (0: never)
    command: str = ""

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(cell=self.cell, vocab_size=vocab_size, emb_size=self.emb_size,
                           hidden_size=self.hidden_size, layers=self.layers,
                           dropout=self.dropout, tied=self.tied)


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
    d = _ckpt_dir(cfg)
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
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
    save_file(tensors, str(tmp / "state.safetensors"))
    progress = dict(progress, opt_step=step, lr=opt.param_groups[0]["lr"],
                    py_random=repr(random.getstate()), train_config=asdict(cfg))
    (tmp / "progress.json").write_text(json.dumps(progress, indent=1))
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)


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


def train(cfg: TrainConfig, log=print, on_batch=None) -> dict:
    """Train, write the best model as a bundle at cfg.out after every improving epoch, return the card.

    on_batch(info): called after every training batch with {"epoch", "epochs", "batch", "batches",
    "loss", "tokens_per_s", "tokens_seen"} (the app's background runs write it to a status file);
    raising KeyboardInterrupt there stops the run as Ctrl-C does (checkpoint, then Interrupted)."""
    t_start = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    corpus = read_corpus(cfg.corpus, cfg.split)
    if cfg.dry_run:  # a few thousand characters of each split
        corpus = {s: [(n, t[:20_000 if s == "train" else 5_000]) for n, t in v[:2]] for s, v in corpus.items()}
    init = None
    if cfg.init:  # fine-tune: the starting bundle fixes the tokenizer and the sizes
        from ..bundle import load_model
        init = load_model(cfg.init)
        init_hash = weights_hash(init.lm)      # the model identity the corpus index records too
        tokenizer = init.tokenizer
        ic = init.lm.config
        cfg.tokenizer, cfg.cell, cfg.emb_size, cfg.hidden_size = tokenizer.kind, ic.cell, ic.emb_size, ic.hidden_size
        cfg.layers, cfg.tied, cfg.vocab_size = ic.layers, ic.tied, ic.vocab_size
    else:
        tok_cls = {"word": WordTokenizer, "char": CharTokenizer}[cfg.tokenizer]
        vocab_size = cfg.vocab_size
        try:
            tokenizer = tok_cls.build((t for _, t in corpus["train"]),
                                      max_size=None if cfg.dry_run else vocab_size)
        except ValueError as e:
            raise CorpusError(str(e)) from None
        if cfg.dry_run:
            tokenizer = tok_cls(tokenizer.itos[:min(len(tokenizer), vocab_size)])
    train_texts = corpus["train"]
    aug_info: dict = {}
    if cfg.augment:  # only the training text: validation and test stay the books as written
        from .augment import augment
        train_texts = augment(train_texts, cfg.augment, aug_info)
    streams = {s: encode_texts(tokenizer, train_texts if s == "train" else corpus[s]) for s in corpus}
    dev = torch.device(cfg.device)
    train_data = batchify(streams["train"], cfg.batch_size).to(dev)
    valid_data = batchify(streams["valid"], 10).to(dev)
    test_data = batchify(streams["test"], 10).to(dev)
    mcfg = cfg.model_config(len(tokenizer))
    lm = LanguageModel(mcfg)
    if init is not None:
        lm.load_state_dict(init.lm.state_dict())
    lm = lm.to(dev)
    params = list(lm.parameters())
    if cfg.train_only:  # e.g. "decoder.bias": re-learn the output prior, keep everything the model reads with
        import re
        names = [n for n, _ in lm.named_parameters()]
        keep = [n for n in names if re.fullmatch(cfg.train_only, n)]
        if not keep:
            raise CorpusError(f"--train-only {cfg.train_only!r} matches no parameter; the names are {', '.join(names)}")
        for n, p in lm.named_parameters():
            p.requires_grad_(n in keep)
        params = [p for n, p in lm.named_parameters() if n in keep]
        log(f"training only {', '.join(keep)}")
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = _focus_weights(cfg, tokenizer, log)
    weights = None if weights is None else weights.to(dev)
    if cfg.focus_warm_start and init is not None and weights is not None and not cfg.resume:
        # the starting bundle predicts the books' probabilities; the weighted loss's optimum is
        # those plus log weight on the focus words (the inverse of _calibrated), so start there
        # instead of spending thousands of Adam steps moving the bias by log weight
        _shift_bias(lm, torch.log(weights))
    ctx_w = _context_weights(cfg, tokenizer, streams["train"], log)
    ctx_w = None if ctx_w is None else batchify(ctx_w, cfg.batch_size).to(dev)
    progress = {"epoch": 0, "batch": 0, "best_valid": None, "history": [], "bad_epochs": 0,
                "train_seconds": 0.0, "tokens_seen": 0}
    if init is not None:
        progress["init_weights_sha256"] = init_hash
        # how the starting weights were made (a fine-tune of a fine-tune keeps its whole recipe)
        progress["init_training"] = {k: v for k, v in (init.card.get("training") or {}).items()
                                     if k not in ("split", "history")} | {"name": init.card.get("name")}
    state = None
    if cfg.resume:
        progress, state = _load_checkpoint(cfg, lm, opt)
        log(f"resumed at epoch {progress['epoch'] + 1}, batch {progress['batch']}")
    epochs = 1 if cfg.dry_run else cfg.epochs
    max_batches = 3 if cfg.dry_run else cfg.max_batches
    n_batches = math.ceil((train_data.size(1) - 1) / cfg.bptt)
    if max_batches:
        n_batches = min(n_batches, max_batches)

    stop = {"flag": False}

    def _on_term(signum, frame):  # SIGTERM behaves like Ctrl-C: checkpoint, then stop
        stop["flag"] = True

    old_term = signal.signal(signal.SIGTERM, _on_term) if _main_thread() else None
    last_ckpt = time.time()
    card = None
    batch_start = None
    try:
        t_budget = time.time()
        while progress["epoch"] < epochs:
            if cfg.max_minutes and progress["history"]:
                last = progress["history"][-1]["seconds"]
                if time.time() - t_budget + last > cfg.max_minutes * 60:
                    log(f"stopping: another epoch would pass the {cfg.max_minutes:g}-minute budget")
                    progress["stopped"] = "time budget"
                    break
            lm.train()
            ep = progress["epoch"]
            bar = tqdm(total=n_batches, initial=progress["batch"], desc=f"epoch {ep + 1}/{epochs}",
                       unit="batch", disable=cfg.dry_run, dynamic_ncols=False, ncols=110, mininterval=10)
            t_ep = time.time()
            tokens_ep = 0
            for b, (i, x, y) in enumerate(bptt_windows(train_data, cfg.bptt)):
                if b < progress["batch"]:
                    continue
                if b >= n_batches:
                    break
                if stop["flag"]:
                    raise KeyboardInterrupt
                state = detach_state(state) if state is not None else None
                # What a checkpoint taken mid-batch must restore, so that a resumed run redoes
                # this batch exactly (same carried state, same dropout masks).
                batch_start = (state, torch.get_rng_state())
                if cfg.reset_state and state is not None:
                    state = _reset_rows(state, cfg.reset_state)
                logits, state = lm(x, state)
                if weights is None and ctx_w is None:
                    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
                else:   # a weighted mean: focus words' targets and focus contexts count more
                    yy = y.reshape(-1)
                    ce = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), yy, reduction="none")
                    if weights is not None:
                        ce = ce * weights[yy]
                    if ctx_w is not None:
                        ce = ce * ctx_w[:, i + 1:i + 1 + y.size(1)].reshape(-1)
                    loss = ce.sum() / yy.numel()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(lm.parameters(), cfg.clip)
                opt.step()
                progress["batch"] = b + 1
                batch_start = None
                progress["tokens_seen"] += y.numel()
                tokens_ep += y.numel()
                el = time.time() - t_ep
                bar.set_postfix(loss=f"{loss.item():.3f}", ppl=f"{math.exp(loss.item()):.0f}",
                                tok_s=f"{tokens_ep / max(el, 1e-9):.0f}", refresh=False)
                bar.update(1)
                if on_batch is not None:
                    on_batch({"epoch": ep + 1, "epochs": epochs, "batch": b + 1, "batches": n_batches,
                              "loss": float(loss.item()), "tokens_per_s": tokens_ep / max(el, 1e-9),
                              "tokens_seen": progress["tokens_seen"]})
                if cfg.snapshot_every and (b + 1) % cfg.snapshot_every == 0 and b + 1 < n_batches:
                    _snapshot(cfg, corpus, tokenizer, lm, progress, valid_data, ep, b + 1, aug_info, log, weights)
                if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                    progress["train_seconds"] += time.time() - t_start
                    t_start = time.time()
                    _save_checkpoint(cfg, lm, opt, progress, state)
                    last_ckpt = time.time()
            bar.close()
            with _calibrated(lm, weights):
                v = evaluate(lm, valid_data, max_batches=3 if cfg.dry_run else 0)
            improved = progress["best_valid"] is None or v["perplexity"] < progress["best_valid"]
            progress["history"].append({"epoch": ep + 1, "valid_perplexity": round(v["perplexity"], 3),
                                        "lr": opt.param_groups[0]["lr"],
                                        "seconds": round(time.time() - t_ep, 1)})
            log(f"epoch {ep + 1}: valid perplexity {v['perplexity']:.2f}"
                f"{' (best)' if improved else ''}, lr {opt.param_groups[0]['lr']:.2e}")
            progress["epoch"] = ep + 1
            progress["batch"] = 0
            state = None
            if improved:
                progress["best_valid"] = v["perplexity"]
                progress["bad_epochs"] = 0
                progress["train_seconds"] += time.time() - t_start
                t_start = time.time()
                card = _card(cfg, corpus, tokenizer, lm, progress, valid=v, test=None, aug_info=aug_info)
                with _calibrated(lm, weights):
                    save_bundle(cfg.out, lm, tokenizer, card)
            else:
                progress["bad_epochs"] += 1
                for g in opt.param_groups:
                    g["lr"] /= cfg.lr_decay
                if progress["bad_epochs"] >= cfg.patience:
                    log(f"early stop: no gain for {cfg.patience} epochs")
                    _save_checkpoint(cfg, lm, opt, progress, state)
                    break
            if cfg.snapshot_every:
                _snapshot(cfg, corpus, tokenizer, lm, progress, valid_data, ep, n_batches, aug_info, log, weights, valid=v)
            _save_checkpoint(cfg, lm, opt, progress, state)
            last_ckpt = time.time()
    except KeyboardInterrupt:
        progress["train_seconds"] += time.time() - t_start
        rng = None
        if batch_start is not None:  # interrupted inside a batch: its update never happened
            state, rng = batch_start
        _save_checkpoint(cfg, lm, opt, progress, state, rng)
        log(f"interrupted at epoch {progress['epoch'] + 1}, batch {progress['batch']}; checkpoint "
            f"saved in {_ckpt_dir(cfg)}; continue with --resume")
        raise Interrupted() from None
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    # Final: test perplexity of the best (saved) model.
    from ..bundle import load_model
    best = load_model(cfg.out)
    best.lm.to(dev)
    t = evaluate(best.lm, test_data, max_batches=3 if cfg.dry_run else 0)
    best.lm.cpu()
    card = dict(best.card)
    card["metrics"]["test"] = {"perplexity": round(t["perplexity"], 3), "tokens": t["tokens"]}
    card["status"] = "complete"
    card["training"]["stopped_because"] = progress.get("stopped") or (
        "early stopping" if progress["bad_epochs"] >= cfg.patience else "epoch limit")
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
        v = valid or evaluate(lm, valid_data, max_batches=3 if cfg.dry_run else 0)
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
