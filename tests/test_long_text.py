"""Long texts (issue 22, items 1 and 2): every analysis behind a page that takes text works in bounded
memory on a 5,000-word passage, or refuses it before starting with its stated limit; long
computations run in blocks that a caller can stop between; the memory matrix is a window.

The peak-memory tests run each analysis in a fresh process (tests/long_text_support.py) on the
opening of the held-out Austen novel shipped in corpora/heldout, with the shipped fiction-lstm, and
read the peak resident set (Linux VmHWM, reset before the case). No wall-clock time is asserted."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from explorer import trace
from explorer.analysis import attribution as AT
from explorer.analysis import intervene as IV
from explorer.analysis import memory as ME
from explorer.analysis import patch as PA

import long_text_support as LT

#: The most a request may add to the server's resident set, in MB (the bound the issue asks for: the
#: patch grid tried 51 GB before, occlusion 26 GB, Intervene's log-probabilities took 1.3 GB).
PEAK_BOUND_MB = 800

GIRL = 'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said "Certainly,'
BOY = 'A boy walked into a bar, and he said "Can I have a drink please?" The bartender said "Certainly,'

needs_shipped = pytest.mark.skipif(not (LT.FICTION / "weights.safetensors").is_file()
                                   or not (LT.corpus_dir() / "austen_persuasion.txt").is_file(),
                                   reason="needs pretrained/fiction-lstm and corpora/heldout in the checkout")


def _run_case(case: str, words: int = 5000) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "long_text_support.py"), case, "--words", str(words),
                          "--limit-gb", "6"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ peak memory
#: Every analysis a page that takes text runs (Explore, Patch, Memory, Intervene, Contrast, Generate,
#: Compare), and what it may answer: a result, or a refusal that states its limit.
PAGES = {"explore": None, "patch": "patching works on up to", "patch_one": None, "memory": None,
         "attribution_all": None, "intervene": "intervening works on up to",
         "unit_effects": "ranking the units works on up to", "contrast": None, "generate": None, "compare": None}


@needs_shipped
@pytest.mark.parametrize("case", list(PAGES))
def test_peak_memory_of_each_page_on_5000_words(case):
    r = _run_case(case)
    refusal = PAGES[case]
    if refusal is None:
        assert r["error"] is None, r
    else:
        assert r["error"] is not None and refusal in r["error"] and f"{r['tokens']:,}" in r["error"], r
    assert r["tokens"] > 3000, r          # the passage, clipped to MAX_CHARS as every page clips it
    assert r["peak_growth_mb"] < PEAK_BOUND_MB, r


# ---------------------------------------------------------------------------------------- patch
def test_patch_refuses_beyond_its_limit_before_running(tiny_lstm, monkeypatch):
    long_a, long_b = " ".join([GIRL] * 12), " ".join([BOY] * 12)
    n, why = PA.size_limit(tiny_lstm, long_a, long_b)
    assert n > PA.MAX_TOKENS
    assert why.startswith(f"patching works on up to {PA.MAX_TOKENS:,} tokens; your texts have {n:,}")
    ran = []
    monkeypatch.setattr(PA, "_prepare", lambda *a, **k: ran.append(1))
    with pytest.raises(PA.InputError, match=f"patching works on up to {PA.MAX_TOKENS} tokens; your texts have {n}"):
        PA.patch_grid(tiny_lstm, long_a, long_b, "miss", "sir")
    assert not ran                        # refused before anything ran
    assert PA.size_limit(tiny_lstm, GIRL, BOY)[1] is None


def test_patch_blocks_give_the_numbers_of_one_batch(tiny_lstm):
    one = PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir", block_bytes=10 ** 12)
    calls = []
    tiny = PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir", block_bytes=1,
                         progress=lambda f, what: calls.append(f))
    assert np.array_equal(one.metric, tiny.metric)
    assert one.metric_clean == tiny.metric_clean and one.metric_corrupt == tiny.metric_corrupt
    assert len(calls) == one.metric.size // 2 and calls == sorted(calls)    # blocks of two rows


def test_patch_can_be_stopped_between_blocks(tiny_lstm, monkeypatch):
    class Stop(Exception):
        pass

    done = []
    real = PA._continue

    def counted(*a):
        done.append(1)
        return real(*a)

    def stop(frac, what):
        if done:
            raise Stop

    monkeypatch.setattr(PA, "_continue", counted)
    with pytest.raises(Stop):
        PA.patch_grid(tiny_lstm, GIRL, BOY, "miss", "sir", block_bytes=1, progress=stop)
    assert len(done) == 1                 # the work ended with the block it was in


# ----------------------------------------------------------------------------------- intervene
def test_intervene_refuses_beyond_its_limit(tiny_lstm):
    text = " ".join([GIRL] * 60)
    n, why = IV.size_limit(tiny_lstm, text)
    assert n > IV.MAX_TOKENS and why.startswith(f"intervening works on up to {IV.MAX_TOKENS:,} tokens; "
                                                f"your text has {n:,}")
    with pytest.raises(IV.InputError, match="intervening works on up to"):
        IV.intervene(tiny_lstm, text, IV.Intervention(1, "h", (3,)))
    with pytest.raises(IV.InputError, match=f"ranking the units works on up to {IV.UNIT_MAX_TOKENS} tokens"):
        IV.unit_effects(tiny_lstm, " ".join([GIRL] * 5), 1, "h", "miss", "sir")


def test_intervene_reads_log_probabilities_in_blocks(tiny_lstm, monkeypatch):
    text = " ".join([GIRL] * 3)
    iv = IV.Intervention(1, "c", (3, 7), "set", 2.0)
    whole = IV.intervene(tiny_lstm, text, iv, words=("miss", "sir"))
    monkeypatch.setattr(IV, "LOGP_ROWS", 7)
    blocks = IV.intervene(tiny_lstm, text, iv, words=("miss", "sir"))
    for f in ("next_logp", "word_logp", "top_logp"):
        np.testing.assert_allclose(getattr(blocks, f), getattr(whole, f), atol=1e-5)
    full = np.argsort(-IV.log_probs(tiny_lstm.lm, np.array(whole.h[-1])), -1, kind="stable")[..., :whole.top_ids.shape[-1]]
    assert (blocks.top_ids == full).mean() > 0.99


# -------------------------------------------------------------------------------------- memory
def test_memory_matrix_is_a_window_ending_at_the_step(tiny_lstm):
    tr = trace(tiny_lstm, " ".join([GIRL] * 12))
    T = len(tr)
    assert T > ME.MATRIX_WINDOW
    mm = ME.memory_matrix(tr, 1, 5)
    assert mm.values.shape == (ME.MATRIX_WINDOW, ME.MATRIX_WINDOW) and mm.start == T - ME.MATRIX_WINDOW
    assert list(mm.positions) == list(range(T - ME.MATRIX_WINDOW, T)) and mm.steps == T
    full = ME.memory_matrix(tr, 1, 5, window=T)
    assert full.values.shape == (T, T)
    lo = mm.start
    np.testing.assert_allclose(mm.values, full.values[lo:, lo:], rtol=1e-9, atol=1e-12, equal_nan=True)
    # the column sums with the start state's part give c_t, in the window as in the whole
    np.testing.assert_allclose(np.nansum(mm.values, 0) + mm.initial, tr.layers[0].c[lo:, 5], rtol=1e-4, atol=1e-5)
    at = ME.memory_matrix(tr, 1, None, step=60, window=20)
    assert at.start == 41 and at.values.shape == (20, 20) and at.tokens == tuple(tr.words[41:61])


def test_fade_compares_distributions_in_blocks(tiny_lstm, tiny_rnn, monkeypatch):
    text = " ".join([GIRL] * 3)
    whole = ME.occlusion_fade(tiny_lstm, text)
    monkeypatch.setattr(ME, "FADE_ROWS", 5)
    blocks = ME.occlusion_fade(tiny_lstm, text)
    for col in ("dh", "tv", "kl"):
        np.testing.assert_allclose(blocks[col], whole[col], rtol=1e-4, atol=1e-6)   # float32 logits, in blocks


# --------------------------------------------------------------------------------- attribution
def test_attribution_scores_a_window_and_reads_the_rest_as_context(tiny_lstm):
    text = " ".join([GIRL] * 6)
    a = AT.attribute(tiny_lstm, text, None, "miss", versus="sir", window=40)
    T = len(a.tokens)
    assert a.window_start == T - 40
    for m, v in a.scores.items():
        assert len(v) == T and np.isnan(v[:a.window_start]).all(), m
    assert np.isfinite(a.scores["grad_x_input"][a.window_start:]).all()
    assert a.completeness_relative < 0.05
    whole = AT.attribute(tiny_lstm, text, None, "miss", versus="sir", window=T)
    assert whole.window_start == 0
    assert abs(whole.logprob - a.logprob) < 1e-4      # the same prediction, read with its context


def test_attribution_occlusion_in_blocks_and_stoppable(tiny_lstm):
    text = " ".join([GIRL] * 2)
    one = AT.attribute(tiny_lstm, text, None, "miss", methods=("occlusion",), block_bytes=10 ** 12)
    seen = []
    blk = AT.attribute(tiny_lstm, text, None, "miss", methods=("occlusion",), block_bytes=1,
                       progress=lambda f, what: seen.append(what))
    np.testing.assert_allclose(blk.scores["occlusion"], one.scores["occlusion"], atol=1e-5, equal_nan=True)
    assert len(seen) > 2

    class Stop(Exception):
        pass

    def stop(f, what):
        if f > 0:
            raise Stop
    with pytest.raises(Stop):
        AT.attribute(tiny_lstm, text, None, "miss", methods=("occlusion",), block_bytes=1, progress=stop)


# --------------------------------------------------------------------------------- the pages
def test_patch_page_states_its_limit_and_refuses_a_long_pair(models_dir, monkeypatch):
    from apptest_support import assert_clean, open_page
    at = open_page(models_dir, monkeypatch, "ui/pages/patch.py")
    assert any(f"up to {PA.MAX_TOKENS:,} tokens" in c.value for c in at.caption)
    at.text_area(key="pt_clean").input(" ".join([GIRL] * 12))
    at.text_area(key="pt_corrupt").input(" ".join([BOY] * 12)).run()
    assert_clean(at)
    msgs = [w.value for w in at.warning]
    assert any(m.lower().startswith(f"patching works on up to {PA.MAX_TOKENS:,} tokens; your texts have ")
               for m in msgs), msgs
    assert not at.get("plotly_chart")     # nothing was computed or drawn


def test_memory_page_sends_a_window_of_the_matrix(models_dir, monkeypatch):
    from apptest_support import array, assert_clean, html_with, open_page, specs
    at = open_page(models_dir, monkeypatch, "ui/pages/memory.py")
    text = " ".join([GIRL] * 12)
    at.text_area(key="mem_text").input(text).run()
    assert_clean(at)
    heat = [s for s in specs(at) if s["data"] and s["data"][0].get("type") == "heatmap"]
    assert heat
    z = array(heat[0]["data"][0]["z"])
    assert z.shape == (ME.MATRIX_WINDOW, ME.MATRIX_WINDOW)
    assert any(f"last {ME.MATRIX_WINDOW} steps" in c.value for c in at.caption)
    chips = html_with(at, 'data-testid="attr-strip"')
    assert chips.count("data-pos=") <= AT.WINDOW             # the scored window only, not the whole text
    assert any("read as context and not scored" in c.value for c in at.caption)
