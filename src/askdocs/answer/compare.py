"""Questions that compare two dates, answered in code: "Which film came out first, A or B?",
"Who was born later, A or B?", "Which film has the director who died earlier, A or B?".

A 1.5B model shown both dates picks the wrong choice about half the time (docs/benchmarks.md,
"Multi-hop"); comparing two dates is not a language task. `compare` finds, for each choice,
the passage about it (its title or opening words), follows the role the question names
("the director" -> "directed by <name>" -> that person's passage) when there is one, reads
the date the question is about (birth or death from the life-span parenthesis or "born
on ...", otherwise the first date of the passage), and compares. Passages it needs and
the first search did not return are searched for by name. When any date is missing or the
two are equal at the precision both give, it returns None and the model answers as before.

    >>> asked("Which film came out first, Der Wixxer or The Butterfly Room?")
    Asked(choices=('Der Wixxer', 'The Butterfly Room'), earliest=True, event='event', role=None)
    >>> asked("Which film has the director who died later, Aardram or Land And Freedom?").role
    'director'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askdocs.answer.checks import settled_answer
from askdocs.answer.names import (
    MONTHS,
    ROLES_BY,
    about,
    holder,
    lowercase_tail,
    sentence_around,
    sentence_citation,
)
from askdocs.answer.packing import choices
from askdocs.types import Answer, Citation, Hit

_MONTH = "|".join(m.title() for m in MONTHS) + "|" + "|".join(m[:3].title() for m in MONTHS)
_SP = r"[ \u00a0]{1,3}"  # bounded: every pattern here stays linear in the text's length
_DATE = re.compile(
    rf"\b(?:(?P<d1>\d{{1,2}}){_SP}(?P<m1>{_MONTH})\.?,?{_SP}(?P<y1>\d{{3,4}})"
    rf"|(?P<m2>{_MONTH})\.?{_SP}(?P<d2>\d{{1,2}}),?{_SP}(?P<y2>\d{{3,4}})"
    rf"|(?P<m3>{_MONTH})\.?,?{_SP}(?P<y3>\d{{3,4}})"
    r"|(?P<y4>1\d{3}|20\d{2}))\b"
)
_YEAR_ONLY = re.compile(r"\b(\d{3,4})\b")
# A parenthesis, with at most one inner one: "( 23 March 1902, Zombor, Austria- Hungary( now,
# Slovakia) - 28 July 1966)". Each character is matched by one branch only: linear.
_PAREN = re.compile(r"\(((?:[^()]|\([^()]{0,80}\)){1,240})\)")
# Two dates run together where the source lost the dash: "(21 March 192011 January 2010)".
_RUN_TOGETHER = re.compile(rf"(?<=\b\d{{4}})(?=\d{{1,2}}{_SP}(?:{_MONTH})\b)")
_BORN = re.compile(r"\bborn\b|\bb\.", re.IGNORECASE)
_DIED = re.compile(r"\bdied\b|\bd\.|\bdeath\b", re.IGNORECASE)

_EARLIEST = re.compile(r"\b(?:first|earlier|earliest|older|oldest|sooner|before)\b")
_LATEST = re.compile(r"\b(?:later|latest|recently|younger|youngest|newer|newest|last)\b")
_LONGER = re.compile(r"\blived longer\b|\blonger life\b|\blived the longest\b")
_BIRTH = re.compile(r"\bborn\b|\bbirth\b|\bolder\b|\boldest\b|\byounger\b|\byoungest\b")
_DEATH = re.compile(r"\bdied\b|\bdie\b|\bdeath\b|\bpassed away\b")

_ROLE = re.compile(rf"\b(?:the|whose) ({'|'.join(ROLES_BY)})\b")
NAME_HITS = 4  # passages searched for a name the first passages do not hold


@dataclass(frozen=True, slots=True)
class Asked:
    """What a comparison question asks: which choice has the earliest (or latest) date of
    `event` ("birth", "death", "lifespan" or "event": the first date of its passage)."""

    choices: tuple[str, str]
    earliest: bool
    event: str
    role: str | None


@dataclass(frozen=True, slots=True)
class Date:
    year: int
    month: int = 0  # 0: not given
    day: int = 0

    def text(self) -> str:
        if self.month and self.day:
            return f"{self.day} {MONTHS[self.month - 1].title()} {self.year}"
        if self.month:
            return f"{MONTHS[self.month - 1].title()} {self.year}"
        return str(self.year)

    def key(self, precision: int) -> tuple[int, ...]:
        return (self.year, self.month, self.day)[:precision]

    @property
    def precision(self) -> int:
        return 3 if self.day else 2 if self.month else 1


@dataclass(frozen=True, slots=True)
class Found:
    """One choice's date, with the passages it was read from (the choice's passage first)."""

    choice: str
    date: Date | None  # what is compared: the date, or (a lifespan) None and `years`
    years: float
    said: str  # "was born on 19 January 1917"
    person: str | None  # the role's holder, when the question names one
    sources: tuple[tuple[Hit, int, int], ...]  # (passage, start, end of the sentence used)


def offered(question: str) -> tuple[str, str] | None:
    """The two things a comparison question names: "..., A or B?" (`packing.choices`), "Was A
    or B born first?", "Who was born first out of A and B?".

    >>> offered("Was Ausaf Ali or Steven Perry born first?")
    ('Ausaf Ali', 'Steven Perry')
    >>> offered("Who was born first out of Peter Haslop and Barbara Nawratowicz?")
    ('Peter Haslop', 'Barbara Nawratowicz')
    """
    found = choices(question)
    if found is not None:
        return found
    text = question.strip().rstrip("?").strip()
    lowered = text.lower()
    out_of = lowered.rfind(" out of ")
    if out_of >= 0:
        rest = text[out_of + len(" out of ") :]
        at = rest.rfind(" and ")
        pair = (rest[:at].strip(), rest[at + 5 :].strip()) if at > 0 else None
        return pair if pair and all(pair) else None
    first_word, _, rest = text.partition(" ")
    if first_word.lower() in ("was", "is", "did", "does") and " or " in rest:
        first, _, second = rest.partition(" or ")
        second, _ = lowercase_tail(second)  # "... born first": the words after the name
        if first.strip() and second and first[:1].isupper() and second[:1].isupper():
            return first.strip(), second
    return None


def asked(question: str) -> Asked | None:
    """The comparison `question` asks for, or None when it is not a comparison of dates."""
    named = offered(question)
    if named is None:
        return None
    lowered = question.lower()
    # What the question says besides the two names: "which film came out first", "was ...
    # born first", "who was born first out of".
    asking = lowered
    for name in reversed(named):
        at = asking.rfind(name.lower())
        asking = asking[:at] + " " + asking[at + len(name) :] if at >= 0 else asking
    role_match = _ROLE.search(asking)
    role = role_match.group(1) if role_match else None
    person = (
        role is not None
        or asking.startswith("who")
        or bool(_BIRTH.search(asking) or _DEATH.search(asking))
    )
    if _LONGER.search(asking):
        return Asked(named, False, "lifespan", role) if person else None
    earliest = bool(_EARLIEST.search(asking))
    if earliest == bool(_LATEST.search(asking)):
        return None  # neither or both: not a question of order
    if _DEATH.search(asking):
        event = "death"
    elif person and _BIRTH.search(asking):
        event = "birth"
    elif person:
        return None  # "Who came first" of two people: not a date this module reads
    else:
        event = "event"
    return Asked(named, earliest, event, role)


Search = Callable[[str], Sequence[Hit]]


def compare(
    question: str, hits: Sequence[Hit], search: Search
) -> tuple[Asked, Found, Found] | None:
    """Both choices' dates and the question's reading, or None when a date is missing, or
    the two cannot be told apart."""
    what = asked(question)
    if what is None:
        return None
    first, second = (_find(choice, what, list(hits), search) for choice in what.choices)
    for longer in _with_commas(question, what.choices[0]):
        if first is not None:
            break
        # "..., Romeo, Juliet And Darkness or ...?" was read as "Juliet And Darkness"
        what = Asked((longer, what.choices[1]), what.earliest, what.event, what.role)
        first = _find(longer, what, list(hits), search)
    if first is None or second is None or _order(first, second) == 0:
        return None
    return what, first, second


_TITLE_PARTS = 4  # comma-separated parts a title may have before the one read first


def _with_commas(question: str, first: str) -> list[str]:
    """The first choice with the words before its commas, one part more each time, when a
    title holds commas: "Which film has the director who died later, Romeo, Juliet And
    Darkness or I Can Explain?" is read as "Juliet And Darkness" first.

    >>> _with_commas("Which came first, Romeo, Juliet And Darkness or X?", "Juliet And Darkness")
    ['Romeo, Juliet And Darkness']
    >>> _with_commas("Which came first, Occhio, Malocchio, Prezzemolo E Finocchio or X?",
    ...              "Prezzemolo E Finocchio")
    ['Malocchio, Prezzemolo E Finocchio', 'Occhio, Malocchio, Prezzemolo E Finocchio']
    """
    at = question.find(f", {first} or ")
    if at < 0:
        return []
    found, title = [], first
    parts = question[:at].split(", ")[1:]  # the first part is the question's own words
    for part in reversed(parts[-_TITLE_PARTS:]):
        if not part[:1].isupper() or len(part.split()) > 4:
            break
        title = f"{part}, {title}"
        found.append(title)
    return found


def _order(first: Found, second: Found) -> int:
    """-1: `first` is earlier (or lived shorter), 1: later (longer), 0: cannot tell."""
    if first.date is None or second.date is None:
        a, b = first.years, second.years
    else:
        precision = min(first.date.precision, second.date.precision)
        a, b = first.date.key(precision), second.date.key(precision)  # type: ignore[assignment]
    return (a > b) - (a < b)


def winner(what: Asked, first: Found, second: Found) -> Found:
    later = _order(first, second) > 0
    if what.event == "lifespan" or not what.earliest:
        return first if later else second
    return second if later else first


def answer(
    question: str, what: Asked, first: Found, second: Found, *, style: str, evidence: float
) -> Answer:
    """The checked answer: the winning choice, cited to the passages both dates come from;
    a full answer says both dates, each with its citation."""
    numbered: dict[tuple[int, int], Citation] = {}
    for found in (first, second):
        for hit, start, end in found.sources:
            key = (hit.chunk_id, start)
            if key not in numbered:
                numbered[key] = sentence_citation(len(numbered) + 1, hit, start, end)
    cites = {
        f.choice: [numbered[(h.chunk_id, s)].number for h, s, _ in f.sources]
        for f in (first, second)
    }
    best = winner(what, first, second)
    parts = [(best.choice, tuple(sorted(set(cites[first.choice] + cites[second.choice]))))]
    if style == "full":
        for f in (first, second):
            subject = f"{f.person}, the {what.role} of {f.choice}," if f.person else f.choice
            parts.append((f"{subject} {f.said}.", tuple(cites[f.choice])))
        parts[0] = (f"{best.choice}.", parts[0][1])
    citations = {c.number: c for c in numbered.values()}
    spans = {n: (n, c.start, c.end) for n, c in citations.items()}
    said = "; ".join(
        f"{f.choice}: {f.person + ' ' if f.person else ''}{f.said}" for f in (first, second)
    )
    return settled_answer(
        question, [(t, ns, spans[ns[-1]]) for t, ns in parts],
        tuple(citations[n] for n in sorted(citations)), mode="compared", style=style,
        evidence=evidence, note=f"dates compared in code ({said})",
    )  # fmt: skip


def _find(choice: str, what: Asked, hits: list[Hit], search: Search) -> Found | None:
    own = about(choice, hits) or about(choice, search(choice))
    if own is None:
        return None
    sources = []
    person = None
    target = own
    if what.role is not None:
        named = holder(own.text, what.role)
        if named is None:
            return None
        person, start, end = named
        sources.append((own, start, end))
        target = about(person, hits) or about(person, search(person))
        if target is None:
            return None
    dated = _dated(target, what.event)
    if dated is None:
        return None
    date, years, said, start, end = dated
    sources.append((target, start, end))
    return Found(choice, date, years, said, person, tuple(sources))


def _dated(hit: Hit, event: str) -> tuple[Date | None, float, str, int, int] | None:
    """(date, or None and the years of a lifespan; what it says; sentence span) of `event`
    in the passage about one entity."""
    text = hit.text
    born = died = None
    at = -1
    for paren in _PAREN.finditer(text[:600]):
        inside = _RUN_TOGETHER.sub(" - ", paren.group(1))
        dates = _dates(inside, loose=True)
        if not dates:
            continue
        if len(dates) >= 2:
            born, died = dates[0], dates[1]
        elif _DIED.search(inside) and not _BORN.search(inside):
            died = dates[0]
        else:  # "(born 3 May 1914)", or a living person's "( 18 February 1947 Albacete)"
            born = dates[0]
        at = paren.start()
        break
    if event in ("birth", "lifespan") and born is None:
        born, at = _after(text, _BORN) or (None, at)
    if event in ("death", "lifespan") and died is None:
        died, at = _after(text, _DIED) or (None, at)
    if event == "event":
        match = _DATE.search(text)
        if match is None:
            return None
        date = _date(match)
        start, end = sentence_around(text, match.start())
        return date, 0.0, f"dates from {date.text()}", start, end
    start, end = sentence_around(text, max(at, 0))
    if event == "birth" and born is not None:
        return born, 0.0, f"was born {_on(born)}", start, end
    if event == "death" and died is not None:
        return died, 0.0, f"died {_on(died)}", start, end
    if event == "lifespan" and born is not None and died is not None:
        years = _years(died) - _years(born)
        return None, years, f"lived {int(years)} years ({born.text()} to {died.text()})", start, end
    return None


def _after(text: str, word: re.Pattern[str]) -> tuple[Date, int] | None:
    """The first date within 60 characters after `word` ("born on 8 August 1971")."""
    for match in word.finditer(text):
        dates = _dates(text[match.end() : match.end() + 60])
        if dates:
            return dates[0], match.start()
    return None


def _dates(text: str, *, loose: bool = False) -> list[Date]:
    """Dates in `text`; `loose` also takes bare three-digit years ("c. 510 - c. 540")."""
    found = [(m.start(), _date(m)) for m in _DATE.finditer(text)]
    if loose and not found:
        found = [(m.start(), Date(int(m.group(1)))) for m in _YEAR_ONLY.finditer(text)]
    return [d for _, d in sorted(found, key=lambda p: p[0])]


def _date(match: re.Match[str]) -> Date:
    g = match.groupdict()
    for n in "123":
        if g.get(f"y{n}"):
            month = MONTHS.index(_month(g[f"m{n}"])) + 1
            day = int(g[f"d{n}"]) if g.get(f"d{n}") else 0
            return Date(int(g[f"y{n}"]), month, day if 1 <= day <= 31 else 0)
    return Date(int(g["y4"]))


def _month(name: str) -> str:
    lowered = name.lower()
    return next(m for m in MONTHS if m.startswith(lowered[:3]))


def _years(date: Date) -> float:
    """The date in years; an unknown month or day counts as the middle of its range."""
    month = date.month - 1 if date.month else 5.5
    day = date.day - 1 if date.day else 15
    return date.year + month / 12 + day / 372


def _on(date: Date) -> str:
    return f"on {date.text()}" if date.day else f"in {date.text()}"
