import json
import subprocess
import sys

import pytest

from conftest import ROOT


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, input=stdin)


def test_trace_prints_json(bundle_dir):
    r = cli("trace", "--model", str(bundle_dir), "Mary loves John .", "--top-k", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [t["text"] for t in out["tokens"]] == ["<eos>", "Mary", "loves", "John", "."]
    assert set(out["layers"][0]) == {"h", "c", "i", "f", "g", "o"}
    assert len(out["layers"][1]["c"]) == 5 and len(out["next"][0]["top"]) == 3
    assert out["next"][-1]["actual_prob"] is None and out["next"][0]["actual_prob"] > 0


def test_score_one_object_per_line(bundle_dir, tmp_path):
    f = tmp_path / "lines.txt"
    f.write_text("Mary loves John .\n\nzzz qqq\n", encoding="utf-8")
    r = cli("score", "--model", str(bundle_dir), str(f))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["text"] for x in rows] == ["Mary loves John .", "", "zzz qqq"]    # one line out per line in
    assert rows[0]["n_tokens"] == 4 and rows[0]["n_unk"] == 0 and rows[0]["logprob"] < 0
    assert rows[1]["logprob"] is None and rows[2]["n_unk"] == 2
    assert set(rows[0]) == {"line", "text", "logprob", "n_tokens", "n_unk"}


def test_generate_is_seeded(bundle_dir):
    a = cli("generate", "--model", str(bundle_dir), "the girl", "--n", "6", "--seed", "4")
    b = cli("generate", "--model", str(bundle_dir), "the girl", "--n", "6", "--seed", "4")
    assert a.returncode == 0 and json.loads(a.stdout)["generated"] == json.loads(b.stdout)["generated"]
    assert len(json.loads(a.stdout)["generated"]) == 6


@pytest.mark.parametrize("args,needle", [
    (["trace", "--model", "/no/such/model", "hi"], "not a folder"),
    (["trace", "--model", "MODEL"], "give the text or --file"),
    (["trace", "--model", "MODEL", "hi", "--top-k", "0"], "at least 1"),
    (["generate", "--model", "MODEL", "hi", "--temperature", "-1"], "at least 0"),
    (["score", "--model", "MODEL", "/no/such/file.txt"], "no such file"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_one_line_exit_2(bundle_dir, args, needle):
    r = cli(*[str(bundle_dir) if a == "MODEL" else a for a in args])
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_too_long_text_from_the_cli(bundle_dir):
    r = cli("trace", "--model", str(bundle_dir), "x " * 15_000)
    assert r.returncode == 2 and "the limit is 20,000" in r.stderr
