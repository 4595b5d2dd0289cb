"""Evaluate: the syntactic evaluation in the app. Per-suite (and per-condition) accuracy of every
model side by side on the Marvin & Linzen items and the project's own balanced pairs, computed once
per model and kept on disk; the items a model gets wrong; any item opened in Contrast (good against
bad) or in Patch (the project's pairs, against their mirror item).
"""
from __future__ import annotations

import streamlit as st

from pathlib import Path

from explorer.analysis import evaluate
from explorer.bundle import read_json_file
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


#: What the address bar keeps on this page (session.url_state): the models compared (by folder name), per
#: condition or not, and the drill-down's model, suite and item.
URL_KEYS = ("models=ev_models:names", "by_cond=ev_by_cond:bool", "model=ev_model", "suite=ev_suite",
            "item=ev_item:int")


def page():
    ctx = session.require_model()
    ss = st.session_state
    goto = ss.pop("_ev_goto", None)
    if goto:
        st.switch_page(goto)
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    st.markdown("#### Evaluate: targeted syntactic evaluation, model by model")
    st.caption("A minimal pair is right when the model gives the good sentence a higher probability than the bad "
               "one. The project's balanced pairs: all (a model that ignores the context scores 50% on them). Items "
               "with a word outside a model's vocabulary are left out. A model's card records its results (the "
               "command is named under the table), shown at once; a model whose card records none, and the items a "
               f"model gets wrong, are scored here when asked: {PER_FILE} Marvin & Linzen (2018) items sampled per "
               "suite file (seeded), once per model, kept on disk.")
    if not SYNEVAL.is_dir():
        st.info(f"The Marvin & Linzen suites are not at {SYNEVAL}; only the project's pairs are shown.",
                icon=":material/folder_off:")
    options = sidebar.bundle_options()
    session.link_paths("ev_models", options)           # a link names the models by their folder names
    if not ss.get("ev_models") or not set(ss["ev_models"]) <= set(options):
        ss["ev_models"] = list(options)
    chosen = st.multiselect("Models", list(options), key="ev_models", format_func=lambda p: options[p])
    if not chosen:
        st.info("Choose at least one model.", icon=":material/edit:")
        return
    by_cond = st.toggle("Per condition", key="ev_by_cond")
    by = ("source", "suite", "condition") if by_cond else ("source", "suite")
    # What the cards record is shown at once (nothing computed); the items are scored only for a model
    # that records nothing, or when its wrong items are asked for.
    cards = {options[p]: _card(p) for p in chosen}
    have = {n: c for n, c in cards.items() if evaluate.recorded(c)}
    if have:
        _recorded(have, by)
    asked = [p for p in chosen if options[p] not in have and (ss.get("_ev_score") or {}).get(p)]
    for p in chosen:
        if options[p] not in have and p not in asked:
            st.button(f"Score {options[p]} on the items ({PER_FILE} per suite file, once; kept on disk)",
                      key=f"ev_score_{options[p]}", on_click=_ask, args=(p,), icon=":material/play_arrow:",
                      help="Its card records no syntactic evaluation (python -m explorer syneval --record).")
    results = {options[p]: cached_analysis.evaluation_scores(p, cached.stamp(p), str(SYNEVAL), PER_FILE)
               for p in asked}
    if results:
        st.markdown("##### Scored here")
        table = evaluate.suite_table(results, by)
        if table.empty:
            st.info("No item is in the vocabulary of these models.", icon=":material/info:")
        else:
            st.dataframe(table, hide_index=True, width="stretch", key="ev_table",
                         column_config={n: st.column_config.ProgressColumn(n, format="percent", min_value=0,
                                                                           max_value=1) for n in results})
    _drill(ctx, {options[p]: p for p in chosen})


def _card(path: str) -> dict:
    try:
        return read_json_file(Path(path) / "card.json")
    except Exception:           # noqa: BLE001 - an unreadable card records nothing; the model is scored instead
        return {}


def _ask(path: str):
    st.session_state.setdefault("_ev_score", {})[path] = True


def _recorded(cards: dict, by):
    table = evaluate.recorded_table(cards, by)
    st.markdown("##### Recorded in the models' cards")
    st.dataframe(table, hide_index=True, width="stretch", key="ev_recorded",
                 column_config={n: st.column_config.ProgressColumn(n, format="percent", min_value=0, max_value=1)
                                for n in cards})
    lines = [f"{n}: `{evaluate.recorded_command(c) or 'python -m explorer syneval --record'}`"
             f" ({c['metrics']['syneval']['items']:,} of {c['metrics']['syneval'].get('items_total', 0):,} "
             "Marvin & Linzen items in its vocabulary)" if c["metrics"].get("syneval") else n
             for n, c in cards.items()]
    st.caption("Recorded with the project's own command, in each model's card.json: " + "; ".join(lines) + ". "
               "The items a model gets wrong (below) are scored on the seeded sample when asked for.")


def _drill(ctx, paths: dict):
    ss = st.session_state
    st.markdown("##### The items a model gets wrong")
    names = list(paths)
    if ss.get("ev_model") not in names:
        ss["ev_model"] = ctx.name if ctx.name in names else names[0]
    a, b = st.columns([1, 2])
    name = a.selectbox("Model", names, key="ev_model")
    p = paths[name]
    if st.query_params.get("item") is not None:        # a link to an item asks for the items
        _ask(p)
    if not (ss.get("_ev_score") or {}).get(p):
        st.button(f"Find the items {name} gets wrong (scores {PER_FILE} items per suite file once; kept on disk)",
                  key="ev_find", on_click=_ask, args=(p,), icon=":material/search:")
        return
    df = cached_analysis.evaluation_scores(p, cached.stamp(p), str(SYNEVAL), PER_FILE)
    suites = sorted(df["suite"].unique())
    if ss.get("ev_suite") not in suites:
        ss["ev_suite"] = "address" if "address" in suites else suites[0]
    suite = b.selectbox("Suite", suites, key="ev_suite")
    wrong = evaluate.wrong_items(df, suite)
    if wrong.empty:
        items = df[df["suite"] == suite]
        n_in = int(items["in_vocab"].sum())
        if n_in == 0:                        # nothing scored (a character model: no item is a row of words it knows)
            st.info(f"None of the {len(items):,} items of {suite} can be scored on {name}: each has a word that is "
                    "not one token of its vocabulary, so there is nothing to get right or wrong.",
                    icon=":material/info:")
        else:
            st.success(f"{name} gets all {n_in:,} in-vocabulary items of {suite} right"
                       + (f" ({len(items) - n_in:,} more are outside its vocabulary)." if n_in < len(items) else "."),
                       icon=":material/check:")
        return
    model = cached.model_at(p)
    shown = wrong[["condition", "good", "bad", "margin"]].assign(differs=evaluate.differing_words(model, wrong))
    # the word that differs first: a long sentence's end is cut off in the table
    st.dataframe(shown[["differs", "condition", "margin", "good", "bad"]], hide_index=True, width="stretch",
                 key="ev_wrong",
                 column_config={"differs": st.column_config.TextColumn("good → bad word", width="small"),
                                "margin": st.column_config.NumberColumn("log P(good) − log P(bad)", format="%.3f"),
                                "good": st.column_config.TextColumn("good", width="large"),
                                "bad": st.column_config.TextColumn("bad", width="large")})
    labels = {int(i): f"{wrong.loc[i, 'condition']}: {wrong.loc[i, 'good']}" for i in wrong.index[:200]}
    if ss.get("ev_item") not in labels:
        ss["ev_item"] = next(iter(labels))
    row = st.selectbox("Item", list(labels), key="ev_item", format_func=lambda i: labels[i])
    good, bad = str(df.loc[row, "good"]), str(df.loc[row, "bad"])
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="center")
    c1.button("Open in Contrast", key="ev_contrast", on_click=_open_contrast, args=(good, bad),
              icon=":material/compare_arrows:")
    setup = evaluate.patch_setup(model, df, row)
    if setup:
        c2.button("Open in Patch", key="ev_patch", on_click=_open_patch, args=(setup,), icon=":material/healing:")
        c3.caption(f"Patch traces log P({setup['target']}) − log P({setup['versus']}) with this item's context as the "
                   "clean text and its mirror item's as the corrupted one.")
    else:
        c2.caption("Patch needs a mirror item (the project's pairs have one).")


with widgets.guard("the Evaluate page"):
    page()
