"""PDF files: each page's text (pypdfium2), pages joined with their spans kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from askdocs.decoding import normalise_newlines
from askdocs.errors import UnreadableDocument
from askdocs.readers.titles import first_line_title, stem
from askdocs.types import Document, Page

if TYPE_CHECKING:
    from pypdfium2 import PdfDocument


def read_pdf(data: bytes, path: str) -> Document:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(path, _pdf_load_reason(exc)) from exc
    try:
        meta_title = (pdf.get_metadata_value("Title") or "").strip()
        page_texts = [_pdf_page_text(pdf, index) for index in range(len(pdf))]
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(path, f"corrupt PDF: {str(exc).rstrip('.')}") from exc
    finally:
        pdf.close()  # pdfium memory is native; do not wait for the garbage collector
    text, pages = _join_pages(page_texts)
    if not text:
        raise UnreadableDocument(path, "no text layer (scanned images?); run OCR on it first")
    title = meta_title or first_line_title(text) or stem(path)
    return Document(path=path, text=text, title=title, kind="pdf", pages=pages)


def _pdf_load_reason(exc: Exception) -> str:
    from pypdfium2.raw import FPDF_ERR_PASSWORD

    if getattr(exc, "err_code", None) == FPDF_ERR_PASSWORD:
        return "password-protected; save an unprotected copy and read that"
    return f"corrupt or not a PDF: {str(exc).rstrip('.')}"


def _pdf_page_text(pdf: PdfDocument, index: int) -> str:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            raw = textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()
    return normalise_newlines(raw).replace("\x00", "").strip()


def _join_pages(texts: list[str]) -> tuple[str, tuple[Page, ...]]:
    """Join page texts with blank lines, keeping each page's span; empty pages get empty spans.

    `["ab", "", "c"] -> ("ab\\n\\nc", (Page(1, 0, 2), Page(2, 2, 2), Page(3, 4, 5)))`
    """
    parts: list[str] = []
    pages: list[Page] = []
    size = 0
    for number, text in enumerate(texts, start=1):
        if text and parts:
            parts.append("\n\n")
            size += 2
        pages.append(Page(number=number, start=size, end=size + len(text)))
        if text:
            parts.append(text)
            size += len(text)
    return "".join(parts), tuple(pages)
