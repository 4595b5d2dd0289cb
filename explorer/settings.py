"""Documented settings. Each can be overridden by an environment variable of the same name,
prefixed with ``RNN_EXPLORER_``."""
import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(f"RNN_EXPLORER_{name}")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


#: Longest text `trace()` accepts, in characters. The app traces the first MAX_CHARS characters of a
#: longer paste and says so; the CLI and API raise `InputTooLong`.
MAX_CHARS = _int("MAX_CHARS", 20_000)

#: Largest uploaded bundle (zip) the app accepts, in bytes.
MAX_UPLOAD_BYTES = _int("MAX_UPLOAD_BYTES", 100 * 1024 * 1024)

#: Memory budget of the app's shared cache of traces and analysis results, in megabytes. The cache
#: counts the bytes of the arrays each result holds and drops the least recently used results to
#: stay within it (a 20,000-character trace of the shipped model holds about 71 MB).
CACHE_MB = _int("CACHE_MB", 1024)


# ------------------------------------------------------------------ read when used (tests set them)
# The settings below are read from the environment each time they are used, so a test or a
# long-running server sees a change without re-importing the package.

def cache_root() -> Path:
    """RNN_EXPLORER_CACHE: the one folder the tool keeps things in (corpus indexes, training runs),
    default $XDG_CACHE_HOME/rnn-state-explorer (~/.cache/rnn-state-explorer)."""
    raw = os.environ.get("RNN_EXPLORER_CACHE")
    if raw:
        return Path(raw).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnn-state-explorer"


def index_root() -> Path:
    """Where the app keeps corpus indexes: cache_root()/indexes."""
    return cache_root() / "indexes"


def runs_root() -> Path:
    """RNN_EXPLORER_RUNS: where training runs started from the app live, default cache_root()/runs."""
    raw = os.environ.get("RNN_EXPLORER_RUNS")
    return Path(raw).expanduser() if raw else cache_root() / "runs"


def models_dir(default: Path) -> Path:
    """RNN_EXPLORER_MODELS: the folder of model bundles the app lists, default `default` (pretrained/)."""
    raw = os.environ.get("RNN_EXPLORER_MODELS")
    return Path(raw).expanduser() if raw else Path(default)


def default_corpus(default: Path) -> Path:
    """RNN_EXPLORER_DEFAULT_CORPUS: the corpus the Corpus and Units pages open on, default `default`."""
    raw = os.environ.get("RNN_EXPLORER_DEFAULT_CORPUS")
    return Path(raw).expanduser() if raw else Path(default)


def chromium() -> str:
    """RNN_EXPLORER_CHROMIUM: the browser Kaleido drives for PNG/SVG export, default /usr/bin/chromium."""
    return os.environ.get("RNN_EXPLORER_CHROMIUM", "/usr/bin/chromium")


def threads(cores: int) -> int:
    """RNN_EXPLORER_THREADS: torch threads of the app's server, default half the cores, at most 4."""
    raw = os.environ.get("RNN_EXPLORER_THREADS", "")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    return n if n > 0 else max(1, min(4, cores // 2))


#: Every RNN_EXPLORER_* variable, for the README's settings table and its test.
VARIABLES = ("MAX_CHARS", "MAX_UPLOAD_BYTES", "CACHE_MB", "CACHE", "RUNS", "MODELS", "DEFAULT_CORPUS",
             "CHROMIUM", "THREADS")
