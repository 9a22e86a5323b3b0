"""The prompt: which passages and sentences the model sees, numbered, within a token budget.

Prompt tokens are the cost of a local model on a CPU, so few passages are shown, each reduced
to the sentences that bear on the question (`extractive.Passage.selected`), and the rendered
prompt is counted with the model's own tokenizer before generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from askdocs.citations import Source
from askdocs.errors import ContextTooLong
from askdocs.extractive import Passage
from askdocs.generation import Generator, Message
from askdocs.types import Citation

REFUSAL = "The passages do not contain the answer."
# How many passages are shown: on 400 XQuAD-en questions, 3 passages of at most 2 sentences
# (2.7 sentences on average) hold the gold answer for 94.1% of questions; 3 sentences each raise
# that to 95.2% for 21% more prompt, 1 sentence each drops it to 85.7%. The best sentence
# overall holds it for 82.9% (an extractive answer's first sentence).
MAX_PASSAGES = 3
PASSAGE_MARGIN = 0.2  # a passage whose best sentence trails the top one by more is left out
PASSAGE_BUDGET = 200  # prompt tokens the passages may take: prompt time is the cost on a CPU
_TOKEN_SLACK = 2  # tokens two texts may gain when rendered next to each other

# Small models answer in whole copied sentences, or with a bare "[1]", unless held to the form
# the answer should take. The prompt asks for the shortest phrase and shows one worked example;
# `answer_grammar` then constrains decoding to "<phrase> [n]". On 24 XQuAD questions with Qwen
# 0.5B (greedy): one-sentence prompt F1 19.9; this prompt alone 20.8; with the grammar 34.0;
# with the title after the passage instead of before it (the model copied "Title: ...") 38.3.
SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages the user gives you.\n"
    "Reply with the shortest phrase from the passages that answers the question (a name, "
    "number, date or a few words, not a whole sentence), then the number of the passage it "
    "comes from in square brackets.\n"
    "Example. Passages: [1] The boiler holds two litres and heats in 90 seconds. "
    "(from: Coffee maker) Question: How much water does the boiler hold? "
    "Answer: two litres [1]\n"
    f"If the passages do not contain the answer, reply exactly: {REFUSAL}"
)
ANSWER_CHARS = 120  # the longest phrase the grammar lets through
# A full answer: a few sentences or steps, each cited. Passages are shown as runs of up to
# `FULL_RUNS[0]` sentences from just before the best one, within `FULL_BUDGET` prompt tokens.
FULL_PROMPT = (
    "You answer questions using only the numbered passages the user gives you.\n"
    "Answer in one to four short sentences, or as numbered steps when the question asks how "
    "to do something. Give the facts the question asks for: the steps, the reason, the "
    "comparison or the summary, in the passages' own words. End every sentence or step with "
    "the number of the passage it comes from in square brackets, like [1].\n"
    f"Only if the passages say nothing about the question, reply exactly: {REFUSAL}"
)
FULL_PASSAGES = 3
FULL_RUNS = (7, 5, 3)
FULL_BUDGET = 420
FULL_PART_CHARS = 300  # the longest sentence or step the grammar lets through
_CJK = "\\u3000-\\u9fff\\uac00-\\ud7af\\uff00-\\uffef"
STRUCTURED_PROMPT = (
    "You fill in a JSON object using only the numbered passages the user gives you. "
    "Leave out or set to null what the passages do not say."
)


@dataclass(frozen=True, slots=True, eq=False)
class Shown:
    """A passage as numbered in the prompt: which of its sentences the model sees."""

    number: int
    passage: Passage
    indices: tuple[int, ...]

    @property
    def text(self) -> str:
        return _join(self.passage, self.indices)

    def block(self) -> str:
        # The title gives a sentence its topic (without it F1 fell from .45 to .39 on 10
        # XQuAD questions). After the text, not before: as "Title: text" it was copied.
        return f"[{self.number}] {self.text} (from: {self.passage.hit.title})"


@dataclass(frozen=True, slots=True)
class Packed:
    messages: tuple[Message, ...]
    shown: tuple[Shown, ...]
    prompt_tokens: int


def _join(passage: Passage, indices: Sequence[int]) -> str:
    """Shown sentences in document order; " … " marks sentences left out between them."""
    parts: list[str] = []
    for n, i in enumerate(indices):
        if n:
            parts.append(" " if i == indices[n - 1] + 1 else " … ")
        parts.append(passage.sentences[i].text)
    return "".join(parts)


def citation(shown: Shown) -> Citation:
    hit, sentences = shown.passage.hit, shown.passage.sentences
    spans = tuple((sentences[i].start, sentences[i].end) for i in shown.indices)
    return Citation(
        number=shown.number,
        chunk_id=hit.chunk_id,
        path=hit.path,
        title=hit.title,
        page=hit.page,
        start=spans[0][0] if spans else hit.start,
        end=spans[-1][1] if spans else hit.end,
        text=shown.text,
        score=shown.passage.best,
        spans=spans,
    )


def user_prompt(question: str, shown: Sequence[Shown]) -> str:
    blocks = "\n".join(s.block() for s in shown)
    return f"Passages:\n{blocks}\n\nQuestion: {question}"


def messages_for(
    question: str, shown: Sequence[Shown], *, structured: bool = False, style: str = "short"
) -> tuple[Message, ...]:
    # The system prompt is fixed and first, so its KV prefix is reused from one question to
    # the next; everything that varies comes after it.
    system = STRUCTURED_PROMPT if structured else FULL_PROMPT if style == "full" else SYSTEM_PROMPT
    return (Message("system", system), Message("user", user_prompt(question, shown)))


def answer_grammar(passages: int, *, digits: bool = True) -> str:
    """GBNF for a short answer: a phrase on one line, then one citation of a shown passage;
    without `digits`, a phrase with no digit (a place: "Where did he die?" was answered
    with the death date, which stood next to the place in the passage).

    >>> print(answer_grammar(3))
    root ::= phrase " [" [1-3] "]"
    phrase ::= [^\\[\\]\\n]{2,120}
    >>> print(answer_grammar(1, digits=False).splitlines()[1])
    phrase ::= [^\\[\\]\\n0-9]{2,120}
    """
    numbers = f"[1-{passages}]" if passages > 1 else '"1"'
    banned = "\\[\\]\\n" + ("" if digits else "0-9")
    return f'root ::= phrase " [" {numbers} "]"\nphrase ::= [^{banned}]{{2,{ANSWER_CHARS}}}'


def full_grammar(passages: int, *, cjk: bool = False) -> str:
    """GBNF for a full answer: one to six runs of text, each ending in citations of shown
    passages.

    A run may hold more than one sentence: held to one sentence per marker, the 1.5B model
    fought the grammar (".descaling minerals ...", "4.5.6.7.") and its answers got worse, so
    the checker attaches or flags the citation of each sentence instead. Unless the
    passages are in a CJK script, CJK characters are not allowed: the Qwen models drift into
    Chinese mid-word otherwise ("to ensure even生长").

    >>> print(full_grammar(2).splitlines()[0])
    root ::= part (sep part){0,5}
    """
    numbers = f"[1-{passages}]" if passages > 1 else '"1"'
    banned = "\\[\\]\\n" + ("" if cjk else _CJK)
    return "\n".join(
        (
            "root ::= part (sep part){0,5}",
            'sep ::= " " | "\\n"',
            f'part ::= [^ {banned}] [^{banned}]{{3,{FULL_PART_CHARS}}} cite "."?',
            f'cite ::= " [" {numbers} (", " {numbers})? "]"',
        )
    )


def has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in text)


def grammar_for(style: str, packed: Packed, question: str = "") -> str | None:
    """The grammar decoding follows for `style` over the packed passages (None: none shown).

    A short answer to a question that offers its choices ("Which film came out first, X or
    Y?") is held to one of them.
    """
    n = len(packed.shown)
    if not n:
        return None
    if style != "full":
        offered = choices(question)
        if offered:
            return choice_grammar(offered, n)
        return answer_grammar(n, digits=not asks_where(question))
    return full_grammar(n, cjk=any(has_cjk(m.content) for m in packed.messages))


def asks_where(question: str) -> bool:
    """Whether the question asks for a place: "Where ...?", "In which city ...?".

    >>> asks_where("Where was Henry Edwards born?"), asks_where("When did he die?")
    (True, False)
    """
    lowered = question.lower().lstrip()
    return lowered.startswith("where ") or bool(_PLACE_ASKED.match(lowered))


_PLACE_ASKED = re.compile(r"(?:in|at|from) (?:which|what) (?:city|country|town|place|state)\b")


def choices(question: str) -> tuple[str, str] | None:
    """The two choices a question ends with, offered after a comma ("..., A or B?").

    >>> choices("Who was born later, Edwin Vose Sumner Jr. or Rene Röthke?")
    ('Edwin Vose Sumner Jr.', 'Rene Röthke')
    >>> choices("Which is older, Una Storia (1969 Film) or Ta Chvíle, Ten Okamžik?")
    ('Una Storia (1969 Film)', 'Ta Chvíle, Ten Okamžik')
    >>> choices("Is it red or blue?") is None
    True
    """
    text = question.strip().rstrip("?").rstrip()
    or_at = text.rfind(" or ")
    comma = text.rfind(", ", 0, max(or_at, 0))
    if or_at < 0 or comma < 0:
        return None
    first, second = text[comma + 2 : or_at].strip(), text[or_at + 4 :].strip()
    if not first or not second or len(first) + len(second) > 2 * ANSWER_CHARS:
        return None
    return first, second


def choice_grammar(offered: Sequence[str], passages: int) -> str:
    r"""GBNF for a short answer that is one of `offered`, then one citation.

    >>> print(choice_grammar(("Life Hits", 'It"s'), 2))
    root ::= choice " [" [1-2] "]"
    choice ::= "Life Hits" | "It\"s"
    """
    numbers = f"[1-{passages}]" if passages > 1 else '"1"'
    quoted = " | ".join(json.dumps(o, ensure_ascii=False) for o in offered)
    return f'root ::= choice " [" {numbers} "]"\nchoice ::= {quoted}'


def candidates(
    passages: Sequence[Passage], limit: int = MAX_PASSAGES, pinned: Sequence[Passage] = ()
) -> list[Passage]:
    """Passages worth showing, best first: few and close to the best one.

    `passages` come in retrieval order. The first retrieved passage is always shown, ranked
    by its best sentence like the others: the search ranks whole chunks, the sentence score
    only the sentences that look like the question ("Descale the machine as described
    above." beats the DESCALING section's steps), so dropping the search's best chunk lost
    the answer. `pinned` passages (a bridge passage, see `hops.py`) are shown too, after the
    others.
    """
    ranked = sorted(passages, key=lambda p: -p.best)
    if not ranked:
        return list(pinned[:limit])
    top = ranked[0].best
    must = [passages[0], *pinned]
    keep = [p for p in ranked if p.best >= top - PASSAGE_MARGIN and p not in must]
    room = max(0, limit - len(must))
    chosen = set(keep[:room]) | set(must)
    return [p for p in [*ranked, *pinned] if p in chosen][:limit]


def pack(
    question: str,
    passages: Sequence[Passage],
    generator: Generator,
    *,
    max_tokens: int,
    budget: int = PASSAGE_BUDGET,
    structured: bool = False,
    style: str = "short",
    pinned: Sequence[Passage] = (),
    whole: Sequence[Passage] = (),
) -> Packed:
    """Number and pack the best passages into the prompt, best first.

    Passages in `whole` are shown whole when they fit: a passage known to be about the
    question's subject (`chain.py`) says what is asked in a sentence that does not name it
    ("He was born in ..."), which the sentence scores rank below the one that does.

    The prompt never exceeds `context_length - max_tokens` (room is kept for the answer); the
    passages take at most `budget` tokens. A passage that does not fit whole is tried with
    its best sentence alone, then skipped. Raises ContextTooLong if even the question and the
    instructions do not fit.
    """
    limit = generator.context_length - max_tokens
    base = generator.prompt_tokens(messages_for(question, [], structured=structured, style=style))
    if base > limit:
        raise ContextTooLong(
            f"the question and instructions take {base} tokens, but the "
            f"{generator.context_length}-token context minus {max_tokens} tokens reserved "
            f"for the answer leaves {limit}; shorten the question or lower max_tokens"
        )
    room = min(limit - base, budget)
    shown: list[Shown] = []
    # With bridge passages, one passage fewer of the first retrieval: the prompt is the cost
    limit_passages = (FULL_PASSAGES if style == "full" else MAX_PASSAGES) + len(pinned)
    limit_passages -= 1 if pinned else 0
    chosen = candidates(passages, limit_passages, pinned)
    for passage in sorted(chosen, key=lambda p: p not in whole):  # whole ones first
        fallbacks = _fallbacks(passage, style)
        if passage in whole:
            fallbacks.insert(0, tuple(range(len(passage.sentences))))
        for indices in fallbacks:
            trial = Shown(len(shown) + 1, passage, indices)
            cost = generator.count_tokens(trial.block()) + _TOKEN_SLACK
            if cost <= room:
                shown.append(trial)
                room -= cost
                break
    return _verified(question, shown, generator, limit, structured, style)


def _fallbacks(passage: Passage, style: str = "short") -> list[tuple[int, ...]]:
    """Which sentences of a passage to show, then smaller choices if that does not fit."""
    selected = passage.selected()
    best = max(selected, key=lambda i: passage.sentences[i].score, default=None)
    if best is None:
        return [selected]
    if style == "full":
        # Steps, reasons and table rows follow the sentence that matches the question
        # ("DESCALING ... Descale every month ... 1. Fill the reservoir ..."): show a run of
        # sentences from just before the best one, then shorter runs.
        n = len(passage.sentences)
        start = max(0, best - 1)
        runs = [tuple(range(start, min(n, start + size))) for size in FULL_RUNS]
        return list(dict.fromkeys([*runs, selected, (best,)]))
    return [selected] if len(selected) == 1 else [selected, (best,)]


def _verified(
    question: str,
    shown: list[Shown],
    generator: Generator,
    limit: int,
    structured: bool,
    style: str,
) -> Packed:
    """Count the rendered prompt exactly; drop the last passage while it is over the limit."""
    while True:
        messages = messages_for(question, shown, structured=structured, style=style)
        total = generator.prompt_tokens(messages)
        if total <= limit or not shown:
            return Packed(messages, tuple(shown), total)
        shown = shown[:-1]


def sources(shown: Sequence[Shown]) -> dict[int, Source]:
    out = {}
    for s in shown:
        sentences = s.passage.sentences
        spans = tuple((sentences[i].start, sentences[i].end) for i in s.indices)
        out[s.number] = Source(s.number, s.text, s.passage.vectors[list(s.indices)], spans)
    return out
