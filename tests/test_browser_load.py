"""Several sessions at once on one server (benchmarks/app_load.py, in small): 4 Chromium contexts
type their own sentences into the Explore page at the same time. No page may show an error element,
and no page may ever show another page's tokens (every label set its token strip shows is recorded
by a MutationObserver). Times are measured by the benchmark, not asserted here."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from browser_support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, ROOT, running_server

pytestmark = BROWSER_MARKS
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def load_models(models_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("load-models")
    (root / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    return root


def test_four_sessions_at_once_never_cross(load_models, tmp_path):
    from playwright.async_api import async_playwright

    import app_load

    async def go(url):
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                return await app_load.run_pages(browser, url, 4, 4, {"width": 1200, "height": 850})
            finally:
                await browser.close()

    with running_server(load_models, tmp_path / "streamlit.log") as url:
        got = asyncio.run(go(url))
    assert got["failures"] == []
    assert len(got["times"]) == 16
    assert got["errors"] == 0
    assert got["observed"] == [4, 4, 4, 4]       # the recorder works: it saw each page's own sentences
    assert got["crossed"] == []
