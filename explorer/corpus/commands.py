"""The corpus commands of the command line (index, match, units): argument definitions and bodies.
explorer/cli.py adds these parsers and explorer/commands.py calls these functions; each returns JSON."""
from __future__ import annotations

from pathlib import Path

from ..errors import ExplorerError
from ..trace import significant


def add_parsers(sub, positive_int, nonneg_float, layer) -> None:
    """index, match, units and neighbours; `layer` is the CLI's layer type (1 = the bottom layer, 0 refused)."""
    ix = sub.add_parser("index", help="index a model's states over a corpus (zarr + Parquet)")
    ix.add_argument("--model", required=True)
    ix.add_argument("--corpus", required=True, help="a folder of .txt files (searched recursively) or one file")
    ix.add_argument("--out", required=True, help="index folder to write (or to continue writing)")
    ix.add_argument("--quantities", default=None, help="comma-separated, e.g. h,c (default: h,c for an LSTM, h otherwise)")
    ix.add_argument("--layers", default="all",
                    help="'all' or comma-separated layer numbers, 1 = the bottom layer (e.g. 1,2)")
    ix.add_argument("--workers", type=positive_int, default=1,
                    help="local processes, each running a group of files as the rows of one batch")
    ix.add_argument("--threads", type=positive_int, default=1,
                    help="torch threads per process (default 1: parallelism comes from --workers)")
    ix.add_argument("--scheduler", default=None, help="a Dask distributed scheduler address, e.g. tcp://host:8786")
    ix.add_argument("--no-progress", action="store_true")
    ix.add_argument("--rows", type=positive_int, default=None,
                    help="files run side by side as the rows of one batch (default 16)")
    ix.add_argument("--segment-tokens", type=positive_int, default=None,
                    help="steps per block of the batched run (default 512)")
    ix.add_argument("--checkpoint-seconds", type=nonneg_float, default=None,
                    help="seconds between checkpoints (default 20): a killed build redoes at most that much")

    m = sub.add_parser("match", help="select a token range of a text; find where its units are on in the corpus")
    m.add_argument("--index", required=True)
    m.add_argument("--text", required=True)
    m.add_argument("--start", type=int, required=True, help="first token (0 is the boundary token <eos>)")
    m.add_argument("--end", type=int, required=True, help="one past the last token")
    m.add_argument("--layer", type=layer, required=True, help="1 = the bottom layer")
    m.add_argument("--quantity", default="h")
    m.add_argument("--threshold", type=float, default=0.3)
    m.add_argument("--top", type=positive_int, default=20)
    m.add_argument("--quiet-before", action="store_true", help="units must also be off just before the range")
    m.add_argument("--min-units", type=positive_int, default=None,
                   help="a match needs at least this many of the hypothesis units on (default: all)")
    m.add_argument("--model", default=None, help="the model (default: the one named in the index card)")
    m.add_argument("--scheduler", default=None, help="read the index through dask.array on this Dask "
                   "distributed scheduler (e.g. tcp://host:8786; its workers see the index's path)")

    u = sub.add_parser("units", help="the unit dictionary: top contexts, histogram, decoder effects; "
                                     "or rank units by a token predicate")
    u.add_argument("--index", required=True)
    u.add_argument("--layer", type=layer, required=True, help="1 = the bottom layer")
    u.add_argument("--quantity", default="h")
    u.add_argument("--unit", type=int, default=None)
    u.add_argument("--top", type=positive_int, default=20)
    u.add_argument("--predicate", default=None,
                   help="rank units by AUC for: inside_quotes, after_female, sentence_start, late_in_line")
    u.add_argument("--model", default=None, help="the model (default: the one named in the index card)")
    u.add_argument("--scheduler", default=None, help="read the index through dask.array on this Dask "
                   "distributed scheduler (e.g. tcp://host:8786; its workers see the index's path)")

    nb = sub.add_parser("neighbours", help="the corpus tokens whose state is nearest (cosine) to the state "
                                           "after one token of a text")
    nb.add_argument("--index", required=True)
    nb.add_argument("--text", required=True)
    nb.add_argument("--position", type=int, required=True,
                    help="the token of the text (0 is the boundary token <eos>)")
    nb.add_argument("--layer", type=layer, required=True, help="1 = the bottom layer")
    nb.add_argument("--quantity", default="h")
    nb.add_argument("--top", type=positive_int, default=20)
    nb.add_argument("--model", default=None, help="the model (default: the one named in the index card)")


def _model_for(index_path, model_arg):
    from ..bundle import load_model
    from .index import open_index
    idx = open_index(index_path)
    path = model_arg or idx.card["model"].get("path")
    if not path:
        raise ExplorerError(f"the index {index_path} does not name a model folder; pass --model")
    if not Path(path).is_dir():
        raise ExplorerError(f"the model {path} named by the index is not there; pass --model")
    model = load_model(path)
    idx.check_model(model)
    return idx, model


def cmd_index(args, command):
    from ..bundle import load_model
    from .index import build_index
    model = load_model(args.model)
    card = build_index(model, args.corpus, args.out, quantities=args.quantities, layers=args.layers,
                       workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                       command=command, threads=args.threads,
                       **({"segment_tokens": args.segment_tokens} if args.segment_tokens else {}),
                       **({"rows": args.rows} if args.rows else {}),
                       **({"checkpoint_seconds": args.checkpoint_seconds} if args.checkpoint_seconds is not None else {}))
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    secs = card["built"]["seconds"]
    return {"out": args.out, "tokens": card["tokens"], "files": len(card["files"]), "layers": card["layers"],
            "quantities": card["quantities"], "seconds": secs,
            "tokens_per_s": round(card["tokens"] / secs, 1) if secs else None,
            "bytes_on_disk": size, "model_weights_sha256": card["model"]["weights_sha256"]}


def cmd_match(args, command):
    from .queries import match
    idx, model = _model_for(args.index, args.model)
    r = match(idx, model, args.text, args.start, args.end, args.layer, args.quantity, args.threshold,
              args.top, args.quiet_before, min_units=args.min_units, scheduler=args.scheduler)
    out = r.to_json()
    if not r.selection.units:
        out["note"] = (f"no unit is above {args.threshold} at every token of the selection; "
                       "lower --threshold or select fewer tokens")
    return out


def cmd_units(args, command):
    from .queries import PREDICATES, rank_units, unit_profile
    if (args.unit is None) == (args.predicate is None):
        raise ExplorerError("give --unit U (the dictionary entry) or --predicate NAME (search), not both or neither")
    if args.predicate is not None:
        import sys
        import warnings

        from .index import open_index
        idx = open_index(args.index)
        with warnings.catch_warnings():         # they are in the JSON, and one line each on stderr below
            warnings.simplefilter("ignore", UserWarning)
            df = rank_units(idx, args.layer, args.quantity, args.predicate, args.top, scheduler=args.scheduler)
        for w in df.attrs["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        return {"predicate": args.predicate, "description": PREDICATES[args.predicate][0],
                "layer": args.layer, "quantity": args.quantity,
                "units": [{"unit": int(r.unit), "auc": significant(r.auc),
                           "separation": significant(r.separation)} for r in df.itertuples()],
                "n_pos": int(df["n_pos"].iloc[0]) if len(df) else 0,
                "n_neg": int(df["n_neg"].iloc[0]) if len(df) else 0,
                "counts": df.attrs["counts"], "eos_means": df.attrs["eos_means"], "warnings": df.attrs["warnings"]}
    idx, model = _model_for(args.index, args.model)
    return unit_profile(idx, args.layer, args.quantity, args.unit, args.top, model=model,
                        scheduler=args.scheduler).to_json()


def cmd_neighbours(args, command):
    from .queries import neighbours
    idx, model = _model_for(args.index, args.model)
    return neighbours(idx, model, args.text, args.position, args.layer, args.quantity, args.top).to_json()
