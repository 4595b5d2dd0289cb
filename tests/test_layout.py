"""The folder layout is the architecture: each part of explorer/ may import only the parts below it.

Read from the source (ast), not by importing, so a lazy import inside a function counts too.

    core (explorer/*.py: engine, tokenizer, model, trace, bundle, api, errors, settings)
      <- training/          <- corpus/          <- analysis/          <- present/
      <- the command line (cli.py, commands.py, __main__.py), which may import every part

Nothing under explorer/ imports Streamlit; ui/ and app.py are the only places that do.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "explorer"

CORE = {"engine", "files", "tokenizer", "model", "trace", "bundle", "api", "errors", "settings", "importer", "cache", "__init__"}
ENTRY = {"cli", "commands", "__main__"}
#: Rank of each part: a module may import a part of the same or a lower rank only.
RANK = {"core": 0, "training": 1, "corpus": 2, "analysis": 3, "present": 4, "entry": 5}
#: The only arrows allowed to point up: `explorer.show` (the notebook player) is a public name at the
#: top of the package, so explorer/__init__.py imports explorer.present.widget inside show().
ALLOWED = {("__init__.py", "explorer.present.widget"), ("__init__.py", "explorer.present.widget.show")}


def part_of_module(dotted: str) -> str | None:
    """'explorer.training.train' -> 'training'; 'explorer.trace' -> 'core'; other packages -> None."""
    bits = dotted.split(".")
    if bits[0] != "explorer":
        return None
    if len(bits) == 1:
        return "core"
    if bits[1] in ("training", "corpus", "analysis", "present"):
        return bits[1]
    if bits[1] in ENTRY:
        return "entry"
    return "core"


def part_of_file(path: Path) -> str:
    rel = path.relative_to(PKG)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "entry" if path.stem in ENTRY else "core"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Absolute dotted names of everything a file imports (relative imports resolved)."""
    pkg = ["explorer", *path.relative_to(PKG).parts[:-1]]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # `from . import views` imports the submodule explorer.<part>.views
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def violations(files) -> list[str]:
    bad = []
    for f in files:
        here = part_of_file(f)
        for line, mod in imports_of(f):
            if mod.split(".")[0] == "streamlit":
                bad.append(f"{f.relative_to(ROOT)}:{line} imports Streamlit")
            there = part_of_module(mod)
            if (str(f.relative_to(PKG)), mod) in ALLOWED:
                continue
            if there is not None and RANK[there] > RANK[here]:
                bad.append(f"{f.relative_to(ROOT)}:{line} ({here}) imports {mod} ({there})")
    return sorted(set(bad))


def test_every_part_imports_only_below_it():
    files = sorted(PKG.rglob("*.py"))
    assert len(files) > 20
    assert violations(files) == []


def test_the_core_holds_what_the_readme_says():
    top = {p.stem for p in PKG.glob("*.py")}
    assert CORE <= top
    assert top - CORE - ENTRY == set(), f"unexpected top-level modules: {top - CORE - ENTRY}"
    for part in ("training", "corpus", "analysis", "present"):
        assert (PKG / part / "__init__.py").exists()


def test_the_checker_catches_a_wrong_arrow(tmp_path, monkeypatch):
    """The check must fail when, say, trace.py imports from present/ (or anything imports Streamlit)."""
    fake = tmp_path / "explorer"
    (fake / "present").mkdir(parents=True)
    (fake / "trace.py").write_text("from .present import figures\n")
    (fake / "model.py").write_text("def f():\n    from .training.train import train\n")
    (fake / "present" / "figures.py").write_text("from ..trace import Trace\nimport streamlit as st\n")
    (fake / "present" / "ok.py").write_text("from ..analysis import contrast\nfrom . import figures\n")
    monkeypatch.setitem(globals(), "PKG", fake)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    got = violations(sorted(fake.rglob("*.py")))
    assert any("trace.py:1 (core) imports explorer.present" in v for v in got), got
    assert any("model.py:2 (core) imports explorer.training.train" in v for v in got), got
    assert any("figures.py:2 imports Streamlit" in v for v in got), got
    assert not any("ok.py" in v for v in got), got


# ------------------------------------------------------------------- one engine, no private reach-ins
#: Where the rule below is read: the package, the front end, and the scripts beside them.
CHECKED = ("explorer", "ui", "benchmarks", "scripts")
#: The kernels are called in explorer/engine.py only.
KERNELS = ("torch.lstm(", "torch.gru(", "torch.rnn_tanh(", "torch.rnn_relu(", "nn.LSTMCell(", "nn.GRUCell(")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(root: Path, files) -> list[str]:
    """Imports of another module's underscore name (`from ..trace import _run_layer`) or of a private
    module from outside its own package (`from explorer.analysis._common import ...` in benchmarks/).
    A module may use its own package's private helpers (`from ._common import tokens_for`)."""
    bad = []
    for f in files:
        rel = f.relative_to(root)
        own_pkg = ".".join(rel.parts[:-1])
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                mod, names = None, []
                for a in node.names:
                    bits = a.name.split(".")
                    if any(_private(b) for b in bits) and ".".join(bits[:-1]) != own_pkg:
                        bad.append(f"{rel}:{node.lineno} imports the private module {a.name}")
                continue
            else:
                continue
            if mod == "__future__":
                continue
            bits = mod.split(".")
            priv = [i for i, b in enumerate(bits) if _private(b)]
            if priv and ".".join(bits[:priv[0]]) != own_pkg:
                bad.append(f"{rel}:{node.lineno} imports from the private module {mod}")
            for n in names:
                if _private(n):
                    sub = f"{mod}.{n}"
                    if (root / Path(*sub.split("."))).with_suffix(".py").is_file() and mod == own_pkg:
                        continue          # `from . import _common`: a private module of its own package
                    bad.append(f"{rel}:{node.lineno} imports {n} from {mod}")
    return sorted(set(bad))


def _checked_files():
    files = [ROOT / "app.py"]
    for d in CHECKED:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


def test_no_module_imports_another_modules_underscore_name():
    assert private_imports(ROOT, _checked_files()) == []


def test_only_the_engine_calls_the_kernels():
    """The network is run step by step in one place: explorer/engine.py."""
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "engine.py":
            continue
        text = f.read_text(encoding="utf-8")
        bad += [f"{f.relative_to(ROOT)} calls {k[:-1]}" for k in KERNELS if k in text]
    assert bad == []
    engine = (PKG / "engine.py").read_text(encoding="utf-8")
    assert "torch.lstm(" in engine and "def run_rows" in engine and "def gate_values" in engine


def test_the_private_import_checker_catches_a_reach_in(tmp_path):
    (tmp_path / "explorer" / "analysis").mkdir(parents=True)
    (tmp_path / "bench").mkdir()
    (tmp_path / "explorer" / "analysis" / "_common.py").write_text("def f():\n    pass\n")
    (tmp_path / "explorer" / "analysis" / "patch.py").write_text(
        "from ..trace import _run_layer\nfrom ._common import f\nfrom . import _common\n")
    (tmp_path / "bench" / "b.py").write_text(
        "from explorer.analysis._common import f\nimport explorer.analysis._common\nfrom __future__ import annotations\n")
    got = private_imports(tmp_path, sorted(tmp_path.rglob("*.py")))
    assert any("patch.py:1 imports _run_layer from explorer.trace" in v for v in got), got
    assert not any("patch.py:2" in v or "patch.py:3" in v for v in got), got
    assert any("b.py:1 imports from the private module explorer.analysis._common" in v for v in got), got
    assert any("b.py:2 imports the private module explorer.analysis._common" in v for v in got), got
    assert not any("b.py:3" in v for v in got), got


@pytest.mark.parametrize("name", ["LoadedModel", "load_model", "trace", "Trace", "WordTokenizer",
                                  "InputTooLong", "save_bundle", "list_models", "clip_text", "show"])
def test_public_names_stay_at_the_top(name):
    import explorer as E
    assert hasattr(E, name)


# ------------------------------------------------------------------------------------- ui/ by role
# ui/pages/ holds one script per page, each listed in app.py; the other modules of ui/ are the shared
# parts, one job each (ui/__init__.py lists them). Pages never import each other, the shared parts
# never import a page, no ui/ modules import each other in a circle, and no module is imported under
# a two-capital alias (`CC` was causal_common, corpus_common or char_cells depending on the page).
# Read from the source (ast), imports inside functions included, as above.

UI = ROOT / "ui"
APP = ROOT / "app.py"


def ui_name(path: Path, root: Path) -> str:
    """ui/pages/explore.py -> 'ui.pages.explore'; ui/__init__.py -> 'ui' (`root` holds the ui folder)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ui_imports(path: Path, root: Path, known: set[str]) -> list[tuple[int, str]]:
    """The modules of `known` that a file imports: `from ui import widgets` is ui.widgets when that is a
    module, else ui itself (a name defined in ui/__init__.py); relative imports resolved."""
    here = ui_name(path, root).split(".")
    pkg = here if path.name == "__init__.py" else here[:-1]

    def target(dotted: str) -> str | None:
        bits = dotted.split(".")
        for n in range(len(bits), 0, -1):             # the longest prefix that is a ui module
            if ".".join(bits[:n]) in known:
                return ".".join(bits[:n])
        return None

    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        out += [(node.lineno, t) for t in map(target, names) if t is not None]
    return sorted(set(out))


def ui_files(root: Path) -> list[Path]:
    return sorted((root / "ui").rglob("*.py"))


def pages_listed(app: Path) -> set[str]:
    """The scripts app.py hands to st.Page(...)."""
    found = set()
    for node in ast.walk(ast.parse(app.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def page_listing_problems(root: Path, app: Path) -> list[str]:
    on_disk = {f"ui/pages/{p.name}" for p in (root / "ui" / "pages").glob("*.py") if p.name != "__init__.py"}
    listed = pages_listed(app)
    return sorted([f"{p} is not listed in app.py" for p in on_disk - listed]
                  + [f"app.py lists {p}, which is not a file of ui/pages/" for p in listed - on_disk])


def ui_import_problems(root: Path) -> list[str]:
    """Pages importing a page, shared modules importing a page, and two-capital module aliases."""
    files = ui_files(root)
    known = {ui_name(f, root) for f in files}
    bad = []
    for f in files:
        me, rel = ui_name(f, root), f.relative_to(root)
        is_page = me.startswith("ui.pages.")
        for line, mod in ui_imports(f, root, known):
            if mod.startswith("ui.pages.") or mod == "ui.pages":
                bad.append(f"{rel}:{line} ({'a page' if is_page else 'a shared module'}) imports {mod}")
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    if a.asname and len(a.asname) == 2 and a.asname.isalpha() and a.asname.isupper():
                        bad.append(f"{rel}:{node.lineno} imports {a.name} as {a.asname}")
    return sorted(set(bad))


def ui_cycles(root: Path) -> list[str]:
    """Every import circle among the ui/ modules, as 'a -> b -> a' (one per circle's start)."""
    files = ui_files(root)
    known = {ui_name(f, root) for f in files}
    graph = {ui_name(f, root): {m for _, m in ui_imports(f, root, known)} - {ui_name(f, root)} for f in files}
    cycles, state, stack = set(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                loop = stack[stack.index(n):]
                k = loop.index(min(loop))                 # the same circle, whichever module it was met at
                loop = loop[k:] + loop[:k]
                cycles.add(" -> ".join(loop + [loop[0]]))
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return sorted(cycles)


def test_every_page_is_listed_in_app_py():
    assert len(list((UI / "pages").glob("*.py"))) >= 13
    assert page_listing_problems(ROOT, APP) == []


def test_pages_and_shared_parts_import_the_right_way_and_by_name():
    assert ui_import_problems(ROOT) == []


def test_no_import_circle_among_ui_modules():
    assert ui_cycles(ROOT) == []


def test_explorer_reads_nothing_from_ui():
    """explorer/ (the notebook widget included) never names a path under ui/ outside its prose: the
    player's JavaScript and CSS live beside the Python that feeds them (explorer/present/assets/)."""
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        for n in ast.walk(tree):
            if (isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in prose
                    and (n.value == "ui" or n.value.startswith("ui/"))):
                bad.append(f"{f.relative_to(ROOT)}:{n.lineno} {n.value!r}")
    assert bad == []
    assert all((PKG / "present" / "assets" / f).is_file() for f in ("player.js", "player.css"))


def test_the_ui_checker_catches_a_wrong_import(tmp_path):
    """A fake tree with every kind of mistake: an unlisted page, a listed page that is not there, a page
    importing a page (inside a function too), a shared module importing a page, an alias, a circle."""
    ui = tmp_path / "ui"
    (ui / "pages").mkdir(parents=True)
    (ui / "__init__.py").write_text("ROOT = 1\n")
    (ui / "session.py").write_text("from ui import widgets\n")
    (ui / "widgets.py").write_text("def f():\n    from . import cached\n")
    (ui / "cached.py").write_text("import ui.session\nfrom ui import ROOT\n")
    (ui / "lecture.py").write_text("from ui.pages import explore\n")
    (ui / "ok.py").write_text("from ui import ROOT, widgets\nfrom explorer.present import lesson\n")
    (ui / "pages" / "explore.py").write_text("from ui import session, widgets\n")
    (ui / "pages" / "patch.py").write_text("from ui import cached_causal as CC\n"
                                           "def f():\n    from ui.pages import explore\n")
    (ui / "pages" / "hidden.py").write_text("import ui.pages.explore\n")
    app = tmp_path / "app.py"
    app.write_text('import streamlit as st\nst.Page("ui/pages/explore.py")\nst.Page("ui/pages/patch.py")\n'
                   'st.Page("ui/pages/gone.py")\n')
    assert page_listing_problems(tmp_path, app) == ["app.py lists ui/pages/gone.py, which is not a file of ui/pages/",
                                                    "ui/pages/hidden.py is not listed in app.py"]
    got = ui_import_problems(tmp_path)
    assert "ui/pages/patch.py:3 (a page) imports ui.pages.explore" in got, got
    assert "ui/pages/hidden.py:1 (a page) imports ui.pages.explore" in got, got
    assert "ui/lecture.py:1 (a shared module) imports ui.pages.explore" in got, got
    assert "ui/pages/patch.py:1 imports cached_causal as CC" in got, got
    assert not any("ok.py" in v or "explore.py:" in v or "session.py" in v for v in got), got
    assert ui_cycles(tmp_path) == ["ui.cached -> ui.session -> ui.widgets -> ui.cached"]
