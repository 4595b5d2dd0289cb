"""Units: the unit dictionary (top contexts either way, a histogram over the corpus, and for the top layer
the words a unit promotes and suppresses through the decoder), and a search of the units by a token
predicate (AUC), in the manner of Neuronpedia's dashboards."""
from __future__ import annotations

import streamlit as st

from explorer.corpus import queries as Q
from explorer.present import corpus_figures as CF
from explorer.present import scales
from ui import common
from ui import corpus_common as CC


@st.cache_resource(max_entries=64, show_spinner="Reading the unit's values over the corpus…")
def _profile(idx_path: str, stamp: float, model_path: str, mstamp: float, layer: int, q: str, unit: int):
    return Q.unit_profile(CC._open(idx_path, stamp), layer, q, unit, top=12, model=common.model_at(model_path))


@st.cache_resource(max_entries=32, show_spinner="Ranking every unit by AUC…")
def _rank(idx_path: str, stamp: float, layer: int, q: str, predicate: str):
    return Q.rank_units(CC._open(idx_path, stamp), layer, q, predicate, top=20)


def _show(unit: int):
    st.session_state["units_unit"] = int(unit)


def page():
    ctx, layer, idx = CC.sidebar_and_index()
    common.url_state("unit=units_unit:int")   # the address bar keeps these (lecture links)
    ss = st.session_state
    stamp = (idx.path / "card.json").stat().st_mtime
    st.markdown("#### Units: what a unit responds to across the corpus")
    st.caption(CC.index_caption(idx))
    H = idx.n_units
    if ss.get("units_unit") not in range(H):
        ss["units_unit"] = 0
    c1, c2 = st.columns([1, 1])
    unit = c1.number_input("Unit", 0, H - 1, step=1, key="units_unit")
    qs = idx.quantities
    q = c2.selectbox("Quantity", qs, key="units_q") if len(qs) > 1 else qs[0]
    vr = scales.fixed_range(q, ctx.ranges)
    with common.guard("the unit dictionary"):
        p = _profile(str(idx.path), stamp, ctx.path, ctx.stamp, layer, q, int(unit))
        st.markdown(f"**Layer {layer + 1}, unit {unit}** · mean {p.mean:+.3f} · std {p.std:.3f}")
        left, right = st.columns([3, 2])
        with left:
            st.markdown("Most positive")
            st.html(CF.CHIP_CSS + "".join(CF.context_html(list(c.tokens), list(c.values), c.focus, vr,
                                                          meta=f"{c.value:+.3f} · {c.file}:{c.position}")
                                          for c in p.top))
            st.markdown("Most negative")
            st.html(CF.CHIP_CSS + "".join(CF.context_html(list(c.tokens), list(c.values), c.focus, vr,
                                                          meta=f"{c.value:+.3f} · {c.file}:{c.position}")
                                          for c in p.bottom))
        with right:
            common.chart(CF.histogram_figure(p), key="units_hist")
            if p.promotes:
                common.chart(CF.words_figure(p.promotes, "Words it promotes (decoder)", "#b2182b"), key="units_prom")
                common.chart(CF.words_figure(p.suppresses, "Words it suppresses", "#2166ac"), key="units_supp")
            else:
                st.caption("The decoder view (words promoted and suppressed) is for h of the top layer.")
    st.markdown("#### Search the units by a predicate")
    names = list(Q.PREDICATES)
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    pred = c1.selectbox("Predicate", names, key="units_pred", format_func=lambda n: Q.PREDICATES[n][0])
    with common.guard("the predicate search"):
        df = _rank(str(idx.path), stamp, layer, q, pred)
        st.caption(f"AUC of each unit for telling the predicate's tokens ({int(df['n_pos'].iloc[0]):,}) from the "
                   f"others ({int(df['n_neg'].iloc[0]):,}): 1 or 0 separate perfectly, 0.5 is chance.")
        common.chart(CF.auc_figure(df, Q.PREDICATES[pred][0]), key="units_auc")
        cols = st.columns(6)
        for k, r in enumerate(df.head(6).itertuples()):
            cols[k].button(f"Unit {int(r.unit)} · {r.auc:.2f}", key=f"units_go_{k}", on_click=_show,
                           args=(int(r.unit),))


page()
