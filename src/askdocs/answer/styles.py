"""Which form an answer takes: a short phrase, or a few cited sentences or steps.

`short` suits lookups (who, when, how many: "two litres [1]"); `full` suits what a phrase
cannot carry: steps ("How do I descale ..."), reasons ("Why ..."), summaries, comparisons,
yes/no questions (the answer and why) and two-part questions. `auto` picks by these rules on
the question's words; the everyday-questions benchmark (benchmarks/bench_everyday.py) and
XQuAD (`short` stays its style for nearly every question) measure the choice.

    >>> choose_style("How do I descale the coffee maker?")
    'full'
    >>> choose_style("How often should I descale the coffee maker?")
    'short'
    >>> choose_style("Who painted the Mona Lisa?")
    'short'
"""

from __future__ import annotations

import re

STYLES = ("auto", "short", "full")

_FULL_OPENERS = frozenset(
    [
        "why",
        "how",
        "explain",
        "describe",
        "summarise",
        "summarize",
        "summary",
        "compare",
        "contrast",
        "list",
        "outline",
        "overview",
        "tell",
        "walk",
    ]
)
# "how" asks for a way of doing something, except before these words (a quantity or manner
# that one phrase answers: "how long", "how many").
_HOW_SHORT = frozenset(
    [
        "many",
        "much",
        "long",
        "often",
        "old",
        "far",
        "big",
        "large",
        "tall",
        "high",
        "deep",
        "hot",
        "cold",
        "fast",
        "soon",
        "early",
        "late",
    ]
)
YES_NO = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "shall",
        "will",
        "would",
        "may",
        "might",
        "has",
        "have",
        "had",
        "must",
    ]
)
_FULL_PHRASES = (
    "difference between",
    "differences between",
    "what are the steps",
    "what should i do",
    "what can i do",
    "pros and cons",
    "advantages",
    "in what way",
    "what happens",
)
_WORD = re.compile(r"[a-z']+")


def choose_style(question: str) -> str:
    """`full` or `short` for a question (see the module docs)."""
    words = _WORD.findall(question.lower())
    if not words:
        return "short"
    text = " ".join(words)
    # Two questions in one: "How long does it keep, and can I freeze it?"
    if re.search(r"[,;]\s*(?:and|or|but)\s+(?:how|what|can|is|are|do|does|should|why|when)\b",
                 question.lower()):  # fmt: skip
        return "full"
    first = words[0]
    if first == "how":
        return "short" if len(words) > 1 and words[1] in _HOW_SHORT else "full"
    if first in _FULL_OPENERS or first in YES_NO:
        return "full"
    # "What were the parts of ...?", "What are the steps ...?": a list, not a phrase
    if first == "what" and len(words) > 2 and words[1] in ("are", "were") and words[2] == "the":
        return "full"
    if any(phrase in text for phrase in _FULL_PHRASES):
        return "full"
    return "short"


def resolve(style: str, question: str) -> str:
    """The style to answer in: `style` itself, or the one `auto` chooses."""
    return choose_style(question) if style == "auto" else style
