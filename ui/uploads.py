"""Uploaded model bundles: a zip is unpacked under the temporary folder in a folder named by its bytes,
validated as any bundle (a rejected one leaves nothing on disk), and unpacked uploads not touched for a
week are removed when the next one arrives. ui/importing.py writes uploaded weights + vocabulary here
only for the length of an import (and the bundles imported for a session); ui/sidebar.py draws the
upload box."""
from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from pathlib import Path

from explorer import settings
from explorer.bundle import extract_bundle_zip
from ui import cached

log = logging.getLogger("rnn_explorer.ui")

#: Unpacked uploads older than this are removed when the next bundle is uploaded.
UPLOAD_MAX_AGE_S = 7 * 24 * 3600


def uploads_root() -> Path:
    """Where uploads are unpacked (read when called: tests point the temporary folder elsewhere)."""
    return Path(tempfile.gettempdir()) / "rnn-explorer-uploads"


def load_upload(data: bytes, filename: str = "bundle.zip") -> tuple[str, str]:
    """Validate an uploaded bundle zip; return (path, label). Raises ExplorerError with a message
    that says what is wrong (missing file, pickle instead of safetensors, shapes, size, ...)."""
    digest = hashlib.sha256(data).hexdigest()[:12]
    root = uploads_root()
    prune_uploads(root, keep=digest)
    dest = root / digest
    try:
        path = extract_bundle_zip(data, dest, settings.MAX_UPLOAD_BYTES)
        model = cached.model_at(str(path))               # full validation happens here
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)          # a rejected bundle leaves nothing on disk (its
        raise                                            # folder is named by its bytes: never a good one)
    stem = Path(filename).stem or "upload"
    return str(path), f"{stem} (uploaded: {model.name})"


def prune_uploads(root: Path, keep: str = "", max_age_s: float | None = None) -> list[Path]:
    """Remove unpacked upload folders under `root` not touched for `max_age_s` seconds (except
    `keep`); returns what was removed. Errors (a folder in use, permissions) are logged, not raised."""
    limit = UPLOAD_MAX_AGE_S if max_age_s is None else max_age_s
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        try:
            if p.name == keep or not p.is_dir() or p.is_symlink() or now - p.stat().st_mtime < limit:
                continue
            shutil.rmtree(p)
            removed.append(p)
        except OSError as e:
            log.warning("could not remove old upload %s: %s", p, e)
    return removed
