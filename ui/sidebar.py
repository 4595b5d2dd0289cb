"""The model sidebar, drawn by app.py on every page: the picker of the bundles in the models folder (and
this session's uploads), the chosen model's card in one line, and the upload box (a bundle zip through
ui/uploads.py, or weights + vocabulary through ui/importing.py). The choice is kept in the session as
a session.ModelContext, which pages read with session.require_model()."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import bundle, settings
from ui import ROOT, cached, importing, session, uploads

log = logging.getLogger("rnn_explorer.ui")

#: Folder of model bundles; tests and deployments point it elsewhere.
MODELS_ENV = "RNN_EXPLORER_MODELS"
#: The bundles the app opens on, in order of preference (explorer.bundle.DEFAULT_MODELS).
DEFAULT_MODELS = bundle.DEFAULT_MODELS


def models_root() -> Path:
    """The folder of model bundles: pretrained/, or the one RNN_EXPLORER_MODELS names."""
    return settings.models_dir(ROOT / "pretrained")


def bundle_options() -> dict[str, str]:
    """Label -> path for every bundle in the models folder, then the uploads of this session."""
    out: dict[str, str] = {}
    for p in E.list_models(models_root()):
        out[str(p)] = p.name
    for path, label in st.session_state.get("_uploads", {}).items():
        out[path] = label
    return out


def card_summary(model: E.LoadedModel) -> str:
    cfg = model.config
    vocab = f"{cfg.vocab_size:,} tokens"
    bits = [f"{cfg.cell.upper()} · {cfg.layers} layer{'s' if cfg.layers > 1 else ''} × {cfg.hidden_size} units",
            f"vocabulary {vocab}"]
    metrics = model.card.get("metrics") or {}
    ppl = (metrics.get("test") or {}).get("perplexity") or (metrics.get("valid") or {}).get("perplexity")
    if ppl:
        bits.append(f"perplexity {ppl:,.0f}")
    return " · ".join(bits)


# ----------------------------------------------------------------------------------- the upload box
def _on_upload():
    """file_uploader callback: validate a new bundle zip before the script runs and select it if it is
    good; a weights file plus a vocabulary is staged for import (ui/importing.py shows what was
    inferred before it is used)."""
    files = st.session_state.get("upload") or []
    st.session_state.pop("_import", None)
    st.session_state.pop("_import_msg", None)
    if not files:
        st.session_state.pop("_upload_msg", None)
        return
    if not files[-1].name.lower().endswith(".zip"):
        st.session_state.pop("_upload_msg", None)
        st.session_state.pop("imp_name", None)
        st.session_state["_import"] = importing.stage(files)
        return
    f = files[-1]      # the uploader keeps earlier files: the newest is the one to load
    try:
        path, label = uploads.load_upload(f.getvalue(), f.name)
    except E.ExplorerError as e:
        st.session_state["_upload_msg"] = (f.file_id, "error", f"{f.name} is not a usable bundle: {e}")
    except Exception as e:  # noqa: BLE001
        log.exception("upload failed")
        st.session_state["_upload_msg"] = (f.file_id, "error", f"{f.name} could not be read: {type(e).__name__}: {e}")
    else:
        st.session_state.setdefault("_uploads", {})[path] = label
        st.session_state["model"] = path
        st.session_state["_upload_msg"] = (f.file_id, "ok", f"Loaded {label}.")


def _upload_box():
    with st.sidebar.expander("Upload a model bundle (.zip) or a PyTorch checkpoint", icon=":material/upload:"):
        st.caption("A zip of a bundle folder: weights.safetensors, tokenizer.json, card.json "
                   "(safetensors only), or a PyTorch state dict (.pt saved with "
                   "torch.save(model.state_dict()), or .safetensors) together with its vocabulary "
                   "(.json or .txt) and, to check the import, your model's log-probabilities on a text "
                   f"(.npy); at most {settings.MAX_UPLOAD_BYTES // 2**20} MB.")
        files = st.file_uploader("Bundle zip, or weights + vocabulary", type=importing.TYPES, key="upload",
                                 label_visibility="collapsed", accept_multiple_files=True,
                                 max_upload_size=max(1, settings.MAX_UPLOAD_BYTES // 2**20), on_change=_on_upload)
        msg = st.session_state.get("_upload_msg")
        if files and msg and msg[0] == files[-1].file_id:
            (st.error if msg[1] == "error" else st.success)(msg[2])
        importing.pending_box(models_root())


# ------------------------------------------------------------------------------------ the picker
def model_sidebar() -> session.ModelContext | None:
    """Model picker and upload in the sidebar (rendered by app.py on every page). Stores and returns
    the chosen model, or None after saying why there is none."""
    st.session_state["_ctx"] = None
    st.sidebar.subheader("Model")
    options = bundle_options()
    if options:
        want = st.session_state.pop("_url_model", None)        # ?model=NAME in the address opened
        named = [p for p, lab in options.items() if want and lab == want]
        if named:
            st.session_state["model"] = named[0]
            st.session_state.pop("_url_model_unknown", None)
        elif want:                            # an address naming a model that is not here: say so (issue 22)
            st.session_state["_url_model_unknown"] = want
        if st.session_state.get("model") not in options:
            by_label = {lab: p for p, lab in options.items()}
            default = next((by_label[n] for n in DEFAULT_MODELS if n in by_label), next(iter(options)))
            st.session_state["model"] = default
        st.sidebar.selectbox("Model", list(options), format_func=lambda p: options.get(p, Path(p).name),
                             key="model", label_visibility="collapsed",
                             help=f"Every bundle in {models_root()} (set {MODELS_ENV} to use another folder), "
                                  "and bundles uploaded in this session.")
    _upload_box()
    if not options:
        st.session_state["_no_model"] = (f"No model bundle found in `{models_root()}`. Train one with "
                                         "`python -m explorer train --corpus ... --out pretrained/NAME`, "
                                         "or upload a bundle zip in the sidebar.")
        return None
    path = st.session_state["model"]
    try:
        stamp = cached.stamp(path)
        model = cached.model_at(path, stamp)
        ranges = cached.value_ranges(path, stamp)
    except E.ExplorerError as e:
        st.session_state["_no_model"] = f"The model bundle `{path}` cannot be used: {e}"
        return None
    except Exception as e:  # noqa: BLE001
        log.exception("loading %s failed", path)
        st.session_state["_no_model"] = f"The model bundle `{path}` could not be loaded: {type(e).__name__}: {e}"
        return None
    ctx = session.ModelContext(path, stamp, model, ranges, uploaded=path in st.session_state.get("_uploads", {}))
    st.sidebar.caption(card_summary(model))
    _unknown_model_note(options, path)
    st.session_state["_ctx"] = ctx
    return ctx


def _unknown_model_note(options: dict[str, str], path: str) -> None:
    """The address named a model that is not in the models folder: say which one is shown instead, on
    every run until the person picks a model (the warning sits above the page, so the presenter view
    shows it too)."""
    ss = st.session_state
    want = ss.get("_url_model_unknown")
    if not want:
        return
    if ss.get("_url_model_fallback", path) != path:      # a model chosen since: the note has done its job
        ss.pop("_url_model_unknown", None)
        ss.pop("_url_model_fallback", None)
        return
    ss["_url_model_fallback"] = path
    have = ", ".join(sorted(options.values()))
    st.warning(f"The address asks for the model “{_md(want[:80])}”, which is not in {_md(str(models_root()))} "
               f"(there: {_md(have)}). Showing {_md(options.get(path, Path(path).name))} instead.",
               icon=":material/warning:")


def _md(s: str) -> str:
    """`s` with Markdown's special characters escaped (the model name comes from the address)."""
    return re.sub(r"([\\`*_\[\]<>#|~$:])", r"\\\1", str(s))
