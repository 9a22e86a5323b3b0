"""What a file may cost to read: linear checks that run before a parser sees hostile input.

Parsers are well-kept libraries, but some inputs make any of them slow or huge: deeply nested
HTML, zip bombs, documents of a million empty paragraphs. These checks bound the cost up front,
in one pass and little memory, and raise `UnreadableDocument` with the reason.
"""

from __future__ import annotations

import io
import re

from askdocs.errors import UnreadableDocument

# A standard HTML parser looks down its stack of open elements at most start tags, so nesting
# costs depth^2: 200,000 nested divs (2.2 MB) took 112 s. Browsers flatten the DOM at 512 levels;
# deeper nesting is refused before parsing. The depth is estimated in one linear scan of the
# tags, leaving out void elements and those whose end tag real pages often omit.
MAX_HTML_DEPTH = 512
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*+)")
_NOT_NESTING = frozenset(  # void elements, and those whose end tag pages often omit
    [
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "image",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
        "p",
        "li",
        "dt",
        "dd",
        "option",
        "optgroup",
        "tr",
        "td",
        "th",
        "tbody",
        "thead",
        "tfoot",
        "colgroup",
        "caption",
        "rb",
        "rt",
        "rp",
        "rtc",
        "html",
        "head",
        "body",
    ]
)


def html_depth(text: str) -> int:
    """The deepest nesting of elements that close explicitly, from a linear scan of the tags.

    >>> html_depth("<div><p>a<div><b>x</b></div></div><br>")
    3
    """
    depth = deepest = 0
    for match in _HTML_TAG.finditer(text):
        if match.group(2).lower() in _NOT_NESTING:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


# A .docx is a zip: a 1 MB file can inflate to 1 GB (13.8 s and 2.35 GB before this check), and
# 1M paragraphs of a few bytes each cost python-docx about 1.8 GB. Both are refused before
# python-docx sees the file: the members are inflated once, streaming, against these caps,
# because the sizes a zip declares can lie.
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_DOCX_PARAGRAPHS = 200_000  # a 1,000-page report has about 20,000
_UNZIP_BLOCK = 1 << 20


def check_zip(data: bytes, path: str, *, limit: int = MAX_UNZIPPED_BYTES) -> dict[str, int]:
    """Each member's real inflated size, read in blocks; raises UnreadableDocument as soon as
    the total passes `limit` (or the zip declares more), so a zip bomb costs at most `limit`
    bytes of inflating and one block of memory. Returns {member name: size}."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        reason = f"corrupt or not a .docx file ({type(exc).__name__}: {exc})"
        raise UnreadableDocument(path, f"{reason}; an old .doc must be saved as .docx") from exc
    with archive:
        declared = sum(info.file_size for info in archive.infolist())
        if declared > limit:
            raise UnreadableDocument(path, _too_big(declared, limit, len(data)))
        sizes: dict[str, int] = {}
        total = 0
        for info in archive.infolist():
            try:
                with archive.open(info) as member:
                    while block := member.read(_UNZIP_BLOCK):
                        total += len(block)
                        sizes[info.filename] = sizes.get(info.filename, 0) + len(block)
                        if total > limit:
                            raise UnreadableDocument(path, _too_big(total, limit, len(data)))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise UnreadableDocument(
                    path, f"corrupt zip member {info.filename} ({exc})"
                ) from exc
    return sizes


def _too_big(size: int, limit: int, packed: int) -> str:
    return (
        f"inflates to more than {limit // 2**20} MB ({size // 2**20}+ MB from "
        f"{packed // 1024} KB): a zip bomb or a document too large to read"
    )


_DOCX_PARAGRAPH = re.compile(rb"<w:p[ />]")


def docx_paragraphs(data: bytes) -> int:
    """Paragraph elements in the main part, counted in the raw XML without building a tree.
    The 4 bytes kept between blocks are shorter than a match: none is counted twice."""
    import zipfile

    count, tail = 0, b""
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open("word/document.xml") as xml:
        while block := xml.read(_UNZIP_BLOCK):
            chunk = tail + block
            count += len(_DOCX_PARAGRAPH.findall(chunk))
            tail = chunk[-4:]
    return count
