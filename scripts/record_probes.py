"""Record the Probe page's tables for the shipped models, with the project's own command, into each
bundle's probes.json (explorer.analysis.probe_records), so the page shows them at once.

    python scripts/record_probes.py [pretrained/fiction-lstm ...]     (default: every pretrained/* bundle)

For each bundle and each task the page offers it (word models: quote, gender, distance; a character
model: quote, distance, line) it runs, from the repository root,

    python -m explorer probe --model BUNDLE --corpus CORPUS --task TASK --max-train 3000 --max-test 1500

(the page's "small" size, on the page's default corpus: ../shared/data/fiction for a word model,
../shared/data/shakespeare for a character model) and stores the command, the time and the JSON it
printed, with the SHA-256 of the weights it probed (a changed model then shows no stale table).
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZE = (3000, 1500)          # the page's "small"


def main(argv=None) -> int:
    from explorer import load_model
    from explorer.analysis import probe
    from explorer.analysis.probe_records import RECORD_FILE
    from explorer.files import write_json
    from explorer.model import weights_hash

    bundles = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or sorted(
        p.parent for p in (ROOT / "pretrained").glob("*/weights.safetensors"))
    for b in bundles:
        rel = b.resolve().relative_to(ROOT)
        m = load_model(b)
        char = probe.is_char_model(m)
        corpus = "../shared/data/shakespeare" if char else "../shared/data/fiction"
        tasks = [t for t in probe.TASKS if not (t == "gender" and char) and not (t == "line" and not char)]
        runs = []
        for task in tasks:
            cmd = ["python", "-m", "explorer", "probe", "--model", str(rel), "--corpus", corpus, "--task", task,
                   "--max-train", str(SIZE[0]), "--max-test", str(SIZE[1])]
            print(" ".join(cmd), flush=True)
            r = subprocess.run([sys.executable, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:          # a task the corpus cannot label (no quotation in Shakespeare): kept as such
                err = (r.stderr.strip().splitlines() or ["failed"])[-1]
                print(err, file=sys.stderr)
                runs.append({"command": " ".join(cmd), "corpus": corpus, "max_train": SIZE[0], "max_test": SIZE[1],
                             "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"), "error": err})
                continue
            runs.append({"command": " ".join(cmd), "corpus": corpus, "max_train": SIZE[0], "max_test": SIZE[1],
                         "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "report": json.loads(r.stdout)})
        write_json(b / RECORD_FILE, {"weights_sha256": weights_hash(m.lm), "runs": runs})
        print(f"wrote {b / RECORD_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
