"""The title a document gets when its format names none: a short first line, or the file name."""

from __future__ import annotations

from pathlib import Path

TITLE_MAX = 120  # a longer first line is a sentence, not a title


def stem(path: str) -> str:
    return Path(path).stem


def first_line_title(text: str) -> str | None:
    """The first non-empty line, if short enough to be a title: `"\\n Intro \\nbody" -> "Intro"`."""
    for line in text.split("\n"):
        if line.strip():
            line = line.strip()
            return line if len(line) <= TITLE_MAX else None
    return None
