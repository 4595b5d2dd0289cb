"""Nearest states (explorer.corpus.queries.neighbours and `python -m explorer neighbours`) agree with a
brute-force cosine over trace() of every corpus file, and refuse bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TEXT, small_index
from explorer.cli import main
from explorer.corpus import queries as Q
from explorer.corpus.index import open_index
from explorer.errors import InputError
from explorer.trace import trace

QUERY = 'She said "yes." He walked into a bar.'


@pytest.fixture(autouse=True, scope="module")
def one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def setup(tmp_path_factory, models_dir):
    m, d, out = small_index(tmp_path_factory, models_dir, "n", 50)
    idx = open_index(out, m)
    ref = []          # (file, position, word, {layer: {q: values}}) for every corpus token, in row order
    for f in idx.files:
        tr = trace(m, (d / f["path"]).read_text(encoding="utf-8"), max_chars=10**9)
        for t in range(len(tr)):
            ref.append((f["path"], t, tr.words[t],
                        {l: {q: tr.layer(l)[q][t] for q in ("h", "c")} for l in (1, 2)}))
    return m, idx, out, ref


def brute(m, ref, text, position, layer, quantity, top):
    q = trace(m, text).layer(layer)[quantity][position].astype(np.float64)
    sims = []
    for r, (_, _, _, v) in enumerate(ref):
        x = v[layer][quantity].astype(np.float16).astype(np.float64)      # as the index stores it
        sims.append(float(x @ q / (np.linalg.norm(x) * np.linalg.norm(q))))
    order = sorted(range(len(ref)), key=lambda r: (-sims[r], r))[:top]
    return order, [sims[r] for r in order]


@pytest.mark.parametrize("layer,quantity,position", [(1, "h", 3), (2, "h", 7), (2, "c", 0), (-1, "h", 5)])
def test_neighbours_equal_brute_force(setup, layer, quantity, position):
    m, idx, _, ref = setup
    got = Q.neighbours(idx, m, QUERY, position, layer, quantity, top=12)
    rows, sims = brute(m, ref, QUERY, position, 2 if layer == -1 else layer, quantity, 12)
    assert [n.row for n in got.items] == rows or \
        np.allclose([n.similarity for n in got.items], sims, atol=1e-5)        # ties may swap order
    assert np.allclose([n.similarity for n in got.items], sims, atol=1e-4)
    assert got.layer == (2 if layer == -1 else layer) and got.token == trace(m, QUERY).words[position]
    for n in got.items:
        f, pos, word, _ = ref[n.row]
        assert (n.file, n.position, n.token) == (f, pos, word)
        # the context is the file's own tokens either side, never crossing into another file
        assert len(n.left) <= 5 and len(n.right) <= 5
        assert [ref[n.row - len(n.left) + k][2] for k in range(len(n.left))] == list(n.left)
        assert all(ref[n.row - len(n.left) + k][0] == f for k in range(len(n.left)))
        assert all(ref[n.row + 1 + k][0] == f for k in range(len(n.right)))
    js = got.to_json()
    assert js["query"]["layer"] == got.layer and len(js["neighbours"]) == 12
    assert set(js["neighbours"][0]) == {"file", "row", "position", "similarity", "left", "token", "right"}


def test_neighbour_of_a_corpus_token_is_itself(setup):
    """The state after a corpus token is its own nearest state (similarity 1)."""
    m, idx, _, ref = setup
    a = [r for r in ref if r[0] == "a.txt"]
    got = Q.neighbours(idx, m, TEXT, 9, 2, "h", top=3)
    assert got.items[0].file == "a.txt" and got.items[0].position == 9
    assert got.items[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert a[9][2] == got.items[0].token


@pytest.mark.parametrize("kw,msg", [({"position": 10**6}, "outside"), ({"position": -1}, "outside"),
                                    ({"layer": 3}, "layer"), ({"layer": 0}, "layer"),
                                    ({"quantity": "o"}, "holds h, c"), ({"top": 0}, "top")])
def test_neighbours_refuse_bad_input(setup, kw, msg):
    m, idx, _, _ = setup
    args = dict(position=2, layer=1, quantity="h", top=5) | kw
    with pytest.raises(InputError, match=msg):
        Q.neighbours(idx, m, QUERY, **args)


def test_neighbours_command(setup, capsys):
    m, idx, out, ref = setup
    assert main(["neighbours", "--index", str(out), "--text", QUERY, "--position", "4", "--layer", "2",
                 "--top", "6"]) == 0
    js = json.loads(capsys.readouterr().out)
    rows, sims = brute(m, ref, QUERY, 4, 2, "h", 6)
    assert np.allclose([n["similarity"] for n in js["neighbours"]], sims, atol=1e-4)
    assert js["query"]["quantity"] == "h" and js["searched"] == idx.n_tokens
    assert main(["neighbours", "--index", str(out), "--text", QUERY, "--position", "999", "--layer", "2"]) == 2
    assert "outside" in capsys.readouterr().err
