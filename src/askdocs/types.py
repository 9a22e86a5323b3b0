"""Data that flows through the pipeline: plain frozen records, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a paged document: its 1-based number and its span in `Document.text`."""

    number: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading found in a document, with the offset in `Document.text` where it starts."""

    start: int
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """The text extracted from one file, with what is needed to point back into it."""

    path: str
    text: str
    title: str
    kind: str  # "txt", "md", "html", "pdf", "docx"
    pages: tuple[Page, ...] = ()
    headings: tuple[Heading, ...] = ()


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document sized for the embedder. `text == document.text[start:end]`."""

    ord: int
    text: str
    start: int
    end: int
    n_tokens: int
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a stored chunk, where it comes from, and how each retriever scored it."""

    chunk_id: int
    text: str
    path: str
    title: str
    kind: str
    start: int
    end: int
    page: int | None
    heading: str | None
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    also_in: tuple[str, ...] = ()  # other paths whose content is identical


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage an answer cites: `[number]` in the answer text refers to it."""

    number: int
    chunk_id: int
    path: str
    title: str
    page: int | None
    start: int  # document offsets: `text` is what the model saw of `document.text[start:end]`
    end: int
    text: str
    score: float  # how well the passage matches the question (best sentence score)
    # The document spans of the sentences shown, in order; the passage is these sentences
    # only, joined with " … " where sentences were skipped.
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    """One sentence of an answer and how well the passages it cites support it."""

    text: str
    start: int
    end: int
    cites: tuple[int, ...]
    support: float  # 0..1, see citations.py for how it is computed
    supported: bool
    problems: tuple[str, ...] = ()  # e.g. "cites [7], which does not exist", "no citation"
    # Citations the checker attached: the model cited nothing, or only passages that do not
    # support the sentence (those markers are then dropped from the answer text).
    added: tuple[int, ...] = ()
    # (citation number, document start, document end) of the passage sentence that best
    # supports this one, so a reader can jump to the exact text.
    evidence: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A grounded answer, or a refusal that shows the closest passages instead."""

    question: str
    text: str
    answered: bool  # False: "the documents do not contain the answer"
    citations: tuple[Citation, ...]
    sentences: tuple[SentenceSupport, ...] = ()
    passages: tuple[Citation, ...] = ()  # every passage the model saw, numbered as in the prompt
    timings: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    # how it was made: "generative", "extractive" (quoted), "structured" (JSON), or said in
    # code from the passages: "compared" (dates), "chained" (links), "summary", "steps",
    # "table" (rows a question picks)
    mode: str = "generative"
    style: str = "short"  # or "full": the form the answer was asked to take
    draft: str = ""  # the model's text before checking (empty in extractive mode)
    reason: str = ""  # why the answer was refused, when `answered` is False
    evidence: float = 0.0  # retrieval evidence: best question-sentence score, see extractive.py
    data: Any = None  # the parsed JSON value in structured mode
    note: str = ""  # what the reader should know: e.g. the model's answer was replaced by quotes


@dataclass(frozen=True, slots=True)
class Item:
    """One text to classify or cluster: a stored document or chunk, or a row of a file.

    `id` is the document's path, `path#ord` for a chunk, or the row number of a file;
    `vector` is the stored embedding (a document's: the normalised mean of its chunks'),
    None when the text is not from the store.
    """

    id: str
    text: str
    title: str = ""
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
