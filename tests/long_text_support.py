"""Peak memory of each analysis behind a page that takes text, on a 5,000-word passage (issue 22).

Run as a script, in a fresh process per case, so that the peak resident set (getrusage's ru_maxrss,
a high-water mark) belongs to that case alone:

    python tests/long_text_support.py CASE [--words 5000] [--limit-gb 8]

It loads the shipped fiction-lstm, reads a short text once (imports, the kernels' first allocations),
records the resident set, runs CASE on the passage as the page would (the text clipped to
settings.MAX_CHARS, as every page clips it) and prints one JSON line: case, tokens, seconds,
peak_growth_mb (the peak resident set minus the one before the case), and error (an InputError's
message, e.g. a stated limit, or a MemoryError when the address-space limit was hit).

The passage is the opening of the held-out Austen novel shipped in corpora/heldout (the default
corpus of explorer.settings), with she -> he and her -> his for the corrupted text of Patch.
`--limit-gb` caps the process's address space so that a case that would exhaust the machine fails
with a MemoryError instead.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FICTION = ROOT / "pretrained" / "fiction-lstm"
FICTION_B = ROOT / "pretrained" / "fiction-lstm-balanced"


def corpus_dir() -> Path:
    from explorer import settings
    return settings.default_corpus(ROOT / "corpora" / "heldout")


def passage(words: int = 5000, book: str = "austen_persuasion.txt", skip: int = 2000) -> str:
    """`words` words of running text from a shipped test book (after its front matter)."""
    body = (corpus_dir() / book).read_text(encoding="utf-8").split()
    return " ".join(body[skip:skip + words])


def corrupted(text: str) -> str:
    """The Patch page's pair: she -> he, her -> his (the same token count)."""
    swap = {"she": "he", "She": "He", "her": "his", "Her": "His"}
    return re.sub(r"\b(she|She|her|Her)\b", lambda m: swap[m.group(1)], text)


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> float:
    """Reset the peak resident set (Linux: clear_refs 5) and return the resident set now, in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cases(model, other, text):
    from explorer import analysis, clip_text, trace
    from explorer.analysis import attribution, intervene, memory, patch
    from explorer.analysis.contrast import contrast_traces, next_word_comparison

    def memory_page():        # what the Memory page computes for one text (its default widgets)
        tr = trace(model, text)
        attribution.attribute(model, text, len(tr) - 1, "miss", versus="sir", methods=("occlusion",))
        memory.cell_provenance(tr, len(tr) - 1, 2)
        memory.memory_matrix(tr, 2, 5)
        memory.memory_matrix(tr, 2, None)

    return {
        "explore": lambda: trace(model, text),
        "patch": lambda: patch.patch_grid(model, text, corrupted(text), "miss", "sir"),
        "patch_one": lambda: patch.patched_trace(model, text, corrupted(text), "miss", "sir", 2, 5, "h"),
        "memory": memory_page,
        "attribution_occlusion": lambda: attribution.attribute(model, text, None, "miss", versus="sir",
                                                               methods=("occlusion",)),
        "attribution_grad": lambda: attribution.attribute(model, text, None, "miss", versus="sir",
                                                          methods=("grad_x_input",)),
        "attribution_ig": lambda: attribution.attribute(model, text, None, "miss", versus="sir",
                                                        methods=("integrated_gradients",)),
        "attribution_all": lambda: attribution.attribute(model, text, None, "miss", versus="sir"),
        "memory_matrix": lambda: (memory.memory_matrix(trace(model, text), 2, None),
                                  memory.memory_matrix(trace(model, text), 2, 5)),
        "intervene": lambda: intervene.intervene(model, text, intervene.Intervention(2, "c", (161, 40)),
                                                 words=("miss", "sir")),
        "unit_effects": lambda: intervene.unit_effects(model, text, 2, "c", "miss", "sir"),
        "contrast": lambda: next_word_comparison(
            model, contrast_traces(trace(model, text), trace(model, clip_text(passage(5000, "holmes_the_valley_of_fear.txt"))[0])),
            None, ("miss", "sir"), 8),
        "generate": lambda: analysis.generate_trace(model, text, n=30, temperature=1.0, top_k=40, seed=1, trace_top_k=10),
        "compare": lambda: analysis.compare(model, other, text, None, top_k=10),
    }


CASES = ("explore", "patch", "patch_one", "memory", "attribution_occlusion", "attribution_grad", "attribution_ig",
         "attribution_all", "memory_matrix", "intervene", "unit_effects", "contrast", "generate", "compare")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=CASES)
    ap.add_argument("--words", type=int, default=5000)
    ap.add_argument("--limit-gb", type=float, default=8.0)
    a = ap.parse_args(argv)
    import torch

    from explorer import clip_text, load_model, trace
    from explorer.errors import InputError
    torch.set_num_threads(1)
    model = load_model(FICTION)
    other = load_model(FICTION_B) if a.case == "compare" else None
    text = clip_text(passage(a.words))[0]
    trace(model, "A girl walked into a bar, and she said")         # warm-up
    cases = _cases(model, other, text)
    tokens = len(trace(model, text))
    lim = int(a.limit_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    before = _reset_peak()
    t0 = time.perf_counter()
    error = None
    try:
        cases[a.case]()
    except (InputError, MemoryError, RuntimeError) as e:       # torch reports a failed allocation as RuntimeError
        error = f"{type(e).__name__}: {e}"[:300]
    seconds = time.perf_counter() - t0
    print(json.dumps({"case": a.case, "words": a.words, "tokens": tokens,
                      "seconds": round(seconds, 2), "peak_growth_mb": round(_peak_mb() - before, 1),
                      "error": error}))


if __name__ == "__main__":
    main()
