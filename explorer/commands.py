"""The CLI's commands as functions of parsed arguments (kept apart from argument parsing)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import ExplorerError


def cmd_train(args, command):
    from .train import Interrupted, TrainConfig, train
    cfg = TrainConfig(corpus=args.corpus, out=args.out, split=args.split, tokenizer=args.tokenizer,
                      vocab_size=args.vocab_size, cell=args.cell, emb_size=args.emb_size,
                      hidden_size=args.hidden_size, layers=args.layers, dropout=args.dropout,
                      tied=not args.untied, batch_size=args.batch_size, bptt=args.bptt, lr=args.lr,
                      clip=args.clip, epochs=args.epochs, patience=args.patience, seed=args.seed,
                      threads=args.threads, checkpoint_minutes=args.checkpoint_minutes,
                      dry_run=args.dry_run, max_batches=args.max_batches, resume=args.resume,
                      command=command)
    try:
        card = train(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    except Interrupted:
        raise KeyboardInterrupt from None
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return {"out": args.out, "metrics": card["metrics"], "epochs": card["training"]["epochs_run"]}


def cmd_eval(args, command):
    from .bundle import load_model
    from .data import batchify, encode_texts, read_corpus
    from .train import evaluate
    m = load_model(args.model)
    corpus = read_corpus(args.corpus, args.split_file)
    stream = encode_texts(m.tokenizer, corpus[args.split])
    r = evaluate(m.lm, batchify(stream, 10))
    unk = (stream == m.tokenizer.unk_id).float().mean().item()
    return {"perplexity": round(r["perplexity"], 3), "tokens": r["tokens"], "unk_rate": round(unk, 5),
            "split": args.split}
