"""Import someone else's checkpoint: a plain state dict (.pt or .safetensors) plus a vocabulary
becomes a model bundle.

    python -m explorer import --weights FILE.pt|FILE.safetensors --vocab VOCAB --out BUNDLE
                             [--cell lstm|gru|rnn] [--map OLD=NEW ...] [--name NAME]
                             [--tokenizer whitespace|word|char] [--chars] [--unk TOK] [--eos TOK]

Checkpoints are untrusted. A ``.pt`` file is read with ``torch.load(..., weights_only=True)`` and
nothing else: a file that needs any other Python object to unpickle (a whole model saved with
``torch.save(model)``, a hostile ``__reduce__``) is refused by torch's restricted unpickler before
anything in it runs, and the message says how to save a plain state dict instead.

What is recognised (after ``--map`` renames, and a DataParallel ``module.`` prefix is dropped):

* pytorch/examples' word_language_model ``RNNModel``: ``encoder.weight``, ``rnn.weight_ih_l0`` ...,
  ``decoder.weight``, ``decoder.bias`` (tied or not; a tied pair saved once is re-tied);
* a bare ``nn.LSTM`` / ``GRU`` / ``RNN`` (keys ``weight_ih_l0`` ..., with or without a module prefix
  such as ``lstm.``) beside an embedding (``embedding``, ``embed``, ``emb``, ``encoder``, ...) and
  an output layer (``decoder``, ``fc``, ``linear``, ``out``, ``head``, ...), or no output layer when
  the embedding can serve as one (tied);
* this project's own ``LanguageModel`` (``embedding``, ``rnn``, ``decoder``).

Sizes come from the shapes: the cell from the gate rows of ``weight_hh_l0`` (4H LSTM, 3H GRU, H RNN),
the hidden size from its columns, the embedding size from ``weight_ih_l0``, the layers from the
``_lN`` suffixes, the vocabulary from the embedding, tied or not from whether the decoder is the
embedding. Bidirectional layers (``*_reverse``), LSTM projections (``weight_hr_l*``, proj_size) and
any tensor that is not part of embedding -> recurrent stack -> decoder are refused by name.
"""
from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .api import LoadedModel
from .bundle import save_bundle
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
                      r"_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_GATES = {4: "lstm", 3: "gru", 1: "rnn"}
_A = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN"}
#: Logit bias of a special token that the imported model never had: exp(-1e4) is 0 in float32, so
#: the next-token distribution over the model's own vocabulary is unchanged.
ABSENT_LOGIT = -1e4
MAX_VOCAB_BYTES = 50 * 2**20


# ------------------------------------------------------------------------------------ weights
def read_weights(path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save file (weights_only=True, nothing else)."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 8:
        raise ImportRefused(f"{path.name} is empty or truncated ({len(head)} bytes)")
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return _read_torch(path)
    n = int.from_bytes(head[:8], "little")
    if 0 < n <= path.stat().st_size - 8 and head[8:9] == b"{":
        return _read_safetensors(path)
    raise ImportRefused(f"{path.name} is neither a torch.save file nor a safetensors file. {SAVE_HINT}")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ImportRefused(f"{path.name} is a corrupt safetensors file: {e}") from None


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
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
    return _unwrap(obj, path.name)


def _is_state_dict(d) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                   for k, v in d.items())


def _unwrap(obj, name: str) -> dict[str, torch.Tensor]:
    """The state dict itself, or the one state dict inside a training checkpoint
    ({'model': ..., 'optimizer': ..., 'epoch': ...})."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, dict):
        inner = {k: v for k, v in obj.items() if _is_state_dict(v)
                 and any(_RNN_KEY.match(str(x)) for x in v)}
        if len(inner) == 1:
            (k, v), = inner.items()
            return dict(v) | {f"__from_key__{k}": torch.empty(0)}   # infer() notes where it came from
        keys = ", ".join(map(str, list(obj)[:8]))
        raise ImportRefused(f"{name} holds a dict ({keys}) but no state dict of a recurrent model. {SAVE_HINT}")
    raise ImportRefused(f"{name} holds a {type(obj).__name__}, not a state dict. {SAVE_HINT}")


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
    emb: int           # the width of layer 0's input: the embedding size
    has_bias: bool

    def key(self, kind: str, layer: int) -> str:
        return f"{self.prefix}{kind}_l{layer}"


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
    _refuse_leftovers(sorted(set(rest) - used - {mats[emb_m]}))
    state["embedding.weight"] = emb
    state["decoder.bias"] = dec_b
    _to_float32(state, keys, notes)
    config = ModelConfig(cell=st.cell, vocab_size=int(emb.shape[0]), emb_size=st.emb, hidden_size=st.hidden,
                         layers=st.layers, dropout=0.0, tied=tied)
    return Inferred(config, state, _layout(st, emb_m, dec_m), keys, notes)


def _unwrapped(sd: dict, notes: list) -> dict:
    """The state dict without the note of the checkpoint entry it came from and without a DataParallel
    'module.' prefix."""
    sd = dict(sd)
    for k in [k for k in sd if k.startswith("__from_key__")]:
        notes.append(f"the state dict was taken from the checkpoint's '{k[len('__from_key__'):]}' entry")
        del sd[k]
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
    if found == "rnn":
        notes.append("a plain RNN's nonlinearity cannot be read from its weights: tanh is assumed "
                     "(pytorch/examples' RNN_RELU is not supported)")
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
        raise ImportRefused(f"more than one recurrent stack ({', '.join(p.rstrip('.') or '(no prefix)' for p in prefixes)}): "
                            "only one embedding -> RNN -> decoder model can be imported; drop the others from the state dict")
    layers = sorted({int(m["layer"]) for m in rnn.values()})
    if layers != list(range(len(layers))):
        raise ImportRefused(f"recurrent layers {layers} are not numbered 0..{len(layers) - 1}")
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
                raise ImportRefused(f"{st.key(kind, l)} is missing (layer {l} of {st.layers})")
            if kind.startswith("bias") and not st.has_bias:
                raise ImportRefused(f"layer 0 has no biases but {st.key(kind, l)} exists")
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


def _refuse_leftovers(left: list) -> None:
    """Tensors that are not part of embedding -> recurrent stack -> decoder are refused by name."""
    if left:
        raise ImportRefused(
            f"unsupported parts: {', '.join(left[:6])}{' ...' if len(left) > 6 else ''} "
            f"({len(left)} tensor{'s' if len(left) > 1 else ''}) are not an embedding, a recurrent layer or the "
            "decoder (a layer norm, attention, a second head?); the explorer cannot reproduce a model with them. "
            "Drop them from the state dict, or --map them onto the expected names")


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


def import_checkpoint(weights, vocab, *, cell: str | None = None, maps=(), name: str | None = None,
                      tokenizer: str | None = None, chars: bool = False, unk: str | None = None,
                      eos: str | None = None) -> tuple[LoadedModel, dict]:
    """Read, recognise and check a checkpoint and its vocabulary. Returns the model (in memory,
    eval mode, frozen) and a JSON-able report of what was inferred; nothing is written."""
    if cell is not None and cell not in ("lstm", "gru", "rnn"):
        raise ImportRefused(f"--cell must be lstm, gru or rnn, not {cell!r}")
    if chars and tokenizer not in (None, "char"):
        raise ImportRefused(f"--chars reads the text as characters; it cannot go with --tokenizer {tokenizer}")
    kind = "char" if chars else (tokenizer or "whitespace")
    if kind not in TOKENIZERS:
        raise ImportRefused(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, not {kind!r}")
    weights, vocab = Path(weights), Path(vocab)
    sd = apply_maps(read_weights(weights), parse_maps(maps))
    inf = infer(sd, cell)
    words, form = read_vocab(vocab, chars)
    notes = list(inf.notes)
    V = inf.config.vocab_size
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
    words, state, config = _specials(words, inf.state, inf.config, unk, eos, notes)
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
    report = {
        "layout": inf.layout, "weights": weights.name, "vocab": vocab.name, "vocab_form": form,
        "config": {k: v for k, v in config.to_dict().items() if k != "dropout"},
        "tokenizer": {"kind": kind, "split": SPLITS[kind]}, "keys": inf.keys, "notes": notes,
        "parameters": lm.n_params(),
    }
    card = {"name": name or weights.stem, "imported": report,
            "description": (f"Imported from {weights.name}: {config.cell.upper()}, {config.layers} layer"
                            f"{'s' if config.layers > 1 else ''} × {config.hidden_size} units, embedding "
                            f"{config.emb_size}, {config.vocab_size:,} tokens, {'tied' if config.tied else 'untied'}; "
                            f"{inf.layout}. Text is {SPLITS[kind]}.")}
    return LoadedModel(lm, tok, card, None), report


def import_to_bundle(out, weights, vocab, command: str = "", **kw) -> dict:
    """import_checkpoint, then write the bundle at `out`; returns the report with the bundle path."""
    model, report = import_checkpoint(weights, vocab, **kw)
    card = dict(model.card)
    if command:
        card["command"] = command
    save_bundle(out, model.lm, model.tokenizer, card)
    return {"out": str(out), "name": card["name"], **report}
