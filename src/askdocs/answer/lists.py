"""A short answer that is the first item of a list, given as the whole list; one that holds
under a condition, given with it.

Held to one phrase, the model answers "What limits the rate of photosynthesis?" with "light
intensity", the first of the three factors its passage lists ("... include light intensity,
carbon dioxide concentration and temperature."). When the answer opens an enumeration in the
sentence that supports it, the answer becomes the enumeration: every item is in the same
sentence, so the support check holds for all of them.

    >>> whole_list("light intensity", "Factors that limit the rate include light intensity, "
    ...            "carbon dioxide concentration and temperature.")
    'light intensity, carbon dioxide concentration and temperature'
    >>> whole_list("Paris", "He lived in Paris, where he died in 1900.") is None
    True

Likewise "How often should I descale the coffee maker?" -> "every two to three months", from
"Descale every month if your water is hard, or every two to three months otherwise.": a
phrase from a sentence that gives alternatives under a condition is half the answer, so the
answer becomes the sentence (`conditional`).

    >>> conditional("every two to three months",
    ...             "Descale every month if your water is hard, or every two to three months "
    ...             "otherwise.")
    'Descale every month if your water is hard, or every two to three months otherwise.'
    >>> conditional("1 tablespoon", "Use 1 tablespoon of coffee per cup.") is None
    True
"""

from __future__ import annotations

import re
from dataclasses import replace

from askdocs.answer.checks import append_marker
from askdocs.answer.packing import Packed
from askdocs.citations import parse_citations, strip_citations
from askdocs.text import ASKING_TERMS, Analyzer
from askdocs.types import Answer, SentenceSupport

# Where a clause ends: a full stop, semicolon or colon followed by a space or the end, or a
# line break between paragraphs.
_CLAUSE_END = re.compile(r"[.;:!?](?=\s|$)|\n\s*\n")
_SEPARATOR = re.compile(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_WORDS = re.compile(r"[a-z]+")
MAX_CONDITIONAL_WORDS = 40
MAX_ITEM_WORDS = 5
MAX_ITEMS = 8
# Questions that ask for one of several, or for a count or a time: a list does not answer them.
_ONE_ASKED = re.compile(
    r"\b(?:which one|first|last|most|least|best|largest|smallest|main|only|single)\b|"
    r"^\s*(?:who|whom|whose|when|where|how)\b",
    re.IGNORECASE,
)


def asks_for_any(question: str) -> bool:
    """Whether a list could answer the question: "What limits ...?", "Which spices ...?", not
    "Who ...?", "When ...?" or "What is the largest ...?".

    >>> asks_for_any("What limits the rate of photosynthesis?")
    True
    >>> asks_for_any("What was the first printed book?"), asks_for_any("Who wrote it?")
    (False, False)
    """
    opener = question.lstrip().lower()
    return opener.startswith(("what ", "which ")) and not _ONE_ASKED.search(question)


def whole_list(phrase: str, sentence: str) -> str | None:
    """The enumeration `phrase` opens in `sentence`, up to the end of its clause; None when
    the phrase is not followed by two or more short items joined by commas and a last
    "and"/"or"."""
    phrase = phrase.strip().rstrip(".")
    if not phrase:
        return None
    at = sentence.lower().find(phrase.lower())
    if at < 0:
        return None
    start = at + len(phrase)
    rest = sentence[start:]
    end = _CLAUSE_END.search(rest)
    clause = rest[: end.start()] if end else rest
    if not clause or not _SEPARATOR.match(clause):
        return None
    # Items up to the first "and"/"or", then one more: "cumin, paprika, or chilli and stir"
    # is a list of three, then the sentence goes on.
    cut = 0
    items = 0
    joined = False
    for separator in _SEPARATOR.finditer(clause):
        if joined:
            cut = separator.start()
            break
        items += 1
        joined = separator.group().rstrip().endswith(("and", "or"))
    else:
        cut = len(clause)
    if not joined or not 2 <= items < MAX_ITEMS:
        return None
    parts = _SEPARATOR.split(clause[:cut])[1:]
    if len(parts) != items or any(
        not part.strip() or len(part.split()) > MAX_ITEM_WORDS for part in parts
    ):
        return None
    whole = sentence[at : start + cut]
    return " ".join(whole.split())


def conditional(phrase: str, sentence: str) -> str | None:
    """`sentence`, on one line, when `phrase` is in it and it states alternatives under a
    condition; None otherwise."""
    said = " ".join(sentence.split())
    if phrase.strip().lower() not in said.lower() or len(said.split()) > MAX_CONDITIONAL_WORDS:
        return None
    # Alternatives under a condition: "... if ..., or ... otherwise", "... unless ...",
    # "depending on ...".
    words = _WORDS.findall(said.lower())
    alternatives = "if" in words and "or" in words[words.index("if") :]
    return said if alternatives or {"otherwise", "unless", "depending"} & set(words) else None


def introduces(question: str, sentence: str, phrase: str) -> bool:
    """Whether the sentence, before the phrase, says what the question asks about: all its
    terms but one ("Factors that limit the rate of photosynthesis include ..." for "What
    limits the rate of photosynthesis?"). "X was born in Melbourne, Australia with his wife
    and children" does not introduce a list for "What is the place of birth of X?".

    >>> introduces("What limits the rate of photosynthesis?",
    ...            "Factors that limit the rate of photosynthesis include light, heat and CO2.",
    ...            "light")
    True
    >>> introduces("What is the place of birth of the director of Growing Up Smith?",
    ...            "Roger Nygard was born in Melbourne, Australia with his wife and children.",
    ...            "Melbourne")
    False
    """
    analyzer = Analyzer()
    asked = set(analyzer.tokens(question)) - ASKING_TERMS
    before = sentence[: max(0, sentence.lower().find(phrase.strip().lower()))]
    missing = asked - set(analyzer.tokens(before))
    return bool(asked) and len(missing) <= (1 if len(asked) > 1 else 0)


def extended(answer: Answer, packed: Packed, question: str, *, lists: bool = True) -> Answer:
    """A one-phrase answer as the whole list it opens in its supporting sentence (when
    `lists` and the sentence introduces the list with the question's words), or as that
    sentence when it states alternatives under a condition; else `answer` as it is."""
    if not answer.answered or len(answer.sentences) != 1:
        return answer
    only = answer.sentences[0]
    sentence = supporting_sentence(only, packed) if only.supported else None
    phrase = strip_citations(only.text)
    whole = None
    if sentence:
        listed = lists and introduces(question, sentence, phrase)
        whole = (whole_list(phrase, sentence) if listed else None) or conditional(phrase, sentence)
    return answer if whole is None else said_instead(answer, whole)


def said_instead(answer: Answer, text: str) -> Answer:
    """A one-sentence `answer` saying `text` instead, with the citations it showed: those
    the checker re-pointed to, else the model's."""
    only = answer.sentences[0]
    text = append_marker(text, only.added or only.cites)
    changed = replace(only, text=text, end=only.start + len(text))
    whole_text = answer.text[: only.start] + text + answer.text[only.end :]
    return replace(answer, text=whole_text, sentences=(changed,))


_ARTICLES = frozenset(("a", "an", "the"))
MAX_COMPLETED_WORDS = 60


def cut_from(part: str, sentence: str) -> bool:
    """Whether `part` is a run of `sentence`'s words, an opening article aside ("The padlock
    only means ..." from "... honest: a padlock only means ...").

    >>> cut_from("The padlock only means it is private.",
    ...          "It says nothing about honesty: a padlock only means it is private.")
    True
    >>> cut_from("The padlock means it is honest.", "A padlock only means it is private.")
    False
    """
    said = _WORDS.findall(part.lower())
    whole = _WORDS.findall(sentence.lower())
    if said and said[0] in _ARTICLES:
        said = said[1:]
    if len(said) < 4 or len(said) >= len(whole):
        return False
    return any(whole[i : i + len(said)] == said for i in range(len(whole) - len(said) + 1))


def completed(answer: Answer, packed: Packed, question: str) -> Answer:
    """`answer` with each sentence the model cut from a passage sentence, leaving out words
    the question asks about, given as the whole passage sentence. "Does the padlock mean a
    website is honest?" -> "The padlock only means the connection ... is private and
    authenticated." was cut from "HTTPS also says nothing about whether a site is honest: a
    padlock only means ...", and left out the part that answers."""
    if not answer.answered:
        return answer
    analyzer = Analyzer()
    asked = set(analyzer.tokens(question)) - ASKING_TERMS
    missing = asked - set(analyzer.tokens(strip_citations(answer.text)))
    if not missing:
        return answer
    text, sentences = answer.text, list(answer.sentences)
    for n, s in enumerate(sentences):
        whole = _cut_sentence(s, packed) if s.supported else None
        at = text.find(s.text)
        if whole is None or at < 0 or not missing & set(analyzer.tokens(whole)):
            continue
        cited = parse_citations(s.text)
        said = append_marker(whole, cited) if cited else whole
        text = text[:at] + said + text[at + len(s.text) :]
        shift = len(said) - len(s.text)
        sentences[n] = replace(s, text=said, start=at, end=at + len(said))
        sentences[n + 1 :] = [
            replace(t, start=t.start + shift, end=t.end + shift) if t.start >= at else t
            for t in sentences[n + 1 :]
        ]
        missing -= set(analyzer.tokens(whole))
    return replace(answer, text=text, sentences=tuple(sentences))


def supporting_sentence(s: SentenceSupport, packed: Packed) -> str | None:
    """The text of the passage sentence that best supports `s` (its `evidence`), or None."""
    if s.evidence is None or not 1 <= s.evidence[0] <= len(packed.shown):
        return None
    number, start, _ = s.evidence
    passage = packed.shown[number - 1].passage
    return next((p.text for p in passage.sentences if p.start == start), None)


def _cut_sentence(s: SentenceSupport, packed: Packed) -> str | None:
    """The passage sentence `s` was cut from, on one line, or None."""
    sentence = supporting_sentence(s, packed)
    if sentence is None or len(sentence.split()) > MAX_COMPLETED_WORDS:
        return None
    said = strip_citations(s.text).strip()
    return " ".join(sentence.split()) if cut_from(said, sentence) else None
