"""Checks on a generated answer: refusal, citation support, and JSON against a schema.

The model is never trusted to refuse or to cite (small local models do neither reliably), so:
- weak retrieval evidence (`EVIDENCE_THRESHOLD`, see `extractive.py`) refuses before any
  generation, which also saves the prompt's cost;
- the model's refusal phrase, or an answer none of whose sentences is supported by a passage
  (`citations.py`), also refuses. A refusal says so plainly and lists the closest passages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from askdocs import citations
from askdocs.answer.packing import Packed, Shown, candidates, citation, sources
from askdocs.answer.styles import YES_NO
from askdocs.errors import AskdocsError, ConfigError
from askdocs.extractive import EmbeddingCache, Passage
from askdocs.text import Analyzer
from askdocs.types import Answer, Citation, SentenceSupport

NOT_IN_DOCUMENTS = "The documents do not contain the answer to this question."
# Below this best question-sentence score (extractive.py) nothing retrieved is about the
# question. Measured on 400 XQuAD-en questions, hybrid search, k=4, each asked with its article
# in the store and with it removed (docs/benchmarks.md, "Grounded answers"): below 0.44
# (the Youden-optimal cut) refuses 5.3% of the answerable and 97.5% of the unanswerable; 0.40
# 3.3% / 92.3%; 0.38 2.3% / 90.3%; 0.34 1.0% / 82.5%. The gate keeps to ~2% of the 10%
# false-refusal budget because the citation check refuses more after generation (7% of
# answerable questions with Qwen 1.5B), and refuses unanswerable ones the gate let through.
EVIDENCE_THRESHOLD = 0.38
# When the model refuses, or none of its sentences is supported, but a retrieved sentence
# matches the question this well, the answer quotes the best sentences instead of refusing:
# the documents hold the answer and the model missed it ("How long does lentil soup keep in
# the fridge, and can I freeze it?" -> "keep it covered in the fridge for up to 4 days ...").
# Well above EVIDENCE_THRESHOLD so that questions the documents do not answer stay refused.
QUOTE_EVIDENCE = 0.6
# ... and when the quoted sentences (with their titles) hold this share of the question's
# terms: a topical near miss ("How many calories are in a bowl of lentil soup?") does not.
QUOTE_COVERAGE = 0.75
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


def checked(
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
    parts = citations.paragraph_citations(draft, citations.split_answer(draft))
    claims = [citations.with_question(p.claim, question) for p in parts]
    shown = sources(packed.shown)
    checked = tuple(
        contradicted(restating(s, question), question, shown)
        for s in citations.check(parts, cache.embed(claims), shown, question=question)
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


_WH = frozenset(("what", "which", "who", "whom", "whose", "where", "when", "why", "how"))


def restating(sentence: SentenceSupport, question: str) -> SentenceSupport:
    """`sentence`, unsupported when it says nothing but what a wh-question asks for:
    "Which spices go into the lentil soup?" -> "spices [1]" is in the passage, and answers
    nothing. Only the two words after the wh-word count: "What team won, the Broncos or
    the Steelers?" -> "Broncos" names a thing the question offers, and answers it.

    >>> s = SentenceSupport("spices [1]", 0, 10, (1,), 0.9, True)
    >>> restating(s, "Which spices go into the soup?").problems
    ('only repeats words of the question',)
    >>> restating(s, "What goes into the soup, spices or herbs?").supported
    True
    """
    words = question.lower().split()
    if not sentence.supported or not words or words[0] not in _WH:
        return sentence
    analyzer = Analyzer()
    said = set(analyzer.tokens(citations.strip_citations(sentence.text)))
    if not said or not said <= set(analyzer.tokens(" ".join(words[1:3]))):
        return sentence
    return replace(
        sentence,
        supported=False,
        problems=(*sentence.problems, "only repeats words of the question"),
    )


# "not", "never" or "no", then up to four words: what a passage says is not so.
_FUNCTION_WORDS = frozenset(
    Analyzer().tokens("a an the of from to in on at by for with as into onto it its be any")
)
_DENIAL = re.compile(r"\b(?:not|never|no)\s+((?:[\w-]+\s+){0,3}[\w-]+)", re.IGNORECASE)


def contradicted(
    sentence: SentenceSupport, question: str, shown: Mapping[int, citations.Source]
) -> SentenceSupport:
    """`sentence`, unsupported when it answers a yes/no question "Yes" and a passage it
    cites denies the very words the question asks about. Support is scored on shared words
    and meaning, which do not see negation: "Does the oxygen plants give off come from carbon
    dioxide?" -> "Yes, ..." scored as supported by "All the oxygen given off by a plant comes
    from water, not from carbon dioxide."

    >>> s = SentenceSupport("Yes, it comes from carbon dioxide [1].", 0, 38, (1,), 0.9, True)
    >>> src = {1: citations.Source(1, "It comes from water, not from carbon dioxide.", None, ())}
    >>> contradicted(s, "Does it come from carbon dioxide?", src).problems
    ('the cited passage says "not from carbon dioxide"',)
    >>> contradicted(s, "Does it come from water?", src).supported
    True
    """
    words = question.lower().split()
    said = sentence.text.lstrip().lower()
    if not sentence.supported or not words or words[0] not in YES_NO:
        return sentence
    if not (said.startswith("yes") and (len(said) == 3 or not said[3].isalpha())):
        return sentence
    analyzer = Analyzer()
    asked = set(analyzer.tokens(question))
    for number in sentence.cites:
        source = shown.get(number)
        for denial in _DENIAL.finditer(source.text if source else ""):
            denied = _denied(denial.group(1).split(), asked, analyzer)
            if denied:
                quoted = f"{denial.group().split()[0]} {' '.join(denied.split())}"
                return replace(
                    sentence,
                    supported=False,
                    problems=(*sentence.problems, f'the cited passage says "{quoted}"'),
                )
    return sentence


def _denied(words: Sequence[str], asked: set[str], analyzer: Analyzer) -> str:
    """The longest run of `words` from the first whose terms are all asked about, when it
    holds a term ("from carbon dioxide" of "from carbon dioxide but"); "" otherwise. "not
    only" and "not just" deny nothing."""
    if words and words[0].lower() in ("only", "just"):
        return ""
    terms: set[str] = set()
    longest = 0
    for n, word in enumerate(words, 1):
        found = set(analyzer.tokens(word)) - _FUNCTION_WORDS
        if not found <= asked:
            break
        terms |= found
        if terms:
            longest = n
    return " ".join(words[:longest])


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
            text = append_marker(text, s.added)
        out.append(text)
    return " ".join(out)


def append_marker(text: str, numbers: Sequence[int]) -> str:
    r"""`text` with its citation marker, before its closing full stop; on a line of its own
    after a fenced code block, whose closing fence must stand alone.

    >>> append_marker("Descale monthly.", [1, 2])
    'Descale monthly [1, 2].'
    >>> append_marker("```\nA = P * (1 + r)\n```", [3])
    '```\nA = P * (1 + r)\n```\n[3]'
    """
    marker = f" [{', '.join(map(str, numbers))}]"
    stripped = text.rstrip()
    if stripped.endswith(("```", "~~~")):
        return f"{stripped}\n{marker.lstrip()}"
    if stripped and stripped[-1] in ".!?":
        return stripped[:-1] + marker + stripped[-1]
    return stripped + marker


Part = tuple[str, tuple[int, ...], tuple[int, int, int]]  # text, citations, evidence span


def settled_sentences(
    parts: Sequence[Part], separator: str = " "
) -> tuple[str, tuple[SentenceSupport, ...]]:
    """The text and checked sentences of an answer said in code from the passages' own
    facts (quotes, a summary, a date comparison): each part gets its citation marker and is
    supported by the evidence span it was read from. Parts are joined by `separator`, one
    character (a space, or a line break between steps)."""
    if len(separator) != 1:
        raise ValueError(f"a one-character separator, not {separator!r}")
    texts: list[str] = []
    sentences: list[SentenceSupport] = []
    offset = 0
    for text, numbers, span in parts:
        part = append_marker(text, numbers)
        end = offset + len(part)
        sentences.append(SentenceSupport(part, offset, end, numbers, 1.0, True, evidence=span))
        texts.append(part)
        offset = end + 1
    return separator.join(texts), tuple(sentences)


def settled_answer(
    question: str,
    parts: Sequence[Part],
    citations: tuple[Citation, ...],
    *,
    mode: str,
    style: str,
    evidence: float,
    note: str,
    separator: str = " ",
) -> Answer:
    """An answer said in code (`settled_sentences`) that cites, and shows, `citations`."""
    text, sentences = settled_sentences(parts, separator)
    return Answer(
        question=question,
        text=text,
        answered=True,
        citations=citations,
        sentences=sentences,
        passages=citations,
        mode=mode,
        style=style,
        evidence=evidence,
        note=note,
    )


def check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message}") from exc


def structured(
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
