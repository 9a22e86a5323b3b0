"""What the HTTP clients of remote servers (embeddings, reranking) share about failures:
how long a Retry-After header asks them to wait, and what to quote of an error response."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx

MAX_WAIT = 30.0  # seconds, the longest single wait between attempts


def retry_after(response: httpx.Response, default: float) -> float:
    """The wait a Retry-After header asks for, in seconds or as an HTTP date; `default`
    when there is none or it cannot be read."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def detail(response: httpx.Response) -> str:
    """An error response's body on one line, at most 300 characters, or its reason."""
    text = " ".join(response.text.split())
    return text[:300] or response.reason_phrase
