"""The errors askdocs raises. The CLI and HTTP layers translate these; nothing else should."""

from __future__ import annotations


class AskdocsError(Exception):
    """Root of every error askdocs raises on purpose."""


class ConfigError(AskdocsError):
    """A setting is missing or invalid."""


class ModelLoadError(AskdocsError):
    """A packaged model could not be found, verified or loaded."""


class IndexMismatch(AskdocsError):
    """A store was built with a different embedder or schema than the one asked for."""


class UnreadableDocument(AskdocsError):
    """A file could not be turned into text. Carries the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ContextTooLong(AskdocsError):
    """A prompt does not fit in the model's context window."""


class NotFound(AskdocsError):
    """A document, store or model that was asked for does not exist."""


class MissingDependency(AskdocsError):
    """An optional dependency is not installed; the message names the pip extra."""


class RuntimeCrash(AskdocsError):
    """The native model runtime died (a signal such as SIGSEGV, or an abort) in its worker
    process. The message names the signal and the fix; the next request starts a new worker."""


class StorageFull(AskdocsError):
    """The disk holding the store is full: a write failed, nothing committed was lost."""
