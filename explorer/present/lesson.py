"""The small numbers, sentences and pictures behind the Contrast, Memory, Generate and Lesson pages.

Pure functions of traces and of the results of explorer.analysis (no Streamlit): the pages only
place what these return, so a notebook or a test gets the same numbers and the same sentences.

* preset pairs (the bartender pair, Mary/John) and the aligned step where they are compared;
* plain-language sentences for the page (bag of words, final-state distance, miss/sir, fading) built
  from the numbers, so the text never claims more than the model shows;
* HTML strips (aligned token pairs, attribution chips, the prediction at every token), every piece of
  user text escaped;
* a few figures the analysis figures lack (LSTM | RNN fading panels, the encoder's final state) and
  `projector()`, which enlarges any figure's text for a lecture room;
* the lesson's state in the URL query string (`lesson_from_query` / `lesson_to_query`).
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .analysis_figures import token_colors
from .cells import CELL_PASSAGE
from .presets import PRESETS
from .views import explained, visible
from ..errors import InputError

# ------------------------------------------------------------------------------------ preset pairs
#: The bartender's reply starts after this cue; the model must choose the form of address next.
REPLY_CUE = "Certainly,"
#: Forms of address compared in the bartender example; the last one is the male form.
ADDRESS_WORDS = ("miss", "ma'am", "madam", "sir")


def reply_prompt(text: str, cue: str = REPLY_CUE) -> str:
    """`text` up to and including `cue`: what the model has read when it must choose miss or sir.
    Unchanged when the cue is absent."""
    i = text.find(cue)
    return text if i < 0 else text[: i + len(cue)]


@dataclass(frozen=True)
class Pair:
    """Two texts compared on the Contrast page and in the lesson."""
    label: str
    a: str
    b: str
    words: tuple[str, ...]      # next words whose probabilities are compared
    at: str                     # "reply": the step before the last differing token; "last": the last step
    name_a: str = "A"
    name_b: str = "B"


PAIRS: dict[str, Pair] = {
    "bartender": Pair("Bartender: girl / she vs boy / he", PRESETS["Bartender (girl / she)"],
                      PRESETS["Bartender (boy / he)"], ADDRESS_WORDS, "reply", "girl / she", "boy / he"),
    "mary-john": Pair("Mary loves John . / John loves Mary .", PRESETS["Mary loves John ."],
                      PRESETS["John loves Mary ."], ("he", "she"), "last", "Mary loves John", "John loves Mary"),
}


def compare_step(c, at: str = "last") -> int:
    """The aligned position where two texts' next-word predictions are compared.

    "last": the last position both texts have. "reply": the position just before the last one where
    the tokens differ (for the bartender pair: after "Certainly ,", where the model has to choose
    between miss and sir), falling back to "last" when the texts never differ there."""
    com = [int(j) for j in c.common]
    if not com:
        raise InputError("the two texts have no aligned position in common")
    if at == "reply":
        diff = [j for j in com if not c.same_token[j]]
        if diff and diff[-1] - 1 in com:
            return diff[-1] - 1
    elif at != "last":
        raise InputError("at must be 'reply' or 'last'")
    return com[-1]


# --------------------------------------------------------------------------- contrast: sentences
def final_distances(c) -> pd.DataFrame:
    """Cosine distance between the two final states, whole state first, then per layer and quantity."""
    fin = c.final_cosine
    cell = c.a.cell
    rows = []
    if "state" in fin:
        rows.append(("whole final state" + (" (h and c of every layer)" if cell == "lstm" else " (h of every layer)"),
                     fin["state"]))
    for l in range(1, len(c.a.layers) + 1):            # final_cosine names layers from 1 (the bottom)
        for q in ("h", "c"):
            k = f"{q}_l{l}"
            if k in fin:
                rows.append((f"{q}, layer {l}", fin[k]))
    return pd.DataFrame(rows, columns=["state", "cosine_distance"])


def bag_sentence(c, bow_distance: float) -> str:
    """The guide's point in one sentence: is the bag of words the same, and do the final states differ?"""
    cell = c.a.cell.upper()
    fin = c.final_cosine
    whole = fin.get("state", float("nan"))
    top = fin.get("h_top", float("nan"))
    states = (f"the {cell}'s final states differ by cosine distance {whole:.3g} "
              f"(top-layer h alone: {top:.3g})")
    if c.same_bag:
        n = sum(c.bag_a.values())
        return (f"To a model that ignores order, these two inputs are identical: the same {n} tokens, "
                f"and the sums of their embeddings differ by {bow_distance:.3g}. Yet {states}.")
    a = [k for k, d in c.bag_difference.items() if d > 0]
    b = [k for k, d in c.bag_difference.items() if d < 0]
    return (f"These inputs differ in their words (only in A: {', '.join(a) or '—'}; only in B: "
            f"{', '.join(b) or '—'}), so even an order-blind model could tell them apart; {states}.")


def chosen_probs(df) -> pd.DataFrame:
    """The chosen words of next_word_comparison(...): word, in_vocab, p_a, p_b, ratio p_a / p_b."""
    d = df[df["kind"] == "chosen"][["word", "in_vocab", "p_a", "p_b", "rank_a", "rank_b"]].copy()
    d["ratio"] = d["p_a"] / d["p_b"]
    return d.reset_index(drop=True)


def address_summary(df, versus: str = "sir") -> dict:
    """For the bartender pair (A female, B male): does every form of address move the expected way,
    how much higher is P(miss)/P(sir) in A, and is `versus` still the more probable one in both?"""
    d = chosen_probs(df).set_index("word")
    d = d[d["in_vocab"]]
    out = {"words": list(d.index), "expected": {}, "factor": float("nan"), "versus_wins_both": None}
    for w, r in d.iterrows():
        out["expected"][w] = bool(r.p_b > r.p_a) if w == versus else bool(r.p_a > r.p_b)
    out["all_expected"] = bool(out["expected"]) and all(out["expected"].values())
    if versus in d.index and "miss" in d.index:
        ra = d.loc["miss", "p_a"] / d.loc[versus, "p_a"]
        rb = d.loc["miss", "p_b"] / d.loc[versus, "p_b"]
        out["factor"] = float(ra / rb)
        out["versus_wins_both"] = bool(d.loc[versus, "p_a"] > d.loc["miss", "p_a"]
                                       and d.loc[versus, "p_b"] > d.loc["miss", "p_b"])
    return out


def address_sentence(df, name_a: str = "A", name_b: str = "B", versus: str = "sir") -> str:
    """Plain text for the miss/sir comparison, with the caveat when 'sir' stays more probable."""
    s = address_summary(df, versus)
    if not s["expected"]:
        return "None of the compared words is in this model's vocabulary."
    d = chosen_probs(df).set_index("word")
    parts = [f"{w} {d.loc[w, 'p_a']:.3g} vs {d.loc[w, 'p_b']:.3g}" for w in s["words"]]
    head = f"P(next word) after {name_a} vs after {name_b}: " + "; ".join(parts) + ". "
    if s["all_expected"]:
        head += (f"Every word moves the expected way: the female forms are more probable after {name_a}, "
                 f"“{versus}” after {name_b}. ")
    else:
        wrong = [w for w, ok in s["expected"].items() if not ok]
        head += f"Not every word moves the expected way ({', '.join(wrong)} does not). "
    if math.isfinite(s["factor"]):
        head += f"P(miss) / P({versus}) is {s['factor']:.2f}× higher after {name_a}"
        if s["versus_wins_both"]:
            head += (f", but “{versus}” stays more probable than “miss” in both: the novels the model read "
                     f"say “{versus}” far more often.")
        else:
            head += "."
    return head


def compare_sentence(df, name_a: str = "A", name_b: str = "B") -> str:
    """“P(he): 5.1% after A, 2.4% after B (2.1× higher after A)” for each chosen word in the vocabulary."""
    d = chosen_probs(df)
    d = d[d["in_vocab"]]
    if d.empty:
        return "None of the compared words is in this model's vocabulary."
    parts = []
    for r in d.itertuples():
        rel = (f"{r.ratio:.2g}× higher after {name_a}" if r.ratio >= 1 else f"{1 / r.ratio:.2g}× higher after {name_b}")
        parts.append(f"P(“{r.word}”) is {r.p_a:.2%} after {name_a} and {r.p_b:.2%} after {name_b} ({rel})")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------------- attribution
#: Colour range of the lesson's attribution chips (nats): a word worth a few tenths is visible, the
#: large scores of the final punctuation saturate (their exact values are printed under each chip).
LESSON_ATTR_VMAX = 0.5


def differing_scores(attr_a, attr_b, method: str) -> list[dict]:
    """Scores at the positions where the two texts' tokens differ (tokens 0..step of each, aligned
    from the start): position, token_a, score_a, token_b, score_b."""
    out = []
    for k in range(min(len(attr_a.tokens), len(attr_b.tokens))):
        if attr_a.tokens[k] != attr_b.tokens[k]:
            out.append({"position": k, "token_a": attr_a.tokens[k], "score_a": float(attr_a.scores[method][k]),
                        "token_b": attr_b.tokens[k], "score_b": float(attr_b.scores[method][k])})
    return out


def largest_scores(attr, method: str, n: int = 3) -> list[tuple[int, str, float]]:
    """The n tokens with the largest |score| (either sign): (position, token, score)."""
    s = np.nan_to_num(np.asarray(attr.scores[method], np.float64), nan=0.0)
    order = np.argsort(-np.abs(s), kind="stable")[:n]
    return [(int(k), attr.tokens[k], float(s[k])) for k in order]


def attribution_sentence(attr_a, attr_b, method: str) -> str:
    """What the two attributions show at the words that differ, and where the largest scores are."""
    diff = differing_scores(attr_a, attr_b, method)
    if not diff:
        return "The two texts have the same words up to this step."
    pairs = "; ".join(f"“{d['token_a']}” {d['score_a']:+.2f} vs “{d['token_b']}” {d['score_b']:+.2f}" for d in diff)
    top = largest_scores(attr_a, method)
    big = ", ".join(f"“{t}” {v:+.2f}" for _, t, v in top)
    if {k for k, _, _ in top} & {d["position"] for d in diff}:
        return f"At the words that differ: {pairs}. The largest scores in the first text: {big}."
    return (f"At the words that differ: {pairs}. The largest scores in the first text are elsewhere ({big}): "
            "attribution measures what the prediction is sensitive to, and that includes words a person would "
            "not call evidence.")


# ------------------------------------------------------------------------------------- HTML strips
_STRIP_CSS = """
<style>
.lx-strip{display:flex;flex-wrap:wrap;gap:6px 4px;align-items:flex-start;padding:4px 0 8px 0;
  font-family:"Source Sans Pro",Helvetica,Arial,sans-serif}
.lx-col{display:inline-flex;flex-direction:column;align-items:stretch;border:1px solid #d0d4da;border-radius:7px;
  overflow:hidden;min-width:26px;text-align:center}
.lx-col span{padding:2px 7px;font-size:var(--lx-size,17px);line-height:1.25;white-space:nowrap}
.lx-col .lx-b{border-top:1px solid #e3e6ea}
.lx-col.diff{border:2px solid #e8590c}
.lx-col.diff .lx-a,.lx-col.diff .lx-b{background:#fff1e6;font-weight:600}
.lx-col.sel{outline:3px solid #111;outline-offset:1px}
.lx-col .lx-pos{font-size:10px;color:#777;padding:0 4px 1px 4px;line-height:1.1}
.lx-strip .lx-more{font-size:13px;color:#777;align-self:center;padding:0 4px}
.lx-col .lx-bar{height:5px;background:#1f5fa8;padding:0;margin:0 0 1px 0}
.lx-col.ok .lx-b{background:#d3f9d8}
.lx-col .lx-p{font-size:11px;color:#555;padding:0 4px 1px 4px}
.lx-chip{display:inline-flex;flex-direction:column;align-items:center;border:1px solid #d0d4da;border-radius:7px;
  padding:3px 8px 2px 8px;font-size:var(--lx-size,18px);line-height:1.2}
.lx-chip .lx-s{font-size:11px;opacity:.8}
.lx-chip.special{font-style:italic;color:#666}
.lx-legend{font-size:13px;color:#555;margin-top:2px}
.lx-rowlab{display:inline-flex;flex-direction:column;justify-content:flex-start;font-size:12px;color:#555;
  padding-top:3px;gap:9px;margin-right:4px}
</style>
"""


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _label(t: str) -> str:
    return visible(t)


def pair_strip_html(c, selected: int | None = None, name_a: str = "A", name_b: str = "B",
                    font_px: int = 17, window=None) -> str:
    """The two texts as aligned columns (A above, B below); columns where the tokens differ are
    outlined orange, `selected` is outlined black, and a bar under each column is ‖Δh‖ of the top
    layer there (relative to its largest value in the text). `window` (a, b) draws steps a..b-1 only."""
    dh = np.asarray(c.dh[-1], np.float64)
    m = float(np.nanmax(dh)) if np.isfinite(dh).any() and np.nanmax(dh) > 0 else 1.0
    lo, hi = (0, c.n) if window is None else (max(0, int(window[0])), min(c.n, int(window[1])))
    cols = [f'<span class="lx-rowlab"><span>{_e(name_a)}</span><span>{_e(name_b)}</span></span>']
    if lo > 0:
        cols.append(f'<span class="lx-more">… {lo} steps before</span>')
    for j in range(lo, hi):
        cls = ["lx-col"]
        both = c.rows_a[j] >= 0 and c.rows_b[j] >= 0
        if not c.same_token[j]:
            cls.append("diff")
        if selected is not None and j == selected:
            cls.append("sel")
        w = 0.0 if not (both and np.isfinite(dh[j])) else 100.0 * dh[j] / m
        title = f"step {j}" + (f": ‖Δh‖ = {dh[j]:.3f} (top layer)" if both and np.isfinite(dh[j]) else "")
        cols.append(f'<span class="{" ".join(cls)}" data-pos="{j}" title="{_e(title)}">'
                    f'<span class="lx-a">{_e(_label(c.tokens_a[j]))}</span>'
                    f'<span class="lx-b">{_e(_label(c.tokens_b[j]))}</span>'
                    f'<span class="lx-bar" style="width:{w:.0f}%"></span>'
                    f'<span class="lx-pos">{j}</span></span>')
    if hi < c.n:
        cols.append(f'<span class="lx-more">{c.n - hi} steps after …</span>')
    return (_STRIP_CSS + f'<div class="lx-strip" data-testid="pair-strip" data-n="{c.n}" '
            f'data-selected="{"" if selected is None else selected}" style="--lx-size:{font_px}px">'
            + "".join(cols) + '</div><div class="lx-legend">orange: the tokens differ · blue bar: how far '
            'apart the two states are after that token (‖Δh‖, top layer) · outlined: the compared step</div>')


def attribution_chips_html(attr, method: str, vmax: float | None = None, font_px: int = 18) -> str:
    """Tokens 0..step as chips coloured by their score (red raises the explained quantity, blue lowers
    it, white 0; one fixed range ±vmax, saturating beyond), with the score under each word."""
    s = np.asarray(attr.scores[method], np.float64)
    finite = np.abs(s[np.isfinite(s)])
    vmax = float(vmax) if vmax else (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    colours = token_colors(s, vmax)
    chips = []
    for k, (tok, v, col) in enumerate(zip(attr.tokens, s, colours)):
        special = attr.special[k]
        ink = "#fff" if np.isfinite(v) and abs(v) / vmax > 0.6 else "#111"
        score = "—" if not np.isfinite(v) else f"{v:+.2f}"
        chips.append(f'<span class="lx-chip{" special" if special else ""}" data-pos="{k}" '
                     f'data-score="{"" if not np.isfinite(v) else f"{v:.6g}"}" style="background:{col};color:{ink}" '
                     f'title="{_e(tok)}: {score}"><span>{_e(_label(tok))}</span><span class="lx-s">{score}</span></span>')
    legend = (f"red raises {_e(explained(attr))}, blue lowers it; colours saturate at ±{vmax:.2g}"
              + (" (grey: the boundary token, never replaced)" if method == "occlusion" else ""))
    return (_STRIP_CSS + f'<div class="lx-strip" data-testid="attr-strip" data-method="{_e(method)}" '
            f'data-target="{_e(attr.target)}" data-step="{attr.step}" style="--lx-size:{font_px}px">'
            + "".join(chips) + f'</div><div class="lx-legend">{legend}</div>')


def synced_frame(tr) -> pd.DataFrame:
    """Synced many-to-many: at every token the model's top guess for the next one, and whether the
    text really continues with it. Columns: position, token, guess, guess_prob, actual, right."""
    rows = []
    for t in range(len(tr)):
        w, p = tr.top_words(t, 1)[0]
        actual = tr.vocab[tr.tokens[t + 1].id] if t + 1 < len(tr) else None
        rows.append({"position": t, "token": tr.words[t], "guess": w, "guess_prob": p, "actual": actual,
                     "right": actual is not None and actual == w})
    return pd.DataFrame(rows)


def synced_html(tr, font_px: int = 17) -> str:
    """The synced many-to-many picture: each token read (top) and the model's guess for the next
    token at that moment (bottom, green where the text really continues with it)."""
    df = synced_frame(tr)
    cols = ['<span class="lx-rowlab"><span>reads</span><span>guesses next</span></span>']
    for r in df.itertuples():
        cls = "lx-col ok" if r.right else "lx-col"
        cols.append(f'<span class="{cls}" data-pos="{r.position}" title="{_e(r.guess)}: {r.guess_prob:.1%}">'
                    f'<span class="lx-a">{_e(_label(r.token))}</span><span class="lx-b">{_e(_label(r.guess))}</span>'
                    f'<span class="lx-p">{r.guess_prob:.0%}</span></span>')
    n_right, n = int(df["right"].sum()), max(0, len(df) - 1)
    return (_STRIP_CSS + f'<div class="lx-strip" data-testid="synced-strip" data-right="{n_right}" data-n="{n}" '
            f'style="--lx-size:{font_px}px">' + "".join(cols) + "</div>"
            f'<div class="lx-legend">green: the text really continues with the guessed word '
            f'({n_right} of {n} steps)</div>')


# ----------------------------------------------------------------------------------------- memory
#: Tolerance of the provenance check, relative: |Σ parts + c₀ part − c| ≤ PROVENANCE_RTOL · max(1, |c|).
#: The trace's c is a float32 recurrence, so its rounding error grows with |c| and with the number
#: of steps (on the shipped LSTM: about 2e-6 of |c| after 4,700 tokens, where |c| reaches 1,800).
PROVENANCE_RTOL = 1e-5


def provenance_check(prov, unit: int) -> dict:
    """The numbers of the exactness check for one unit: Σ surviving parts + c₀ part against c_t read
    from the trace, and the largest such error over the whole layer, absolute and relative to
    max(1, |c|) (the check holds when the relative error is within `tolerance`)."""
    parts = float(prov.parts[:, unit].sum())
    init = float(prov.initial[unit])
    c = float(prov.c[unit])
    rel = np.abs(prov.total - prov.c) / np.maximum(np.abs(prov.c), 1.0)
    return {"unit": int(unit), "sum_parts": parts, "initial": init, "total": parts + init, "c": c,
            "error": parts + init - c, "layer_max_error": float(np.abs(prov.total - prov.c).max()),
            "relative_error": abs(parts + init - c) / max(abs(c), 1.0),
            "layer_max_relative_error": float(rel.max()), "tolerance": PROVENANCE_RTOL}


def strongest_units(prov, k: int = 12) -> list[int]:
    """Units with the largest |c_t| at the provenance step, largest first (the default unit to show)."""
    return [int(u) for u in np.argsort(-np.abs(prov.c), kind="stable")[:k]]


def long_memory_units(prov, min_age: int = 5, k: int = 12) -> list[int]:
    """Units whose cell state, at the provenance step, is held most by one word written at least
    `min_age` steps earlier: score = (largest |part| of such a word) / (Σ |parts| + |c₀ part|), weighted
    by min(|c_t|, 1) so that nearly empty cells do not win. Best first; [] when the text is too short."""
    old = np.abs(prov.parts[: max(0, prov.step - min_age + 1)])
    if old.shape[0] == 0:
        return []
    total = np.abs(prov.parts).sum(0) + np.abs(prov.initial)
    score = old.max(0) / np.maximum(total, 1e-12) * np.minimum(np.abs(prov.c), 1.0)
    return [int(u) for u in np.argsort(-score, kind="stable")[:k]]


def oldest_share(prov, unit: int) -> dict:
    """For one unit: which earlier token's write is the largest surviving part of c_t, and how far back."""
    p = np.abs(prov.parts[:, unit])
    k = int(np.argmax(p)) if p.size else 0
    return {"position": k, "token": prov.tokens[k], "steps_ago": prov.step - k,
            "share": float(p[k] / p.sum()) if p.sum() > 0 else 0.0}


def half_life_summary(df) -> dict:
    """Counts for the half-life chart's caption (df from analysis.half_lives)."""
    hl = df["half_life"].to_numpy(np.float64)
    fin = hl[np.isfinite(hl)]
    return {"units": int(len(hl)), "median": float(np.median(hl)) if len(hl) else float("nan"),
            "over_10": int((hl > 10).sum()), "over_100": int((hl > 100).sum()),
            "infinite": int((~np.isfinite(hl)).sum()), "longest_unit": int(df["unit"].iloc[0]) if len(df) else -1,
            "longest": float(hl[0]) if len(hl) else float("nan"), "shortest": float(fin.min()) if fin.size else float("nan")}


def fade_table(df, metric: str = "dh_rel", late_from: int = 10) -> pd.DataFrame:
    """One row per model and replacement (df from analysis.replacement_fade): the metric at the
    replaced word, at the end of the text, its mean from `late_from` steps on, that mean as a share of
    the first value, and whether the difference persists: it has stopped shrinking (the late mean is
    at least 0.8 × the mean over steps 2 .. late_from − 1) while still large (≥ 15 % of the first
    value). A slowly fading difference is not called persistent, however large it still is."""
    rows = []
    keys = [k for k in ("model", "replacement") if k in df.columns]
    for key, g in df.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.sort_values("distance")
        first = float(g[metric].iloc[0])
        late = g[g["distance"] >= late_from][metric]
        mid = g[(g["distance"] >= 2) & (g["distance"] < late_from)][metric]
        late_mean = float(late.mean()) if len(late) else float("nan")
        mid_mean = float(mid.mean()) if len(mid) else float("nan")
        share = late_mean / first if first > 0 else float("nan")
        flat = bool(np.isfinite(late_mean) and np.isfinite(mid_mean) and late_mean >= 0.8 * mid_mean)
        rows.append({**dict(zip(keys, key)), "first": first, "last": float(g[metric].iloc[-1]),
                     "late_mean": late_mean, "late_share": share,
                     "persists": bool(flat and np.isfinite(share) and share >= 0.15)})
    return pd.DataFrame(rows)


def fade_sentence(table: pd.DataFrame, late_from: int = 10) -> str:
    """What the fading comparison shows, per model, from fade_table (no claim the data does not make)."""
    if table.empty or not np.isfinite(table["late_share"]).any():
        return f"The text is too short to compare the models {late_from} steps after the replaced word."
    out = []
    for model, g in table.groupby("model", sort=False):
        keep = g[g["persists"]]
        fade = g[~g["persists"] & np.isfinite(g["late_share"])]
        lo, hi = float(g["late_share"].min()), float(g["late_share"].max())
        if keep.empty:
            out.append(f"{model}: the difference keeps shrinking for every replacement, to {lo:.0%}–{hi:.0%} of "
                       f"its size at the replaced word ({late_from}+ steps later).")
        elif fade.empty:
            out.append(f"{model}: the difference stops shrinking for every replacement ({lo:.0%}–{hi:.0%} of "
                       f"its size at the replaced word, {late_from}+ steps later).")
        else:
            out.append(f"{model}: it depends on the word. After " + ", ".join(f"“{r}”" for r in fade["replacement"])
                       + f" the difference keeps shrinking (to {fade['late_share'].max():.0%} or less); after "
                       + ", ".join(f"“{r}”" for r in keep["replacement"])
                       + f" it stops shrinking and stays large ({keep['late_share'].min():.0%} or more): the "
                         "network has settled into a different lasting state instead of forgetting.")
    return " ".join(out)


FADE_METRICS = {"dh_rel": "‖Δh‖ / ‖h‖ (top layer)", "tv": "total variation of P(next word)",
                "dh": "‖Δh‖ (top layer)", "kl": "KL(P ‖ P′) of the next word (nats)"}
_LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def fade_panels(df, metric: str = "dh_rel", height: int = 420) -> go.Figure:
    """The fading comparison side by side: one panel per model (df from replacement_fade), one line per
    replacement word in the same colour in every panel, one shared y axis so the panels compare."""
    from plotly.subplots import make_subplots
    models = list(dict.fromkeys(df["model"]))
    reps = list(dict.fromkeys(df["replacement"])) if "replacement" in df.columns else [None]
    fig = make_subplots(rows=1, cols=len(models), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[str(m) for m in models])
    for i, m in enumerate(models):
        for j, r in enumerate(reps):
            g = df[(df["model"] == m) & ((df["replacement"] == r) if r is not None else True)].sort_values("distance")
            fig.add_trace(go.Scatter(x=g["distance"], y=g[metric], mode="lines+markers", name=f"“{r}”" if r else m,
                                     legendgroup=str(r), showlegend=i == 0,
                                     line=dict(color=_LINE_COLOURS[j % len(_LINE_COLOURS)], width=2.5),
                                     marker=dict(size=6), customdata=np.asarray(g["token"], dtype=object),
                                     hovertemplate=f"{m}, “{r}”: %{{y:.3f}} at “%{{customdata}}” (%{{x}} steps later)"
                                                   "<extra></extra>"), row=1, col=i + 1)
        fig.update_xaxes(title_text="steps after the replaced word", row=1, col=i + 1)
    top = float(np.nanmax(df[metric])) if len(df) else 1.0
    fig.update_yaxes(range=[0, top * 1.08 if top > 0 else 1.0], title_text=FADE_METRICS.get(metric, metric),
                     row=1, col=1)
    fig.update_layout(height=height, template="plotly_white", font=dict(size=15),
                      legend=dict(title=dict(text="first word replaced by"), orientation="h", y=-0.22, x=0),
                      margin=dict(l=70, r=20, t=50, b=110),
                      meta=dict(view="fade_panels", metric=metric, models=[str(m) for m in models],
                                replacements=[str(r) for r in reps]))
    return fig


# ------------------------------------------------------------------------------------- the reading
def step_change(tr, layer: int, t: int) -> dict:
    """How much the state moved in `layer` (1 = the bottom layer, -1 = the top) when token t was read:
    ‖h_t − h_{t−1}‖ (and for an LSTM ‖c_t − c_{t−1}‖), and ‖h_t‖. At t = 0 the previous state is the
    zero start state."""
    lay = tr.layer(layer)
    h = np.asarray(lay.h, np.float64)
    prev = h[t - 1] if t > 0 else np.zeros_like(h[t])
    out = {"dh": float(np.linalg.norm(h[t] - prev)), "h_norm": float(np.linalg.norm(h[t])), "units": int(h.shape[1])}
    if "c" in lay.values:
        c = np.asarray(lay.c, np.float64)
        cp = c[t - 1] if t > 0 else np.zeros_like(c[t])
        out["dc"] = float(np.linalg.norm(c[t] - cp))
    return out


def final_state_figure(tr, height: int = 330) -> go.Figure:
    """The encoder's final state: h (and for an LSTM c) of every layer after the last token, one row
    each, on fixed colour ranges (h in [−1, 1]; c on ±its largest |value| in this state)."""
    rows, names = [], []
    for lay in tr.layers:
        rows.append(np.asarray(lay.h[-1], np.float64))
        names.append(f"h, layer {lay.layer}")
    fig = go.Figure()
    n_h = len(rows)
    U = len(rows[0]) if rows else 0
    fig.add_trace(go.Heatmap(z=np.array(rows), y=list(range(n_h)), colorscale="RdBu_r", zmid=0, zmin=-1, zmax=1,
                             colorbar=dict(title="h", len=0.45, y=0.78, tickvals=[-1, 0, 1]), xaxis="x", yaxis="y",
                             text=[[n] * U for n in names],        # hover names the layer as the axis does
                             hovertemplate="%{text}: unit %{x}: %{z:.3f}<extra></extra>"))
    layout = dict(yaxis=dict(tickmode="array", tickvals=list(range(n_h)), ticktext=names, autorange="reversed"))
    if tr.cell == "lstm":
        cs = np.array([np.asarray(lay.c[-1], np.float64) for lay in tr.layers])
        m = float(np.abs(cs).max()) or 1.0
        fig.add_trace(go.Heatmap(z=cs, y=list(range(len(cs))), colorscale="RdBu_r", zmid=0, zmin=-m, zmax=m,
                                 colorbar=dict(title="c", len=0.45, y=0.22, tickvals=[-round(m, 1), 0, round(m, 1)]),
                                 xaxis="x2", yaxis="y2", text=[[f"c, layer {l + 1}"] * U for l in range(len(cs))],
                                 hovertemplate="%{text}: unit %{x}: %{z:.3f}<extra></extra>"))
        layout.update(yaxis=dict(domain=[0.55, 1], tickmode="array", tickvals=list(range(n_h)), ticktext=names,
                                 autorange="reversed"),
                      yaxis2=dict(domain=[0, 0.45], tickmode="array", tickvals=list(range(len(cs))),
                                  ticktext=[f"c, layer {l + 1}" for l in range(len(cs))], autorange="reversed"),
                      xaxis=dict(anchor="y", showticklabels=False), xaxis2=dict(anchor="y2", title="unit"))
    else:
        layout["xaxis"] = dict(title="unit")
    fig.update_layout(height=height, template="plotly_white", font=dict(size=15), margin=dict(l=110, r=20, t=50, b=50),
                      title="The encoder's final state: everything a decoder would be given",
                      meta=dict(view="final_state", tokens=len(tr)), **layout)
    return fig


# ---------------------------------------------------------------------------- figures for a room
def projector(fig: go.Figure, size: int = 18, height: int | None = None) -> go.Figure:
    """Enlarge a figure's text for a lecture room: base font, title, tick labels and annotations,
    with automatic margins so the bigger labels fit. Changes and returns `fig`."""
    fig.update_layout(font=dict(size=size))
    if fig.layout.title and fig.layout.title.text:
        fig.update_layout(title_font_size=size + 2)
    fig.for_each_xaxis(lambda a: a.update(tickfont_size=max(a.tickfont.size or 0, size - 2), automargin=True))
    fig.for_each_yaxis(lambda a: a.update(tickfont_size=max(a.tickfont.size or 0, size - 2), automargin=True))
    for ann in fig.layout.annotations or ():
        ann.font.size = max(ann.font.size or 0, size - 2)
    if height:
        fig.update_layout(height=height)
    return fig


def mark_generated(fig: go.Figure, n_prompt: int, label: str = "generated →") -> go.Figure:
    """Draw a dashed line between the prompt and the generated tokens (token positions on x)."""
    x = n_prompt - 0.5
    fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color="#b2182b", width=2, dash="dash"),
                  name="generated")
    fig.add_annotation(x=x, y=1, yref="paper", text=label, showarrow=False, xanchor="left", yanchor="bottom",
                       font=dict(color="#b2182b", size=13))
    return fig


# ---------------------------------------------------------------------------------- model choices
def bundle_cell(path) -> str | None:
    """The cell ("lstm", "gru", "rnn") written in a bundle's card.json, without loading the weights."""
    try:
        card = json.loads((Path(path) / "card.json").read_text(encoding="utf-8"))
        cell = (card.get("config") or {}).get("cell")
        return cell if cell in ("lstm", "gru", "rnn") else None
    except (OSError, ValueError, AttributeError):
        return None


def pick_pair(options: Mapping[str, str], cell: str, prefer: str) -> list[str]:
    """Paths of `options` (path -> label) whose bundle has `cell`, the one labelled `prefer` first."""
    paths = [p for p in options if bundle_cell(p) == cell]
    return sorted(paths, key=lambda p: (options[p] != prefer, options[p]))


def first_word(model, text: str) -> str | None:
    """The first token of `text` as the model reads it (None for an empty text)."""
    toks = [t for t in model.tokenizer.tokenize(text) if not t.special]
    return toks[0].text if toks else None


# --------------------------------------------------------------------------------- the lesson URL
STEPS: dict[str, str] = {
    "reading": "1 · Reading word by word",
    "order": "2 · Order matters",
    "bartender": "3 · Prediction needs memory",
    "unrolled": "4 · The unrolled network",
    "shapes": "5 · Five input/output shapes",
    "cells": "6 · A cell that counts",
}
SHAPES: dict[str, str] = {
    "one-to-one": "one-to-one",
    "one-to-many": "one-to-many",
    "many-to-one": "many-to-one",
    "many-to-many": "many-to-many (synced)",
    "encoder-decoder": "encoder → decoder",
}
_GIRL, _BOY = PRESETS["Bartender (girl / she)"], PRESETS["Bartender (boy / he)"]
#: Each step's sentence(s) when the URL gives none.
LESSON_TEXTS: dict[str, tuple[str, str]] = {
    "reading": (_GIRL, ""),
    "order": (PRESETS["Mary loves John ."], PRESETS["John loves Mary ."]),
    "bartender": (reply_prompt(_GIRL), reply_prompt(_BOY)),
    "unrolled": ("Mary loves John .", ""),
    "shapes": ("He leaned upon his hand, with his untasted breakfast before him, and he stared at the slip of paper",
               ""),
    "cells": (CELL_PASSAGE, ""),
}
MAX_QUERY_TEXT = 2000


@dataclass(frozen=True)
class LessonState:
    """What a lecturer bookmarks: the step, its sentence(s), the shape shown and a position."""
    step: str = "reading"
    text: str = LESSON_TEXTS["reading"][0]
    text_b: str = LESSON_TEXTS["reading"][1]
    shape: str = "one-to-one"
    pos: int | None = None

    def with_step(self, step: str) -> "LessonState":
        a, b = LESSON_TEXTS[step]
        return replace(self, step=step, text=a, text_b=b, pos=None)


def _one(v) -> str | None:
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else None
    return None if v is None else str(v)


def lesson_from_query(params: Mapping) -> LessonState:
    """The lesson state in a URL's query (?step=bartender&text=...&text_b=...&shape=...&pos=3).
    Unknown steps or shapes fall back to the defaults; texts are cut to MAX_QUERY_TEXT characters."""
    step = _one(params.get("step"))
    step = step if step in STEPS else "reading"
    st = LessonState().with_step(step)
    text, text_b = _one(params.get("text")), _one(params.get("text_b"))
    if text is not None and text.strip():
        st = replace(st, text=text[:MAX_QUERY_TEXT])
    if text_b is not None and text_b.strip():
        st = replace(st, text_b=text_b[:MAX_QUERY_TEXT])
    shape = _one(params.get("shape"))
    if shape in SHAPES:
        st = replace(st, shape=shape)
    pos = _one(params.get("pos"))
    if pos is not None and pos.strip().isdigit():
        st = replace(st, pos=int(pos))
    return st


def lesson_to_query(st: LessonState) -> dict[str, str]:
    """The query parameters that restore `st` (the step always; texts only where they differ from the
    step's defaults, the shape only on the shapes step, pos when set)."""
    a, b = LESSON_TEXTS[st.step]
    out = {"step": st.step}
    if st.text != a:
        out["text"] = st.text
    if st.text_b != b and b != "":
        out["text_b"] = st.text_b
    if st.step == "shapes":
        out["shape"] = st.shape
    if st.pos is not None:
        out["pos"] = str(int(st.pos))
    return out


#: Held-out passages for the many-to-one classifier (from the test books of the fiction corpus,
#: Persuasion and The Valley of Fear, which neither the language model nor the classifier saw).
AUTHOR_EXAMPLES: dict[str, str] = {
    "Austen (Persuasion)": "Anne sighed and blushed and smiled, in pity and disdain, either at her friend or "
                           "herself. The part which provoked her most, was that in all this waste of foresight "
                           "and caution, she should have lost the right moment for seeing whether he saw them.",
    "Doyle (The Valley of Fear)": "He leaned upon his hand, with his untasted breakfast before him, and he stared "
                                  "at the slip of paper which he had just drawn from its envelope. Then he took the "
                                  "envelope itself, held it up to the light, and very carefully studied both the "
                                  "exterior and the flap.",
    "Austen, misread (Persuasion's first line)": "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man "
                                                 "who, for his own amusement, never took up any book but the Baronetage.",
}


def classifier_summary(clf) -> str:
    """One line on what the author classifier is and how well it does on held-out passages."""
    meta = clf.meta
    test = (meta.get("metrics") or {}).get("test") or {}
    acc = test.get("accuracy")
    feat = {"state": "the whole final state (h and c of every layer)", "h": "the top layer's h",
            "c": "the cell states"}.get(clf.feature, clf.feature)
    s = (f"A logistic regression on {feat}, fitted on {meta.get('passage_tokens', '?')}-token passages of the "
         f"training books; the language model itself is frozen.")
    if acc is not None:
        s += (f" On {test.get('n', '?')} passages of two held-out books it is right {acc:.0%} of the time; "
              "on a short or neutral sentence its answer means little.")
    return s


# ------------------------------------------------------- what the books say vs what the sentence says
#: The reply alone: no girl, no boy. What a model predicts here is its prior, what the books taught it.
PRIOR_ONLY = 'The bartender said "Certainly,'
#: The three readings compared in lesson step 3 (label, text read before the blank).
ADDRESS_READINGS = (("after girl / she", "girl"), ("after boy / he", "boy"), ("no one named (the prior)", "prior"))


def _address_texts() -> dict[str, str]:
    from ..training.evals import BARTENDER_BOY, BARTENDER_GIRL
    return {"girl": BARTENDER_GIRL, "boy": BARTENDER_BOY, "prior": PRIOR_ONLY}


def address_probs_model(model, text: str) -> dict[str, float]:
    """P(miss), P(ma'am), P(madam), P(sir) as the next word after `text`, by a network."""
    probs = dict(model.next_words(text, len(model.tokenizer)))
    return {w: float(probs.get(w, 0.0)) for w in ADDRESS_WORDS}


def address_probs_ngram(ngram, tokenizer, text: str) -> dict[str, float]:
    """The same by an n-gram model: it sees only the last order-1 tokens of `text`."""
    from ..trace import read_tokens
    hist = [t.id for t in read_tokens(tokenizer, text)]
    return {w: (float(ngram.prob(hist, tokenizer.stoi[w])) if w in tokenizer.stoi else 0.0) for w in ADDRESS_WORDS}


#: The n-gram's name in the books-vs-sentence table.
NGRAM_NAME = "3-gram (Kneser-Ney)"


def books_vs_sentence(models: Mapping[str, object], ngram=None, ngram_name: str = NGRAM_NAME,
                      ngram_tokenizer=None) -> pd.DataFrame:
    """One row per (model, reading): the probabilities of the female forms of address (miss, ma'am,
    madam; summed) and of "sir" at the bartender's blank, and log(P(female) / P(sir)) in nats: > 0
    means the model says miss/ma'am/madam, < 0 sir. The prior-only reading shows what the books
    taught the model; the girl/boy readings show how far the sentence moves it."""
    texts = _address_texts()
    rows = []
    sources = [(name, lambda t, m=m: address_probs_model(m, t)) for name, m in models.items()]
    if ngram is not None:
        tok = ngram_tokenizer or next(iter(models.values())).tokenizer
        sources.append((ngram_name, lambda t: address_probs_ngram(ngram, tok, t)))
    for name, fn in sources:
        for label, key in ADDRESS_READINGS:
            p = fn(texts[key])
            fem = p["miss"] + p["ma'am"] + p["madam"]
            rows.append({"model": name, "reading": label, "key": key, **{f"P({w})": p[w] for w in ADDRESS_WORDS},
                         "P(female address)": fem,
                         "log ratio": math.log(max(fem, 1e-30)) - math.log(max(p["sir"], 1e-30)),
                         "says": "miss / ma'am / madam" if fem > p["sir"] else "sir"})
    return pd.DataFrame(rows)


def books_vs_sentence_summary(df: pd.DataFrame) -> list[str]:
    """Plain sentences for the page, one per model, built from the numbers (never claiming more)."""
    out = []
    for name, g in df.groupby("model", sort=False):
        r = {row["key"]: row for _, row in g.iterrows()}
        girl, boy, prior = r["girl"], r["boy"], r["prior"]
        moved = girl["log ratio"] - boy["log ratio"]
        recall = ("follows the sentence: miss/ma'am/madam after girl/she, sir after boy/he"
                  if girl["log ratio"] > 0 > boy["log ratio"] else
                  f"says {girl['says']} after girl/she and {boy['says']} after boy/he")
        out.append(f"{name} {recall}. With no one named it says {prior['says']} "
                   f"(P(sir) = {prior['P(sir)']:.1%}, miss/ma'am/madam = {prior['P(female address)']:.1%}); "
                   f"girl/she instead of boy/he moves it by {moved:+.2f} nats toward the female forms.")
    return out


#: A prior whose log(P(miss + ma'am + madam) / P(sir)) is within this many nats of 0 (a factor of
#: 1.25 either way) is called "about even"; anything further is said to lean, with its factor.
EVEN_NATS = math.log(1.25)


def prior_phrase(row) -> str:
    """How a model's prior (the no-one-named reading) stands, from its numbers: "is about even (…)",
    "leans to the female forms (…, 2.4×)" or "leans to “sir” (…, 2.7×)"."""
    fem, sir, lr = float(row["P(female address)"]), float(row["P(sir)"]), float(row["log ratio"])
    nums = f"miss/ma'am/madam {fem:.1%} against sir {sir:.1%}"
    if abs(lr) < EVEN_NATS:
        return f"is about even ({nums})"
    if lr > 0:
        return f"leans to the female forms ({nums}, {math.exp(lr):.1f}×)"
    return f"leans to “sir” ({nums}, {math.exp(-lr):.1f}× for sir)"


def books_vs_sentence_story(df: pd.DataFrame, faithful: str, balanced: str | None = None,
                            ngram: str | None = None) -> tuple[str | None, list[str]]:
    """The lesson's explanation beside the books-vs-sentence bars, each claim read off `df`
    (books_vs_sentence): (the opening, on the faithful model's prior; None without that model) and the
    closing sentences: whether the balanced model's prior is even or leans (and which way), how far the
    sentence moves each model, and whether the n-gram tells the girl from the boy. Plain text; the page
    escapes it."""
    rows = {(r["model"], r["key"]): r for _, r in df.iterrows()}
    have = set(df["model"])

    def moved(name):
        return float(rows[(name, "girl")]["log ratio"] - rows[(name, "boy")]["log ratio"])

    intro, out = None, []
    if faithful in have:
        p = rows[(faithful, "prior")]
        says = ("so a model trained on them alone expects “sir” when nobody has been named"
                if p["log ratio"] <= -EVEN_NATS else "yet a model trained on them alone does not expect “sir” "
                "more when nobody has been named")
        intro = ("Two forces decide the blank. The books: in Austen and Conan Doyle a bartender, a servant or a "
                   f"clerk says “sir” far more often than “madam”, {says}: {faithful}'s prior {prior_phrase(p)}. "
                   "The sentence: “girl” and “she”, twenty words back, should move it toward “miss”.")
    if balanced in have:
        p = rows[(balanced, "prior")]
        lr = float(p["log ratio"])
        f_lr = float(rows[(faithful, "prior")]["log ratio"]) if faithful in have else None
        if abs(lr) < EVEN_NATS:
            verdict = f"its prior {prior_phrase(p)}, so the sentence has to decide"
        elif f_lr is not None and abs(f_lr) >= EVEN_NATS and (lr > 0) != (f_lr > 0):
            verdict = (f"its prior {prior_phrase(p)}: the swap did not make it even, it moved it past even, "
                       f"the other way from {faithful}'s")
        elif f_lr is not None and abs(f_lr) >= EVEN_NATS:
            verdict = (f"its prior still {prior_phrase(p)}: "
                       + ("less" if abs(lr) < abs(f_lr) else "no less") + f" than {faithful}'s, and not even")
        else:
            verdict = f"its prior {prior_phrase(p)}: not even"
        line = (f"{balanced} was fine-tuned on the same books plus a copy in which he/she, sir/madam, Mr/Mrs and "
                f"the characters' first names are swapped. With no one named {verdict}. "
                f"Girl/she instead of boy/he moves it by {moved(balanced):+.2f} nats")
        if faithful in have:
            line += f" ({faithful}: {moved(faithful):+.2f})"
        if f_lr is not None:
            line += (". Same network, same books: the prior moved because the counts moved" if abs(lr - f_lr) >= EVEN_NATS
                     else ". Same network, same books, other counts: yet the prior barely moved")
        out.append(line + ".")
    out.append("This is where bias lives: not in a rule someone wrote, but in the counts of the training text.")
    if ngram in have:
        same = abs(moved(ngram)) < 1e-9
        out.append(f"The {ngram} sees the last two words only (“Certainly ,”): "
                   + ("it gives the girl and the boy the same numbers, whatever the counts say." if same else
                      f"even so the girl and the boy differ by {moved(ngram):+.2f} nats for it."))
    return intro, out


def books_vs_sentence_figure(df: pd.DataFrame, height: int = 380) -> go.Figure:
    """Grouped bars: log(P(miss + ma'am + madam) / P(sir)) per reading, one colour per model."""
    fig = go.Figure()
    for j, (name, g) in enumerate(df.groupby("model", sort=False)):
        fig.add_bar(x=[html.escape(str(v)) for v in g["reading"]], y=g["log ratio"], name=html.escape(str(name)),
                    marker_color=_LINE_COLOURS[j % len(_LINE_COLOURS)],
                    customdata=np.stack([g["P(female address)"], g["P(sir)"]], 1),
                    hovertemplate="%{x}<br>log ratio %{y:+.2f} nats<br>P(miss+ma'am+madam) %{customdata[0]:.2%}"
                                  "<br>P(sir) %{customdata[1]:.2%}<extra>" + html.escape(str(name)) + "</extra>")
    fig.add_hline(y=0, line_color="#555", line_width=1)
    fig.update_layout(barmode="group", height=height, margin=dict(l=60, r=20, t=50, b=40),
                      title="Above 0: miss / ma'am / madam · below 0: sir",
                      yaxis_title="log P(miss+ma'am+madam) − log P(sir)", legend=dict(orientation="h", y=-0.15), paper_bgcolor="white",
                      plot_bgcolor="white")
    return fig
