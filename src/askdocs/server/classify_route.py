"""POST /classify: label texts, or the stored documents, by one of three methods.

    {"method": "zero-shot", "labels": ["billing question", "bug report"],
     "texts": ["I was charged twice", ...]}                       texts given in the request
    {"method": "supervised", "examples": [{"text": "...", "label": "bug"}, ...],
     "from_store": {"filters": {...}, "unit": "document"}, "write_tag": "label"}
    -> {"predictions": [{"id": "0", "label": "bug report", "score": 0.91}, ...],
        "metrics": {...} (with "gold", one label per text), "tagged": n (with "write_tag")}

Zero-shot and supervised use the embedder (stored embeddings for `from_store`); `llm` asks
the server's language model, held to one of the labels by a grammar, and takes its turn on
the model like an answer does. `write_tag` stores each document's label as a document tag,
so searches can filter on it (only with `from_store` and unit "document").

Two options tune MiniLM first (askdocs.classify.finetune, `askdocs[finetune]`), which takes
minutes, so they run as a background task, one at a time: `"self_train": true` (zero-shot:
tuned on the texts being classified that the labels are surest of) and `"fine_tune": true`
(supervised: tuned on the examples). The answer is then 202 {"task_id"}; GET /tasks/{id}
reports the stage and the fraction done, and its `result` is the response above.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from askdocs.errors import ConfigError
from askdocs.server.routes import State, to_filters
from askdocs.server.schemas import MAX_EMBED_CHARS, STRICT, ErrorOut, FiltersIn, Text
from askdocs.server.state import ServerState
from askdocs.server.tasks import Progress
from askdocs.types import Item

MAX_TEXTS = 2000  # per request: each costs an embedding (or a generation, for llm)
MAX_LLM_TEXTS = 200
MAX_LABELS = 100
MAX_EXAMPLES = 5000

router = APIRouter()

Label = Annotated[Text, Field(min_length=1, max_length=200)]
Passage = Annotated[Text, Field(max_length=MAX_EMBED_CHARS)]


class Example(BaseModel):
    model_config = STRICT
    text: Passage
    label: Label


class FromStore(BaseModel):
    model_config = STRICT
    filters: FiltersIn | None = None
    unit: Literal["document", "chunk"] = "document"


class ClassifyIn(BaseModel):
    model_config = STRICT
    method: Literal["zero-shot", "supervised", "llm"]
    labels: list[Label] | None = Field(default=None, max_length=MAX_LABELS)
    examples: list[Example] | None = Field(default=None, max_length=MAX_EXAMPLES)
    texts: list[Passage] | None = Field(default=None, max_length=MAX_TEXTS)
    from_store: FromStore | None = None
    gold: list[Label] | None = Field(default=None, max_length=MAX_TEXTS)
    min_score: float | None = Field(default=None, ge=0, le=1)
    write_tag: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    self_train: bool = False
    fine_tune: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ClassifyIn:
        if (self.texts is None) == (self.from_store is None):
            raise ValueError("give either texts or from_store")
        if self.self_train and self.method != "zero-shot":
            raise ValueError("self_train is for the method 'zero-shot'")
        if self.fine_tune and (self.method != "supervised" or not self.examples):
            raise ValueError("fine_tune needs the method 'supervised' and examples")
        if self.write_tag and (self.from_store is None or self.from_store.unit != "document"):
            raise ValueError("write_tag needs from_store with unit 'document'")
        if self.gold is not None and self.texts is not None and len(self.gold) != len(self.texts):
            raise ValueError("gold must hold one label per text")
        return self


class PredictionOut(BaseModel):
    id: str
    label: str | None
    score: float


class ClassifyOut(BaseModel):
    predictions: list[PredictionOut]
    metrics: dict[str, Any] | None = None
    tagged: int | None = None


def _items(body: ClassifyIn, state: ServerState) -> list[Item]:
    if body.texts is not None:
        return [Item(str(i), text) for i, text in enumerate(body.texts)]
    assert body.from_store is not None
    items = state.kb.collection(to_filters(body.from_store.filters), unit=body.from_store.unit)
    limit = MAX_LLM_TEXTS if body.method == "llm" else MAX_TEXTS
    if len(items) > limit:
        raise ConfigError(
            f"{len(items)} stored texts match; {body.method} classifies at most {limit} per "
            "request here: narrow the filters, or use `askdocs classify --from-store`"
        )
    return items


class TaskAccepted(BaseModel):
    task_id: str


@router.post(
    "/classify",
    response_model=ClassifyOut,
    responses={202: {"model": TaskAccepted}, 409: {"model": ErrorOut}},
)
async def classify(body: ClassifyIn, state: State) -> Any:
    from askdocs.classify import classify as run

    if body.method == "llm" and body.texts is not None and len(body.texts) > MAX_LLM_TEXTS:
        raise ConfigError(f"llm classifies at most {MAX_LLM_TEXTS} texts per request")
    items = await anyio.to_thread.run_sync(_items, body, state)
    examples = [(e.text, e.label) for e in body.examples or ()]
    if body.self_train or body.fine_tune:
        return _in_background(body, state, items, examples)

    def work() -> list[Any]:
        generator = state.model.get() if body.method == "llm" else None
        return run(
            items, method=body.method, labels=body.labels, examples=examples,
            embedder=state.kb.embedder, generator=generator, min_score=body.min_score,
        )  # fmt: skip

    if body.method == "llm":
        async with state.model.turn():
            predictions = await anyio.to_thread.run_sync(work)
    else:
        predictions = await anyio.to_thread.run_sync(work)
    return await anyio.to_thread.run_sync(_answer, body, state, predictions)


def _answer(body: ClassifyIn, state: ServerState, predictions: list[Any]) -> dict[str, Any]:
    """The response: the predictions, scored against `gold` and written as a tag if asked."""
    from askdocs.classify import report_on_gold

    out: dict[str, Any] = {"predictions": [dataclasses.asdict(p) for p in predictions]}
    if body.gold is not None:
        found = report_on_gold(body.gold, [p.label for p in predictions])
        out["metrics"] = dataclasses.asdict(found) if found else None
    if body.write_tag:
        out["tagged"] = state.kb.tag(body.write_tag, {p.id: p.label for p in predictions})
    return out


def _in_background(
    body: ClassifyIn, state: ServerState, items: list[Item], examples: list[tuple[str, str]]
) -> JSONResponse:
    """Tune MiniLM (self-training or fine-tuning), then classify, as a background task."""
    from askdocs.classify import classify as run
    from askdocs.classify import finetune, selftrain

    embedder = state.kb.embedder
    if body.self_train:
        selftrain.check(len(items), body.labels or [], embedder)
    else:
        finetune.check(embedder, [label for _, label in examples])
    if state.tasks.busy("classify"):
        return JSONResponse(
            {"error": "a classifier is being tuned already; wait for that run", "type": "Busy"},
            409,
        )

    def work(progress: Progress) -> dict[str, Any]:
        model = _tuned(body, embedder, items, examples, progress)
        progress("classifying", 0.95)
        predictions = run(items, method="supervised", model=model, embedder=embedder,
                          min_score=body.min_score)  # fmt: skip
        return _answer(body, state, predictions)

    return JSONResponse({"task_id": state.tasks.submit("classify", work)}, 202)


def _tuned(
    body: ClassifyIn, embedder: Any, items: list[Item], examples: list[tuple[str, str]],
    progress: Progress,
) -> Any:  # fmt: skip
    """The classifier learnt by self-training on the items, or fine-tuned on the examples;
    `progress` hears each stage, with the fraction of the tuning done (to 0.95)."""
    from askdocs.classify import EPOCHS, steps_for, train
    from askdocs.classify.selftrain import self_train

    if body.self_train:

        def say(what: str, fraction: float) -> None:
            progress(f"self-training: {what}", 0.95 * fraction)

        texts = [item.text for item in items]
        return self_train(texts, body.labels or [], embedder, progress=say)
    steps, done = steps_for(len(examples), EPOCHS), 0

    def tuned(n: int) -> None:
        nonlocal done
        done += n
        progress("fine-tuning", 0.9 * done / steps)

    progress("fine-tuning", 0.0)
    return train(examples, embedder, fine_tune_epochs=EPOCHS, tuning_progress=tuned)
