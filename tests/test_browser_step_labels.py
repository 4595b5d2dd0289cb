"""Explore's step view (issue 22, item 13): the Δh / Δc unit labels the player draws on its canvas never
overlap, at any token (player.js keeps the boxes of the labels it placed in the canvas's data-labels)."""
from __future__ import annotations

import json

from browser_support import BROWSER_MARKS

pytestmark = BROWSER_MARKS
PLAYER = '[data-testid="player"]'


def _labels(pg) -> list[list]:
    return pg.evaluate("() => Array.from(document.querySelectorAll('[data-testid=\"step-change\"] canvas'))"
                       ".map(c => c.dataset.labels === undefined ? null : c.dataset.labels)")


def test_step_view_unit_labels_do_not_overlap(server, pg):
    pg.goto(server)
    pg.wait_for_function("() => { const p = document.querySelector('" + PLAYER + "');"
                         " return p && p.dataset.drawn && !p.classList.contains('rsx-waiting'); }")
    seen = 0
    for step in range(12):
        pos = pg.evaluate("() => document.querySelector('[data-testid=\"step-change\"]').dataset.position")
        got = _labels(pg)
        assert got and all(g is not None for g in got), "the step view keeps no label boxes"
        for canvas in got:
            boxes = json.loads(canvas)
            seen += len(boxes)
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    apart = a[2] <= b[1] or b[2] <= a[1] or a[4] <= b[3] or b[4] <= a[3]
                    assert apart, f"at token {pos}: labels u{a[0]} and u{b[0]} overlap ({a}, {b})"
        pg.locator(f"{PLAYER} .rsx-back").click()              # Explore opens on the last token
        pg.wait_for_function("(p0) => document.querySelector('[data-testid=\"step-change\"]').dataset.position"
                             " !== p0", arg=pos)
    assert seen > 0
