"""Orchestration: retrieve, score sentences, pack, generate, check, as a stream of events.

`stream_answer` yields `Retrieved(passages)` once the prompt is packed, `Token(text)` per
generated piece, and one `Final(answer)` last; `ask` is `stream_answer` drained.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Generator as Generator_
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from askdocs.answer.chain import (
    Chain,
    Link,
    decompose,
    follow_chain,
    last_link,
    link_citation,
    said_in_code,
)
from askdocs.answer.checks import (
    EVIDENCE_THRESHOLD,
    QUOTE_COVERAGE,
    QUOTE_EVIDENCE,
    append_marker,
    check_schema,
    checked,
    refusal,
    settled_sentences,
    structured,
)
from askdocs.answer.compare import NAME_HITS, asked, compare
from askdocs.answer.compare import answer as compared_answer
from askdocs.answer.events import Clock, Event, Final, Retrieved, Token
from askdocs.answer.hops import BRIDGE_BUDGET, Hop, follow, named_bridge, needs_bridge
from askdocs.answer.lists import asks_for_any, completed, extended
from askdocs.answer.names import about
from askdocs.answer.options import AskOptions, options_of
from askdocs.answer.packing import (
    FULL_BUDGET,
    PASSAGE_BUDGET,
    Packed,
    Shown,
    candidates,
    citation,
    grammar_for,
    pack,
)
from askdocs.answer.quantities import quantified
from askdocs.answer.rates import rated
from askdocs.answer.steps import asks_steps, steps
from askdocs.answer.styles import resolve
from askdocs.answer.summary import glob_escape, subject, summarise
from askdocs.answer.tables import rows_asked
from askdocs.citations import strip_citations
from askdocs.extractive import (
    EmbeddingCache,
    Passage,
    evidence,
    extract,
    score_passages,
)
from askdocs.generation import Decoding, Generator
from askdocs.retrieval import Filters
from askdocs.text import ASKING_TERMS, Analyzer
from askdocs.types import Answer, Citation, Hit, SentenceSupport

if TYPE_CHECKING:
    from askdocs.embeddings import Embedder
    from askdocs.kb import KnowledgeBase


_WORD = re.compile(r"\w+(?:['-]\w+)*")
SUMMARY_CHUNKS = 60  # chunks of one document a summary chooses from

_caches: weakref.WeakKeyDictionary[Any, EmbeddingCache] = weakref.WeakKeyDictionary()


def embedding_cache(embedder: Embedder) -> EmbeddingCache:
    """One sentence-vector cache per embedder, alive as long as the embedder is."""
    try:
        return _caches.setdefault(embedder, EmbeddingCache(embedder))
    except TypeError:  # an embedder that cannot be weakly referenced: no reuse
        return EmbeddingCache(embedder)


def ask(
    kb: KnowledgeBase,
    generator: Generator | None,
    question: str,
    options: AskOptions | None = None,
    **changes: Any,
) -> Answer:
    """Answer `question` from the knowledge base: `stream_answer`, drained."""
    for event in stream_answer(kb, generator, question, options, **changes):
        if isinstance(event, Final):
            return event.answer
    raise AssertionError("stream_answer always ends with Final")  # pragma: no cover


def stream_answer(
    kb: KnowledgeBase,
    generator: Generator | None,
    question: str,
    options: AskOptions | None = None,
    **changes: Any,
) -> Iterator[Event]:
    """Retrieve, then answer extractively (no generator, or `extractive`) or with the model.

    `options` says how (see `AskOptions`); keyword `changes` override single fields of it, so
    `stream_answer(kb, model, q, k=8)` works as well.
    """
    o = options_of(options, changes)
    question = " ".join(question.split())
    style = resolve(o.style, question)
    decoding = o.decoding or Decoding()
    if o.json_schema is not None:
        check_schema(o.json_schema)
    use_model = generator is not None and not o.extractive
    if use_model:  # fail before the slow part when the question cannot fit at all
        assert generator is not None
        pack(
            question, [], generator, max_tokens=decoding.max_tokens, structured=bool(o.json_schema)
        )
    clock = Clock()
    topic = subject(question) if style == "full" and o.json_schema is None else None
    if topic is not None:
        summarised = yield from _summary(kb, question, topic, o, clock)
        if summarised:
            return
    hits = kb.search(question, k=o.k, mode=o.mode, filters=o.filters, rerank=o.rerank)
    clock.lap("retrieve")
    cache = embedding_cache(kb.embedder)
    passages = score_passages(question, hits, cache, Analyzer())
    clock.lap("select")
    strength = round(evidence(passages), 4)
    hop = None
    hops = o.hops or (2 if needs_bridge(question) else 1)
    chain = decompose(question) if use_model and hops > 1 and o.json_schema is None else None
    if chain is not None:
        assert generator is not None
        chained = yield from _chained(
            kb, generator, question, chain, hits, o, clock, style, strength
        )
        if chained:
            return
    if hops > 1 and strength >= EVIDENCE_THRESHOLD:
        hop = follow(kb, question, passages, o, cache)
        clock.lap("hop")
    if o.json_schema is None and asked(question) is not None:
        found = hits + [p.hit for p in hop.passages] if hop else hits
        compared = yield from _compared(kb, question, found, o, clock, style, strength)
        if compared:
            return
    run_mode = "generative" if use_model else "extractive"
    if o.json_schema is not None and use_model:
        run_mode = "structured"
    if strength < EVIDENCE_THRESHOLD:
        reason = f"weak retrieval evidence ({strength:.2f} < {EVIDENCE_THRESHOLD})"
        answer = refusal(question, passages, reason, mode=run_mode, strength=strength)
        yield Final(replace(answer, timings=clock.total(), style=style))
        return
    if o.json_schema is None:
        picked = rows_asked(question, hits, evidence=strength)
        if picked is not None:
            yield from _settled(picked, clock)
            return
    if style == "full" and o.json_schema is None and asks_steps(question):
        listed = yield from _steps(kb, question, hits, o, clock, strength)
        if listed:
            return
    if not use_model:
        yield from _extractive(question, passages, clock, strength)
        return
    assert generator is not None
    yield from _generative(
        question, passages, generator, cache, clock, strength, o, decoding, style, hop,
        used=_used(kb, o),
    )  # fmt: skip


def _name_search(kb: KnowledgeBase, o: AskOptions) -> Callable[[str], list[Hit]]:
    """A search for the passages about one name, within the question's filters. Keyword
    search: embeddings of a bare name rank look-alike names first ("Larry Cohen" found "Lyon
    Cohen" ten times and not Larry Cohen's passage), the name's own words do not."""

    def search(name: str) -> list[Hit]:
        return kb.search(name, k=NAME_HITS, mode="keyword", filters=o.filters, rerank=False)

    return search


def _used(kb: KnowledgeBase, o: AskOptions) -> Callable[[str], bool]:
    """Whether any document within the question's filters uses a word (keyword search)."""

    def used(word: str) -> bool:
        return bool(kb.search(word, k=1, mode="keyword", filters=o.filters, rerank=False))

    return used


def _in_document(
    kb: KnowledgeBase, o: AskOptions, hit: Hit, query: str, mode: str | None = None
) -> list[Hit]:
    """The chunks of `hit`'s document (up to `SUMMARY_CHUNKS`) that `query` finds best."""
    only = replace(o.filters or Filters(), path_glob=glob_escape(hit.path))
    return kb.search(query, k=SUMMARY_CHUNKS, mode=mode or o.mode, filters=only, rerank=False)


def _document_chunks(kb: KnowledgeBase, o: AskOptions) -> Callable[[Hit], list[Hit]]:
    """The chunks of a passage's document, in document order (dense search ranks them all)."""

    def chunks_of(hit: Hit) -> list[Hit]:
        return sorted(_in_document(kb, o, hit, hit.title, "dense"), key=lambda h: h.start)

    return chunks_of


def _compared(
    kb: KnowledgeBase,
    question: str,
    hits: Sequence[Hit],
    o: AskOptions,
    clock: Clock,
    style: str,
    strength: float,
) -> Generator_[Event, None, bool]:
    """Answer a comparison of two dates in code (`answer.compare`); False: it cannot."""
    search = _name_search(kb, o)
    result = compare(question, hits, search)
    clock.lap("compare")
    if result is None:
        return False
    yield from _settled(compared_answer(question, *result, style=style, evidence=strength), clock)
    return True


def _settled(answer: Answer, clock: Clock) -> Iterator[Event]:
    """The events of an answer made in code: its passages, its whole text, the answer."""
    yield Retrieved(answer.passages)
    yield _token(answer.text, clock)
    timings = {**clock.total(), "time_to_first_token": round(clock.first_token, 4)}
    yield Final(replace(answer, timings=timings))


def _summary(
    kb: KnowledgeBase, question: str, topic: str, o: AskOptions, clock: Clock
) -> Generator_[Event, None, bool]:
    """Summarise the document the best hit for `topic` comes from (`answer.summary`); False
    when the search finds nothing about it."""
    cache = embedding_cache(kb.embedder)
    best = kb.search(topic, k=1, mode=o.mode, filters=o.filters, rerank=o.rerank)
    strength = round(evidence(score_passages(topic, best, cache, Analyzer())), 4)
    if not best or strength < EVIDENCE_THRESHOLD:
        return False
    chunks = _in_document(kb, o, best[0], topic)
    answer = summarise(question, score_passages(topic, chunks, cache, Analyzer()), strength)
    clock.lap("summarise")
    if answer is None:
        return False
    yield from _settled(answer, clock)
    return True


def _steps(
    kb: KnowledgeBase,
    question: str,
    hits: Sequence[Hit],
    o: AskOptions,
    clock: Clock,
    strength: float,
) -> Generator_[Event, None, bool]:
    """Quote the numbered list a how-to question names (`answer.steps`); False: none."""

    def source(hit: Hit) -> str | None:
        found = kb.passage(hit.chunk_id)
        return found[1] if found else None

    def chunks_of(hit: Hit) -> list[Hit]:
        return _in_document(kb, o, hit, question)

    answer = steps(question, hits, source, chunks_of, evidence=strength)
    clock.lap("steps")
    if answer is None:
        return False
    yield from _settled(answer, clock)
    return True


def _chained(
    kb: KnowledgeBase,
    generator: Generator,
    question: str,
    chain: Chain,
    hits: Sequence[Hit],
    o: AskOptions,
    clock: Clock,
    style: str,
    strength: float,
) -> Generator_[Event, None, bool]:
    """Follow the question's chain of relations (`answer.chain`), then answer the last
    question about the name found; False when a link cannot be followed or the last search
    finds too little, so that the question is answered whole, as before."""
    search = _name_search(kb, o)
    cache = embedding_cache(kb.embedder)
    chunks_of = _document_chunks(kb, o)
    links = follow_chain(chain, hits, search, generator, cache, chunks_of)
    clock.lap("chain")
    if links is None:
        return False
    for holder in (links[-1].holder, *links[-1].others):
        last_read = last_link(chain, holder, hits, search, chunks_of)
        if last_read is not None:  # "Who is the spouse of <holder>?", stated in a fixed form
            held = [*links[:-1], replace(links[-1], holder=holder, others=())]
            answer = said_in_code(question, [*held, last_read], style=style, evidence=strength)
            yield from _settled(answer, clock)
            return True
    # "founded by A and B": the holder whose own passage best answers the last question
    tried = []
    for holder in (links[-1].holder, *links[-1].others):
        last = chain.outer.format(holder)
        found = kb.search(last, k=o.k, mode=o.mode, filters=o.filters, rerank=o.rerank)
        own = about(holder, found) or about(holder, search(holder))
        if own is not None:  # the holder's own passage first: it is always shown, whole
            found = [own, *(h for h in found if h.chunk_id != own.chunk_id)][: o.k]
        passages = score_passages(last, found, cache, Analyzer())
        tried.append((round(evidence(passages), 4), own is not None, holder, last, passages))
    strength, owned, holder, last, passages = max(tried, key=lambda t: (t[0], t[1]))
    if holder != links[-1].holder:
        links[-1] = replace(links[-1], holder=holder, others=())
    if strength < EVIDENCE_THRESHOLD:
        return False
    decoding = o.decoding or Decoding()
    whole = passages[:1] if owned else []
    events = _generative(
        last, passages, generator, cache, clock, strength, o, decoding, style, whole=whole
    )
    shown = 0
    for event in events:
        if isinstance(event, Retrieved):
            shown = len(event.passages)
            event = Retrieved(event.passages + _link_citations(links, shown))
        elif isinstance(event, Final):
            event = Final(_with_links(event.answer, question, last, links, shown))
        yield event
    return True


def _link_citations(links: Sequence[Link], shown: int) -> tuple[Citation, ...]:
    return tuple(link_citation(shown + i, link) for i, link in enumerate(links, 1))


def _with_links(
    answer: Answer, question: str, last: str, links: Sequence[Link], shown: int
) -> Answer:
    """The answer to the last question, as the answer to `question`: it also cites the
    passage of every link, and a full answer says each link in a sentence of its own."""
    said = "; ".join(f"{link.statement()[:-1]} [{shown + i}]" for i, link in enumerate(links, 1))
    note = f'answered as "{last}" ({said})'
    if answer.note:
        note = f"{note}; {answer.note}"
    if not answer.answered:
        return replace(answer, question=question, note=note)
    extra = _link_citations(links, shown)
    numbers = tuple(c.number for c in extra)
    sentences = list(answer.sentences)
    if answer.style == "full" or len(sentences) != 1:
        text = answer.text
        for citation_, link in zip(extra, links, strict=True):
            part = append_marker(link.statement(), (citation_.number,))
            start = len(text) + 1
            n, span = citation_.number, (citation_.number, citation_.start, citation_.end)
            end = start + len(part)
            sentences.append(SentenceSupport(part, start, end, (n,), 1.0, True, evidence=span))
            text = f"{text} {part}"
    else:  # a short answer: one phrase, citing the links' passages too
        only = sentences[0]
        cites = (*only.cites, *numbers)
        text = append_marker(strip_citations(only.text), cites)
        sentences = [replace(only, text=text, end=only.start + len(text), cites=cites)]
    return replace(
        answer,
        question=question,
        text=text,
        sentences=tuple(sentences),
        citations=answer.citations + extra,
        passages=answer.passages + extra,
        note=note,
    )


def _extractive(
    question: str, passages: Sequence[Passage], clock: Clock, strength: float
) -> Iterator[Event]:
    answer = quoted(question, passages, strength)
    yield Retrieved(answer.passages)
    clock.lap("extract")
    yield Final(replace(answer, timings=clock.total()))


def _quote_instead(
    question: str,
    passages: Sequence[Passage],
    strength: float,
    style: str,
    used: Callable[[str], bool] | None,
) -> Answer | None:
    """The quote that answers instead of a refused draft, or None. The evidence says the
    answer is there and the model did not find it or state it: on strong evidence
    (`QUOTE_EVIDENCE`) when the quote holds the question's terms; for a full answer also on
    weaker evidence when the documents use every word the quote misses
    (`quotes_the_question`): the 1.5B model refuses long answers that a passage states in
    one sentence ("never on a stove")."""
    strong = strength >= QUOTE_EVIDENCE
    lenient = used if style == "full" else None
    if not strong and lenient is None:
        return None
    quote = quoted(question, passages, strength)
    if strong and quotes_the_question(question, quote) is not None:
        return quote
    return quotes_the_question(question, quote, lenient) if lenient else None


def quotes_the_question(
    question: str, quote: Answer, used: Callable[[str], bool] | None = None
) -> Answer | None:
    """`quote` when its sentences, with the titles they come from, hold nearly every term of
    the question (`QUOTE_COVERAGE`); None otherwise. "How many calories are in a bowl of
    lentil soup?" finds sentences about lentil soup with strong evidence, but none says
    "calories": the model's refusal stands.

    With `used` (whether the documents use a word anywhere), the rule for weaker evidence:
    every term the quote misses must be a word the documents use elsewhere (the question is
    about what they discuss, in other words), and then a quote that misses one term of three
    also stands. "Can I heat the carafe on the stove?" is answered with "Use the carafe only
    on the warming plate of this machine, never on a stove"; "How long is the warranty on the
    coffee maker?" is not, as no document says "warranty".
    """
    analyzer = Analyzer()
    words = {
        t: w for w in _WORD.findall(question) for t in analyzer.tokens(w) if t not in ASKING_TERMS
    }
    if not words:
        return None
    held = set(analyzer.tokens(" ".join(c.title for c in quote.citations) + " " + quote.text))
    missing = [w for t, w in words.items() if t not in held]
    if used is None:
        return quote if len(missing) <= len(words) * (1 - QUOTE_COVERAGE) else None
    few = len(missing) <= max(len(words) * (1 - QUOTE_COVERAGE), 1 if len(words) >= 3 else 0)
    return quote if few and all(used(w) for w in missing) else None


def quoted(question: str, passages: Sequence[Passage], strength: float) -> Answer:
    """The extractive answer: the best-supported sentences, each with its citation."""
    shown = [Shown(n, p, p.selected()) for n, p in enumerate(candidates(passages), 1)]
    numbered = tuple(citation(s) for s in shown)
    picks = extract([(s.number, s.passage) for s in shown])
    seen: set[str] = set()  # overlapping chunks hold the same sentence: quote it once
    unique = []
    for number, sentence in picks:
        if sentence.text not in seen:
            seen.add(sentence.text)
            unique.append((number, sentence))
    picks = unique
    text, sentences = settled_sentences([(s.text, (n,), (n, s.start, s.end)) for n, s in picks])
    cited = {n for n, _ in picks}
    return Answer(
        question=question,
        text=text,
        answered=True,
        citations=tuple(c for c in numbered if c.number in cited),
        sentences=sentences,
        passages=numbered,
        mode="extractive",
        evidence=strength,
    )


def _generative(
    question: str,
    passages: Sequence[Passage],
    generator: Generator,
    cache: EmbeddingCache,
    clock: Clock,
    strength: float,
    o: AskOptions,
    decoding: Decoding,
    style: str,
    hop: Hop | None = None,
    whole: Sequence[Passage] = (),
    used: Callable[[str], bool] | None = None,
) -> Iterator[Event]:
    json_schema = o.json_schema
    is_structured = json_schema is not None
    budget = o.budget or (FULL_BUDGET if style == "full" else PASSAGE_BUDGET)
    bridge = hop.passages if hop else ()
    packed = pack(
        question, passages, generator,
        max_tokens=decoding.max_tokens, budget=budget + BRIDGE_BUDGET * len(bridge),
        structured=is_structured, style=style, pinned=bridge, whole=whole,
    )  # fmt: skip
    clock.lap("pack")
    yield Retrieved(tuple(citation(s) for s in packed.shown))
    grammar = None if is_structured else grammar_for(style, packed, question)
    # A short answer over a bridge is held back until it is known not to name the bridge
    # (a few tokens: the wait is short), then sent, or asked again about the bridge.
    hold = bool(bridge) and style == "short" and not is_structured
    draft = yield from _stream(generator, packed, decoding, grammar, json_schema, clock, hold)
    note = ""
    name = named_bridge(strip_citations(draft), hop, question) if hold else None
    if name is not None:
        about = f"{question} (about {name})"
        packed = pack(
            about, [], generator, max_tokens=decoding.max_tokens, budget=budget, pinned=bridge
        )
        note = f"first answered with {name}, which the question asks about; asked again about it"
        grammar = grammar_for(style, packed)
        draft = yield from _stream(generator, packed, decoding, grammar, None, clock, False)
        clock.lap("second_answer")
    elif hold:
        yield _token(draft, clock)
    clock.lap("generate")
    usage = generator.last_usage
    tokens = {
        "prompt": usage.prompt_tokens or packed.prompt_tokens,
        "completion": usage.completion_tokens,
        "passages": len(packed.shown),
        "context": generator.context_length,
    }
    if is_structured:
        assert json_schema is not None
        answer = structured(question, draft, json_schema, packed, cache, strength)
    else:
        answer = checked(question, draft, packed, passages, cache, strength, strict=o.strict)
        if style == "short":
            answer = rated(answer, packed, question)
            answer = extended(answer, packed, question, lists=asks_for_any(question))
        else:
            answer = quantified(completed(answer, packed, question), packed, question)
        if not answer.answered:
            quote = _quote_instead(question, passages, strength, style, used)
            if quote is not None:
                note = f"{answer.reason}; quoting the passages instead"
                answer = replace(quote, draft=draft)
    clock.lap("check")
    timings = {**clock.total(), "time_to_first_token": round(clock.first_token, 4)}
    if usage.seconds_to_first_token:
        timings["model_first_token"] = round(usage.seconds_to_first_token, 4)
    if usage.seconds and usage.completion_tokens:
        timings["tokens_per_second"] = round(usage.completion_tokens / usage.seconds, 2)
    yield Final(replace(answer, timings=timings, tokens=tokens, style=style, note=note))


def _token(text: str, clock: Clock) -> Token:
    """A piece for the reader; the first one sets the time to first token."""
    if not clock.first_token:
        clock.lap("first_token")
        clock.first_token = clock.last  # seconds since the question came in
    return Token(text)


def _stream(
    generator: Generator,
    packed: Packed,
    decoding: Decoding,
    grammar: str | None,
    json_schema: Mapping[str, Any] | None,
    clock: Clock,
    hold: bool,
) -> Generator_[Event, None, str]:
    """Generate over `packed`, yielding each piece as a Token unless `hold`; return the text."""
    pieces: list[str] = []
    for piece in generator.stream(
        packed.messages, decoding, json_schema=json_schema, grammar=grammar
    ):
        pieces.append(piece)
        if not hold:
            yield _token(piece, clock)
    return "".join(pieces)
