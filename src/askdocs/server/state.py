"""What one server process holds: the knowledge base, its one generator, the ingest jobs
and the background tasks (finding topics).

The generator is loaded on first use (seconds) and reused. A llama model runs in a worker
process (`WorkerGenerator`), so a native crash fails the request in progress with a 503 and
the next one starts a new worker; searches and /health never notice. Generations take
turns on it through an asyncio lock, so waiting requests hold no worker thread and searches,
uploads and /health never wait for the model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from askdocs import config
from askdocs.config import Settings
from askdocs.errors import AskdocsError, ModelLoadError, RuntimeCrash
from askdocs.generation import Generator, open_generator
from askdocs.kb import KnowledgeBase
from askdocs.server.jobs import Jobs
from askdocs.server.tasks import Tasks


class ModelSlot:
    """The app's generator: `get()` loads it once (thread-safe); `turn()` queues for it."""

    def __init__(self, settings: Settings, generator: Generator | None = None) -> None:
        self._settings = settings.generation
        self._generator = generator
        self._owned = generator is None  # a generator passed in belongs to the caller
        self._failure: str | None = None
        self._loading = threading.Lock()
        self.lock = asyncio.Lock()  # binds to the server's loop on first contention

    @property
    def status(self) -> str:
        if self._generator is not None:
            return "ready"
        return "unavailable" if self._failure else "not loaded"

    def get(self) -> Generator:
        """The generator, loaded on the first call. A failed load is not retried (a missing
        or damaged model stays so), except a crash of the worker it loads in: the next
        request tries again, as it does after a crash while generating."""
        with self._loading:
            if self._generator is None:
                if self._failure:
                    raise ModelLoadError(self._failure)
                try:
                    self._generator = open_generator(self._settings, config.api_key(self._settings))
                except RuntimeCrash:
                    raise
                except AskdocsError as exc:
                    self._failure = str(exc)
                    raise
            return self._generator

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[float]:
        """Hold the model for one generation; yields the seconds spent queueing."""
        started = time.perf_counter()
        async with self.lock:
            yield round(time.perf_counter() - started, 4)

    def close(self) -> None:
        with self._loading:
            if self._generator is not None and self._owned:
                self._generator.close()
            self._generator = None


@dataclass
class ServerState:
    """Kept on `app.state.askdocs`."""

    settings: Settings
    kb: KnowledgeBase
    model: ModelSlot
    jobs: Jobs
    tasks: Tasks = dataclasses.field(default_factory=Tasks)

    def close(self) -> None:
        self.tasks.close()
        self.jobs.close()
        self.model.close()
        self.kb.close()
