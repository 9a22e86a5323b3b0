"""Reranking: the local sentence reranker with the real embedder, and the remote backend
against real HTTP servers: `askdocs serve`'s own /v1/rerank (Cohere/Jina shape) and a small
FastAPI app standing in for text-embeddings-inference's /rerank (TEI cannot run here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from askdocs.answer import AskOptions, ask
from askdocs.config import RerankSettings
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.kb import KnowledgeBase
from askdocs.rerank import (
    RemoteReranker,
    RerankError,
    SentenceReranker,
    open_reranker,
    rerank,
)
from askdocs.types import Hit

pytest.importorskip("fastapi", reason="pip install askdocs[server]")

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from askdocs.server import create_app
from tests.test_server import copy_store, server_settings, serving

QUESTION = "Which acid removes limescale from an espresso machine?"
RELEVANT = (
    "Espresso machines need care. The group head should be brushed daily. "
    "Citric acid dissolved in warm water removes limescale from the boiler."
)
NEAR = "Espresso is brewed by forcing hot water through finely ground coffee at high pressure."
FAR = "Sourdough starters are fed with flour and water every day."


def _hits(*texts: str) -> list[Hit]:
    return [Hit(i, t, f"doc{i}", f"doc {i}", "txt", 0, len(t), None, None, 1.0 / (i + 1))
            for i, t in enumerate(texts)]  # fmt: skip


def test_the_sentence_reranker_puts_the_answering_passage_first(
    embedder: MiniLMEmbedder,
) -> None:
    reranker = SentenceReranker(embedder)
    hits = _hits(NEAR, FAR, RELEVANT)
    ranked = rerank(reranker, QUESTION, hits, top=2)
    assert [h.text for h in ranked] == [RELEVANT, NEAR]
    assert ranked[0].scores["rerank"] > ranked[1].scores["rerank"]
    assert ranked[0].score == hits[2].score  # the first-stage score is kept beside it
    assert rerank(reranker, QUESTION, []) == []


def test_knowledge_base_search_reranks_more_candidates(docs_kb: KnowledgeBase) -> None:
    plain = docs_kb.search(QUESTION, k=3)
    reranked = docs_kb.search(QUESTION, k=3, rerank=True)
    assert len(reranked) == 3 and all("rerank" in h.scores for h in reranked)
    assert "rerank" not in plain[0].scores
    scores = [h.scores["rerank"] for h in reranked]
    assert scores == sorted(scores, reverse=True)
    answer = ask(docs_kb, None, QUESTION, AskOptions(extractive=True, rerank=True))
    assert answer.answered and "espresso" in answer.passages[0].path


def test_open_reranker_follows_the_settings(embedder: MiniLMEmbedder) -> None:
    assert open_reranker(RerankSettings(), lambda: embedder) is None
    assert isinstance(open_reranker(RerankSettings(backend="local"), lambda: embedder),
                      SentenceReranker)  # fmt: skip
    with pytest.raises(ConfigError, match="unknown rerank backend"):
        open_reranker(RerankSettings(backend="gpu"), lambda: embedder)
    with pytest.raises(ConfigError, match="base_url is empty"):
        open_reranker(RerankSettings(backend="remote"), lambda: embedder)


@pytest.fixture
def askdocs_server(docs_store: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[str]:
    app = create_app(server_settings(copy_store(docs_store, tmp_path)), embedder=embedder)
    with serving(app) as url:
        yield url


def test_the_remote_reranker_ranks_like_the_local_one_through_askdocs_serve(
    askdocs_server: str, embedder: MiniLMEmbedder
) -> None:
    remote = RemoteReranker(f"{askdocs_server}/v1", api="cohere", model="local")
    try:
        texts = [NEAR, FAR, RELEVANT]
        local = SentenceReranker(embedder).scores(QUESTION, texts)
        assert remote.scores(QUESTION, texts) == pytest.approx(local, abs=1e-5)
        assert [h.text for h in rerank(remote, QUESTION, _hits(*texts), top=1)] == [RELEVANT]
    finally:
        remote.close()


class FlakyTei:
    """A stand-in for text-embeddings-inference's POST /rerank: answers 503 `failures` times,
    then scores each text by how many query words it holds."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/rerank")(self.rerank)

    async def rerank(self, request: Request) -> Any:
        body = await request.json()
        with self.lock:
            self.calls += 1
            if self.calls <= self.failures:
                return JSONResponse({"error": "overloaded"}, status_code=503)
        words = set(body["query"].lower().split())
        scores = [len(words & set(t.lower().split())) for t in body["texts"]]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [{"index": i, "score": float(scores[i])} for i in ranked]


def test_the_tei_shape_with_retries_on_503() -> None:
    tei = FlakyTei(failures=2)
    with serving(tei.app) as url:
        remote = RemoteReranker(url, api="tei", retries=3, backoff=0.01)
        scores = remote.scores("citric acid boiler", ["citric acid in the boiler", "bread"])
        remote.close()
    assert scores == [3.0, 0.0] and tei.calls == 3


def test_a_client_error_is_reported_with_the_url_and_status(askdocs_server: str) -> None:
    remote = RemoteReranker(f"{askdocs_server}/v1", api="tei", retries=3, backoff=0.01)
    with pytest.raises(RerankError, match=r"/v1/rerank: HTTP 422"):
        remote.scores(QUESTION, [NEAR])  # TEI's shape is not what askdocs serves
    remote.close()
    with pytest.raises(ConfigError, match="unknown rerank api"):
        RemoteReranker("http://127.0.0.1:9", api="grpc")
