"""`create_app(settings)`: the FastAPI app around one KnowledgeBase.

State lives on `app.state.askdocs` (a `ServerState`), opened in the lifespan and closed at
shutdown. Library errors become HTTP statuses through `ERROR_STATUS`, one table; the body
is `{"error": message, "type": class name}` (HTTP errors: type "HTTPError"). Request
validation errors are FastAPI's 422 with its `detail` list.

Security: with `server.token` set, every route but /health, / and /static needs
`Authorization: Bearer <token>` (401 otherwise); the page at / is public and asks for the
token when the API answers 401 (GET /health says `"auth": true`). Request bodies are capped:
`server.max_json_kb` for JSON routes, `server.max_request_mb` for uploads (413). CORS headers
are sent only for `server.cors_origins`. Nothing here logs questions or document text.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from askdocs.config import Settings
from askdocs.embeddings import Embedder
from askdocs.errors import (
    AskdocsError,
    ConfigError,
    ContextTooLong,
    IndexMismatch,
    MissingDependency,
    ModelLoadError,
    NotFound,
    RuntimeCrash,
    StorageFull,
    UnreadableDocument,
)
from askdocs.generation import Generator
from askdocs.kb import KnowledgeBase
from askdocs.server import openai, routes
from askdocs.server.jobs import Jobs
from askdocs.server.schemas import ErrorOut
from askdocs.server.state import ModelSlot, ServerState

WEB = Path(__file__).resolve().parent.parent / "web"
UPLOAD_ROUTES = {("POST", "/documents")}

# Most specific first: the first class an error is an instance of gives its status.
ERROR_STATUS: tuple[tuple[type[AskdocsError], int], ...] = (
    (NotFound, 404),
    (ContextTooLong, 413),  # the question does not fit the model's context
    (ConfigError, 400),  # e.g. an unknown mode or an invalid setting in the request
    (UnreadableDocument, 422),
    (IndexMismatch, 409),
    (ModelLoadError, 503),  # the server's model, not the request, is at fault
    (MissingDependency, 503),
    (RuntimeCrash, 503),  # the model's worker died; the next request starts a new one
    (StorageFull, 507),  # Insufficient Storage: nothing stored was lost
    (AskdocsError, 422),
)


def status_for(exc: AskdocsError) -> int:
    return next(status for cls, status in ERROR_STATUS if isinstance(exc, cls))


async def _askdocs_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AskdocsError)
    return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_for(exc))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    body = {"error": str(exc.detail), "type": "HTTPError"}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


# What any secured route may answer besides its own statuses (documented for clients).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A body that is not JSON or not multipart"},
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
}

_bearer = HTTPBearer(auto_error=False, description="Needed when the server has a token.")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = request.app.state.askdocs.settings.server.token
    if not token:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


class BodyLimit:
    """413 for a request body over the route's limit, declared or streamed."""

    def __init__(self, app: ASGIApp, *, json_bytes: int, upload_bytes: int) -> None:
        self.app, self.json_bytes, self.upload_bytes = app, json_bytes, upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = (scope["method"], scope["path"].rstrip("/")) in UPLOAD_ROUTES
        limit = self.upload_bytes if upload else self.json_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # FastAPI passes HTTPException through its body parsing
                raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> Response:
    return JSONResponse(
        {"error": f"request body over {limit} bytes", "type": "TooLarge"},
        413,
        headers={"Connection": "close"},
    )


def create_app(
    settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
) -> FastAPI:
    """The app; `embedder` and `generator` default to the configured ones (loaded lazily)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kb = KnowledgeBase.open(settings, embedder=embedder)
        state = ServerState(settings, kb, ModelSlot(settings, generator), Jobs(kb))
        app.state.askdocs = state
        await anyio.to_thread.run_sync(lambda: kb.embedder)  # load once, before requests
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(state.close)

    app = FastAPI(title="askdocs", version=_version(), lifespan=lifespan)
    app.add_exception_handler(AskdocsError, _askdocs_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(routes.public)
    secured = [Depends(require_token)]
    app.include_router(routes.router, dependencies=secured, responses=COMMON_RESPONSES)
    app.include_router(
        openai.router, prefix="/v1", dependencies=secured, responses=COMMON_RESPONSES
    )
    _mount_web(app)
    limits = settings.server
    app.add_middleware(
        BodyLimit,
        json_bytes=limits.max_json_kb * 1024,
        upload_bytes=int(limits.max_request_mb * 1e6),
    )
    if limits.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(limits.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _mount_web(app: FastAPI) -> None:
    """The page at / and its files at /static/ (public: they hold no data)."""

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        page = WEB / "index.html"
        if not page.is_file():
            return JSONResponse({"error": "the web page is not installed", "type": "NotFound"}, 404)
        return FileResponse(page)

    app.mount("/static", StaticFiles(directory=WEB, check_dir=False), name="static")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("askdocs")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
