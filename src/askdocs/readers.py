"""Turn files into `Document`s: their text, plus the pages and headings that point back into it.

`read(path)` picks a reader from the file's suffix. Every reader returns text with "\\n" newlines;
page spans and heading offsets index into that text. Anything that stops a file from being read
becomes an `UnreadableDocument` whose reason says what is wrong and, where it can, how to fix it.
"""

from __future__ import annotations

import codecs
import io
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from askdocs.decoding import BOMS, decode, normalise_newlines
from askdocs.errors import UnreadableDocument
from askdocs.limits import (
    MAX_DOCX_PARAGRAPHS,
    MAX_HTML_DEPTH,
    check_zip,
    docx_paragraphs,
    html_depth,
)
from askdocs.types import Document, Heading, Page

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from pypdfium2 import PdfDocument
    from selectolax.lexbor import LexborHTMLParser, LexborNode

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

_TITLE_MAX = 120  # a longer first line is a sentence, not a title
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


def _stem(path: str) -> str:
    return Path(path).stem


def _first_line_title(text: str) -> str | None:
    """The first non-empty line, if short enough to be a title: `"\\n Intro \\nbody" -> "Intro"`."""
    for line in text.split("\n"):
        if line.strip():
            line = line.strip()
            return line if len(line) <= _TITLE_MAX else None
    return None


# --- plain text --------------------------------------------------------------------------------


def _read_txt(data: bytes, path: str) -> Document:
    text = decode(data, path)
    return Document(path=path, text=text, title=_first_line_title(text) or _stem(path), kind="txt")


# --- markdown ----------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# Patterns over user text stay linear: no lazy group followed by an optional run of the same
# characters (`(.*?)[ \t]*$` costs O(n^2) on a line of spaces); trailing spaces and a closing
# `#` sequence are stripped in Python instead.
_FRONT_TITLE = re.compile(r"^title:(.*)$", re.MULTILINE)
_ATX = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_THEMATIC = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")


def _read_md(data: bytes, path: str) -> Document:
    # The text stays exactly what the user wrote; only headings and the title are extracted.
    text = decode(data, path)
    front = _FRONT_MATTER.match(text)
    body_start = front.end() if front else 0
    headings = tuple(_markdown_headings(text, body_start))
    title = (
        (_front_matter_title(front.group(1) or "") if front else None)
        or next((h.text for h in headings if h.level == 1), None)
        or _stem(path)
    )
    return Document(path=path, text=text, title=title, kind="md", headings=headings)


def _front_matter_title(block: str) -> str | None:
    """`'title: "Notes"\\ntags: [a]\\n' -> 'Notes'`; block scalars (`title: >`) are not parsed."""
    match = _FRONT_TITLE.search(block)
    if not match:
        return None
    value = match.group(1).strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.strip() if value.strip() not in ("", ">", "|") else None


def _markdown_headings(text: str, start: int) -> Iterator[Heading]:
    """ATX and setext headings outside fenced code, with offsets of their text in `text`."""
    fence: str | None = None  # the opening fence while inside a code block
    block: str | None = None  # what the previous line belongs to: "para", "other" or nothing
    para: tuple[int, str] | None = None  # offset and first line of the open paragraph
    offset = start
    for line in text[start:].split("\n"):
        line_start, offset = offset, offset + len(line) + 1
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            continue
        if not line.strip():
            block, para = None, None
            continue
        if (opening := _FENCE.fullmatch(line)) and not (
            opening.group(1)[0] == "`" and "`" in opening.group(2)
        ):
            fence, block, para = opening.group(1), None, None
        elif heading := _atx_heading(line, line_start):
            block, para = None, None
            if heading.text:
                yield heading
        elif para and (underline := _SETEXT.fullmatch(line)):
            level = 1 if underline.group(1)[0] == "=" else 2
            yield Heading(start=para[0], level=level, text=para[1])
            block, para = None, None
        elif block == "other":
            continue  # a lazy continuation line of a list item, quote or code block
        elif _THEMATIC.fullmatch(line):
            block, para = None, None
        elif _LIST_ITEM.match(line) or line.lstrip().startswith((">", "<")):
            block, para = "other", None  # list item, block quote or raw HTML
        elif block is None and line.startswith(("    ", "\t")):
            block = "other"  # indented code
        elif block is None:
            stripped = line.lstrip()
            block, para = "para", (line_start + len(line) - len(stripped), stripped.rstrip())


def _closes_fence(line: str, fence: str) -> bool:
    closing = _FENCE.fullmatch(line)
    if not closing or closing.group(2).strip():
        return False
    mark = closing.group(1)
    return mark[0] == fence[0] and len(mark) >= len(fence)


def _atx_heading(line: str, line_start: int) -> Heading | None:
    """`'## Setup ##'` at offset 10 -> `Heading(start=10, level=2, text='Setup')`; text may be "".

    The heading starts at its first `#`, so a chunk or section that begins with the heading's
    line belongs to it. Returns None when the line is not an ATX heading.
    """
    match = _ATX.match(line)
    if not match:
        return None
    content = line[match.end() :].strip(" \t")
    without_close = content.rstrip("#")
    if without_close != content and (not without_close or without_close[-1] in " \t"):
        content = without_close  # a closing sequence: `## Setup ##`
    return Heading(
        start=line_start + match.start(1), level=len(match.group(1)), text=content.rstrip(" \t")
    )


# --- html --------------------------------------------------------------------------------------

_BOILERPLATE = ", ".join(
    [
        "head, script, style, noscript, template, nav, aside, form, iframe, svg, canvas",
        "object, embed, audio, video, button, select",
        "[role=navigation], [role=banner], [role=contentinfo], [role=search]",
        "[hidden], [aria-hidden=true]",
        '[style*="display:none"], [style*="display: none"]',
        '[style*="visibility:hidden"], [style*="visibility: hidden"]',
    ]
)
# <header> and <footer> are page chrome only at page level; inside these they belong to content.
_SECTIONING = frozenset({"article", "main", "section"})
_BREAKS = {
    **dict.fromkeys(["p", "pre", "blockquote", "ul", "ol", "dl", "table", "hr", "figure"], 2),
    **dict.fromkeys(["section", "article", "main", "header", "footer", "body", "details"], 2),
    **dict.fromkeys(["h1", "h2", "h3", "h4", "h5", "h6"], 2),
    **dict.fromkeys(["div", "li", "tr", "br", "dt", "dd", "caption", "figcaption"], 1),
    **dict.fromkeys(["address", "summary", "fieldset", "legend", "center", "option"], 1),
}
_HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
_WHITESPACE = re.compile(r"\s+")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def _read_html(data: bytes, path: str) -> Document:
    from selectolax.lexbor import LexborHTMLParser

    html = _decode_html(data, path)
    if (depth := html_depth(html)) > MAX_HTML_DEPTH:
        raise UnreadableDocument(
            path, f"HTML nested {depth} elements deep (the limit is {MAX_HTML_DEPTH}, as in "
            "browsers); save the page again from a browser, or as text"
        )  # fmt: skip
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("head > title")
    page_title = _WHITESPACE.sub(" ", title_node.text()).strip() if title_node else ""
    _drop_boilerplate(tree)
    text, headings = "", ()
    for root in _content_roots(tree):
        text, headings = _html_text(root)
        if text:
            break
    first_h1 = next((h.text for h in headings if h.level == 1), None)
    title = page_title or first_h1 or _stem(path)
    return Document(path=path, text=text, title=title, kind="html", headings=headings)


def _decode_html(data: bytes, path: str) -> str:
    """Honour a `<meta charset>` that is not UTF-8; a byte order mark still wins, as in browsers."""
    declared = _CHARSET.search(data[:4096])
    if declared and not any(data.startswith(bom) for bom, _ in BOMS):
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            encoding = "utf-8"
        if encoding in ("latin-1", "ascii", "iso8859-1"):
            encoding = "cp1252"  # what browsers use for these labels
        if not encoding.startswith(("utf-8", "utf-16", "utf-32")):
            try:
                return normalise_newlines(data.decode(encoding, errors="replace"))
            except LookupError:
                pass  # a codec that is not a text encoding, such as "base64"
    return decode(data, path)


def _drop_boilerplate(tree: LexborHTMLParser) -> None:
    # Removal only unlinks nodes (lexbor keeps them in its arena), so nested matches are safe.
    for node in tree.css(_BOILERPLATE):
        node.decompose()
    for node in tree.css("header, footer"):
        if not _inside_sectioning(node):
            node.decompose()


def _inside_sectioning(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in _SECTIONING:
            return True
        parent = parent.parent
    return False


def _content_roots(tree: LexborHTMLParser) -> Iterator[LexborNode]:
    """Where the content is, best guess first: <main>, a lone <article>, then the whole body."""
    main = tree.css_first("main")
    if main is not None:
        yield main
    articles = tree.css("article")
    if len(articles) == 1:
        yield articles[0]
    yield tree.body if tree.body is not None else tree.root


def _html_text(root: LexborNode) -> tuple[str, tuple[Heading, ...]]:
    """Lay out the text under `root`: a line per block, a blank line between paragraphs.

    One pass over `traverse()`, which walks the tree in C; visiting children from Python was
    slower. It reports no element ends, so open blocks are kept on a stack: a block has ended
    once a later node's nearest block ancestor is an outer one.
    """
    out = _TextBuilder()
    line = out.line  # the hot loop appends to it directly
    open_blocks: list[tuple[int, str]] = [(0, "")]  # (mem_id, tag), outermost first
    for node in root.traverse(include_text=True):
        tag = node.tag
        if tag == "-text":
            text = node.text_content or ""
            if not text or text.isspace():
                if line:  # only spacing between inline pieces matters
                    line.append(text)
                continue
            _close_blocks(open_blocks, _nearest_block(node), out)
            if out.marker:  # a list item's "1. " or "- ", before its first text
                line.append(out.marker)
                out.marker = ""
            line.append(text)
            out.line_is_pre = out.line_is_pre or out.pre_depth > 0
        elif tag in _BREAKS:
            _close_blocks(open_blocks, _nearest_block(node), out)
            if tag == "br":
                line.append("\n") if out.pre_depth else out.brk(1)
            else:
                out.enter(tag, node.attributes.get("start") if tag == "ol" else None)
                open_blocks.append((node.mem_id, tag))
        elif tag in ("td", "th") and line:
            line.append(" | ")
    _close_blocks(open_blocks, 0, out)
    return out.result()


def _nearest_block(node: LexborNode) -> int:
    """The memory id of the closest ancestor that is a block, or 0."""
    parent = node.parent
    while parent is not None:
        if parent.tag in _BREAKS:
            return parent.mem_id
        parent = parent.parent
    return 0


def _close_blocks(open_blocks: list[tuple[int, str]], block_id: int, out: _TextBuilder) -> None:
    """End every open block nested deeper than `block_id`, the current node's nearest block."""
    while len(open_blocks) > 1 and open_blocks[-1][0] != block_id:
        out.leave(open_blocks.pop()[1])


class _TextBuilder:
    """Collects laid-out lines, with the offsets of the ones that are headings."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.line: list[str] = []  # pieces of the current line
        self.line_is_pre = False
        self.pending = 0  # newlines owed before the next line: 1 after a block, 2 a paragraph
        self.pre_depth = 0
        self.heading_level = 0
        self.headings: list[Heading] = []
        # Open lists, innermost last: the number of the last item of an <ol>, None for a
        # <ul>. Items are laid out as a plain-text file writes them ("1. Boil the water.",
        # "- Salt"), so that numbered steps read as steps.
        self.lists: list[int | None] = []
        self.marker = ""

    def enter(self, tag: str, start: str | None = None) -> None:
        self.brk(_BREAKS[tag])
        if tag == "pre":
            self.pre_depth += 1
        elif tag == "ol":
            first = int(start) if start and start.strip().isdigit() else 1
            self.lists.append(min(first, 10**6) - 1)
        elif tag == "ul":
            self.lists.append(None)
        elif tag == "li" and self.lists:
            number = self.lists[-1]
            if number is None:
                self.marker = "- "
            else:
                self.lists[-1] = number + 1
                self.marker = f"{number + 1}. "
        self.heading_level = _HEADING_LEVELS.get(tag, self.heading_level)

    def leave(self, tag: str) -> None:
        self.brk(_BREAKS[tag])
        if tag == "pre":
            self.pre_depth -= 1
        elif tag in ("ol", "ul") and self.lists:
            self.lists.pop()
        elif tag == "li":
            self.marker = ""  # an empty item writes nothing
        elif tag in _HEADING_LEVELS:
            self.heading_level = 0

    def brk(self, newlines: int) -> None:
        if self.line:
            self.flush()
        if newlines > self.pending:
            self.pending = newlines

    def flush(self) -> None:
        raw = "".join(self.line)
        self.line.clear()
        # Whitespace in <pre> is content; elsewhere it is layout.
        text = raw.strip("\n").rstrip() if self.line_is_pre else _WHITESPACE.sub(" ", raw).strip()
        self.line_is_pre = False
        if not text:
            return
        if self.parts:
            self.parts.append("\n" * self.pending)
            self.size += self.pending
        if self.heading_level:
            self.headings.append(Heading(start=self.size, level=self.heading_level, text=text))
            self.heading_level = 0  # a heading broken by <br> is named by its first line
        self.parts.append(text)
        self.size += len(text)
        self.pending = 0

    def result(self) -> tuple[str, tuple[Heading, ...]]:
        self.flush()
        return "".join(self.parts), tuple(self.headings)


# --- pdf ---------------------------------------------------------------------------------------


def _read_pdf(data: bytes, path: str) -> Document:
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
    title = meta_title or _first_line_title(text) or _stem(path)
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


# --- docx --------------------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"Heading ([1-9])")


def _read_docx(data: bytes, path: str) -> Document:
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
        or _stem(path)
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
            cells.append(_WHITESPACE.sub(" ", cell.text).strip())
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


_READERS: dict[str, Callable[[bytes, str], Document]] = {
    "txt": _read_txt,
    "md": _read_md,
    "html": _read_html,
    "pdf": _read_pdf,
    "docx": _read_docx,
}
