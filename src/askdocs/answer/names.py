"""Names in passages: the passage about a name (its title or opening words), who holds a role
("directed by ..."), the names a sentence mentions, and the sentence a fact was read from,
cited. Shared by the date comparisons (`compare.py`), the chains of relations (`chain.py`)
and the second retrieval (`hops.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from askdocs.types import Citation, Hit

# Words that join the parts of a name: "Les Films du Losange", "Leonardo da Vinci".
JOINERS = frozenset(("of", "the", "de", "du", "da", "di", "von", "van", "der", "la", "le", "del"))
_WORDS = re.compile(r"[^\W\d_][\w'\u2019.-]*|\S")  # a word, or any other character


# A role a question names someone through, and how a passage names who holds it.
ROLES_BY = {
    "director": "directed by|film by",
    "producer": "produced by",
    "composer": "composed by|music by|score by",
    "writer": "written by",
    "author": "written by",
    "performer": "performed by|recorded by|sung by",
    "founder": "founded by",
    "creator": "created by",
    "designer": "designed by",
    "architect": "designed by",
    "developer": "developed by",
    "publisher": "published by",
}
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])[.!?](?=\s+[A-Z]|\s*$)")  # not after an initial
_AND = re.compile(r",? and |, ")  # between the holders of one role
MAX_HOLDERS = 3  # co-holders of a role considered ("founded by A, B and C")


def about(name: str, hits: Sequence[Hit]) -> Hit | None:
    """The passage about `name`: titled with it, or opening with it."""
    found = all_about(name, hits)
    return found[0] if found else None


def all_about(name: str, hits: Sequence[Hit]) -> list[Hit]:
    """Every passage about `name`, those titled with it first, in the order of `hits`."""
    full, base = _norm(name), _norm(_base(name))
    titled = [h for h in hits if {full, base} & {_norm(h.title), _norm(h.heading or "")}]
    opening = []
    for hit in hits:
        start = _norm(hit.text[: len(name) + 40])
        if hit not in titled and (
            start.startswith(full)
            or (start.startswith(base) and start[len(base) : len(base) + 1] in (" ", "(", ",", ""))
        ):
            opening.append(hit)
    return titled + opening


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def _base(name: str) -> str:
    """The name without a trailing "(1993 film)" or "(director)"."""
    at = name.find(" (")
    return name[:at] if at > 0 and name.endswith(")") else name


def holder(text: str, role: str) -> tuple[str, int, int] | None:
    """Who holds `role` according to `text` ("... directed by Steno."), with the span of the
    sentence saying so."""
    by = re.compile(rf"\b(?:{ROLES_BY[role]})[ \u00a0]{{1,3}}", re.IGNORECASE)
    match = by.search(text)
    if match is None:
        return None
    name = name_at(text[match.end() : match.end() + 120])
    if name is None:
        return None
    start, end = sentence_around(text, match.start())
    return name, start, end


def co_holders(text: str, name: str) -> list[str]:
    """The names listed right after `name` in `text` ("founded by A and B" -> [B]).

    >>> co_holders("founded in 1962 by Barbet Schroeder and Éric Rohmer.", "Barbet Schroeder")
    ['Éric Rohmer']
    >>> co_holders("directed by Steno, starring Totò.", "Steno")
    []
    """
    at = text.find(name)
    rest = text[at + len(name) : at + len(name) + 160] if at >= 0 else ""
    names: list[str] = []
    while (joint := _AND.match(rest)) is not None and len(names) < MAX_HOLDERS:
        following = rest[joint.end() :]
        found = name_at(following)
        if found is None or not following.startswith(found):
            break
        names.append(found)
        rest = following[len(found) :]
    return names


def name_at(text: str) -> str | None:
    """The name `text` starts with: capitalised words and joiners, up to the end of the
    sentence or clause ("Edwin L. Marin. The film ..." -> "Edwin L. Marin").

    >>> name_at("Edwin L. Marin. The film stars")
    'Edwin L. Marin'
    >>> name_at("Barbet Schroeder and Éric Rohmer in 1962.")
    'Barbet Schroeder'
    >>> name_at("and starring Harry Piel.")
    'Harry Piel'
    """
    words: list[str] = []
    split = text.split()[:12]
    # "directed by and starring Harry Piel", "directed by the film's star Phillip Rhee"
    lead = next((i for i, w in enumerate(split[:5]) if w[0].isupper()), 0)
    if any(w[-1] in ".,;:!?" for w in split[:lead]):
        return None
    for word in split[lead : lead + 8]:
        bare = word.rstrip(".,;:!?)\"'")
        if bare and bare[0].isupper():
            words.append(bare if len(bare) > 1 or not word.endswith(".") else word[:2])
        elif words and word.lower() in JOINERS:
            words.append(word)
            continue
        else:
            break
        if word != bare and not (len(bare) == 1 and word.endswith(".")):
            break  # punctuation after a word (not an initial) ends the name
    while words and words[-1].lower() in JOINERS:
        words.pop()
    return " ".join(words) or None


def names_in(sentence: str) -> list[str]:
    """Runs of capitalised words, joined by lowercase joiners, without a leading joiner."""
    names, run, pending = [], [], []
    for word in _WORDS.findall(sentence):
        if word[0].isupper():
            run.extend(pending)
            run.append(word.rstrip(".,"))
            pending = []
        elif run and word.lower() in JOINERS:
            pending.append(word)
        else:
            if run:
                names.append(" ".join(run))
            run, pending = [], []
    if run:
        names.append(" ".join(run))
    # A lone capitalised word that starts a sentence ("The", "In") is not a name.
    return [n for n in names if " " in n or (n.lower() not in JOINERS and len(n) > 2)]


def titled_names(sentence: str) -> list[str]:
    """The sentence's names, a title in apposition kept with its name: "a daughter of
    Charles, Duke of Vendôme, and Françoise" -> "Charles, Duke of Vendôme", "Françoise".

    >>> titled_names("She was a daughter of Charles, Duke of Vendôme, and Françoise.")
    ['She', 'Charles, Duke of Vendôme', 'Françoise']
    """
    names = names_in(sentence)
    out: list[str] = []
    for name in names:
        joined = f"{out[-1]}, {name}" if out else ""
        if joined and " of " in name and joined in sentence:
            out[-1] = joined
        else:
            out.append(name)
    return out


def lowercase_tail(text: str) -> tuple[str, str]:
    """`text` split where only lowercase words are left, keeping at least one word: the name
    a question ends on, and the words after it.

    >>> lowercase_tail("Aylwin (Film) born")
    ('Aylwin (Film)', 'born')
    >>> lowercase_tail("Steven Perry born first")
    ('Steven Perry', 'born first')
    """
    words = text.split(" ")
    cut = len(words)
    while cut > 1 and words[cut - 1].isalpha() and words[cut - 1].islower():
        cut -= 1
    return " ".join(words[:cut]), " ".join(words[cut:])


def sentence_around(text: str, at: int) -> tuple[int, int]:
    """The span of the sentence of `text` that holds offset `at`; an initial ("H.") does not
    end one.

    >>> text = "He was the son of William H. Seward and Frances Seward. He was born in 1826."
    >>> start, end = sentence_around(text, text.find("Frances"))
    >>> text[start:end]
    'He was the son of William H. Seward and Frances Seward.'
    """
    start = 0
    for match in _SENTENCE_END.finditer(text, 0, at):
        start = match.end()
    end_match = _SENTENCE_END.search(text, at)
    end = end_match.end() if end_match else len(text)
    while start < end and text[start].isspace():
        start += 1
    return start, end


def sentence_citation(number: int, hit: Hit, start: int, end: int) -> Citation:
    """`hit` cited by the sentence at [start, end) of its text (document offsets kept)."""
    return Citation(
        number=number,
        chunk_id=hit.chunk_id,
        path=hit.path,
        title=hit.title,
        page=hit.page,
        start=hit.start + start,
        end=hit.start + end,
        text=hit.text[start:end],
        score=hit.score,
        spans=((hit.start + start, hit.start + end),),
    )
