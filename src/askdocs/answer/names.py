"""Names in passages: the passage about a name (its title or opening words), who holds a role
("directed by ..."), the names a sentence mentions, and the sentence a fact was read from,
cited. Shared by the date comparisons (`compare.py`), the chains of relations (`chain.py`)
and the second retrieval (`hops.py`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from askdocs.text import Analyzer, place_terms, unaccented
from askdocs.types import Citation, Hit

# Words that join the parts of a name: "Les Films du Losange", "Leonardo da Vinci".
JOINERS = frozenset(("of", "the", "de", "du", "da", "di", "von", "van", "der", "la", "le", "del"))
_WORDS = re.compile(r"[^\W\d_][\w'\u2019.-]*|\S")  # a word, or any other character


# A role a question names someone through, and how a passage names who holds it.
ROLES_BY = {
    "director": "directed by|film by|documentary by",
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
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
# Lowercase words that describe a person between a nationality and the name ("Argentine-
# born screenwriter Martin Donovan", "noted Australian director Fred Schepisi").
_DESCRIPTION = frozenset(
    ("and", "born", "director", "filmmaker", "film-maker", "producer", "actor", "actress",
     "composer", "writer", "screenwriter", "singer", "musician", "artist", "cinematographer",
     "animator", "novelist", "journalist", "poet", "photographer", "playwright", "author",
     "comedian", "businessman", "entrepreneur", "movie", "film", "television", "stage",
     "documentary", "nobleman", "noblewoman", "politician", "lawyer", "painter")
)  # fmt: skip


def about(name: str, hits: Sequence[Hit]) -> Hit | None:
    """The passage about `name`: titled with it, or opening with it."""
    found = all_about(name, hits)
    return found[0] if found else None


def all_about(name: str, hits: Sequence[Hit]) -> list[Hit]:
    """Every passage about `name`, in the order of `hits`: those titled with it first, then
    those opening with it, then those whose title or first line is the same name with
    another form of the first name or without middle initials ("Fred de Cordova" for
    "Frederick de Cordova", "William A. Wellman" for "William Wellman").

    >>> hit = Hit(1, "Armando Bó\\nArmando Bó( 3 May 1914", "a.txt", "a", "text", 0, 31, None,
    ...           None, 0.5)
    >>> [about(n, [hit]) is hit for n in ("Armando Bo", "Armando Bó", "Armando Diaz")]
    [True, True, False]
    """
    full, base = _norm(name), _norm(_base(name))
    titled = [h for h in hits if {full, base} & {_norm(h.title), _norm(h.heading or "")}]
    opening, alike = [], []
    for hit in hits:
        if hit in titled:
            continue
        start = _norm(hit.text[: len(name) + 40])
        if start.startswith(full) or (
            start.startswith(base) and start[len(base) : len(base) + 1] in (" ", "(", ",", "")
        ):
            opening.append(hit)
        elif any(_alike(base, t) for t in (hit.title, hit.heading or "", _first_line(hit.text))):
            alike.append(hit)
    return titled + opening + alike


def _norm(text: str) -> str:
    """Lowercase, one space between words, accents dropped ("Bó" is "bo", "Łódź" "lodz")."""
    return " ".join(unaccented(text.lower()).replace("\u2019", "'").split())


def _first_line(text: str) -> str:
    line, newline, _ = text[:120].partition("\n")
    return line if newline else ""


def _alike(name: str, title: str) -> bool:
    """Whether normalised `name` and `title` are one person's name: the same surname words,
    one first name the start of the other, middle initials ignored, and every word of the
    title capitalised but joiners ("Springtime in a Small Town" is not "Spring in a Small
    Town")."""
    if any(w[:1].islower() and w not in JOINERS for w in _base(title).split()):
        return False
    ours = [w for w in name.split() if len(w.rstrip(".")) > 1]
    theirs = [w for w in _norm(_base(title)).split() if len(w.rstrip(".")) > 1]
    if len(ours) < 2 or ours[1:] != theirs[1:]:
        return False
    short, long = sorted((ours[0], theirs[0]), key=len)
    return len(short) >= 3 and long.startswith(short)


def _base(name: str) -> str:
    """The name without a trailing "(1993 film)" or "(director)"."""
    at = name.find(" (")
    return name[:at] if at > 0 and name.endswith(")") else name


# Other participles between a role's verb and "by": "directed and written by", "directed,
# scored, and co-written by" (bounded, so the pattern stays linear).
_ALSO = r"(?:,? (?:and )?[a-z-]{2,20}(?:ed|en)){0,3},?"


@functools.cache
def _role_pattern(role: str) -> re.Pattern[str]:
    """How a passage names who holds `role`: each "<participle> by" of `ROLES_BY` also with
    other participles before its "by"."""
    ways = []
    for way in ROLES_BY[role].split("|"):
        verb, _, by = way.rpartition(" ")
        ways.append(f"{verb}{_ALSO} {by}" if verb.endswith(("ed", "en")) else way)
    return re.compile(rf"\b(?:{'|'.join(ways)})[ \u00a0]{{1,3}}", re.IGNORECASE)


def holder(text: str, role: str) -> tuple[str, int, int] | None:
    """Who holds `role` according to `text` ("... directed by Steno."), with the span of the
    sentence saying so.

    >>> holder("A 1923 film directed and written by José A. Ferreyra.", "director")[0]
    'José A. Ferreyra'
    >>> holder("A film by Australian director and cinematographer Dennis O'Rourke.", "director")[0]
    "Dennis O'Rourke"
    """
    by = _role_pattern(role)
    match = by.search(text)
    if match is None:
        return None
    name = name_at(text[match.end() : match.end() + 120])
    if name is None:
        return None
    start, end = sentence_around(text, match.start())
    return name, start, end


# How a passage names someone's kin in a fixed form: "his wife, Dr. Jennifer Aaker",
# "married actress Ona Munson", "the eldest son of Thinley Norbu", "son of William the Silent
# by his first wife Anna van Egmont".
_PRONOUN_KIN = re.compile(r"\b(?:[Hh]is|[Hh]er|[Tt]heir) (father|mother|wife|husband|spouse)\b,? ")
_MARRIED = re.compile(r"\bmarried (?:to )?(?:(?:his|her) [a-z]{2,20},? )?")
_CHILD_OF = re.compile(r"\b(?:son|daughter|child) of ")
_BY_WIFE = re.compile(r" by his (?:[a-z]{2,10} )?wife,? ")
_SPOUSE = ("spouse", "wife", "husband")
_AND_PARENT = re.compile(r",? and (?:(?:his|her) (?:[a-z]{2,10} )?wife,? |the late )?")
# Titles that say whether a parent is the father or the mother.
_MEN = frozenset(
    ("King", "Prince", "Sir", "Lord", "Duke", "Count", "Emperor", "Baron", "Margrave",
     "Landgrave", "Infante", "Archduke", "Marquess", "Tsar", "Sultan", "Shah", "Earl",
     "Admiral", "Vice-Admiral", "Rabbi", "Mr.")
)  # fmt: skip
_WOMEN = frozenset(
    ("Queen", "Princess", "Lady", "Duchess", "Countess", "Empress", "Baroness", "Margravine",
     "Landgravine", "Infanta", "Archduchess", "Marchioness", "Tsarina", "Sultana", "Dame",
     "Mrs.", "Madame")
)  # fmt: skip
_HONORIFICS = ("Dr. ", "Mr. ", "Mrs. ", "Ms. ")


def kin(text: str, relation: str) -> tuple[str, int, int] | None:
    """Who is the father, mother or spouse according to `text` when it says so in a fixed
    form, with the span of the sentence saying so; None when it does not, or is ambiguous
    ("son of A and B" without a title that says which is the father).

    >>> kin("He is the eldest son of Thinley Norbu.", "father")[0]
    'Thinley Norbu'
    >>> kin("He is a son of the late Qajar Persian nobleman Abdol Hossein Mirza.", "father")[0]
    'Abdol Hossein Mirza'
    >>> kin("In 1926, Buzzell married actress Ona Munson.", "spouse")[0]
    'Ona Munson'
    >>> kin("He wrote it with his wife, Dr. Jennifer Aaker.", "wife")[0]
    'Jennifer Aaker'
    >>> kin("He was the eldest son of William the Silent by his first wife Anna van Egmont.",
    ...     "mother")[0]
    'Anna van Egmont'
    >>> kin("She is the daughter of Judy Garland and Vincente Minnelli.", "father") is None
    True
    >>> kin("He is the son of Queen Margrethe II and the late Henrik, Prince Consort.", "father")[0]
    'Henrik'
    >>> kin("She was the daughter of Gombald and his wife Constance. Her husband, Alfonso IV "
    ...     "of Aragon, ruled.", "husband")[0]
    'Alfonso IV of Aragon'
    >>> kin("In July 1928 she married in Paris.", "spouse") is None
    True
    """
    found = None
    wanted = _SPOUSE if relation == "spouse" else (relation,)
    for match in _PRONOUN_KIN.finditer(text):
        said = match.group(1).lower()
        # "the daughter of Gombald and his wife Constance": Gombald's wife, not hers
        if said in wanted and not text[: match.start()].endswith("and "):
            found = (match.start(), _name_after(text, match.end()))
            break
    if found is None and relation in _SPOUSE:
        match = _MARRIED.search(text)
        if match is not None:
            found = (match.start(), _name_after(text, match.end()))
    # one "child of" only: "the second child of A, and the third child of B" is unsure
    children = list(_CHILD_OF.finditer(text))
    if found is None and relation in ("father", "mother") and len(children) == 1:
        father, mother = _parents(text[children[0].end() : children[0].end() + 240])
        found = (children[0].start(), father if relation == "father" else mother)
    if found is None or found[1] is None:
        return None
    at, name = found
    start, end = sentence_around(text, at)
    return name, start, end


def _parents(text: str) -> tuple[str | None, str | None]:
    """(father, mother) named by the words after "son of": "A by his wife B", "A and B"
    when a title says which is which ("Queen Margrethe II and the late Henrik"), or "A"
    alone (the father, as such sentences name him)."""
    first = name_at(text)
    at = text.find(first) if first else -1
    if first is None or at < 0:
        return None, None
    after = text[at + len(first) :]
    wife = _BY_WIFE.match(after)
    if wife is not None:
        return first, name_at(after[wife.end() :])
    other = _AND_PARENT.match(after)
    second = name_at(after[other.end() :]) if other else None
    if second is None:
        return (first, None) if first.split()[0] not in _WOMEN else (None, first)
    if first.split()[0] in _WOMEN or second.split()[0] in _MEN:
        return second, first
    if first.split()[0] in _MEN or second.split()[0] in _WOMEN:
        return first, second
    return None, None


def _name_after(text: str, at: int) -> str | None:
    """The name starting at `at`, after an honorific or a description ("Dr. Jennifer
    Aaker", "actress Ona Munson"); None when other words come first ("married in July")."""
    rest = text[at : at + 120]
    for honorific in _HONORIFICS:
        rest = rest.removeprefix(honorific)
    words = rest.split()
    while words and words[0].lower().strip(",") in _DESCRIPTION:
        words.pop(0)
    if not words or not words[0][:1].isupper() or words[0].lower().strip(",.") in MONTHS:
        return None
    return name_at(" ".join(words))


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
    >>> name_at("American country music artist Tim McGraw.")
    'Tim McGraw'
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
    if len(words) <= 2:  # "Australian director Dennis O'Rourke": a description, then the name
        follows = lead + len(words)
        if len(words) == 1 and _is_place(words[0]):  # "American country music artist X"
            while follows < min(len(split), lead + 6) and split[follows][0].islower():
                follows += 1
        while follows < len(split) and split[follows].lower().strip(",") in _DESCRIPTION:
            follows += 1
        described = {w.lower().strip(",") for w in split[lead + len(words) : follows]} - {"and"}
        if described and follows < len(split) and split[follows][0].isupper():
            return name_at(" ".join(split[follows:]))
    return " ".join(words) or None


def _is_place(word: str) -> bool:
    """Whether `word` is a country or its demonym ("American", "Argentine-")."""
    analyzer = Analyzer()
    terms = analyzer.tokens(word.rstrip("-"))
    return len(terms) == 1 and terms[0] in place_terms(analyzer)


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
