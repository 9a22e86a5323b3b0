"""The SQLite side of a store: tables, connection settings, transactions and `meta`.

`meta` records what a store was built with (schema version, embedder, dimension) and its
identity, a random id the derived index files carry so that files from another store are
not loaded.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from askdocs.errors import IndexMismatch
from askdocs.store import DocumentWrite
from askdocs.store.locking import WriteLock
from askdocs.types import Chunk, Document, Heading, Page

SCHEMA_VERSION = 1
DATABASE = "askdocs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL, pipeline TEXT NOT NULL,
    kind TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    pages TEXT NOT NULL, headings TEXT NOT NULL,
    UNIQUE (hash, pipeline)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    content_id INTEGER NOT NULL REFERENCES contents(id),
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    added_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_content ON documents(content_id);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id INTEGER NOT NULL REFERENCES contents(id),
    ord INTEGER NOT NULL, text TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    page INTEGER, heading TEXT, n_tokens INTEGER NOT NULL,
    text_hash BLOB NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_content ON chunks(content_id);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id INTEGER NOT NULL, op INTEGER NOT NULL
);
"""


def connect(directory: Path) -> sqlite3.Connection:
    """The store's database (created if new), in WAL mode, autocommit outside `transaction`."""
    db = sqlite3.connect(
        directory / DATABASE, check_same_thread=False, timeout=60, isolation_level=None
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(_SCHEMA)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, committed at the end of the block, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")  # on a full disk, this is where SQLite may fail
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def check_meta(
    db: sqlite3.Connection, directory: Path, embedder_id: str, dim: int, lock: WriteLock
) -> tuple[str, int, str]:
    """(embedder id, dim, store identity) of the store, recorded now if it is new; raises
    IndexMismatch when it was built with another schema or embedder."""
    meta = _meta(db)
    if not meta:
        with lock.held("creation"):  # two processes may create the same store at once
            meta = _meta(db)
            if not meta:
                with transaction(db):
                    db.executemany(
                        "INSERT INTO meta VALUES (?, ?)",
                        [
                            ("schema_version", str(SCHEMA_VERSION)),
                            ("embedder", embedder_id),
                            ("dim", str(dim)),
                            ("created_at", str(time.time())),
                            ("store_id", uuid.uuid4().hex),
                        ],
                    )
                meta = _meta(db)
    if int(meta["schema_version"]) != SCHEMA_VERSION:
        raise IndexMismatch(
            f"{directory} has store schema {meta['schema_version']}, this askdocs "
            f"reads {SCHEMA_VERSION}; ingest into a new --store"
        )
    if meta["embedder"] != embedder_id or int(meta["dim"]) != dim:
        raise IndexMismatch(
            f"{directory} was built with embedder {meta['embedder']} "
            f"(dim {meta['dim']}), not {embedder_id} (dim {dim}); open it with the "
            "embedder it was built with, or ingest into a new --store"
        )
    # Stores made before store ids had none: their creation time tells them apart as well.
    return embedder_id, dim, meta.get("store_id") or f"created {meta['created_at']}"


def rebuilt_write(
    path_state: Sequence[Any],
    content: Sequence[Any],
    pages: Sequence[Sequence[int]],
    headings: Sequence[Sequence[Any]],
    chunks: Sequence[Sequence[Any]],
    text_hashes: Sequence[bytes],
    embeddings: np.ndarray,
) -> DocumentWrite:
    """A stored document as the complete write that stores it again, from its rows:
    (path, size, mtime_ns), (hash, pipeline, kind, title, text), pages, headings, and per
    chunk (ord, text, start, end, n_tokens, page, heading). Both backends dump with it."""
    path, size, mtime_ns = path_state
    content_hash, pipeline, kind, title, text = content
    document = Document(
        path, text, title, kind,
        tuple(Page(*p) for p in pages), tuple(Heading(*h) for h in headings),
    )  # fmt: skip
    return DocumentWrite(
        path, size, mtime_ns, content_hash, pipeline, document,
        tuple(Chunk(*c) for c in chunks), embeddings, tuple(text_hashes),
    )  # fmt: skip


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def recorded(directory: Path) -> tuple[str, int] | None:
    """(embedder id, dimension) of the store at `directory`, or None if there is no store."""
    path = Path(directory) / DATABASE
    if not path.is_file():
        return None
    db = sqlite3.connect(path, timeout=60)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:  # created but never initialised
        return None
    finally:
        db.close()
    return (meta["embedder"], int(meta["dim"])) if "embedder" in meta else None
