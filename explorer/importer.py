"""Import someone else's checkpoint: a plain state dict (.pt or .safetensors) plus a vocabulary
becomes a model bundle.

    python -m explorer import --weights FILE.pt|FILE.safetensors|FOLDER [--vocab VOCAB] --out BUNDLE
                             [--cell lstm|gru|rnn] [--nonlinearity tanh|relu] [--key KEY] [--map OLD=NEW ...]
                             [--name NAME] [--tokenizer whitespace|word|char] [--chars] [--unk TOK] [--eos TOK]
                             [--eos-means line|paragraph] [--sample-text FILE]
                             [--check REF --check-text FILE]

Checkpoints are untrusted. A ``.pt`` file is read with ``torch.load(..., weights_only=True)`` and
nothing else: a file that needs any other Python object to unpickle (a whole model saved with
``torch.save(model)``, a hostile ``__reduce__``) is refused by torch's restricted unpickler before
anything in it runs, and the message says how to save a plain state dict instead. A plain
``pickle.dump`` file is refused without being opened at all.

What is recognised (after ``--key`` picks one state dict, ``--map`` renames, and a DataParallel
``module.`` prefix is dropped):

* pytorch/examples' word_language_model ``RNNModel``: ``encoder.weight``, ``rnn.weight_ih_l0`` ...,
  ``decoder.weight``, ``decoder.bias`` (tied or not; a tied pair saved once is re-tied);
* a bare ``nn.LSTM`` / ``GRU`` / ``RNN`` (keys ``weight_ih_l0`` ..., with or without a module prefix
  such as ``lstm.``) beside an embedding (``embedding``, ``embed``, ``emb``, ``encoder``, ...) and
  an output layer (``decoder``, ``fc``, ``linear``, ``out``, ``head``, ...), or no output layer when
  the embedding can serve as one (tied);
* this project's own ``LanguageModel`` (``embedding``, ``rnn``, ``decoder``);
* any of these in a Hugging Face-style folder: ``model.safetensors`` or ``pytorch_model.bin``, an
  optional ``config.json``, and a vocabulary (``vocab.json``, ``vocab.txt`` or a word-level
  ``tokenizer.json``).

Sizes come from the shapes: the cell from the gate rows of ``weight_hh_l0`` (4H LSTM, 3H GRU, H RNN),
the hidden size from its columns, the embedding size from ``weight_ih_l0``, the layers from the
``_lN`` suffixes, the vocabulary from the embedding, tied or not from whether the decoder is the
embedding. Bidirectional layers (``*_reverse``), LSTM projections (``weight_hr_l*``, proj_size) and
any tensor that is not part of embedding -> recurrent stack -> decoder are refused by name.

What shapes cannot say is asked for, never assumed: a plain RNN's nonlinearity (tanh or relu:
``--nonlinearity``, unless the checkpoint, its safetensors metadata or the folder's config.json
records it) and what a line end means in the training text (``--eos-means``, read from
``--sample-text`` where it can be; recorded as ``card["tokenizer"]["eos_means"]``). ``--check REF``
compares the imported model's log-probabilities on a text with the user's own (``check_reference``)
and refuses the import above ``CHECK_TOLERANCE``.
"""
from __future__ import annotations

import json
import pickle
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .api import LoadedModel
from .bundle import read_json_file, safetensors_problem, save_bundle
from .errors import ExplorerError
from .model import LanguageModel, ModelConfig
from .tokenizer import EOS, UNK, CharTokenizer, WhitespaceTokenizer, WordTokenizer


class ImportRefused(ExplorerError):
    """A checkpoint or vocabulary that cannot be imported (the message says what and how to fix it)."""


SAVE_HINT = ("Save a plain state dict instead: torch.save(model.state_dict(), 'weights.pt') or "
             "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')")

#: How each tokenizer splits text (shown to the user: the model must be read the way it was trained).
SPLITS = {
    "whitespace": "split on whitespace, case kept, every line end is <eos> "
                  "(pytorch/examples' data.py: line.split() + ['<eos>'])",
    "word": "this project's word split: case-folded, punctuation as tokens, a blank line is <eos>",
    "char": "one token per character, a blank line is <eos>",
}
TOKENIZERS = {"whitespace": WhitespaceTokenizer, "word": WordTokenizer, "char": CharTokenizer}

_EMB_NAMES = ("encoder", "embedding", "embeddings", "embed", "emb", "word_embeddings", "word_emb",
              "wte", "tok_emb", "tok_embeddings", "token_embedding", "lookup", "lut")
_DEC_NAMES = ("decoder", "fc", "linear", "out", "output", "proj", "projection", "head", "lm_head",
              "classifier", "fc_out", "dense", "softmax", "logits")
_RNN_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                      r"_l(?P<index>\d+)(?P<rev>_reverse)?$")         # _l0: PyTorch's list index, 0 = the bottom layer
_GATES = {4: "lstm", 3: "gru", 1: "rnn"}
_A = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN"}
#: Logit bias of a special token that the imported model never had: exp(-1e4) is 0 in float32, so
#: the next-token distribution over the model's own vocabulary is unchanged.
ABSENT_LOGIT = -1e4
MAX_VOCAB_BYTES = 50 * 2**20


# ------------------------------------------------------------------------------------ weights
#: The files a Hugging Face-style folder holds, in the order they are looked for.
FOLDER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
FOLDER_VOCABS = ("vocab.json", "vocab.txt", "tokenizer.json")
#: Entries of a checkpoint dict (or its args / config / hparams), of safetensors metadata or of a
#: config.json that record what the weights cannot say.
_RECORD_KEYS = ("nonlinearity", "rnn_type", "model", "eos_means")
_RECORD_HOLDERS = ("args", "config", "hparams", "hyper_parameters")
#: A legacy (non-zip) torch.save file starts with this magic number, pickled.
_TORCH_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


@dataclass
class Checkpoint:
    """What was read from the weights: the state dict, where it came from, and what the file records
    about itself (name -> (value, where it says so)), e.g. {"nonlinearity": ("relu", "...")}."""
    state: dict
    weights: Path                       # the file read (inside the folder, for a folder)
    shown: str                          # its name as messages and the card show it
    vocab: Path | None = None           # the folder's vocabulary file, when a folder was given
    records: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def read_weights(path, key: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save file (weights_only=True, nothing else)."""
    return read_checkpoint(path, key).state


def read_checkpoint(path, key: str | None = None) -> Checkpoint:
    """The state dict of a weights file or a Hugging Face-style folder, with what the file records.
    `key`: the entry of a checkpoint dict holding several state dicts, or the key prefix of one of
    several models in a flat file."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, key)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    ck = Checkpoint({}, path, path.name)
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:2] == b"PK" or (head[:1] == b"\x80" and _TORCH_LEGACY_MAGIC in head):
        obj = _read_torch(path)
    elif head[:1] == b"\x80":
        raise ImportRefused(f"{path.name} is a plain Python pickle (pickle.dump), not a torch.save file; it was "
                            f"refused unopened (pickles can run code). {SAVE_HINT}")
    else:
        problem = safetensors_problem(path) if len(head) >= 8 else ("truncated", "")
        if problem and problem[0] == "truncated":
            raise ImportRefused(problem[1] or f"{path.name} is empty or truncated ({len(head)} bytes)")
        if problem:
            raise ImportRefused(f"{path.name} is neither a torch.save file nor a safetensors file. {SAVE_HINT}")
        obj = _read_safetensors(path, ck)
    ck.state = _unwrap(obj, path.name, key, ck)
    return ck


def _read_folder(folder: Path, key: str | None) -> Checkpoint:
    """A Hugging Face-style folder: its weights file, its vocabulary file and its config.json's records."""
    names = sorted(p.name for p in folder.iterdir())
    held = f"it holds {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}" if names else "it is empty"
    weights = next((folder / n for n in FOLDER_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        shards = [n for n in names if n.endswith(".index.json")]
        why = f"; sharded weights ({shards[0]}) are not supported: merge the shards into one file" if shards else ""
        raise ImportRefused(f"{folder.name}/ is a folder but lacks {' or '.join(FOLDER_WEIGHTS)} ({held}){why}; "
                            "give the weights file itself, or a folder holding one of them")
    ck = read_checkpoint(weights, key)
    ck.shown = f"{folder.name}/{weights.name}"
    ck.vocab = next((folder / n for n in FOLDER_VOCABS if (folder / n).is_file()), None)
    if (folder / "config.json").is_file():
        _record(ck, read_json_file(folder / "config.json"), f"{folder.name}/config.json")
    return ck


def _read_safetensors(path: Path, ck: Checkpoint) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(str(path), "pt") as f:
            _record(ck, f.metadata() or {}, f"{path.name}'s metadata")
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ImportRefused(f"{path.name} is a corrupt safetensors file: {e}") from None


def _read_torch(path: Path):
    try:
        with warnings.catch_warnings():      # the refusal below is the one line the user sees
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        why = f" (it names {m.group(1)})" if m else ""
        raise ImportRefused(
            f"{path.name} needs Python objects other than tensors to load{why}, for instance a whole "
            f"model saved with torch.save(model); it was refused unopened (pickles can run code). "
            f"{SAVE_HINT}. pytorch/examples' main.py saves the whole model: in the code that trained it, "
            "run torch.save(model.state_dict(), 'weights.pt')") from None
    except Exception as e:  # noqa: BLE001 - a broken zip / pickle: say so in one line
        raise ImportRefused(f"{path.name} could not be read as a torch.save file "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). {SAVE_HINT}") from None


def _record(ck: Checkpoint, d: dict, where: str) -> None:
    """Note what `d` (a checkpoint dict, safetensors metadata, a config.json) records about the model:
    a plain RNN's nonlinearity (``nonlinearity: relu``, or pytorch/examples' ``RNN_RELU`` / ``RNN_TANH``
    as ``rnn_type`` or ``model``, its main.py's --model) and what a line end means (``eos_means``),
    at its top level or under args / config / hparams. Two places that disagree are refused."""
    for holder, sub in [("", d)] + [(h, d[h]) for h in _RECORD_HOLDERS if isinstance(d.get(h), dict)]:
        for k in _RECORD_KEYS:
            v = sub.get(k)
            if not isinstance(v, str):
                continue
            if k in ("nonlinearity", "eos_means"):
                name, value = k, v.strip().lower()
            else:
                name, value = "nonlinearity", {"RNN_TANH": "tanh", "RNN_RELU": "relu"}.get(v.strip().upper())
            if value not in {"nonlinearity": ("tanh", "relu"), "eos_means": ("line", "paragraph")}[name]:
                continue
            said = f"{where}: {holder + '.' if holder else ''}{k} = {v!r}"
            if name in ck.records and ck.records[name][0] != value:
                raise ImportRefused(f"the checkpoint records two {name}s: {ck.records[name][1]} and {said}")
            ck.records.setdefault(name, (value, said))


def _is_state_dict(d) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                   for k, v in d.items())


def _unwrap(obj, name: str, key: str | None, ck: Checkpoint) -> dict[str, torch.Tensor]:
    """The state dict itself, or the one state dict inside a training checkpoint
    ({'model': ..., 'optimizer': ..., 'epoch': ...}); `key` picks one of several (an entry of the
    dict, or a key prefix of a flat state dict)."""
    if _is_state_dict(obj):
        return _under_prefix(dict(obj), name, key, ck) if key else dict(obj)
    if not isinstance(obj, dict):
        raise ImportRefused(f"{name} holds a {type(obj).__name__}, not a state dict. {SAVE_HINT}")
    _record(ck, obj, "the checkpoint's entries")
    inner = {k: v for k, v in obj.items() if _is_state_dict(v) and any(_RNN_KEY.match(str(x)) for x in v)}
    if key is not None:
        if key not in obj:
            raise ImportRefused(f"--key {key}: {name} has no entry '{key}' (its entries: "
                                f"{', '.join(map(str, list(obj)[:10]))})")
        if not _is_state_dict(obj[key]):
            raise ImportRefused(f"--key {key}: the entry '{key}' of {name} is a {type(obj[key]).__name__}, "
                                "not a state dict")
        inner = {key: obj[key]}
    if len(inner) == 1:
        (k, v), = inner.items()
        ck.notes.append(f"the state dict was taken from the checkpoint's '{k}' entry")
        return dict(v)
    if len(inner) > 1:
        names = sorted(map(str, inner))
        raise ImportRefused(f"{name} holds {len(inner)} state dicts of a recurrent model "
                            f"({', '.join(repr(n) for n in names)}): choose one with "
                            f"{' or '.join('--key ' + n for n in names)}")
    keys = ", ".join(map(str, list(obj)[:8]))
    raise ImportRefused(f"{name} holds a dict ({keys}) but no state dict of a recurrent model. {SAVE_HINT}")


def _under_prefix(sd: dict, name: str, key: str, ck: Checkpoint) -> dict:
    """The tensors of a flat state dict under the prefix `key.`, without it."""
    pre = key.rstrip(".") + "."
    out = {k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)}
    if not out:
        heads = sorted({k.split(".", 1)[0] for k in sd})
        raise ImportRefused(f"--key {key}: {name} has no entry '{key}' (no tensor named {pre}...; the names "
                            f"start with {', '.join(heads[:10])})")
    ck.notes.append(f"the tensors under '{pre}' were taken (--key {key})")
    return out


def parse_maps(maps) -> list[tuple[str, str]]:
    out = []
    for m in maps or ():
        if "=" not in m:
            raise ImportRefused(f"--map {m!r}: expected OLD=NEW (a key prefix and its replacement, "
                                "e.g. lstm.=rnn.)")
        old, new = m.split("=", 1)
        if not old:
            raise ImportRefused(f"--map {m!r}: OLD is empty")
        out.append((old, new))
    return out


def apply_maps(sd: dict, maps: list[tuple[str, str]]) -> dict:
    """Rename keys: each OLD=NEW replaces the prefix OLD (or the whole key OLD) by NEW, in order."""
    for old, new in maps:
        hit = [k for k in sd if k.startswith(old)]
        if not hit:
            raise ImportRefused(f"--map {old}={new} matches no tensor; the file has "
                                f"{', '.join(list(sd)[:10])}{' ...' if len(sd) > 10 else ''}")
        out = {}
        for k, v in sd.items():
            nk = new + k[len(old):] if k.startswith(old) else k
            if nk in out:
                raise ImportRefused(f"--map {old}={new} makes two tensors named {nk}")
            out[nk] = v
        sd = out
    return sd


# ---------------------------------------------------------------------------------- inference
@dataclass
class Inferred:
    """What was read from the shapes: the config, the tensors under this project's names, and how."""
    config: ModelConfig
    state: dict
    layout: str
    keys: dict            # this project's name -> the name in the file
    notes: list = field(default_factory=list)


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def _last(mod: str) -> str:
    return mod.rsplit(".", 1)[-1]


@dataclass
class _Stack:
    """The recurrent stack as read from the shapes."""
    prefix: str        # its keys' module prefix, e.g. "rnn." ("" for a bare nn.LSTM)
    layers: int
    cell: str          # lstm | gru | rnn
    gates: int         # rows of weight_hh per hidden unit: 4, 3 or 1
    hidden: int
    emb: int           # the width of the bottom layer's input: the embedding size
    has_bias: bool

    def key(self, kind: str, index: int) -> str:
        """The state-dict key of a layer's tensor; `index` is PyTorch's _l suffix (0 = the bottom layer)."""
        return f"{self.prefix}{kind}_l{index}"


def infer(sd: dict, cell: str | None = None) -> Inferred:
    """Recognise embedding -> recurrent stack -> decoder in a state dict, from names and shapes."""
    notes: list[str] = []
    sd = _unwrapped(sd, notes)
    rnn = _recurrent_keys(sd)
    st = _read_stack(sd, rnn, cell, notes)
    state, keys = _stack_tensors(sd, st, notes)
    rest = {k: v for k, v in sd.items() if k not in rnn}
    mats = {_module(k): k for k, v in rest.items() if k.endswith("weight") and v.dim() == 2}
    emb_m, dec_m = _embedding_and_decoder(rest, mats, st, notes)
    emb = rest[mats[emb_m]]
    keys["embedding.weight"] = mats[emb_m]
    tied, dec_b, used = _output_layer(rest, mats, emb_m, dec_m, st, state, keys, notes)
    _refuse_leftovers(sorted(set(rest) - used - {mats[emb_m]}), st.cell)
    state["embedding.weight"] = emb
    state["decoder.bias"] = dec_b
    _to_float32(state, keys, notes)
    config = ModelConfig(cell=st.cell, vocab_size=int(emb.shape[0]), emb_size=st.emb, hidden_size=st.hidden,
                         layers=st.layers, dropout=0.0, tied=tied)
    return Inferred(config, state, _layout(st, emb_m, dec_m), keys, notes)


def _unwrapped(sd: dict, notes: list) -> dict:
    """The state dict without a DataParallel 'module.' prefix."""
    sd = dict(sd)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
        notes.append("the DataParallel prefix 'module.' was dropped")
    return sd


def _recurrent_keys(sd: dict) -> dict:
    """{key: its _RNN_KEY match} of the recurrent layers' tensors; refused (with a hint) when there are none."""
    rnn = {k: _RNN_KEY.match(k) for k in sd}
    rnn = {k: m for k, m in rnn.items() if m}
    if rnn:
        return rnn
    hint = ""
    if any("self_attn" in k or "transformer" in k or "pos_encoder" in k for k in sd):
        hint = " It looks like a Transformer (pytorch/examples' TransformerModel), which is not a recurrent model."
    elif any(re.search(r"(^|\.)weight_ih$", k) for k in sd):
        hint = " It has nn.LSTMCell/GRUCell keys (weight_ih without _l0); rename them with --map to weight_ih_l0 etc."
    raise ImportRefused(
        "no recurrent layer found (no tensor named like rnn.weight_ih_l0 or weight_hh_l0). The importer reads "
        "embedding -> nn.LSTM/GRU/RNN -> linear decoder; the file has "
        f"{', '.join(list(sd)[:10])}{' ...' if len(sd) > 10 else ''}. Use --map OLD=NEW to rename keys." + hint)


def _read_stack(sd: dict, rnn: dict, cell: str | None, notes: list) -> _Stack:
    """The stack's prefix and layers from the key names, its cell and sizes from layer 0's shapes
    (checked against --cell)."""
    pre, L = _prefix_and_layers(rnn)
    whh = sd.get(f"{pre}weight_hh_l0")
    wih = sd.get(f"{pre}weight_ih_l0")
    if whh is None or wih is None or whh.dim() != 2 or wih.dim() != 2:
        raise ImportRefused(f"{pre}weight_ih_l0 and {pre}weight_hh_l0 must both be present as matrices")
    H = int(whh.shape[1])
    if whh.shape[0] % H or whh.shape[0] // H not in _GATES:
        raise ImportRefused(f"{pre}weight_hh_l0 has shape {tuple(whh.shape)}: its rows are not 4, 3 or 1 times its "
                            "columns, as for an LSTM, GRU or RNN")
    G = whh.shape[0] // H
    found = _GATES[G]
    if cell and cell != found:
        raise ImportRefused(f"--cell {cell}, but the weights are {_A[found]} ({pre}weight_hh_l0 has {G}×{H} "
                            f"rows: {G} gate{'s' if G > 1 else ''} of {H} units)")
    return _Stack(pre, L, found, G, H, int(wih.shape[1]), sd.get(f"{pre}bias_ih_l0") is not None)


def _prefix_and_layers(rnn: dict) -> tuple[str, int]:
    """The one stack's key prefix and its number of layers; bidirectional layers, LSTM projections,
    several stacks and gaps in the layer numbers are refused."""
    rev = sorted(k for k, m in rnn.items() if m["rev"])
    if rev:
        raise ImportRefused(f"bidirectional layers are not supported ({rev[0]} and {len(rev) - 1} more *_reverse "
                            "tensors): a language model reads left to right, and a backward direction sees the future")
    proj = sorted(k for k, m in rnn.items() if m["kind"] == "weight_hr")
    if proj:
        raise ImportRefused(f"LSTM projections (proj_size, {proj[0]}) are not supported: the trace needs h to be "
                            "the full hidden state")
    prefixes = sorted({m["prefix"] for m in rnn.values()})
    if len(prefixes) > 1:
        heads = sorted({p.split(".", 1)[0] for p in prefixes})
        how = (f"choose one with {' or '.join('--key ' + h for h in heads)}" if len(heads) == len(prefixes)
               and all(heads) else "drop the others from the state dict")
        raise ImportRefused(f"more than one recurrent stack ({', '.join(p.rstrip('.') or '(no prefix)' for p in prefixes)}): "
                            f"only one embedding -> RNN -> decoder model can be imported; {how}")
    layers = sorted({int(m["index"]) for m in rnn.values()})
    if layers != list(range(len(layers))):
        raise ImportRefused(f"the recurrent layers' keys end in {', '.join(f'_l{l}' for l in layers)}, not "
                            f"_l0.._l{len(layers) - 1} (PyTorch numbers its layers' keys from _l0)")
    return prefixes[0], len(layers)


def _stack_tensors(sd: dict, st: _Stack, notes: list) -> tuple[dict, dict]:
    """(state, keys): every layer's tensors under this project's names (rnn.weight_ih_l0 ...), shapes
    checked, and where each came from; zero biases for a stack without biases."""
    state: dict[str, torch.Tensor] = {}
    keys: dict[str, str] = {}
    G, H, E = st.gates, st.hidden, st.emb
    for l in range(st.layers):
        want = {"weight_ih": (G * H, E if l == 0 else H), "weight_hh": (G * H, H),
                "bias_ih": (G * H,), "bias_hh": (G * H,)}
        for kind, shape in want.items():
            t = sd.get(st.key(kind, l))
            if t is None:
                if kind.startswith("bias") and not st.has_bias:
                    state[f"rnn.{kind}_l{l}"] = torch.zeros(shape)
                    continue
                raise ImportRefused(f"{st.key(kind, l)} is missing (layer {l + 1} of {st.layers}, 1 = the bottom layer)")
            if kind.startswith("bias") and not st.has_bias:
                raise ImportRefused(f"the bottom layer ({st.key('bias_ih', 0)}) has no biases but {st.key(kind, l)} "
                                    "exists")
            if tuple(t.shape) != shape:
                raise ImportRefused(f"{st.key(kind, l)} has shape {tuple(t.shape)}; {_A[st.cell]} with "
                                    f"{H} units reading {E if l == 0 else H} inputs needs {shape}")
            state[f"rnn.{kind}_l{l}"] = t
            keys[f"rnn.{kind}_l{l}"] = st.key(kind, l)
    if not st.has_bias:
        notes.append("the recurrent layers have no biases (bias=False): zeros are used, which computes the same")
    return state, keys


def _pick(rest: dict, mats: dict, names, cols: int, role: str) -> str | None:
    """The one module named like a `role` (one of `names`) whose weight has `cols` columns, or None."""
    cands = [m for m, k in mats.items() if rest[k].shape[1] == cols]
    named = [m for m in cands if _last(m) in names]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise ImportRefused(f"more than one {role} ({', '.join(named)}); use --map to name the one to use")
    return None


def _embedding_and_decoder(rest: dict, mats: dict, st: _Stack, notes: list) -> tuple[str, str | None]:
    """The modules of the embedding and the decoder (None: no decoder in the file), by name, else by shape;
    one matrix as both when a tied pair was saved once."""
    E, H = st.emb, st.hidden
    emb_m = _pick(rest, mats, _EMB_NAMES, E, "embedding")
    dec_m = _pick(rest, mats, _DEC_NAMES, H, "decoder")
    if emb_m is None or dec_m is None:
        # fall back on shapes: the embedding has no bias, the decoder usually has one
        others = [m for m in mats if m not in (emb_m, dec_m)]
        if emb_m is None:
            c = [m for m in others if rest[mats[m]].shape[1] == E and f"{m}.bias" not in rest]
            if len(c) == 1:
                emb_m = c[0]
                others.remove(emb_m)
        if dec_m is None:
            c = [m for m in others if rest[mats[m]].shape[1] == H and m != emb_m]
            if len(c) == 1:
                dec_m = c[0]
    if emb_m is None and dec_m is not None and E == H:
        emb_m = dec_m
        notes.append(f"no separate embedding: the tied weight was saved once, as {mats[dec_m]}")
    if emb_m is None:
        raise ImportRefused(f"no embedding found: a matrix [vocabulary, {E}] (named e.g. encoder.weight or "
                            "embedding.weight) is needed; use --map to name it")
    return emb_m, dec_m


def _output_layer(rest, mats, emb_m, dec_m, st: _Stack, state, keys, notes) -> tuple[bool, torch.Tensor, set]:
    """(tied, the decoder's bias, the decoder's keys in the file). An untied decoder weight goes into
    state; a missing bias is zeros; no decoder at all: the embedding serves (tied), when it is as wide
    as the hidden state."""
    emb = rest[mats[emb_m]]
    V = int(emb.shape[0])
    used: set = set()
    tied = True
    dec_b = None
    if dec_m is not None:
        dw = rest[mats[dec_m]]
        if dw.shape[0] != V:
            raise ImportRefused(f"{mats[dec_m]} has {dw.shape[0]} rows but the embedding {mats[emb_m]} has {V}: "
                                "the decoder must predict the same vocabulary")
        used.add(mats[dec_m])
        tied = dec_m == emb_m or (st.emb == st.hidden and torch.equal(dw, emb))
        if not tied:
            state["decoder.weight"] = dw
            keys["decoder.weight"] = mats[dec_m]
        if f"{dec_m}.bias" in rest:
            dec_b = rest[f"{dec_m}.bias"]
            if tuple(dec_b.shape) != (V,):
                raise ImportRefused(f"{dec_m}.bias has shape {tuple(dec_b.shape)}, expected ({V},)")
            used.add(f"{dec_m}.bias")
            keys["decoder.bias"] = f"{dec_m}.bias"
    elif st.emb != st.hidden:
        raise ImportRefused(f"no decoder found: a matrix [{V}, {st.hidden}] (named e.g. decoder.weight or fc.weight) "
                            f"is needed, and the embedding ({st.emb} wide) cannot stand in for it with {st.hidden} "
                            "hidden units")
    else:
        notes.append("no decoder in the file: the embedding is used as the output layer (tied), with no bias")
    if dec_b is None:
        dec_b = torch.zeros(V)
        if dec_m is not None:
            notes.append("the decoder has no bias: zeros are used")
    if dec_m is not None and tied and dec_m != emb_m:
        keys["decoder.weight"] = f"{mats[dec_m]} (= {mats[emb_m]}, tied)"
    return tied, dec_b, used


_NORM = re.compile(r"(^|[._])(ln|norm|layer_?norm)\w*([._]|$)", re.IGNORECASE)


def _refuse_leftovers(left: list, cell: str) -> None:
    """Tensors that are not part of embedding -> recurrent stack -> decoder are refused by name; the
    message never suggests dropping them (the model would then compute something else)."""
    if not left:
        return
    names = f"{', '.join(left[:6])}{' ...' if len(left) > 6 else ''} ({len(left)} tensor{'s' if len(left) > 1 else ''})"
    if any(_NORM.search(k) for k in left):
        raise ImportRefused(
            f"unsupported parts: {names} look like layer norms. LayerNorm inside the recurrence is not a stock "
            f"nn.{cell.upper()} and cannot be traced exactly (nor can a layer norm between the layers or before "
            "the decoder): the explorer runs embedding -> stock nn.LSTM/GRU/RNN -> linear decoder, and a model "
            "with layer norms computes other numbers")
    raise ImportRefused(
        f"unsupported parts: {names} are not an embedding, a recurrent layer or the decoder (attention, a second "
        "head?); the explorer runs embedding -> stock nn.LSTM/GRU/RNN -> linear decoder and cannot trace a model "
        "with other parts exactly. If they are those parts under other names, --map them onto the expected names")


def _to_float32(state: dict, keys: dict, notes: list) -> None:
    """Every tensor as contiguous float32, in place; integers and NaN or infinite values are refused."""
    for k, v in list(state.items()):
        if not v.is_floating_point():
            raise ImportRefused(f"{keys.get(k, k)} has dtype {v.dtype}, expected floating point")
        if v.dtype != torch.float32:
            notes.append(f"{keys.get(k, k)} was {str(v.dtype).replace('torch.', '')}; converted to float32")
        v = v.detach().float().contiguous()
        if not torch.isfinite(v).all():
            raise ImportRefused(f"{keys.get(k, k)} contains NaN or infinite values")
        state[k] = v


def _layout(st: _Stack, emb_m: str, dec_m: str | None) -> str:
    """What the file was recognised as, in words."""
    pre, found = st.prefix, st.cell
    if pre == "rnn." and (emb_m == "encoder" or emb_m == dec_m == "decoder") and dec_m in ("decoder", None):
        return "pytorch/examples word_language_model (RNNModel: encoder, rnn, decoder)"
    if pre == "rnn." and emb_m == "embedding" and dec_m in ("decoder", None):
        return "RNN State Explorer LanguageModel (embedding, rnn, decoder)"
    stack = pre.rstrip(".") or "a bare nn." + found.upper() + " (no prefix)"
    return f"embedding + nn.{found.upper()} + decoder ({emb_m} -> {stack} -> {dec_m or emb_m + ', tied'})"


# --------------------------------------------------------------------------------- vocabulary
def read_vocab(path, chars: bool = False) -> tuple[list[str], str]:
    """The vocabulary in id order, and a description of the form it came in.

    JSON: a list of tokens; {token: id}; {"id": token}; or an object with one of the lists/maps
    under itos / idx2word / vocab / stoi / word2idx (pytorch/examples' Dictionary). Text: one token
    per line; with `chars`, every character of the file in order is a token (a newline included)."""
    path = Path(path)
    if path.is_dir():
        raise ImportRefused(f"the vocabulary {path.name}/ is a folder: give the file (e.g. "
                            f"{' or '.join(FOLDER_VOCABS)})")
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    if path.stat().st_size > MAX_VOCAB_BYTES:
        raise ImportRefused(f"{path.name} is larger than {MAX_VOCAB_BYTES // 2**20} MB")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImportRefused(f"{path.name} is not UTF-8 text: {e}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    head = text.lstrip()[:1]
    if path.suffix.lower() == ".json" or head in ("[", "{"):
        try:
            obj = json.loads(text)
        except ValueError as e:
            if path.suffix.lower() == ".json":
                raise ImportRefused(f"{path.name} is not valid JSON: {e}") from None
        else:
            return _vocab_from_json(obj, path.name)
    if chars:
        return list(text), "text file, one token per character"
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if any(ln == "" for ln in lines):
        raise ImportRefused(f"{path.name} has an empty line {lines.index('') + 1}: one token per line, no blank lines "
                            "(for a character model with newline or space tokens, use --chars or a JSON list)")
    return lines, "text file, one token per line"


def _vocab_from_json(obj, name: str) -> tuple[list[str], str]:
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "vocab" in obj["model"]:
        kind = obj["model"].get("type") or ("BPE" if "merges" in obj["model"] else "WordLevel")
        if kind != "WordLevel":   # a Hugging Face tokenizer.json
            raise ImportRefused(f"{name}: a {kind} tokenizer cuts words into pieces; the explorer reads whole "
                                "words split on whitespace (or this project's words, or characters) only")
        vocab, _ = _vocab_from_json(obj["model"]["vocab"], name)
        return vocab, "Hugging Face tokenizer.json (WordLevel)"
    if isinstance(obj, dict):
        for key in ("itos", "idx2word", "vocab", "stoi", "word2idx", "token_to_id"):
            if key in obj and isinstance(obj[key], (list, dict)):
                vocab, _ = _vocab_from_json(obj[key], name)
                return vocab, f"JSON object, '{key}'"
    if isinstance(obj, list):
        if not all(isinstance(w, str) for w in obj):
            raise ImportRefused(f"{name}: a JSON vocabulary list must hold strings only")
        return list(obj), "JSON list"
    if isinstance(obj, dict) and obj:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in obj.values()):
            pairs = sorted((v, k) for k, v in obj.items())
            form = "JSON object {token: id}"
        elif all(re.fullmatch(r"\d+", k) for k in obj) and all(isinstance(v, str) for v in obj.values()):
            pairs = sorted((int(k), v) for k, v in obj.items())
            form = "JSON object {id: token}"
        else:
            raise ImportRefused(f"{name}: a JSON vocabulary object must map tokens to ids or ids to tokens")
        ids = [i for i, _ in pairs]
        if ids != list(range(len(ids))):
            raise ImportRefused(f"{name}: the ids must be 0..{len(ids) - 1} with none missing or repeated")
        return [w for _, w in pairs], form
    raise ImportRefused(f"{name}: expected a JSON list of tokens or an object mapping tokens to ids")


# ----------------------------------------------------------------------------------- importing
def _specials(vocab: list[str], state: dict, config: ModelConfig, unk: str | None, eos: str | None,
              notes: list) -> tuple[list[str], dict, ModelConfig]:
    """Make sure <unk> and <eos> exist: rename the tokens the user names, or add a row that the
    model reads as a zero vector and never predicts (its logit is ABSENT_LOGIT)."""
    vocab = list(vocab)
    for special, named, aliases in ((UNK, unk, ("<UNK>", "[UNK]", "<oov>", "<OOV>")),
                                    (EOS, eos, ("</s>", "<EOS>", "[EOS]"))):
        if named is not None:
            if named == special:
                if special not in vocab:
                    raise ImportRefused(f"{special} is not in the vocabulary")
                continue
            if named not in vocab:
                raise ImportRefused(f"--{special.strip('<>')} {named!r} is not in the vocabulary")
            if special in vocab:
                raise ImportRefused(f"the vocabulary already has {special}; --{special.strip('<>')} {named!r} "
                                    "would make two")
            vocab[vocab.index(named)] = special
            notes.append(f"{named!r} (id {vocab.index(special)}) is used as {special}")
            continue
        if special in vocab:
            continue
        alias = next((a for a in aliases if a in vocab), None)
        if alias is not None:
            vocab[vocab.index(alias)] = special
            notes.append(f"{alias!r} (id {vocab.index(special)}) is used as {special}")
            continue
        V = len(vocab)
        vocab.append(special)
        state = dict(state)
        state["embedding.weight"] = torch.cat([state["embedding.weight"], torch.zeros(1, config.emb_size)])
        if "decoder.weight" in state:
            state["decoder.weight"] = torch.cat([state["decoder.weight"], torch.zeros(1, config.hidden_size)])
        state["decoder.bias"] = torch.cat([state["decoder.bias"], torch.tensor([ABSENT_LOGIT])])
        config = ModelConfig(**{**config.to_dict(), "vocab_size": V + 1})
        notes.append(f"the vocabulary has no {special}: added as id {V}, read as a zero vector and never predicted "
                     f"(name an existing token with --{special.strip('<>')} instead)")
    return vocab, state, config


def _nonlinearity(cell: str, flag: str | None, records: dict, notes: list) -> str:
    """A plain RNN's nonlinearity: --nonlinearity, else what the checkpoint records; never assumed
    (tanh and relu weights look alike and give different numbers)."""
    if flag is not None and flag not in ("tanh", "relu"):
        raise ImportRefused(f"--nonlinearity must be tanh or relu, not {flag!r}")
    said = records.get("nonlinearity")
    if cell != "rnn":
        if flag is not None:
            raise ImportRefused(f"--nonlinearity {flag}: only a plain RNN has one, and the weights are {_A[cell]}")
        return "tanh"
    if flag and said and said[0] != flag:
        raise ImportRefused(f"--nonlinearity {flag}, but the checkpoint records {said[0]} ({said[1]})")
    if flag:
        notes.append(f"a plain RNN with {flag} (--nonlinearity {flag})")
        return flag
    if said:
        notes.append(f"a plain RNN with {said[0]}: the checkpoint records it ({said[1]})")
        return said[0]
    raise ImportRefused("the weights are a plain RNN, and a plain RNN's weights cannot say whether it runs tanh or "
                        "relu (pytorch/examples' RNN_TANH or RNN_RELU), which give different numbers: say which with "
                        "--nonlinearity tanh or --nonlinearity relu")


#: What a sample text may hold to be read (the first part of a larger file is enough to tell).
MAX_SAMPLE_BYTES = 2 * 2**20


def _read_text_file(path, what: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{what} {path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as f:
        data = f.read(MAX_SAMPLE_BYTES + 1)
    if len(data) > MAX_SAMPLE_BYTES:
        raise ImportRefused(f"{what} {path.name} is larger than {MAX_SAMPLE_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImportRefused(f"{what} {path.name} is not UTF-8 text: {e}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sample_line_ends(text: str) -> tuple[str | None, str]:
    """What a line end of this training text is, and why: "line" when a line of text runs on into the
    next (hard-wrapped paragraphs), "paragraph" when a blank line stands between every two lines of
    text (one paragraph a line, as in WikiText), None when it cannot tell."""
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        if lines[i].strip() and lines[i + 1].strip():
            return "line", f"has line ends inside paragraphs (line {i + 1} runs on into line {i + 2})"
    if sum(1 for ln in lines if ln.strip()) >= 2:
        return "paragraph", "has a blank line between every two lines of text (one paragraph a line)"
    return None, "has fewer than two lines of text"


def _eos_means(kind: str, flag: str | None, records: dict, sample, notes: list) -> str:
    """What <eos> marks in the imported model's text: "line" or "paragraph". This project's word and
    char splits read <eos> only at a blank line: a paragraph. The whitespace split (pytorch/examples)
    reads one at every line end, which is a paragraph only where the training text had one paragraph
    a line: --eos-means says so, else the checkpoint's record, else a sample of the training text
    (--sample-text), else "line"."""
    if flag is not None and flag not in ("line", "paragraph"):
        raise ImportRefused(f"--eos-means must be line or paragraph, not {flag!r}")
    if kind != "whitespace":
        if flag == "line":
            raise ImportRefused(f"--eos-means line, but the {kind} split reads <eos> only at a blank line (a "
                                "paragraph break); for <eos> at every line end use --tokenizer whitespace")
        notes.append(f"<eos> marks a paragraph end: the {kind} split reads it at a blank line")
        return "paragraph"
    said = records.get("eos_means")
    seen, why = (None, "")
    if sample is not None:
        seen, why = sample_line_ends(_read_text_file(sample, "--sample-text"))
        why = f"{Path(sample).name} {why}"
    if flag and said and flag != said[0]:
        raise ImportRefused(f"--eos-means {flag}, but the checkpoint records {said[0]} ({said[1]})")
    given = flag or (said and said[0])
    if given and seen and given != seen:
        how = f"--eos-means {flag}" if flag else f"the checkpoint records eos_means {given} ({said[1]})"
        raise ImportRefused(f"{how}, but {why}, and the whitespace split reads <eos> at every line end")
    if flag:
        value, how = flag, f"--eos-means {flag}"
    elif said:
        value, how = said[0], f"the checkpoint records it ({said[1]})"
    elif seen:
        value, how = seen, why
    else:
        value, how = "line", "the default of the whitespace split (pytorch/examples: line.split() + ['<eos>'])"
    notes.append(f"<eos> marks a {value} end: {how}")
    return value


def import_checkpoint(weights, vocab=None, *, cell: str | None = None, maps=(), name: str | None = None,
                      tokenizer: str | None = None, chars: bool = False, unk: str | None = None,
                      eos: str | None = None, nonlinearity: str | None = None, key: str | None = None,
                      eos_means: str | None = None, sample_text=None) -> tuple[LoadedModel, dict]:
    """Read, recognise and check a checkpoint and its vocabulary. Returns the model (in memory,
    eval mode, frozen) and a JSON-able report of what was inferred; nothing is written.

    weights: a weights file, or a Hugging Face-style folder (then `vocab` defaults to its vocabulary).
    nonlinearity: a plain RNN's, tanh or relu (needed unless the checkpoint records it).
    key: the entry (or key prefix) of one state dict where the file holds several.
    eos_means / sample_text: what a line end means (see _eos_means)."""
    if cell is not None and cell not in ("lstm", "gru", "rnn"):
        raise ImportRefused(f"--cell must be lstm, gru or rnn, not {cell!r}")
    if chars and tokenizer not in (None, "char"):
        raise ImportRefused(f"--chars reads the text as characters; it cannot go with --tokenizer {tokenizer}")
    kind = "char" if chars else (tokenizer or "whitespace")
    if kind not in TOKENIZERS:
        raise ImportRefused(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, not {kind!r}")
    ck = read_checkpoint(weights, key)
    if vocab is None and ck.vocab is None:
        raise ImportRefused(f"{Path(weights).name}/ lacks a vocabulary ({', '.join(FOLDER_VOCABS)}); name it with "
                            "--vocab" if Path(weights).is_dir() else
                            "--vocab is needed: the vocabulary file, in id order")
    vocab = Path(vocab) if vocab is not None else ck.vocab
    sd = apply_maps(ck.state, parse_maps(maps))
    inf = infer(sd, cell)
    words, form = read_vocab(vocab, chars)
    notes = ck.notes + list(inf.notes)
    config = replace(inf.config, nonlinearity=_nonlinearity(inf.config.cell, nonlinearity, ck.records, notes))
    V = config.vocab_size
    if chars and form.startswith("text") and len(words) == V + 1 and words[-1] == "\n":
        words = words[:-1]
        notes.append("the trailing newline of the vocabulary file was not counted as a token")
    if len(words) != V:
        raise ImportRefused(f"the vocabulary has {len(words):,} tokens but the embedding has {V:,} rows "
                            f"({inf.keys['embedding.weight']}): they must match, in id order")
    dup = sorted({w for w in words if words.count(w) > 1})[:5] if len(set(words)) != len(words) else []
    if dup:
        raise ImportRefused(f"the vocabulary repeats tokens: {dup}")
    if kind != "char" and len(words) > 2 and all(len(w) == 1 for w in words if w not in (UNK, EOS)):
        notes.append("every token is one character: if this is a character model, import it with --chars")
    eos_is = _eos_means(kind, eos_means, ck.records, sample_text, notes)
    words, state, config = _specials(words, inf.state, config, unk, eos, notes)
    lm = LanguageModel(config)
    full = dict(state)
    if config.tied:
        full["decoder.weight"] = full["embedding.weight"]
    missing, unexpected = lm.load_state_dict(full, strict=False)
    if missing or unexpected:  # pragma: no cover - infer() builds exactly these names
        raise ImportRefused(f"internal: state does not fit the model ({missing[:3]} {unexpected[:3]})")
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    tok = TOKENIZERS[kind](words)
    cell_name = config.cell.upper() + (f" ({config.nonlinearity})" if config.cell == "rnn" else "")
    report = {
        "layout": inf.layout, "weights": ck.shown, "vocab": vocab.name, "vocab_form": form,
        "config": {k: v for k, v in config.to_dict().items() if k != "dropout"}
        | ({"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}),
        "tokenizer": {"kind": kind, "split": SPLITS[kind], "eos_means": eos_is}, "keys": inf.keys, "notes": notes,
        "parameters": lm.n_params(),
    }
    card = {"name": name or (Path(weights).name if Path(weights).is_dir() else Path(weights).stem),
            "imported": report, "tokenizer": {"eos_means": eos_is},
            "description": (f"Imported from {ck.shown}: {cell_name}, {config.layers} layer"
                            f"{'s' if config.layers > 1 else ''} × {config.hidden_size} units, embedding "
                            f"{config.emb_size}, {config.vocab_size:,} tokens, {'tied' if config.tied else 'untied'}; "
                            f"{inf.layout}. Text is {SPLITS[kind]}; <eos> marks a {eos_is} end.")}
    return LoadedModel(lm, tok, card, None), report


# -------------------------------------------------------------------------------- import --check
#: The largest difference of log-probabilities between the imported model and the user's REF that
#: still counts as the same model (float32 arithmetic in another order differs by about 1e-6).
CHECK_TOLERANCE = 1e-4
_REF_NAMES = ("log_probs", "logprobs", "logp", "log_softmax", "logits", "ref")


def read_reference(path) -> np.ndarray:
    """REF as a float64 [tokens, vocabulary] array: a .npy file (numpy.save; never unpickled) or a
    safetensors file with one tensor (or one named log_probs, logp or logits); a batch axis of 1 is
    dropped."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"--check {path}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:6] == b"\x93NUMPY":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ImportRefused(f"--check {path.name} could not be read as a .npy array: {e}") from None
    else:
        problem = safetensors_problem(path) if len(head) >= 8 else ("truncated", f"{path.name} is truncated")
        if problem:
            raise ImportRefused(f"--check {path.name} is neither a .npy file (numpy.save) nor a safetensors file"
                                if problem[0] == "other" else f"--check {problem[1]}")
        from safetensors.numpy import load_file
        try:
            arrays = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - a corrupt file: one line
            raise ImportRefused(f"--check {path.name} is a corrupt safetensors file: {e}") from None
        named = [k for k in _REF_NAMES if k in arrays]
        if len(arrays) != 1 and not named:
            raise ImportRefused(f"--check {path.name} holds {len(arrays)} tensors ({', '.join(list(arrays)[:6])}): "
                                f"keep one, or name it {' or '.join(_REF_NAMES[:3])} or logits")
        a = arrays[named[0]] if named else next(iter(arrays.values()))
    a = np.asarray(a)
    while a.ndim > 2 and 1 in a.shape[:-1]:
        a = a.squeeze(a.shape.index(1))
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
        raise ImportRefused(f"--check {path.name} holds a {a.dtype} array of shape {a.shape}; expected floats "
                            "[tokens, vocabulary] (log-probabilities or logits)")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImportRefused(f"--check {path.name} holds NaN or infinite values")
    return a


def check_reference(model: LoadedModel, ref, text) -> dict:
    """Compare the model's log-probabilities on the text in the file `text` with REF, the user's own
    model's on the same text. The text is split by the model's tokenizer; REF's rows say whether the
    boundary token was read first: one row per token read, so N + 1 rows read <eos> and then the N
    tokens, N rows read the N tokens from a zero state. REF holds log-probabilities (rows that sum
    to 1 as probabilities) or logits (log_softmax is applied). Returns what was compared and the
    largest absolute difference; raises ImportRefused above CHECK_TOLERANCE."""
    from .engine import log_probs, run_layers
    a = read_reference(ref)
    ref, text = Path(ref), Path(text)
    tok, lm = model.tokenizer, model.lm
    tokens = tok.tokenize(_read_text_file(text, "--check-text"))
    split = SPLITS.get(tok.kind, tok.kind)
    n = len(tokens)
    if a.shape[0] == n + 1:
        ids = [tok.eos_id] + [t.id for t in tokens]
        rule = f"<eos> first, then the {n} tokens of {text.name} ({split})"
    elif a.shape[0] == n and n:
        ids = [t.id for t in tokens]
        rule = f"no <eos> first: the {n} tokens of {text.name} from a zero state ({split})"
    else:
        raise ImportRefused(f"--check {ref.name} has {a.shape[0]} rows, but {text.name} reads as {n + 1} (with the "
                            f"leading <eos>) or {n} tokens (without) when {split}; REF needs one row per token read")
    V, cols = lm.config.vocab_size, a.shape[1]
    added = lm.decoder.bias[cols:] if cols < V else None
    if cols > V or (added is not None and not bool((added == ABSENT_LOGIT).all())):
        raise ImportRefused(f"--check {ref.name} has {cols} columns, but the model predicts {V} tokens")
    lse = np.logaddexp.reduce(a, axis=1)
    is_logp = bool(np.abs(lse).max() < 1e-3)
    ref_logp = a if is_logp else a - lse[:, None]
    layers, top, _ = run_layers(lm, torch.tensor(ids, dtype=torch.long, device=lm.decoder.weight.device))
    mine = log_probs(lm, top.cpu().numpy()[None])[0][:, :cols].astype(np.float64)
    diff = np.abs(mine - ref_logp)
    row, col = np.unravel_index(int(diff.argmax()), diff.shape)
    worst = float(diff[row, col])
    read = tok.itos[ids[row]]
    out = {"ref": ref.name, "text": text.name, "tokens": len(ids), "rule": rule,
           "ref_is": "log-probabilities" if is_logp else "logits (log_softmax applied)",
           "max_abs_diff": worst, "at": {"row": int(row), "reading": read, "next": tok.itos[int(col)]},
           "tolerance": CHECK_TOLERANCE, "passed": worst <= CHECK_TOLERANCE}
    if not out["passed"]:
        looks = (" (REF looks like probabilities: save log-probabilities or logits)"
                 if a.min() >= 0 and np.allclose(a.sum(1), 1, atol=1e-3) else "")
        raise ImportRefused(
            f"--check: the imported model does not reproduce {ref.name}: the largest difference of "
            f"log-probabilities is {worst:.3g} (row {row}, reading {read!r}, for {tok.itos[int(col)]!r}), above "
            f"{CHECK_TOLERANCE:.0e}{looks}; read as {rule}, REF as {out['ref_is']}. Nothing was written. Check "
            "--cell, --nonlinearity, --tokenizer and --map, and that REF comes from this checkpoint")
    return out


def import_to_bundle(out, weights, vocab=None, command: str = "", check=None, check_text=None, **kw) -> dict:
    """import_checkpoint, then (with `check`) check_reference, then write the bundle at `out`; returns
    the report with the bundle path. A refused import writes nothing."""
    if (check is None) != (check_text is None):
        raise ImportRefused("--check needs --check-text (the text REF was computed on)" if check is not None
                            else "--check-text needs --check REF (the log-probabilities to compare with)")
    model, report = import_checkpoint(weights, vocab, **kw)
    if check is not None:
        report["check"] = check_reference(model, check, check_text)
    card = dict(model.card)
    if command:
        card["command"] = command
    save_bundle(out, model.lm, model.tokenizer, card)
    return {"out": str(out), "name": card["name"], **report}
