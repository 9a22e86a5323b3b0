""" "Summarise the houseplant guide": a summary of one document, its sections in order, each
said by its most central sentence and cited.

A question-driven search returns the three chunks most like the words "houseplant guide",
which are rarely the ones that say what the guide is about, and the 1.5B model refused or
summarised one section (docs/benchmarks.md, "Everyday questions"). A summary is about the
whole document: `subject` reads what is to be summarised from the question, the best search
hit for it names the document, and `summarise` takes the document's first two sentences and,
from each of up to `SECTIONS` of its chunks spread over it, the sentence that opens a section
or else the one closest to the centre of the whole document (the mean of its sentence
vectors). The sentences are the document's own, so every one is supported by
the passage it cites; no model call is spent.

    >>> subject("Summarise the houseplant guide.")
    'the houseplant guide'
    >>> subject("Can you give me a summary of how HTTPS works?")
    'how HTTPS works'
    >>> subject("How do I summarise a report?") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from askdocs.answer.checks import settled_answer
from askdocs.answer.packing import Shown, citation
from askdocs.extractive import Passage
from askdocs.types import Answer

SECTIONS = 6  # sentences in a summary: one per chunk, chunks spread over the document
MIN_WORDS = 5  # a heading ("STORAGE") or a label is not a sentence to summarise with
MAX_WORDS = 60  # nor a table flattened into one "sentence"
_ASKS = re.compile(
    r"^(?:please |can you |could you )?(?:summari[sz]e|sum up|give (?:me )?(?:a |an )?"
    r"(?:short |brief )?(?:summary|overview) of|what is the gist of)\s+(?P<subject>[^?.!]{1,200})",
    re.IGNORECASE,
)


def subject(question: str) -> str | None:
    """What the question asks to summarise, or None when it does not ask for a summary."""
    match = _ASKS.match(question.strip())
    if match is None:
        return None
    said = match.group("subject").strip()
    return said or None


def _sayable(sentence: str, *, lead_in: bool = False) -> bool:
    """A sentence a summary can say: whole (a chunk may start mid-sentence), not a heading,
    a table row, code or (unless `lead_in`) a lead-in to a list."""
    text = _body(sentence)
    words = len(text.split())
    return (
        MIN_WORDS <= words <= MAX_WORDS
        and text[:1].isupper()  # not a fragment, nor a step of a list ("3. Run a ...")
        and (lead_in or not text.endswith(":"))
        and not any(mark in text for mark in ("|", "```", "->"))
    )


def _said(sentence: str) -> str:
    """The sentence as a summary says it: its body, a lead-in's colon as a full stop."""
    text = _body(sentence)
    return text[:-1] + "." if text.endswith(":") else text


_LAST_WORDS = frozenset(
    ["a", "an", "the", "of", "and", "or", "to", "in", "on", "for", "with", "by", "from", "at"]
)


def _opens_section(sentence: str) -> bool:
    r"""A sentence that follows a heading line ("Consequences\nPrint changed ...")."""
    return _body(sentence) != " ".join(sentence.split())


def _after_heading(passage: Passage, start: int) -> bool:
    """Whether the chunk's text before a sentence (at document offset `start`) ends with a
    heading line on its own: a web page's <h2> is a paragraph apart from the text under it."""
    before = passage.hit.text[: max(0, start - passage.hit.start)].rstrip()
    if "\n" not in passage.hit.text[len(before) : start - passage.hit.start]:
        return False
    last = before.rsplit("\n", 1)[-1]
    return bool(last.strip()) and _heading(last)


def _body(sentence: str) -> str:
    r"""The sentence without the heading lines it may start with, on one line.

    A heading is told from a line that wraps mid-sentence ("Around 1040 the\nChinese
    artisan ..."): it is short, capitalised, ends without punctuation or a joining word,
    and a capitalised line follows it.

    >>> _body("A short history\nBefore Gutenberg\nPrinting began in\nEast Asia.")
    'Printing began in East Asia.'
    """
    lines = sentence.strip().split("\n")
    while len(lines) > 1 and _heading(lines[0]) and lines[1].strip()[:1].isupper():
        lines = lines[1:]
    return " ".join(" ".join(lines).split())


def _heading(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 7
        and line.lstrip("#* ")[:1].isupper()
        and line.rstrip()[-1:] not in ".!?:;,"
        and words[-1].lower() not in _LAST_WORDS
    )


def glob_escape(path: str) -> str:
    """`path` as a glob that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def summarise(question: str, passages: Sequence[Passage], strength: float) -> Answer | None:
    """The summary of the document the `passages` (its chunks) come from, or None when they
    hold no sentence to say it with."""
    ordered = sorted(passages, key=lambda p: p.hit.start)
    vectors = [p.vectors for p in ordered if len(p.sentences)]
    if not vectors:
        return None
    centre = np.concatenate(vectors).mean(axis=0)
    picks: list[tuple[Passage, tuple[int, ...]]] = []
    said: set[str] = set()  # chunks overlap: a sentence is said once
    for passage in ordered:
        fit = [i for i, s in enumerate(passage.sentences) if _sayable(s.text)]
        # A section's first sentence says what it is about, even when it leads into a list
        # ("Before any web page is sent, browser and server perform a handshake:").
        leads = [
            (i,)
            for i, s in enumerate(passage.sentences)
            if (_opens_section(s.text) or _after_heading(passage, s.start))
            and _sayable(s.text, lead_in=True)
        ]
        if passage.hit.start == 0 and fit[:1] == [0]:
            # The document's opening says what it is about in its first two sentences ("HTTPS
            # is ordinary HTTP sent through an encrypted connection. The encryption comes from
            # TLS ..."): both are said, as one part.
            second = fit[1:2] == [1] and not _opens_section(passage.sentences[1].text)
            leads = [(0, 1) if second else (0,), *(x for x in leads if x != (0,))]
        central = [(max(fit, key=lambda i: float(passage.vectors[i] @ centre)),)] if fit else []
        for indices in leads or central:
            texts = {_said(passage.sentences[i].text) for i in indices}
            if not texts & said:
                said |= texts
                picks.append((passage, indices))
    if not picks:
        return None
    if len(picks) > SECTIONS:  # spread over the document: its start, middle and end
        step = len(picks) / SECTIONS
        picks = [picks[int(i * step)] for i in range(SECTIONS)]
    shown = [Shown(n, p, indices) for n, (p, indices) in enumerate(picks, 1)]
    citations = tuple(citation(s) for s in shown)
    parts = [
        (
            " ".join(_said(s.passage.sentences[i].text) for i in s.indices),
            (s.number,),
            (s.number, c.start, c.end),
        )
        for s, c in zip(shown, citations, strict=True)
    ]
    title = picks[0][0].hit.title
    return settled_answer(
        question, parts, citations, mode="summary", style="full", evidence=strength,
        note=f"a summary of {title}: the central sentence of each part, quoted",
    )  # fmt: skip
