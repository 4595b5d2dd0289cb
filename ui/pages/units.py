"""Units: the unit dictionary (top contexts either way, a histogram over the corpus, and for the top layer
the words a unit promotes and suppresses through the decoder), and a search of the units by a token
predicate (AUC), in the manner of Neuronpedia's dashboards."""
from __future__ import annotations

import streamlit as st

from explorer.analysis import examples
from explorer.corpus import queries
from explorer.present import corpus_figures, scales
from ui import corpus_index, session, widgets


def _contexts_html(contexts, vr) -> str:
    """A unit's top contexts as chip strips, each with its value and place in the corpus."""
    return corpus_figures.CHIP_CSS + "".join(
        corpus_figures.context_html(list(c.tokens), list(c.values), c.focus, vr,
                                    meta=f"{corpus_figures.value_text(c.value)} · {c.file}:{c.position}")
        for c in contexts)


def _show(unit: int):
    st.session_state["units_unit"] = int(unit)


#: What the address bar keeps on this page (session.url_state): the layer, unit, quantity and predicate.
URL_KEYS = ("layer:layer", "unit=units_unit:int", "q=units_q", "pred=units_pred")


def page():
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links); before the layer picker
    ctx, layer, idx = corpus_index.sidebar_and_index()
    ss = st.session_state
    st.markdown("#### Units: what a unit responds to across the corpus")
    st.caption(corpus_index.index_caption(idx))
    H = idx.n_units
    if ss.get("units_unit") not in range(H):
        ss["units_unit"] = 0
    c1, c2 = st.columns([1, 1])
    unit = c1.number_input("Unit", 0, H - 1, step=1, key="units_unit")
    qs = idx.quantities
    q = c2.selectbox("Quantity", qs, key="units_q") if len(qs) > 1 else qs[0]
    vr = scales.fixed_range(q, ctx.ranges)
    with widgets.guard("the unit dictionary"):
        p = corpus_index.unit_profile(ctx, idx, layer, q, int(unit))
        st.markdown(f"**Layer {layer}, unit {unit}** · mean {p.mean:+.3f} · std {p.std:.3f}")
        left, right = st.columns([3, 2])
        with left:
            st.markdown("Most positive")
            st.html(_contexts_html(p.top, vr))
            heading, low = corpus_figures.lowest_contexts(p.bottom)
            st.markdown(heading)
            st.html(_contexts_html(low, vr))
        with right:
            widgets.chart(corpus_figures.histogram_figure(p), key="units_hist")
            kinds = examples.token_kind(ctx.model, plural=True)      # "words", or "characters" for a char model
            if p.promotes:
                widgets.chart(corpus_figures.words_figure(p.promotes, f"{kinds.capitalize()} it promotes (decoder)",
                                                          "#b2182b"), key="units_prom")
                widgets.chart(corpus_figures.words_figure(p.suppresses, f"{kinds.capitalize()} it suppresses",
                                                          "#2166ac"), key="units_supp")
            else:
                st.caption(f"The decoder view ({kinds} promoted and suppressed) is for h of the top layer.")
    st.markdown("#### Search the units by a predicate")
    names = list(queries.PREDICATES)
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    pred = c1.selectbox("Predicate", names, key="units_pred", format_func=lambda n: queries.PREDICATES[n][0])
    with widgets.guard("the predicate search"):
        df = corpus_index.rank_units(ctx, idx, layer, q, pred)
        st.caption(f"AUC of each unit for telling the predicate's tokens ({int(df['n_pos'].iloc[0]):,}) from the "
                   f"others ({int(df['n_neg'].iloc[0]):,}): 1 or 0 separate perfectly, 0.5 is chance.")
        counts = df.attrs.get("counts") or {}
        if counts:
            st.caption("Labels read: " + ", ".join(f"{k} {int(v):,}" for k, v in counts.items())
                       + f" (what <eos> means here: {df.attrs.get('eos_means', 'paragraph')}).")
        for w in df.attrs.get("warnings") or ():
            st.warning(w, icon=":material/warning:")
        widgets.chart(corpus_figures.auc_figure(df, queries.PREDICATES[pred][0]), key="units_auc")
        cols = st.columns(6)
        for k, r in enumerate(df.head(6).itertuples()):
            cols[k].button(f"Unit {int(r.unit)} · {r.auc:.2f}", key=f"units_go_{k}", on_click=_show,
                           args=(int(r.unit),))


page()
