"""The framework's floor for benchmarks/app_latency.py: a bare Streamlit page with a text box and one
Plotly heatmap of random numbers, the same size as the explorer's (units x tokens), with the words of
the text as tick labels. Run:  streamlit run benchmarks/bare_heatmap_app.py  (BARE_UNITS=256)."""
import html
import os

import numpy as np
import plotly.graph_objects as go
import streamlit as st

UNITS = int(os.environ.get("BARE_UNITS", "256"))

st.set_page_config(page_title="bare heatmap", layout="wide")
text = st.text_area("Text", key="text", value="the cat sat on the mat")
words = ["<eos>"] + text.split()
z = np.random.default_rng().standard_normal((UNITS, len(words))).astype(np.float32)
fig = go.Figure(go.Heatmap(z=z, x=np.arange(len(words)), zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r"))
fig.update_layout(title="bare heatmap", height=380,
                  xaxis=dict(tickmode="array", tickvals=list(range(len(words))),
                             ticktext=[html.escape(w, quote=False) for w in words]))
st.plotly_chart(fig, theme=None)
