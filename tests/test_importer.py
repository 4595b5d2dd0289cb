"""Importing someone else's checkpoint: pytorch/examples' RNNModel layout, bare nn.LSTM + embedding,
--map, vocabularies, and every refusal (a hostile pickle above all)."""
from __future__ import annotations

import builtins
import json
import pickle
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file, save_model
from torch import nn

from explorer import load_model, trace
from explorer.cli import main
from explorer.importer import ImportRefused, import_checkpoint, import_to_bundle, read_vocab


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from examples_lstm import RNNModel as _ExamplesRNNModel  # noqa: E402  (pytorch/examples' model.py, as published)


class RNNModel(_ExamplesRNNModel):
    """pytorch/examples word_language_model/model.py's RNNModel (scripts/examples_lstm.py holds it as
    published: encoder, rnn, decoder; sequence-first input; log_softmax output), also returning the
    top layer's outputs for the tests' comparisons."""

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden, output


WORDS = "<unk> <eos> The the cat dog sat on mat . , a bird sang Mary John loves and".split()
TEXT = "The cat sat on the mat .\nMary loves John , and the dog sang a zebra ."


def _examples_model(rnn_type="LSTM", ninp=12, nhid=20, nlayers=2, tied=False, seed=0):
    torch.manual_seed(seed)
    m = RNNModel(rnn_type, len(WORDS), ninp, nhid, nlayers, dropout=0.3, tie_weights=tied)
    with torch.no_grad():   # random, non-zero everything (the decoder bias starts at zero)
        for p in m.rnn.parameters():
            p.uniform_(-0.6, 0.6)
        m.decoder.bias.uniform_(-0.5, 0.5)
    return m.eval()


def _save(m, tmp_path, fmt):
    if fmt == "pt":
        p = tmp_path / "model_state.pt"
        torch.save(m.state_dict(), p)
    else:
        p = tmp_path / "model.safetensors"
        save_model(m, str(p))     # the safetensors way; a tied pair is stored once
    return p


def _vocab(tmp_path, words=WORDS):
    p = tmp_path / "vocab.json"
    p.write_text(json.dumps(words))
    return p


def _reference(m, ids):
    with torch.no_grad():
        logp, _, out = m(torch.tensor(ids)[:, None], m.init_hidden(1))
    return logp.numpy(), out[:, 0].numpy()


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
@pytest.mark.parametrize("rnn_type,ninp,nhid,tied", [("LSTM", 12, 20, False), ("LSTM", 16, 16, True),
                                                      ("GRU", 10, 14, False), ("RNN_TANH", 16, 16, True),
                                                      ("RNN_RELU", 12, 16, False)])
def test_pytorch_examples_model_imports_and_traces_as_its_own_forward(tmp_path, fmt, rnn_type, ninp, nhid, tied):
    m = _examples_model(rnn_type, ninp, nhid, tied=tied)
    nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}.get(rnn_type)   # the weights cannot say
    model, report = import_checkpoint(_save(m, tmp_path, fmt), _vocab(tmp_path), name="ex", nonlinearity=nonlinearity)
    cfg = model.config
    assert (cfg.cell, cfg.emb_size, cfg.hidden_size, cfg.layers, cfg.vocab_size, cfg.tied, cfg.nonlinearity) == \
        ({"LSTM": "lstm", "GRU": "gru"}.get(rnn_type, "rnn"), ninp, nhid, 2, len(WORDS), tied, nonlinearity or "tanh")
    assert report["layout"].startswith("pytorch/examples word_language_model")
    assert report["tokenizer"]["kind"] == "whitespace"
    tr = trace(model, TEXT, full_probs=True)
    ids = [t.id for t in tr.tokens]
    assert ids[0] == WORDS.index("<eos>") and WORDS.index("<eos>") in ids[1:]   # a line end is <eos>
    assert ids.count(0) == 1                                                      # "zebra" is <unk>
    logp, top_h = _reference(m, ids)
    assert abs(tr.layers[-1].h - top_h).max() < 1e-5
    assert abs(tr.probs - torch.tensor(logp).exp().numpy()).max() < 1e-5
    assert abs(torch.tensor(tr.probs).log().numpy() - logp).max() < 1e-4


def test_bundle_round_trip_through_the_cli(tmp_path, capsys):
    m = _examples_model("LSTM", 12, 20)
    w = _save(m, tmp_path, "pt")
    out = tmp_path / "bundle"
    rc = main(["import", "--weights", str(w), "--vocab", str(_vocab(tmp_path)), "--out", str(out),
               "--cell", "lstm", "--name", "my-lstm"])
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    assert got["name"] == "my-lstm" and got["config"]["emb_size"] == 12 and got["config"]["tied"] is False
    assert got["keys"]["embedding.weight"] == "encoder.weight"
    loaded = load_model(out)
    assert loaded.name == "my-lstm" and loaded.card["imported"]["weights"] == w.name
    assert "import" in loaded.card["command"]
    tr = trace(loaded, TEXT, full_probs=True)
    logp, _ = _reference(m, [t.id for t in tr.tokens])
    assert abs(tr.probs - torch.tensor(logp).exp().numpy()).max() < 1e-5


# ------------------------------------------------------------------------------ hostile pickles
class _WritesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.path!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_hostile_pickle_is_refused_and_never_runs(tmp_path, how, capsys):
    # the payload is real: plain unpickling writes the file
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_WritesAFile(control)))
    assert control.read_text() == "pwned"

    target = tmp_path / "pwned.txt"
    bad = tmp_path / "evil.pt"
    payload = {"encoder.weight": torch.zeros(3, 4), "rnn.weight_ih_l0": torch.zeros(16, 4), "x": _WritesAFile(target)}
    if how == "torch.save":
        torch.save(payload, bad)
    else:
        bad.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ImportRefused) as e:
        import_checkpoint(bad, _vocab(tmp_path))
    msg = str(e.value)
    assert "refused" in msg and "torch.save(model.state_dict()" in msg and "weights_only=True" not in msg
    assert "\n" not in msg
    assert not target.exists()
    rc = main(["import", "--weights", str(bad), "--vocab", str(_vocab(tmp_path)), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not target.exists() and not (tmp_path / "b").exists()


def test_whole_model_pickle_is_refused_with_how_to_save_a_state_dict(tmp_path):
    p = tmp_path / "model.pt"
    torch.save(_examples_model(), p)      # what pytorch/examples' main.py does
    with pytest.raises(ImportRefused, match=r"torch.save\(model.state_dict\(\), 'weights.pt'\)"):
        import_checkpoint(p, _vocab(tmp_path))


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "w.pt"
    p.write_bytes(b"hello, this is not a checkpoint at all")
    with pytest.raises(ImportRefused, match="neither a torch.save file nor a safetensors file"):
        import_checkpoint(p, _vocab(tmp_path))


# ------------------------------------------------------------------------------- other layouts
class BareLSTM(nn.Module):
    """The common hand-written model: nn.Embedding + nn.LSTM(batch_first) + nn.Linear, other names."""

    def __init__(self, V, E, H, L=1, bias=True, fc=True):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True, bias=bias)
        self.fc = nn.Linear(H, V) if fc else None

    def forward(self, ids):
        out, _ = self.lstm(self.embed(ids))
        return out, (self.fc(out) if self.fc is not None else out @ self.embed.weight.T)


@pytest.mark.parametrize("bias,fc,E,H", [(True, True, 8, 12), (False, True, 8, 12), (True, False, 10, 10)])
def test_bare_lstm_with_an_embedding(tmp_path, bias, fc, E, H):
    torch.manual_seed(1)
    m = BareLSTM(len(WORDS), E, H, 2, bias=bias, fc=fc).eval()
    p = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(p))
    model, report = import_checkpoint(p, _vocab(tmp_path))
    assert model.config.tied == (not fc)
    assert "embed" in report["layout"] and "lstm" in report["layout"]
    tr = trace(model, TEXT, full_probs=True)
    with torch.no_grad():
        out, logits = m(torch.tensor([[t.id for t in tr.tokens]]))
    assert abs(tr.layers[-1].h - out[0].numpy()).max() < 1e-5
    assert abs(tr.probs - torch.softmax(logits[0], -1).numpy()).max() < 1e-5
    if not bias:
        assert any("no biases" in n for n in report["notes"])


def test_bare_nn_lstm_state_dict_with_no_prefix(tmp_path):
    torch.manual_seed(2)
    lstm, emb = nn.LSTM(6, 6), nn.Embedding(len(WORDS), 6)
    sd = {**lstm.state_dict(), "embedding.weight": emb.weight.detach()}
    p = tmp_path / "w.pt"
    torch.save(sd, p)
    model, report = import_checkpoint(p, _vocab(tmp_path))
    assert model.config.layers == 1 and model.config.tied and "no prefix" in report["layout"]


def test_map_renames_keys(tmp_path):
    m = _examples_model("GRU", 8, 8)
    sd = {k.replace("encoder.", "body.tokens.").replace("rnn.", "body.core.").replace("decoder.", "readout."): v
          for k, v in m.state_dict().items()}
    p = tmp_path / "w.pt"
    torch.save(sd, p)
    _, report = import_checkpoint(p, _vocab(tmp_path))     # unknown names, told apart by shapes and the bias
    assert report["keys"]["embedding.weight"] == "body.tokens.weight" and report["keys"]["decoder.bias"] == "readout.bias"
    del sd["readout.bias"]                                 # now nothing tells the two 8-wide matrices apart
    torch.save(sd, p)
    with pytest.raises(ImportRefused, match="no embedding found"):
        import_checkpoint(p, _vocab(tmp_path))
    model, report = import_checkpoint(p, _vocab(tmp_path), maps=["body.tokens.=encoder.", "body.core.=rnn.",
                                                                 "readout.=decoder."])
    assert report["layout"].startswith("pytorch/examples") and model.config.cell == "gru"
    with pytest.raises(ImportRefused, match="matches no tensor"):
        import_checkpoint(p, _vocab(tmp_path), maps=["nothing.=rnn."])


def test_checkpoint_dict_with_a_state_dict_inside(tmp_path):
    m = _examples_model("LSTM", 8, 8)
    p = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model": m.state_dict(), "optimizer": {"lr": 0.1}}, p)
    _, report = import_checkpoint(p, _vocab(tmp_path))
    assert any("'model' entry" in n for n in report["notes"])


@pytest.mark.parametrize("module,match", [
    (nn.LSTM(4, 6, 2, bidirectional=True), "bidirectional layers are not supported"),
    (nn.LSTM(4, 6, 1, proj_size=3), r"LSTM projections \(proj_size"),
])
def test_unsupported_recurrent_layers_are_named(tmp_path, module, match):
    sd = {"encoder.weight": torch.zeros(len(WORDS), 4), **{f"rnn.{k}": v for k, v in module.state_dict().items()}}
    p = tmp_path / "w.pt"
    torch.save(sd, p)
    with pytest.raises(ImportRefused, match=match):
        import_checkpoint(p, _vocab(tmp_path))


def test_extra_parts_are_refused_by_name(tmp_path):
    sd = dict(_examples_model("LSTM", 8, 8).state_dict())
    sd["norm.weight"], sd["norm.bias"] = torch.ones(8), torch.zeros(8)
    p = tmp_path / "w.pt"
    torch.save(sd, p)
    with pytest.raises(ImportRefused, match=r"unsupported parts: norm.bias, norm.weight"):
        import_checkpoint(p, _vocab(tmp_path))


def test_cell_flag_must_agree_and_transformers_are_named(tmp_path):
    p = _save(_examples_model("GRU", 8, 8), tmp_path, "pt")
    with pytest.raises(ImportRefused, match=r"--cell lstm, but the weights are a GRU \(rnn.weight_hh_l0 has 3×8 rows"):
        import_checkpoint(p, _vocab(tmp_path), cell="lstm")
    t = tmp_path / "t.pt"
    torch.save({"encoder.layers.0.self_attn.in_proj_weight": torch.zeros(3, 3)}, t)
    with pytest.raises(ImportRefused, match="Transformer"):
        import_checkpoint(t, _vocab(tmp_path))


# ---------------------------------------------------------------------------------- vocabularies
def test_vocabulary_forms(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({w: i for i, w in enumerate(WORDS)}))
    (tmp_path / "b.json").write_text(json.dumps({str(i): w for i, w in enumerate(WORDS)}))
    (tmp_path / "c.json").write_text(json.dumps({"idx2word": WORDS, "word2idx": {}}))
    (tmp_path / "d.txt").write_text("\n".join(WORDS) + "\n")
    for f in "a.json b.json c.json d.txt".split():
        assert read_vocab(tmp_path / f)[0] == WORDS, f
    (tmp_path / "e.json").write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(ImportRefused, match="ids must be 0..1"):
        read_vocab(tmp_path / "e.json")
    (tmp_path / "f.txt").write_text("a\n\nb\n")
    with pytest.raises(ImportRefused, match="empty line 2"):
        read_vocab(tmp_path / "f.txt")


def test_vocabulary_size_must_match(tmp_path):
    p = _save(_examples_model(), tmp_path, "pt")
    with pytest.raises(ImportRefused, match=f"has {len(WORDS) - 1} tokens but the embedding has {len(WORDS)} rows"):
        import_checkpoint(p, _vocab(tmp_path, WORDS[:-1]))


def test_character_model_without_specials(tmp_path):
    """A char-rnn style model: no <unk>, no <eos>. Both are added as rows the model never predicts, so
    its own distribution over its characters is unchanged."""
    chars = sorted(set("the cat sat on the mat.\n"))
    torch.manual_seed(3)
    m = BareLSTM(len(chars), 6, 9, 1).eval()
    p = tmp_path / "w.pt"
    torch.save(m.state_dict(), p)
    v = tmp_path / "chars.txt"
    v.write_text("".join(chars) + "\n")     # an editor's trailing newline ("\n" is already a token)
    model, report = import_checkpoint(p, v, chars=True)
    assert model.tokenizer.kind == "char" and model.config.vocab_size == len(chars) + 2
    assert len([n for n in report["notes"] if "never predicted" in n]) == 2
    text = "the cat"
    tr = trace(model, text, full_probs=True, boundary=False)
    with torch.no_grad():
        out, logits = m(torch.tensor([[chars.index(c) for c in text]]))
    assert abs(tr.probs[:, :len(chars)] - torch.softmax(logits[0], -1).numpy()).max() < 1e-5
    assert tr.probs[:, len(chars):].max() == 0.0
    tr2 = trace(model, "the cat")          # read after the added boundary token: runs, no error
    assert tr2.tokens[0].special


def test_named_specials_and_tokenizer_choice(tmp_path):
    words = ["[UNK]", "</s>"] + WORDS[2:]
    p = _save(_examples_model(), tmp_path, "pt")
    model, report = import_checkpoint(p, _vocab(tmp_path, words), tokenizer="word")
    assert model.tokenizer.itos[:2] == ["<unk>", "<eos>"] and model.config.vocab_size == len(words)
    assert report["tokenizer"]["kind"] == "word"
    with pytest.raises(ImportRefused, match="--chars reads the text as characters"):
        import_checkpoint(p, _vocab(tmp_path), chars=True, tokenizer="word")


def test_import_to_bundle_writes_a_loadable_bundle(tmp_path):
    m = _examples_model("RNN_TANH", 16, 16, tied=True)
    got = import_to_bundle(tmp_path / "b", _save(m, tmp_path, "safetensors"), _vocab(tmp_path), name="r",
                           nonlinearity="tanh")
    assert got["config"]["cell"] == "rnn" and any("with tanh (--nonlinearity tanh)" in n for n in got["notes"])
    assert load_model(tmp_path / "b").config.tied
