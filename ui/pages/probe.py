"""Probe: does a layer encode a property of the text, better than chance would explain?

Layout: task, corpus and size -> fit (once per model, task and size; cached) -> task against control
accuracy per layer and quantity, with the verdict (a probe that learns the control task as well says
nothing) -> the table -> one probe's readout word by word on a text of your own.
"""
from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from explorer.errors import InputError
from explorer.analysis import probe, probe_records
from explorer.corpus.index import model_hash
from explorer.present import causal_figures, views
from ui import SHARED, cached, cached_causal, session, widgets

#: The corpora the probes read by default: the books for a word model, Shakespeare for a character model.
FICTION = SHARED / "data" / "fiction"
SHAKESPEARE = SHARED / "data" / "shakespeare"
SIZES = {"small": (3000, 1500), "medium": (10000, 5000)}


def default_corpus(ctx) -> Path:
    return SHAKESPEARE if probe.is_char_model(ctx.model) else FICTION


def tasks_for(ctx) -> list[str]:
    char = probe.is_char_model(ctx.model)
    return [t for t in probe.TASKS if not (t == "gender" and char) and not (t == "line" and not char)]


#: What the address bar keeps on this page (session.url_state): task, corpus, size, whether the probes are
#: fitted, the probe read out and its text.
URL_KEYS = ("task=pr_task", "corpus=pr_corpus", "size=pr_size", "fit=pr_run:bool", "probe=pr_probe:int",
            "text=pr_text")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    ss = st.session_state
    st.markdown("#### Probe: what a layer encodes, against a control")
    st.caption("A linear classifier reads one layer's h or c after each token and predicts a label that comes from "
               "the text itself. It is fitted on the validation books and scored on the test books (both held out "
               "from training). The control task (Hewitt & Liang 2019) gives every word type a random label, fixed "
               "per type: a probe that scores as well on the control as on the task has only learnt which word was "
               "just read, and says nothing about the layer. Selectivity = task − control.")
    tasks = tasks_for(ctx)
    if ss.get("pr_task") not in tasks:
        ss["pr_task"] = tasks[0]
    if not ss.get("pr_corpus"):
        ss["pr_corpus"] = str(default_corpus(ctx))
    ss.setdefault("pr_size", "small")
    a, b, c, d = st.columns([1.6, 3, 1.3, 1.2], vertical_alignment="bottom")
    task = a.selectbox("Task", tasks, key="pr_task", format_func=lambda t: probe.DESCRIPTIONS[t])
    corpus = b.text_input("Corpus", key="pr_corpus", help="A corpus folder with SPLITS.json, or with train.txt, valid.txt and test.txt (pytorch/examples), "
                           "or one text file (split by position). Any other folder is refused with the options; "
                           "the command line also takes --valid-files/--test-files.")
    size = c.radio("Tokens", list(SIZES), key="pr_size", horizontal=True,
                   help="small: 3,000 training and 1,500 test tokens; medium: 10,000 and 5,000.")
    go_ = d.toggle("Fit", key="pr_run", help="Fitting takes from a few seconds to a minute; the result is kept.")
    if not Path(corpus).exists():
        st.info(f"The corpus {corpus} is not here (../shared is not part of the repository). Point the box at a "
                "corpus folder or text file.", icon=":material/folder_off:")
        return
    n_tr, n_te = SIZES[size]
    if not go_:
        # a shipped model's tables, recorded with the bundle (scripts/record_probes.py): shown at once
        rec = probe_records.lookup(ctx.path, model_hash(ctx.model), corpus, task, n_tr, n_te)
        if rec is not None and rec.stale:
            st.warning(f"The probe tables stored in {rec.path} were recorded for other weights than this model's, "
                       "so they are not shown. Switch on Fit to fit the probes for these weights.",
                       icon=":material/warning:")
        if rec is None or rec.stale:
            st.info("Switch on Fit to train the probes for this task.", icon=":material/play_arrow:")
            return
        rep = rec.report
        st.caption(f"Recorded, not fitted now: `{rec.command}` ({rec.recorded[:10]}), stored with the model in "
                   f"`{rec.path.name}` and checked against its weights' SHA-256. Switch on Fit to fit the probes "
                   "here and read a text word by word.", help=str(rec.path))
    else:
        try:
            rep = cached_causal.fit_probes(ctx, corpus, task, n_tr, n_te)
        except InputError as err:
            st.warning(widgets.friendly(err) + ".", icon=":material/warning:")
            return
    best = rep.best()
    st.html(f'<div data-testid="probe-verdict" style="font-size:16px"><b>{html.escape(probe.DESCRIPTIONS[task])}</b>: '
            f"the most selective probe reads layer {best.layer} {best.quantity}: {best.accuracy:.1%} on the test "
            f"books, {best.control_accuracy:.1%} on the control task (selectivity {best.selectivity:+.1%}), against "
            f"{best.majority:.1%} for always answering the most common label. Verdict: {html.escape(best.verdict)}."
            f"<br><small>Fitted on {rep.n_train:,} tokens of {html.escape(', '.join(rep.train_books))}; scored on "
            f"{rep.n_test:,} tokens of {html.escape(', '.join(rep.test_books))}.</small></div>")
    _labels_read(rep)
    widgets.chart(causal_figures.probe_bars(rep), "pr_fig_bars")
    st.dataframe(rep.frame(), hide_index=True, width="stretch",
                 column_config={k: st.column_config.NumberColumn(k, format="%.3f")
                                for k in ("accuracy", "control", "selectivity", "majority")})
    if rep.probes:                  # a recorded table has the scores, not the fitted probes
        _readout(ctx, rep)


def _labels_read(rep):
    """The label counts of each split and what <eos> was taken to mean, so a wrong rule shows; the
    warnings where the labels look implausible."""
    counts = "; ".join(f"{split}: " + ", ".join(f"{k} {v:,}" for k, v in c.items() if k != "unlabelled" or v)
                       for split, c in rep.counts.items())
    eos = ("a blank line ends a paragraph; a line end (<eos>) does not" if rep.eos_means == "line"
           else "<eos> ends a paragraph")
    st.caption(f"Labels read — {counts}. What <eos> means for this model: {eos}.",
               help="Labels come from the text: a quotation runs to its closing mark or the end of its paragraph. "
                    "The model's card says what a line end means (import --eos-means).")
    for w in rep.warnings:
        st.warning(w, icon=":material/warning:")


def _readout(ctx, rep):
    ss = st.session_state
    st.markdown("##### What the layer thinks, word by word")
    keys = sorted(rep.probes)
    if ss.get("pr_probe") not in range(len(keys)):
        ss["pr_probe"] = keys.index((rep.best().layer, rep.best().quantity))
    ss.setdefault("pr_text", widgets.BARTENDER_CLEAN + ' miss." She drank it and went out.')
    a, b = st.columns([1, 4])
    k = a.selectbox("Probe", list(range(len(keys))), key="pr_probe",
                    format_func=lambda i: f"layer {keys[i][0]} {keys[i][1]}")
    text = b.text_input("Text", key="pr_text")
    tr = cached.trace_or_prompt(ctx, text, empty="Type a text.", no_words="The text holds no words the tokenizer can read.")
    if tr is None:
        return
    probs = probe.readout(rep, ctx.model, tr, *keys[k])
    widgets.chart(causal_figures.probe_readout_lines(probs, views.token_labels(tr), rep.label_names), "pr_fig_readout")


with widgets.guard("the Probe page"):
    page()
