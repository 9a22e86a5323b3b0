"""Sentences inside retrieved chunks, scored against the question; extractive answers.

Prompt tokens are the cost of a local model on a CPU (~40 prompt tokens/s for a 0.5B model on
two cores), so the generator sees only the sentences of each chunk that bear on the question,
kept in document order with their character spans, so a citation still points at exact text.

A sentence's score is

    score = SIMILARITY_WEIGHT * cosine(question, sentence) + (1 - SIMILARITY_WEIGHT) * coverage

where `coverage` is the share of the question's content terms (stemmed, stop words dropped) the
sentence contains. The same score ranks sentences for the extractive answer, and its best value
over all retrieved sentences is the retrieval evidence that decides "not in the documents"
(`answer.EVIDENCE_THRESHOLD`).
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from askdocs.embeddings import Embedder
from askdocs.text import LIST_MARKER, Analyzer, sentence_spans
from askdocs.types import Hit

SIMILARITY_WEIGHT = 0.7
SENTENCES_PER_PASSAGE = 2  # at most, per chunk shown to the model
SENTENCE_MARGIN = 0.15  # keep a chunk's sentences scoring within this of its best one
EXTRACT_SENTENCES = 2  # at most, in an extractive answer
EXTRACT_MARGIN = 0.1  # the second sentence must score within this of the first
_CACHE_SIZE = 8192
_BLOCK = re.compile(r"\S(?:.|\n(?![^\S\n]*\n))*")  # text between blank lines
_FENCE = re.compile(r"^[^\S\n]*+(?:```|~~~)[^\n]*", re.MULTILINE)  # a code block's fence line
_ITEM_START = re.compile(rf"^[^\S\n]*+{LIST_MARKER}[^\S\n]", re.MULTILINE)
ITEM_WORDS = 60  # a list item up to this long is one unit, however many sentences it has
_HEADING_WORDS = 12
_CLOSING = set(".!?\u2026:;\"')]\u201d\u2019\u00bb")


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a retrieved chunk: its text, document span and score for the question."""

    text: str
    start: int  # offset in the document, like `Hit.start`
    end: int
    score: float
    cosine: float
    coverage: float


@dataclass(frozen=True, slots=True, eq=False)
class Passage:
    """A retrieved chunk with every sentence scored; `vectors` has one row per sentence."""

    hit: Hit
    sentences: tuple[Sentence, ...]
    vectors: np.ndarray

    @property
    def best(self) -> float:
        return max((s.score for s in self.sentences), default=0.0)

    def selected(
        self, *, limit: int = SENTENCES_PER_PASSAGE, margin: float = SENTENCE_MARGIN
    ) -> tuple[int, ...]:
        """Indices of the sentences to show, in document order: the best, and up to
        `limit - 1` more scoring within `margin` of it."""
        # Also tried: adding the sentence after the best one when it opens with a pronoun
        # ("Citric acid dissolves it."); on XQuAD it showed the gold answer less often.
        ranked = sorted(range(len(self.sentences)), key=lambda i: -self.sentences[i].score)
        best = self.best
        keep = [i for i in ranked[:limit] if self.sentences[i].score >= best - margin]
        return tuple(sorted(keep))


class EmbeddingCache:
    """Sentence vectors by text: a chat or an evaluation sees the same chunks again and again."""

    def __init__(self, embedder: Embedder, size: int = _CACHE_SIZE) -> None:
        self.embedder = embedder
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        # A server shares one cache between request threads; the model runs outside the lock.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.embedder.embed(missing, truncate=True), strict=True))
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        with self._lock:
            for i, text in enumerate(texts):
                self._vectors[text] = out[i] = found[text]
                self._vectors.move_to_end(text)
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return out


def coverage(question_terms: set[str], text: str, analyzer: Analyzer) -> float:
    """Share of the question's content terms found in `text`.

    >>> coverage({"rhine", "sourc"}, "The Rhine rises in the Alps.", Analyzer())
    0.5

    A comparative or superlative counts for its plain adjective, and the other way round:

    >>> coverage({"start", "earli"}, "Starting earlier helps.", Analyzer())
    1.0
    """
    if not question_terms:
        return 0.0
    found = set(analyzer.tokens(text))
    if question_terms <= found:
        return 1.0
    degrees = set().union(*(analyzer.degrees(t) for t in found))
    held = sum(t in found or not degrees.isdisjoint(analyzer.degrees(t)) for t in question_terms)
    return held / len(question_terms)


def sentence_units(text: str) -> list[tuple[int, int]]:
    r"""Spans of the sentences of a chunk worth showing on their own.

    Paragraphs (blank lines) bound sentences, and a heading line (short, no closing
    punctuation) is left out: it repeats the topic, scores high against any question about
    it, and says nothing a citation could support. A chunk of headings only is kept whole.

    >>> text = "Descaling\n\nLimescale builds up. Dissolve citric acid."
    >>> [text[a:b] for a, b in sentence_units(text)]
    ['Limescale builds up.', 'Dissolve citric acid.']

    A fenced code block is one unit, fences included, blank lines and all: split at its
    blank lines, a quote of its second half would carry a closing fence without the opening
    one. A fence the chunk does not close runs to the chunk's end.

    >>> text = "The formula:\n\n```\nA = P * (1 + r)\n\nA = 1000 * 1.05\n```\nDone."
    >>> [text[a:b] for a, b in sentence_units(text)]
    ['The formula:', '```\nA = P * (1 + r)\n\nA = 1000 * 1.05\n```', 'Done.']
    """
    units: list[tuple[int, int]] = []
    prose = 0
    for a, b in [*_code_blocks(text), (len(text), len(text))]:
        for block in _BLOCK.finditer(text, prose, a):
            for c, d in _whole_items(block.group(), sentence_spans(block.group())):
                if not _is_heading(block.group()[c:d]):
                    units.append((block.start() + c, block.start() + d))
        if b > a:
            units.append((a + len(text[a:b]) - len(text[a:b].lstrip()), b))
        prose = b
    return units or [(0, len(text.rstrip()))]


def _code_blocks(text: str) -> list[tuple[int, int]]:
    """Spans of the fenced code blocks: each fence line and the next one, in order."""
    fences = list(_FENCE.finditer(text))
    spans = []
    for i in range(0, len(fences), 2):
        end = fences[i + 1].end() if i + 1 < len(fences) else len(text.rstrip())
        spans.append((fences[i].start(), end))
    return spans


def _whole_items(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    r"""`spans` with the sentences of one short list item joined into one span.

    A list item is one step or one point, and its sentences lean on each other: "2. Add the
    garlic, cumin and paprika. Spices burn quickly, so keep them moving." Shown alone, the
    second sentence answers "Which spices?" with nothing; the item answers it.

    >>> text = "Method:\n1. Add the cumin. Spices burn quickly.\n2. Add the stock."
    >>> [text[a:b] for a, b in _whole_items(text, sentence_spans(text))]
    ['Method:', '1. Add the cumin. Spices burn quickly.', '2. Add the stock.']
    """
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    if not starts:
        return spans
    ends = [*starts[1:], len(text)]
    joined: list[tuple[int, int]] = []
    short = [len(text[a:b].split()) <= ITEM_WORDS for a, b in zip(starts, ends, strict=True)]
    for a, b in spans:
        item = bisect.bisect_right(starts, a) - 1
        inside = item >= 0 and short[item] and b <= ends[item]
        if inside and joined and joined[-1][0] >= starts[item]:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined


def _is_heading(sentence: str) -> bool:
    return len(sentence.split()) < _HEADING_WORDS and sentence.rstrip()[-1:] not in _CLOSING


def in_context(hit: Hit, sentence: str) -> str:
    """The sentence under its section heading (or document title) for scoring: a sentence
    often leaves its topic to the heading ("Limescale builds up..." under "Descaling an
    espresso machine"), and chunks are embedded with their title for the same reason."""
    # Also tried: the heading above the sentence inside the chunk, where a chunk spans two
    # sections. A bare heading ("METHOD") then replaced the title that carried the topic.
    context = (hit.heading or hit.title).strip()
    if not context or sentence.startswith(context):
        return sentence
    return f"{context}: {sentence}"


def score_passages(
    question: str, hits: Sequence[Hit], cache: EmbeddingCache, analyzer: Analyzer
) -> list[Passage]:
    """Every hit split into sentences, each scored against the question; one embedding call.

    A unit of several sentences (a list item) scores as its best sentence, so joining them
    changes what the model sees, not which units are chosen; its vector, which citation
    checks compare answers with, is the whole unit's."""
    # texts[0] is the question; per unit, the row of its own text and the rows it is scored
    # by (the same row for one sentence, then each of its sentences' for several).
    texts = [question]
    units: list[list[tuple[int, int, int, range]]] = []
    for hit in hits:
        mine = []
        for a, b in sentence_units(hit.text):
            parts = sentence_spans(hit.text[a:b])
            own = len(texts)
            texts.append(in_context(hit, hit.text[a:b]))
            if len(parts) > 1:
                texts.extend(in_context(hit, hit.text[a + c : a + d]) for c, d in parts)
            mine.append((a, b, own, range(own + (len(parts) > 1), len(texts))))
        units.append(mine)
    vectors = cache.embed(texts)
    question_vector = vectors[0]
    terms = set(analyzer.tokens(question))

    def scored(row: int) -> tuple[float, float, float]:
        cos = float(vectors[row] @ question_vector)
        cov = coverage(terms, texts[row], analyzer)
        return SIMILARITY_WEIGHT * cos + (1 - SIMILARITY_WEIGHT) * cov, cos, cov

    passages = []
    for hit, mine in zip(hits, units, strict=True):
        sentences = []
        for a, b, _, scored_by in mine:
            score, cos, cov = max(scored(row) for row in scored_by)
            sentences.append(
                Sentence(hit.text[a:b], hit.start + a, hit.start + b, round(score, 6), cos, cov)
            )
        rows = vectors[[own for _, _, own, _ in mine]]
        passages.append(Passage(hit, tuple(sentences), rows))
    return passages


def evidence(passages: Sequence[Passage]) -> float:
    """How strongly the retrieved text bears on the question: the best sentence score."""
    return max((p.best for p in passages), default=0.0)


def extract(
    passages: Sequence[tuple[int, Passage]],
    *,
    limit: int = EXTRACT_SENTENCES,
    margin: float = EXTRACT_MARGIN,
) -> list[tuple[int, Sentence]]:
    """The best sentences among numbered passages, best first: `(passage number, sentence)`.

    Only sentences the passages show (`Passage.selected`) are candidates, so an extractive
    answer quotes exactly what its citation points at.
    """
    candidates = [
        (number, passage.sentences[i]) for number, passage in passages for i in passage.selected()
    ]
    candidates.sort(key=lambda c: -c[1].score)
    if not candidates:
        return []
    best = candidates[0][1].score
    return [c for c in candidates[:limit] if c[1].score >= best - margin]
