"""Importing a PyTorch checkpoint and downloading in the real app (headless Chromium): upload a pytorch/examples
RNNModel state dict with its vocabulary, read what was inferred, use it, and see Explore trace it with
the imported vocabulary; a hostile pickle is refused in the sidebar; the downloads open with their readers.
Screenshots: docs/screenshots/import.png, import-explore.png, export.png.
"""
from __future__ import annotations

import builtins
import json
import time
from pathlib import Path

import pytest
import torch

from browser_support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, SHOTS, running_server
from test_importer import WORDS, _examples_model

pytestmark = BROWSER_MARKS
SIDEBAR = '[data-testid="stSidebar"]'
PLAYER = '[data-testid="player"]'


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-import-models")
    (root / "tiny-lstm").symlink_to(models_dir / "tiny-lstm", target_is_directory=True)
    with running_server(root, tmp_path_factory.mktemp("server-import") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def pg(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1440, "height": 1100})
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)
        page.wait_for_selector(PLAYER)
        page.errors = errors
        yield page
        b.close()


def no_exceptions(pg):
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, exc.first.inner_text()
    assert not pg.errors, pg.errors


class _WritesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.path!r}, 'w').write('pwned')",))


def _upload(pg, files):
    pg.locator(f'{SIDEBAR} [data-testid="stFileUploaderDropzoneInput"]').set_input_files(files=files)


def test_01_import_a_pytorch_examples_checkpoint(pg, tmp_path):
    m = _examples_model("LSTM", 12, 20)
    buf = tmp_path / "w.pt"
    torch.save(m.state_dict(), buf)
    pg.get_by_text("Upload a model bundle (.zip) or a PyTorch checkpoint").click()
    _upload(pg, [{"name": "model_state.pt", "mimeType": "application/octet-stream", "buffer": buf.read_bytes()},
                 {"name": "vocab.json", "mimeType": "application/json", "buffer": json.dumps(WORDS).encode()}])
    report = pg.locator(".st-key-import_report")
    report.wait_for()
    text = report.inner_text()
    assert "pytorch/examples word_language_model" in text
    assert "LSTM · 2 layers × 20 units · embedding 12" in text and "untied decoder" in text
    assert "split on whitespace" in text
    no_exceptions(pg)
    pg.mouse.move(2, 2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.set_viewport_size({"width": 1440, "height": 2000})     # the whole expander in the picture
    time.sleep(1.0)
    pg.locator(f'{SIDEBAR} [data-testid="stExpander"]').screenshot(path=str(SHOTS / "import.png"))
    pg.set_viewport_size({"width": 1440, "height": 1100})
    pg.locator(".st-key-imp_use button").click()
    pg.get_by_text("Using model_state (imported: model_state.pt)").wait_for()
    # Explore now reads the text with the imported model: its words, case kept, "<unk>" elsewhere
    box = pg.locator('.st-key-text textarea')
    box.fill("The cat sat on the mat .")
    box.press("Control+Enter")
    pg.wait_for_function("() => { const s = document.querySelector('[data-testid=\"token-strip\"]');"
                         " return s && s.innerText.includes('The') && s.innerText.includes('mat'); }")
    sel = pg.locator(f'{SIDEBAR} [data-testid="stSelectbox"] input').first.input_value()
    assert "imported" in sel
    no_exceptions(pg)
    pg.screenshot(path=str(SHOTS / "import-explore.png"))


def test_02_hostile_pickle_is_refused(pg, tmp_path):
    target = Path("/tmp") / f"rsx-pwned-{time.time_ns()}.txt"
    bad = tmp_path / "evil.pt"
    torch.save({"rnn.weight_ih_l0": torch.zeros(4, 1), "x": _WritesAFile(target)}, bad)
    _upload(pg, [{"name": "evil.pt", "mimeType": "application/octet-stream", "buffer": bad.read_bytes()},
                 {"name": "vocab.json", "mimeType": "application/json", "buffer": json.dumps(WORDS).encode()}])
    err = pg.locator(f'{SIDEBAR} [data-testid="stAlertContentError"]')
    err.wait_for()
    msg = err.inner_text()
    assert "evil.pt cannot be imported: evil.pt needs Python objects" in msg and "refused unopened" in msg
    assert "torch.save(model.state_dict(), 'weights.pt')" in msg
    assert not target.exists()
    no_exceptions(pg)


def test_03_downloads_open_with_their_readers(pg, tmp_path):
    """The Explore page's downloads (ui/downloads.py): Parquet read by pyarrow, PNG by PIL (Kaleido in
    the system Chromium), HTML with no external script; screenshot docs/screenshots/export.png."""
    import html.parser

    import pyarrow.parquet as pq
    from PIL import Image

    pg.get_by_text("Download · copy as Python").click()
    got = {}
    pg.locator(".st-key-dl_fig__dl_png button").first.click()    # PNG/SVG are drawn first, then saved
    pg.locator(".st-key-dl_fig__save_png button").first.wait_for(timeout=90_000)
    for key, name in (("dl_states_parquet", "states.parquet"), ("dl_fig__save_png", "fig.png"),
                      ("dl_fig_html", "fig.html")):
        with pg.expect_download(timeout=90_000) as d:
            pg.locator(f".st-key-{key} button").first.click()
        got[name] = tmp_path / name
        d.value.save_as(got[name])
    t = pq.read_table(got["states.parquet"])
    assert t.column_names == ["position", "token", "layer", "quantity", "unit", "value"] and t.num_rows > 100
    with Image.open(got["fig.png"]) as im:
        assert im.format == "PNG" and im.size[0] > 800

    class Scripts(html.parser.HTMLParser):
        src: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "script" and dict(attrs).get("src"):
                self.src.append(dict(attrs)["src"])
    p = Scripts()
    p.feed(got["fig.html"].read_text(encoding="utf-8"))
    assert p.src == [] and "Plotly.newPlot" in got["fig.html"].read_text(encoding="utf-8")
    assert "E.load_model(" in pg.locator('[data-testid="stCode"]').last.inner_text()
    no_exceptions(pg)
    pg.locator('[data-testid="stCode"]').last.scroll_into_view_if_needed()
    pg.mouse.move(2, 2)
    time.sleep(0.5)
    pg.screenshot(path=str(SHOTS / "export.png"))


def test_04_every_chart_has_a_download_menu(pg, tmp_path, server):
    """widgets.chart puts a Download menu under every Plotly chart: the figure as SVG (Kaleido) and its
    data as CSV (explorer.present.export.figure_frame). Checked on the Contrast page."""
    import xml.etree.ElementTree as ET

    import pandas as pd

    pg.goto(server + "/contrast")
    menu = pg.locator('[data-testid="stPopover"]').first
    menu.wait_for()
    menu.locator("button").click()
    body = pg.locator('[data-testid="stPopoverBody"]')
    body.wait_for()
    with pg.expect_download(timeout=90_000) as d:
        body.locator('button:has-text("CSV")').click()
    d.value.save_as(tmp_path / "fig.csv")
    df = pd.read_csv(tmp_path / "fig.csv")
    assert list(df.columns)[:5] == ["trace", "type", "x", "y", "value"] and len(df) > 0
    body.locator('button:has-text("SVG")').first.click()          # drawn first, then saved
    if not body.is_visible():
        menu.locator("button").click()
    save = pg.locator('[data-testid="stPopoverBody"] [class*="__save_svg"] button').first
    save.wait_for(timeout=90_000)
    with pg.expect_download(timeout=90_000) as d:
        save.click()
    d.value.save_as(tmp_path / "fig.svg")
    assert ET.parse(tmp_path / "fig.svg").getroot().tag.endswith("svg")
    no_exceptions(pg)
    pg.screenshot(path=str(SHOTS / "chart-download-menu.png"))
