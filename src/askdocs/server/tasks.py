"""Long computations the API runs in the background (finding topics), one at a time.

`Tasks.submit(kind, work)` queues `work(progress)` and returns an id at once; the client
polls `get(id)` for the state, the stage and the fraction done that `work` reports through
`progress(stage, fraction)`, and the result once it is done. Ingest keeps its own queue
(`askdocs.server.jobs`): its uploads have their own bookkeeping.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from askdocs.errors import AskdocsError

log = logging.getLogger(__name__)

KEEP_FINISHED = 20  # finished tasks kept for polling; older ones are forgotten

Progress = Callable[[str, float], None]  # (stage, fraction of the whole done, 0..1)
Work = Callable[[Progress], dict[str, Any]]


def forget_finished(entries: dict[str, Any], keep: int) -> None:
    """Drop the oldest finished (done or failed) entries, keeping the newest `keep` of them;
    `entries` is in submission order, each with a `state`."""
    finished = [key for key, entry in entries.items() if entry.state in ("done", "failed")]
    for key in finished[: max(0, len(finished) - keep)]:
        del entries[key]


@dataclass
class Task:
    id: str
    kind: str
    state: str = "queued"  # queued | running | done | failed
    stage: str = ""
    fraction: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None


class Tasks:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="askdocs-task")
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Work) -> str:
        task = Task(uuid.uuid4().hex, kind)
        with self._lock:
            forget_finished(self._tasks, KEEP_FINISHED)
            self._tasks[task.id] = task
        self._executor.submit(self._run, task, work)
        return task.id

    def get(self, task_id: str) -> dict[str, Any] | None:
        """A snapshot of the task as the API shows it, or None."""
        with self._lock:
            task = self._tasks.get(task_id)
            return dataclasses.asdict(task) if task is not None else None

    def busy(self, kind: str) -> bool:
        """Whether a task of this kind is queued or running."""
        with self._lock:
            return any(
                t.kind == kind and t.state in ("queued", "running") for t in self._tasks.values()
            )

    def _run(self, task: Task, work: Work) -> None:
        def progress(stage: str, fraction: float) -> None:
            with self._lock:
                task.stage, task.fraction = stage, max(task.fraction, min(1.0, fraction))

        with self._lock:
            task.state = "running"
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = work(progress)
        except AskdocsError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: keep the worker alive, say what kind
            log.exception("%s task failed", task.kind)
            error = f"{task.kind} failed: {type(exc).__name__}"
        with self._lock:
            task.result, task.error = result, error
            task.state = "failed" if error else "done"
            if not error:
                task.fraction = 1.0

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
