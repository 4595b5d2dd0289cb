"""The sidebar's checkpoint import: a weights file (.pt / .safetensors) plus a vocabulary, uploaded
beside or instead of a bundle zip (ui/sidebar.py draws the box; ui/uploads.py owns the folder), and
optionally REF, the user's own model's log-probabilities on a text (.npy), to check the import.
explorer.importer reads them (torch.load with weights_only=True, or safetensors); what it inferred
(layout, cell, sizes, tying, how text is split, notes) and the check are shown, with the options of
`python -m explorer import`, before the user chooses to use the model, for this session or kept in
the models folder (listed in every session).

The uploaded files stay in the uploader's memory: they are written to disk only for the length of
one import call, in a temporary folder that is removed when it ends, so a refused upload leaves
nothing behind."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import settings
from explorer.bundle import save_bundle
from explorer.importer import CHECK_TOLERANCE, SPLITS, check_reference, import_checkpoint

from ui import cached, uploads

log = logging.getLogger("rnn_explorer.ui")

WEIGHT_EXT = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
VOCAB_EXT = (".json", ".txt", ".vocab")
REF_EXT = (".npy",)
#: What the uploader accepts (a bundle zip, or these).
TYPES = ["zip", *(e[1:] for e in WEIGHT_EXT + VOCAB_EXT + REF_EXT)]
CELL_CHOICES = {"": "from the shapes", "lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
NONLINEARITY_CHOICES = {"": "as the checkpoint records", "tanh": "tanh", "relu": "relu"}
TOKENIZER_CHOICES = {"whitespace": "whitespace (pytorch/examples)", "word": "this app's word split",
                     "char": "characters"}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[-80:].lstrip(".") or "file"


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
    """The pending import of the uploaded weights + vocabulary (+ REF), or {'error': ...}. Called from
    the uploader's callback; nothing is written to disk (see _written)."""
    w, v, problem = split_files(files)
    ids = tuple(f.file_id for f in files)
    if problem:
        return {"ids": ids, "error": problem}
    refs = [f for f in files if f.name.lower().endswith(REF_EXT)]
    ref = refs[-1] if refs else None
    wb, vb = w.getvalue(), v.getvalue()
    rb = ref.getvalue() if ref is not None else b""
    if len(wb) + len(vb) + len(rb) > settings.MAX_UPLOAD_BYTES:
        return {"ids": ids, "error": f"the upload is {(len(wb) + len(vb) + len(rb)) / 2**20:.1f} MB; the limit is "
                                      f"{settings.MAX_UPLOAD_BYTES / 2**20:.0f} MB"}
    uploads.prune_uploads(uploads.uploads_root())
    return {"ids": ids, "files": (w, v, ref), "weights_name": w.name, "vocab_name": v.name,
            "ref_name": ref.name if ref is not None else None,
            "digest": hashlib.sha256(wb + b"\0" + vb).hexdigest()[:12],
            "ref_digest": hashlib.sha256(rb).hexdigest()[:12] if ref is not None else None}


@contextlib.contextmanager
def _written(pending: dict, check_text: str | None = None):
    """The pending upload's files (and the check text) in a temporary folder under the uploads
    folder, by the user's file names made safe (messages name the files they uploaded; the reader
    trusts the bytes, never the extension); the folder is removed when the block ends, whatever
    happens in it."""
    root = uploads.uploads_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=root) as tmp:
        paths = {}
        for kind, f in zip(("weights", "vocab", "ref"), pending["files"]):
            if f is not None:
                paths[kind] = Path(tmp) / kind / _safe(f.name)
                paths[kind].parent.mkdir()
                paths[kind].write_bytes(f.getvalue())
        if check_text is not None:
            paths["text"] = Path(tmp) / "the check text"
            paths["text"].write_text(check_text, encoding="utf-8")
        yield paths


@st.cache_resource(max_entries=4, show_spinner="Reading the checkpoint…")
def _inferred(digest: str, cell: str, tokenizer: str, maps: tuple, name: str, nonlinearity: str, _pending: dict):
    # Shared read-only, like every cached model: import_checkpoint freezes it in eval mode. Keyed by the
    # upload's digest and the options (_pending, the uploaded files, is not hashed).
    with _written(_pending) as p:
        return import_checkpoint(p["weights"], p["vocab"], cell=cell or None, maps=maps, name=name,
                                 tokenizer=None if tokenizer == "char" else tokenizer, chars=tokenizer == "char",
                                 nonlinearity=nonlinearity or None)


@st.cache_resource(max_entries=4, show_spinner="Checking the import against REF…")
def _checked(digest: str, opts: str, ref_digest: str, text: str, _model, _pending: dict) -> dict:
    with _written(_pending, text) as p:
        return check_reference(_model, p["ref"], p["text"])


def _import(pending: dict, opts: dict):
    """(model, report) of the pending upload with these options; the report carries the REF check
    when a REF was uploaded and its text given. Raises ExplorerError when refused."""
    model, report = _inferred(pending["digest"], opts["cell"], opts["tokenizer"], opts["maps"],
                              opts["name"] or Path(pending["weights_name"]).stem, opts["nonlinearity"], pending)
    if pending.get("ref_name") and opts["check_text"]:
        check = _checked(pending["digest"], json.dumps(opts, sort_keys=True), pending["ref_digest"],
                         opts["check_text"], model, pending)
        report = dict(report, check=dict(check, ref=pending["ref_name"]))
    return model, report


def options() -> dict:
    s = st.session_state
    maps = tuple(ln.strip() for ln in (s.get("imp_map") or "").splitlines() if ln.strip())
    return {"cell": s.get("imp_cell", ""), "tokenizer": s.get("imp_tok", "whitespace"), "maps": maps,
            "name": (s.get("imp_name") or "").strip(), "nonlinearity": s.get("imp_nonlin", ""),
            "check_text": s.get("imp_check_text") or ""}


def describe(report: dict) -> str:
    """Markdown: what was inferred, for the sidebar."""
    c = report["config"]
    cell = c["cell"].upper() + (f" ({c['nonlinearity']})" if c.get("nonlinearity") else "")
    lines = [f"**Layout:** {report['layout']}",
             f"**Model:** {cell} · {c['layers']} layer{'s' if c['layers'] > 1 else ''} × "
             f"{c['hidden_size']} units · embedding {c['emb_size']} · {c['vocab_size']:,} tokens · "
             f"{'tied' if c['tied'] else 'untied'} decoder · {report['parameters']:,} parameters",
             f"**Vocabulary:** {report['vocab_form']}",
             f"**Text is split:** {report['tokenizer']['split']}"]
    lines += [f"- {n}" for n in report["notes"]]
    return "\n\n".join(lines[:4]) + ("\n\n" + "\n".join(lines[4:]) if len(lines) > 4 else "")


def check_line(check: dict) -> str:
    """The REF check in one line (the same numbers `import --check` prints)."""
    return (f"{check['ref']} reproduced: the largest difference of log-probabilities is "
            f"{check['max_abs_diff']:.2g} (at most {CHECK_TOLERANCE:.0e}), over {check['tokens']} tokens read as "
            f"{check['rule']}; REF read as {check['ref_is']}.")


def use(pending: dict, opts: dict, models_root: Path | None = None):
    """Button callback: write the inferred model as a bundle (kept in the models folder when the user
    asks, else beside the uploads for this session), validate it as any bundle, select it. A bundle
    that fails is removed."""
    keep = models_root is not None and bool(st.session_state.get("imp_keep"))
    dest, made = None, False
    try:
        model, report = _import(pending, opts)
        if pending.get("ref_name") and "check" not in report:
            raise E.ExplorerError(f"paste the text {pending['ref_name']} was computed on, to check the import")
        if keep:
            dest = Path(models_root) / _safe(model.card["name"])
            if dest.exists():
                raise E.ExplorerError(f"a model named {dest.name} is already in the models folder ({models_root}): "
                                      "choose another name")
        else:
            key = hashlib.sha256(json.dumps([pending["digest"], pending["ref_digest"], opts],
                                            sort_keys=True).encode()).hexdigest()[:12]
            dest = uploads.uploads_root() / f"imported-{key}"
        made = not dest.exists()
        card = dict(model.card)
        card["imported"] = dict(report, weights=pending["weights_name"], vocab=pending["vocab_name"])
        card["command"] = "uploaded in the app"
        save_bundle(dest, model.lm, model.tokenizer, card)
        loaded = cached.model_at(str(dest))               # full bundle validation, shared cache
    except Exception as e:  # noqa: BLE001 - ExplorerError says what is wrong; anything else is logged too
        if made and dest is not None:
            shutil.rmtree(dest, ignore_errors=True)
        if not isinstance(e, E.ExplorerError):
            log.exception("import failed")
        why = str(e) if isinstance(e, E.ExplorerError) else f"{type(e).__name__}: {e}"
        st.session_state["_import_msg"] = ("error", f"The model could not be imported: {why}")
        return
    if keep:
        st.session_state["model"] = str(dest)
        st.session_state["_import_msg"] = ("ok", f"Using {loaded.name}, kept in the models folder as {dest.name}: "
                                                  "every new session lists it.")
        return
    label = f"{loaded.name} (imported: {pending['weights_name']})"
    st.session_state.setdefault("_uploads", {})[str(dest)] = label
    st.session_state["model"] = str(dest)
    st.session_state["_import_msg"] = ("ok", f"Using {label}.")


def _option_widgets(pending: dict) -> None:
    """The import's options, as the flags of `python -m explorer import`."""
    if st.session_state.get("imp_name") is None:
        st.session_state["imp_name"] = Path(pending["weights_name"]).stem
    st.text_input("Name", key="imp_name")
    # stacked, not in columns: the sidebar is too narrow for two select boxes to show their choices
    st.selectbox("Cell", list(CELL_CHOICES), format_func=CELL_CHOICES.get, key="imp_cell",
                 help="Read from the shapes; choose one to check that the weights are that cell.")
    st.selectbox("Nonlinearity (a plain RNN)", list(NONLINEARITY_CHOICES), format_func=NONLINEARITY_CHOICES.get,
                 key="imp_nonlin", help="A plain RNN's weights cannot say whether it runs tanh or relu "
                 "(pytorch/examples' RNN_TANH or RNN_RELU): choose it, unless the checkpoint records it. "
                 "As --nonlinearity.")
    st.selectbox("Text split", list(TOKENIZER_CHOICES), format_func=TOKENIZER_CHOICES.get, key="imp_tok",
                 help="How text is cut into tokens; it must be the split the model was trained on. "
                      + " · ".join(f"{k}: {v}" for k, v in SPLITS.items()))
    st.text_area("Rename keys (one OLD=NEW per line)", key="imp_map", height=68,
                 placeholder="lstm.=rnn.\nembed.=encoder.",
                 help="Key prefixes to rename before the layout is recognised, as --map OLD=NEW.")
    if pending.get("ref_name"):
        st.text_area(f"The text {pending['ref_name']} was computed on", key="imp_check_text", height=68,
                     help="Split by the imported tokenizer. REF has one row per token read: N + 1 rows read <eos> "
                          "first, N rows do not. As --check REF --check-text FILE.")


def pending_box(models_root: Path | None = None):
    """Inside the upload expander: the pending import's options, what was inferred, the REF check, and
    'Use' (with 'keep it in `models_root`' when one is given)."""
    pending = st.session_state.get("_import")
    msg = st.session_state.get("_import_msg")
    if not pending:
        return
    if "error" in pending:
        st.error(pending["error"], icon=":material/error:")
        return
    ref = f" and `{pending['ref_name']}`" if pending.get("ref_name") else ""
    st.markdown(f"**Import** `{pending['weights_name']}` with `{pending['vocab_name']}`{ref}")
    _option_widgets(pending)
    opts = options()
    try:
        _, report = _import(pending, opts)
    except E.ExplorerError as e:
        st.error(f"{pending['weights_name']} cannot be imported: {e}", icon=":material/error:")
        return
    except Exception as e:  # noqa: BLE001
        log.exception("import failed")
        st.error(f"{pending['weights_name']} could not be read: {type(e).__name__}: {e}", icon=":material/error:")
        return
    with st.container(key="import_report"):
        st.markdown(describe(report))
    if pending.get("ref_name"):
        if "check" not in report:
            st.info(f"Paste the text {pending['ref_name']} was computed on to check the import before it is used.",
                    icon=":material/rule:")
            return
        st.success(check_line(report["check"]), icon=":material/check_circle:")
    if models_root is not None:
        st.checkbox("Keep it in the models folder", key="imp_keep",
                    help=f"Writes the bundle to {models_root}, the folder the model picker lists, so every new "
                         "session lists it; otherwise it lasts for this session.")
    st.button("Use this model", key="imp_use", type="primary", icon=":material/check:",
              on_click=use, args=(pending, opts, models_root), width="stretch")
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
