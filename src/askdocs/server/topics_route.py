"""Topics of the stored documents, found in the background, and the task that finds them.

POST /topics          {"seed": 0, "n_topics": null, "min_cluster_size": null, "reassign": false,
                       "reassign_by": "centroid", "diversity": 0, "label_with_llm": false,
                       "filters": {...}} -> 202 {"task_id"}; the topics
                      are found over the stored documents' own embeddings and saved into the
                      store (document tag `topic`, searchable as a filter); 409 while a run is on
GET  /topics          the saved topics: {"topics": [...], "points": [...], ...} (404: none yet)
GET  /tasks/{task_id} {"state", "stage", "fraction", "result", "error"} of a background task
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from askdocs.server.routes import State, to_filters
from askdocs.server.schemas import STRICT, ErrorOut, FiltersIn

router = APIRouter()


class TopicsIn(BaseModel):
    model_config = STRICT
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    n_topics: int | None = Field(default=None, ge=2, le=500)
    min_cluster_size: int | None = Field(default=None, ge=2, le=100_000)
    reassign: bool = False
    reassign_by: Literal["centroid", "probabilities"] = "centroid"
    diversity: float = Field(default=0.0, ge=0, le=1)
    label_with_llm: bool = False
    filters: FiltersIn | None = None


class TaskAccepted(BaseModel):
    task_id: str


class TaskOut(BaseModel):
    id: str
    kind: str
    state: str
    stage: str
    fraction: float
    result: dict[str, Any] | None
    error: str | None


@router.post(
    "/topics",
    status_code=202,
    response_model=TaskAccepted,
    responses={409: {"model": ErrorOut}},
)
def find(body: TopicsIn, state: State) -> Any:
    if state.tasks.busy("topics"):
        return JSONResponse(
            {"error": "topics are being found already; wait for that run", "type": "Busy"}, 409
        )
    from askdocs.topics import TopicOptions, find_and_save

    options = TopicOptions(
        seed=body.seed,
        n_topics=body.n_topics,
        min_cluster_size=body.min_cluster_size,
        reassign=body.reassign,
        reassign_by=body.reassign_by,
        diversity=body.diversity,
        label_with_llm=body.label_with_llm,
    )
    filters = to_filters(body.filters)

    def work(progress: Any) -> dict[str, Any]:
        generator = state.model.get() if body.label_with_llm else None
        found = find_and_save(state.kb, options, filters=filters, generator=generator,
                              progress=progress)  # fmt: skip
        return {"topics": len(found.topics), "outliers": found.outliers}

    return {"task_id": state.tasks.submit("topics", work)}


@router.get("/topics", responses={404: {"model": ErrorOut}})
def saved(state: State) -> Any:
    from askdocs.topics import SAVED

    text = state.kb.annotation(SAVED)
    if text is None:
        return JSONResponse({"error": "no topics found yet", "type": "NotFound"}, 404)
    return JSONResponse(json.loads(text))


@router.get("/tasks/{task_id}", response_model=TaskOut, responses={404: {"model": ErrorOut}})
def task(task_id: str, state: State) -> Any:
    found = state.tasks.get(task_id)
    if found is None:
        return JSONResponse({"error": f"no task {task_id}", "type": "NotFound"}, 404)
    return found
