"""The HTTP API through FastAPI's TestClient: shapes, uploads, limits, auth and errors.

The real embedder and parsers run over a copy of the session's sample store; the model is
left out (extractive answers) except where a streamed generation is the point, which uses the
small packaged SmolLM2-135M. Live-server tests (OpenAI client, disconnects, concurrency) are in
test_server_live.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from askdocs import config
from askdocs.config import Settings
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError, MissingDependency
from askdocs.types import Answer, Citation, Hit
from tests.conftest import DOCS_STORE_SETTINGS, free_port

pytest.importorskip("fastapi", reason="pip install 'askdocs[server]'")

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from askdocs.cli import main
from askdocs.server import check_exposure, create_app
from askdocs.server.app import ERROR_STATUS, status_for

MakeClient = Callable[..., TestClient]
TIDES_Q = "When do spring tides come?"
ZEBRAFISH = (
    "Zebrafish can regrow heart muscle. After an injury the surviving heart cells divide "
    "and replace the damaged tissue within two months.\n"
)


def server_settings(store: Path, overrides: dict[str, Any] | None = None) -> Settings:
    return config.load(
        {"store": str(store), **DOCS_STORE_SETTINGS, **(overrides or {})}, environ={}
    )


def copy_store(docs_store: Path, tmp_path: Path) -> Path:
    """A private copy of the session's sample store (its documents stay where they are)."""
    return Path(shutil.copytree(docs_store, tmp_path / "store"))


def sse_events(text: str) -> list[tuple[str, Any]]:
    """`event:`/`data:` blocks as (event name or "", parsed data)."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        data = fields.get("data", "")
        out.append((fields.get("event", ""), data if data == "[DONE]" else json.loads(data)))
    return out


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` on a real uvicorn server on loopback, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def clients(store: Path, embedder: MiniLMEmbedder) -> Iterator[MakeClient]:
    """Yields `make(overrides=None, generator=None, base_url=...)`, which starts a TestClient
    on `store`; stops them all when resumed."""
    opened: list[TestClient] = []

    def make(
        overrides: dict[str, Any] | None = None,
        generator: Any = None,
        base_url: str = "http://testserver",
    ) -> TestClient:
        app = create_app(server_settings(store, overrides), embedder=embedder, generator=generator)
        client = TestClient(app, base_url=base_url)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def make_client(docs_store: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[MakeClient]:
    """`make_client(overrides=None, generator=None, base_url=...)`: a started TestClient on a
    copy of the sample store (at tmp_path / "store")."""
    yield from clients(copy_store(docs_store, tmp_path), embedder)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def test_health_counts_and_needs_no_model(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body == {
        "status": "ok", "documents": 6, "chunks": body["chunks"], "generator": "not loaded",
        "auth": False,
    }  # fmt: skip
    assert body["chunks"] >= 6


def test_search_hits_have_the_cli_json_shape(client: TestClient) -> None:
    response = client.post("/search", json={"query": "descale the espresso machine", "k": 3})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert 1 <= len(hits) <= 3
    assert set(hits[0]) == {f.name for f in dataclasses.fields(Hit)}
    assert hits[0]["path"].endswith("espresso.txt")
    assert set(hits[0]["scores"]) == {"dense", "keyword"}


def test_search_modes_and_filters(client: TestClient) -> None:
    keyword = client.post("/search", json={"query": "tides", "mode": "keyword"}).json()["hits"]
    assert keyword and all(set(h["scores"]) == {"keyword"} for h in keyword)
    body = {"query": "moon and water", "filters": {"kinds": ["pdf"], "path_glob": None}}
    hits = client.post("/search", json=body).json()["hits"]
    assert hits and {h["kind"] for h in hits} == {"pdf"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "x", "k": 0},
        {"query": "x", "k": 101},
        {"query": "x", "mode": "fuzzy"},
        {"query": 5},
        {"question": "x"},
        {"query": "x", "filters": {"kinds": "pdf"}},
    ],
)
def test_bad_search_requests_are_422(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/search", json=body).status_code == 422


def test_ask_extractive_has_the_cli_json_shape_and_passages_open(client: TestClient) -> None:
    response = client.post("/ask", json={"question": TIDES_Q, "extractive": True})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {f.name for f in dataclasses.fields(Answer)}
    assert answer["answered"] and answer["mode"] == "extractive" and answer["citations"]
    cited = answer["citations"][0]
    assert set(cited) == {f.name for f in dataclasses.fields(Citation)}
    assert f"[{cited['number']}]" in answer["text"]
    passage = client.get(f"/passages/{cited['chunk_id']}", params={"context": 200}).json()
    context = passage["context"]
    assert passage["path"] == cited["path"] and passage["chunk_id"] == cited["chunk_id"]
    assert context["start"] <= passage["start"] < passage["end"] <= context["end"]
    for start, end in cited["spans"]:  # each cited span can be highlighted in its context
        shown = context["text"][start - context["start"] : end - context["start"]]
        assert shown and shown in cited["text"]


def test_extractive_ask_streams_the_same_event_order(client: TestClient) -> None:
    body = {"question": TIDES_Q, "extractive": True, "stream": True}
    with client.stream("POST", "/ask", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert [name for name, _ in events] == ["passages", "final"]
    assert events[0][1]["passages"] == events[1][1]["passages"]


def test_missing_things_are_404(client: TestClient) -> None:
    assert client.get("/passages/999999").status_code == 404
    assert client.get("/passages/-1").status_code == 404
    assert client.get(f"/passages/{2**70}").status_code in (404, 422)
    assert client.get("/jobs/nope").json()["type"] == "NotFound"
    assert client.delete("/documents", params={"path": "/no/such.txt"}).status_code == 404


def test_the_error_table_maps_library_errors() -> None:
    from askdocs.errors import AskdocsError, ContextTooLong, NotFound

    assert status_for(NotFound("x")) == 404
    assert status_for(ContextTooLong("x")) == 413
    assert status_for(ConfigError("x")) == 400
    assert status_for(AskdocsError("x")) == 422
    assert ERROR_STATUS[-1][0] is AskdocsError, "the root class must come last"


def wait_for_job(client: TestClient, job_id: str, seconds: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']}")


def test_upload_is_saved_safely_ingested_searchable_and_deleted(
    client: TestClient, tmp_path: Path
) -> None:
    files = [("files", ("../../etc/passwd.txt", ZEBRAFISH.encode(), "text/plain"))]
    response = client.post("/documents", files=files)
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["job_id"])
    assert job["state"] == "done", job
    assert (job["files"], job["done_files"], job["report"]["added"]) == (1, 1, 1)
    assert job["chunks"] >= 1 and job["error"] is None and job["report"]["failed"] == []
    uploads = tmp_path / "store" / "uploads"
    (saved,) = uploads.glob("*/*")
    assert saved.name == "passwd.txt" and saved.read_text() == ZEBRAFISH
    assert not (tmp_path / "etc").exists()
    hits = client.post("/search", json={"query": "zebrafish heart regrows"}).json()["hits"]
    assert hits[0]["path"] == str(saved)
    listed = {d["path"]: d for d in client.get("/documents").json()["documents"]}
    assert listed[str(saved)]["kind"] == "txt" and listed[str(saved)]["chunks"] >= 1
    assert len(listed) == 7
    removed = client.delete("/documents", params={"path": str(saved)})
    assert removed.json() == {"removed": 1}
    assert not saved.parent.exists(), "the server's copy of the upload is deleted too"
    hits = client.post("/search", json={"query": "zebrafish", "mode": "keyword"}).json()["hits"]
    assert all(h["path"] != str(saved) for h in hits)
    assert client.delete("/documents", params={"path": str(saved)}).status_code == 404


def test_upload_limits(make_client: MakeClient) -> None:
    client = make_client({"server.max_upload_mb": 0.001, "server.max_files": 2})
    big = ("files", ("big.txt", b"word " * 400, "text/plain"))
    assert client.post("/documents", files=[big]).status_code == 413
    small = ("files", ("small.md", b"# Hi\n\nsmall", "text/markdown"))
    assert client.post("/documents", files=[small, small, small]).status_code == 413
    for name in ("tool.exe", "noext", "page.php", "x.txt.sh"):
        bad = ("files", (name, b"#!/bin/sh\necho hi", "application/octet-stream"))
        response = client.post("/documents", files=[bad])
        assert response.status_code == 415, name
    assert not (client.app.state.askdocs.settings.store / "uploads").exists()
    assert client.post("/documents").status_code == 422


def test_upload_request_size_limit(make_client: MakeClient) -> None:
    client = make_client({"server.max_request_mb": 0.01})
    files = [("files", ("a.txt", b"a " * 10_000, "text/plain"))]
    assert client.post("/documents", files=files).status_code == 413


def test_json_bodies_over_the_limit_are_413(make_client: MakeClient) -> None:
    client = make_client({"server.max_json_kb": 16})
    huge = {"query": "x" * 4000, "pad": "y" * 20_000}
    assert client.post("/search", json=huge).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"query": "'
        for _ in range(40):
            yield b"z" * 1000
        yield b'"}'

    response = client.post(
        "/search", content=chunked(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_token_is_required_when_set(make_client: MakeClient) -> None:
    client = make_client({"server.token": "s3cret-token"})
    body = {"query": "tides"}
    assert client.post("/search", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/search", json=body, headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.post("/search", json=body, headers=good).status_code == 200
    assert client.get("/v1/models").status_code == 401
    assert client.get("/documents", headers=good).status_code == 200
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["auth"] is True
    assert client.get("/").status_code in (200, 404)  # the page itself is public


def test_token_from_the_environment() -> None:
    settings = config.load({}, environ={"ASKDOCS_API_TOKEN": "abc"})
    assert settings.server.token == "abc"
    assert "abc" not in repr(settings)


def test_public_host_needs_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--store", str(tmp_path)])
    assert result.exit_code != 0 and "without a token" in result.output
    check_exposure(config.load({"server.host": "0.0.0.0", "server.token": "t"}, environ={}).server)
    for host in ("127.0.0.1", "localhost", "::1"):
        check_exposure(config.load({"server.host": host}, environ={}).server)


def test_cors_only_when_configured(make_client: MakeClient) -> None:
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    closed = make_client()
    assert "access-control-allow-origin" not in closed.options("/search", headers=preflight).headers
    opened = make_client({"server.cors_origins": "http://app.example"})
    answer = opened.options("/search", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "http://app.example"


def test_openapi_and_page_are_served(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/ask", "/documents", "/v1/chat/completions", "/health"} <= set(paths)
    page = client.get("/")
    if page.status_code == 200:
        assert page.headers["content-type"].startswith("text/html")


def test_missing_fastapi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    with pytest.raises(MissingDependency, match=r"askdocs\[server\]"):
        create_app(config.load({}, environ={}))


def test_an_error_mid_stream_is_an_error_event(make_client: MakeClient) -> None:
    from askdocs.testing import FakeGenerator

    client = make_client(generator=FakeGenerator(["Spring tides [1]."], context_length=24))
    body = {"question": TIDES_Q, "stream": True}
    with client.stream("POST", "/ask", json=body) as response:
        events = sse_events(response.read().decode())
    assert events == [("error", {"error": events[0][1]["error"], "type": "ContextTooLong"})]
    plain = client.post("/ask", json={"question": TIDES_Q})
    assert plain.status_code == 413 and plain.json()["type"] == "ContextTooLong"
    assert not client.app.state.askdocs.model.lock.locked()


def test_no_question_or_document_text_in_the_logs(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "The vault combination is marmalade-4471."
    question = "What is the vault combination?"
    client = make_client()
    with caplog.at_level(logging.DEBUG):  # every logger, every level
        files = {"files": ("vault.txt", secret.encode(), "text/plain")}
        job = client.post("/documents", files=files).json()["job_id"]
        for _ in range(200):
            if client.get(f"/jobs/{job}").json()["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert client.get(f"/jobs/{job}").json()["state"] == "done"
        client.post("/search", json={"query": question})
        answer = client.post("/ask", json={"question": question, "extractive": True}).json()
    assert "marmalade" in answer["text"]  # the text went through the server ...
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "marmalade" not in logged and "vault combination" not in logged  # ... not the logs


def test_ask_takes_the_conversation_and_a_style(client: TestClient) -> None:
    body = {"question": "And what causes them?", "history": [TIDES_Q], "extractive": True}
    answer = client.post("/ask", json=body).json()
    # The follow-up was searched for with the earlier question's key terms.
    assert answer["question"].endswith("And what causes them?")
    assert "tides" in answer["question"] and answer["question"] != body["question"]
    standalone = {"question": TIDES_Q, "history": ["Who designed the Eiffel Tower?"]}
    answer = client.post("/ask", json={**standalone, "extractive": True}).json()
    assert answer["question"] == TIDES_Q
    assert client.post("/ask", json={"question": TIDES_Q, "style": "long"}).status_code == 422
    too_long = {"question": TIDES_Q, "history": ["x"] * 51}
    assert client.post("/ask", json=too_long).status_code == 422
