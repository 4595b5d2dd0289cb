"""How to read the views, and the card of the model in use."""
from __future__ import annotations

import json

import streamlit as st

from explorer.present import views
from explorer.trace import DESCRIPTIONS, QUANTITIES
from ui import sidebar, widgets

GUIDE = r"""
### What you are looking at

A recurrent language model reads a text one token at a time. After each token it updates its state
and predicts the next token. **Explore** shows that state and that prediction at every step.

**Token strip.** The text as the model splits it. The first chip, *&lt;eos&gt;*, is the boundary
token the model reads first, as at the start of a paragraph. Each chip is coloured by its
**surprisal**, −log₂ P(token | the tokens before it): white chips were expected, red ones surprised
the model. Words outside the model's vocabulary are **dashed and tagged `unk`**: the model reads them
all as the same token `<unk>`. The outlined chip is the selected token.

**Playback.** *Next* / *Back* (or → / ←) move the selection, *Home* / *End* jump to the ends, *Play*
(or P) walks through the text at the chosen speed. Clicking a chip, dragging the slider or clicking a
heatmap column selects that token. Stepping happens in your browser, so it is instant; the keys work
whenever the cursor is not in the text box.

**Next word.** The ten tokens the model finds most probable after the selected token. The token the
text actually continues with is **orange**; when it is not among the ten it is added at the bottom
with its rank.

**Change at this step.** Δh = hₜ − hₜ₋₁ for every unit (red up, blue down), and for an LSTM also
Δc, the change of the cell state. The axis is fixed for the whole text, so tall bars really are big
changes; it reaches the 99th percentile of all the text's changes, and the few bars beyond it are cut
and marked ▲▼ (hover for the value). The three largest changes are labelled with their unit number.

**Gates.** For an LSTM, how open each gate is after the selected token, as a histogram over the
units: the input gate *i* (how much new content is written), the forget gate *f* (how much of the
old cell state is kept), the output gate *o* (how much of the cell state is shown as h). 0 means
closed, 1 open; the triangle marks the mean. A GRU shows its reset and update gates; a simple RNN
has none.

**Heatmaps.** One column per token, one row per unit; the tabs hold the states (h, c) and the gates
(i, f, o and the candidate g). Colours are fixed, so a colour means the same value in every
sentence, layer and step: blue negative, white zero, red positive for h, g and c; white (closed) to
dark green (open) for the gates. The cell state has no natural bound: it is coloured on a symmetric
log scale (its colour bar is labelled in units of c) whose range is set once per model, see below.
Hover over a cell to read the token, unit and value; the box marks the selected token and moves as
you step. Click a column to select its token.

**Unit inspector.** Lines of a few units across the text: the *most active* (largest mean |value|;
for gates, furthest from ½ on average), the units that *changed most at this step*, or units *by
number*. Following one unit through a sentence is how "quotation units" or "gender units" are found.
"""


def page():
    st.markdown(GUIDE)
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        return
    st.markdown(f"### The model: {ctx.name}")
    st.caption(sidebar.card_summary(ctx.model))
    card = ctx.model.card
    if card.get("description"):
        st.write(card["description"])
    rows = []
    for q in QUANTITIES[ctx.cell]:
        lo, hi = views.fixed_range(q, ctx.ranges)
        rows.append({"quantity": q, "meaning": DESCRIPTIONS[q], "colour range": f"{lo:g} … {hi:g}"})
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("The cell state's range is the 99.5th percentile of |c| while this model reads the preset "
               "sentences, rounded up (explorer.present.views.value_ranges); it is drawn on a symmetric log scale.")
    with st.expander("Full model card (card.json)"):
        st.code(json.dumps(card, indent=2, ensure_ascii=False)[:20000], language="json")


with widgets.guard("the guide"):
    page()
