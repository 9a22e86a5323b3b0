"""A short name for a topic, written by the language model from its keywords and texts."""

from __future__ import annotations

from collections.abc import Sequence

from askdocs.generation import Decoding, Generator, Message

MAX_TEXT_CHARS = 300


def llm_label(generator: Generator, keywords: Sequence[str], texts: Sequence[str]) -> str:
    """Two to five words naming what the texts share; the first line of the answer."""
    shown = "\n".join(f"- {t[:MAX_TEXT_CHARS]}" for t in texts)
    messages = [
        Message("system", "You name topics. Answer with a short title of two to five words."),
        Message("user", f"Keywords: {', '.join(keywords)}\nTexts:\n{shown}\nTitle:"),
    ]
    answer = "".join(generator.stream(messages, Decoding(temperature=0.0, max_tokens=12)))
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    return first.strip(" \"'*#.:")[:80]
