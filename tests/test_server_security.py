"""The HTTP API against hostile input: cross-site requests, DNS rebinding, bodies sent before
the token is checked, numbers and strings JSON allows but nothing downstream can take, and
uploads that fail to ingest.

Most tests use FastAPI's TestClient (Host `testserver`, the address its requests "arrive
at"); what must hold before a body is read is checked by driving the ASGI app with a body
that counts what was taken from it, and once through a real socket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import UnreadableDocument
from askdocs.kb import KnowledgeBase
from tests.test_server import (
    TIDES_Q,
    ZEBRAFISH,
    MakeClient,
    clients,
    copy_store,
    server_settings,
    serving,
    wait_for_job,
)

pytest.importorskip("fastapi", reason="pip install 'askdocs[server]'")

from fastapi import FastAPI

from askdocs.server import create_app
from askdocs.server.guard import host_name, token_matches

TOKEN = "security-test-token"
UPLOAD = [("files", ("zebrafish.txt", ZEBRAFISH.encode(), "text/plain"))]
MB = 1 << 20


@pytest.fixture
def make_client(docs_store: Path, tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[MakeClient]:
    """As in test_server.py: TestClients on a copy of the sample store (tmp_path / "store")."""
    yield from clients(copy_store(docs_store, tmp_path), embedder)


def uploads_of(client: Any) -> list[Path]:
    uploads: Path = client.app.state.askdocs.settings.store / "uploads"
    return sorted(uploads.glob("*/*")) if uploads.is_dir() else []


# --- Cross-site request forgery and DNS rebinding ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": "http://127.0.0.1:9999"},  # another local site
        {"Referer": "http://attacker.example/page.html"},  # no Origin: the Referer decides
    ],
)
def test_a_cross_site_upload_is_refused_and_nothing_is_stored(
    make_client: MakeClient, headers: dict[str, str]
) -> None:
    client = make_client(base_url="http://127.0.0.1:8000")
    response = client.post("/documents", files=UPLOAD, headers=headers)
    assert response.status_code == 403
    assert response.json()["type"] == "CrossOriginRefused"
    assert "cross-site" in response.json()["error"]
    assert uploads_of(client) == []
    assert len(client.get("/documents").json()["documents"]) == 6


def test_every_state_changing_request_from_another_site_is_refused(
    make_client: MakeClient,
) -> None:
    client = make_client(base_url="http://127.0.0.1:8000")
    foreign = {"Origin": "http://attacker.example"}
    stored = client.get("/documents").json()["documents"][0]["path"]
    assert client.delete("/documents", params={"path": stored}, headers=foreign).status_code == 403
    assert client.post("/search", json={"query": "tides"}, headers=foreign).status_code == 403
    body = {"model": "askdocs-extractive", "messages": [{"role": "user", "content": TIDES_Q}]}
    assert client.post("/v1/chat/completions", json=body, headers=foreign).status_code == 403
    assert len(client.get("/documents").json()["documents"]) == 6, "nothing was deleted"
    # reads: a foreign page cannot see the answer without CORS, so they are not refused
    assert client.get("/documents", headers=foreign).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts, the OpenAI client: no Origin, no Referer
        {"Origin": "http://127.0.0.1:8000"},  # the web page itself
        {"Referer": "http://127.0.0.1:8000/"},
        {"Origin": "http://localhost:8000", "Host": "localhost:8000"},
    ],
)
def test_the_page_and_non_browser_clients_may_change_things(
    make_client: MakeClient, headers: dict[str, str]
) -> None:
    client = make_client(base_url="http://127.0.0.1:8000")
    response = client.post("/documents", files=UPLOAD, headers=headers)
    assert response.status_code == 202
    assert wait_for_job(client, response.json()["job_id"])["state"] == "done"


def test_a_configured_cors_origin_may_post(make_client: MakeClient) -> None:
    client = make_client({"server.cors_origins": "http://app.example"})
    allowed = client.post(
        "/search", json={"query": "tides"}, headers={"Origin": "http://app.example"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    other = {"Origin": "http://other.example"}
    assert client.post("/search", json={"query": "tides"}, headers=other).status_code == 403


@pytest.mark.parametrize("path", ["/health", "/", "/documents", "/openapi.json"])
def test_a_host_that_is_not_this_server_is_misdirected(make_client: MakeClient, path: str) -> None:
    client = make_client()
    response = client.get(path, headers={"Host": "attacker.example:8000"})
    assert response.status_code == 421
    assert response.json()["type"] == "MisdirectedRequest"
    assert "allowed_hosts" in response.json()["error"]
    rebound = client.post("/documents", files=UPLOAD, headers={"Host": "attacker.example"})
    assert rebound.status_code == 421 and uploads_of(client) == []


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000", "localhost"]
)
def test_loopback_names_are_this_server(make_client: MakeClient, host: str) -> None:
    assert make_client().get("/health", headers={"Host": host}).status_code == 200


def test_allowed_hosts_and_the_address_a_request_arrived_at(make_client: MakeClient) -> None:
    client = make_client({"server.allowed_hosts": "docs.example.org"})
    assert client.get("/health", headers={"Host": "docs.example.org"}).status_code == 200
    assert client.get("/health", headers={"Host": "docs.example.org:443"}).status_code == 200
    assert client.get("/health", headers={"Host": "evil.example.org"}).status_code == 421
    # bound to every address, without a token: the machine's own address is this server
    lan = make_client({"server.host": "0.0.0.0"}, base_url="http://192.168.1.20:8000")
    assert lan.get("/health").status_code == 200
    assert lan.get("/health", headers={"Host": "0.0.0.0:8000"}).status_code == 200
    assert lan.get("/health", headers={"Host": "attacker.example"}).status_code == 421


def test_a_public_server_with_a_token_answers_to_any_host(make_client: MakeClient) -> None:
    client = make_client({"server.host": "0.0.0.0", "server.token": TOKEN})
    assert client.get("/health", headers={"Host": "askdocs.example.org"}).status_code == 200
    loopback = make_client({"server.token": TOKEN})  # the token alone does not widen it
    assert loopback.get("/health", headers={"Host": "askdocs.example.org"}).status_code == 421


def test_host_names_and_tokens_are_parsed_strictly() -> None:
    assert host_name("[::1]:8000") == "::1" and host_name("::1") == "::1"
    assert host_name("Example.ORG:80") == "example.org" and host_name("[broken") == ""
    assert token_matches(f"Bearer {TOKEN}", TOKEN) and token_matches(f"bearer  {TOKEN}", TOKEN)
    assert not token_matches(f"Basic {TOKEN}", TOKEN) and not token_matches(TOKEN, TOKEN)
    assert not token_matches("", TOKEN) and not token_matches("Bearer ", TOKEN)


# --- Nothing is read before the request is allowed --------------------------------------------


MULTIPART = {"Host": "127.0.0.1:8000", "Content-Type": "multipart/form-data; boundary=b"}
PART_HEAD = (
    b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
)


def call(app: FastAPI, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int]:
    """POST a multipart file of `chunks` MB to `path` through the ASGI app, one MB per
    message; returns (status, bytes the app took)."""
    consumed = 0
    status = 0
    messages = itertools.chain([PART_HEAD], (b"x" * MB for _ in range(chunks)))

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        body = next(messages, None)
        if body is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return status, consumed


@pytest.fixture
def bare_app(tmp_path: Path, embedder: MiniLMEmbedder) -> Any:
    """`bare_app(overrides)`: an app whose lifespan never runs: nothing may reach a route."""

    def make(overrides: dict[str, Any]) -> FastAPI:
        return create_app(server_settings(tmp_path / "store", overrides), embedder=embedder)

    return make


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Authorization": "Bearer wrong"}, 401),
        ({}, 401),
        ({"Authorization": f"Bearer {TOKEN}", "Origin": "http://attacker.example"}, 403),
        ({"Authorization": f"Bearer {TOKEN}", "Host": "attacker.example"}, 421),
    ],
)
def test_a_refused_upload_is_not_read(bare_app: Any, headers: dict[str, str], status: int) -> None:
    app = bare_app({"server.token": TOKEN})
    sent = {**MULTIPART, "Content-Length": str(50 * MB), **headers}
    assert call(app, "/documents", sent, chunks=50) == (status, 0)


def test_an_upload_over_the_limit_is_refused_early(bare_app: Any) -> None:
    app = bare_app({"server.max_request_mb": 2})
    declared = {**MULTIPART, "Content-Length": str(50 * MB)}
    assert call(app, "/documents", declared, chunks=50) == (413, 0)
    status, consumed = call(app, "/documents", MULTIPART, chunks=50)  # chunked: no length
    assert status == 413 and consumed <= 3 * MB


def test_a_real_server_answers_401_before_the_body_arrives(
    docs_store: Path, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    settings = server_settings(copy_store(docs_store, tmp_path), {"server.token": TOKEN})
    with serving(create_app(settings, embedder=embedder)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(
                f"POST /documents HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {50 * MB}\r\n\r\n".encode()
            )  # and not one byte of the 50 MB: without the early check this would hang
            reply = conn.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 401"), reply[:200]


# --- Numbers and strings nothing downstream can take --------------------------------------------

CHAT = {"model": "askdocs-extractive", "messages": [{"role": "user", "content": TIDES_Q}]}


def with_message(content: Any) -> dict[str, Any]:
    return {**CHAT, "messages": [{"role": "user", "content": content}]}


NAN, INF = float("nan"), float("inf")
TEXT = "nicode"  # pydantic's strict "unicode string", our "not valid Unicode"


@pytest.mark.parametrize(
    "path, body, says",
    [
        ("/search", {"query": "tides", "k": NAN}, "k: Input should be a valid integer"),
        ("/search", {"query": "tides", "k": INF}, "k: Input should be a valid integer"),
        ("/search", {"query": "\ud800 tides"}, f"query: {TEXT}"),
        ("/search", {"query": "x", "filters": {"path_glob": "\udfff"}}, "filters.path_glob"),
        ("/ask", {"question": TIDES_Q, "k": NAN}, "k: Input should be a valid integer"),
        ("/ask", {"question": "\ud800", "extractive": True}, f"question: {TEXT}"),
        ("/ask", {"question": "x", "decoding": {"temperature": NAN}}, "temperature: finite"),
        ("/ask", {"question": "x", "decoding": {"stop": ["\ud800"]}}, f"stop.0: {TEXT}"),
        ("/v1/chat/completions", {**CHAT, "temperature": NAN}, "temperature: finite"),
        ("/v1/chat/completions", {**CHAT, "top_p": -INF}, "top_p: finite"),
        ("/v1/chat/completions", with_message("\ud800"), f"messages.0.content: {TEXT}"),
        ("/v1/chat/completions", with_message([{"type": "text", "text": "\udc00"}]), TEXT),
        ("/v1/chat/completions", {**CHAT, "stop": "\ud800"}, f"stop: {TEXT}"),
        ("/v1/embeddings", {"input": "\ud800"}, f"input: {TEXT}"),
        ("/v1/embeddings", {"input": ["tides", "a \udbff b"]}, f"input.1: {TEXT}"),
        ("/v1/embeddings", {"inputs": ["tides"], "pad": NAN}, "input: Field required"),
    ],
)
def test_nan_and_lone_surrogates_are_422_with_a_clear_message(
    make_client: MakeClient, path: str, body: dict[str, Any], says: str
) -> None:
    client = make_client()
    raw = json.dumps(body)  # NaN, Infinity and \\ud800 escapes, as a hostile client sends them
    response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["type"] == "ValidationError"
    field, _, message = says.partition(": ")
    assert field in error["error"] and message.lower() in error["error"].lower(), error["error"]
    assert all("input" not in d for d in error["detail"]), "inputs are not echoed"


def test_finite_numbers_and_paired_surrogates_still_work(make_client: MakeClient) -> None:
    client = make_client()
    body = json.dumps({"query": "tides \U0001f30a", "k": 3})  # json.dumps writes a \\ud83c pair
    assert "\\ud83c" in body
    response = client.post("/search", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["hits"]


# --- Uploads that fail to ingest ---------------------------------------------------------------


def test_uploads_that_fail_to_ingest_are_not_kept(make_client: MakeClient) -> None:
    client = make_client()
    files = [
        ("files", ("broken.pdf", b"not a pdf at all", "application/pdf")),
        ("files", ("blank.txt", b"   \n\n  ", "text/plain")),
        ("files", ("zebrafish.txt", ZEBRAFISH.encode(), "text/plain")),
    ]
    job = wait_for_job(client, client.post("/documents", files=files).json()["job_id"])
    assert job["state"] == "done" and job["report"]["added"] == 1
    failed = {Path(f["path"]).name: f["reason"] for f in job["report"]["failed"]}
    assert set(failed) == {"broken.pdf", "blank.txt"}, "the report still says what failed"
    (kept,) = uploads_of(client)
    assert kept.name == "zebrafish.txt"
    listed = {d["path"] for d in client.get("/documents").json()["documents"]}
    assert str(kept) in listed, "every upload kept on disk is listed, so it can be deleted"
    assert {p.name for p in kept.parent.parent.iterdir()} == {kept.parent.name}


def test_a_failed_job_keeps_none_of_its_uploads(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise UnreadableDocument("upload", "the reader gave up")

    monkeypatch.setattr(KnowledgeBase, "ingest", fail)
    client = make_client()
    job = wait_for_job(client, client.post("/documents", files=UPLOAD).json()["job_id"])
    assert job["state"] == "failed" and job["error"]
    assert uploads_of(client) == []
    assert not any((client.app.state.askdocs.settings.store / "uploads").iterdir())


def test_a_save_cut_short_keeps_nothing(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from askdocs.server import jobs, routes

    saved: list[Path] = []

    def save_then_fail(uploads: Path, filename: str, data: Any) -> Path:
        if saved:
            raise OSError(28, "No space left on device")
        saved.append(jobs.save_upload(uploads, filename, data))
        return saved[-1]

    monkeypatch.setattr(routes, "save_upload", save_then_fail)
    client = make_client()
    with pytest.raises(OSError, match="No space"):
        client.post("/documents", files=[UPLOAD[0], UPLOAD[0]])
    assert saved and not saved[0].exists() and uploads_of(client) == []


def test_uploads_left_by_a_stopped_server_are_deleted_at_start(
    make_client: MakeClient, tmp_path: Path
) -> None:
    first = make_client()
    job = wait_for_job(first, first.post("/documents", files=UPLOAD).json()["job_id"])
    assert job["state"] == "done"
    (stored,) = uploads_of(first)
    uploads = stored.parent.parent
    first.__exit__(None, None, None)  # the server stops ...
    orphan = uploads / ("0" * 32) / "never-ingested.txt"  # ... after saving this upload
    orphan.parent.mkdir()
    orphan.write_text("half an upload")
    (uploads / ("1" * 32)).mkdir()  # a save cut short
    second = make_client()  # the same store, started again
    assert uploads_of(second) == [stored] and stored.read_text() == ZEBRAFISH
    assert {p.name for p in uploads.iterdir()} == {stored.parent.name}
