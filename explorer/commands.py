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


def _split(args):
    """The corpus of `args` split as its --split-file / --train-files / --valid-files / --test-files say."""
    from .training.data import read_corpus, split_spec
    return read_corpus(args.corpus, args.split_file, files=split_spec(args.train_files, args.valid_files,
                                                                      args.test_files))


def cmd_eval(args, command):
    from .bundle import load_model
    from .training.data import split_spec
    from .training.evals import evaluate_corpus
    return evaluate_corpus(load_model(args.model), args.corpus, args.split, split_file=args.split_file,
                           files=split_spec(args.train_files, args.valid_files, args.test_files),
                           allow_training_text=args.allow_training_text)


def _load(path):
    from .bundle import load_model
    return load_model(path)


def _read_input(path: str) -> str:
    """A file's text, or standard input's for "-"."""
    from .training.data import read_text
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise ExplorerError(f"{p}: no such file" + (" (it is a folder)" if p.is_dir() else ""))
    return read_text(p)


def cmd_trace(args, command):
    from .trace import trace
    if (args.text is None) == (args.file is None):
        raise ExplorerError("give the text or --file PATH (- for standard input), not both and not neither")
    text = args.text if args.file is None else _read_input(args.file)
    tr = trace(_load(args.model), text, top_k=args.top_k)
    return tr.to_json(states=not args.no_states, k=args.top_k)


def cmd_score(args, command):
    m = _load(args.model)
    lines = _read_input(args.file).splitlines()
    scored = iter(m.score_batch([ln for ln in lines if ln.strip()]))
    for i, ln in enumerate(lines, 1):
        if ln.strip():
            r = next(scored)
            out = {"line": i} | {k: r[k] for k in ("text", "logprob", "n_tokens", "n_unk")}
        else:
            out = {"line": i, "text": ln, "logprob": None, "n_tokens": 0, "n_unk": 0}
        print(json.dumps(out, ensure_ascii=False))
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
    from .training.data import encode_texts
    from .training.ngram import KneserNey
    m = _load(args.model)
    corpus = _split(args)
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
    from .training.evals import syneval
    m = _load(args.model)
    out = syneval(m, args.suite, args.max_items) | {"command": command}
    if args.record:
        _record(args.model, "syneval", {k: v for k, v in out["syneval"].items() if k != "conditions"}
                | {"conditions": out["syneval"]["conditions"], "command": command})
        _record(args.model, "agreement_pairs", out["agreement"])
        _record(args.model, "bartender", out["bartender"])
    return out


def cmd_import(args, command):
    from .importer import import_to_bundle
    return import_to_bundle(args.out, args.weights, args.vocab, command=command, cell=args.cell, maps=args.map,
                            name=args.name, tokenizer=args.tokenizer, chars=args.chars, unk=args.unk, eos=args.eos,
                            nonlinearity=args.nonlinearity, key=args.key, check=args.check,
                            check_text=args.check_text, eos_means=args.eos_means, sample_text=args.sample_text)


def cmd_index(args, command):
    from .corpus.commands import cmd_index as run
    return run(args, command)


def cmd_match(args, command):
    from .corpus.commands import cmd_match as run
    return run(args, command)


def cmd_units(args, command):
    from .corpus.commands import cmd_units as run
    return run(args, command)


def cmd_neighbours(args, command):
    from .corpus.commands import cmd_neighbours as run
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
        iv = Intervention(args.layer, args.quantity, _units(args.units), op, value, args.start, args.stop)
        r = intervene(m, args.text, iv, words=[w.strip() for w in args.words.split(",") if w.strip()])
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    if r.unknown_words:
        print(f"note: not one known token of the vocabulary, left out: {', '.join(r.unknown_words)}", file=sys.stderr)
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
    import warnings

    from .analysis.probe import probe
    from .training.data import split_spec
    m = _load(args.model)
    try:
        with warnings.catch_warnings():         # they are in the JSON, and one line each on stderr below
            warnings.simplefilter("ignore", UserWarning)
            r = probe(m, args.corpus, args.task, max_train=args.max_train, max_test=args.max_test, seed=args.seed,
                      index=args.index, split_file=args.split_file,
                      files=split_spec(args.train_files, args.valid_files, args.test_files),
                      allow_training_text=args.allow_training_text)
    except ValueError as e:
        raise ExplorerError(str(e)) from None
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return r.to_json() | {"command": command}


def cmd_export(args, command):
    from .files import write_bytes
    from .present.export import export
    m = _load(args.model)
    data = export(m, args.text, args.what, args.format, layer=args.layer, position=args.position)
    out = write_bytes(args.out, data)
    return {"out": str(out), "what": args.what, "format": args.format, "bytes": len(data), "model": m.name}


def cmd_compare(args, command):
    from .analysis.compare import compare
    if len(args.model) != 2:
        raise ExplorerError(f"give --model exactly twice (A, then B), not {len(args.model)} time(s)")
    a, b = _load(args.model[0]), _load(args.model[1])
    if args.layer is not None:
        from .engine import LAYER_HELP, layer_index
        try:
            layer_index(args.layer, a.config.layers)
        except ExplorerError:
            raise ExplorerError(f"--layer {args.layer}: the models have {a.config.layers} layers "
                                f"({LAYER_HELP})") from None
    source, limit = {}, None
    if args.corpus is not None:
        text, source = _compare_corpus(args, a, b)
        limit = len(text)
    elif args.file is not None:
        text, source = _read_input(args.file), {"file": args.file}
    else:
        text = args.text
    r = compare(a, b, text, args.layer, max_chars=limit)
    return source | r.to_json(top=args.top, units=args.units) | {"command": command}


def _compare_corpus(args, a, b):
    """compare --corpus: the held-out text both models read (the first part of each book of the split;
    a folder of held-out books with no split file tests on its last book), refused where either model's
    card lists a book as training text; and what to record about it."""
    from .analysis.compare import heldout_text
    from .training.data import check_held_out, read_corpus, split_spec
    corpus = read_corpus(args.corpus, args.split_file, need=(args.split,), unsplit="last",
                         files=split_spec(args.train_files, args.valid_files, args.test_files))
    out = {"corpus": args.corpus, "split": args.split, "files": corpus.files()[args.split],
           "split_source": corpus.source}
    if args.split != "train":         # the training split is read as training text; a held-out one must not be
        checks = [check_held_out(m.card, corpus, (args.split,), args.allow_training_text) for m in (a, b)]
        out |= {"allow_training_text": args.allow_training_text,
                "training_text_read": sorted({n for c in checks for n in c["training_text_read"]}),
                "training_text_check": {"model_a": checks[0]["training_text_check"],
                                        "model_b": checks[1]["training_text_check"]}}
    return heldout_text(a, corpus[args.split], args.max_tokens), out
