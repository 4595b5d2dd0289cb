"""The presenter view on a 1024 x 768 projector (issue 22, item 4), in headless Chromium on the shipped
models: every lesson step opened from its link shows its strip, readout and main chart on one screen
(the page scrolls to the step's content, lecture.anchor, when the step opens and on a clicker key);
Explore shows its heatmap and the next-word bars without scrolling. Bounding boxes, not pixels."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_support import BROWSER_MARKS, ROOT, cold_page, no_exceptions, running_server

pytestmark = BROWSER_MARKS
PRETRAINED = ROOT / "pretrained"
W, H = 1024, 768
TOP = 40            # Streamlit's header bar covers the top of the main area
T = 150_000

#: step -> what must be on screen: its strip / readout / main chart (CSS selectors)
LESSON = {
    "reading": ['[data-testid="token-strip"]', '[data-testid="reading-readout"]', ".st-key-lesson_fig_topk"],
    "order": ['[data-testid="order-readout"]', ".st-key-lesson_fig_order_next", ".st-key-lesson_fig_order_lines"],
    "bartender": ['[data-testid="bartender-readout"]', ".st-key-lesson_fig_address"],
    "unrolled": [".st-key-lesson_fig_unrolled"],
    "shapes": ['[data-testid="shape-readout"]', ".st-key-lesson_fig_shape"],
    "shapes&shape=one-to-many": ['[data-testid="shape-readout"]', ".st-key-lesson_fig_shape"],
    "shapes&shape=many-to-one": ['[data-testid="shape-readout"]', ".st-key-lesson_fig_shape"],
    "shapes&shape=encoder-decoder": ['[data-testid="shape-readout"]', ".st-key-lesson_fig_shape"],
    "cells": ['[data-testid="cells-readout"]', '[data-testid="cell-text"]'],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (PRETRAINED / "fiction-lstm-balanced" / "weights.safetensors").is_file():
        pytest.skip(f"the shipped models are not in {PRETRAINED}")
    with running_server(PRETRAINED, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture
def projector(browser):
    with cold_page(browser, W, H, T) as pg:
        yield pg


def settle(pg, ms: int = 1500):
    pg.wait_for_timeout(600)
    pg.wait_for_function("() => document.querySelector('[data-test-script-state]')"
                         "?.getAttribute('data-test-script-state') !== 'running'")
    pg.wait_for_timeout(ms)


def box(pg, sel: str):
    """(top, bottom) of the first visible element matching sel, in viewport pixels; None when absent."""
    return pg.evaluate("(s) => { const e = Array.from(document.querySelectorAll(s)).find(x => x.checkVisibility());"
                       " if (!e) return null; const r = e.getBoundingClientRect(); return [r.top, r.bottom]; }", sel)


def on_screen(pg, sels, min_visible: float | None = None):
    """Every selector's box lies within [TOP, H] (with min_visible: at least that many pixels of it)."""
    got = {s: box(pg, s) for s in sels}
    for s, b in got.items():
        assert b is not None, (s, got)
        if min_visible is None:
            assert b[0] >= TOP - 1 and b[1] <= H + 1, (s, got)
        else:
            assert b[0] >= TOP - 1 and min(b[1], H) - b[0] >= min_visible, (s, got)
    return got


@pytest.mark.parametrize("step", list(LESSON))
def test_each_lesson_step_fits_one_projector_screen(server, projector, step):
    if step == "cells" and not (PRETRAINED / "shakespeare-char").is_dir():
        pytest.skip("shakespeare-char is missing")
    pg = projector
    pg.goto(f"{server}/lesson?step={step}&present=1")
    pg.wait_for_selector(LESSON[step][0], state="attached")
    settle(pg)
    pg.wait_for_function("() => document.querySelector('section[data-testid=stSidebar]')?.dataset.collapsed === 'true'")
    settle(pg, 800)
    # the cells step's coloured passage is long: its first lines are what must show
    on_screen(pg, LESSON[step][:-1]) if step == "cells" else on_screen(pg, LESSON[step])
    if step == "cells":
        on_screen(pg, LESSON[step][-1:], min_visible=200)
    no_exceptions(pg, pg.errors)


def test_pagedown_keeps_the_reading_step_on_screen(server, projector):
    pg = projector
    pg.goto(f"{server}/lesson?step=reading&present=1&pos=1")
    pg.wait_for_selector('[data-testid="reading-readout"]')
    settle(pg)
    pg.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollTo?.(0, 0)")   # scrolled back up by hand
    for want in ("2", "3"):
        pg.keyboard.press("PageDown")
        pg.wait_for_function(f"() => document.querySelector('[data-testid=token-strip]')?.dataset.selected === '{want}'")
        settle(pg)
        on_screen(pg, LESSON["reading"])
    no_exceptions(pg, pg.errors)


def test_explore_shows_the_heatmap_and_the_next_word_bars(server, projector):
    pg = projector
    pg.goto(f"{server}/?present=1")
    pg.wait_for_selector(".rsx-heat canvas")
    settle(pg)
    on_screen(pg, ['[data-testid="token-strip"]', '[data-testid="step-readout"]', '[data-testid="step-topk"]',
                   ".rsx-heatcell"])
    no_exceptions(pg, pg.errors)
