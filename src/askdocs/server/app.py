"""`create_app(settings)`: the FastAPI app around one KnowledgeBase.

State lives on `app.state.askdocs` (a `ServerState`), opened in the lifespan and closed at
shutdown. Library errors become HTTP statuses through `ERROR_STATUS`, one table; the body
is `{"error": message, "type": class name}` (HTTP errors: type "HTTPError"). Request
validation errors are 422 with the same `error` (every problem, one line) and `type`
"ValidationError", plus FastAPI's `detail` list without the inputs.

Security (`askdocs.server.guard`, before any body is read): a `Host` header that does not
name this server is 421 (DNS rebinding); a state-changing request from another site's page
(its `Origin` or `Referer`) is 403 (cross-site request forgery); with `server.token` set,
every route but /health, the page at /, /static and the API docs needs
`Authorization: Bearer <token>` (401 otherwise); the page asks for the token when the API
answers 401 (GET /health says `"auth": true`). Request bodies are capped: `server.max_json_kb`
for JSON routes, `server.max_request_mb` for uploads (413). CORS headers are sent only for
`server.cors_origins`. Nothing here logs questions or document text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from askdocs.server import classify_route, openai, rerank_route, routes, topics_route
from askdocs.server.guard import BodyLimit, Guard, token_matches
from askdocs.server.jobs import Jobs
from askdocs.server.schemas import ErrorOut
from askdocs.server.state import ModelSlot, ServerState

WEB = Path(__file__).resolve().parent.parent / "web"

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


async def _validation_error(_request: Request, exc: Exception) -> Response:
    """FastAPI's 422 `detail` list without the inputs it would echo back: an input may hold
    NaN or a lone surrogate, which no JSON response can carry (and may be a megabyte)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e["type"], "loc": [_printable(p) for p in e["loc"]], "msg": _printable(e["msg"])}
        for e in exc.errors()
    ]
    message = "; ".join(dict.fromkeys(f"{_where(d['loc'])}: {d['msg']}" for d in detail))
    return JSONResponse({"error": message, "type": "ValidationError", "detail": detail}, 422)


def _where(loc: list[Any]) -> str:
    """`["body", "messages", 0, "content", "function-after[...]"]` -> `messages.0.content`:
    the field, without pydantic's labels for the branches of a union."""
    names = [str(p) for p in loc[1:] if isinstance(p, int) or str(p).isidentifier()]
    return ".".join(names) or str(loc[0])


def _printable(value: Any) -> Any:
    """`value`, with any text made encodable: a lone surrogate shows as `\\ud800`."""
    if not isinstance(value, str):
        return value if isinstance(value, int) else str(value)
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    body = {"error": str(exc.detail), "type": "HTTPError"}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


# What any secured route may answer besides its own statuses (documented for clients).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A body that is not JSON or not multipart"},
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    403: {"model": ErrorOut, "description": "A change sent from another site's page"},
    421: {"model": ErrorOut, "description": "A Host header that does not name this server"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
}

_bearer = HTTPBearer(auto_error=False, description="Needed when the server has a token.")


def require_token(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Checked by `Guard` before the body is read; again here, where OpenAPI sees it."""
    token = request.app.state.askdocs.settings.server.token
    if token and not token_matches(request.headers.get("authorization", ""), token):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
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
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(routes.public)
    secured = [Depends(require_token)]
    app.include_router(routes.router, dependencies=secured, responses=COMMON_RESPONSES)
    for sorting in (classify_route.router, topics_route.router):
        app.include_router(sorting, dependencies=secured, responses=COMMON_RESPONSES)
    # POST /v1/rerank; before the OpenAI routes, so it is the one that answers that path.
    app.include_router(
        rerank_route.router, prefix="/v1", dependencies=secured, responses=COMMON_RESPONSES
    )
    app.include_router(
        openai.router, prefix="/v1", dependencies=secured, responses=COMMON_RESPONSES
    )
    _mount_web(app)
    limits = settings.server
    app.add_middleware(  # the last added runs first: CORS, Guard, BodyLimit, the routes
        BodyLimit,
        json_bytes=limits.max_json_kb * 1024,
        upload_bytes=int(limits.max_request_mb * 1e6),
    )
    app.add_middleware(
        Guard, settings=limits, public=_public_paths(app), public_prefixes=("/static/",)
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


def _public_paths(app: FastAPI) -> set[str]:
    """Paths that need no token besides /static/*: /health, the page, the schema and docs."""
    docs = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {"/health", "/", *(path for path in docs if path)}


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
