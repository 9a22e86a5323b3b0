"""A second retrieval for questions whose answer needs a bridge passage.

"Where does the founder of Les Films du Losange work?" retrieves the studio's passage ("...
founded by Barbet Schroeder and Éric Rohmer"), but the answer is in Éric Rohmer's passage,
which shares no word with the question. The bridge is a name the first passages mention and
the question does not: `bridge_terms` takes the capitalised names from the best sentences of
the first passages, and `follow` searches again for the question with those names, keeping
the new passages. Their sentences are scored against that second query, so the packer sees
why they matter. No model call is spent on it: the cost is one search and the sentence
embeddings of the new chunks (docs/benchmarks.md, "Multi-hop").

    >>> bridge_terms("Who founded it?", ["Les Films du Losange was founded by Éric Rohmer."])
    ['Les Films du Losange', 'Éric Rohmer']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from askdocs.answer.names import names_in
from askdocs.extractive import EmbeddingCache, Passage, score_passages
from askdocs.text import Analyzer

if TYPE_CHECKING:
    from askdocs.answer.options import AskOptions
    from askdocs.kb import KnowledgeBase

BRIDGE_SOURCES = 3  # first-hop passages whose best sentences name the bridge
MAX_BRIDGES = 4  # names added to the second query
NEW_PASSAGES = 2  # at most, from the second retrieval
BRIDGE_BUDGET = 70  # prompt tokens added to the passage budget per bridge passage


# Relations that name one entity through another ("the director of film X", "X's father").
_RELATIONS = (
    "father|mother|parent|spouse|husband|wife|son|daughter|child|brother|sister|sibling|"
    "grandfather|grandmother|uncle|aunt|mother-in-law|father-in-law|director|performer|"
    "composer|founder|author|writer|creator|producer|owner|designer|architect|inventor|"
    "publisher|manufacturer|developer|successor|predecessor|leader|president|ceo|captain"
)
_RELATION_OF = re.compile(rf"\b(?:{_RELATIONS})\b (?:of|for)\b")
_RELATION_POSSESSIVE = re.compile(rf"['\u2019]s? (?:paternal |maternal )?(?:{_RELATIONS})\b")


def needs_bridge(question: str) -> bool:
    """Whether a question names what it asks about through another entity, or compares two:
    the cases a second retrieval serves (`hops=None` follows this rule).

    Measured on the questions only: 93% of 2WikiMultihopQA's 452 and 0.4% of XQuAD's 1,190.

    >>> needs_bridge("Where was the director of film Kiss The Sky born?")
    True
    >>> needs_bridge("Who was born later, Edwin Sumner or Rene Röthke?")
    True
    >>> needs_bridge("When do spring tides come?")
    False
    """
    from askdocs.answer.packing import choices

    lowered = question.lower()
    return bool(
        choices(question) or _RELATION_OF.search(lowered) or _RELATION_POSSESSIVE.search(lowered)
    )


@dataclass(frozen=True, slots=True)
class Hop:
    """The second retrieval: the query it ran and the passages it added."""

    query: str
    passages: tuple[Passage, ...]
    names: tuple[str, ...] = ()  # the bridge names the query added


def named_bridge(answer: str, hop: Hop | None, question: str = "") -> str | None:
    """The bridge name a short answer gives, if it gives one: asked "Who is the spouse of the
    director of film Fire-Eater?", a small model answers with the director. The question
    asks about the bridge, so its answer is never the bridge itself.

    >>> named_bridge("Honkasalo", Hop("q", (), ("Finnish", "Pirjo Honkasalo")))
    'Pirjo Honkasalo'
    >>> named_bridge("Pirkko Saisio", Hop("q", (), ("Pirjo Honkasalo",))) is None
    True
    >>> named_bridge("Life Hits", Hop("q", (), ("Life Hits Again",)), "Life Hits or X?") is None
    True
    """
    if hop is None:
        return None
    said = set(Analyzer(stem=False).tokens(answer))
    if said <= set(Analyzer(stem=False).tokens(question)):
        return None  # one of the question's own names, e.g. a choice it offers
    for name in hop.names:
        words = set(Analyzer(stem=False).tokens(name))
        if said and words and (said <= words or words <= said):
            return name
    return None


def bridge_terms(question: str, sentences: Sequence[str], limit: int = MAX_BRIDGES) -> list[str]:
    """Capitalised names in `sentences` that the question does not contain, in order."""
    asked = set(Analyzer(stem=False, stopwords=False).tokens(question))
    names: list[str] = []
    for sentence in sentences:
        for name in names_in(sentence):
            words = set(Analyzer(stem=False, stopwords=False).tokens(name))
            if words and not words <= asked and name not in names:
                names.append(name)
    return names[:limit]


def follow(
    kb: KnowledgeBase,
    question: str,
    passages: Sequence[Passage],
    options: AskOptions,
    cache: EmbeddingCache,
) -> Hop | None:
    """The second retrieval, or None when the first passages name nothing new or the search
    finds only passages already retrieved."""
    sources = sorted(passages, key=lambda p: -p.best)[:BRIDGE_SOURCES]
    sentences = [p.sentences[i].text for p in sources for i in p.selected(limit=1)]
    names = bridge_terms(question, sentences)
    if not names:
        return None
    query = f"{question} {' '.join(names)}"
    seen = {p.hit.chunk_id for p in passages}
    # The first passages come back first; search deep enough to get past them.
    k = options.k + NEW_PASSAGES + len(seen)
    hits = kb.search(query, k=k, mode=options.mode, filters=options.filters)
    new = [h for h in hits if h.chunk_id not in seen][:NEW_PASSAGES]
    if not new:
        return None
    return Hop(query, tuple(score_passages(query, new, cache, Analyzer())), tuple(names))
