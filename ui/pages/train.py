"""Train: a model on your own text, as a background process (explorer.training.runner).

The run outlives reruns, page switches and a closed tab; one runs per server. This page starts it,
shows its status file (progress, loss, tokens/s, time left) and stops it; Stop saves a checkpoint and
a later run of the same name resumes from it. The finished bundle is written to the models folder,
so it appears in the sidebar's model picker with its card.
"""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import streamlit as st

import explorer as E
from explorer.training import runner
from ui import cached, sidebar, widgets

PRESET_HELP = {"tiny": "1 layer × 64 units, up to 2,000 words: minutes on a laptop CPU",
               "small": "2 layers × 128 units, up to 5,000 words",
               "medium": "2 layers × 256 units, up to 10,000 words: wants a long text and time"}


#: The form's values, kept apart from the widgets: the form is not drawn while a run goes on, and
#: Streamlit forgets the state of widgets it does not draw, so after Stop the form came back reset.
FORM_KEYS = ("train_name", "train_folder", "train_preset", "train_minutes", "train_dry")


def owner_token() -> str:
    """This browser session's owner token: the runs it starts can be stopped only with it."""
    return st.session_state.setdefault("_train_owner", secrets.token_urlsafe(12))


def _fmt_s(s) -> str:
    if s is None:
        return "–"
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _start():
    ss = st.session_state
    ss.pop("_train_error", None)
    name = (ss.get("train_name") or "").strip()
    files = ss.get("train_files") or []
    folder = (ss.get("train_folder") or "").strip()
    try:
        if files:
            if not runner.NAME_RE.match(name):
                raise E.ExplorerError("the model name must be 1-64 letters, digits, '.', '_' or '-'")
            up = runner.runs_root() / name / "upload"
            up.mkdir(parents=True, exist_ok=True)
            for old in up.glob("*.txt"):
                old.unlink()
            for f in files:
                safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(f.name).name) or "text.txt"
                (up / (safe if safe.endswith(".txt") else safe + ".txt")).write_bytes(f.getvalue())
            corpus = up
        elif folder:
            corpus = Path(folder).expanduser()
        else:
            raise E.ExplorerError("upload one or more .txt files, or name a folder of .txt files")
        runner.start(name, corpus, sidebar.models_root(), preset=ss.get("train_preset", "tiny"),
                minutes=float(ss.get("train_minutes", 5)), dry_run=bool(ss.get("train_dry")),
                resume=bool(ss.get("train_resume")), owner=owner_token())
        ss["_train_form"] = {k: ss[k] for k in FORM_KEYS if k in ss} | {"train_folder": str(corpus)}
        ss.pop("_train_resume_offered", None)          # after this run, Resume is offered ticked again
    except E.ExplorerError as e:
        ss["_train_error"] = str(e)


def _stop(token: str | None = None):
    try:
        runner.stop(owner=token or owner_token())
    except E.ExplorerError as e:
        st.session_state["_train_error"] = str(e)


def _open(path: str):
    st.session_state["model"] = path
    st.session_state["_open_trained"] = True


@st.fragment(run_every=1.0)
def progress_panel():
    cur = runner.current()
    if cur is None or cur["status"] is None:
        return
    s = cur["status"]
    state = s.get("state")
    with st.container(key="train_status", border=True):
        bits = [f"**{s.get('name') or Path(cur['run']).name}**", s.get("preset") or "",
                "dry run" if s.get("dry_run") else "", f"**{state}**"]
        st.markdown(" · ".join(b for b in bits if b))
        frac = float(s.get("fraction") or 0.0)
        st.progress(min(max(frac, 0.0), 1.0), text=s.get("message") or
                    (f"epoch {s['epoch']} · batch {s['batch']}/{s['batches']}" if s.get("epoch") else "starting…"))
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Loss", f"{s['loss']:.3f}" if s.get("loss") is not None else "–")
        c2.metric("Tokens/s", f"{s['tokens_per_s']:,.0f}" if s.get("tokens_per_s") else "–")
        c3.metric("Elapsed", _fmt_s(s.get("elapsed_s")))
        c4.metric("Time left", _fmt_s(s.get("eta_s")) if state not in runner.FINAL else "–")
        if state in ("starting", "running") and runner.owned_by(cur, owner_token()):
            st.button("Stop", key="train_stop", icon=":material/stop:", on_click=_stop,
                      help="Saves a checkpoint; start the same name again with 'resume' to continue.")
            if cur.get("owner"):
                st.caption(f"This session started the run. Its owner token, to stop it from another tab: "
                           f"`{cur['owner']}`")
        elif state in ("starting", "running"):
            with st.container(key="train_readonly"):
                st.caption("Another session started this run: it is shown read-only here. Only that session, or "
                           "one given the run's owner token, can stop it.")
                with st.popover("Stop with the owner token", icon=":material/key:"):
                    tok = st.text_input("Owner token", key="train_token", type="password")
                    st.button("Stop", key="train_stop_token", icon=":material/stop:", on_click=_stop, args=(tok,),
                              disabled=not tok)
        if st.session_state.get("_train_error") and state not in runner.FINAL:
            st.error(st.session_state["_train_error"], icon=":material/error:")
        if state == "stopping":
            st.caption("Stopping: saving a checkpoint…")
    if state in runner.FINAL and st.session_state.get("_train_seen") != (cur["run"], state):
        st.session_state["_train_seen"] = (cur["run"], state)
        st.rerun()                       # the whole page: the picker lists the new bundle


def finished(cur):
    s = cur["status"]
    out = s.get("out")
    if s.get("state") == "failed":
        st.error(f"Training failed: {s.get('message')}", icon=":material/error:")
        return
    if not out or not (Path(out) / "card.json").is_file():
        return
    try:
        model = cached.model_at(out)
    except E.ExplorerError as e:
        st.error(f"The trained bundle cannot be used: {e}", icon=":material/error:")
        return
    with st.container(key="train_done", border=True):
        st.success(f"{model.name}: {s.get('message')}", icon=":material/check_circle:")
        st.caption(sidebar.card_summary(model) + f" · {out}")
        card = model.card
        tr = card.get("training") or {}
        st.caption(f"Trained with: {card.get('command') or tr.get('command', '')}")
        if Path(out).parent.resolve() == sidebar.models_root().resolve():
            st.button(f"Open {model.name} in Explore", key="train_open", type="primary",
                      icon=":material/visibility:", on_click=_open, args=(out,))


def page():
    st.markdown("#### Train a model on your own text")
    st.caption("Training runs in the background on this server: it goes on when you switch pages or close "
               "the tab, and one run at a time per server. The model is written to "
               f"`{sidebar.models_root()}` and appears in the model picker.")
    if st.session_state.pop("_open_trained", False):
        st.switch_page("ui/pages/explore.py")
    progress_panel()
    cur = runner.current()
    if cur and cur["status"] and cur["status"].get("state") in runner.FINAL:
        finished(cur)
    if runner.busy():
        return
    for k, v in (st.session_state.get("_train_form") or {}).items():
        st.session_state.setdefault(k, v)                  # the form as it was when the last run started
    st.session_state.setdefault("train_minutes", 5)
    with st.container(key="train_form", border=True):
        st.file_uploader("Text files (.txt)", type=["txt"], accept_multiple_files=True, key="train_files")
        st.text_input("…or a folder of .txt files on the server", key="train_folder",
                      placeholder="../shared/data/fiction")
        st.session_state.setdefault("train_name", "my-model")
        st.text_input("Model name", key="train_name", placeholder="my-model")
        c1, c2 = st.columns(2)
        c1.radio("Size", list(runner.PRESETS), key="train_preset", horizontal=True,
                 captions=[PRESET_HELP[p] for p in runner.PRESETS])
        c2.slider("Time budget (minutes)", 1, 120, key="train_minutes",
                  help="The run trains until the budget is spent: the learning rate falls linearly to 0 over it, "
                       "and the best epoch's model is kept.")
        name = st.session_state.get("train_name") or ""
        has_ckpt = bool(runner.NAME_RE.match(name)) and runner.checkpoint_of(sidebar.models_root() / name).is_dir()
        if has_ckpt:
            if st.session_state.get("_train_resume_offered") != name:   # offered ticked, once per checkpoint
                st.session_state["_train_resume_offered"] = name
                st.session_state["train_resume"] = True
            st.checkbox(f"Resume from the checkpoint of {name}", key="train_resume")
        else:
            st.session_state["train_resume"] = False
        st.checkbox("Smoke test: a few batches only (as --dry-run)", key="train_dry")
        st.button("Start training", key="train_start", type="primary", icon=":material/play_arrow:",
                  on_click=_start)
        if st.session_state.get("_train_error"):
            st.error(st.session_state["_train_error"], icon=":material/error:")


with widgets.guard("the Train page"):
    page()
