"""How-to questions answered with a document's own numbered steps, each one cited.

"How do I descale the coffee maker?" is answered in the manual's DESCALING section by five
numbered steps. Shown the passages, the 1.5B model wrote two of them and was cut off
mid-sentence; for "What should I do before using the coffee maker for the first time?" it
said the passages do not hold the answer, beside the FIRST USE list (docs/benchmarks.md,
"Everyday questions"). So a how-to question whose words name the heading of a numbered
list, in a document the search returned and near a passage it returned, is answered with
that list: every step quoted whole and cited to the passage it is in. No model call.

    >>> asks_steps("How do I descale the coffee maker?")
    True
    >>> asks_steps("How often should I descale it?")
    False
    >>> asks_steps("How does the TLS 1.3 handshake work?")
    True
    >>> [(s.heading, len(s.steps)) for s in lists_in("CLEANING\\n1. Unplug it.\\n2. Wipe it.\\n")]
    [('CLEANING', 2)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askdocs.answer.checks import settled_answer
from askdocs.text import Analyzer
from askdocs.types import Answer, Citation, Hit

_ASKS = re.compile(
    r"^(?:how (?:do|can|should|would|must) (?:i|we|you|one)\b|how to\b"
    r"|what (?:should|do|must) (?:i|we|you|one) do\b|what are the steps\b"
    r"|(?:list|give me|show me|tell me) the steps\b"
    r"|how (?:does|do) [^?]{1,80}\bwork\b)",
    re.IGNORECASE,
)
_ITEM = re.compile(r"[ \t]*(\d{1,2})[.)][ \t]+\S")
_BULLET = re.compile(r"[ \t]*[-*\u2022][ \t]+\S")
_HEADING_LOOKBACK = 8  # lines above a list's first step that may hold its heading
MAX_DOCUMENTS = 3  # documents of the best hits whose lists are considered
# A list headed "Method" or "Instructions" is the document's own procedure: it answers a
# question that names the document's subject (its title) and only a verb of doing.
_GENERIC = frozenset(Analyzer().tokens("method instructions steps directions procedure"))
_ASKING = frozenset(Analyzer().tokens("how do i we you one can should would must what steps"))
_DOING = frozenset(Analyzer().tokens("make cook prepare do use build install set bake brew"))


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    start: int  # document offsets of the whole step, its wrapped lines included
    end: int
    text: str  # on one line


@dataclass(frozen=True, slots=True)
class StepList:
    heading: str
    intro: str  # the lines between the heading and the first step
    start: int  # the heading's offset (the first step's when there is no heading)
    steps: tuple[Step, ...]

    @property
    def end(self) -> int:
        return self.steps[-1].end


def asks_steps(question: str) -> bool:
    """Whether the question asks how to do something (step by step)."""
    return _ASKS.match(question.strip()) is not None


def lists_in(text: str) -> list[StepList]:
    """The numbered lists of a document (1., 2., ... or 1), 2), ...), with their headings.

    A step runs on over wrapped lines until a blank line, a bullet or the next step; a blank
    line between two steps does not end the list (Markdown), any other line does.
    """
    lines: list[tuple[int, str]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        lines.append((offset, line.rstrip("\r\n")))
        offset += len(line)
    found: list[StepList] = []
    i = 0
    while i < len(lines):
        item = _ITEM.match(lines[i][1])
        if item is None or int(item.group(1)) != 1:
            i += 1
            continue
        first, steps = i, []
        while i < len(lines):
            item = _ITEM.match(lines[i][1])
            if item is None or int(item.group(1)) != len(steps) + 1:
                break
            start, parts = lines[i][0], [lines[i][1].strip()]
            i += 1
            while i < len(lines) and _continues(lines[i][1], parts[-1]):
                parts.append(lines[i][1].strip())
                i += 1
            end = lines[i - 1][0] + len(lines[i - 1][1])
            body = re.sub(r"^\d{1,2}[.)]\s+", "", " ".join(parts))
            steps.append(Step(len(steps) + 1, start, end, body))
            gap = i
            while gap < len(lines) and not lines[gap][1].strip():
                gap += 1
            if gap > i and gap < len(lines) and _ITEM.match(lines[gap][1]):
                i = gap  # a Markdown list with blank lines between its steps
        if len(steps) >= 2:
            heading, intro, at = _heading_above(lines, first)
            found.append(StepList(heading, intro, at, tuple(steps)))
    return found


def _continues(line: str, previous: str) -> bool:
    """A wrapped line of the step above: not blank, not a new step or bullet, and indented
    or following a line that does not end a sentence."""
    if not line.strip() or _ITEM.match(line) or _BULLET.match(line):
        return False
    return line[:1] in " \t" or previous.rstrip()[-1:] not in ".!?:"


def _heading_above(lines: Sequence[tuple[int, str]], first: int) -> tuple[str, str, int]:
    """(heading, intro, offset) of the list whose first step is line `first`."""
    intro: list[str] = []
    for j in range(first - 1, max(-1, first - 1 - _HEADING_LOOKBACK), -1):
        line = lines[j][1].strip()
        if not line:
            continue
        if _ITEM.match(lines[j][1]) or _BULLET.match(lines[j][1]):
            break  # another list's end: no heading of this one's above it
        if _is_heading(line):
            return line.lstrip("#").strip(), " ".join(reversed(intro)), lines[j][0]
        intro.append(line)
    return "", " ".join(reversed(intro)), lines[first][0]


def _is_heading(line: str) -> bool:
    """A Markdown heading, a line in capitals ("FIRST USE"), or a short line without an
    ending mark ("Descaling")."""
    if line.startswith("#"):
        return True
    words = line.split()
    if not 0 < len(words) <= 7 or line[-1:] in ".!?,;":
        return False
    letters = [c for c in line if c.isalpha()]
    return bool(letters) and (all(c.isupper() for c in letters) or line[:1].isupper())


def steps(
    question: str,
    hits: Sequence[Hit],
    source: Callable[[Hit], str | None],
    chunks_of: Callable[[Hit], Sequence[Hit]],
    *,
    evidence: float,
) -> Answer | None:
    """The answer that quotes the numbered list the question names, or None.

    `source(hit)` is the whole text of a hit's document, `chunks_of(hit)` its chunks. A list
    qualifies when its heading shares a term with the question that the document's title
    does not (or is a generic "Method" and the question names the title's subject and a
    verb of doing only), and one of `hits` overlaps its section. The list whose shared heading terms
    are on fewest of the document's lines wins, then the one whose words share most.
    """
    analyzer = Analyzer()
    asked = set(analyzer.tokens(question)) - _ASKING
    best: tuple[tuple[float, int], Hit, StepList] | None = None
    seen: list[str] = []
    for hit in hits:
        if hit.path in seen:
            continue
        seen.append(hit.path)
        if len(seen) > MAX_DOCUMENTS:
            break
        text = source(hit)
        if not text:
            continue
        # Terms of the document's title name no part of it ("coffee" in a coffee maker's
        # manual); of the rest, those on few of its lines name a part best ("descale").
        lines = [set(analyzer.tokens(line)) for line in text.splitlines() if line.strip()]
        wanted = asked - set(analyzer.tokens(hit.title))
        near = [(h.start, h.end) for h in hits if h.path == hit.path]
        whole = not wanted - _DOING and len(asked) > len(wanted)  # "How do I make lentil soup?"
        for found in lists_in(text):
            heading = set(analyzer.tokens(found.heading))
            named = wanted & heading or (asked - wanted if whole and heading & _GENERIC else set())
            if not named or not any(s < found.end and found.start < e for s, e in near):
                continue
            rarity = sum(
                math.log(1 + len(lines) / (1 + sum(t in ln for ln in lines))) for t in named
            )
            words = " ".join([found.intro, *(s.text for s in found.steps)])
            score = (round(rarity, 6), len(asked & set(analyzer.tokens(words))))
            if best is None or score > best[0]:
                best = (score, hit, found)
    if best is None:
        return None
    _, hit, found = best
    return _quoted(question, found, chunks_of(hit), evidence)


def _quoted(
    question: str, found: StepList, chunks: Sequence[Hit], evidence: float
) -> Answer | None:
    """Each step cited to the chunk that holds it whole (or that it starts in)."""
    ordered = sorted(chunks, key=lambda h: (h.start, -h.end))
    numbers: dict[int, int] = {}  # chunk id -> citation number
    holders: dict[int, Hit] = {}
    parts = []
    for step in found.steps:
        holder = next((h for h in ordered if h.start <= step.start and step.end <= h.end), None)
        holder = holder or next((h for h in ordered if h.start <= step.start < h.end), None)
        if holder is None:
            return None  # a step no stored chunk holds: not a list to quote
        number = numbers.setdefault(holder.chunk_id, len(numbers) + 1)
        holders[holder.chunk_id] = holder
        parts.append((f"{step.number}. {step.text}", (number,), (number, step.start, step.end)))
    citations = []
    for chunk_id, number in numbers.items():
        hit = holders[chunk_id]
        held = [s for s, (_, n, _) in zip(found.steps, parts, strict=True) if n == (number,)]
        citations.append(
            Citation(
                number=number,
                chunk_id=chunk_id,
                path=hit.path,
                title=hit.title,
                page=hit.page,
                start=held[0].start,
                end=held[-1].end,
                text=" … ".join(s.text for s in held),
                score=1.0,
                spans=tuple((s.start, s.end) for s in held),
            )
        )
    heading = found.heading.capitalize() if found.heading.isupper() else found.heading
    return settled_answer(
        question, parts, tuple(sorted(citations, key=lambda c: c.number)), mode="steps",
        style="full", evidence=evidence, separator="\n",
        note=f"the steps of {heading or 'a numbered list'} in {hit.title}, quoted",
    )  # fmt: skip
