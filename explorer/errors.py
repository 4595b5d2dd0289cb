"""Errors with messages meant for people. Each one says what is wrong and, where possible, how to fix it."""


class InputError(ValueError):
    """Bad input from a person: a text, a word, a position, a layer, a file, a model or a corpus the
    tool cannot use. The one thing pages and commands catch: the CLI prints it as one line and exits
    with status 2; the app shows it in the page. A ValueError, so callers that catch ValueError still
    catch it. Every error below is one."""


#: The older name of InputError, kept for code and tests that name it.
ExplorerError = InputError


class PositionError(InputError, IndexError):
    """A token position, step, unit or layer outside what the text or the model has (also an
    IndexError, as a position out of range is)."""


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
