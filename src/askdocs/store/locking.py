"""One writer at a time per store directory, across processes: an exclusive `flock`.

SQLite already serialises transactions, but a writer decides what to write before its
transaction (is this content stored? is this file new?). A second process changing the store
in between made an ingest link to content a `remove` had just deleted, or two ingests embed
and count the same files. Writers therefore hold this lock from their decision to their
commit: an ingest per batch (re-check, embed, write), a remove for its transaction. Readers
never take it. The kernel drops the lock when its process dies, even by `kill -9`.

Waiting is logged once per holder ("waiting for another ingest on this store (pid N)"):
Python's last-resort handler prints it to stderr when the application configured no logging.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: SQLite's own locking is all there is
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "write.lock"
log = logging.getLogger("askdocs.store")


class WriteLock:
    """The exclusive write lock of the store in `directory`; re-entrant within a process."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._mutex = threading.RLock()  # threads of this process queue here, not on flock
        self._depth = 0
        self._fd: int | None = None
        self._announced: set[str] = set()

    @contextmanager
    def held(self, what: str = "write") -> Iterator[None]:
        """Hold the lock for the block, waiting for another process's `what` to finish."""
        with self._mutex:
            if self._depth == 0:
                self._acquire(what)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    @contextmanager
    def held_if_free(self, what: str = "write") -> Iterator[bool]:
        """Hold the lock for the block if no one else holds it (True), or do nothing
        (False); never waits. Re-entrant, as `held`."""
        if not self._mutex.acquire(blocking=False):
            yield False
            return
        try:
            try:
                free = self._depth > 0 or self._try_acquire(what)
            except OSError:  # a read-only store: no lock file, and no writing either
                free = False
            if not free:
                yield False
                return
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()
        finally:
            self._mutex.release()

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)  # also releases the lock
                self._fd = None
            self._depth = 0

    def _acquire(self, what: str) -> None:
        if fcntl is None or self._try_acquire(what):
            return
        holder = self._holder()
        if holder not in self._announced:
            self._announced.add(holder)
            log.warning("%s: waiting for another %s", self.directory, holder)
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._announce(what)

    def _try_acquire(self, what: str) -> bool:
        if fcntl is None:
            return True
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._announce(what)
        return True

    def _announce(self, what: str) -> None:
        # Who holds it, for the message of the next process that has to wait. Best effort:
        # on a full disk even these few bytes may not fit.
        assert self._fd is not None
        with suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{what} on this store (pid {os.getpid()})".encode(), 0)

    def _release(self) -> None:
        if fcntl is not None and self._fd is not None:
            with suppress(OSError):
                os.ftruncate(self._fd, 0)  # no stale holder for the next waiter to name
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _holder(self) -> str:
        """'ingest on this store (pid 123)', as the holder wrote it (it may not have yet)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text or "writer on this store"
