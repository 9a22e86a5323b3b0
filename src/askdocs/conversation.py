"""A conversation over the knowledge base: follow-up questions made standalone before retrieval.

    chat = Conversation(kb, generator)
    chat.ask("Who designed the Eiffel Tower?")
    chat.ask("When was it built?")   # retrieves for "When was the Eiffel Tower built?"

Memory is a window of the last `window` turns; older turns are folded into a short summary
(written by the model, or extractive without one). Memory only serves to rewrite a follow-up
into a standalone query: the answer prompt holds the passages and that query alone, so every
answer stays grounded in the documents (not in earlier answers) and the prompt stays short.

A question is treated as a follow-up when it leans on context: a pronoun or demonstrative
("it", "they", "this", ...), or fewer than `MIN_STANDALONE_TERMS` content words ("And in
1990?"). Without a generator the rewrite prepends the key terms of the previous query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from askdocs.answer import AskOptions, Event, Final, stream_answer
from askdocs.answer.options import options_of
from askdocs.citations import strip_citations
from askdocs.generation import Decoding, Generator, Message
from askdocs.text import Analyzer
from askdocs.types import Answer

if TYPE_CHECKING:
    from askdocs.kb import KnowledgeBase

WINDOW = 3  # turns kept verbatim
MIN_STANDALONE_TERMS = 3
KEY_TERMS = 6  # at most, carried over by the fallback rewrite
SUMMARY_CHARS = 600  # the extractive summary keeps its most recent part
REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns with what they refer to. Reply with the rewritten question only."
)
SUMMARY_PROMPT = (
    "Summarise this conversation in at most two sentences. Keep names, numbers and facts."
)
# Words that point back at earlier turns; a question holding one is rewritten.
# "that", "there", "one" also start or join standalone questions ("Are there ...?"), so they
# are left out.
_ANAPHORA = frozenset(("it", "its", "they", "them", "their", "this", "these", "those", "he"))
_ANAPHORA |= {"him", "his", "she", "her", "former", "latter"}
_QUESTION_WORDS = frozenset(
    {"who", "whom", "whose", "what", "which", "when", "where", "why", "how"}
)
_FILLERS = frozenset(
    [
        "about",
        "also",
        "again",
        "else",
        "instead",
        "too",
        "then",
        "so",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "i",
        "you",
        "we",
        "me",
        "my",
        "your",
        "our",
        "one",
    ]
)
_PLAIN_WORDS = Analyzer(stem=False)
_STEMMED = Analyzer()
_DECODING = Decoding(temperature=0.0, max_tokens=64, stop=("\n",))


@dataclass(frozen=True, slots=True)
class Turn:
    question: str  # as asked
    query: str  # the standalone form used for retrieval
    answer: Answer


def needs_context(question: str) -> bool:
    """Whether a question leans on earlier turns.

    >>> needs_context("When was it built?"), needs_context("When was the Eiffel Tower built?")
    (True, False)
    """
    words = re.findall(r"\w+", question.lower())
    if any(w in _ANAPHORA for w in words):
        return True
    content = [w for w in _PLAIN_WORDS.tokens(question) if w not in _QUESTION_WORDS]
    return len(content) < MIN_STANDALONE_TERMS


def key_terms(text: str, *, exclude: str = "", limit: int = KEY_TERMS) -> list[str]:
    """Content words of `text` in order, without question words or words of `exclude`.

    >>> key_terms("Who designed the Eiffel Tower?", exclude="When was it built?")
    ['designed', 'eiffel', 'tower']
    """
    skip = set(_PLAIN_WORDS.tokens(exclude)) | _QUESTION_WORDS | _ANAPHORA
    words = [w for w in _PLAIN_WORDS.tokens(text) if w not in skip]
    return list(dict.fromkeys(words))[:limit]


def keeps_new_terms(question: str, rewritten: str) -> bool:
    """Whether a rewrite keeps at least half of the content words the follow-up itself brings
    (a verb such as "need" may go: "Which acid does it need?" -> "Which acid descales ...").

    >>> keeps_new_terms("What about freezing it?", "How long do I cook the lentils?")
    False
    >>> keeps_new_terms("What about freezing it?", "Can I freeze lentil soup?")
    True
    >>> keeps_new_terms("Which acid does it need?", "Which acid descales an espresso machine?")
    True
    """
    own = set(_STEMMED.tokens(question)) - set(_STEMMED.tokens(" ".join(_QUESTION_WORDS)))
    own -= set(_STEMMED.tokens(" ".join(_ANAPHORA | _FILLERS)))
    kept = own & set(_STEMMED.tokens(rewritten))
    return 2 * len(kept) >= len(own)


def standalone_query(question: str, earlier: Sequence[str]) -> str:
    """`question` made standalone from the earlier queries of a conversation (most recent
    last) without a model: the cheap rewrite, when the question needs context.

    >>> standalone_query("When was it built?", ["Who designed the Eiffel Tower?"])
    'designed eiffel tower: When was it built?'
    """
    question = " ".join(question.split())
    if earlier and needs_context(question):
        return fallback_rewrite(question, earlier[-1])
    return question


def fallback_rewrite(question: str, previous_query: str) -> str:
    """The cheap rewrite: the previous query's key terms before the follow-up.

    >>> fallback_rewrite("When was it built?", "Who designed the Eiffel Tower?")
    'designed eiffel tower: When was it built?'
    """
    terms = key_terms(previous_query, exclude=question)
    return f"{' '.join(terms)}: {question}" if terms else question


def transcript(turns: Sequence[Turn], summary: str) -> str:
    lines = [f"Earlier: {summary}"] if summary else []
    for turn in turns:
        lines.append(f"Question: {turn.query}")
        lines.append(f"Answer: {strip_citations(turn.answer.text)}")
    return "\n".join(lines)


def _clean(reply: str) -> str:
    text = reply.strip().strip('"').strip()
    return re.sub(r"^(?:standalone|rewritten)?\s*question\s*:\s*", "", text, flags=re.I).strip()


class Conversation:
    """Questions and answers over one knowledge base, remembering recent turns."""

    def __init__(
        self,
        kb: KnowledgeBase,
        generator: Generator | None = None,
        options: AskOptions | None = None,
        *,
        window: int = WINDOW,
        **changes: Any,
    ) -> None:
        self.kb = kb
        self.generator = generator
        self.window = max(1, window)
        self.options = options_of(options, changes)  # how each turn is answered
        self.turns: list[Turn] = []
        self.summary = ""

    @property
    def last(self) -> Answer | None:
        return self.turns[-1].answer if self.turns else None

    def reset(self) -> None:
        self.turns.clear()
        self.summary = ""

    def standalone(self, question: str) -> str:
        """The question as a query that needs no conversation to be understood."""
        question = " ".join(question.split())
        if not self.turns or not needs_context(question):
            return question
        if self.generator is None or self.options.extractive:
            return fallback_rewrite(question, self.turns[-1].query)
        history = transcript(self.turns, self.summary)
        reply = self._complete(
            REWRITE_PROMPT, f"{history}\n\nLast question: {question}\nRewritten question:"
        )
        rewritten = _clean(reply)
        # A rambling or empty rewrite is worse than the cheap one, and so is one that drops
        # what the follow-up asks: "What about freezing it?" after two questions on cooking
        # lentils came back as the first question, without "freezing".
        too_long = len(rewritten) > 4 * len(question) + 80
        if not rewritten or too_long or not keeps_new_terms(question, rewritten):
            return fallback_rewrite(question, self.turns[-1].query)
        return rewritten

    def stream(self, question: str) -> Iterator[Event]:
        """`stream_answer` events for the standalone form of `question`; remembers the turn."""
        query = self.standalone(question)
        for event in stream_answer(self.kb, self.generator, query, self.options):
            if isinstance(event, Final):
                self._remember(Turn(question, query, event.answer))
            yield event

    def ask(self, question: str) -> Answer:
        for event in self.stream(question):
            if isinstance(event, Final):
                return event.answer
        raise AssertionError("stream_answer always ends with Final")  # pragma: no cover

    def _remember(self, turn: Turn) -> None:
        self.turns.append(turn)
        if len(self.turns) > self.window:
            old, self.turns = self.turns[: -self.window], self.turns[-self.window :]
            self.summary = self._summarise(old)

    def _summarise(self, old: Sequence[Turn]) -> str:
        if self.generator is None:
            return extractive_summary(self.summary, old)
        reply = self._complete(SUMMARY_PROMPT, transcript(old, self.summary))
        return " ".join(reply.split()) or extractive_summary(self.summary, old)

    def _complete(self, system: str, user: str) -> str:
        assert self.generator is not None
        messages = (Message("system", system), Message("user", user))
        return "".join(self.generator.stream(messages, _DECODING))


def extractive_summary(summary: str, old: Sequence[Turn]) -> str:
    """Older turns as "asked X; answer Y" notes, keeping the most recent `SUMMARY_CHARS`.

    >>> a = Answer("q", "Gustave Eiffel [1]. More text.", True, ())
    >>> extractive_summary("", [Turn("Who designed it?", "Who designed it?", a)])
    'Asked: Who designed it? Answer: Gustave Eiffel.'
    """
    notes = [summary] if summary else []
    for turn in old:
        first = strip_citations(turn.answer.text).split(". ")[0].rstrip(".")
        notes.append(f"Asked: {turn.query} Answer: {first}.")
    text = " ".join(notes)
    return text[-SUMMARY_CHARS:].lstrip()
