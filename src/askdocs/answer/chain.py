"""Questions that name what they ask about through a chain of relations, answered one link at a
time: "Where was the director of film Aylwin born?" is "Who directed Aylwin?" (Henry Edwards),
then "Where was Henry Edwards born?".

A 1.5B model shown both passages at once answers with the bridge ("Henry Edwards") or with the
film's own facts about half the time (docs/benchmarks.md, "Multi-hop"). Self-ask decomposition
fixes that without a bigger model: `decompose` reads the chain from the question's wording
(`the <relation> of <name>`, `<name>'s <relation>`, nested, and the kinship words that are two
links: "paternal grandfather", "mother-in-law"); `follow_chain` follows it link by link, each in
the passage about the current name (found by its title or opening words, as the date
comparisons of `compare.py` find theirs), reading the holder of a role or a kinship from the
text when it is said in a fixed form ("directed by ...", "the eldest son of ...", "married
...", in any chunk of that document) or else letting the model pick one of the names that
passage mentions (a grammar holds it to them). The last question, about the name found, is
then answered by the usual pipeline, and the answer also cites each passage a link came from;
when that question asks for one more holder ("Who is the spouse of ...?") and the text says
it in a fixed form, the answer is said in code (`said_in_code`). Anything that does not
resolve falls back to the single question, as before.

    >>> decompose("Where was the director of film Aylwin (Film) born?")
    Chain(entity='Aylwin (Film)', relations=('director',), outer='Where was {} born?')
    >>> decompose("Who is Mary Of Bourbon's paternal grandfather?")
    Chain(entity='Mary Of Bourbon', relations=('father',), outer='Who is the father of {}?')
    >>> decompose("Who is the director of film Aylwin?") is None  # one link: one search
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from askdocs.answer.checks import settled_answer
from askdocs.answer.names import (
    JOINERS,
    ROLES_BY,
    all_about,
    co_holders,
    holder,
    kin,
    lowercase_tail,
    sentence_around,
    sentence_citation,
    titled_names,
)
from askdocs.answer.packing import REFUSAL, choice_grammar, choices, pack
from askdocs.citations import strip_citations
from askdocs.extractive import EmbeddingCache, score_passages
from askdocs.generation import Decoding, Generator
from askdocs.text import Analyzer
from askdocs.types import Answer, Citation, Hit

_KIN = (
    "father|mother|parent|spouse|husband|wife|son|daughter|child|brother|sister|sibling|"
    "stepfather|stepmother"
)
_ROLES = "|".join(ROLES_BY)
# Kinship words that are two links, innermost first.
_TWO_LINKS = {
    "paternal grandfather": ("father", "father"),
    "paternal grandmother": ("father", "mother"),
    "maternal grandfather": ("mother", "father"),
    "maternal grandmother": ("mother", "mother"),
    "father-in-law": ("spouse", "father"),
    "mother-in-law": ("spouse", "mother"),
}
_RELATION = (
    rf"(?:paternal |maternal )?(?:grandfather|grandmother)|father-in-law|mother-in-law|"
    rf"{_KIN}|{_ROLES}"
)
_KINDS = "film|movie|song|album|book|novel|company|band|group|show|series|play|game|magazine"
# "the director of film ", "the spouse of the ": one link of the chain, read left to right.
_OF = re.compile(
    rf"(?<![\w-])(?:the )?({_RELATION}) of (?:the (?!(?:{_RELATION}) of ))?(?:(?:{_KINDS}) )?",
    re.IGNORECASE,
)
_POSSESSIVE = re.compile(rf"['\u2019]s ({_RELATION})\b", re.IGNORECASE)
# An outer question that asks for the last link's holder itself: that link stays in it.
_TRIVIAL = frozenset(("who is", "who was", "who's", "what is", "what was", "name"))
_ASKS_HOLDER = re.compile(
    rf"(?:who is|who was|who's|what is|what was|name) the ({_KIN}|{_ROLES}) of \{{\}}\?$",
    re.IGNORECASE,
)
TRIES = 2  # passages about a name tried for a link ("Crow foot may refer to:" first)
MAX_LINKS = 3  # links followed before answering; more is not a question people ask
BRIDGE_TOKENS = 24  # the longest name the model may pick


@dataclass(frozen=True, slots=True)
class Chain:
    """`outer` asks about the holder found by following `relations` from `entity`."""

    entity: str
    relations: tuple[str, ...]  # innermost first
    outer: str  # a question with "{}" where the last holder's name goes


@dataclass(frozen=True, slots=True)
class Link:
    """One followed link: `holder` is the `relation` of `entity`, as `hit` says at [start, end)."""

    entity: str
    relation: str
    holder: str
    hit: Hit
    start: int
    end: int
    others: tuple[str, ...] = ()  # more holders the text names ("by A and B")

    def statement(self) -> str:
        return f"The {self.relation} of {self.entity} is {self.holder}."


def decompose(question: str) -> Chain | None:
    """The chain `question` asks along, or None when it names its subject directly (or the
    chain is a single link whose holder is the answer)."""
    text = question.strip()
    if choices(text) is not None:
        return None  # "..., A or B?": a comparison (compare.py), not a chain
    found = _of_chain(text) or _possessive_chain(text)
    if found is None:
        return None
    prefix, words, entity, tail = found
    relations: list[str] = []
    for word in reversed(words):  # innermost first
        relations.extend(_TWO_LINKS.get(word.lower(), (word.lower(),)))
    if any(r in ("grandfather", "grandmother") for r in relations):
        return None  # which side is not said
    if " ".join(prefix.lower().split()) in _TRIVIAL:
        last = relations.pop()
        prefix = f"{prefix.rstrip()} the {last} of "
    if not relations or len(relations) > MAX_LINKS:
        return None
    return Chain(entity, tuple(relations), f"{prefix}{{}}{tail}")


def _of_chain(text: str) -> tuple[str, list[str], str, str] | None:
    """(text before the chain, relation words outermost first, the entity, the rest) for
    "... the R of [the R2 of] [kind] NAME ..."."""
    match = _OF.search(text)
    if match is None:
        return None
    words, at = [match.group(1)], match.end()
    while (inner := _OF.match(text, at)) is not None:
        words.append(inner.group(1))
        at = inner.end()
    entity, tail = _split_tail(text[at:])
    if not entity:
        return None
    return text[: match.start()].rstrip() + " ", words, entity, tail


def _possessive_chain(text: str) -> tuple[str, list[str], str, str] | None:
    """The same for "... NAME's R ...", NAME being the capitalised words before "'s"."""
    match = _POSSESSIVE.search(text)
    if match is None:
        return None
    start = _name_start(text, match.start())
    if start is None:
        return None
    return text[:start], [match.group(1)], text[start : match.start()], text[match.end() :]


def _split_tail(rest: str) -> tuple[str, str]:
    """("Aylwin (Film)", " born?") from "Aylwin (Film) born?": the name ends where only
    lowercase words are left."""
    body = rest.rstrip()
    end_mark = ""
    while body and body[-1] in "?.!":
        end_mark = body[-1] + end_mark
        body = body[:-1].rstrip()
    name, tail = lowercase_tail(body)
    name = name.strip(" ,")
    for possessive in ("'s", "\u2019s"):  # "the director of film X 's birthday"
        if name.endswith(possessive):
            name = name[: -len(possessive)].rstrip()
            return (name, f"{possessive} {tail}".rstrip() + end_mark) if _starts(name) else ("", "")
    if not _starts(name):
        return "", ""
    return name, (f" {tail}" if tail else "") + end_mark


def _starts(name: str) -> bool:
    """Whether `name` starts as a name does: capitalised, or a number."""
    return bool(name) and (name[0].isupper() or name[0].isdigit())


def _name_start(text: str, end: int) -> int | None:
    """Where the capitalised name ending at `end` starts ("Joanna Of Aragon, Countess Of
    Foix's" -> "Joanna"), or None when the word before "'s" is not capitalised."""
    words = list(re.finditer(r"\S+", text[:end]))
    start = None
    for word in reversed(words):
        token = word.group().rstrip(",")
        if token[:1].isupper() or token[:1].isdigit() or token[:1] == "(":
            start = word.start()
        elif token.lower() in JOINERS and start is not None:
            continue
        else:
            break
    if start is None:
        return None
    # A joiner cannot start a name: "of Frederick" -> "Frederick".
    while text[start:end].split(" ", 1)[0].lower() in JOINERS and " " in text[start:end]:
        start = text.index(" ", start) + 1
    return start


Search = Callable[[str], Sequence[Hit]]
# The chunks of a passage's document, in order: a long article states a kinship after its
# first chunk ("In 1926, Buzzell married actress Ona Munson" comes 700 characters in).
Chunks = Callable[[Hit], Sequence[Hit]]


def _alone(hit: Hit) -> Sequence[Hit]:
    return [hit]


def follow_chain(
    chain: Chain,
    hits: Sequence[Hit],
    search: Search,
    generator: Generator,
    cache: EmbeddingCache,
    chunks_of: Chunks = _alone,
) -> list[Link] | None:
    """Follow every link of `chain`; None as soon as one cannot be followed."""
    links: list[Link] = []
    entity = chain.entity
    for relation in chain.relations:
        link = None
        for hit in _passages_about(entity, hits, search)[:TRIES]:
            link = _read(entity, relation, hit, chunks_of) or _by_model(
                entity, relation, hit, generator, cache
            )
            if link is not None:
                break
        if link is None:
            return None
        links.append(link)
        entity = link.holder
    return links


def _passages_about(name: str, hits: Sequence[Hit], search: Search) -> list[Hit]:
    """The passages about `name` among `hits`, then those a search for the name finds."""
    found = all_about(name, hits)
    if len(found) < TRIES:
        seen = {h.chunk_id for h in found}
        found += [h for h in all_about(name, search(name)) if h.chunk_id not in seen]
    return found


def read_link(entity: str, relation: str, hit: Hit) -> Link | None:
    """A role or a kinship the passage states in a fixed form ("directed by Henry Edwards",
    "the eldest son of Thinley Norbu", "married actress Ona Munson"); no model call."""
    if relation in ROLES_BY:
        named = holder(hit.text, relation)
        if named is None:
            return None
        name, start, end = named
        return Link(entity, relation, name, hit, start, end, tuple(co_holders(hit.text, name)))
    named = kin(hit.text, relation)
    if named is None:
        return None
    name, start, end = named
    return Link(entity, relation, name, hit, start, end)


def _read(entity: str, relation: str, hit: Hit, chunks_of: Chunks) -> Link | None:
    """`read_link` in the passage about `entity`, then in the rest of its document."""
    found = read_link(entity, relation, hit)
    if found is not None:
        return found
    later = (c for c in chunks_of(hit) if c.path == hit.path and c.start > hit.start)
    return next((link for c in later if (link := read_link(entity, relation, c))), None)


def last_link(
    chain: Chain, holder: str, hits: Sequence[Hit], search: Search, chunks_of: Chunks = _alone
) -> Link | None:
    """When the question asks for a holder itself ("Who is the spouse of the director of
    film X?" asks "Who is the spouse of Edward Buzzell?") and the holder's passage states it
    in a fixed form: that link, so the answer is said in code."""
    match = _ASKS_HOLDER.match(chain.outer)
    if match is None:
        return None
    for hit in _passages_about(holder, hits, search)[:TRIES]:
        link = _read(holder, match.group(1).lower(), hit, chunks_of)
        if link is not None:
            return link
    return None


def _by_model(
    entity: str, relation: str, hit: Hit, generator: Generator, cache: EmbeddingCache
) -> Link | None:
    """The model picks the holder among the names the passage mentions, or refuses."""
    question = f"Who is the {relation} of {entity}?"
    passage = score_passages(question, [hit], cache, Analyzer())[0]
    packed = pack(question, [passage], generator, max_tokens=BRIDGE_TOKENS, whole=[passage])
    if not packed.shown:
        return None
    own = set(Analyzer(stem=False).tokens(entity))
    shown = packed.shown[0]
    names = [
        name
        for i in shown.indices
        for name in titled_names(passage.sentences[i].text)
        if not set(Analyzer(stem=False).tokens(name)) <= own
    ]
    names = list(dict.fromkeys(names))
    if not names:
        return None
    grammar = choice_grammar([*names, REFUSAL], 1)
    decoding = Decoding(temperature=0.0, max_tokens=BRIDGE_TOKENS)
    reply = strip_citations("".join(generator.stream(packed.messages, decoding, grammar=grammar)))
    holder = reply.strip()
    if holder not in names:
        return None
    at = hit.text.find(holder)
    start, end = sentence_around(hit.text, max(at, 0))
    return Link(entity, relation, holder, hit, start, end)


def said_in_code(question: str, links: Sequence[Link], *, style: str, evidence: float) -> Answer:
    """The answer when every link, the last one included, was read in a fixed form: the last
    holder, citing the sentence of each link; a full answer says each link too."""
    cited = [link_citation(n, link) for n, link in enumerate(links, 1)]
    spans = [(c.number, c.start, c.end) for c in cited]
    numbers = tuple(c.number for c in cited)
    name = links[-1].holder
    if style == "full":
        parts = [(f"{name}.", numbers, spans[-1])]
        parts += [(link.statement(), (c.number,), span)
                  for link, c, span in zip(links, cited, spans, strict=True)]  # fmt: skip
    else:
        parts = [(name, numbers, spans[-1])]
    said = "; ".join(link.statement()[:-1] for link in links)
    return settled_answer(
        question, parts, tuple(cited), mode="chained", style=style, evidence=evidence,
        note=f"read from the passages in code ({said})",
    )  # fmt: skip


def link_citation(number: int, link: Link) -> Citation:
    """The passage a link was read from, cited by the sentence that states it."""
    return sentence_citation(number, link.hit, link.start, link.end)
