"""The HTTP API: `create_app(settings)` returns a FastAPI app; `askdocs serve` runs it.

Needs the `server` extra: pip install 'askdocs[server]'. Routes are listed in
`askdocs.server.routes` and `askdocs.server.openai`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from askdocs.errors import ConfigError, MissingDependency

if TYPE_CHECKING:
    from fastapi import FastAPI

    from askdocs.config import ServerSettings, Settings

INSTALL_HINT = "pip install 'askdocs[server]'"

__all__ = ["INSTALL_HINT", "check_exposure", "create_app", "is_loopback"]


def create_app(settings: Settings, **injected: Any) -> FastAPI:
    """See `askdocs.server.app.create_app`; raises MissingDependency without the extra."""
    from importlib.util import find_spec

    # python-multipart (uploads) is imported as python_multipart, or multipart before 0.0.13
    missing = [name for name in ("fastapi", "uvicorn") if find_spec(name) is None]
    if find_spec("python_multipart") is None and find_spec("multipart") is None:
        missing.append("python-multipart")
    if missing:
        raise MissingDependency(f"the HTTP server needs {', '.join(missing)}; run: {INSTALL_HINT}")
    from askdocs.server.app import create_app as create

    return create(settings, **injected)


def is_loopback(host: str) -> bool:
    """`127.0.0.1`, `::1`, `localhost`: reachable from this machine only."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: ServerSettings) -> None:
    """Refuse to listen beyond this machine without a token (raises ConfigError)."""
    if not is_loopback(settings.host) and not settings.token:
        raise ConfigError(
            f"refusing to serve on {settings.host} without a token: anyone who can reach it "
            "could read and change the documents; set --token or ASKDOCS_API_TOKEN, or serve "
            "on 127.0.0.1"
        )
