"""Probe tables recorded with a bundle, so the Probe page shows a shipped model's results at once.

`scripts/record_probes.py` runs the project's own command (`python -m explorer probe ...`) for each
task the model takes and writes BUNDLE/probes.json:

    {"weights_sha256": "...",            # explorer.model.weights_hash of the weights probed
     "runs": [{"command": "python -m explorer probe --model ... --task quote ...",
               "corpus": "../shared/data/fiction", "max_train": 3000, "max_test": 1500,
               "recorded": "2026-12-02T15:40:00+00:00", "report": {...ProbeReport.to_json()...}}]}

A record is used only while the bundle's weights still have that hash: a retrained or replaced model
does not show stale tables. The recorded report holds the scores, not the fitted probes, so reading a
text word by word still needs a fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .probe import ProbeReport, ProbeScore

RECORD_FILE = "probes.json"
#: Paths in a record are relative to the repository root (where the command ran).
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Recorded:
    report: ProbeReport | None     # None when the record is stale
    command: str
    path: Path                     # the probes.json it came from
    recorded: str                  # when (ISO time)
    stale: bool                    # made for other weights than the bundle's


_REPORT_KEYS = {"task", "description", "labels", "model", "train_books", "test_books", "n_train", "n_test",
                "train_counts", "test_counts", "label_counts", "eos_means", "warnings", "scores", "command"}


def report_from_json(d: dict) -> ProbeReport:
    """A ProbeReport from its to_json() (the scores and label counts; no fitted probes)."""
    labels = tuple(d["labels"])
    scores = tuple(ProbeScore(layer=int(s["layer"]), quantity=s["quantity"], accuracy=float(s["accuracy"]),
                              control_accuracy=float(s["control_accuracy"]), majority=float(s["majority"]),
                              control_majority=float(s["control_majority"])) for s in d["scores"])
    held = {k: v for k, v in d.items() if k not in _REPORT_KEYS}      # the split and the held-out check
    return ProbeReport(task=d["task"], label_names=labels, model=d["model"], train_books=tuple(d["train_books"]),
                       test_books=tuple(d["test_books"]), n_train=int(d["n_train"]), n_test=int(d["n_test"]),
                       train_counts=tuple(int(d["train_counts"][k]) for k in labels),
                       test_counts=tuple(int(d["test_counts"][k]) for k in labels), scores=scores, probes={},
                       eos_means=d.get("eos_means", "paragraph"), warnings=tuple(d.get("warnings") or ()),
                       held_out=held)


def _same_path(a, b) -> bool:
    pa, pb = Path(a), Path(b)
    pa = pa if pa.is_absolute() else ROOT / pa
    pb = pb if pb.is_absolute() else ROOT / pb
    try:
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


def lookup(bundle, weights_sha256: str, corpus, task: str, max_train: int, max_test: int) -> Recorded | None:
    """The record of this fit (corpus, task and sizes) stored with the bundle at `bundle`, or None.
    `weights_sha256`: the bundle's weights_hash; a record made for other weights comes back stale."""
    from ..bundle import read_json_file
    path = Path(bundle) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        rec = read_json_file(path)
    except Exception:          # noqa: BLE001 - an unreadable record is no record
        return None
    for run in rec.get("runs") or []:
        if (run.get("report", {}).get("task") == task and int(run.get("max_train", -1)) == int(max_train)
                and int(run.get("max_test", -1)) == int(max_test) and _same_path(run.get("corpus", ""), corpus)):
            stale = rec.get("weights_sha256") != weights_sha256
            return Recorded(report=None if stale else report_from_json(run["report"]), command=run.get("command", ""),
                            path=path, recorded=run.get("recorded", ""), stale=stale)
    return None
