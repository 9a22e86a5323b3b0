"""Turn files into `Document`s: their text, plus the pages and headings that point back into it.

`read(path)` picks a reader from the file's suffix, one module per format. Every reader returns
text with "\\n" newlines; page spans and heading offsets index into that text. Anything that
stops a file from being read becomes an `UnreadableDocument` whose reason says what is wrong
and, where it can, how to fix it.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from askdocs.errors import UnreadableDocument
from askdocs.readers.markdown import read_md
from askdocs.readers.pdf import read_pdf
from askdocs.readers.plain import read_txt
from askdocs.readers.webpage import read_html
from askdocs.readers.word import read_docx
from askdocs.types import Document

__all__ = ["SUPPORTED_SUFFIXES", "read"]

_KINDS = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_KINDS)

_EMPTY = "empty: no text"


def read(path: str | Path, *, max_bytes: int = 20_000_000) -> Document:
    """Read one file into a `Document`; raise `UnreadableDocument` if that cannot be done."""
    name = str(path)
    file = Path(path)
    size = _stat_size(file, name)
    kind = _kind(file, name)
    if size > max_bytes:
        raise UnreadableDocument(name, _too_big(size, max_bytes))
    data = _load(file, name, max_bytes)
    if not data:
        raise UnreadableDocument(name, _EMPTY)
    doc = _READERS[kind](data, name)
    if not doc.text.strip():
        raise UnreadableDocument(name, _EMPTY)
    return doc


# --- files -------------------------------------------------------------------------------------


def _stat_size(file: Path, name: str) -> int:
    try:
        info = file.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise UnreadableDocument(name, "no such file") from None
    except PermissionError:
        raise UnreadableDocument(name, "permission denied; check the file's permissions") from None
    except OSError as exc:
        raise UnreadableDocument(name, f"cannot access it: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableDocument(name, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or device could block forever or never end.
        raise UnreadableDocument(name, "not a regular file")
    return info.st_size


def _kind(file: Path, name: str) -> str:
    suffix = file.suffix.lower()
    if suffix not in _KINDS:
        shown = f"'{suffix}'" if suffix else "with no suffix"
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnreadableDocument(name, f"unsupported file type {shown}; supported: {supported}")
    return _KINDS[suffix]


def _load(file: Path, name: str, max_bytes: int) -> bytes:
    try:
        with file.open("rb") as fh:
            # Read one byte past the limit: the file may have grown since it was stat'ed.
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise UnreadableDocument(name, "permission denied; check the file's permissions") from None
    except OSError as exc:
        raise UnreadableDocument(name, f"cannot read it: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise UnreadableDocument(name, _too_big(len(data), max_bytes))
    return data


def _too_big(size: int, max_bytes: int) -> str:
    """`_too_big(52_400_000, 20_000_000) -> '52.4 MB, over the 20.0 MB limit (...)'`"""
    limit = f"{max_bytes / 1e6:.1f} MB limit (raise ingest max_file_mb)"
    return f"{size / 1e6:.1f} MB, over the {limit}"


_READERS: dict[str, Callable[[bytes, str], Document]] = {
    "txt": read_txt,
    "md": read_md,
    "html": read_html,
    "pdf": read_pdf,
    "docx": read_docx,
}
