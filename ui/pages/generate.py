"""Generate (one-to-many): sample a continuation, then watch the state as each sampled word is fed
back in as the next input.

Layout: prompt and sampling controls -> the text (prompt, then the sampled words) -> the selected
step: what the model expected there, how the state changed -> heatmap of h over the whole text with
the start of the generation marked -> P(each token | before).
"""
from __future__ import annotations

import html

import streamlit as st

from explorer.errors import InputError
from explorer.present import analysis_figures, figures, lesson, views
from ui import cached, cached_analysis, session, widgets

DEFAULT_PROMPT = "Holmes looked at me and said"


def _new_seed():
    st.session_state["gen_seed"] = int(st.session_state.get("gen_seed", 0)) + 1


#: What the address bar keeps on this page (session.url_state): the prompt and every sampling setting (the
#: same seed and settings sample the same words), the layer and the selected step.
URL_KEYS = ("prompt=gen_prompt", "layer:layer", "temp=gen_temp:float:0:2", "topk=gen_topk:int", "seed=gen_seed:int",
            "n=gen_n:int:1:100", "step=gen_pos:int")


def page():
    ctx = session.require_model()
    session.url_state(*URL_KEYS)   # the address bar keeps these (lecture links)
    layer = widgets.layer_picker(ctx)
    ss = st.session_state
    ss.setdefault("gen_prompt", DEFAULT_PROMPT)
    ss.setdefault("gen_temp", 0.8)
    ss.setdefault("gen_topk", 40)
    ss.setdefault("gen_seed", 0)
    ss.setdefault("gen_n", 30)
    st.markdown("#### Generate: one input, many outputs")
    st.caption("The model reads the prompt, samples a word from its prediction, feeds that word back in as "
               "the next input, and repeats. Everything below is the real state as each sampled word is read.")
    prompt = st.text_input("Prompt", key="gen_prompt", persist_state="session")
    c1, c2, c3, c4, c5 = st.columns([1.6, 1.2, 1.0, 0.8, 1.4], vertical_alignment="bottom")
    temp = c1.slider("Temperature", 0.0, 2.0, step=0.05, key="gen_temp", persist_state="session",
                     help="0 always takes the most probable word; 1 samples from the model's own distribution; "
                          "above 1 flattens it (more surprising words).")
    top_k = c2.number_input("Top-k (0 = all)", 0, 10_000, step=5, key="gen_topk", persist_state="session",
                            help="Sample only among the k most probable words.")
    seed = c3.number_input("Seed", 0, 2**31 - 1, step=1, key="gen_seed", persist_state="session",
                           help="The same seed and settings give the same words.")
    c4.button("New seed", key="gen_reseed", on_click=_new_seed, icon=":material/casino:")
    n = c5.slider("Words to sample", 1, 100, key="gen_n", persist_state="session")
    if not prompt.strip():
        st.info("Type a prompt to continue.", icon=":material/edit:")
        return
    try:
        gen = cached_analysis.generation(ctx, prompt, n, temp, top_k, seed)
    except InputError as e:
        st.warning(widgets.friendly(e), icon=":material/warning:")
        return
    tr = gen.trace
    words = gen.continuation.replace("\n\n", " ¶ ")   # written by the tokenizer: characters join as characters
    st.html(f'<div data-testid="generated-text" style="font-size:19px;line-height:1.5;padding:6px 0">'
            f'<span style="color:#2166ac">{html.escape(prompt)}</span>'
            f'<b style="color:#b2182b">{html.escape(words)}</b></div>')
    st.caption(f"Blue: your prompt ({gen.n_prompt - 1} tokens after the boundary <eos>); red: {len(gen.words)} "
               f"sampled tokens (temperature {gen.temperature:g}, top-k {gen.top_k or 'all'}, seed {gen.seed}); "
               "¶ is a paragraph end.")

    rows = list(range(len(tr)))
    labels = views.token_labels(tr)
    sig = (ctx.path, gen.prompt, gen.ids)
    if ss.get("_gen_sig") != sig or ss.get("gen_pos", len(tr)) >= len(tr):
        ss["_gen_sig"] = sig
        if not (session.linked("gen_pos") and ss.get("gen_pos") in rows):     # a link's step, kept once
            ss["gen_pos"] = min(gen.n_prompt - 1, len(tr) - 1)
    widgets.keep("gen_pos")                     # kept across pages, and shown as kept (issue 14)
    pos = st.select_slider("Step", rows, key="gen_pos", persist_state="session",
                           format_func=lambda i: f"{i} · {labels[i]}" + (" (sampled)" if i >= gen.n_prompt else ""),
                           help="Opens on the last prompt token: the distribution the first word was drawn from.")
    win = views.window(len(tr), pos, widgets.WINDOW)
    st.html(figures.token_strip_html(tr, pos, window=win))
    st.html('<div data-testid="gen-readout" style="font-size:15px">' + html.escape(views.describe_step(tr, pos))
            + "</div>")
    a, b = st.columns([1, 1.3])
    with a:
        widgets.chart(figures.topk_figure(tr, pos, k=cached.TOP_K), "gen_fig_topk")
        st.caption("The model's own distribution; the word was drawn from it after temperature and top-k.")
    with b:
        widgets.chart(figures.step_figure(tr, layer, pos), "gen_fig_step")
    fig = figures.heatmap_figure(tr, layer, "h", selected=pos, ranges=ctx.ranges, window=win,
                           title=f"<b>h</b> · the state after each token, layer {layer} "
                                 "(right of the dashed line: fed back from the model's own samples)")
    widgets.chart(lesson.mark_generated(fig, gen.n_prompt), "gen_fig_heat")
    fig = analysis_figures.generation_bars(gen, window=win, selected=pos)     # a long prompt: the stretch around the step
    fig.update_xaxes(tickangle=-45 if win[1] - win[0] > 12 else 0, tickfont=dict(size=12))
    fig.update_layout(height=340, title="How probable each token was, given the ones before it "
                                        "(blue: prompt, red: sampled)")
    widgets.chart(fig, "gen_fig_probs")


with widgets.guard("the Generate page"):
    page()
