"""Documented settings. Each can be overridden by an environment variable of the same name,
prefixed with ``RNN_EXPLORER_``."""
import os


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
