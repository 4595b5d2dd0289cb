"""Errors with messages meant for people. Each one says what is wrong and, where possible, how to fix it."""


class ExplorerError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2; the app shows them."""


class BundleError(ExplorerError):
    """A model bundle is missing, malformed, inconsistent or unsafe."""


class CorpusError(ExplorerError):
    """A corpus folder, file or split file cannot be used."""


class InputTooLong(ExplorerError):
    """Text longer than the configured limit (explorer.settings.MAX_CHARS)."""

    def __init__(self, length: int, limit: int):
        self.length, self.limit = length, limit
        super().__init__(f"text is {length:,} characters; the limit is {limit:,} "
                         f"(set RNN_EXPLORER_MAX_CHARS to change it)")
