"""The corpus and its index, for the Corpus and Units pages (and Contrast's trajectories): choosing the
corpus (the default books, a folder, uploaded .txt files), getting its index for the model in the
sidebar (built on first use in the background, once per server: ui.jobs; its progress refreshes itself
in a fragment), the cached queries over it (match, units, the projection, nearest states), the
trajectory chart both Corpus and Contrast draw and the nearest-state list of the Corpus page. Indexes
live in the user's cache directory (explorer.corpus.index.default_index_dir), never in the repository.

An opened index is a resource (st.cache_resource: its arrays on disk, read by every query); the query
results are cached per model identity and index with ui.cached.per_model."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

import explorer as E
from explorer import settings
from explorer.corpus import index, queries
from explorer.present import corpus_figures
from ui import ROOT, cached, jobs, session, widgets

SOURCES = ("Default: Persuasion + The Valley of Fear", "A folder on this machine", "Upload .txt files")
#: The app indexes h only (the hidden state every page shows): half the time and disk of h and c.
QUANTITIES = ["h"]


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


def _job_key(out: Path) -> str:
    return f"corpus-index:{out}"


def build_job(ctx, corpus: Path):
    """The background build of `corpus`'s index for the sidebar's model (ui.jobs), or None when no session
    of this server started one."""
    return jobs.get(_job_key(index.index_dir_for(ctx.model, corpus, QUANTITIES)))


def start_build(ctx, corpus: Path, again: bool = False):
    """Start the index build in the background (once per server: a running one is returned as it is)."""
    model = ctx.model
    out = index.index_dir_for(model, corpus, QUANTITIES)

    def build(progress):
        index.build_index(model, corpus, out, quantities=QUANTITIES, progress=False, on_progress=progress)

    return jobs.start(_job_key(out), f"{model.name} over {Path(corpus).name}", build, again=again)


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def progress_text(p) -> str:
    """'45,056 of 170,833 tokens · 8,100 tokens/s · about 16 s left' (or what is known so far)."""
    if p.total <= 0:
        return f"reading and planning the corpus… ({_seconds(p.elapsed)})"
    if p.done >= p.total:
        return f"{p.total:,} tokens read; writing the index… ({_seconds(p.elapsed)})"
    parts = [f"{p.done:,} of {p.total:,} tokens"]
    if p.rate:
        parts.append(f"{p.rate:,.0f} tokens/s")
    parts.append(f"about {_seconds(p.left)} left" if p.left is not None else "measuring the speed…")
    return " · ".join(parts)


@st.fragment(run_every=1.0)
def _build_progress(key: str):
    """The build's progress bar, redrawn every second on its own (the rest of the page stays as it is);
    when the build has ended, the whole page runs again (with the index, or with the reason it failed)."""
    p = jobs.get(key)
    if p is None or not p.running:
        st.rerun()
    st.progress(p.fraction, text=progress_text(p))


def _show_build(ctx, corpus: Path, out: Path, p) -> None:
    """The running build: what it is, and its progress (a fragment that refreshes itself)."""
    with st.container(border=True, key="corpus_build_box"):
        st.markdown(f"**Building the corpus index for {ctx.model.name}** in the background")
        st.caption(f"Reading `{corpus}` as one continuous text per file; states go to `{out}`. This happens "
                   "once per model and corpus, for every tab of this server: it goes on if you leave this "
                   "page, and the other pages stay usable meanwhile.")
        _build_progress(p.key)


def current_index(ctx, corpus: Path, build: bool | None = None) -> index.CorpusIndex | None:
    """The index of `corpus` for the sidebar's model, opened from the cache; or None after saying why
    there is none yet. Without an index, its build is started in the background (ui.jobs: one per
    server, whichever session asked first): at once for the default corpus, after a button for the
    user's own (`build` overrides which). While it runs, its progress is drawn here; a build that
    failed shows its reason and a button that tries again."""
    model = ctx.model
    out = index.index_dir_for(model, corpus, QUANTITIES)
    card = out / "card.json"
    if card.is_file():
        idx = _open(str(out), card.stat().st_mtime)
        idx.check_model(model)
        return idx
    p = jobs.get(_job_key(out))
    if p is not None and p.failed:
        st.error(f"The corpus index for {model.name} could not be built: {p.error}", icon=":material/error:")
        if not st.button("Try again", key="corpus_build_again", icon=":material/refresh:",
                         help="An interrupted build continues from the last finished part."):
            return None
        p = start_build(ctx, corpus, again=True)
    elif p is None or not p.running:
        auto = corpus == default_corpus() if build is None else build
        if not auto:
            root, files = index.corpus_files(corpus)
            size = sum(f.stat().st_size for f in files)
            shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
            st.info(f"{len(files)} .txt file(s), {shown}, not indexed yet for {model.name}.",
                    icon=":material/database:")
            if not st.button("Build the index", key="corpus_build", icon=":material/build:"):
                return None
        p = start_build(ctx, corpus)
    if card.is_file():          # a build that ended at once (the index was there after all)
        return current_index(ctx, corpus, build)
    _show_build(ctx, corpus, out, p)
    return None


def index_if_built(ctx, corpus: Path, note: str) -> index.CorpusIndex | None:
    """The index of `corpus` when it is built already; otherwise `note`, the corpus's size and a button that
    builds it in the background (its progress shown here while it runs). Never starts a build without the
    button: a page that only borrows the index stays fast."""
    if (index.index_dir_for(ctx.model, corpus, QUANTITIES) / "card.json").is_file():
        return current_index(ctx, corpus, build=False)
    st.caption(note)
    return current_index(ctx, corpus, build=False)


def stamp(idx: index.CorpusIndex) -> float:
    return (idx.path / "card.json").stat().st_mtime


def index_caption(idx: index.CorpusIndex) -> str:
    files = idx.files
    names = ", ".join(Path(f["path"]).stem for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"Corpus index: {idx.n_tokens:,} tokens from {len(files)} file(s) ({names}); "
            f"{', '.join(idx.quantities)} of every layer, stored in `{idx.path}`.")


def sidebar_and_index(wait: bool = True):
    """The page preamble: model, layer, corpus, index. Stops the page while there is no index, unless
    `wait` is False and the index is being built: then (ctx, layer, None), below the build's progress, so
    that the page can draw what does not need the index."""
    ctx = session.require_model()
    layer = widgets.layer_picker(ctx)
    corpus = corpus_picker()
    if corpus is None:
        st.stop()
    with widgets.guard("the corpus index"):
        idx = current_index(ctx, corpus)
        if idx is not None:
            return ctx, layer, idx
        p = build_job(ctx, corpus)
        if not wait and p is not None and p.running:
            return ctx, layer, None
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


@cached.per_model("select")
def _select(model, text: str, s: int, e: int, layer: int, q: str, thr: float, quiet: bool):
    return queries.select(model, text, s, e, layer, q, thr, quiet)


def select(ctx, text: str, s: int, e: int, layer: int, q: str, thr: float, quiet: bool):
    """The selection's hypothesis alone (the units on across tokens s..e-1 of `text`): needs no index, so
    the Corpus page shows it while the index is still being built."""
    return _select(ctx, E.clip_text(text)[0], int(s), int(e), int(layer), q, float(thr), bool(quiet))


@cached.per_model("neighbours", "Searching the corpus for the nearest states…")
def _neighbours(model, idx_path: str, idx_stamp: float, text: str, position: int, layer: int, q: str, top: int,
                context: int):
    return queries.neighbours(_open(idx_path, idx_stamp), model, text, position, layer, q, top=top,
                              context=context)


def neighbours(ctx, idx: index.CorpusIndex, text: str, position: int, layer: int, q: str = "h", top: int = 20,
               context: int = 40):
    """The corpus tokens whose state (layer, q) is nearest by cosine to the state after token `position`
    of `text` (explorer.corpus.queries.neighbours), with `context` tokens either side of each."""
    return _neighbours(ctx, str(idx.path), stamp(idx), E.clip_text(text)[0], int(position), int(layer), q,
                       int(top), int(context))


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
    texts = [E.clip_text(t)[0] for t in texts]          # a long text is drawn over its first MAX_CHARS
    paths = [(lab, queries.trajectory(proj, ctx.model, t)) for t, lab in zip(texts, labels)]
    ev = st.plotly_chart(corpus_figures.trajectory_figure(proj, paths), key=key, on_select="rerun",
                         selection_mode="points", config={"displaylogo": False})
    pts = (ev or {}).get("selection", {}).get("points", []) if ev else []
    pts = [p for p in pts if p.get("curve_number", 0) >= 1]      # curve 0 is the density backdrop
    if pts:
        p = pts[0]
        k = p["curve_number"] - 1
        pos = int(paths[k][1]["position"].iloc[p["point_index"]])
        open_in_explore(texts[k], pos)


def open_in_explore(text: str, pos: int):
    """Switch to Explore on `text` with token `pos` selected."""
    # Explore selects a new text's last token unless a link named one (its "_url_pos")
    ss = st.session_state
    ss["text"], ss["pos"], ss["_url_pos"] = text, int(pos), int(pos)
    st.switch_page("ui/pages/explore.py")


# ------------------------------------------------------------------------------- nearest states
EOS = "<eos>"


def label(token: str) -> str:
    """A token as the page writes it: the boundary token <eos> as ¶."""
    return "¶" if token == EOS else str(token)


def passage(model, item) -> tuple[str, int]:
    """(text, position) that opens a nearest state (an item of explorer.corpus.queries.neighbours) in
    Explore: its context written back as text (the tokenizer's detokenize), from the start of its
    paragraph when the left context holds one (the <eos> the model read there is Explore's boundary
    token 0) to the end of its right context or paragraph; `position` is its token in that text's trace."""
    left, right, token = list(item.left), list(item.right), str(item.token)
    if EOS in left:
        left = left[len(left) - left[::-1].index(EOS):]
    if EOS in right:
        right = right[:right.index(EOS)]
    text = model.tokenizer.detokenize(left + [token] + right)
    pos = len(left) + 1
    words = [EOS] + [t.text for t in model.tokenizer.tokenize(text)]
    if not (pos < len(words) and words[pos] == token):   # a tokenizer that reads its text back otherwise
        near = [j for j, w in enumerate(words) if w == token]
        pos = min(near, key=lambda j: abs(j - pos)) if near else min(pos, len(words) - 1)
    return text, pos
