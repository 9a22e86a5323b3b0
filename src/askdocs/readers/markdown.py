"""Markdown: the text as written, a front-matter or first-heading title, and ATX/setext headings."""

from __future__ import annotations

import re
from collections.abc import Iterator

from askdocs.decoding import decode
from askdocs.readers.titles import stem
from askdocs.types import Document, Heading

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


def read_md(data: bytes, path: str) -> Document:
    # The text stays exactly what the user wrote; only headings and the title are extracted.
    text = decode(data, path)
    front = _FRONT_MATTER.match(text)
    body_start = front.end() if front else 0
    headings = tuple(_markdown_headings(text, body_start))
    title = (
        (_front_matter_title(front.group(1) or "") if front else None)
        or next((h.text for h in headings if h.level == 1), None)
        or stem(path)
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
