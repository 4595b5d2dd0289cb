"""The corpus index: equal to the trace, resumable, the same from local workers and Dask, and clear
refusals of bad input. Tiny in-process models and short texts keep it fast."""
from __future__ import annotations

import errno
import json

import numpy as np
import pyarrow as pa
import pytest
import zarr

from conftest import TEXT, make_model
from explorer.bundle import load_model
from explorer.cli import main
from explorer.corpus import index as IX
from explorer.corpus.index import IndexProblem, build_index, open_index
from explorer.errors import CorpusError
from explorer.trace import trace

SEG = 40   # steps per block of the batched build in these tests: every file spans several, so the state is carried
FAST = dict(segment_tokens=SEG, progress=False, checkpoint_seconds=0)     # a checkpoint after every block


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a busy 2-core machine: OpenMP threads spin-wait on each other (60 ms for an
    8-token torch.lstm call with 2 threads, under 1 ms with one)."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "a.txt").write_text(TEXT + "\n\n" + TEXT.upper(), encoding="utf-8")
    (d / "sub").mkdir()
    (d / "sub" / "b.txt").write_text("\u201cWell,\u201d said she, \u201cI am here.\u201d\n\nHe left.", encoding="utf-8")
    (d / "c.txt").write_text(TEXT[200:700], encoding="utf-8")
    (d / "empty.txt").write_text("  \n", encoding="utf-8")
    return d


def _arrays(path):
    """Every array of the index as any zarr v3 reader sees it."""
    g = zarr.open_group(str(path / "states.zarr"), mode="r")
    out = {}
    for lname, grp in g.groups():
        for qname, qg in grp.groups():
            for kind, arr in qg.arrays():
                out[f"{lname}/{qname}/{kind}"] = arr[:]
    return out


def _table(path):
    return pa.ipc.open_file(pa.memory_map(str(path / "tokens.arrow"))).read_all()


def _same_index(a, b):
    A, B = _arrays(a), _arrays(b)
    assert A.keys() == B.keys() and A
    for k in A:
        assert A[k].dtype == B[k].dtype and np.array_equal(A[k], B[k]), k
    assert _table(a).equals(_table(b))


@pytest.fixture(scope="module")
def plain(tmp_path_factory, corpus, models_dir):
    m = load_model(models_dir / "tiny-lstm")
    out = tmp_path_factory.mktemp("idx") / "plain"
    build_index(m, corpus, out, **FAST)
    return m, out


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_index_equals_trace(tmp_path, corpus, cell):
    m = make_model(cell, layers=2)
    card = build_index(m, corpus, tmp_path / "i", segment_tokens=SEG, rows=2, progress=False)
    idx = open_index(tmp_path / "i", m)
    assert [f["path"] for f in card["files"]] == ["a.txt", "c.txt", "sub/b.txt"]   # empty.txt skipped
    assert idx.quantities == (["h", "c"] if cell == "lstm" else ["h"])
    tokens = idx.tokens
    assert list(tokens.columns) == ["file", "position", "text", "id", "start", "end"]
    assert len(tokens) == idx.n_tokens == sum(f["tokens"] for f in card["files"])
    for f in card["files"]:
        text = (corpus / f["path"]).read_text(encoding="utf-8")
        tr = trace(m, text, max_chars=10**9)
        assert f["tokens"] == len(tr)
        if f["path"] == "a.txt":
            assert len(tr) > 3 * SEG        # several blocks: the state is carried across them
        r0, r1 = f["row_start"], f["row_start"] + f["tokens"]
        rows = tokens.iloc[r0:r1]
        assert rows["text"].tolist() == tr.words
        assert rows["id"].tolist() == [t.id for t in tr.tokens]
        assert rows["start"].tolist() == [t.start for t in tr.tokens]
        assert rows["end"].tolist() == [t.end for t in tr.tokens]
        assert rows["position"].tolist() == list(range(len(tr)))
        assert (rows["file"] == f["path"]).all()
        for l in idx.layers:
            for q in idx.quantities:
                ref = tr.layer(l)[q]                       # the index's layers count from 1
                by_token = idx.rows(l, q, r0, r1)
                by_unit = idx.units(l, q, range(idx.n_units))[r0:r1]
                # the 1e-3 promise (FORMAT, "Precision"): absolute up to 1, relative above (c)
                assert (np.abs(by_token - ref) / np.maximum(1, np.abs(ref))).max() <= 1e-3, (f["path"], l, q)
                assert np.array_equal(by_token, by_unit)
                # what a plain zarr v3 reader sees is the same, and the stored norms are those of the rows
                assert np.array_equal(idx.array(l, q)[r0:r1].astype(np.float32), by_token)
                assert np.allclose(idx.array(l, q, "norm")[r0:r1], np.linalg.norm(by_token, axis=1), rtol=1e-5)
    # the layout: one copy, sharded [S rows, all units], inner chunks [R rows, one unit]
    R, S = card["chunks"]["rows"], card["chunks"]["shard_rows"]
    assert idx.array(1, "h").chunks == (R, 1) == (min(IX.CHUNK_ROWS, idx.n_tokens), 1)
    assert idx.array(1, "h").shards == (S, idx.n_units) and S >= idx.n_tokens
    assert idx.array(1, "h").dtype == np.float16 and len(idx.shards(1, "h")) == 1


def test_card_and_format_doc(plain):
    m, out = plain
    card = json.loads((out / "card.json").read_text())
    assert card["complete"] and card["format"] == IX.FORMAT_NAME and card["version"] == IX.VERSION
    assert card["model"]["weights_sha256"] == IX.weights_hash(m.lm)
    assert card["dtype"] == {"h": "float16", "c": "float16"} and card["version"] == 3
    assert not (out / "parts").exists() and not (out / "build.json").exists()
    for word in ("values", "norm", "sharding_indexed", "tokens.arrow", "card.json", "weights_sha256",
                 "Precision", "relative"):
        assert word in IX.FORMAT
    # at most 3 bytes per stored value (one unit of one layer of one quantity at one token): the states
    # with their norms and shard indexes (the token table and the card are per token, not per value:
    # on a real model, H = 384, everything together is 2.1 bytes per value, docs/speed.md)
    size = sum(p.stat().st_size for p in (out / "states.zarr").rglob("*") if p.is_file())
    values = card["tokens"] * card["units"] * len(card["layers"]) * len(card["quantities"])
    assert size / values <= 3, size / values


def test_old_format_is_refused_with_how_to_rebuild(tmp_path, plain):
    _, out = plain
    old = tmp_path / "v2"
    old.mkdir()
    card = json.loads((out / "card.json").read_text())
    card["version"] = 2
    card["built"]["command"] = "python -m explorer index --model M --corpus C --out v2"
    (old / "card.json").write_text(json.dumps(card))
    with pytest.raises(IndexProblem, match="format version 2.*build it again: python -m explorer index --model M"):
        open_index(old)


def test_resume_after_interrupt_equals_plain_build(tmp_path, corpus, plain):
    m, ref = plain
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        build_index(m, corpus, out, **FAST, _after_segment=stop)
    assert (out / "build.json").is_file() and not (out / "card.json").exists()
    assert [p.name for p in (out / "parts").glob("g*.npz")] == ["g0000.npz"]
    with pytest.raises(IndexProblem, match="unfinished"):
        open_index(out)
    seen = []
    build_index(m, corpus, out, **FAST, _after_segment=lambda: seen.append(1))
    plan = json.loads((ref / "card.json").read_text())
    lengths = {i: f["tokens"] for i, f in enumerate(plan["files"])}
    total_blocks = len(list(IX.schedule(lengths, plan["batch"]["rows"], plan["batch"]["steps"])))
    assert total_blocks > 5 and len(seen) == total_blocks - 3      # it continued; it did not start over
    _same_index(out, ref)


def test_batched_rows_equal_one_row_at_a_time(tmp_path, corpus, plain):
    """The files as rows of one batch give the same numbers as two rows (the fewest the build runs)."""
    m, ref = plain
    build_index(m, corpus, tmp_path / "r2", **FAST, rows=2)
    A, B = _arrays(tmp_path / "r2"), _arrays(ref)
    for k in A:
        assert np.abs(A[k].astype(np.float32) - B[k].astype(np.float32)).max() <= 1e-3 * max(1, np.abs(B[k]).max()), k


def test_progress_is_reported_every_block(tmp_path, corpus, tiny_lstm):
    seen = []
    card = build_index(tiny_lstm, corpus, tmp_path / "p", **FAST, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, card["tokens"]) and seen[-1] == (card["tokens"], card["tokens"])
    assert len(seen) > 5 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_local_workers_equal_plain_build(tmp_path, corpus, plain):
    m, ref = plain
    card = build_index(m, corpus, tmp_path / "w2", **FAST, workers=2)
    assert len(card["batch"]["groups"]) == 2
    _same_index(tmp_path / "w2", ref)


def test_dask_local_cluster_equals_plain_build(tmp_path, corpus, plain):
    distributed = pytest.importorskip("distributed")
    m, ref = plain
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        card = build_index(m, corpus, tmp_path / "dask", **FAST, scheduler=cluster.scheduler_address)
    assert card["built"]["scheduler"].startswith("tcp://")
    _same_index(tmp_path / "dask", ref)


# ---- bad input ---------------------------------------------------------------------------------

def test_empty_folder(tmp_path, tiny_lstm):
    (tmp_path / "c").mkdir()
    with pytest.raises(CorpusError, match="holds no .txt files"):
        build_index(tiny_lstm, tmp_path / "c", tmp_path / "i", progress=False)
    (tmp_path / "c" / "x.txt").write_text("\n \n")
    with pytest.raises(CorpusError, match="holds no text"):
        build_index(tiny_lstm, tmp_path / "c", tmp_path / "i", progress=False)
    assert not (tmp_path / "i").exists()


def test_non_utf8(tmp_path, tiny_lstm):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ok.txt").write_text("Mary loves John.")
    (tmp_path / "c" / "latin.txt").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.txt is not UTF-8 text \(bad byte 0xe9 at offset 3\)"):
        build_index(tiny_lstm, tmp_path / "c", tmp_path / "i", progress=False)
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied")])
def test_write_error_leaves_nothing_that_looks_complete(tmp_path, corpus, tiny_lstm, monkeypatch, err, words):
    """A checkpoint that cannot be written (the arrays' space is reserved when the build begins)."""
    real = IX._write_npz
    n = {"k": 0}

    def failing(path, arrays):
        n["k"] += 1
        if n["k"] == 2:
            raise OSError(err, "simulated", str(path))
        real(path, arrays)

    monkeypatch.setattr(IX, "_write_npz", failing)
    out = tmp_path / "i"
    with pytest.raises(IndexProblem, match=f"could not write the index .*{words}.*run the same command again"):
        build_index(tiny_lstm, corpus, out, **FAST)
    assert not (out / "card.json").exists()
    with pytest.raises(IndexProblem, match="unfinished index build"):
        open_index(out)
    monkeypatch.setattr(IX, "_write_npz", real)       # space freed: the same call finishes the build
    build_index(tiny_lstm, corpus, out, **FAST)
    assert open_index(out, tiny_lstm).n_tokens > 0


def test_failure_while_writing_the_card(tmp_path, corpus, tiny_lstm, monkeypatch):
    real = IX._write_json

    def failing(path, obj):
        if path.name == "card.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(IX, "_write_json", failing)
    with pytest.raises(IndexProblem, match="the disk is full"):
        build_index(tiny_lstm, corpus, tmp_path / "i", **FAST)
    with pytest.raises(IndexProblem, match="unfinished"):
        open_index(tmp_path / "i")


def test_index_of_another_model_is_refused(tmp_path, corpus, plain, capsys):
    m, out = plain
    other = make_model("lstm", seed=1)
    with pytest.raises(IndexProblem, match="was built for model 'tiny-lstm'"):
        open_index(out, other)
    with pytest.raises(IndexProblem, match="already holds an index of model 'tiny-lstm'"):
        build_index(other, corpus, out, **FAST)
    # from the command line: one line, status 2
    from explorer import save_bundle
    save_bundle(tmp_path / "other", other.lm, other.tokenizer, {"name": "other"})
    rc = main(["match", "--index", str(out), "--text", "Mary loves John.", "--start", "1", "--end", "2",
               "--layer", "1", "--model", str(tmp_path / "other")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "was built for model" in err


def test_not_an_index(tmp_path):
    with pytest.raises(IndexProblem, match="does not exist"):
        open_index(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(IndexProblem, match="not a corpus index"):
        open_index(tmp_path / "x")


def test_out_folder_with_other_files_is_refused(tmp_path, corpus, tiny_lstm):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "precious.txt").write_text("keep me")
    with pytest.raises(IndexProblem, match="holds other files"):
        build_index(tiny_lstm, corpus, tmp_path / "o", progress=False)


def test_cli_index_then_units_and_match(tmp_path, corpus, bundle_dir, capsys):
    out = tmp_path / "cli"
    rc = main(["index", "--model", str(bundle_dir), "--corpus", str(corpus), "--out", str(out),
               "--quantities", "h", "--layers", "2", "--no-progress"])      # the top layer only
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["tokens"] > 0 and res["layers"] == [2] and res["quantities"] == ["h"]
    assert res["bytes_on_disk"] > 0
    rc = main(["units", "--index", str(out), "--layer", "2", "--unit", "2", "--top", "3"])
    u = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(u["most_positive"]) == 3 and u["promotes"]    # top layer: decoder effects
    rc = main(["match", "--index", str(out), "--text", 'She said "Can I have a drink?"', "--start", "3",
               "--end", "5", "--layer", "2", "--threshold", "0.1"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["selection"]["tokens"] == ['"', "Can"]
    for bad, msg in ((["--layers", "7"], "layer 7 does not exist"), (["--layers", "0"], "numbered from 1"),
                     (["--quantities", "h,x"], "not x")):
        rc = main(["index", "--model", str(bundle_dir), "--corpus", str(corpus), "--out", str(tmp_path / "b"),
                   "--no-progress", *bad])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and err.count("\n") == 1
    rc = main(["units", "--index", str(out), "--layer", "1", "--unit", "1"])
    assert rc == 2 and "holds layers [2]" in capsys.readouterr().err


def test_killed_process_resumes_to_the_same_index(tmp_path, bundle_dir):
    """SIGKILL a real `python -m explorer index` mid-build, run it again: identical to a plain build."""
    import os
    import signal
    import subprocess
    import sys
    import time
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "long.txt").write_text((TEXT + "\n\n") * 8, encoding="utf-8")     # ~140 blocks of 8 steps
    args = ["--model", str(bundle_dir), "--corpus", str(corpus), "--segment-tokens", "8", "--no-progress",
            "--checkpoint-seconds", "0"]
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(IX.Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "index", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def reached():
        try:
            with np.load(out / "parts" / "g0000.npz") as z:
                return int(z["block"])
        except (OSError, ValueError, KeyError, EOFError):
            return -1

    deadline = time.time() + 120
    while time.time() < deadline and reached() < 10:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    done = reached()
    total = -(-json.loads((out / "build.json").read_text())["files"][0]["tokens"] // 8)
    assert not (out / "card.json").exists() and 10 <= done < total - 1, (done, total)   # killed part-way
    assert main(["index", *args, "--out", str(out)]) == 0
    assert main(["index", *args, "--out", str(tmp_path / "plain")]) == 0
    _same_index(out, tmp_path / "plain")


def test_cell_state_beyond_float16_is_refused(tmp_path, corpus, tiny_lstm, monkeypatch):
    """c is stored as float16: a value beyond its range stops the build with a message (here the range
    is made tiny so that the tiny model's c passes it)."""
    monkeypatch.setattr(IX, "FLOAT16_MAX", 0.01)
    with pytest.raises(IndexProblem, match="exceeds float16's range.*--quantities h"):
        build_index(tiny_lstm, corpus, tmp_path / "i", **FAST)
    build_index(tiny_lstm, corpus, tmp_path / "h", **FAST, quantities="h")      # h alone is bounded
