"""Bytes to text for the readers: UTF-8, byte-order-marked UTF-16/32, and UTF-16 without a mark.

Text that is not any of these is refused with the offset of the first bad byte, and files that
hold NUL bytes are called binary, so nothing is guessed from a legacy code page.
"""

from __future__ import annotations

import codecs
import re

from askdocs.errors import UnreadableDocument

# UTF-32 first: its little-endian BOM begins with the UTF-16 one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes, path: str) -> str:
    """Decode UTF-8 (BOM optional) or BOM-marked UTF-16/32, and normalise newlines to "\\n"."""
    bom, encoding = next(((b, e) for b, e in BOMS if data.startswith(b)), (b"", "utf-8"))
    if encoding == "utf-8" and b"\x00" in data:
        encoding = _utf16_without_bom(data) or encoding
    if encoding == "utf-8" and b"\x00" in data:
        raise UnreadableDocument(path, "looks like a binary file, not text")
    try:
        text = data[len(bom) :].decode(encoding)
    except UnicodeDecodeError as exc:
        offset = exc.start + len(bom)
        label = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        reason = f"not valid {label}: invalid byte 0x{data[offset]:02x} at offset {offset}"
        raise UnreadableDocument(path, f"{reason}; convert it to UTF-8") from exc
    if "\x00" in text:
        raise UnreadableDocument(path, "looks like a binary file, not text")
    return normalise_newlines(text)


def _utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" for text saved without a byte order mark, else None.

    Text in a Latin script has a NUL as the high byte of nearly every character, so NULs sit at
    odd offsets (little-endian) or even ones (big-endian), almost never at the others; binary
    files scatter them. The verdict stands only if the whole file then decodes.

    >>> _utf16_without_bom("Hello, world".encode("utf-16-le"))
    'utf-16-le'
    """
    sample = data[:65536]
    if len(data) % 2 or len(sample) < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    for encoding, nuls, others in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if nuls >= 0.3 * half and others <= 0.01 * half:
            try:
                decoded = data.decode(encoding)
            except UnicodeDecodeError:
                return None
            return encoding if "\x00" not in decoded else None
    return None


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_WHITESPACE = re.compile(r"\s+")


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace as one space, none at the ends: `" a \\n\\t b " -> "a b"`."""
    return _WHITESPACE.sub(" ", text).strip()
