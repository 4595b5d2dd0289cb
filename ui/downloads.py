"""Downloads under a view: the trace's data (CSV, Parquet, JSON; tidy, as Trace.to_frame), the view's
figures (PNG and SVG through Kaleido and the system Chromium, self-contained HTML) and a "copy as
Python" snippet that rebuilds the view through the API. The bytes are made only when a button is
clicked (deferred `data=` callables), by explorer.present.export."""
from __future__ import annotations

import re

import streamlit as st

from explorer.present import export

FIGURE_LABELS = {"heatmaps": "State heatmaps (h, c)", "gates": "Gate heatmaps (i, f, g, o)",
                 "step": "Step view (next word, change, gates)", "next-words": "Next-word bars"}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")[:40] or "text"


def _data(tr, what, fmt):
    return lambda: export.frame_bytes(export.data_frame(tr, what), fmt)


def _figure(name, tr, model, layer, pos, fmt):
    return lambda: export.figure_bytes(export.build_figure(name, tr, model, layer, pos), fmt)


def trace_downloads(ctx, tr, layer: int, pos: int, key: str = "dl"):
    """An expander with the downloads of this trace and view (`layer`: 1 = the bottom), and its Python."""
    pos = min(max(0, int(pos)), len(tr) - 1)
    base = f"{_slug(ctx.name)}_{_slug(tr.text)}"
    names = [n for n in export.FIGURES if not (n == "gates" and tr.cell == "rnn")]
    with st.expander("Download · copy as Python", icon=":material/download:"):
        with st.container(key=f"{key}_data"):
            for what, label in (("states", "Every layer's states, one row per token × unit"),
                                ("predictions", "Predictions, one row per token")):
                st.caption(label)
                cols = st.columns(3)
                for col, fmt in zip(cols, export.DATA_FORMATS):
                    col.download_button(fmt.upper(), data=_data(tr, what, fmt), file_name=f"{base}_{what}.{fmt}",
                                        mime=export.MIME[fmt], key=f"{key}_{what}_{fmt}", on_click="ignore",
                                        icon=":material/table:", width="stretch")
        name = st.selectbox("Figure", names, format_func=FIGURE_LABELS.get, key=f"{key}_figure",
                            help="The figure at the selected token and layer; PNG and SVG are drawn by Kaleido "
                                 "in the system Chromium, HTML works offline (plotly.js inside).")
        with st.container(key=f"{key}_fig"):
            cols = st.columns(3)
            image_buttons(cols[:2], lambda fmt: _figure(name, tr, ctx.model, layer, pos, fmt)(),
                          f"{base}_{name}_L{layer}_t{pos}", f"{key}_fig", icon=":material/image:", width="stretch")
            cols[2].download_button("HTML", data=_figure(name, tr, ctx.model, layer, pos, "html"),
                                    file_name=f"{base}_{name}_L{layer}_t{pos}.html", mime=export.MIME["html"],
                                    key=f"{key}_fig_html", on_click="ignore", icon=":material/image:",
                                    width="stretch")
        st.caption(f"Copy as Python: this view (layer {layer}, token {pos}) through the API")
        st.code(export.python_snippet(ctx.path, tr.text, layer, pos, name), language="python")


def _make_image(make, fmt: str, slot: str):
    """On click: draw the PNG/SVG now (Kaleido), keeping the bytes or the reason it failed for the page."""
    try:
        st.session_state[slot] = ("ok", make())
    except Exception as e:  # noqa: BLE001 - Kaleido and Chromium fail in many ways; the page says which
        st.session_state[slot] = ("error", f"The {fmt.upper()} could not be made: {e}")


def image_buttons(cols, make, file_base: str, key: str, **kw):
    """PNG and SVG in two steps, so a failure is said in the page (a deferred download that fails shows
    nothing there): a button draws the image, then a Save button hands it over, or an error says why.
    `make(fmt)` returns the bytes. Where export cannot work at all (no kaleido or Chromium) the buttons
    are off and the reason is shown."""
    problem = export.image_problem()
    results = []
    for col, fmt in zip(cols, ("png", "svg")):
        slot = f"_img_{key}_{fmt}"
        got = st.session_state.pop(slot, None)          # made on the click before this run: shown once
        if got and got[0] == "ok":
            kw_ = dict(kw, icon=":material/download:")
            col.download_button(fmt.upper(), data=got[1], file_name=f"{file_base}.{fmt}", mime=export.MIME[fmt],
                                key=f"{key}__save_{fmt}", on_click="ignore", type="primary",
                                help=f"Save the {fmt.upper()}", **kw_)
        else:
            col.button(fmt.upper(), key=f"{key}__dl_{fmt}", on_click=_make_image,
                       args=(lambda f=fmt: make(f), fmt, slot), disabled=problem is not None,
                       help=problem or f"Draws the {fmt.upper()}, then offers it to save", **kw)
        if got and got[0] == "error":
            results.append(got[1])
    if problem:
        st.caption(problem)
    for msg in results:
        st.error(msg, icon=":material/error:")


def _fig_data(fig, fmt):
    return lambda: export.frame_bytes(export.figure_frame(fig), fmt)


def _fig_file(fig, fmt):
    return lambda: export.figure_bytes(fig, fmt)


def figure_menu(fig, key: str):
    """A small Download menu under a chart: the figure as PNG, SVG or offline HTML, and the numbers
    behind it (explorer.present.export.figure_frame) as CSV, Parquet or JSON. Made when clicked."""
    with st.popover("Download", icon=":material/download:", type="tertiary"):
        st.caption("Figure")
        cols = st.columns(3)
        image_buttons(cols[:2], lambda fmt: export.figure_bytes(fig, fmt), key, key, width="content")
        cols[2].download_button("HTML", data=_fig_file(fig, "html"), file_name=f"{key}.html", mime=export.MIME["html"],
                                key=f"{key}__dl_html", on_click="ignore", width="content")
        st.caption("Its data (tidy: trace, x, y, value, and the labels on the chart)")
        cols = st.columns(3)
        for col, fmt in zip(cols, export.DATA_FORMATS):
            col.download_button(fmt.upper(), data=_fig_data(fig, fmt), file_name=f"{key}.{fmt}", mime=export.MIME[fmt],
                                key=f"{key}__dl_{fmt}", on_click="ignore", width="content")
