"""Reranking with real models and real HTTP servers, no mocks.

The local reranker runs the packaged MiniLM over a small generated corpus; the remote backend
talks to `askdocs serve`'s own POST /v1/rerank (the Cohere/Jina shape) on a live uvicorn, and
to `TeiStandIn`, a tiny FastAPI app standing in for text-embeddings-inference's POST /rerank
(TEI itself cannot run here) that scores with the same local reranker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from askdocs import config
from askdocs.config import RerankSettings
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.kb import KnowledgeBase
from askdocs.rerank import (
    LocalReranker,
    RemoteReranker,
    RerankError,
    open_reranker,
    rerank,
)
from askdocs.types import Document, Hit
from tests.conftest import MakeKb, free_port

pytest.importorskip("fastapi", reason="pip install 'askdocs[server]'")

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from askdocs.server import create_app
from tests.test_server import copy_store, server_settings, serving

TOKEN = "rerank-test-token"
QUESTION = "Which acid removes limescale from an espresso machine?"
ANSWER = "cleaning.txt"  # the one document that answers QUESTION, in its second chunk
CORPUS = (
    ("guide.txt", "Espresso machine buying guide",
     "An espresso machine with a steel boiler lasts longer than one with an aluminium boiler. "
     "A good espresso machine heats up in a few minutes, and a double boiler espresso machine "
     "can steam milk while it brews. Look at the pump pressure, the size of the water tank and "
     "whether the espresso machine has a pressure gauge."),
    ("history.txt", "The history of the espresso machine",
     "The first espresso machine was patented in Turin in 1884. Lever machines followed in the "
     "1940s, and the pump espresso machine in 1961. Today an espresso machine is found in "
     "almost every cafe in Italy."),
    ("kettle.txt", "Kettle care",
     "Hard water leaves limescale in a kettle. Most kettles have a filter in the spout that "
     "catches flakes of scale. Empty the kettle after use and wipe the outside with a damp "
     "cloth."),
    (ANSWER, "Looking after your coffee maker",
     "Wipe the drip tray every day and wash the portafilter basket with hot water. Replace the "
     "gasket of the group head once a year. Every three months, dissolve citric acid in warm "
     "water and run it through the boiler: it dissolves the limescale that hard water leaves "
     "behind."),
    ("acids.txt", "Acids in the kitchen",
     "Vinegar contains acetic acid and lemons contain citric acid. Acids give food a sour "
     "taste and stop cut apples from turning brown."),
)  # fmt: skip
RELEVANT = "Citric acid dissolved in warm water removes limescale from the boiler."
NEAR = "Espresso is brewed by forcing hot water through finely ground coffee at high pressure."
FAR = "Sourdough starters are fed with flour and water every day."


@pytest.fixture
def corpus_kb(make_kb: MakeKb) -> KnowledgeBase:
    """The generated corpus: four documents that share the question's words, one that
    answers it. Small chunks, so the answer sits in a chunk of its own."""
    kb = make_kb(overrides={"chunking.size": 60})
    kb.ingest_documents([Document(p, f"{t}\n\n{x}", t, "txt") for p, t, x in CORPUS])
    return kb


@pytest.fixture(scope="module")
def local(embedder: MiniLMEmbedder) -> LocalReranker:
    return LocalReranker(embedder)


def _hits(*texts: str) -> list[Hit]:
    return [Hit(i, t, f"doc{i}", f"doc {i}", "txt", 0, len(t), None, None, 1.0 / (i + 1),
                {"keyword": 1.0}, {"keyword": i + 1}) for i, t in enumerate(texts)]  # fmt: skip


def _answer_rank(hits: list[Hit]) -> int:
    return next(i for i, h in enumerate(hits) if h.path == ANSWER and "citric" in h.text)


# --- the local reranker ---------------------------------------------------------------------


def test_the_local_reranker_moves_the_answering_chunk_up(
    corpus_kb: KnowledgeBase, local: LocalReranker
) -> None:
    first = corpus_kb.search(QUESTION, k=10, rerank=False)
    assert _answer_rank(first) > 0, "the first stage should not already rank the answer first"
    ranked = local.rerank(QUESTION, first)
    assert _answer_rank(ranked) == 0
    assert sorted(h.chunk_id for h in ranked) == sorted(h.chunk_id for h in first)


def test_rerank_keeps_the_best_top_with_their_scores(
    corpus_kb: KnowledgeBase, local: LocalReranker
) -> None:
    first = corpus_kb.search(QUESTION, k=10, rerank=False)
    ranked = local.rerank(QUESTION, first, top=3)
    assert len(ranked) == 3
    scores = [h.scores["rerank"] for h in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    by_id = {h.chunk_id: h for h in first}
    for hit in ranked:  # the first stage's scores and ranks are kept beside the new one
        before = by_id[hit.chunk_id]
        assert hit.score == before.score and hit.ranks == before.ranks
        assert {k: v for k, v in hit.scores.items() if k != "rerank"} == before.scores
    assert all("rerank" not in h.scores for h in first)  # the input is not changed
    assert [h.chunk_id for h in local.rerank(QUESTION, first, top=10)][:3] == [
        h.chunk_id for h in ranked
    ]
    assert local.rerank(QUESTION, first, top=0) == []
    assert local.rerank(QUESTION, []) == []
    assert rerank(local, QUESTION, first, top=1) == ranked[:1]


def test_bare_texts_are_scored_from_the_texts_alone(local: LocalReranker) -> None:
    scores = local.scores(QUESTION, [NEAR, FAR, RELEVANT])
    assert scores[2] > scores[0] > scores[1] and all(0 < s < 1 for s in scores)
    assert local.scores(QUESTION, []) == []
    hits = local.rerank(QUESTION, _hits(NEAR, FAR, RELEVANT), top=2)
    assert [h.text for h in hits] == [RELEVANT, NEAR]


def test_open_reranker_follows_the_settings(embedder: MiniLMEmbedder) -> None:
    assert RerankSettings().backend == "none"
    assert open_reranker(RerankSettings(), lambda: embedder) is None
    made = open_reranker(RerankSettings(backend="local"), lambda: embedder)
    assert isinstance(made, LocalReranker)
    remote = open_reranker(
        RerankSettings(backend="remote", base_url="http://127.0.0.1:9/", api="tei"), lambda: 1 / 0
    )  # the embedder is not loaded for a remote backend
    assert isinstance(remote, RemoteReranker) and remote.url == "http://127.0.0.1:9/rerank"
    remote.close()
    with pytest.raises(ConfigError, match="unknown rerank backend 'gpu'"):
        open_reranker(RerankSettings(backend="gpu"), lambda: embedder)
    with pytest.raises(ConfigError, match="base_url is empty"):
        open_reranker(RerankSettings(backend="remote"), lambda: embedder)
    with pytest.raises(ConfigError, match="unknown rerank api 'grpc'"):
        RemoteReranker("http://127.0.0.1:9", api="grpc")


def test_rerank_settings_come_from_the_environment() -> None:
    settings = config.load(
        environ={"ASKDOCS_RERANK__BACKEND": "remote", "ASKDOCS_RERANK__CANDIDATES": "30",
                 "ASKDOCS_RERANK__API": "tei", "ASKDOCS_RERANK__TIMEOUT": "2.5"}
    )  # fmt: skip
    r = settings.rerank
    assert (r.backend, r.candidates, r.api, r.timeout) == ("remote", 30, "tei", 2.5)


def test_cohere_urls_get_a_version_unless_they_have_one() -> None:
    urls = {
        "http://127.0.0.1:8000": "http://127.0.0.1:8000/v1/rerank",
        "https://api.jina.ai/v1/": "https://api.jina.ai/v1/rerank",
        "https://api.cohere.com/v2": "https://api.cohere.com/v2/rerank",
    }
    for base, url in urls.items():
        with RemoteReranker(base, api="cohere") as remote:
            assert remote.url == url


# --- the remote backend against real servers -------------------------------------------------


@pytest.fixture(scope="module")
def askdocs_server(
    docs_store: Path, tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder
) -> Iterator[str]:
    """`askdocs serve` on the sample store, with a token, on a live uvicorn."""
    store = copy_store(docs_store, tmp_path_factory.mktemp("rerank"))
    app = create_app(server_settings(store, {"server.token": TOKEN}), embedder=embedder)
    with serving(app) as url:
        yield url


def test_the_cohere_shape_through_askdocs_serve(askdocs_server: str, local: LocalReranker) -> None:
    texts = [NEAR, FAR, RELEVANT]
    with RemoteReranker(askdocs_server, api="cohere", model="any", api_key=TOKEN) as remote:
        assert remote.url == f"{askdocs_server}/v1/rerank"
        expected = local.scores(QUESTION, texts)
        assert remote.scores(QUESTION, texts) == pytest.approx(expected, abs=1e-6)  # rounded
        ranked = remote.rerank(QUESTION, _hits(*texts), top=2)
    assert [h.text for h in ranked] == [RELEVANT, NEAR]
    assert ranked[0].scores["rerank"] > ranked[1].scores["rerank"]


def test_the_rerank_route_takes_cohere_and_jina_requests(askdocs_server: str) -> None:
    documents = [NEAR, {"text": FAR}, {"text": RELEVANT}]
    body: dict[str, Any] = {"model": "jina-reranker-v2", "query": QUESTION, "documents": documents}
    body |= {"top_n": 2, "return_documents": True}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{askdocs_server}/v1/rerank", json=body, headers=auth, timeout=30)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"].startswith("local-sentences:") and data["id"]
    assert [r["index"] for r in data["results"]] == [2, 0]
    assert data["results"][0]["document"] == {"text": RELEVANT}
    assert 0 < data["results"][1]["relevance_score"] < data["results"][0]["relevance_score"] < 1
    assert httpx.post(f"{askdocs_server}/v1/rerank", json=body, timeout=30).status_code == 401
    empty = httpx.post(f"{askdocs_server}/v1/rerank", json={**body, "documents": []},
                       headers=auth, timeout=30)  # fmt: skip
    assert empty.status_code == 422 and "documents" in empty.json()["error"]


def test_a_client_error_names_the_url_and_the_status(askdocs_server: str) -> None:
    url = f"{askdocs_server}/v1/rerank"
    remote = RemoteReranker(askdocs_server, api="cohere", retries=3, backoff=0.01)
    with remote, pytest.raises(RerankError, match=rf"{url}: HTTP 401: .*bearer token"):
        remote.scores(QUESTION, [NEAR])  # no token
    # TEI's body ("texts", not "documents") is not what askdocs serves: a 422, not retried
    remote = RemoteReranker(f"{askdocs_server}/v1", api="tei", api_key=TOKEN, backoff=5)
    with remote, pytest.raises(RerankError, match=rf"^{url}: HTTP 422: .*documents") as caught:
        remote.scores(QUESTION, [NEAR])
    assert "attempts" not in str(caught.value)


class TeiStandIn:
    """A stand-in for text-embeddings-inference's POST /rerank, scoring with the local
    reranker: answers 503 (with Retry-After: 0) to its first `failures` requests, and 413 to
    more than `max_texts` texts, as TEI does past its batch limit."""

    def __init__(self, reranker: LocalReranker, *, failures: int = 0, max_texts: int = 8):
        self.reranker, self.failures, self.max_texts = reranker, failures, max_texts
        self.calls, self.headers = 0, httpx.Headers()
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/rerank")(self.rerank)

    async def rerank(self, request: Request) -> Any:
        body = await request.json()
        with self._lock:
            self.calls += 1
            self.headers = httpx.Headers(dict(request.headers))
            if self.calls <= self.failures:
                return JSONResponse({"error": "Model is overloaded", "error_type": "overloaded"},
                                    503, headers={"Retry-After": "0"})  # fmt: skip
        if len(body["texts"]) > self.max_texts:
            return JSONResponse({"error": "batch size > max", "error_type": "Validation"}, 413)
        scores = self.reranker.scores(body["query"], body["texts"])
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [{"index": i, "score": scores[i]} for i in order]


def test_the_tei_shape_retries_a_503_then_succeeds(local: LocalReranker) -> None:
    tei = TeiStandIn(local, failures=2)
    texts = [NEAR, FAR, RELEVANT]
    with serving(tei.app) as url, RemoteReranker(url, api="tei", api_key="k", retries=3) as remote:
        scores = remote.scores(QUESTION, texts)
        ranked = remote.rerank(QUESTION, _hits(*texts), top=1)
    assert tei.calls == 4 and tei.headers["authorization"] == "Bearer k"
    assert scores == pytest.approx(local.scores(QUESTION, texts))
    assert [h.text for h in ranked] == [RELEVANT]


def test_the_tei_shape_gives_up_after_its_retries_and_on_a_4xx(local: LocalReranker) -> None:
    tei = TeiStandIn(local, failures=10)
    with serving(tei.app) as url, RemoteReranker(url, api="tei", retries=2) as remote:
        with pytest.raises(RerankError, match=rf"{url}/rerank: HTTP 503: .*overloaded.*2 attempts"):
            remote.scores(QUESTION, [NEAR])
        assert tei.calls == 2
        tei.failures = 0
        with pytest.raises(RerankError, match=rf"{url}/rerank: HTTP 413: .*batch size"):
            remote.scores(QUESTION, [NEAR] * 9)
        assert tei.calls == 3  # a client error is not tried again


def test_an_unreachable_server_is_an_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    remote = RemoteReranker(url, api="tei", retries=2, backoff=0.01, timeout=2)
    with remote, pytest.raises(RerankError, match=rf"{url}/rerank: ConnectError.*2 attempts"):
        remote.scores(QUESTION, [NEAR])
