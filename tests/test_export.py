"""Export: each file is opened by the library that reads it (pandas/pyarrow, PIL, an XML and an HTML
parser), and the "copy as Python" snippet rebuilds the same figure."""
from __future__ import annotations

import html.parser
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from explorer import ExplorerError, load_model
from explorer.cli import main
from explorer.present import export as X

TEXT = "Mary loves John . John loves Mary ."
CHROMIUM_OK = Path(X.CHROMIUM).exists()
try:
    import kaleido  # noqa: F401
    KALEIDO = True
except ImportError:  # pragma: no cover
    KALEIDO = False
needs_kaleido = pytest.mark.skipif(not (CHROMIUM_OK and KALEIDO),
                                   reason=f"PNG/SVG export needs kaleido and Chromium at {X.CHROMIUM}")


@pytest.fixture(scope="module")
def model(models_dir):
    return load_model(models_dir / "tiny-lstm")


@pytest.mark.parametrize("what", ["states", "predictions"])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_data_files_read_back_equal_to_the_trace(model, what, fmt):
    tr = model.trace(TEXT)
    want = X.data_frame(tr, what)
    data = X.export(model, TEXT, what, fmt)
    if fmt == "csv":
        got = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    elif fmt == "parquet":
        got = pq.read_table(io.BytesIO(data)).to_pandas()
        assert pq.read_schema(io.BytesIO(data)).names == list(want.columns)
    else:
        got = pd.DataFrame(json.loads(data))
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    if what == "states":
        assert set(got["quantity"]) == {"h", "c", "i", "f", "g", "o"}
        assert abs(got["value"].to_numpy() - want["value"].to_numpy()).max() < 1e-6
        assert list(got["token"][:3]) == ["<eos>"] * 3
    else:
        assert list(got["token"]) == list(want["token"])


class _Scripts(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.src, self.inline, self.links = [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.src.append(a["src"])
            else:
                self.inline += 1
        if tag == "link" and a.get("href"):
            self.links.append(a["href"])


def test_html_is_self_contained(model):
    data = X.export(model, TEXT, "figure:heatmaps", "html")
    p = _Scripts()
    p.feed(data.decode("utf-8"))
    assert p.src == [] and p.links == []          # nothing fetched: no CDN, works offline
    assert p.inline >= 2 and b"Plotly.newPlot" in data and len(data) > 1_000_000   # plotly.js inlined


@needs_kaleido
@pytest.mark.slow
def test_png_and_svg_through_kaleido_and_chromium(model, tmp_path, capsys):
    from PIL import Image
    rc = main(["export", "--model", str(model.path), "--text", TEXT, "--what", "figure:step", "--format", "png",
               "--out", str(tmp_path / "step.png")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bytes"] == (tmp_path / "step.png").stat().st_size
    with Image.open(tmp_path / "step.png") as im:
        im.verify()
    with Image.open(tmp_path / "step.png") as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and sum(1 for n in im.convert("L").histogram() if n) > 10
    svg = X.export(model, TEXT, "figure:heatmaps", "svg")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and b"Mary" in svg


def test_wrong_combinations_say_what_to_do(model, tmp_path, capsys):
    with pytest.raises(ExplorerError, match="is data: write it as csv, parquet, json"):
        X.export(model, TEXT, "states", "png")
    with pytest.raises(ExplorerError, match="is a figure: write it as png, svg, html"):
        X.export(model, TEXT, "figure:step", "csv")
    with pytest.raises(ExplorerError, match="unknown figure 'nope'"):
        X.export(model, TEXT, "figure:nope", "html")
    with pytest.raises(ExplorerError, match="layer 5 does not exist: the model has 2 layers"):
        X.export(model, TEXT, "figure:step", "html", layer=5)
    with pytest.raises(ExplorerError, match="layers are numbered from 1, the bottom layer"):
        X.export(model, TEXT, "figure:step", "html", layer=0)
    rc = main(["export", "--model", str(model.path), "--text", TEXT, "--what", "everything", "--format", "csv",
               "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --what must be states, predictions or figure:NAME")
    assert not (tmp_path / "x.csv").exists()


def test_cli_writes_the_file_and_prints_json(model, tmp_path, capsys):
    out = tmp_path / "sub" / "pred.csv"
    rc = main(["export", "--model", str(model.path), "--text", TEXT, "--what", "predictions", "--format", "csv",
               "--out", str(out)])
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    assert got["out"] == str(out) and got["bytes"] == out.stat().st_size
    assert len(pd.read_csv(out)) == len(model.trace(TEXT))


def test_copy_as_python_rebuilds_the_view(model):
    code = X.python_snippet(str(model.path), TEXT, layer=1, position=3, figure="step")
    ns: dict = {}
    exec(compile(code, "<snippet>", "exec"), ns)
    want = X.build_figure("step", model.trace(TEXT), model, 1, 3)
    assert ns["fig"].to_dict() == want.to_dict()
    assert ns["states"].equals(model.trace(TEXT).to_frame())


@pytest.mark.parametrize("name", list(X.FIGURES))
def test_figure_data_is_tidy_and_true(model, name):
    """The Download menu under every chart gives the figure's numbers (figure_frame)."""
    tr = model.trace(TEXT)
    fig = X.build_figure(name, tr, model, 2, 3)                # layer 2: the top layer, tr.layers[1]
    df = X.figure_frame(fig)
    assert list(df.columns)[:5] == ["trace", "type", "x", "y", "value"] and len(df) > 0   # then the labels
    back = pq.read_table(io.BytesIO(X.frame_bytes(df, "parquet"))).to_pandas()
    assert len(back) == len(df)
    if name == "heatmaps":                                   # z of the h heatmap is h itself: [unit, token]
        h = df[(df["trace"] == df["trace"].iloc[0]) & (df["type"] == "heatmap")]
        got = h.pivot(index="y", columns="x", values="value").to_numpy()
        assert abs(got - tr.layers[1].h.T).max() < 1e-6
