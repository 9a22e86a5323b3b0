"""A full or read-only disk under a store: recognised by error code and said in words.

A write that fails for want of space raises `StorageFull` naming the store and the fix; what
was committed before is intact (SQLite rolls the transaction back). Saving the derived index
files is not needed for correctness (SQLite and its change log are the truth), so a store that
cannot save them keeps serving from memory and says so instead of failing a read command.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from askdocs.errors import StorageFull

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # the primary code of an extended one


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or SQLITE_FULL ("database or disk is full")."""
    if isinstance(exc, sqlite3.Error):
        return _sqlite_code(exc) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def is_unwritable(exc: BaseException) -> bool:
    """A full disk, a read-only file system, or no permission to write the store."""
    if is_disk_full(exc):
        return True
    if isinstance(exc, sqlite3.Error):
        return _sqlite_code(exc) == sqlite3.SQLITE_READONLY
    return isinstance(exc, OSError) and exc.errno in _READ_ONLY_ERRNOS


def storage_full(directory: Path, doing: str) -> StorageFull:
    return StorageFull(
        f"the disk holding the store {directory} is full: {doing} failed, and nothing of it "
        "was stored (what was stored before is intact). Free some space on that disk, or use "
        "a --store on another disk, then run the command again; ingest resumes where it "
        "stopped."
    )


@contextmanager
def full_disk_raises(directory: Path, doing: str) -> Iterator[None]:
    """Turn a full-disk error inside the block into `StorageFull`; others pass unchanged."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if is_disk_full(exc):
            raise storage_full(directory, doing) from exc
        raise
