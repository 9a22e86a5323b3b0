"""The SQLite side of a store: tables, connection settings, transactions, `meta`, and a
document as rows (`write_document`) and back (`rebuilt_write`).

`meta` records what a store was built with (schema version, embedder, dimension) and its
identity, a random id the derived index files carry so that files from another store are
not loaded. Writing chunks logs them in `changes` (ADD, DELETE), which the derived indexes
replay; triggers log FIELDS for the chunks whose paths or tags change, which the keyword
index holds for filters.
"""

from __future__ import annotations

import contextlib
import json
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

# `tags` and `annotations` came later without a new version: a store opened by this askdocs
# gains them (IF NOT EXISTS), and an older askdocs still opens it, as it checks the version
# alone. It never reads the new tables, and its deletes of documents still take their tags
# along: the cascade is part of the table and every version turns foreign keys on. A new
# version would lock the older ones out of the store for no gain.
SCHEMA_VERSION = 1
DATABASE = "askdocs.sqlite3"
ADD, DELETE, FIELDS = 1, -1, 2  # `changes.op`: a chunk added, deleted, its paths or tags changed

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
CREATE TABLE IF NOT EXISTS tags (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (document_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key_value ON tags(key, value);
CREATE TABLE IF NOT EXISTS annotations (name TEXT PRIMARY KEY, value TEXT NOT NULL);
""" + "".join(
    # A path linked to content that another path already holds (the first path of new
    # content comes with its chunks' ADD), a path moved to other content, a path removed,
    # and any tag set, changed or removed: the content's chunks now carry other fields.
    f"""
CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} BEGIN
    INSERT INTO changes (chunk_id, op) SELECT ch.id, {FIELDS} FROM chunks ch WHERE {chunks};
END;"""
    for name, event, chunks in (
        (
            "documents_linked",
            "INSERT ON documents WHEN EXISTS (SELECT 1 FROM documents "
            "WHERE content_id = NEW.content_id AND id <> NEW.id)",
            "ch.content_id = NEW.content_id",
        ),
        (
            "documents_moved",
            "UPDATE OF content_id ON documents WHEN OLD.content_id <> NEW.content_id",
            "ch.content_id IN (OLD.content_id, NEW.content_id)",
        ),
        ("documents_unlinked", "DELETE ON documents", "ch.content_id = OLD.content_id"),
        *(
            (
                f"tags_{verb}",
                f"{verb.upper()} ON tags",
                f"ch.content_id = (SELECT content_id FROM documents WHERE id = {row}.document_id)",
            )
            for verb, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))
        ),
    )
)


BUSY_SECONDS = 60  # how long a connection waits for another process's lock


def connect(directory: Path) -> sqlite3.Connection:
    """The store's database (created if new), in WAL mode, autocommit outside `transaction`."""
    db = sqlite3.connect(
        directory / DATABASE, check_same_thread=False, timeout=BUSY_SECONDS, isolation_level=None
    )
    # Two processes opening a new store at once: switching it to WAL needs an exclusive lock,
    # and SQLite reports "database is locked" at once, without waiting, when that lock cannot
    # be had without a deadlock. Wait for the other process here, as every other lock does.
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
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


def content_id(db: sqlite3.Connection, content_hash: str, pipeline: str) -> int | None:
    row = db.execute(
        "SELECT id FROM contents WHERE hash = ? AND pipeline = ?", (content_hash, pipeline)
    ).fetchone()
    return row[0] if row else None


def write_document(db: sqlite3.Connection, item: DocumentWrite) -> int | None:
    """Insert or update one document; returns the content id it stopped pointing at. An
    updated path keeps its row (and so its tags)."""
    now = time.time()
    stored = content_id(db, item.content_hash, item.pipeline)
    if stored is None:
        if item.document is None or item.embeddings is None:
            raise ValueError(f"{item.path}: new content needs its document and embeddings")
        stored = _insert_content(db, item)
    old = db.execute("SELECT content_id FROM documents WHERE path = ?", (item.path,)).fetchone()
    if old is None:
        db.execute(
            "INSERT INTO documents (path, content_id, size, mtime_ns, added_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item.path, stored, item.size, item.mtime_ns, now, now),
        )
        return None
    db.execute(  # the same content again: a touched file, not an update
        "UPDATE documents SET content_id = ?, size = ?, mtime_ns = ?, updated_at = "
        "CASE WHEN content_id = ? THEN updated_at ELSE ? END WHERE path = ?",
        (stored, item.size, item.mtime_ns, stored, now, item.path),
    )
    return old[0] if old[0] != stored else None


def _insert_content(db: sqlite3.Connection, item: DocumentWrite) -> int:
    doc = item.document
    assert doc is not None and item.embeddings is not None
    cursor = db.execute(
        "INSERT INTO contents (hash, pipeline, kind, title, text, pages, headings) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            item.content_hash,
            item.pipeline,
            doc.kind,
            doc.title,
            doc.text,
            json.dumps([[p.number, p.start, p.end] for p in doc.pages]),
            json.dumps([[h.start, h.level, h.text] for h in doc.headings]),
        ),
    )
    new_id = int(cursor.lastrowid or 0)
    embeddings = np.ascontiguousarray(item.embeddings, dtype=np.float32)
    for chunk, vector, text_hash in zip(item.chunks, embeddings, item.text_hashes, strict=True):
        cursor = db.execute(
            'INSERT INTO chunks (content_id, ord, text, start, "end", page, heading, '
            "n_tokens, text_hash, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new_id,
                chunk.ord,
                chunk.text,
                chunk.start,
                chunk.end,
                chunk.page,
                chunk.heading,
                chunk.n_tokens,
                text_hash,
                vector.tobytes(),
            ),
        )
        db.execute("INSERT INTO changes (chunk_id, op) VALUES (?, ?)", (cursor.lastrowid, ADD))
    return new_id


def drop_if_orphan(db: sqlite3.Connection, content: int) -> None:
    """Delete the content with id `content`, and log its chunks' deletion, unless a path
    still points at it."""
    if db.execute("SELECT 1 FROM documents WHERE content_id = ? LIMIT 1", (content,)).fetchone():
        return
    db.execute(
        "INSERT INTO changes (chunk_id, op) SELECT id, ? FROM chunks WHERE content_id = ?",
        (DELETE, content),
    )
    db.execute("DELETE FROM chunks WHERE content_id = ?", (content,))
    db.execute("DELETE FROM contents WHERE id = ?", (content,))


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


def head(db: sqlite3.Connection) -> int:
    """The log's last position (0 for a new store)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


def replayable(db: sqlite3.Connection, seq: int) -> bool:
    """True when the log still holds every change after position `seq`."""
    if seq == head(db):
        return True
    row = db.execute("SELECT MIN(seq) FROM changes").fetchone()
    return row[0] is not None and row[0] <= seq + 1


def logged(db: sqlite3.Connection, after: int, upto: int) -> tuple[list[int], set[int], list[int]]:
    """(added, deleted, fields changed): the chunk ids of the log's changes in (after, upto]."""
    rows = db.execute(
        "SELECT chunk_id, op FROM changes WHERE seq > ? AND seq <= ?", (after, upto)
    ).fetchall()
    added = [c for c, op in rows if op == ADD]
    changed = [c for c, op in rows if op == FIELDS]
    return added, {c for c, op in rows if op == DELETE}, changed


def chunk_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


def chunk_batches(db: sqlite3.Connection, columns: str, size: int) -> Iterator[list[Any]]:
    """Every chunk's `columns` (of `chunks ch`, the first one `ch.id`), `size` rows at a time
    in id order."""
    last = 0
    while True:
        rows = db.execute(
            f"SELECT {columns} FROM chunks ch WHERE ch.id > ? ORDER BY ch.id LIMIT ?",
            (last, size),
        ).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


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
