"""A short answer to a "per ..." question gives the amount per what was asked.

"How much coffee should I use per cup?" was answered "55 to 60 grams", from "A good
starting point is about 55 to 60 grams of medium-ground coffee per litre of water, roughly
one rounded tablespoon per 150 ml cup." The amount is right for a litre, not for a cup. When
the clause an answer comes from gives its amount per something else than the question asks
about, and another clause of the same sentence gives one per that, the answer becomes that
clause.

    >>> per_asked("55 to 60 grams", "About 55 to 60 grams of coffee per litre of water, "
    ...           "roughly one tablespoon per 150 ml cup.", "How much coffee per cup?")
    'roughly one tablespoon per 150 ml cup'
    >>> per_asked("one tablespoon", "About 55 to 60 grams of coffee per litre of water, "
    ...           "roughly one tablespoon per 150 ml cup.", "How much coffee per cup?") is None
    True
"""

from __future__ import annotations

import re

from askdocs.answer.lists import said_instead, supporting_sentence
from askdocs.answer.packing import Packed
from askdocs.citations import strip_citations
from askdocs.text import Analyzer
from askdocs.types import Answer

# "per" and up to three words after it: "per litre", "per 150 ml cup"
_PER = re.compile(r"\bper((?:\s+[\w.-]+){1,3})", re.IGNORECASE)
_CLAUSE = re.compile(r"[^,;:.!?]+(?:[.,](?=\d)[^,;:.!?]*)*")  # "1,000" and "1.5" stay whole


def _units(text: str, analyzer: Analyzer) -> list[set[str]]:
    """The terms after each "per" of `text`."""
    return [set(analyzer.tokens(m.group(1))) for m in _PER.finditer(text)]


def per_asked(phrase: str, sentence: str, question: str) -> str | None:
    """The clause of `sentence` that gives an amount per what `question` asks "per" about,
    when `phrase` comes from a clause that gives it per something else; None otherwise."""
    analyzer = Analyzer()
    asked = _PER.search(question)
    if asked is None:
        return None
    unit = analyzer.tokens(asked.group(1).split()[0])
    if not unit:
        return None
    said = " ".join(sentence.split())
    clauses = [m.group().strip() for m in _CLAUSE.finditer(said)]
    home = next((c for c in clauses if phrase.lower() in c.lower()), None)
    if home is None:
        return None
    units = _units(home, analyzer)
    if not units or any(unit[0] in u for u in units):
        return None  # the answer's clause says nothing per anything, or per what was asked
    return next((c for c in clauses if any(unit[0] in u for u in _units(c, analyzer))), None)


def rated(answer: Answer, packed: Packed, question: str) -> Answer:
    """A one-phrase answer given per what the question asks (see the module docstring); else
    `answer` as it is."""
    if not answer.answered or len(answer.sentences) != 1 or _PER.search(question) is None:
        return answer
    only = answer.sentences[0]
    sentence = supporting_sentence(only, packed) if only.supported else None
    clause = per_asked(strip_citations(only.text).strip().rstrip("."), sentence or "", question)
    return answer if clause is None else said_instead(answer, clause)
