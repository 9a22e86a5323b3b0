"""POST /v1/rerank: the Cohere/Jina rerank API over the local reranker (askdocs.rerank).

    {"query": "...", "documents": ["text", {"text": "..."}, ...], "top_n": 3,
     "model": "(ignored)", "return_documents": false}
    -> {"id": "...", "model": "<the reranker's id>",
        "results": [{"index": 2, "relevance_score": 0.93}, ...]}   best first, `top_n` of them

Any Cohere- or Jina-compatible client can rerank with the server's embedder, and
`RemoteReranker(api="cohere")` pointed at an `askdocs serve` gets the scores the local
reranker gives (`LocalReranker.scores`: the texts alone, no titles, no first stage). Scores
are in [0, 1]. Mounted under /v1 behind the same token as every other API route.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from askdocs.rerank import LocalReranker
from askdocs.server.schemas import LENIENT, MAX_QUERY_CHARS, EmbedText, Text

MAX_DOCUMENTS = 100  # per request: each one costs an embedding per sentence

router = APIRouter()


class RerankDocument(BaseModel):
    model_config = LENIENT
    text: EmbedText


class RerankRequest(BaseModel):
    """The Cohere/Jina rerank request; fields other clients send are ignored."""

    model_config = LENIENT
    query: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    documents: list[EmbedText | RerankDocument] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    top_n: int | None = Field(default=None, ge=1)
    model: Annotated[Text, Field(max_length=200)] = ""
    return_documents: bool = False


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]


@router.post("/rerank", response_model=RerankResponse, response_model_exclude_none=True)
async def rerank_documents(body: RerankRequest, request: Request) -> dict[str, Any]:
    """The documents best first by their relevance to the query (the local reranker)."""
    reranker = _reranker(request)
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    scores = await anyio.to_thread.run_sync(reranker.scores, body.query, texts)
    order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))[: body.top_n]
    results = [
        {"index": i, "relevance_score": round(scores[i], 6)}
        | ({"document": {"text": texts[i]}} if body.return_documents else {})
        for i in order
    ]
    return {"id": str(uuid.uuid4()), "model": reranker.id, "results": results}


def _reranker(request: Request) -> LocalReranker:
    """The app's local reranker on its knowledge base's embedder, made on first use (a
    sentence-vector cache shared by all requests)."""
    app_state = request.app.state
    embedder = app_state.askdocs.kb.embedder
    reranker: LocalReranker | None = getattr(app_state, "askdocs_reranker", None)
    if reranker is None or reranker.embedder is not embedder:
        reranker = app_state.askdocs_reranker = LocalReranker(embedder)
    return reranker
