"""A rerank API over HTTP: text-embeddings-inference or the Cohere/Jina shape.

    api="tei"     POST {base_url}/rerank  {"query", "texts": [...], "raw_scores": false}
                  -> [{"index", "score"}, ...]
    api="cohere"  POST {base_url}/v1/rerank  {"model", "query", "documents": [...], "top_n"}
                  -> {"results": [{"index", "relevance_score"}, ...]}
                  A base_url that already ends in a version (".../v1", ".../v2") is kept as
                  is: https://api.jina.ai/v1, https://api.cohere.com/v2, http://host:8000/v1.

A 429 or 5xx answer, a timeout or a refused connection is tried again (`retries` attempts in
all, waiting `backoff` seconds, then twice that, ..., or what a Retry-After header asks, up to
`MAX_WAIT`); any other failure is a `RerankError` naming the URL and the status.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import httpx

from askdocs.errors import ConfigError
from askdocs.rerank.base import RerankError, reorder
from askdocs.retrying import MAX_WAIT, detail, retry_after
from askdocs.types import Hit

APIS = ("tei", "cohere")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_VERSIONED = re.compile(r"/v\d+$")


class RemoteReranker:
    """Scores (query, text) pairs with a rerank server; `close()` when done."""

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
        if not base_url.strip():
            raise ConfigError("rerank.base_url is empty: set the rerank server's address")
        base = base_url.strip().rstrip("/")
        if api == "cohere" and not _VERSIONED.search(base):
            base += "/v1"
        self.url = f"{base}/rerank"
        self.api, self.model = api, model
        self.id = f"remote:{api}:{model or self.url}"
        self.retries, self.backoff = max(1, retries), backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteReranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rerank(self, query: str, hits: Sequence[Hit], *, top: int | None = None) -> list[Hit]:
        """`hits` best first by the server's scores, the best `top`. Each text is sent under
        its document title, as chunks are embedded."""
        if not hits:
            return []
        return reorder(hits, self.scores(query, [_with_title(h) for h in hits]), top)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """The server's score for each text, in the order given."""
        if not texts:
            return []
        if self.api == "tei":
            body: dict[str, Any] = {"query": query, "texts": list(texts), "raw_scores": False}
        else:
            body = {"query": query, "documents": list(texts), "top_n": len(texts)}
            if self.model:
                body["model"] = self.model
        data = self._post(body)
        results = data if self.api == "tei" else (data or {}).get("results")
        key = "score" if self.api == "tei" else "relevance_score"
        out: dict[int, float] = {}
        try:
            for item in results:
                index = int(item["index"])
                if not 0 <= index < len(texts) or index in out:
                    raise ValueError(f"index {index} out of range or repeated")
                out[index] = float(item[key])
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise RerankError(f"{self.url}: not a {self.api} rerank response ({exc})") from exc
        if len(out) != len(texts):
            raise RerankError(f"{self.url}: ranked {len(out)} of {len(texts)} texts")
        return [out[i] for i in range(len(texts))]

    def _post(self, body: dict[str, Any]) -> Any:
        for attempt in range(1, self.retries + 1):
            wait = self.backoff * 2 ** (attempt - 1)
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                failure = f"{self.url}: {type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise RerankError(f"{self.url}: the response is not JSON") from exc
                failure = f"{self.url}: HTTP {response.status_code}: {detail(response)}"
                if response.status_code not in RETRY_STATUS:
                    raise RerankError(failure)
                wait = retry_after(response, wait)
            if attempt == self.retries:
                raise RerankError(f"{failure} (after {self.retries} attempts)")
            time.sleep(min(wait, MAX_WAIT))
        raise AssertionError("unreachable")  # pragma: no cover


def _with_title(hit: Hit) -> str:
    if hit.title and not hit.text.startswith(hit.title):
        return f"{hit.title}\n{hit.text}"
    return hit.text
