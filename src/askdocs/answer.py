"""Grounded answers: retrieve, pick sentences, pack a prompt, generate, check every citation.

    from askdocs.answer import ask
    answer = ask(kb, generator, "How do I descale the machine?")
    answer.text        # "Run dissolved citric acid through the machine [1]."
    answer.citations   # the passages cited, with document spans
    answer.sentences   # per sentence: support score, supported?, problems

`stream_answer` yields the same work as events, for a terminal or a server:
`Retrieved(passages)` once the prompt is packed, `Token(text)` per generated piece, and one
`Final(answer)` last. A question refused before generation (weak evidence) yields `Final`
alone. `ask` is `stream_answer` drained.

The model is never trusted to refuse or to cite (small local models do neither reliably), so:
- weak retrieval evidence (`EVIDENCE_THRESHOLD`, see `extractive.py`) refuses before any
  generation, which also saves the prompt's cost;
- the model's refusal phrase, or an answer none of whose sentences is supported by a passage
  (`citations.py`), also refuses. A refusal says so plainly and lists the closest passages.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from askdocs import citations
from askdocs.citations import Source
from askdocs.errors import AskdocsError, ConfigError, ContextTooLong
from askdocs.extractive import EmbeddingCache, Passage, evidence, extract, score_passages
from askdocs.generation import Decoding, Generator, Message
from askdocs.keyword import Analyzer
from askdocs.retrieval import Filters
from askdocs.types import Answer, Citation, SentenceSupport

if TYPE_CHECKING:
    from askdocs.embeddings import Embedder
    from askdocs.kb import KnowledgeBase

REFUSAL = "The passages do not contain the answer."
NOT_IN_DOCUMENTS = "The documents do not contain the answer to this question."
# Below this best question-sentence score (extractive.py) nothing retrieved is about the
# question. Measured on 400 XQuAD-en questions, hybrid search, k=4, each asked with its article
# in the store and with it removed (docs/benchmarks.md, "Grounded answers"): below 0.44
# (the Youden-optimal cut) refuses 5.3% of the answerable and 97.5% of the unanswerable; 0.40
# 3.3% / 92.3%; 0.38 2.3% / 90.3%; 0.34 1.0% / 82.5%. The gate keeps to ~2% of the 10%
# false-refusal budget because the citation check refuses more after generation (7% of
# answerable questions with Qwen 1.5B), and refuses unanswerable ones the gate let through.
EVIDENCE_THRESHOLD = 0.38
# Chunks retrieved, and how many are shown: on the same XQuAD sample, 3 passages of at most 2
# sentences (2.7 sentences on average) hold the gold answer for 94.1% of questions; 3 sentences
# each raise that to 95.2% for 21% more prompt, 1 sentence each drops it to 85.7%. The best
# sentence overall holds it for 82.9% (an extractive answer's first sentence).
K = 4
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
STRUCTURED_PROMPT = (
    "You fill in a JSON object using only the numbered passages the user gives you. "
    "Leave out or set to null what the passages do not say."
)
_REFUSAL_MARKERS = (
    "do not contain the answer",
    "don't contain the answer",
    "does not contain the answer",
    "not in the passages",
    "not in the documents",
    "passages do not",
    "passages don't",
    "i don't know",
    "i do not know",
    "cannot answer",
    "can't answer",
)


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The numbered passages the answer will be built from (sent before generation starts)."""

    passages: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of generated text, as the model produced it (before checking)."""

    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """The checked answer; always the last event."""

    answer: Answer


Event = Retrieved | Token | Final


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


@dataclass
class _Clock:
    start: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    laps: dict[str, float] = field(default_factory=dict)

    def lap(self, name: str) -> None:
        now = time.perf_counter() - self.start
        self.laps[name] = round(now - self.last, 4)
        self.last = now

    def total(self) -> dict[str, float]:
        return {**self.laps, "total": round(time.perf_counter() - self.start, 4)}


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


def messages_for(question: str, shown: Sequence[Shown], *, structured: bool) -> tuple[Message, ...]:
    # The system prompt is fixed and first, so its KV prefix is reused from one question to
    # the next; everything that varies comes after it.
    system = STRUCTURED_PROMPT if structured else SYSTEM_PROMPT
    return (Message("system", system), Message("user", user_prompt(question, shown)))


def answer_grammar(passages: int) -> str:
    """GBNF for a short answer: a phrase on one line, then one citation of a shown passage.

    >>> print(answer_grammar(3))
    root ::= phrase " [" [1-3] "]"
    phrase ::= [^\\[\\]\\n]{2,120}
    """
    numbers = f"[1-{passages}]" if passages > 1 else '"1"'
    return f'root ::= phrase " [" {numbers} "]"\nphrase ::= [^\\[\\]\\n]{{2,{ANSWER_CHARS}}}'


def candidates(passages: Sequence[Passage], limit: int = MAX_PASSAGES) -> list[Passage]:
    """Passages worth showing, best first: few and close to the best one."""
    ranked = sorted(passages, key=lambda p: -p.best)
    if not ranked:
        return []
    top = ranked[0].best
    return [p for p in ranked if p.best >= top - PASSAGE_MARGIN][:limit]


def pack(
    question: str,
    passages: Sequence[Passage],
    generator: Generator,
    *,
    max_tokens: int,
    budget: int = PASSAGE_BUDGET,
    structured: bool = False,
) -> Packed:
    """Number and pack the best passages into the prompt, best first.

    The prompt never exceeds `context_length - max_tokens` (room is kept for the answer); the
    passages take at most `budget` tokens. A passage that does not fit whole is tried with
    its best sentence alone, then skipped. Raises ContextTooLong if even the question and the
    instructions do not fit.
    """
    limit = generator.context_length - max_tokens
    base = generator.prompt_tokens(messages_for(question, [], structured=structured))
    if base > limit:
        raise ContextTooLong(
            f"the question and instructions take {base} tokens, but the "
            f"{generator.context_length}-token context minus {max_tokens} tokens reserved "
            f"for the answer leaves {limit}; shorten the question or lower max_tokens"
        )
    room = min(limit - base, budget)
    shown: list[Shown] = []
    for passage in candidates(passages):
        for indices in _fallbacks(passage):
            trial = Shown(len(shown) + 1, passage, indices)
            cost = generator.count_tokens(trial.block()) + _TOKEN_SLACK
            if cost <= room:
                shown.append(trial)
                room -= cost
                break
    return _verified(question, shown, generator, limit, structured)


def _fallbacks(passage: Passage) -> list[tuple[int, ...]]:
    selected = passage.selected()
    best = max(selected, key=lambda i: passage.sentences[i].score, default=None)
    return [selected] if best is None or len(selected) == 1 else [selected, (best,)]


def _verified(
    question: str, shown: list[Shown], generator: Generator, limit: int, structured: bool
) -> Packed:
    """Count the rendered prompt exactly; drop the last passage while it is over the limit."""
    while True:
        messages = messages_for(question, shown, structured=structured)
        total = generator.prompt_tokens(messages)
        if total <= limit or not shown:
            return Packed(messages, tuple(shown), total)
        shown = shown[:-1]


_caches: weakref.WeakKeyDictionary[Any, EmbeddingCache] = weakref.WeakKeyDictionary()


def embedding_cache(embedder: Embedder) -> EmbeddingCache:
    """One sentence-vector cache per embedder, alive as long as the embedder is."""
    try:
        return _caches.setdefault(embedder, EmbeddingCache(embedder))
    except TypeError:  # an embedder that cannot be weakly referenced: no reuse
        return EmbeddingCache(embedder)


def is_refusal(text: str) -> bool:
    """Whether the model said it cannot answer (our phrase, or a small model's own words)."""
    lowered = " ".join(text.lower().replace("\u2019", "'").split())
    return any(marker in lowered for marker in _REFUSAL_MARKERS)


def refusal(
    question: str,
    passages: Sequence[Passage],
    reason: str,
    *,
    mode: str,
    strength: float,
    draft: str = "",
    sentences: tuple[SentenceSupport, ...] = (),
) -> Answer:
    """A plain "not in the documents", with the closest passages (numbered) to look at."""
    closest = [Shown(n, p, p.selected()) for n, p in enumerate(candidates(passages), 1)]
    return Answer(
        question=question,
        text=NOT_IN_DOCUMENTS,
        answered=False,
        citations=(),
        sentences=sentences,
        passages=tuple(citation(s) for s in closest),
        mode=mode,
        draft=draft,
        reason=reason,
        evidence=strength,
    )


def ask(
    kb: KnowledgeBase,
    generator: Generator | None,
    question: str,
    *,
    decoding: Decoding | None = None,
    k: int = K,
    mode: str | None = None,
    filters: Filters | None = None,
    strict: bool = False,
    extractive: bool = False,
    json_schema: dict[str, Any] | None = None,
    budget: int = PASSAGE_BUDGET,
) -> Answer:
    """Answer `question` from the knowledge base (see `stream_answer` for the parameters)."""
    for event in stream_answer(
        kb, generator, question, decoding=decoding, k=k, mode=mode, filters=filters,
        strict=strict, extractive=extractive, json_schema=json_schema, budget=budget,
    ):  # fmt: skip
        if isinstance(event, Final):
            return event.answer
    raise AssertionError("stream_answer always ends with Final")  # pragma: no cover


def stream_answer(
    kb: KnowledgeBase,
    generator: Generator | None,
    question: str,
    *,
    decoding: Decoding | None = None,
    k: int = K,
    mode: str | None = None,
    filters: Filters | None = None,
    strict: bool = False,
    extractive: bool = False,
    json_schema: dict[str, Any] | None = None,
    budget: int = PASSAGE_BUDGET,
) -> Iterator[Event]:
    """Retrieve, then answer extractively (no generator, or `extractive`) or with the model.

    `k` chunks are retrieved (`mode`: dense, keyword or hybrid; `filters` restrict files);
    `strict` drops unsupported sentences and bad citations; `json_schema` makes the model fill
    in JSON valid against the schema; `budget` caps the prompt tokens the passages take.
    """
    question = " ".join(question.split())
    decoding = decoding or Decoding()
    if json_schema is not None:
        _check_schema(json_schema)
    use_model = generator is not None and not extractive
    if use_model:  # fail before the slow part when the question cannot fit at all
        assert generator is not None
        pack(question, [], generator, max_tokens=decoding.max_tokens, structured=bool(json_schema))
    clock = _Clock()
    hits = kb.search(question, k=k, mode=mode, filters=filters)
    clock.lap("retrieve")
    cache = embedding_cache(kb.embedder)
    passages = score_passages(question, hits, cache, Analyzer())
    clock.lap("select")
    strength = round(evidence(passages), 4)
    run_mode = "generative" if use_model else "extractive"
    if json_schema is not None and use_model:
        run_mode = "structured"
    if strength < EVIDENCE_THRESHOLD:
        reason = f"weak retrieval evidence ({strength:.2f} < {EVIDENCE_THRESHOLD})"
        answer = refusal(question, passages, reason, mode=run_mode, strength=strength)
        yield Final(replace(answer, timings=clock.total()))
        return
    if not use_model:
        yield from _extractive(question, passages, clock, strength)
        return
    assert generator is not None
    yield from _generative(
        question, passages, generator, cache, clock, strength,
        decoding=decoding, strict=strict, json_schema=json_schema, budget=budget,
    )  # fmt: skip


def _extractive(
    question: str, passages: Sequence[Passage], clock: _Clock, strength: float
) -> Iterator[Event]:
    shown = [Shown(n, p, p.selected()) for n, p in enumerate(candidates(passages), 1)]
    numbered = [citation(s) for s in shown]
    yield Retrieved(tuple(numbered))
    picks = extract([(s.number, s.passage) for s in shown])
    parts, sentences, offset = [], [], 0
    for number, sentence in picks:
        part = _append_marker(sentence.text, (number,))
        sentences.append(
            SentenceSupport(
                part,
                offset,
                offset + len(part),
                (number,),
                1.0,
                True,
                evidence=(number, sentence.start, sentence.end),
            )
        )
        parts.append(part)
        offset += len(part) + 1
    cited = {n for n, _ in picks}
    clock.lap("extract")
    answer = Answer(
        question=question,
        text=" ".join(parts),
        answered=True,
        citations=tuple(c for c in numbered if c.number in cited),
        sentences=tuple(sentences),
        passages=tuple(numbered),
        timings=clock.total(),
        mode="extractive",
        evidence=strength,
    )
    yield Final(answer)


def _generative(
    question: str,
    passages: Sequence[Passage],
    generator: Generator,
    cache: EmbeddingCache,
    clock: _Clock,
    strength: float,
    *,
    decoding: Decoding,
    strict: bool,
    json_schema: dict[str, Any] | None,
    budget: int,
) -> Iterator[Event]:
    structured = json_schema is not None
    packed = pack(
        question, passages, generator,
        max_tokens=decoding.max_tokens, budget=budget, structured=structured,
    )  # fmt: skip
    clock.lap("pack")
    numbered = tuple(citation(s) for s in packed.shown)
    yield Retrieved(numbered)
    pieces: list[str] = []
    first_token = 0.0
    grammar = None if structured or not packed.shown else answer_grammar(len(packed.shown))
    for piece in generator.stream(
        packed.messages, decoding, json_schema=json_schema, grammar=grammar
    ):
        if not pieces:
            clock.lap("first_token")
            first_token = clock.last  # seconds since the question came in
        pieces.append(piece)
        yield Token(piece)
    clock.lap("generate")
    draft = "".join(pieces)
    usage = generator.last_usage
    tokens = {
        "prompt": usage.prompt_tokens or packed.prompt_tokens,
        "completion": usage.completion_tokens,
        "passages": len(packed.shown),
        "context": generator.context_length,
    }
    if structured:
        assert json_schema is not None
        answer = _structured(question, draft, json_schema, packed, cache, strength)
    else:
        answer = _checked(question, draft, packed, passages, cache, strength, strict=strict)
    clock.lap("check")
    timings = {**clock.total(), "time_to_first_token": round(first_token, 4)}
    if usage.seconds_to_first_token:
        timings["model_first_token"] = round(usage.seconds_to_first_token, 4)
    if usage.seconds and usage.completion_tokens:
        timings["tokens_per_second"] = round(usage.completion_tokens / usage.seconds, 2)
    yield Final(replace(answer, timings=timings, tokens=tokens))


def sources(shown: Sequence[Shown]) -> dict[int, Source]:
    out = {}
    for s in shown:
        sentences = s.passage.sentences
        spans = tuple((sentences[i].start, sentences[i].end) for i in s.indices)
        out[s.number] = Source(s.number, s.text, s.passage.vectors[list(s.indices)], spans)
    return out


def _checked(
    question: str,
    draft: str,
    packed: Packed,
    passages: Sequence[Passage],
    cache: EmbeddingCache,
    strength: float,
    *,
    strict: bool,
) -> Answer:
    """Check every sentence's citations; refuse, or keep (strict: only) what is supported."""
    numbered = tuple(citation(s) for s in packed.shown)
    parts = citations.split_answer(draft)
    claims = [p.claim for p in parts]
    checked = tuple(
        citations.check(parts, cache.embed(claims), sources(packed.shown), question=question)
    )
    # A refusal sentence never counts as support, whatever it cites; a partial answer ("X [1].
    # The passages do not say when.") keeps its supported part.
    answered = any(s.supported and not is_refusal(s.text) for s in checked)
    if not answered and is_refusal(draft):
        reason = "the model found no answer in the passages"
    elif not answered:
        reason = "no sentence of the generated answer is supported by the passages"
    else:
        reason = ""
    if reason:
        return refusal(
            question, passages, reason, mode="generative", strength=strength, draft=draft,
            sentences=checked,
        )  # fmt: skip
    text = final_text(checked, set(sources(packed.shown)), strict=strict)
    cited = {n for s in checked if (s.supported or not strict) for n in (s.added or s.cites)}
    return Answer(
        question=question,
        text=text,
        answered=True,
        citations=tuple(c for c in numbered if c.number in cited),
        sentences=checked,
        passages=numbered,
        mode="generative",
        draft=draft,
        evidence=strength,
    )


def final_text(checked: Sequence[SentenceSupport], valid: set[int], *, strict: bool) -> str:
    """The answer as shown: citations the checker added replace the model's (which cited
    nothing, or nothing that supports the sentence); strict mode drops unsupported sentences
    and citations of passages that do not exist."""
    out = []
    for s in checked:
        if strict and not s.supported:
            continue
        text = s.text
        bad = list(s.cites) if s.added else [n for n in s.cites if n not in valid]
        if bad and (strict or s.added):
            text = citations.remove_markers(text, bad)
        if s.added:
            text = _append_marker(text, s.added)
        out.append(text)
    return " ".join(out)


def _append_marker(text: str, numbers: Sequence[int]) -> str:
    marker = f" [{', '.join(map(str, numbers))}]"
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        return stripped[:-1] + marker + stripped[-1]
    return stripped + marker


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message}") from exc


def _structured(
    question: str,
    draft: str,
    schema: dict[str, Any],
    packed: Packed,
    cache: EmbeddingCache,
    strength: float,
) -> Answer:
    """Parse and validate the model's JSON; grammar-constrained decoding should make it valid,
    but a truncated reply (max_tokens too low) is not."""
    import jsonschema

    try:
        data = json.loads(draft)
        jsonschema.validate(data, schema)
    except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
        message = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        raise AskdocsError(
            f"the model's output is not valid against the schema ({message}); "
            "if it was cut short, raise max_tokens"
        ) from exc
    numbered = tuple(citation(s) for s in packed.shown)
    text = json.dumps(data, ensure_ascii=False)
    checked = _check_values(text, data, packed, cache, question)
    cited = {n for s in checked for n in s.added}
    return Answer(
        question=question,
        text=text,
        answered=True,
        citations=tuple(c for c in numbered if c.number in cited),
        sentences=checked,
        passages=numbered,
        mode="structured",
        draft=draft,
        evidence=strength,
        data=data,
    )


def _check_values(
    text: str, data: Any, packed: Packed, cache: EmbeddingCache, question: str
) -> tuple[SentenceSupport, ...]:
    """Each string value checked like an uncited sentence: the passage supporting it best is
    its citation when the support reaches the threshold; otherwise it is flagged."""
    parts = citations.value_sentences(text, data)
    found = citations.check(
        parts, cache.embed([p.text for p in parts]), sources(packed.shown), question=question,
        attach_at=citations.SUPPORT_THRESHOLD,
    )  # fmt: skip
    return tuple(
        replace(s, problems=() if s.supported else ("not supported by any passage",)) for s in found
    )
