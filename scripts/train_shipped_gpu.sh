#!/usr/bin/env bash
# How the shipped models were trained: several candidate runs side by side on one GPU (the project's
# own training code, --device cuda), each capped at a time budget; the LSTM shipped is the candidate
# with the best *validation* perplexity (the test split is only read once per model, at the end).
# The same commands without --device cuda train on the CPU (about 7 min per epoch at 256 units).
#   usage: scripts/train_shipped_gpu.sh OUTDIR [MINUTES]
set -u
OUTDIR=${1:?output folder}; MIN=${2:-7}
mkdir -p "$OUTDIR" runs
C="--corpus ../shared/data/fiction --device cuda --epochs 80 --patience 3 --seed 1234 --checkpoint-minutes 1000 --max-minutes $MIN"
export PYTHONUNBUFFERED=1
python -m explorer train $C --out runs/lstm384-d40 --cell lstm --emb-size 384 --hidden-size 384 --dropout 0.4 > "$OUTDIR/lstm384-d40.log" 2>&1 &
python -m explorer train $C --out runs/lstm384-d50 --cell lstm --emb-size 384 --hidden-size 384 --dropout 0.5 > "$OUTDIR/lstm384-d50.log" 2>&1 &
python -m explorer train $C --out runs/lstm256-d40 --cell lstm --emb-size 256 --hidden-size 256 --dropout 0.4 > "$OUTDIR/lstm256-d40.log" 2>&1 &
python -m explorer train $C --out runs/rnn384-d30 --cell rnn --emb-size 384 --hidden-size 384 --dropout 0.3 --lr 1e-3 > "$OUTDIR/rnn384-d30.log" 2>&1 &
wait
python - "$OUTDIR" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1]); rows = {}
for d in sorted(pathlib.Path("runs").iterdir()):
    if (d / "card.json").is_file():
        c = json.loads((d / "card.json").read_text())
        rows[d.name] = {"valid": c["metrics"]["valid"]["perplexity"], "test": c["metrics"].get("test", {}).get("perplexity"),
                        "epochs": c["training"]["epochs_run"], "status": c["status"], "history": c["training"]["history"]}
lstm = min((k for k in rows if k.startswith("lstm384")), key=lambda k: rows[k]["valid"])
(out / "summary.json").write_text(json.dumps({"runs": rows, "chosen_lstm": lstm}, indent=1))
print(json.dumps({k: {kk: v[kk] for kk in ("valid", "test", "epochs")} for k, v in rows.items()}), "chosen", lstm)
PY
