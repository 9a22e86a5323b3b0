"""The remote embedder against real HTTP servers.

Vectors are checked against a real `askdocs serve` (its POST /v1/embeddings runs the packaged
MiniLM) started as a subprocess: they must equal the local embedder's. Retries, backoff,
malformed answers and mismatched models are checked against `FakeEmbeddingServer`, a fake
server (http.server in a thread) that answers scripted failures, then bag-of-words vectors
from `askdocs.testing.FakeEmbedder`, deliberately not normalised and listed out of order.
Waits are kept tiny (backoff 0.01 s, Retry-After: 0) so no test takes more than seconds.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from askdocs import config
from askdocs.embeddings import MiniLMEmbedder, embedder_identity, load_embedder
from askdocs.errors import ConfigError, ContextTooLong, IndexMismatch
from askdocs.kb import KnowledgeBase
from askdocs.remote_embedder import (
    EmbeddingServerError,
    RemoteEmbedder,
    endpoint,
)
from askdocs.retrying import retry_after
from askdocs.testing import FakeEmbedder
from tests.conftest import (
    DOCS_STORE_SETTINGS,
    MakeSettings,
    free_port,
    stop_process,
    wait_until_up,
)

TOKEN = "remote-embedder-token"
TEXTS = [
    "Descale the espresso machine with citric acid.",
    "Magma rises through cracks in the crust.",
    "Spring tides come at full moon and new moon.",
    "The Sicilian Defence answers e4 with c5.",
    "Feed the sourdough starter rye flour and water.",
    "Keep receipts for every deductible expense for six years.",
    "Vesuvius buried Pompeii in the year 79.",
    "Neap tides come at the quarter moons.",
    "Ünïcödé, emoji 🚀 and punctuation: (a) [b] {c}!",
    "x",
    "A longer text about lighthouses, whose keepers wound the clockwork of the lens every "
    "four hours through the night and kept a log of passing ships and the weather.",
]


# --- a real askdocs serve --------------------------------------------------------------------


@pytest.fixture(scope="module")
def serve_url(askdocs_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`askdocs serve` with the float encoder (the session `embedder`'s), behind a token."""
    pytest.importorskip("fastapi", reason="pip install 'askdocs[server]'")
    root = tmp_path_factory.mktemp("serve")
    # The autouse isolation fixture is per function; this module-scoped server gets its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKDOCS_")}
    env.update(XDG_DATA_HOME=str(root / "data"), XDG_CONFIG_HOME=str(root / "config"))
    env.update(ASKDOCS_EMBEDDING__INT8="false", ASKDOCS_EMBEDDING__THREADS="1")
    url = f"http://127.0.0.1:{(port := free_port())}"
    log = root / "serve.log"
    command = [
        askdocs_exe, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--store", str(root / "store"), "--token", TOKEN,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(f"{url}/health", process, log=log)
        yield url
    finally:
        stop_process(process)


def test_vectors_through_askdocs_serve_equal_the_local_ones(
    serve_url: str, embedder: MiniLMEmbedder
) -> None:
    # Two spellings of one server: batches are spread over both, three in flight.
    urls = [serve_url, f"{serve_url}/v1/"]
    with RemoteEmbedder(urls, api_key=TOKEN, batch=3, concurrency=3, timeout=30) as remote:
        assert (remote.id, remote.dim) == (embedder.id, 384)
        vectors = remote.embed(TEXTS)
        one = remote.embed(TEXTS[:1])
        assert remote.embed([]).shape == (0, 384)
    expected = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert float(np.abs(vectors - expected).max()) < 1e-6
    assert float(np.abs(one - expected[:1]).max()) < 1e-6
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_over_long_texts_fail_or_are_truncated_as_locally(
    serve_url: str, embedder: MiniLMEmbedder
) -> None:
    long = " ".join(["The keeper wound the clockwork lens every night."] * 40)
    with RemoteEmbedder([serve_url], api_key=TOKEN, batch=2) as remote:
        with pytest.raises(ContextTooLong, match=r"text 1 has \d+ tokens, over the .* 256"):
            remote.embed([TEXTS[0], long])
        vectors = remote.embed([TEXTS[0], long], truncate=True)
    expected = embedder.embed([TEXTS[0], long], truncate=True)
    assert float(np.abs(vectors - expected).max()) < 1e-6


def test_a_wrong_token_is_an_error_naming_the_url(serve_url: str) -> None:
    with pytest.raises(EmbeddingServerError, match=rf"{serve_url}/v1/embeddings: HTTP 401"):
        RemoteEmbedder([serve_url], api_key="wrong", retries=3, backoff=0.01)


def test_settings_choose_the_remote_backend(
    serve_url: str, embedder: MiniLMEmbedder, make_settings: MakeSettings
) -> None:
    overrides = {
        "embedding.backend": "remote",
        "embedding.urls": serve_url,
        "embedding.api_key": TOKEN,
        "embedding.batch": 4,
    }
    settings = make_settings(overrides=overrides)
    assert embedder_identity(settings.embedding) == (embedder.id, 384)
    remote = load_embedder(settings.embedding)
    assert isinstance(remote, RemoteEmbedder)
    with remote:
        assert remote.batch == 4 and remote.max_tokens == 256
        assert remote.count_tokens(TEXTS) == embedder.count_tokens(TEXTS)
        assert float(np.abs(remote.embed(TEXTS[:5]) - embedder.embed(TEXTS[:5])).max()) < 1e-6


def test_a_local_store_is_searched_through_a_server_and_the_other_way_round(
    serve_url: str,
    embedder: MiniLMEmbedder,
    docs_store: Path,
    docs_dir: Path,
    make_settings: MakeSettings,
    tmp_path: Path,
) -> None:
    query = "when do spring tides come"
    built_locally = Path(shutil.copytree(docs_store, tmp_path / "local"))
    with RemoteEmbedder([serve_url], api_key=TOKEN, batch=4, concurrency=2) as remote:
        settings = make_settings(built_locally, DOCS_STORE_SETTINGS)
        with KnowledgeBase.open(settings, embedder=embedder, create=False) as kb:
            local_hits = kb.search(query, k=5, mode="dense")
        with KnowledgeBase.open(settings, embedder=remote, create=False) as kb:
            remote_hits = kb.search(query, k=5, mode="dense")
        with KnowledgeBase.open(
            make_settings(tmp_path / "remote", DOCS_STORE_SETTINGS), embedder=remote
        ) as kb:
            report = kb.ingest([docs_dir])
    assert (report.added, report.failed) == (6, [])
    assert [(h.chunk_id, round(h.score, 5)) for h in remote_hits] == [
        (h.chunk_id, round(h.score, 5)) for h in local_hits
    ]
    settings = make_settings(tmp_path / "remote", DOCS_STORE_SETTINGS)
    with KnowledgeBase.open(settings, embedder=embedder, create=False) as kb:
        reopened = kb.search(query, k=5, mode="dense")
    assert [(Path(h.path).name, round(h.score, 5)) for h in reopened] == [
        (Path(h.path).name, round(h.score, 5)) for h in local_hits
    ]


# --- a fake server for failures --------------------------------------------------------------


class Gauge:
    """Requests being answered right now, and the most at once, over any fake servers."""

    def __init__(self) -> None:
        self.now, self.most = 0, 0
        self._lock = threading.Lock()

    @contextmanager
    def counting(self) -> Iterator[None]:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            yield
        finally:
            with self._lock:
                self.now -= 1


class FakeEmbeddingServer:
    """A fake embedding server, not a real model: http.server in a thread answering
    POST /v1/embeddings. Its first answers are the statuses in `failures` (with Retry-After:
    0 where `retry_after` says so), then `FakeEmbedder` vectors times `scale` (so not of unit
    length), listed in reverse order with their indexes, under the model id `model`."""

    def __init__(
        self,
        *,
        model: str = "fake-embedding-model",
        dim: int = 16,
        scale: float = 3.0,
        failures: Sequence[int] = (),
        retry_after: bool = True,
        body: str | None = None,
        gauge: Gauge | None = None,
    ) -> None:
        self.model, self.scale, self.body = model, scale, body
        self.gauge = gauge or Gauge()
        self.failures, self.retry_after = list(failures), retry_after
        self.embedder = FakeEmbedder(dim=dim)
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the loop's next poll.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeEmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, request: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, dict]:
        with self._lock:
            self.calls += 1
            self.requests.append(request)
            self.headers.append(headers)
            failure = self.failures.pop(0) if self.failures else None
        with self.gauge.counting():
            time.sleep(0.02)  # long enough for concurrent requests to overlap
            if failure is not None:
                extra = {"Retry-After": "0"} if self.retry_after else {}
                return failure, {"error": "overloaded, try again"}, extra
            if self.body is not None:
                return 200, self.body, {}
            texts = request["input"]
            vectors = self.embedder.embed(texts) * self.scale
            data = [
                {"object": "embedding", "index": i, "embedding": vectors[i].tolist()}
                for i in reversed(range(len(texts)))
            ]
            return 200, {"object": "list", "data": data, "model": self.model}, {}


def _handler(fake: FakeEmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length))
            if self.path != "/v1/embeddings":
                status, body, extra = 404, {"error": f"no route {self.path}"}, {}
            else:
                status, body, extra = fake.answer(request, dict(self.headers.items()))
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


def expected_vectors(texts: Sequence[str], dim: int = 16) -> np.ndarray:
    return FakeEmbedder(dim=dim).embed(texts)


def test_429_and_503_are_tried_again_then_vectors_come_normalised_in_order() -> None:
    with FakeEmbeddingServer(failures=[429, 503, 503]) as fake:
        remote = RemoteEmbedder([fake.url], model="wanted", retries=4, backoff=0.01)
        with remote:
            assert fake.calls == 4  # the identity probe got through on its fourth attempt
            assert (remote.id, remote.dim) == ("fake-embedding-model", 16)
            fake.failures = [500]
            fake.retry_after = False  # this time the jittered backoff decides the wait
            vectors = remote.embed(TEXTS)
    assert fake.calls == 4 + 1 + (len(TEXTS) + 31) // 32
    assert {r.get("model") for r in fake.requests} == {"wanted"}
    assert vectors.dtype == np.float32
    assert float(np.abs(vectors - expected_vectors(TEXTS)).max()) < 1e-6
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_batches_run_concurrently_over_every_url_within_the_limit() -> None:
    texts = [f"text number {i} about {word}" for i, word in enumerate(["tides", "lava"] * 12)]
    gauge = Gauge()
    with (
        FakeEmbeddingServer(gauge=gauge) as first,
        FakeEmbeddingServer(gauge=gauge) as second,
        RemoteEmbedder([first.url, second.url], api_key="k", batch=2, concurrency=3) as remote,
    ):
        vectors = remote.embed(texts)
    assert float(np.abs(vectors - expected_vectors(texts)).max()) < 1e-6
    assert first.calls >= 1 and second.calls >= 1
    assert first.calls + second.calls == 1 + len(texts) // 2  # the probe, then 12 batches
    assert max(len(r["input"]) for r in first.requests + second.requests) == 2
    assert gauge.most <= 3
    assert {h["Authorization"] for h in first.headers + second.headers} == {"Bearer k"}


def test_a_failing_url_is_left_for_another_one() -> None:
    with (
        FakeEmbeddingServer(failures=[503] * 100) as down,
        FakeEmbeddingServer() as up,
        RemoteEmbedder([down.url, up.url], batch=1, retries=2, backoff=0.01) as remote,
    ):
        vectors = remote.embed(TEXTS[:6])
    assert float(np.abs(vectors - expected_vectors(TEXTS[:6])).max()) < 1e-6
    assert down.calls >= 1 and up.calls >= 6


def test_the_last_failure_is_an_error_naming_the_url_and_the_reason() -> None:
    with FakeEmbeddingServer(failures=[503] * 10) as fake:
        with pytest.raises(
            EmbeddingServerError,
            match=rf"after 3 attempt\(s\): {fake.url}/v1/embeddings: HTTP 503: .*overloaded",
        ):
            RemoteEmbedder([fake.url], retries=3, backoff=0.01)
        assert fake.calls == 3
        fake.failures = [400]
        with pytest.raises(EmbeddingServerError, match=rf"{fake.url}/v1/embeddings: HTTP 400"):
            RemoteEmbedder([fake.url], retries=3, backoff=0.01)
        assert fake.calls == 4  # a client error is not tried again


def test_an_unreachable_url_is_an_error_naming_it(make_settings: MakeSettings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EmbeddingServerError, match=rf"{url}/v1/embeddings: ConnectError"):
        RemoteEmbedder([url], retries=2, backoff=0.01, timeout=2)
    settings = make_settings(
        overrides={"embedding.backend": "remote", "embedding.urls": url, "embedding.retries": 1}
    )
    with pytest.raises(EmbeddingServerError, match=rf"{url}/v1/embeddings: ConnectError"):
        embedder_identity(settings.embedding)


def test_what_is_not_an_embeddings_response_is_an_error() -> None:
    with FakeEmbeddingServer(body="<html>a proxy's error page</html>") as fake:
        with pytest.raises(EmbeddingServerError, match=rf"{fake.url}.*not an embeddings response"):
            RemoteEmbedder([fake.url], retries=3, backoff=0.01)
        assert fake.calls == 1
        fake.body = json.dumps({"data": [], "model": "m"})
        with pytest.raises(EmbeddingServerError, match=r"0 vectors .* do not match 1 texts"):
            RemoteEmbedder([fake.url])


def test_a_store_rejects_a_server_with_another_model_or_dimension(
    embedder: MiniLMEmbedder, docs_store: Path, make_settings: MakeSettings, tmp_path: Path
) -> None:
    store = Path(shutil.copytree(docs_store, tmp_path / "store"))
    settings = make_settings(store, DOCS_STORE_SETTINGS)
    with (
        FakeEmbeddingServer(model="BAAI/bge-small-en-v1.5", dim=384) as other_model,
        FakeEmbeddingServer(model=embedder.id, dim=768) as other_dim,
        RemoteEmbedder([other_model.url]) as wrong_model,
        RemoteEmbedder([other_dim.url]) as wrong_dim,
    ):
        with pytest.raises(IndexMismatch, match=r"built with embedder all-MiniLM.*bge-small"):
            KnowledgeBase.open(settings, embedder=wrong_model, create=False)
        with pytest.raises(IndexMismatch, match=r"\(dim 384\), not .* \(dim 768\)"):
            KnowledgeBase.open(settings, embedder=wrong_dim, create=False)


def test_urls_serving_different_models_are_an_error_naming_the_url() -> None:
    with (
        FakeEmbeddingServer(model="model-a") as a,
        FakeEmbeddingServer(model="model-b") as b,
        RemoteEmbedder([a.url, b.url], batch=1, concurrency=2) as remote,
    ):
        assert remote.id == "model-a"
        with pytest.raises(IndexMismatch, match=rf"{b.url}/v1/embeddings serves embedder model-b"):
            remote.embed(TEXTS[:4])


# --- settings and small helpers ----------------------------------------------------------------


def test_settings_come_from_the_environment_like_every_section() -> None:
    environ = {
        "ASKDOCS_EMBEDDING__BACKEND": "remote",
        "ASKDOCS_EMBEDDING__URLS": "http://10.0.0.5:8080, http://10.0.0.6:8080/v1",
        "ASKDOCS_EMBEDDING__MODEL": "BAAI/bge-small-en-v1.5",
        "ASKDOCS_EMBEDDING__BATCH": "64",
        "ASKDOCS_EMBEDDING__CONCURRENCY": "8",
        "ASKDOCS_EMBEDDING__TIMEOUT": "5",
        "ASKDOCS_EMBEDDING__RETRIES": "2",
        "ASKDOCS_EMBEDDING__API_KEY_ENV": "EMBEDDING_KEY",
        "EMBEDDING_KEY": "secret",
    }
    e = config.load(environ=environ).embedding
    assert e.urls == ("http://10.0.0.5:8080", "http://10.0.0.6:8080/v1")
    assert (e.backend, e.model, e.batch, e.concurrency, e.timeout, e.retries) == (
        "remote", "BAAI/bge-small-en-v1.5", 64, 8, 5.0, 2,
    )  # fmt: skip
    assert config.api_key(e, environ) == "secret"  # type: ignore[arg-type]
    assert "secret" not in repr(config.load({"embedding.api_key": "secret"}, environ={}))
    defaults = config.load(environ={}).embedding
    assert (defaults.backend, defaults.urls) == ("local", ())


def test_bad_settings_are_config_errors(make_settings: MakeSettings) -> None:
    with pytest.raises(ConfigError, match="unknown embedding backend 'cloud'"):
        load_embedder(make_settings(overrides={"embedding.backend": "cloud"}).embedding)
    with pytest.raises(ConfigError, match=r"embedding\.urls is empty"):
        load_embedder(make_settings(overrides={"embedding.backend": "remote"}).embedding)
    with pytest.raises(ConfigError, match="unknown embedding model 'bert'"):
        embedder_identity(make_settings(overrides={"embedding.model": "bert"}).embedding)


def test_endpoint_accepts_a_base_url_with_or_without_its_version() -> None:
    assert endpoint("http://h:8080") == "http://h:8080/v1/embeddings"
    assert endpoint(" http://h:8080/v1/ ") == "http://h:8080/v1/embeddings"
    assert endpoint("https://api.example.com/v2") == "https://api.example.com/v2/embeddings"
    assert endpoint("http://h/v1/embeddings") == "http://h/v1/embeddings"
    assert endpoint("http://h/proxy/vllm") == "http://h/proxy/vllm/v1/embeddings"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value} if value else {})

    assert retry_after(response("2"), 0.5) == 2.0
    assert retry_after(response(""), 0.5) == 0.5
    assert retry_after(response("soon"), 0.5) == 0.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 60 < retry_after(response(later), 0.5) <= 120
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=120), usegmt=True)
    assert retry_after(response(earlier), 0.5) == 0.0
