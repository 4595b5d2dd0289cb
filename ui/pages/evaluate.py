"""Evaluate: the syntactic evaluation in the app. Per-suite (and per-condition) accuracy of every
model side by side on the Marvin & Linzen items and the project's own balanced pairs, computed once
per model and kept on disk; the items a model gets wrong; any item opened in Contrast (good against
bad) or in Patch (the project's pairs, against their mirror item).
"""
from __future__ import annotations

import streamlit as st

from explorer.analysis import evaluate
from ui import SHARED, cached, cached_analysis, session, sidebar, widgets

SYNEVAL = SHARED / "eval" / "syneval"
PER_FILE = 100            # Marvin & Linzen items sampled per suite file (seeded); the project's pairs: all


def _open_contrast(good: str, bad: str):
    st.session_state["ct_a"], st.session_state["ct_b"] = good, bad
    st.session_state["_ev_goto"] = "ui/pages/contrast.py"


def _open_patch(setup: dict):
    ss = st.session_state
    ss["pt_clean"], ss["pt_corrupt"] = setup["clean"], setup["corrupt"]
    ss["pt_target"], ss["pt_versus"] = setup["target"], setup["versus"]
    ss["_ev_goto"] = "ui/pages/patch.py"


def page():
    ctx = session.require_model()
    ss = st.session_state
    goto = ss.pop("_ev_goto", None)
    if goto:
        st.switch_page(goto)
    st.markdown("#### Evaluate: targeted syntactic evaluation, model by model")
    st.caption(f"A minimal pair is right when the model gives the good sentence a higher probability than the bad "
               f"one. Marvin & Linzen (2018) suites: {PER_FILE} items sampled per suite file (seeded); the project's "
               "balanced pairs: all (a model that ignores the context scores 50% on them). Items with a word "
               "outside a model's vocabulary are left out. Results are computed once per model and kept on disk.")
    if not SYNEVAL.is_dir():
        st.info(f"The Marvin & Linzen suites are not at {SYNEVAL}; only the project's pairs are shown.",
                icon=":material/folder_off:")
    options = sidebar.bundle_options()
    if not ss.get("ev_models") or not set(ss["ev_models"]) <= set(options):
        ss["ev_models"] = list(options)
    chosen = st.multiselect("Models", list(options), key="ev_models", format_func=lambda p: options[p])
    if not chosen:
        st.info("Choose at least one model.", icon=":material/edit:")
        return
    results = {options[p]: cached_analysis.evaluation_scores(p, cached.stamp(p), str(SYNEVAL), PER_FILE)
               for p in chosen}
    by_cond = st.toggle("Per condition", key="ev_by_cond")
    table = evaluate.suite_table(results, ("source", "suite", "condition") if by_cond else ("source", "suite"))
    if table.empty:
        st.info("No item is in the vocabulary of these models.", icon=":material/info:")
        return
    st.dataframe(table, hide_index=True, width="stretch", key="ev_table",
                 column_config={n: st.column_config.ProgressColumn(n, format="percent", min_value=0, max_value=1)
                                for n in results})
    _drill(ctx, results)


def _drill(ctx, results):
    ss = st.session_state
    st.markdown("##### The items a model gets wrong")
    names = list(results)
    if ss.get("ev_model") not in names:
        ss["ev_model"] = ctx.name if ctx.name in names else names[0]
    a, b = st.columns([1, 2])
    name = a.selectbox("Model", names, key="ev_model")
    df = results[name]
    suites = sorted(df["suite"].unique())
    if ss.get("ev_suite") not in suites:
        ss["ev_suite"] = "address" if "address" in suites else suites[0]
    suite = b.selectbox("Suite", suites, key="ev_suite")
    wrong = evaluate.wrong_items(df, suite)
    if wrong.empty:
        st.success(f"{name} gets every in-vocabulary item of {suite} right.", icon=":material/check:")
        return
    st.dataframe(wrong[["condition", "good", "bad", "margin"]], hide_index=True, width="stretch", key="ev_wrong",
                 column_config={"margin": st.column_config.NumberColumn("log P(good) − log P(bad)", format="%.3f")})
    labels = {int(i): f"{wrong.loc[i, 'condition']}: {wrong.loc[i, 'good']}" for i in wrong.index[:200]}
    if ss.get("ev_item") not in labels:
        ss["ev_item"] = next(iter(labels))
    row = st.selectbox("Item", list(labels), key="ev_item", format_func=lambda i: labels[i])
    good, bad = str(df.loc[row, "good"]), str(df.loc[row, "bad"])
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="center")
    c1.button("Open in Contrast", key="ev_contrast", on_click=_open_contrast, args=(good, bad),
              icon=":material/compare_arrows:")
    model = cached.model_at(next(p for p, n in sidebar.bundle_options().items() if n == name))
    setup = evaluate.patch_setup(model, df, row)
    if setup:
        c2.button("Open in Patch", key="ev_patch", on_click=_open_patch, args=(setup,), icon=":material/healing:")
        c3.caption(f"Patch traces log P({setup['target']}) − log P({setup['versus']}) with this item's context as the "
                   "clean text and its mirror item's as the corrupted one.")
    else:
        c2.caption("Patch needs a mirror item (the project's pairs have one).")


with widgets.guard("the Evaluate page"):
    page()
