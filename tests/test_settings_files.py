"""One home each: settings (explorer/settings.py, one cache root), bad input (InputError), atomic
writes (explorer/files.py)."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from explorer import errors, files, settings

ROOT = Path(__file__).resolve().parents[1]


def _sources():
    out = [ROOT / "app.py"]
    for d in ("explorer", "ui"):
        out += sorted((ROOT / d).rglob("*.py"))
    return out


def test_every_setting_is_read_in_settings_py_only():
    """RNN_EXPLORER_* variables are read from the environment in explorer/settings.py and nowhere else
    (other files may name them in messages and docs)."""
    reads = re.compile(r"environ(?:\.get)?\s*[\[(]\s*['\"]RNN_EXPLORER_|getenv\(\s*['\"]RNN_EXPLORER_")
    bad = [str(f.relative_to(ROOT)) for f in _sources()
           if f.name != "settings.py" and reads.search(f.read_text(encoding="utf-8"))]
    assert bad == []
    named = set(re.findall(r"RNN_EXPLORER_([A-Z_]+)", "\n".join(f.read_text(encoding="utf-8") for f in _sources())))
    assert named - {"ALLOWED"} <= set(settings.VARIABLES), named - set(settings.VARIABLES)


def test_one_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.delenv("RNN_EXPLORER_RUNS", raising=False)
    from explorer.corpus.index import default_index_dir
    from explorer.training.runner import runs_root
    assert default_index_dir() == tmp_path / "indexes"
    assert runs_root() == tmp_path / "runs"
    monkeypatch.delenv("RNN_EXPLORER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_root() == tmp_path / "xdg" / "rnn-state-explorer"
    assert runs_root().parent == default_index_dir().parent == settings.cache_root()


def test_threads_setting(monkeypatch):
    monkeypatch.setenv("RNN_EXPLORER_THREADS", "3")
    assert settings.threads(16) == 3
    for bad in ("", "x", "0", "-2"):
        monkeypatch.setenv("RNN_EXPLORER_THREADS", bad)
        assert settings.threads(16) == 4 and settings.threads(2) == 1


def test_input_error_is_the_one_thing_to_catch(tiny_lstm):
    from explorer.analysis import memory, patch
    assert issubclass(errors.InputError, ValueError)
    for cls in (errors.BundleError, errors.CorpusError, errors.InputTooLong, errors.PositionError):
        assert issubclass(cls, errors.InputError)
    with pytest.raises(errors.InputError, match="same count"):
        patch.patch_grid(tiny_lstm, "a girl said", "a boy said that", "miss", "sir")
    with pytest.raises(errors.PositionError):                      # also an IndexError
        memory.occlusion_fade(tiny_lstm, "a girl said", position=99)


def test_atomic_file_keeps_the_old_file_on_error(tmp_path):
    p = tmp_path / "card.json"
    files.write_json(p, {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_file(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert p.read_text() == '{\n  "a": 1\n}\n'
    assert [q.name for q in tmp_path.iterdir()] == ["card.json"]       # no temporary file left


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        f = files.write_bytes(tmp_path / "x.bin", b"1")
        with files.atomic_dir(tmp_path / "bundle") as d:
            (d / "w").write_text("w")
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == 0o755


def test_atomic_dir_replaces_a_folder_whole(tmp_path):
    d = tmp_path / "m"
    with files.atomic_dir(d) as t:
        (t / "a").write_text("1")
    with pytest.raises(KeyError):
        with files.atomic_dir(d) as t:
            (t / "b").write_text("2")
            raise KeyError("stop")
    assert sorted(p.name for p in d.iterdir()) == ["a"]
    with files.atomic_dir(d) as t:
        (t / "b").write_text("2")
    assert sorted(p.name for p in d.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_pages_catch_the_one_input_error():
    """Pages catch InputError for bad input, not a tuple of built-in errors (a bug's ValueError must
    reach the page guard, which logs it, instead of being shown as if the person typed something wrong)."""
    bad = []
    for f in sorted((ROOT / "ui" / "pages").glob("*.py")):
        text = f.read_text(encoding="utf-8")
        if re.search(r"except \((ValueError|IndexError), (ValueError|IndexError)\)", text):
            bad.append(f.name)
    assert bad == []
