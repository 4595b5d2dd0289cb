"""The CLI's commands as functions of parsed arguments (kept apart from argument parsing)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import ExplorerError


def cmd_train(args, command):
    from .training.train import Interrupted, train
    cfg = _train_config(args, command)
    try:
        card = train(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    except Interrupted:
        raise KeyboardInterrupt from None
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return {"out": args.out, "metrics": card["metrics"], "epochs": card["training"]["epochs_run"],
            "files": card["training"]["split"]}


def _train_config(args, command):
    """The TrainConfig of a parsed `train` command: every field that is a flag (cli._train_parser) from its
    argument, and the command line."""
    from .training.train import TrainConfig, cli_fields
    return TrainConfig(**{f.name: getattr(args, f.name) for f in cli_fields()}, command=command)


def cmd_eval(args, command):
    from .bundle import load_model
    from .training.data import batchify, encode_texts, read_corpus
    from .training.train import evaluate
    m = load_model(args.model)
    corpus = read_corpus(args.corpus, args.split_file)
    stream = encode_texts(m.tokenizer, corpus[args.split])
    r = evaluate(m.lm, batchify(stream, 10))
    unk = (stream == m.tokenizer.unk_id).float().mean().item()
    return {"perplexity": round(r["perplexity"], 3), "tokens": r["tokens"], "unk_rate": round(unk, 5),
            "split": args.split, "files": corpus.files()[args.split], "split_file": corpus.split_file,
            "split_source": corpus.source}


def _load(path):
    from .bundle import load_model
    return load_model(path)


def cmd_trace(args, command):
    from .trace import trace
    tr = trace(_load(args.model), args.text, top_k=args.top_k)
    return tr.to_json(states=not args.no_states, k=args.top_k)


def cmd_score(args, command):
    from .training.data import read_text
    m = _load(args.model)
    p = Path(args.file)
    if not p.is_file():
        raise ExplorerError(f"{p}: no such file")
    lines = [ln for ln in read_text(p).splitlines() if ln.strip()]
    for r in m.score_batch(lines):
        print(json.dumps({k: r[k] for k in ("text", "logprob", "n_tokens", "n_unk")}, ensure_ascii=False))
    return None


def cmd_generate(args, command):
    m = _load(args.model)
    try:
        ids = m.sample_ids(args.prompt, n=args.n, temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return {"prompt": args.prompt, "generated": m.tokenizer.decode(ids),
            "text": m.tokenizer.extend_text(args.prompt, ids)[0], "seed": args.seed,
            "temperature": args.temperature}


def _record(model_dir, key, value):
    """Merge a result into a bundle's card.json (atomically)."""
    from .files import write_json
    p = Path(model_dir) / "card.json"
    card = json.loads(p.read_text(encoding="utf-8"))
    card.setdefault("metrics", {})[key] = value
    write_json(p, card)


def cmd_ngram(args, command):
    import time
    from .training.data import encode_texts, read_corpus
    from .training.ngram import KneserNey
    m = _load(args.model)
    corpus = read_corpus(args.corpus, args.split_file)
    t0 = time.time()
    streams = {s: encode_texts(m.tokenizer, corpus[s]).tolist() for s in ("train", "valid", "test")}
    kn = KneserNey(args.order, len(m.tokenizer)).fit(streams["train"])
    out = {"model": f"interpolated Kneser-Ney, order {args.order}", "order": args.order,
           "vocab_size": len(m.tokenizer),
           "valid": {k: round(v, 3) for k, v in kn.evaluate(streams["valid"]).items()},
           "test": {k: round(v, 3) for k, v in kn.evaluate(streams["test"]).items()},
           "seconds": round(time.time() - t0, 1), "files": corpus.files(), "split_file": corpus.split_file,
           "split_source": corpus.source, "command": command}
    if args.record:
        _record(args.model, f"ngram_order{args.order}", out)
    if args.save:
        kn.save(args.save)
        out["saved"] = str(args.save)
    return out


def cmd_syneval(args, command):
    from .training.evals import agreement_pairs, bartender_margin, minimal_pairs, run_suite_folder
    m = _load(args.model)
    out = {"syneval": run_suite_folder(m, args.suite, args.max_items),
           "agreement": minimal_pairs(m, agreement_pairs()),
           "bartender": bartender_margin(m), "command": command}
    if args.record:
        _record(args.model, "syneval", {k: v for k, v in out["syneval"].items() if k != "conditions"}
                | {"conditions": out["syneval"]["conditions"], "command": command})
        _record(args.model, "agreement_pairs", out["agreement"])
        _record(args.model, "bartender", out["bartender"])
    return out


def cmd_import(args, command):
    from .importer import import_to_bundle
    return import_to_bundle(args.out, args.weights, args.vocab, command=command, cell=args.cell, maps=args.map,
                            name=args.name, tokenizer=args.tokenizer, chars=args.chars, unk=args.unk, eos=args.eos)


def cmd_index(args, command):
    from .corpus.commands import cmd_index as run
    return run(args, command)


def cmd_match(args, command):
    from .corpus.commands import cmd_match as run
    return run(args, command)


def cmd_units(args, command):
    from .corpus.commands import cmd_units as run
    return run(args, command)


def _units(raw: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in raw.split(",") if u.strip())
    except ValueError:
        raise ExplorerError(f"--units must be comma-separated integers, not {raw!r}") from None
    if not units:
        raise ExplorerError("--units names no unit")
    return units


def cmd_intervene(args, command):
    from .analysis.intervene import Intervention, intervene
    m = _load(args.model)
    op, value = next((o, v) for o, v in (("set", args.set), ("add", args.add), ("scale", args.scale)) if v is not None)
    try:
        iv = Intervention(args.layer - 1, args.quantity, _units(args.units), op, value, args.start, args.stop)
        r = intervene(m, args.text, iv, words=[w.strip() for w in args.words.split(",") if w.strip()])
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return {"model": m.name, "layer": args.layer, "quantity": args.quantity, "units": list(iv.units),
            "op": op, "value": value, "from": args.start, "to": args.stop} | r.to_json() | {"command": command}


def cmd_patch(args, command):
    from .analysis.patch import patch_grid
    m = _load(args.model)
    qs = [q.strip() for q in args.quantities.split(",") if q.strip()] or None
    try:
        g = patch_grid(m, args.clean, args.corrupt, args.target, args.versus, qs)
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return {"model": m.name, "layers": list(range(1, m.config.layers + 1))} | g.to_json() | {"command": command}


def cmd_probe(args, command):
    from .analysis.probe import probe
    m = _load(args.model)
    try:
        r = probe(m, args.corpus, args.task, max_train=args.max_train, max_test=args.max_test, seed=args.seed,
                  index=args.index)
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    return r.to_json() | {"command": command}


def cmd_export(args, command):
    from .files import write_bytes
    from .present.export import export
    m = _load(args.model)
    data = export(m, args.text, args.what, args.format, layer=None if args.layer is None else args.layer - 1,
                  position=args.position)
    out = write_bytes(args.out, data)
    return {"out": str(out), "what": args.what, "format": args.format, "bytes": len(data), "model": m.name}
