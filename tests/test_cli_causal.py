"""python -m explorer intervene / patch / probe: JSON out, one-line errors."""
import json
import subprocess
import sys

from conftest import ROOT, TEXT

GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,'


def cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_intervene_prints_json(bundle_dir):
    r = cli("intervene", "--model", str(bundle_dir), "--text", GIRL, "--layer", "2", "--quantity", "c",
            "--units", "3,7", "--set", "0", "--from", "5", "--to", "9")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["interventions"] == ["layer 2 c[3, 7] set to 0 at steps 5–9"]
    steps = out["steps"]
    assert len(steps) == len(out["tokens"]) and steps[0]["token"] == "<eos>"
    assert all(s["dc"][1] == 0 for s in steps[:5]) and steps[5]["dc"][1] > 0
    assert set(steps[-1]["words"]) <= {"miss", "ma'am", "madam", "sir"} and steps[-1]["next"] is None


def test_patch_prints_the_grid(bundle_dir):
    r = cli("patch", "--model", str(bundle_dir), "--clean", GIRL, "--corrupt", BOY, "--target", "miss",
            "--versus", "sir")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    T = len(out["clean"])
    assert out["quantities"] == ["h", "c"] and len(out["restored"]["h"]) == 2 and len(out["restored"]["h"][0]) == T
    assert out["restored"]["h"][1][-1] == 1.0 and out["restored"]["c"][0][0] == 0.0


def test_probe_prints_scores_with_a_control(bundle_dir, tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text((TEXT + "\n\n") * 4, encoding="utf-8")
    (tmp_path / "SPLITS.json").write_text(json.dumps({"valid": ["b.txt"], "test": ["c.txt"], "train": ["a.txt"]}))
    r = cli("probe", "--model", str(bundle_dir), "--corpus", str(tmp_path), "--task", "quote",
            "--max-train", "300", "--max-test", "200")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["train_books"] == ["b.txt"] and out["test_books"] == ["c.txt"] and out["n_test"] == 200
    s = out["scores"][0]
    assert {"accuracy", "control_accuracy", "selectivity", "majority", "verdict"} <= set(s)


def test_bad_input_is_one_line(bundle_dir, tmp_path):
    r = cli("patch", "--model", str(bundle_dir), "--clean", "a girl", "--corrupt", "a tall boy", "--target", "miss",
            "--versus", "sir")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "same count" in r.stderr
    r = cli("intervene", "--model", str(bundle_dir), "--text", GIRL, "--layer", "1", "--quantity", "c",
            "--units", "x", "--set", "0")
    assert r.returncode == 2 and "comma-separated integers" in r.stderr
    r = cli("probe", "--model", str(bundle_dir), "--corpus", str(tmp_path), "--task", "line")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
