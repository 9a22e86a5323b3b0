"""Reranking: reorder the first retrieval's candidates with a finer, slower score.

A `Reranker` retrieves nothing itself: it reorders the hits it is given, best first, records
each one's score in `Hit.scores["rerank"]` and keeps the best `top`:

    reranker = open_reranker(settings.rerank, lambda: kb.embedder)   # None: backend "none"
    if reranker is not None:
        hits = reranker.rerank(question, kb.search(question, k=20, rerank=False), top=4)

Two backends:
- `LocalReranker` (askdocs.rerank.local): the packaged MiniLM on the CPU. A chunk is scored by
  its best sentence against the query, blended with the chunk's cosine, its share of the
  query's terms, its keyword score and its first-stage rank; the blend is fitted on SciFact's
  training queries (the constants and how they were fitted are in local.py).
- `RemoteReranker` (askdocs.rerank.remote): the rerank APIs serving stacks expose,
  text-embeddings-inference's `POST /rerank` (`api="tei"`) and the Cohere/Jina-style
  `POST /v1/rerank` (`api="cohere"`; `askdocs serve` answers it too).

benchmarks/bench_rerank.py measures what each costs and gains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from askdocs.errors import ConfigError
from askdocs.rerank.base import Reranker, RerankError, reorder
from askdocs.rerank.local import LocalReranker
from askdocs.rerank.remote import APIS, RemoteReranker
from askdocs.types import Hit

if TYPE_CHECKING:
    from askdocs.config import RerankSettings
    from askdocs.embeddings import Embedder

BACKENDS = ("none", "local", "remote")

__all__ = [
    "APIS",
    "BACKENDS",
    "LocalReranker",
    "RemoteReranker",
    "RerankError",
    "Reranker",
    "open_reranker",
    "reorder",
    "rerank",
]


def rerank(
    reranker: Reranker, query: str, hits: Sequence[Hit], *, top: int | None = None
) -> list[Hit]:
    """`reranker.rerank(query, hits, top=top)`, for callers holding the reranker as a value."""
    return reranker.rerank(query, hits, top=top)


def open_reranker(settings: RerankSettings, embedder: Callable[[], Embedder]) -> Reranker | None:
    """The reranker `settings` describe, or None when `backend` is "none".

    `embedder` is called only for the local backend (loading the model takes ~0.5 s), so
    pass a factory such as `lambda: kb.embedder`.
    """
    if settings.backend == "none":
        return None
    if settings.backend == "local":
        return LocalReranker(embedder())
    if settings.backend == "remote":
        return RemoteReranker(
            settings.base_url,
            api=settings.api,
            model=settings.model,
            api_key=settings.api_key,
            timeout=settings.timeout,
            retries=settings.retries,
        )
    raise ConfigError(
        f"unknown rerank backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}"
    )
