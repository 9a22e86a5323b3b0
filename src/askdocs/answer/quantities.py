"""A full answer to a question that asks for amounts states one for each ask.

"How many copies of the Gutenberg Bible were printed, and how many survive?" was answered
"The Gutenberg Bible was printed about 180 copies, and some survive today [1]." from a
passage that also shows "Around fifty copies, complete or partial, survive today." The
question asks for two amounts (two "how many"); the answer holds one number. When an answer
holds fewer numbers than the question has asks, each ask left without its number gets the
sentence the model saw that gives one: a shown passage sentence with a number and most of
the words of that ask ("survive"), cited, after the model's sentences.

    >>> asks("How many copies were printed, and how many survive?")
    ['copies were printed, and', 'survive?']
    >>> sorted(numbers("About 180 copies; around fifty survive, 2,000 pages."))
    ['180', '2000', '50']
"""

from __future__ import annotations

import re
from dataclasses import replace

from askdocs.answer.checks import append_marker
from askdocs.answer.packing import Packed
from askdocs.citations import strip_citations
from askdocs.extractive import Sentence, coverage
from askdocs.text import ASKING_TERMS, ITEM_NUMBER, NUMBER_WORDS, Analyzer
from askdocs.types import Answer, SentenceSupport

_ASK = re.compile(
    r"\bhow\s+(?:many|much|long|often|old|far|big|large|high|tall|deep|heavy|wide)\b",
    re.IGNORECASE,
)
_WORD_VALUES = {w: str(n) for w, n in NUMBER_WORDS.items()}
_SCALES = ("half", "dozen", "dozens", "hundred", "hundreds", "thousand", "thousands", "million",
           "millions", "billion", "billions")  # fmt: skip
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)*|\b(?:" + "|".join([*_WORD_VALUES, *_SCALES]) + r")\b", re.IGNORECASE
)
ASK_COVERAGE = 2 / 3  # of an ask's words, in the sentence that gives its amount


def asks(question: str) -> list[str]:
    """The text each "how many / much / long ..." of the question asks about: from the end
    of one ask to the start of the next."""
    found = list(_ASK.finditer(question))
    ends = [m.start() for m in found[1:]] + [len(question)] if found else []
    return [question[m.end() : end].strip() for m, end in zip(found, ends, strict=True)]


def numbers(text: str) -> set[str]:
    """The amounts `text` states, digits without separators, number words as digits; a list
    item's own number ("3. Add the coffee") is none."""
    out = set()
    for match in _NUMBER.finditer(ITEM_NUMBER.sub(" ", text)):
        said = match.group().lower()
        out.add(_WORD_VALUES.get(said, said.replace(",", "") if said[0].isdigit() else said))
    return out


def quantified(answer: Answer, packed: Packed, question: str) -> Answer:
    """`answer` with, for each ask of `question` it gives no number for, the shown passage
    sentence that does (see the module docstring); `answer` as it is when it holds as many
    numbers as there are asks, or no sentence gives the missing ones."""
    wanted = asks(question)
    said = numbers(strip_citations(answer.text))
    if not answer.answered or len(said) >= len(wanted):
        return answer
    analyzer = Analyzer()
    found: list[tuple[float, float, int, Sentence]] = []
    for ask in wanted:
        terms = set(analyzer.tokens(ask)) - ASKING_TERMS
        if not terms:
            continue
        scored = [
            (coverage(terms, s.text, analyzer), s.score, shown.number, s)
            for shown in packed.shown
            for s in (shown.passage.sentences[i] for i in shown.indices)
            if numbers(s.text)
        ]
        best = max(scored, key=lambda c: c[:2], default=None)
        if best is None or best[0] < ASK_COVERAGE or numbers(best[3].text) & said:
            continue
        if all(best[3] is not f[3] for f in found):
            found.append(best)
    found.sort(key=lambda c: (-c[0], -c[1]))
    text, sentences, cited = answer.text.rstrip(), list(answer.sentences), set()
    for _, _, number, sentence in found[: len(wanted) - len(said)]:
        line = " ".join(sentence.text.split())
        if line in strip_citations(text):
            continue
        part = append_marker(line, (number,))
        start = len(text) + 1
        text = f"{text} {part}"
        span = (number, sentence.start, sentence.end)
        sentences.append(
            SentenceSupport(part, start, len(text), (number,), 1.0, True, evidence=span)
        )
        cited.add(number)
    if not cited:
        return answer
    known = {c.number for c in answer.citations}
    citations = answer.citations + tuple(c for c in answer.passages if c.number in cited - known)
    return replace(answer, text=text, sentences=tuple(sentences), citations=citations)
