"""Text analysis shared by search and answering: index terms and sentence boundaries.

`Analyzer` turns text into the terms the keyword index stores and the answer side compares
(question coverage, citation checks); `sentence_spans` splits text into sentences with their
character offsets, for chunk boundaries and for the sentences an answer shows and cites.

    >>> Analyzer().tokens("The running dogs!")
    ['run', 'dog']
    >>> text = "Dr. Who paid 3.5 e.g. in cash. He left."
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Dr. Who paid 3.5 e.g. in cash.', 'He left.']
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# The English stop words of Lucene's EnglishAnalyzer and Elasticsearch's `_english_`, the list
# bm25s uses (bm25s.stopwords.STOPWORDS_EN). Short on purpose: idf already discounts common
# words, and longer lists drop words that carry meaning in queries.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    )
)

# BM25's constants for both stores: tantivy's, which it does not let us change, and the
# PostgreSQL store's SQL uses the same, so both backends rank alike.
BM25_K1, BM25_B = 1.2, 0.75
_WORD = re.compile(r"\w+")
_UNITS = """zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen"""
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
# Number words and their values, for checks that compare "fifty" with "50".
NUMBER_WORDS: dict[str, int] = {w: n for n, w in enumerate(_UNITS.split())} | {
    w: 20 + 10 * n for n, w in enumerate(_TENS.split())
}
# Words that shape a question rather than say what it is about ("How long does ...", "What
# is the difference between ..."); `ASKING_TERMS` holds their tokens.
_ASKING_WORDS = """how what when where why who whom whose which do does did can could should
    would will shall may might must i me my you your we our much many long often tell
    between from his her its their they he she it this that these those s difference
    differences compare have has had"""
_STOPWORD_LANGUAGES = frozenset({"english", "porter"})
_ANALYZER_VERSION = "w1"  # bump when tokens() changes, so old index files are rejected


@functools.cache
def _stemmer(language: str):  # -> Stemmer.Stemmer; PyStemmer ships no type hints
    import Stemmer

    # No cache (size 0): PyStemmer's own cache thrashes on large vocabularies (2-4 us a word
    # instead of 0.6), and indexing keeps its own word -> term map anyway.
    return Stemmer.Stemmer(language, 0)


@functools.lru_cache(maxsize=65536)
def _degrees(term: str, language: str) -> frozenset[str]:
    for suffix in ("iest", "ier", "est", "er"):
        base = term.removesuffix(suffix)
        if base != term and len(base) >= 3 and base.isalpha():
            break
    else:
        return frozenset((term,))
    if suffix.startswith("i"):  # earlier, easiest
        plain = [base + "y"]
    else:  # longer, larger, bigger
        plain = [base, base + "e"]
        if base[-1] == base[-2] and base[-1] not in "aeiouls":
            plain.append(base[:-1])
    return frozenset((term, *_stemmer(language).stemWords(plain)))


def words(text: str) -> list[str]:
    """Lowercase word-character runs of `text`, the units `Analyzer` turns into terms."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Analyzer:
    """Turns text into index terms: lowercase, split on word characters, drop stop words, stem."""

    language: str = "english"
    stem: bool = True
    stopwords: bool = True

    def __post_init__(self) -> None:
        if self.stopwords and self.language not in _STOPWORD_LANGUAGES:
            raise ValueError(
                f"built-in stop words exist only for English, not {self.language!r}; "
                "pass stopwords=False"
            )
        if self.stem:
            import Stemmer

            if self.language not in Stemmer.algorithms():
                raise ValueError(
                    f"no Snowball stemmer for {self.language!r}; "
                    f"choose one of {', '.join(sorted(Stemmer.algorithms()))}"
                )

    def tokens(self, text: str) -> list[str]:
        """The terms of `text`, in order, repeats kept.

        >>> Analyzer().tokens("The running dogs!")
        ['run', 'dog']
        >>> Analyzer(stem=False).tokens("Café au lait, 2 cups")
        ['café', 'au', 'lait', '2', 'cups']
        """
        found = words(text)
        if self.stopwords:
            found = [w for w in found if w not in ENGLISH_STOPWORDS]
        if self.stem:
            found = _stemmer(self.language).stemWords(found)
        return found

    def terms(self, words: Sequence[str]) -> list[str | None]:
        """The term of each lowercase word as `tokens` gives it, None for a stop word.

        >>> Analyzer().terms(["the", "running", "dogs"])
        [None, 'run', 'dog']
        """
        stems = _stemmer(self.language).stemWords(words) if self.stem else list(words)
        if not self.stopwords:
            return stems
        return [None if w in ENGLISH_STOPWORDS else s for w, s in zip(words, stems, strict=True)]

    def degrees(self, term: str) -> frozenset[str]:
        """`term` and, for an English comparative or superlative, the term of its plain
        adjective: Snowball leaves "earlier" and "earliest" apart from "early" ("earli").

        >>> sorted(Analyzer().degrees("earliest"))
        ['earli', 'earliest']
        >>> sorted(Analyzer().degrees("bigger"))
        ['big', 'bigg', 'bigger']
        """
        if not (self.stem and self.language in _STOPWORD_LANGUAGES):
            return frozenset((term,))
        return _degrees(term, self.language)

    def id(self) -> str:
        """A short description of the settings, e.g. "w1:english:stem:stop"."""
        stem = "stem" if self.stem else "nostem"
        stop = "stop" if self.stopwords else "nostop"
        return f"{_ANALYZER_VERSION}:{self.language}:{stem}:{stop}"


_UNACCENTED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D",
                             "ß": "ss", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe"})  # fmt: skip


ASKING_TERMS = frozenset(Analyzer().tokens(_ASKING_WORDS))


def unaccented(text: str) -> str:
    """`text` without accents: what a reader types for a name they saw written with them.

    >>> unaccented("Armando Bó, Łódź, Søren")
    'Armando Bo, Lodz, Soren'
    """
    folded = unicodedata.normalize("NFKD", text.translate(_UNACCENTED))
    return unicodedata.normalize("NFC", "".join(c for c in folded if not unicodedata.combining(c)))


@functools.cache
def place_terms(analyzer: Analyzer) -> dict[str, str]:
    """One term for each country's names and demonyms (`data/places.tsv`): "french" and
    "franc" (France) map to the same term, so that a citation check reads "French" in a
    passage as saying "France". Only names that are one term are mapped.

    >>> terms = place_terms(Analyzer())
    >>> terms["french"] == terms["franc"], terms["usa"] == terms["american"]
    (True, True)
    """
    parent: dict[str, str] = {}

    def root(term: str) -> str:
        while parent.setdefault(term, term) != term:
            term = parent[term]
        return term

    table = importlib.resources.files("askdocs").joinpath("data/places.tsv")
    for line in table.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, demonyms, others = [*line.split("\t"), "", ""][:3]
        names = [name, *demonyms.split(","), *others.split(",")]
        terms = [t[0] for t in (analyzer.tokens(n) for n in names if n) if len(t) == 1]
        for term in terms[1:]:
            parent[root(term)] = root(terms[0])
    return {term: "place:" + root(term) for term in list(parent)}


# --- sentences -----------------------------------------------------------------------------

_CLOSERS = "\"'\u201d\u2019)\\]\u00bb"
# Every pattern run over user text must stay linear: a run of terminators is matched only from
# its first character (the lookbehinds) and possessively (`++`, `*+`), so a run that is not
# followed by a sentence start fails once, not once per character (60 KB of dots took 36 s).
# What opens a list item: a bullet, or a number and "." or ")" ("- ", "2. ", "3) ").
LIST_MARKER = r"(?:[-*+\u2022]|\d{1,3}[.)])"
# The number of a list item, at the start of a line or of a sentence the packer joined to
# the one before: "Adjust to taste. 4. Close the lid." It is no amount a text states.
ITEM_NUMBER = re.compile(r"(?:^|(?<=\n)|(?<=[.!?\u2026] ))[^\S\n]*+\d{1,3}[.)](?=[^\S\n])")
_SENTENCE_BREAK = re.compile(
    rf"(?<![.!?…])(?P<stop>[.!?…]++)[{_CLOSERS}]*+\s++(?=\S)"  # Latin: stop, closers, space
    "|(?<![\u3002\uff01\uff1f])[\u3002\uff01\uff1f]++"  # CJK: no space after
    '[\u300d\u300f\uff09\u201d\u2019"]*+\\s*+(?=\\S)'
    rf"|\n[^\S\n]*+(?=(?:{LIST_MARKER}|\#{{1,6}})[^\S\n])"  # a list item or heading line
)
_NON_SPACE = re.compile(r"\S")
_OPENERS = "\"'\u201c\u2018([{\u00ab"
_DOTTED = re.compile(r"(?:[^\W\d_]+\.)+[^\W\d_]+")  # e.g, i.e, U.S, Ph.D, a.m
# A full stop after these never ends a sentence...
_ALWAYS = """mr mrs ms mx dr prof sr jr st mt rev hon gen col capt lt sgt gov sen rep pres
    cf vs viz al approx ca resp incl esp fig figs eq eqs ref refs tab dept univ"""
# ...and after these it does not when a number follows ("No. 5", "p. 12", "Jan. 3").
_BEFORE_NUMBERS = """no nos p pp vol vols ch chap sec sect art para ex ed v ver
    jan feb mar apr jun jul aug sep sept oct nov dec"""
ABBREVIATIONS = frozenset(_ALWAYS.split())
NUMBER_ABBREVIATIONS = frozenset(_BEFORE_NUMBERS.split())


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """`(start, end)` of each sentence of `text`, stripped of surrounding whitespace.

    >>> text = "Dr. Who paid 3.5 e.g. in cash. He left."
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Dr. Who paid 3.5 e.g. in cash.', 'He left.']
    """
    first = first_non_space(text, 0)
    if first is None:
        return []
    starts = [first, *(p for p in sentence_breaks(text) if p > first)]
    ends = [*starts[1:], len(text)]
    return [(a, rstrip_end(text, a, b)) for a, b in zip(starts, ends, strict=True)]


def sentence_breaks(text: str) -> list[int]:
    """Offsets where a new sentence starts (its first non-space character)."""
    return [m.end() for m in _SENTENCE_BREAK.finditer(text) if _ends_sentence(text, m)]


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether a candidate break is real; only Latin full stops need a second look."""
    stop = match.group("stop")
    if stop is None:
        return True
    following = text[match.end()]
    if following.islower():  # "e.g. apples", "approx. three", "Why? because"
        return False
    if stop != ".":
        return True
    before = text[max(0, match.start() - 40) : match.start()]
    word = before.split()[-1].lstrip(_OPENERS) if before and not before[-1].isspace() else ""
    lowered = word.lower()
    if lowered in ABBREVIATIONS or _DOTTED.fullmatch(word):
        return False
    if lowered in NUMBER_ABBREVIATIONS and following.isdigit():
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "J. R. R. Tolkien"
        return False
    line_start = before[: len(before) - len(word)].rstrip(" \t")
    # "1. Introduction" at the start of a line numbers a list item or a section
    return not (word.isdigit() and len(word) <= 3 and (not line_start or line_start[-1] == "\n"))


def first_non_space(text: str, pos: int) -> int | None:
    match = _NON_SPACE.search(text, pos)
    return None if match is None else match.start()


def rstrip_end(text: str, start: int, end: int) -> int:
    return start + len(text[start:end].rstrip())
