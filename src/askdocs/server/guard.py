"""What is refused before any route runs, and before a request body is read.

`Guard`, for every HTTP request, in this order:

1. Host (421 Misdirected Request): the `Host` header must name this server: `localhost`,
   `127.0.0.1`, `::1`, the bound host, the address the connection arrived at, or one of
   `server.allowed_hosts` (e.g. the name a reverse proxy forwards). This stops DNS rebinding,
   where a page at `attacker.example` re-resolves its own name to 127.0.0.1. Only the name is
   compared: a browser reaching this socket directly always sends its port, so the port adds
   nothing, and comparing it would break SSH tunnels and port forwarding. A server bound
   beyond loopback with a token accepts any Host (the token protects it); without a Host
   header (HTTP/1.0 tools) the request passes.
2. Origin (403): a request other than GET, HEAD and OPTIONS whose `Origin` (or, without one,
   `Referer`) is another site than this server as the request reached it (the `Host`
   header), and not one of `server.cors_origins`, is refused. This stops cross-site request
   forgery: any page can post a form to 127.0.0.1 without a CORS preflight. Requests with
   neither header (curl, scripts, the OpenAI client) pass; the web page is same-origin.
3. Token (401): with `server.token` set, every path but the public ones needs
   `Authorization: Bearer <token>`; checked here so an unauthenticated body is never read.

`BodyLimit` then caps what is read: 413 on a declared Content-Length over the route's limit,
else as soon as the bytes received pass it.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from askdocs.config import ServerSettings

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # change nothing, so any origin may send them
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
UPLOAD_ROUTES = {("POST", "/documents")}


def host_name(host: str) -> str:
    """A `Host` header's name, lower case, without port or brackets.

    >>> host_name("[::1]:8000"), host_name("::1"), host_name("LocalHost:8000"), host_name("a.org")
    ('::1', '::1', 'localhost', 'a.org')
    """
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") > 1:  # a bare IPv6 address: a setting (a Host header has brackets)
        return host
    return host.partition(":")[0]


def token_matches(authorization: str, token: str) -> bool:
    """Whether `Authorization: Bearer <token>` carries `token` (compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def refusal(status: int, message: str, kind: str, **headers: str) -> Response:
    """The API's error body; the connection is closed since a body may be left unread."""
    return JSONResponse(
        {"error": message, "type": kind}, status, headers={"Connection": "close", **headers}
    )


class Guard:
    """Host, Origin and token checks (see the module docstring). Paths in `public`, and
    those starting with one of `public_prefixes`, need no token."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: ServerSettings,
        public: Collection[str],
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app, self.token, self.public = app, settings.token, frozenset(public)
        self.public_prefixes = public_prefixes
        from askdocs.server import is_loopback

        self.any_host = bool(settings.token) and not is_loopback(settings.host)
        named = (settings.host, *settings.allowed_hosts)
        self.hosts = LOOPBACK_NAMES | {host_name(h) for h in named}
        self.origins = frozenset(settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        answer = self.check(scope)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)

    def check(self, scope: Scope) -> Response | None:
        """The refusal for this request, or None to let it through."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        hosts = [v for k, v in headers if k == "host"]
        if not self.host_allowed(hosts, scope.get("server")):
            return refusal(
                421, f"this server does not answer to the host {hosts[0][:100]!r}; add it "
                "to the server.allowed_hosts setting if it is yours", "MisdirectedRequest",
            )  # fmt: skip
        method = scope.get("method", "GET")
        if method not in SAFE_METHODS:
            origins = [v for k, v in headers if k == "origin"]
            referers = [_origin_of(v) for k, v in headers if k == "referer"]
            for origin in origins or referers:
                if not self.origin_allowed(origin, hosts[0] if hosts else None):
                    return refusal(
                        403, f"cross-site request refused: {origin[:100]!r} is not this "
                        "server's page; list it in server.cors_origins to allow it",
                        "CrossOriginRefused",
                    )  # fmt: skip
        if self.token and method != "OPTIONS" and not self.is_public(scope["path"]):
            given = next((v for k, v in headers if k == "authorization"), "")
            if not token_matches(given, self.token):
                bearer = {"WWW-Authenticate": "Bearer"}
                return refusal(401, "missing or wrong bearer token", "HTTPError", **bearer)
        return None

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """This server's own page (as the `Host` header names it), or a configured origin."""
        if origin in self.origins or "*" in self.origins:
            return True
        return host is not None and _netloc(origin) == host.strip().lower()

    def is_public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)

    def host_allowed(self, hosts: list[str], server: tuple[str, int | None] | None) -> bool:
        if len(hosts) > 1:
            return False
        if self.any_host or not hosts:
            return True
        name = host_name(hosts[0])
        # The address this connection was accepted on (uvicorn: the socket's own address) is
        # one of this machine's, whatever the server is bound to.
        return name in self.hosts or (server is not None and name == host_name(str(server[0])))


def _origin_of(referer: str) -> str:
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else referer


def _netloc(origin: str) -> str:
    """`http://127.0.0.1:8000` -> `127.0.0.1:8000`; `null` or garbage -> ``."""
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return ""


class BodyLimit:
    """413 for a request body over the route's limit, declared or streamed."""

    def __init__(self, app: ASGIApp, *, json_bytes: int, upload_bytes: int) -> None:
        self.app, self.json_bytes, self.upload_bytes = app, json_bytes, upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        upload = (scope["method"], scope["path"].rstrip("/")) in UPLOAD_ROUTES
        limit = self.upload_bytes if upload else self.json_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await refusal(413, f"request body over {limit} bytes", "TooLarge")(scope, receive, send)
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
