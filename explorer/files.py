"""Writes that never leave a half-written file: the one atomic-write helper.

Every file the tool writes (a bundle, a card, an index's parts and card, a run's status, an export)
is written to a temporary name in the same folder and moved into place with os.replace, so a reader
sees the old file or the new one, never a torn one, and an interrupted write leaves the old file as
it was. The new file gets the permissions the user's umask gives (0644 under the usual 022), not the
0600 of a temporary file.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_file(path, *, fsync: bool = False):
    """Yield a temporary path beside `path`; when the block ends without an error, the file there
    replaces `path` (with the umask's permissions). On an error the temporary file is removed and
    `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside `path`; when the block ends without an error, it replaces the
    folder `path` (an old one is moved aside first and then removed). On an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        _follow_umask(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _follow_umask(folder: Path) -> None:
    """Give `folder` and everything in it the permissions the umask gives a new folder or file: a
    temporary folder is 0700, and some writers (safetensors' save_file) make 0600 files."""
    mask = _umask()
    for p in (folder, *folder.rglob("*")):
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def write_bytes(path, data: bytes, *, fsync: bool = False) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str, *, fsync: bool = False) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path, obj, *, indent: int | None = 2, fsync: bool = False) -> Path:
    """Write `obj` as JSON (UTF-8, a final newline) to `path` atomically."""
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", fsync=fsync)
