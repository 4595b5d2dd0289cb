"""match and units over an index read through dask.array on a Dask distributed cluster (--scheduler)
give the same answers as the memory-mapped reads."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import small_index
from explorer.cli import main
from explorer.corpus import queries as Q
from explorer.corpus.index import open_index

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, models_dir):
    import torch
    torch.set_num_threads(1)
    m, d, out = small_index(tmp_path_factory, models_dir, "d", 50)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        yield m, open_index(out, m), out, cluster.scheduler_address


def test_dask_units_equal_memory_mapped(setup):
    m, idx, _, address = setup
    for layer, q in ((1, "h"), (2, "c")):
        us = [0, 3, 7, 15]
        assert np.array_equal(Q.dask_units(idx, layer, q, us, address), idx.units(layer, q, us))


def test_match_and_units_through_dask_are_the_same(setup):
    m, idx, _, address = setup
    text = 'She said "Can I have a drink?"'
    a = Q.match(idx, m, text, 3, 5, 2, "h", 0.1)
    b = Q.match(idx, m, text, 3, 5, 2, "h", 0.1, scheduler=address)
    assert a.selection.units and a.total > 0
    ja, jb = a.to_json(), b.to_json()
    ja.pop("seconds"), jb.pop("seconds")
    assert ja == jb
    pa_, pb = Q.unit_profile(idx, 2, "h", 5, model=m), Q.unit_profile(idx, 2, "h", 5, model=m, scheduler=address)
    assert pa_.to_json() == pb.to_json()
    ra = Q.rank_units(idx, 2, "h", "inside_quotes", top=5)
    rb = Q.rank_units(idx, 2, "h", "inside_quotes", top=5, scheduler=address)
    assert ra.equals(rb)


def test_cli_scheduler(setup, capsys):
    m, idx, out, address = setup
    args = ["--index", str(out), "--text", 'She said "Can I have a drink?"', "--start", "3", "--end", "5",
            "--layer", "2", "--threshold", "0.1"]
    assert main(["match", *args]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["match", *args, "--scheduler", address]) == 0
    viadask = json.loads(capsys.readouterr().out)
    plain.pop("seconds"), viadask.pop("seconds")
    assert plain == viadask
    assert main(["units", "--index", str(out), "--layer", "2", "--unit", "4", "--scheduler", address]) == 0
    u = json.loads(capsys.readouterr().out)
    assert main(["units", "--index", str(out), "--layer", "2", "--unit", "4"]) == 0
    assert u == json.loads(capsys.readouterr().out)
