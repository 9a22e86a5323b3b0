"""HTML pages: the main content's text, without navigation and boilerplate, and its headings."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from askdocs.decoding import BOMS, collapse_whitespace, decode, normalise_newlines
from askdocs.errors import UnreadableDocument
from askdocs.limits import (
    MAX_HTML_DEPTH,
    html_depth,
)
from askdocs.readers.titles import stem
from askdocs.types import Document, Heading

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser, LexborNode


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
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


def read_html(data: bytes, path: str) -> Document:
    from selectolax.lexbor import LexborHTMLParser

    html = _decode_html(data, path)
    if (depth := html_depth(html)) > MAX_HTML_DEPTH:
        raise UnreadableDocument(
            path, f"HTML nested {depth} elements deep (the limit is {MAX_HTML_DEPTH}, as in "
            "browsers); save the page again from a browser, or as text"
        )  # fmt: skip
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("head > title")
    page_title = collapse_whitespace(title_node.text()) if title_node else ""
    _drop_boilerplate(tree)
    text, headings = "", ()
    for root in _content_roots(tree):
        text, headings = _html_text(root)
        if text:
            break
    first_h1 = next((h.text for h in headings if h.level == 1), None)
    title = page_title or first_h1 or stem(path)
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
        text = raw.strip("\n").rstrip() if self.line_is_pre else collapse_whitespace(raw)
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
