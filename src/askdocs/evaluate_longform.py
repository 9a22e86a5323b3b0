"""Long-form answers on CLAPnq: refusals, overlap with written references, and citations.

CLAPnq (../shared/data/clapnq_dev) holds Natural Questions whose answer is a passage: 300
answerable questions with 1-7 written reference answers grounded in one Wikipedia passage,
and 300 unanswerable ones that come with a passage on their topic that does not answer them.
Every distinct passage is ingested as a document (`clapnq://<n>`, titled with its article), so
each unanswerable question meets a near miss in the store. Scores:

- refusals: correct refusal is the share of unanswerable questions answered "not in the
  documents"; false refusal is the share of answerable ones refused;
- ROUGE-L F1 of the answer against its best reference (the CLAPnq paper's measure; longest
  common subsequence over lower-case alphanumeric tokens, citation markers removed);
- ROUGE-L precision against the gold passage: how much of the answer comes from it;
- citation precision (ALCE-style): the share of answer sentences supported by the passages
  they cite, as the citation checker judges them; gold cited: the answer cites the gold
  passage;
- words per answer, and the median time to first token.
A refused answerable question scores 0 on ROUGE and counts in no citation measure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from askdocs.answer import AskOptions, ask
from askdocs.citations import strip_citations
from askdocs.errors import ConfigError
from askdocs.generation import Generator
from askdocs.kb import KnowledgeBase
from askdocs.types import Answer, Document

FILES = ("clapnq_dev_answerable.jsonl", "clapnq_dev_unanswerable.jsonl")
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class LongQuestion:
    id: str
    text: str
    references: tuple[str, ...]  # empty for an unanswerable question
    path: str  # its passage's document
    passage: str


@dataclass(frozen=True, slots=True)
class LongOutcome:
    id: str
    answerable: bool
    answered: bool
    answer: str
    rouge_l: float
    passage_precision: float
    supported_sentences: int
    sentences: int
    gold_cited: bool
    words: int
    time_to_first_token: float


@dataclass(frozen=True, slots=True)
class LongformEvaluation:
    directory: str
    style: str
    model: str
    questions: int
    metrics: dict[str, float]
    outcomes: tuple[LongOutcome, ...] = field(default=(), repr=False)


def load_clapnq(directory: Path) -> tuple[list[Document], list[LongQuestion]]:
    """The distinct passages as documents, and every question with its usable references."""
    documents: dict[str, Document] = {}
    questions: list[LongQuestion] = []
    for name in FILES:
        path = directory / name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read a CLAPnq file ({exc.strerror})") from exc
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                passage = record["passages"][0]
                key = passage["text"]
                if key not in documents:
                    doc_path = f"clapnq://{len(documents)}"
                    documents[key] = Document(doc_path, key, passage["title"], "txt")
                references = tuple(
                    o["answer"] for o in record["output"] if _usable(o) and name == FILES[0]
                )
                questions.append(
                    LongQuestion(
                        str(record["id"]), record["input"], references, documents[key].path, key
                    )
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise ConfigError(f"{path}:{number}: not a CLAPnq record ({exc})") from exc
    return list(documents.values()), questions


def _usable(output: dict) -> bool:
    answer = str(output.get("answer", "")).strip()
    skip = bool(output.get("meta", {}).get("skip", False))
    return bool(answer) and answer != "NA" and not skip and bool(_TOKEN.search(answer.lower()))


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the table at a time).

    >>> lcs("the cat sat".split(), "the cat on the mat sat".split())
    3
    """
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> tuple[float, float, float]:
    """ROUGE-L (precision, recall, F1) of `candidate` against `reference`.

    >>> [round(x, 3) for x in rouge_l("the cat sat on a mat", "the cat sat")]
    [0.5, 1.0, 0.667]
    """
    c, r = tokens(candidate), tokens(reference)
    common = lcs(c, r)
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(c), common / len(r)
    return precision, recall, 2 * precision * recall / (precision + recall)


def spread_both(questions: Sequence[LongQuestion], limit: int | None) -> list[LongQuestion]:
    """`limit` answerable and `limit` unanswerable questions, evenly spaced in each."""
    out: list[LongQuestion] = []
    for answerable in (True, False):
        group = [q for q in questions if bool(q.references) == answerable]
        if limit and limit < len(group):
            step = len(group) / limit
            group = [group[int(i * step)] for i in range(limit)]
        out.extend(group)
    return out


Progress = Callable[[int, int], None]


def evaluate_longform(
    kb: KnowledgeBase,
    generator: Generator | None,
    directory: Path,
    *,
    limit: int | None = None,
    options: AskOptions | None = None,
    progress: Progress | None = None,
) -> LongformEvaluation:
    """Ingest the passages into `kb`, answer `limit` questions of each kind, score them."""
    documents, questions = load_clapnq(directory)
    kb.ingest_documents(documents)
    options = options or AskOptions(style="full")
    asked = spread_both(questions, limit)
    outcomes = []
    for i, q in enumerate(asked):
        outcomes.append(outcome(q, ask(kb, generator, q.text, options)))
        if progress:
            progress(i + 1, len(asked))
    use_model = generator is not None and not options.extractive
    return LongformEvaluation(
        directory=str(directory),
        style=options.style,
        model=generator.id if use_model and generator is not None else "",
        questions=len(asked),
        metrics=summarise(outcomes),
        outcomes=tuple(outcomes),
    )


def outcome(question: LongQuestion, answer: Answer) -> LongOutcome:
    text = strip_citations(answer.text) if answer.answered else ""
    best = max((rouge_l(text, r)[2] for r in question.references), default=0.0)
    return LongOutcome(
        id=question.id,
        answerable=bool(question.references),
        answered=answer.answered,
        answer=text,
        rouge_l=best if text else 0.0,
        passage_precision=rouge_l(text, question.passage)[0] if text else 0.0,
        supported_sentences=sum(s.supported for s in answer.sentences) if text else 0,
        sentences=len(answer.sentences) if text else 0,
        gold_cited=any(c.path == question.path for c in answer.citations),
        words=len(text.split()),
        time_to_first_token=answer.timings.get("time_to_first_token", 0.0),
    )


def summarise(outcomes: Sequence[LongOutcome]) -> dict[str, float]:
    """Percentages for rates and scores, seconds for times."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    answered = [o for o in answerable if o.answered]

    def pct(values: Sequence[float]) -> float:
        return round(100 * float(np.mean(values)), 2) if len(values) else 0.0

    sentences = sum(o.sentences for o in answered)
    times = [o.time_to_first_token for o in outcomes if o.answered and o.time_to_first_token]
    return {
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "correct_refusal": pct([not o.answered for o in unanswerable]),
        "false_refusal": pct([not o.answered for o in answerable]),
        "rouge_l_f1": pct([o.rouge_l for o in answerable]),
        "rouge_l_f1_answered": pct([o.rouge_l for o in answered]),
        "passage_precision": pct([o.passage_precision for o in answered]),
        "citation_precision": round(
            100 * sum(o.supported_sentences for o in answered) / sentences, 2
        )
        if sentences
        else 0.0,
        "gold_cited": pct([o.gold_cited for o in answered]),
        "words_per_answer": round(float(np.mean([o.words for o in answered])), 1)
        if answered
        else 0.0,
        "median_time_to_first_token": round(float(np.median(times)), 3) if times else 0.0,
    }


def format_longform(evaluation: LongformEvaluation) -> str:
    title = f"{evaluation.directory}: {evaluation.questions} questions, style {evaluation.style}"
    if evaluation.model:
        title += f" ({evaluation.model})"
    width = max((len(k) for k in evaluation.metrics), default=0)
    lines = [f"{name:<{width}}  {value:>9.2f}" for name, value in evaluation.metrics.items()]
    return "\n".join([title, *lines])
