"""Answers as async event streams, shared by /ask and /v1/chat/completions.

`stream_answer` is a blocking iterator: each step runs in a worker thread, and when the
consumer stops early (the client went away: Starlette cancels the response) the iterator is
closed, which closes llama.cpp's token loop; the model lock is released with it. A plain
(non-streamed) answer is cancelled the same way when its client disconnects. A generating
request holds the model for its whole answer; others queue in `ModelSlot.turn()` and the
seconds they waited are the final answer's `timings["queue"]`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Send

from askdocs.answer import AskOptions, Event, Final, Retrieved, Token, stream_answer
from askdocs.errors import AskdocsError
from askdocs.generation import Generator
from askdocs.server.state import ServerState
from askdocs.types import Answer

T = TypeVar("T")
log = logging.getLogger("askdocs.server")
_DONE = object()


@dataclass(frozen=True, slots=True)
class AskParams:
    question: str
    options: AskOptions


class EventStream(StreamingResponse):
    """`text/event-stream` whose body iterator is always closed, even on a disconnect."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = content

    async def stream_response(self, send: Send) -> None:
        async with aclosing(self._events):  # type: ignore[type-var]
            await super().stream_response(send)


def sse(event: str | None, data: Any) -> str:
    """One server-sent event; `data` is one line of JSON (json.dumps escapes newlines)."""
    line = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {line}\n\n"


def _close(items: Iterator[Any]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


async def pump(items: Iterator[T]) -> AsyncIterator[T]:
    """A blocking iterator's items, each fetched in a worker thread; closed at the end."""
    try:
        while True:
            item = await anyio.to_thread.run_sync(next, items, _DONE)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close, items)


def _events(state: ServerState, generator: Generator | None, p: AskParams) -> Iterator[Event]:
    return stream_answer(state.kb, generator, p.question, p.options)


async def load_generator(state: ServerState, params: AskParams) -> Generator | None:
    """The model, loaded on first use (in a thread); None for an extractive answer."""
    if params.options.extractive:
        return None
    return await anyio.to_thread.run_sync(state.model.get)


async def answer_events(
    state: ServerState, generator: Generator | None, params: AskParams
) -> AsyncIterator[Event]:
    """`stream_answer`'s events; with a generator, queued for and holding the model."""
    if generator is None:
        async with aclosing(pump(_events(state, None, params))) as events:
            async for event in events:
                yield event
        return
    async with (
        state.model.turn() as queued,
        aclosing(pump(_events(state, generator, params))) as events,
    ):
        async for event in events:
            if isinstance(event, Final):
                timings = {**event.answer.timings, "queue": queued}
                event = Final(dataclasses.replace(event.answer, timings=timings))
            yield event


async def final_answer(state: ServerState, params: AskParams) -> Answer:
    generator = await load_generator(state, params)
    async with aclosing(answer_events(state, generator, params)) as events:
        async for event in events:
            if isinstance(event, Final):
                return event.answer
    raise AssertionError("stream_answer always ends with Final")  # pragma: no cover


async def unless_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T | None:
    """`work()`'s result, or None when the client leaves first: then the work is cancelled
    (a queued ask leaves the queue, a running one stops generating), as for a stream."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    async with anyio.create_task_group() as group:

        async def run() -> None:
            try:
                outcome.append(await work())
            except Exception as exc:  # re-raised below, not wrapped in an ExceptionGroup
                failure.append(exc)
            group.cancel_scope.cancel()

        async def watch() -> None:
            # The body has been read: the next message is the disconnect (Starlette's
            # StreamingResponse listens the same way).
            while (await request.receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(run)
        group.start_soon(watch)
    if failure:
        raise failure[0]
    return outcome[0] if outcome else None


def error_data(exc: Exception) -> dict[str, str]:
    if isinstance(exc, AskdocsError):
        return {"error": str(exc), "type": type(exc).__name__}
    log.error("answer stream failed: %s", type(exc).__name__)  # never the question or text
    return {"error": "internal error", "type": "InternalError"}


async def ask_sse(
    state: ServerState, generator: Generator | None, params: AskParams
) -> AsyncIterator[str]:
    """/ask's SSE: `passages` once, `token`s, one `final`; or `error` when it fails."""
    sent_passages = False
    try:
        async with aclosing(answer_events(state, generator, params)) as events:
            async for event in events:
                if isinstance(event, Retrieved):
                    sent_passages = True
                    yield sse("passages", {"passages": _dicts(event.passages)})
                elif isinstance(event, Token):
                    yield sse("token", {"text": event.text})
                else:
                    if not sent_passages:  # refused before generation: no Retrieved
                        yield sse("passages", {"passages": _dicts(event.answer.passages)})
                    yield sse("final", dataclasses.asdict(event.answer))
    except Exception as exc:
        yield sse("error", error_data(exc))


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [dataclasses.asdict(item) for item in items]
