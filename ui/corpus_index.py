"""The corpus and its index, for the Corpus and Units pages (and Contrast's trajectories): choosing the
corpus (the default books, a folder, uploaded .txt files), getting its index for the model in the
sidebar (built on first use behind an st.status with progress), the cached queries over it, and the
trajectory chart both Corpus and Contrast draw. Indexes live in the user's cache directory
(explorer.corpus.index.default_index_dir), never in the repository.

An opened index is a resource (st.cache_resource: its arrays on disk, read by every query); the query
results are cached per model identity and index with ui.cached.per_model."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import settings
from explorer.corpus import index, queries
from explorer.present import corpus_figures
from ui import ROOT, cached, session, widgets

SOURCES = ("Default: Persuasion + The Valley of Fear", "A folder on this machine", "Upload .txt files")
#: The app indexes h only (the hidden state every page shows): half the time and disk of h and c.
QUANTITIES = ["h"]
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def default_corpus() -> Path:
    """The default corpus: the two held-out books shipped in the repository, or the corpus
    RNN_EXPLORER_DEFAULT_CORPUS names (tests point it elsewhere)."""
    return settings.default_corpus(ROOT / "corpora" / "heldout")


def _uploads_dir(files) -> Path:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.getvalue())
    d = index.default_index_dir().parent / "uploads" / h.hexdigest()[:16]
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            (d / Path(f.name).name).write_bytes(f.getvalue())
    return d


def corpus_picker() -> Path | None:
    """Sidebar: where the corpus comes from. Returns its path, or None (with a note) when not chosen yet."""
    ss = st.session_state
    ss.setdefault("corpus_src", SOURCES[0])
    st.sidebar.subheader("Corpus")
    src = st.sidebar.radio("Corpus", SOURCES, key="corpus_src", label_visibility="collapsed",
                           persist_state="session")
    if src == SOURCES[0]:
        return default_corpus()
    if src == SOURCES[1]:
        ss.setdefault("corpus_dir", "")
        d = st.sidebar.text_input("Folder (its .txt files are indexed)", key="corpus_dir", persist_state="session")
        if not d.strip():
            st.info("Type the path of a folder of .txt files in the sidebar.", icon=":material/folder:")
            return None
        return Path(d.strip()).expanduser()
    files = st.sidebar.file_uploader("Text files", type=["txt"], accept_multiple_files=True, key="corpus_upload")
    if not files:
        st.info("Upload one or more .txt files (UTF-8) in the sidebar.", icon=":material/upload:")
        return None
    return _uploads_dir(files)


# ------------------------------------------------------------------------------ opening and building
@st.cache_resource(max_entries=8, show_spinner=False)
def _open(path: str, stamp: float) -> index.CorpusIndex:
    """A resource, not a result: the index opened once (its card and token table read, its arrays on disk)."""
    return index.open_index(path)


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def current_index(ctx, corpus: Path, build: bool | None = None) -> index.CorpusIndex | None:
    """The index of `corpus` for the sidebar's model: opened from the cache, or built now (always for the
    default corpus, after a button for the user's own). Returns None after saying why there is none."""
    model = ctx.model
    out = index.index_dir_for(model, corpus, QUANTITIES)
    card = out / "card.json"
    if card.is_file():
        idx = _open(str(out), card.stat().st_mtime)
        idx.check_model(model)
        return idx
    auto = corpus == default_corpus() if build is None else build
    if not auto:
        root, files = index.corpus_files(corpus)
        size = sum(f.stat().st_size for f in files)
        shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
        st.info(f"{len(files)} .txt file(s), {shown}, not indexed yet for {model.name}.",
                icon=":material/database:")
        if not st.button("Build the index", key="corpus_build", icon=":material/build:"):
            return None
    with _lock(str(out)):
        if not card.is_file():
            with st.status(f"Building the corpus index for {model.name}…", expanded=True) as status:
                st.write(f"Reading {corpus} as one continuous text per file; states go to `{out}`. "
                         "This happens once per model and corpus; an interrupted build continues.")
                bar = st.progress(0.0, text="starting")

                def tick(done, total):
                    bar.progress(min(1.0, done / max(1, total)), text=f"{done:,} of {total:,} tokens")

                index.build_index(model, corpus, out, quantities=QUANTITIES, progress=False, on_progress=tick)
                status.update(label="Corpus index ready", state="complete", expanded=False)
    return _open(str(out), card.stat().st_mtime)


def index_if_built(ctx, corpus: Path, note: str) -> index.CorpusIndex | None:
    """The index of `corpus` when it is built already; otherwise `note`, the corpus's size and a button that
    builds it. Never builds without the button: a page that only borrows the index stays fast."""
    if (index.index_dir_for(ctx.model, corpus, QUANTITIES) / "card.json").is_file():
        return current_index(ctx, corpus, build=False)
    slot = st.empty()
    with slot.container():
        st.caption(note)
        idx = current_index(ctx, corpus, build=False)
    if idx is not None:
        slot.empty()          # built just now by the button: the note, the button and the status go
    return idx


def stamp(idx: index.CorpusIndex) -> float:
    return (idx.path / "card.json").stat().st_mtime


def index_caption(idx: index.CorpusIndex) -> str:
    files = idx.files
    names = ", ".join(Path(f["path"]).stem for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"Corpus index: {idx.n_tokens:,} tokens from {len(files)} file(s) ({names}); "
            f"{', '.join(idx.quantities)} of every layer, stored in `{idx.path}`.")


def sidebar_and_index():
    """The page preamble: model, layer, corpus, index (or stop)."""
    ctx = session.require_model()
    layer = widgets.layer_picker(ctx)
    corpus = corpus_picker()
    if corpus is None:
        st.stop()
    with widgets.guard("the corpus index"):
        idx = current_index(ctx, corpus)
        if idx is not None:
            return ctx, layer, idx
    st.stop()


# ------------------------------------------------------------------------------------ cached queries
# Each is keyed by the model's identity (ctx) and the index's (path, card stamp); `idx` is the opened index.
@cached.per_model("projection", "Fitting the projection (IncrementalPCA over the index)…")
def _projection(_model, idx_path: str, idx_stamp: float, layer: int, q: str) -> queries.Projection:
    return queries.fit_projection(_open(idx_path, idx_stamp), layer, q)


def projection(ctx, idx: index.CorpusIndex, layer: int, q: str = "h") -> queries.Projection:
    return _projection(ctx, str(idx.path), stamp(idx), int(layer), q)


@cached.per_model("match")
def _match(model, idx_path: str, idx_stamp: float, text: str, s: int, e: int, layer: int, q: str, thr: float,
           quiet: bool, top: int, drop: int):
    idx = _open(idx_path, idx_stamp)
    if drop:
        n = len(queries.select(model, text, s, e, layer, q, thr, quiet).units)
        return queries.match(idx, model, text, s, e, layer, q, thr, top, quiet, min_units=max(1, n - drop))
    return queries.match(idx, model, text, s, e, layer, q, thr, top, quiet)


def match(ctx, idx: index.CorpusIndex, text: str, s: int, e: int, layer: int, q: str, thr: float, quiet: bool,
          top: int, drop: int):
    """Select -> match (after LSTMVis): the units on across tokens s..e-1 of `text`, and where else in
    the corpus they are on together (`drop` of them may be missing)."""
    return _match(ctx, str(idx.path), stamp(idx), E.clip_text(text)[0], int(s), int(e), int(layer), q,
                  float(thr), bool(quiet), int(top), int(drop))


@cached.per_model("unit_profile", "Reading the unit's values over the corpus…")
def _unit_profile(model, idx_path: str, idx_stamp: float, layer: int, q: str, unit: int):
    return queries.unit_profile(_open(idx_path, idx_stamp), layer, q, unit, top=12, model=model)


def unit_profile(ctx, idx: index.CorpusIndex, layer: int, q: str, unit: int):
    return _unit_profile(ctx, str(idx.path), stamp(idx), int(layer), q, int(unit))


@cached.per_model("rank_units", "Ranking every unit by AUC…")
def _rank_units(_model, idx_path: str, idx_stamp: float, layer: int, q: str, predicate: str):
    return queries.rank_units(_open(idx_path, idx_stamp), layer, q, predicate, top=20)


def rank_units(ctx, idx: index.CorpusIndex, layer: int, q: str, predicate: str):
    return _rank_units(ctx, str(idx.path), stamp(idx), int(layer), q, predicate)


# -------------------------------------------------------------------------------- the trajectories
def trajectory_chart(ctx, proj: queries.Projection, texts: list[str], key: str, labels: list[str] | None = None):
    """The texts' paths through the projection plane over the corpus density (Corpus and Contrast pages).
    Hover names each token; clicking a point opens that text in Explore with that token selected."""
    labels = labels or texts
    paths = [(lab, queries.trajectory(proj, ctx.model, t)) for t, lab in zip(texts, labels)]
    ev = st.plotly_chart(corpus_figures.trajectory_figure(proj, paths), key=key, on_select="rerun",
                         selection_mode="points", config={"displaylogo": False})
    pts = (ev or {}).get("selection", {}).get("points", []) if ev else []
    pts = [p for p in pts if p.get("curve_number", 0) >= 1]      # curve 0 is the density backdrop
    if pts:
        p = pts[0]
        k = p["curve_number"] - 1
        pos = int(paths[k][1]["position"].iloc[p["point_index"]])
        # Explore selects a new text's last token unless a link named one (its "_url_pos")
        ss = st.session_state
        ss["text"], ss["pos"], ss["_url_pos"] = texts[k], pos, pos
        st.switch_page("ui/pages/explore.py")
