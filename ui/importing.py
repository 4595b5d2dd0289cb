"""The sidebar's checkpoint import: a weights file (.pt / .safetensors) plus a vocabulary, uploaded
beside or instead of a bundle zip. explorer.importer reads them (torch.load with weights_only=True,
or safetensors); what it inferred (layout, cell, sizes, tying, how text is split, notes) is shown,
with the options of `python -m explorer import`, before the user chooses to use the model."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import settings
from explorer.bundle import save_bundle
from explorer.importer import SPLITS, import_checkpoint

from ui import common

log = logging.getLogger("rnn_explorer.ui")

WEIGHT_EXT = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
VOCAB_EXT = (".json", ".txt", ".vocab")
#: What the uploader accepts (a bundle zip, or these).
TYPES = ["zip", *(e[1:] for e in WEIGHT_EXT), *(e[1:] for e in VOCAB_EXT)]
CELL_CHOICES = {"": "from the shapes", "lstm": "LSTM", "gru": "GRU", "rnn": "RNN (tanh)"}
TOKENIZER_CHOICES = {"whitespace": "whitespace (pytorch/examples)", "word": "this app's word split",
                     "char": "characters"}


def _root() -> Path:
    import tempfile
    return Path(tempfile.gettempdir()) / "rnn-explorer-uploads"


def _safe(name: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[-80:] or "file"


def split_files(files) -> tuple[object | None, object | None, str | None]:
    """(weights, vocabulary, problem) from the uploaded files: the latest weights file and the latest
    vocabulary (the uploader keeps earlier files; a new one replaces the one of its kind)."""
    weights = [f for f in files if f.name.lower().endswith(WEIGHT_EXT)]
    vocab = [f for f in files if f.name.lower().endswith(VOCAB_EXT)]
    if not weights and not vocab:
        return None, None, ("upload a weights file (.pt, .pth, .bin, .safetensors) and its vocabulary "
                            "(.json or .txt, one token per line), or one bundle zip")
    if not weights:
        return None, None, (f"{vocab[-1].name} is a vocabulary: add the weights file it belongs to "
                            "(.pt saved with torch.save(model.state_dict()), or .safetensors)")
    if not vocab:
        return None, None, (f"{weights[-1].name} needs its vocabulary beside it: a JSON list or "
                            "{token: id} object, or a text file with one token per line")
    return weights[-1], vocab[-1], None


def stage(files) -> dict:
    """Write the uploaded weights + vocabulary under the uploads folder; the pending import (or
    {'error': ...}). Called from the uploader's callback."""
    w, v, problem = split_files(files)
    ids = tuple(f.file_id for f in files)
    if problem:
        return {"ids": ids, "error": problem}
    wb, vb = w.getvalue(), v.getvalue()
    if len(wb) + len(vb) > settings.MAX_UPLOAD_BYTES:
        return {"ids": ids, "error": f"the upload is {(len(wb) + len(vb)) / 2**20:.1f} MB; the limit is "
                                      f"{settings.MAX_UPLOAD_BYTES / 2**20:.0f} MB"}
    digest = hashlib.sha256(wb + b"\0" + vb).hexdigest()[:12]
    root = _root()
    common.prune_uploads(root, keep=f"import-{digest}")
    d = root / f"import-{digest}"
    d.mkdir(parents=True, exist_ok=True)
    # the user's file names (made safe), so that messages name the files they uploaded; the reader
    # trusts the bytes, never the extension
    wp, vp = d / "weights" / _safe(w.name), d / "vocab" / _safe(v.name)
    wp.parent.mkdir(exist_ok=True)
    vp.parent.mkdir(exist_ok=True)
    wp.write_bytes(wb)
    vp.write_bytes(vb)
    return {"ids": ids, "weights": str(wp), "vocab": str(vp), "weights_name": w.name, "vocab_name": v.name,
            "digest": digest}


@st.cache_resource(max_entries=4, show_spinner="Reading the checkpoint…")
def _inferred(weights: str, vocab: str, cell: str, tokenizer: str, maps: tuple, name: str):
    # Shared read-only, like every cached model: import_checkpoint freezes it in eval mode.
    return import_checkpoint(weights, vocab, cell=cell or None, maps=maps, name=name,
                             tokenizer=None if tokenizer == "char" else tokenizer, chars=tokenizer == "char")


def options() -> dict:
    s = st.session_state
    maps = tuple(ln.strip() for ln in (s.get("imp_map") or "").splitlines() if ln.strip())
    return {"cell": s.get("imp_cell", ""), "tokenizer": s.get("imp_tok", "whitespace"), "maps": maps,
            "name": (s.get("imp_name") or "").strip()}


def describe(report: dict) -> str:
    """Markdown: what was inferred, for the sidebar."""
    c = report["config"]
    lines = [f"**Layout:** {report['layout']}",
             f"**Model:** {c['cell'].upper()} · {c['layers']} layer{'s' if c['layers'] > 1 else ''} × "
             f"{c['hidden_size']} units · embedding {c['emb_size']} · {c['vocab_size']:,} tokens · "
             f"{'tied' if c['tied'] else 'untied'} decoder · {report['parameters']:,} parameters",
             f"**Vocabulary:** {report['vocab_form']}",
             f"**Text is split:** {report['tokenizer']['split']}"]
    lines += [f"- {n}" for n in report["notes"]]
    return "\n\n".join(lines[:4]) + ("\n\n" + "\n".join(lines[4:]) if len(lines) > 4 else "")


def use(pending: dict, opts: dict):
    """Button callback: write the inferred model as a bundle, validate it as any bundle, select it."""
    try:
        model, report = _inferred(pending["weights"], pending["vocab"], opts["cell"], opts["tokenizer"],
                                  opts["maps"], opts["name"] or Path(pending["weights_name"]).stem)
        key = hashlib.sha256(json.dumps([pending["digest"], opts], sort_keys=True).encode()).hexdigest()[:12]
        dest = _root() / f"imported-{key}"
        card = dict(model.card)
        card["imported"] = dict(report, weights=pending["weights_name"], vocab=pending["vocab_name"])
        card["command"] = "uploaded in the app"
        save_bundle(dest, model.lm, model.tokenizer, card)
        loaded = common.model_at(str(dest))               # full bundle validation, shared cache
    except E.ExplorerError as e:
        st.session_state["_import_msg"] = ("error", f"The model could not be imported: {e}")
        return
    except Exception as e:  # noqa: BLE001
        log.exception("import failed")
        st.session_state["_import_msg"] = ("error", f"The model could not be imported: {type(e).__name__}: {e}")
        return
    label = f"{loaded.name} (imported: {pending['weights_name']})"
    st.session_state.setdefault("_uploads", {})[str(dest)] = label
    st.session_state["model"] = str(dest)
    st.session_state["_import_msg"] = ("ok", f"Using {label}.")


def pending_box():
    """Inside the upload expander: the pending import's options, what was inferred, and 'Use'."""
    pending = st.session_state.get("_import")
    msg = st.session_state.get("_import_msg")
    if not pending:
        return
    if "error" in pending:
        st.error(pending["error"], icon=":material/error:")
        return
    st.markdown(f"**Import** `{pending['weights_name']}` with `{pending['vocab_name']}`")
    if st.session_state.get("imp_name") is None:
        st.session_state["imp_name"] = Path(pending["weights_name"]).stem
    st.text_input("Name", key="imp_name")
    # stacked, not in columns: the sidebar is too narrow for two select boxes to show their choices
    st.selectbox("Cell", list(CELL_CHOICES), format_func=CELL_CHOICES.get, key="imp_cell",
                 help="Read from the shapes; choose one to check that the weights are that cell.")
    st.selectbox("Text split", list(TOKENIZER_CHOICES), format_func=TOKENIZER_CHOICES.get, key="imp_tok",
                 help="How text is cut into tokens; it must be the split the model was trained on. "
                      + " · ".join(f"{k}: {v}" for k, v in SPLITS.items()))
    st.text_area("Rename keys (one OLD=NEW per line)", key="imp_map", height=68,
                 placeholder="lstm.=rnn.\nembed.=encoder.",
                 help="Key prefixes to rename before the layout is recognised, as --map OLD=NEW.")
    opts = options()
    try:
        _, report = _inferred(pending["weights"], pending["vocab"], opts["cell"], opts["tokenizer"], opts["maps"],
                              opts["name"] or Path(pending["weights_name"]).stem)
    except E.ExplorerError as e:
        st.error(f"{pending['weights_name']} cannot be imported: {e}", icon=":material/error:")
        return
    except Exception as e:  # noqa: BLE001
        log.exception("import failed")
        st.error(f"{pending['weights_name']} could not be read: {type(e).__name__}: {e}", icon=":material/error:")
        return
    with st.container(key="import_report"):
        st.markdown(describe(report))
    st.button("Use this model", key="imp_use", type="primary", icon=":material/check:",
              on_click=use, args=(pending, opts), width="stretch")
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
