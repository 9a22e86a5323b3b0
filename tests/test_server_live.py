"""The API on a real uvicorn server on 127.0.0.1: the official OpenAI client, SSE from the
small packaged model, queueing on the model, and what a client disconnecting does.

Streams about the server rather than the model (concurrency, disconnects) use `SlowGenerator`,
a scripted generator that takes a known time per token and records whether it was closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ModelLoadError
from askdocs.generation import Decoding, Message
from askdocs.testing import FakeGenerator
from tests.conftest import llama_worker
from tests.test_server import TIDES_Q, copy_store, server_settings, serving, sse_events

pytest.importorskip("fastapi", reason="pip install 'askdocs[server]'")
pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")
pytest.importorskip("openai")

import openai
from fastapi import FastAPI

from askdocs.generation.worker import WorkerGenerator
from askdocs.server import create_app

TOKEN = "live-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class SlowGenerator(FakeGenerator):
    """Replies `words` words, one every `delay` seconds; says whether it was stopped early."""

    def __init__(self, words: int = 2000, delay: float = 0.01) -> None:
        super().__init__([" ".join(["tides"] * words)], context_length=8192, id="slow")
        self.delay = delay
        self.running = threading.Event()
        self.finished = threading.Event()
        self.stopped_early = False

    def stream(
        self, messages: Sequence[Message], decoding: Decoding, **options: Any
    ) -> Iterator[str]:
        pieces = super().stream(messages, decoding, **options)

        def slowly() -> Iterator[str]:
            self.running.set()
            self.finished.clear()
            try:
                for piece in pieces:
                    time.sleep(self.delay)
                    yield piece
            except GeneratorExit:
                self.stopped_early = True
                raise
            finally:
                self.running.clear()
                self.finished.set()

        return slowly()


@pytest.fixture(scope="module")
def llm() -> Iterator[WorkerGenerator]:
    try:
        loaded = llama_worker("smollm2-135m", n_ctx=2048, n_batch=256, n_threads=1)
    except ModelLoadError:
        pytest.skip("the packaged smollm2-135m model is not installed")
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def llm_server(
    docs_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: MiniLMEmbedder,
    llm: WorkerGenerator,
) -> Iterator[tuple[str, FastAPI]]:
    """One token-protected server with the small model for the whole module."""
    store = copy_store(docs_store, tmp_path_factory.mktemp("live"))
    settings = server_settings(store, {"server.token": TOKEN})  # environ={}: no user config
    app = create_app(settings, embedder=embedder, generator=llm)
    with serving(app) as url:
        yield url, app


@pytest.fixture
def slow_server(
    docs_store: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> Iterator[tuple[str, FastAPI, SlowGenerator]]:
    generator = SlowGenerator()
    app = create_app(
        server_settings(copy_store(docs_store, tmp_path)), embedder=embedder, generator=generator
    )
    with serving(app) as url:
        yield url, app, generator


def test_ask_streams_passages_tokens_then_one_final(llm_server: tuple[str, FastAPI]) -> None:
    url, _ = llm_server
    body = {"question": TIDES_Q, "stream": True, "decoding": {"max_tokens": 24}}
    with httpx.stream("POST", f"{url}/ask", json=body, headers=AUTH, timeout=60) as response:
        assert response.status_code == 200
        events = sse_events(response.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-1] == "final" and names.count("final") == 1
    assert set(names[1:-1]) <= {"token"}
    final = events[-1][1]
    assert final["draft"] == "".join(data["text"] for name, data in events if name == "token")
    # The model ran (a weak model's unsupported answer may then be replaced by quotes)
    assert final["draft"] and "queue" in final["timings"]
    assert final["mode"] == "generative" or "quoting the passages" in final["note"]
    assert events[0][1]["passages"] == final["passages"]


def test_ask_json_with_the_model(llm_server: tuple[str, FastAPI]) -> None:
    url, app = llm_server
    body = {"question": TIDES_Q, "decoding": {"max_tokens": 24, "temperature": 0}}
    answer = httpx.post(f"{url}/ask", json=body, headers=AUTH, timeout=60).json()
    assert answer["draft"] and answer["passages"]
    assert answer["mode"] == "generative" or "quoting the passages" in answer["note"]
    assert httpx.get(f"{url}/health").json()["generator"] == "ready"
    assert not app.state.askdocs.model.lock.locked()


def test_openai_client_chat_with_citations(llm_server: tuple[str, FastAPI]) -> None:
    url, _ = llm_server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
    extractive = client.chat.completions.create(
        model="askdocs-extractive", messages=[{"role": "user", "content": TIDES_Q}]
    )
    text = extractive.choices[0].message.content or ""
    citations = extractive.model_extra["citations"]
    assert citations and all(f"[{c['number']}]" in text for c in citations)
    assert citations[0]["path"].endswith("tides.pdf")
    generated = client.chat.completions.create(
        model="askdocs",
        messages=[{"role": "user", "content": TIDES_Q}],
        max_tokens=24,
        temperature=0,
        seed=1,
    )
    assert generated.object == "chat.completion" and generated.choices[0].message.content
    assert isinstance(generated.model_extra["citations"], list)
    assert generated.model_extra["askdocs"]["mode"] in ("generative", "extractive")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    bad = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_openai_client_streams_chunks_and_done(llm_server: tuple[str, FastAPI]) -> None:
    url, _ = llm_server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
    for model in ("askdocs", "askdocs-extractive"):
        stream = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "user", "content": "Tell me about the ocean tides."},
                {"role": "assistant", "content": "They follow the Moon [1]."},
                {"role": "user", "content": "When do spring tides come?"},
            ],
            stream=True,
            max_tokens=24,
        )
        chunks = list(stream)
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        last = chunks[-1]
        assert last.choices[0].finish_reason == "stop" and text
        assert isinstance(last.model_extra["citations"], list)
        if model == "askdocs-extractive":
            assert last.model_extra["citations"] and text == last.model_extra["askdocs"]["text"]


def test_openai_client_embeddings_and_models(
    llm_server: tuple[str, FastAPI], embedder: MiniLMEmbedder
) -> None:
    url, _ = llm_server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
    texts = ["When do spring tides come?", "descaling an espresso machine"]
    result = client.embeddings.create(model="minilm", input=texts)  # base64 by default
    assert result.model == embedder.id and len(result.data) == 2
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, embedder.embed(texts), atol=1e-6)
    one = client.embeddings.create(model="minilm", input="tides", encoding_format="float")
    assert len(one.data[0].embedding) == 384 and one.usage.total_tokens > 0
    ids = {m.id for m in client.models.list()}
    assert {"askdocs", "askdocs-extractive", embedder.id} <= ids


def read_tokens(lines: Iterator[str], n: int) -> None:
    seen = 0
    for line in lines:
        seen += line.startswith("event: token")
        if seen >= n:
            return
    raise AssertionError("the stream ended before enough tokens")


def test_health_and_search_answer_while_the_model_generates(
    slow_server: tuple[str, FastAPI, SlowGenerator],
) -> None:
    url, app, generator = slow_server
    body = {"question": TIDES_Q, "stream": True, "decoding": {"max_tokens": 150}}
    with (
        httpx.Client(base_url=url, timeout=30) as first,
        httpx.Client(base_url=url, timeout=30) as second,
        httpx.Client(base_url=url, timeout=30) as other,
        first.stream("POST", "/ask", json=body) as response,
    ):
        lines = response.iter_lines()
        read_tokens(lines, 3)
        # a second ask queues for the model; /health and /search do not wait for it
        with second.stream("POST", "/ask", json=body) as queued:
            started = time.perf_counter()
            assert other.get("/health").json()["status"] == "ok"
            hits = other.post("/search", json={"query": "spring tides"}).json()["hits"]
            assert hits and time.perf_counter() - started < 1.0
            assert generator.running.is_set(), "the generation is still going on"
            assert app.state.askdocs.model.lock.locked()
            assert sse_events("\n".join(lines))[-1][0] == "final"
            events = sse_events(queued.read().decode())
    assert events[-1][0] == "final"
    assert events[-1][1]["timings"]["queue"] > 0.3  # waited for the first answer


def test_a_disconnect_stops_the_generation(
    slow_server: tuple[str, FastAPI, SlowGenerator],
) -> None:
    url, app, generator = slow_server
    body = {"question": TIDES_Q, "stream": True, "decoding": {"max_tokens": 2000}}
    with (
        httpx.Client(base_url=url, timeout=30) as client,  # 2000 tokens: 20 s if not stopped
        client.stream("POST", "/ask", json=body) as response,
    ):
        lines = response.iter_lines()  # kept until the `with` ends: that is the disconnect
        read_tokens(lines, 3)
        assert generator.running.is_set()
    assert generator.finished.wait(2.0), "the generation went on after the client left"
    assert generator.stopped_early
    deadline = time.monotonic() + 2.0
    while app.state.askdocs.model.lock.locked():
        assert time.monotonic() < deadline, "the model lock was not released"
        time.sleep(0.01)
    answer = httpx.post(f"{url}/ask", json={**body, "stream": False, "decoding": {"max_tokens": 5}})
    assert answer.status_code == 200 and answer.json()["timings"]["queue"] < 0.5


def test_a_disconnect_releases_the_llama_model(
    llm_server: tuple[str, FastAPI], llm: WorkerGenerator
) -> None:
    url, app = llm_server
    body = {"question": TIDES_Q, "stream": True, "decoding": {"max_tokens": 400}}
    with (
        httpx.Client(base_url=url, headers=AUTH, timeout=60) as client,
        client.stream("POST", "/ask", json=body) as response,
    ):
        lines = response.iter_lines()
        read_tokens(lines, 2)
    model_lock = llm._lock  # the worker's: held until the child has stopped generating
    deadline = time.monotonic() + 2.0
    while not model_lock.acquire(blocking=False):
        assert time.monotonic() < deadline, "the model kept generating after the disconnect"
        time.sleep(0.01)
    model_lock.release()
    # The server's lock is released by the request's task just after the worker stops: wait
    # for it under the same deadline rather than race it.
    while app.state.askdocs.model.lock.locked():
        assert time.monotonic() < deadline, "the server kept the model after the disconnect"
        time.sleep(0.01)


def test_a_plain_ask_whose_client_leaves_is_cancelled(
    slow_server: tuple[str, FastAPI, SlowGenerator],
) -> None:
    url, app, generator = slow_server
    body = {"question": TIDES_Q, "decoding": {"max_tokens": 2000}}
    with pytest.raises(httpx.ReadTimeout):  # 20 s of generation if it is not stopped
        httpx.post(f"{url}/ask", json=body, timeout=1.0)
    assert generator.finished.wait(2.0) and generator.stopped_early
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("POST", "/ask", json={**body, "stream": True}) as response,
    ):
        lines = response.iter_lines()  # keep it: collecting it would close the connection
        read_tokens(lines, 2)
        with pytest.raises(httpx.ReadTimeout):  # queued behind the stream, then gone
            httpx.post(f"{url}/ask", json=body, timeout=0.5)
        assert generator.running.is_set() and len(generator.calls) == 2
    assert generator.finished.wait(2.0)
    time.sleep(0.3)
    assert len(generator.calls) == 2, "the abandoned queued ask must never generate"
    assert not app.state.askdocs.model.lock.locked()
