"""Plain text files."""

from __future__ import annotations

from askdocs.decoding import decode
from askdocs.readers.titles import first_line_title, stem
from askdocs.types import Document


def read_txt(data: bytes, path: str) -> Document:
    text = decode(data, path)
    return Document(path=path, text=text, title=first_line_title(text) or stem(path), kind="txt")
