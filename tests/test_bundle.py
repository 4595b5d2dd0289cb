"""Bundles are untrusted input: each way a bundle can be wrong gets a message naming the file."""
import io
import json
import pickle
import shutil
import zipfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from explorer import BundleError, list_models, load_model, save_bundle, trace
from explorer.bundle import extract_bundle_zip

from conftest import make_model


def _copy(bundle_dir, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(bundle_dir, d)
    return d


def test_roundtrip_gives_identical_traces(bundle_dir, tiny_lstm):
    m = load_model(bundle_dir)
    a, b = trace(m, "Mary loves John ."), trace(tiny_lstm, "Mary loves John .")
    assert (a.layers[1].c == b.layers[1].c).all()
    assert m.lm.decoder.weight is m.lm.embedding.weight  # tying restored
    assert not m.lm.training and not any(p.requires_grad for p in m.lm.parameters())


def test_weights_are_plain_safetensors_with_stock_names(bundle_dir):
    sd = load_file(str(bundle_dir / "weights.safetensors"))
    assert "rnn.weight_ih_l0" in sd and "rnn.bias_hh_l1" in sd
    card = json.loads((bundle_dir / "card.json").read_text())
    assert card["config"]["cell"] == "lstm" and card["tokenizer"]["vocab_size"] == card["config"]["vocab_size"]


def test_list_models(models_dir, tmp_path):
    assert [p.name for p in list_models(models_dir)] == ["tiny-lstm", "tiny-rnn"]
    assert list_models(tmp_path / "nothing") == []


@pytest.mark.parametrize("missing", ["weights.safetensors", "tokenizer.json", "card.json"])
def test_missing_file(bundle_dir, tmp_path, missing):
    d = _copy(bundle_dir, tmp_path)
    (d / missing).unlink()
    with pytest.raises(BundleError, match=missing.replace(".", r"\.") + " is missing"):
        load_model(d)


def test_not_a_folder(tmp_path):
    with pytest.raises(BundleError, match="not a folder"):
        load_model(tmp_path / "nope")


def test_pickle_is_refused_without_being_opened(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "PWNED"), "w"))

    (d / "weights.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(BundleError, match="pickle"):
        load_model(d)
    assert not (tmp_path / "PWNED").exists()
    torch.save(make_model().lm.state_dict(), d / "weights.safetensors")  # a torch.save zip
    with pytest.raises(BundleError, match="pickle"):
        load_model(d)


@pytest.mark.parametrize("content", [b"", b"\x01\x02", b"garbage" * 10, b"\xff" * 8 + b"{}"])
def test_corrupt_weights(bundle_dir, tmp_path, content):
    d = _copy(bundle_dir, tmp_path)
    (d / "weights.safetensors").write_bytes(content)
    with pytest.raises(BundleError, match="weights.safetensors"):
        load_model(d)


def test_truncated_weights(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    data = (d / "weights.safetensors").read_bytes()
    (d / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="weights.safetensors"):
        load_model(d)


def test_wrong_shape_and_missing_tensor(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    sd = load_file(str(d / "weights.safetensors"))
    sd["rnn.weight_hh_l0"] = torch.zeros(3, 3)
    save_file(sd, str(d / "weights.safetensors"))
    with pytest.raises(BundleError, match=r"rnn.weight_hh_l0 has shape \(3, 3\)"):
        load_model(d)
    del sd["rnn.weight_hh_l0"]
    save_file(sd, str(d / "weights.safetensors"))
    with pytest.raises(BundleError, match="lacks 1 tensors"):
        load_model(d)


def test_nan_weights(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    sd = load_file(str(d / "weights.safetensors"))
    sd["decoder.bias"][0] = float("nan")
    save_file(sd, str(d / "weights.safetensors"))
    with pytest.raises(BundleError, match="NaN"):
        load_model(d)


def test_vocabulary_weight_mismatch(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    tj = json.loads((d / "tokenizer.json").read_text())
    tj["vocab"].append("extra-word")
    (d / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(BundleError, match="does not match the weights"):
        load_model(d)


@pytest.mark.parametrize("card", ["{not json", "[]", json.dumps({"config": {"cell": "transformer"}}),
                                  json.dumps({"config": {"cell": "lstm", "hidden_size": -1}}),
                                  json.dumps({"config": {"cell": "lstm", "evil": 1}})])
def test_bad_card(bundle_dir, tmp_path, card):
    d = _copy(bundle_dir, tmp_path)
    (d / "card.json").write_text(card)
    with pytest.raises(BundleError, match="card.json"):
        load_model(d)


def test_save_is_atomic(tmp_path, tiny_lstm, monkeypatch):
    out = tmp_path / "m"
    save_bundle(out, tiny_lstm.lm, tiny_lstm.tokenizer, {"name": "m"})
    before = (out / "weights.safetensors").read_bytes()
    import explorer.bundle as B

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(B.Path, "write_text", boom)
    with pytest.raises(OSError):
        save_bundle(out, tiny_lstm.lm, tiny_lstm.tokenizer, {"name": "m2"})
    monkeypatch.undo()
    assert (out / "weights.safetensors").read_bytes() == before   # the old bundle is intact
    assert json.loads((out / "card.json").read_text())["name"] == "m"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]            # no temporary left behind


def _zip(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_upload(bundle_dir, tmp_path):
    files = {f"model/{p.name}": p.read_bytes() for p in bundle_dir.iterdir()}
    d = extract_bundle_zip(_zip(files), tmp_path / "up", max_bytes=10**8)
    assert load_model(d).config.cell == "lstm"


def test_zip_upload_refusals(bundle_dir, tmp_path):
    files = {p.name: p.read_bytes() for p in bundle_dir.iterdir()}
    with pytest.raises(BundleError, match="not a zip"):
        extract_bundle_zip(b"hello", tmp_path / "a", 10**8)
    with pytest.raises(BundleError, match="limit"):
        extract_bundle_zip(_zip(files), tmp_path / "b", 100)
    with pytest.raises(BundleError, match="lacks card.json"):
        extract_bundle_zip(_zip({k: v for k, v in files.items() if k != "card.json"}), tmp_path / "c", 10**8)
    with pytest.raises(BundleError, match="lacks card.json"):   # traversal names are ignored
        extract_bundle_zip(_zip({**{k: v for k, v in files.items() if k != "card.json"},
                                 "../../card.json": b"{}"}), tmp_path / "e", 10**8)
    assert not (tmp_path.parent / "card.json").exists()
