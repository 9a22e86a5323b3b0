"""Word (.docx) files: paragraphs and tables in document order, headings from their styles."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from askdocs.decoding import collapse_whitespace, normalise_newlines
from askdocs.errors import UnreadableDocument
from askdocs.limits import (
    MAX_DOCX_PARAGRAPHS,
    check_zip,
    docx_paragraphs,
)
from askdocs.readers.titles import stem
from askdocs.types import Document, Heading

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table


_HEADING_STYLE = re.compile(r"Heading ([1-9])")


def read_docx(data: bytes, path: str) -> Document:
    import docx

    sizes = check_zip(data, path)
    if "word/document.xml" in sizes and (n := docx_paragraphs(data)) > MAX_DOCX_PARAGRAPHS:
        raise UnreadableDocument(
            path, f"{n:,} paragraphs (the limit is {MAX_DOCX_PARAGRAPHS:,}); split the document"
        )
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        # python-docx lets zip, XML and packaging errors through as many unrelated types.
        reason = f"corrupt or not a .docx file ({type(exc).__name__}: {exc})"
        raise UnreadableDocument(path, f"{reason}; an old .doc must be saved as .docx") from exc
    blocks = list(_docx_blocks(document))
    text, headings = _join_blocks([(block, level) for block, level, _ in blocks])
    title = (
        (document.core_properties.title or "").strip()
        or next((block for block, _, is_title in blocks if is_title), None)
        or (headings[0].text if headings else None)
        or stem(path)
    )
    return Document(path=path, text=text, title=title, kind="docx", headings=headings)


def _docx_blocks(document: DocxDocument) -> Iterator[tuple[str, int, bool]]:
    """(text, heading level or 0, is the Title style) for each non-empty block in body order."""
    from docx.table import Table as DocxTable

    # `Paragraph.style` scans every style on each call (18 s for 5,000 paragraphs), so style
    # names are looked up once and paragraphs are matched on the style id in their XML.
    names = {style.style_id: style.name for style in document.styles}
    for item in document.iter_inner_content():
        if isinstance(item, DocxTable):
            text = _docx_table_text(item)
            if text:
                yield text, 0, False
            continue
        text = normalise_newlines(item.text).strip()
        if not text:
            continue
        style = names.get(item._p.style or "", "") or ""
        heading = _HEADING_STYLE.fullmatch(style)
        level = 1 if style == "Title" else int(heading.group(1)) if heading else 0
        yield text, level, style == "Title"


def _docx_table_text(table: Table) -> str:
    """One line per row, cells joined by " | "; a cell merged across columns is counted once."""
    lines = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a horizontally merged cell repeats its <w:tc>
                continue
            previous = cell._tc
            cells.append(collapse_whitespace(cell.text))
        if any(cells):
            lines.append(" | ".join(cells).strip())
    return "\n".join(lines)


def _join_blocks(blocks: list[tuple[str, int]]) -> tuple[str, tuple[Heading, ...]]:
    """Join blocks with blank lines; a block with a level > 0 becomes a heading.

    `[("Intro", 1), ("Hello.", 0)] -> ("Intro\\n\\nHello.", (Heading(0, 1, "Intro"),))`
    """
    parts: list[str] = []
    headings: list[Heading] = []
    size = 0
    for text, level in blocks:
        if parts:
            parts.append("\n\n")
            size += 2
        if level:
            headings.append(Heading(start=size, level=level, text=text.split("\n")[0]))
        parts.append(text)
        size += len(text)
    return "".join(parts), tuple(headings)
