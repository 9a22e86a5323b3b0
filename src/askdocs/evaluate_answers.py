"""Answer quality on a SQuAD v1.1-format file: EM/F1, citations, refusals, speed.

Every paragraph is ingested as a document (`squad://<article>/<paragraph>`, titled with its
article) and every question asked (or `limit` of them, spread evenly over the file). Scores:

- exact match and token F1 against the gold answers, with the official SQuAD v1.1
  normalisation (lowercase, drop punctuation and the articles a/an/the, collapse spaces);
  citation markers are removed from the answer first;
- citation accuracy: answered questions where a cited passage contains the gold answer;
- evidence accuracy: answered questions where the sentence the citation checker points at
  (`SentenceSupport.evidence`) overlaps the gold answer's span in its own paragraph;
- refusal: each question is asked again with its article removed from the store. Correct
  refusal is the share of those answered "not in the documents"; false refusal is the share
  of the first round (article present) refused;
- time to first token, completion tokens per second, prompt tokens per answer.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from askdocs.answer import AskOptions, ask
from askdocs.citations import strip_citations
from askdocs.errors import ConfigError
from askdocs.generation import Decoding, Generator
from askdocs.kb import KnowledgeBase
from askdocs.types import Answer, Document


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    path: str  # the paragraph's document
    article: str  # the prefix every paragraph of its article shares
    spans: tuple[tuple[int, int], ...]  # gold answer spans in the paragraph


@dataclass(frozen=True, slots=True)
class SquadSet:
    documents: tuple[Document, ...]
    questions: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question's result; `refused_without` is from the round with its article removed."""

    id: str
    prediction: str
    answered: bool
    reason: str  # why it was refused, when it was
    exact: float
    f1: float
    contains: float  # a gold answer appears in the answer (how a full answer is scored)
    citation_correct: bool
    evidence_correct: bool
    refused_without: bool
    prompt_tokens: int
    time_to_first_token: float
    tokens_per_second: float
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # each step, see `Answer.timings`


@dataclass(frozen=True, slots=True)
class AnswerEvaluation:
    file: str
    mode: str
    model: str
    questions: int
    metrics: dict[str, float]
    outcomes: tuple[Outcome, ...] = field(default=(), repr=False)


def load_squad(path: Path) -> SquadSet:
    """Documents and questions of a SQuAD v1.1 JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a SQuAD v1.1 file ({exc})") from exc
    documents, questions = [], []
    for a, article in enumerate(data):
        title = str(article.get("title", f"article {a}")).replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_path = f"squad://{a:03d}/{p:03d}"
            documents.append(Document(doc_path, paragraph["context"], title, "txt"))
            for qa in paragraph["qas"]:
                answers = tuple(x["text"] for x in qa["answers"])
                spans = tuple(
                    (x["answer_start"], x["answer_start"] + len(x["text"])) for x in qa["answers"]
                )
                questions.append(
                    Question(
                        qa["id"], qa["question"], answers, doc_path, f"squad://{a:03d}/", spans
                    )
                )
    return SquadSet(tuple(documents), tuple(questions))


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation.

    >>> normalize_answer("The  Eiffel Tower, in Paris!")
    'eiffel tower in paris'
    """
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when a normalised gold answer occurs, as whole words, in the normalised prediction.

    >>> contains_answer("It rises in Lake Toma, in the Swiss Alps.", ["Lake Toma"])
    1.0
    """
    padded = f" {normalize_answer(prediction)} "
    return float(any(g and f" {g} " in padded for g in map(normalize_answer, answers)))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best SQuAD token F1 over the gold answers.

    >>> round(token_f1("in the Swiss Alps", ["Swiss Alps"]), 3)
    0.8
    """
    return max((_f1(prediction, a) for a in answers), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def spread(items: Sequence[Question], limit: int | None, offset: int = 0) -> list[Question]:
    """`limit` items evenly spaced over the sequence (all of them without a limit), each
    `offset` places after its even spot: offsets smaller than the spacing give disjoint
    samples (a set to tune on, another to check on)."""
    if not limit or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[(int(i * step) + offset) % len(items)] for i in range(limit)]


def citation_correct(answer: Answer, question: Question) -> bool:
    gold = [normalize_answer(a) for a in question.answers]
    return any(g and g in normalize_answer(c.text) for c in answer.citations for g in gold)


def evidence_correct(answer: Answer, question: Question) -> bool:
    by_number = {c.number: c for c in answer.passages}
    for sentence in answer.sentences:
        if sentence.evidence is None or not sentence.supported:
            continue
        number, start, end = sentence.evidence
        cited = by_number.get(number)
        on_gold = cited is not None and cited.path == question.path
        if on_gold and any(start < b and a < end for a, b in question.spans):
            return True
    return False


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def evaluate_answers(
    kb: KnowledgeBase,
    generator: Generator | None,
    path: Path,
    *,
    limit: int | None = None,
    offset: int = 0,
    decoding: Decoding | None = None,
    extractive: bool = False,
    options: AskOptions | None = None,
    refusals: bool = True,
    progress: Progress | None = None,
) -> AnswerEvaluation:
    """Ingest the file's paragraphs into `kb`, ask its questions twice, score (module docs).

    `options` say how to answer (`decoding` and `extractive` override theirs); without
    `refusals` the second round (each article removed) is skipped and `correct_refusal`
    reads 0.
    """
    squad = load_squad(path)
    kb.ingest_documents(squad.documents)
    questions = spread(squad.questions, limit, offset)
    options = (options or AskOptions()).but(
        extractive=extractive or bool(options and options.extractive)
    )
    if decoding is not None:
        options = options.but(decoding=decoding)
    first: dict[str, Answer] = {}
    for i, q in enumerate(questions):
        first[q.id] = ask(kb, generator, q.text, options)
        if progress:
            progress("present", i + 1, len(questions))
    if refusals:
        refused = _refusal_round(kb, generator, squad, questions, options, progress)
    else:
        refused = dict.fromkeys((q.id for q in questions), False)
    outcomes = tuple(_outcome(q, first[q.id], refused[q.id]) for q in questions)
    use_model = generator is not None and not options.extractive
    return AnswerEvaluation(
        file=str(path),
        mode="generative" if use_model else "extractive",
        model=generator.id if use_model and generator is not None else "",
        questions=len(questions),
        metrics=summarise(outcomes),
        outcomes=outcomes,
    )


def _refusal_round(
    kb: KnowledgeBase,
    generator: Generator | None,
    squad: SquadSet,
    questions: Sequence[Question],
    options: AskOptions,
    progress: Progress | None,
) -> dict[str, bool]:
    """Whether each question is refused once its whole article is out of the store."""
    by_article: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_article[q.article].append(q)
    refused: dict[str, bool] = {}
    done = 0
    for article, asked in by_article.items():
        documents = [d for d in squad.documents if d.path.startswith(article)]
        kb.remove([d.path for d in documents], exact=True)  # not files on disk
        try:
            for q in asked:
                refused[q.id] = not ask(kb, generator, q.text, options).answered
                done += 1
                if progress:
                    progress("removed", done, len(questions))
        finally:
            kb.ingest_documents(documents)
    return refused


def _outcome(question: Question, answer: Answer, refused_without: bool) -> Outcome:
    prediction = strip_citations(answer.text) if answer.answered else ""
    timings = answer.timings
    return Outcome(
        id=question.id,
        prediction=prediction,
        answered=answer.answered,
        reason=answer.reason,
        exact=exact_match(prediction, question.answers),
        f1=token_f1(prediction, question.answers),
        contains=contains_answer(prediction, question.answers),
        citation_correct=answer.answered and citation_correct(answer, question),
        evidence_correct=answer.answered and evidence_correct(answer, question),
        refused_without=refused_without,
        prompt_tokens=answer.tokens.get("prompt", 0),
        time_to_first_token=timings.get("time_to_first_token", 0.0),
        tokens_per_second=timings.get("tokens_per_second", 0.0),
        seconds=timings.get("total", 0.0),
        timings=dict(timings),
    )


def summarise(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Percentages for rates and scores, seconds for times, means over questions."""
    if not outcomes:
        return {}
    answered = [o for o in outcomes if o.answered]

    def mean(values: Sequence[float]) -> float:
        return round(float(np.mean(values)), 4) if len(values) else 0.0

    def median(values: Sequence[float]) -> float:
        return round(float(np.median(values)), 4) if len(values) else 0.0

    return {
        "exact_match": mean([100 * o.exact for o in outcomes]),
        "f1": mean([100 * o.f1 for o in outcomes]),
        "contains_answer": mean([100 * o.contains for o in outcomes]),
        "answered": mean([100.0 * o.answered for o in outcomes]),
        "citation_accuracy": mean([100.0 * o.citation_correct for o in answered]),
        "evidence_accuracy": mean([100.0 * o.evidence_correct for o in answered]),
        "correct_refusal": mean([100.0 * o.refused_without for o in outcomes]),
        "false_refusal": mean([100.0 * (not o.answered) for o in outcomes]),
        "prompt_tokens": mean([o.prompt_tokens for o in answered]),
        "time_to_first_token": mean([o.time_to_first_token for o in answered]),
        "median_time_to_first_token": median([o.time_to_first_token for o in answered]),
        "tokens_per_second": mean([o.tokens_per_second for o in answered]),
        "seconds_per_question": mean([o.seconds for o in outcomes]),
    }


def format_answers(evaluation: AnswerEvaluation) -> str:
    """The metrics as an aligned two-column table."""
    title = f"{evaluation.file}: {evaluation.questions} questions, {evaluation.mode}"
    if evaluation.model:
        title += f" ({evaluation.model})"
    width = max((len(k) for k in evaluation.metrics), default=0)
    lines = [f"{name:<{width}}  {value:>9.2f}" for name, value in evaluation.metrics.items()]
    return "\n".join([title, *lines])
