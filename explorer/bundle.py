"""Model bundles: a folder with weights.safetensors, tokenizer.json and card.json.

Checkpoints are untrusted input. Weights are read only with safetensors (no pickle, ever); every file
is validated and an error names the file that is wrong and how. Saving is atomic: the bundle is
written to a temporary folder beside the target and renamed into place.
"""
from __future__ import annotations

import io
import json

import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import BundleError, InputError
from .files import atomic_dir
from .model import LanguageModel, ModelConfig
from .tokenizer import tokenizer_from_dict

if TYPE_CHECKING:
    from .api import LoadedModel

WEIGHTS, TOKENIZER, CARD = "weights.safetensors", "tokenizer.json", "card.json"
FILES = (WEIGHTS, TOKENIZER, CARD)
MAX_JSON_BYTES = 20 * 1024 * 1024


def _state_for_saving(lm: LanguageModel) -> dict[str, torch.Tensor]:
    sd = lm.state_dict()
    if lm.config.tied:
        sd.pop("decoder.weight")  # the same tensor as embedding.weight; re-tied on load
    return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def save_bundle(path, lm: LanguageModel, tokenizer, card: dict) -> Path:
    """Write a bundle atomically. `card` gets the config and vocabulary size filled in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = dict(card)
    card["config"] = lm.config.to_dict()
    card.setdefault("tokenizer", {})["kind"] = tokenizer.kind
    card["tokenizer"]["vocab_size"] = len(tokenizer)
    card["tokenizer"].setdefault("eos_means", tokenizer.eos_means)   # what <eos> marks: tokenizer.eos_means
    with atomic_dir(path) as tmp:
        save_file(_state_for_saving(lm), str(tmp / WEIGHTS), metadata={"format": "pt"})
        tokenizer.save(tmp / TOKENIZER)
        (tmp / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_json_file(p: Path, max_bytes: int = MAX_JSON_BYTES) -> dict:
    if not p.is_file():
        raise BundleError(f"{p.parent.name}/{p.name} is missing")
    if p.stat().st_size > max_bytes:
        raise BundleError(f"{p.name} is larger than {max_bytes / 2**20:g} MB")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{p.name} is not valid UTF-8 JSON: {e}") from None
    if not isinstance(d, dict):
        raise BundleError(f"{p.name} must hold a JSON object")
    return d


def safetensors_problem(p: Path, max_header: int = 100 * 2**20) -> tuple[str, str] | None:
    """Why `p` is not a whole safetensors file, read from its length prefix and JSON header alone (no
    tensor is loaded): None when it is one, else (kind, message) with kind "truncated" (cut inside
    the header or the tensors, or empty) or "other" (not safetensors, or a corrupt header)."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(9)
        if len(head) < 8:
            return "truncated", f"{p.name} is truncated ({size} bytes)"
        n = int.from_bytes(head[:8], "little")
        if n <= 1 or n > max_header or head[8:9] not in (b"{", b""):
            return "other", f"{p.name} is not a safetensors file (bad header length {n})"
        if n > size - 8:
            return "truncated", (f"{p.name} is truncated inside its header: the header is {n:,} bytes long, "
                                 f"the file holds {size - 8:,} after its length")
        f.seek(8)
        try:
            header = json.loads(f.read(n))
            end = max([0] + [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            return "other", f"{p.name} has a corrupt safetensors header ({type(e).__name__})"
    if 8 + n + end > size:
        return "truncated", f"{p.name} is truncated: its tensors need {8 + n + end:,} bytes, the file has {size:,}"
    return None


def check_safetensors_file(p: Path, max_header: int = 100 * 2**20) -> None:
    """Refuse, without opening it as a model, anything that is not a plausible safetensors file:
    missing, a pickle / torch.save zip, truncated, or with an impossible header length."""
    if not p.is_file():
        raise BundleError(f"{p.parent.name}/{p.name} is missing")
    with open(p, "rb") as f:
        head = f.read(16)
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise BundleError(f"{p.name} is a pickle / torch.save file, not safetensors; it was not "
                          "opened (pickles can run code). Convert it with safetensors.torch.save_file")
    problem = safetensors_problem(p, max_header)
    if problem:
        raise BundleError(problem[1])


def _device(device) -> torch.device:
    """`device` as a torch.device that this machine has; InputError otherwise (never ignored)."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device {device!r} is not a torch device ({e})") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: this machine has no CUDA device (torch {torch.__version__})")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if d.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: MPS is not available here")
    if d.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {device!r}: the explorer runs on cpu, cuda or mps")
    return d


def load_model(path, device: str = "cpu") -> "LoadedModel":
    """Load and validate a bundle folder onto `device` (the model is moved there, or InputError says
    why it cannot be); raise BundleError naming the file that is wrong."""
    from .api import LoadedModel  # noqa: avoid an import cycle

    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"model bundle {path} is not a folder (expected {', '.join(FILES)})")
    card = read_json_file(path / CARD)
    try:
        config = ModelConfig.from_dict(card.get("config"))
    except (TypeError, ValueError) as e:
        raise BundleError(f"{CARD}: bad 'config': {e}") from None
    try:
        tok = tokenizer_from_dict(read_json_file(path / TOKENIZER))
    except ValueError as e:
        raise BundleError(str(e)) from None
    if len(tok) != config.vocab_size:
        raise BundleError(f"{TOKENIZER} has {len(tok)} words but {CARD} says vocab_size="
                          f"{config.vocab_size}: the vocabulary does not match the weights")
    wp = path / WEIGHTS
    check_safetensors_file(wp)
    try:
        sd = load_file(str(wp))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{WEIGHTS} is corrupt or not safetensors: {e}") from None
    lm = LanguageModel(config)
    expected = _state_for_saving(lm)
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    if missing:
        raise BundleError(f"{WEIGHTS} lacks {len(missing)} tensors the config needs, e.g. {missing[:3]}")
    if extra:
        raise BundleError(f"{WEIGHTS} has {len(extra)} tensors the config does not use, e.g. {extra[:3]}")
    for k, v in expected.items():
        got = sd[k]
        if tuple(got.shape) != tuple(v.shape):
            hint = " (vocabulary/weight mismatch)" if k == "embedding.weight" else ""
            raise BundleError(f"{WEIGHTS}: {k} has shape {tuple(got.shape)}, the config needs "
                              f"{tuple(v.shape)}{hint}")
        if not got.is_floating_point():
            raise BundleError(f"{WEIGHTS}: {k} has dtype {got.dtype}, expected floating point")
        if not torch.isfinite(got).all():
            raise BundleError(f"{WEIGHTS}: {k} contains NaN or infinite values")
    lm.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    lm.to(_device(device))
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)  # shared read-only: attribution differentiates w.r.t. inputs only
    return LoadedModel(lm, tok, card, path)


#: The bundles the app opens on, in order of preference (the first one present): the teaching model
#: whose prior was balanced (README, "The teaching model"), then the faithful model of the books.
DEFAULT_MODELS = ("fiction-lstm-balanced", "fiction-lstm")


def default_model(root="pretrained") -> Path | None:
    """The bundle under `root` the app opens on: the first of DEFAULT_MODELS present, else the first
    bundle listed, else None."""
    found = list_models(root)
    return next((p for n in DEFAULT_MODELS for p in found if p.name == n), found[0] if found else None)


def list_models(root="pretrained") -> list[Path]:
    """Every folder under `root` (one level, and root itself) that holds a card.json."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [root] if (root / CARD).is_file() else []
    found += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and (p / CARD).is_file())
    return found


def extract_bundle_zip(data: bytes, dest, max_bytes: int) -> Path:
    """Unpack an uploaded bundle zip safely into `dest` and return the bundle folder.

    Only the three bundle files are taken (from the top level or one folder down); path
    traversal, links and zip bombs are refused by reading names and sizes before extracting.
    """
    if len(data) > max_bytes:
        raise BundleError(f"the upload is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BundleError("the upload is not a zip file") from None
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    picked: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = Path(info.filename).name
        parts = Path(info.filename).parts
        if name in FILES and len(parts) <= 2 and ".." not in parts and not info.filename.startswith("/"):
            if name in picked:
                raise BundleError(f"the zip holds more than one {name}")
            picked[name] = info
            total += info.file_size
    missing = [f for f in FILES if f not in picked]
    if missing:
        raise BundleError(f"the zip lacks {', '.join(missing)} (a bundle needs {', '.join(FILES)})")
    if total > max_bytes * 2:
        raise BundleError(f"the zip unpacks to {total / 2**20:.0f} MB, more than allowed")
    for name, info in picked.items():
        with zf.open(info) as src, open(dest / name, "wb") as out:
            shutil.copyfileobj(src, out)
    return dest
