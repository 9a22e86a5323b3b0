"""The embedded store: one directory holding SQLite (the truth) and two derived indexes.

SQLite (WAL) holds documents, their extracted text, chunks and embeddings, plus `changes`, a
log of chunk ids added, deleted, or given other paths or tags. The vector index lives in
memory and is saved now and then to a file named after the last change it contains
(`vectors-<seq>.idx`, see `indexfiles`); the keyword index is tantivy's folder, committed
with every write and recording its position in `keywords.json` (`store.keywords`). Opening
the store loads both and replays the log past them; if one is missing, damaged, from
another store or disagrees with SQLite, it is rebuilt from SQLite and `status()` says so.

Content is stored once per (content hash, pipeline); paths point at it, and carry their
tags (`tags`). Writers, in this and other processes, take turns through `writing()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np

from askdocs.config import IndexSettings
from askdocs.errors import NotFound
from askdocs.store import (
    ChunkRecord,
    DocumentInfo,
    DocumentWrite,
    FileState,
    Filters,
    Ranking,
    StoreStatus,
    faults,
    indexfiles,
    schema,
    tags,
)
from askdocs.store.keyword_sync import KeywordSync
from askdocs.store.locking import WriteLock
from askdocs.store.schema import DATABASE
from askdocs.vectors import HnswParams, VectorIndex

__all__ = ["DATABASE", "SqliteStore"]  # DATABASE lives in `schema`

_REPLAY_BATCH = 5000
SAVE_AFTER = 50_000  # logged changes after which a write saves the index files
log = logging.getLogger("askdocs.store")


class SqliteStore:
    """The embedded default `Store`. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        directory: Path,
        *,
        embedder_id: str,
        dim: int,
        settings: IndexSettings | None = None,
        create: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.settings = settings or IndexSettings()
        if not (self.directory / schema.DATABASE).exists() and not create:
            raise NotFound(f"no askdocs store at {self.directory}; run `askdocs ingest` first")
        self._lock = threading.RLock()
        self._write_lock = WriteLock(self.directory)
        self._notes: list[str] = []
        with faults.full_disk_raises(self.directory, "opening the store"):
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = schema.connect(self.directory)
            self.embedder_id, self.dim, self._identity = schema.check_meta(
                self._db, self.directory, embedder_id, dim, self._write_lock
            )
        self._seq = 0
        self._commits = 0  # write transactions this connection committed
        self._allowed: dict[tuple[tuple[int, int], str, tuple[str, ...]], np.ndarray] = {}
        self._vectors = VectorIndex(dim, self._hnsw_params())
        self._keywords = KeywordSync(
            self._db, self.directory, self._identity, self.settings, self._write_lock, self._note
        )
        self._load_indexes()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                self.sync()
            finally:
                self._db.close()
                self._db = None  # type: ignore[assignment]
        self._write_lock.close()  # outside self._lock: writers take the write lock first

    def _transaction(self) -> AbstractContextManager[None]:
        return schema.transaction(self._db)

    @contextmanager
    def _changing(self, what: str, doing: str) -> Iterator[None]:
        """One write transaction under the write lock (`doing` names it if the disk is
        full); the indexes catch up after it."""
        with self.writing(what), self._lock:
            with faults.full_disk_raises(self.directory, doing), self._transaction():
                yield
            self._commits += 1
            self._catch_up()
            self._save_if_behind()

    @contextmanager
    def writing(self, what: str = "write") -> Iterator[None]:
        """Hold the store's write lock, shared with other processes (`store.locking`).

        Hold it from deciding what to write (is this content stored? is this path new?) to
        the commit; `write` and `remove` take it themselves (it is re-entrant).
        """
        with contextlib.ExitStack() as stack:
            with faults.full_disk_raises(self.directory, f"starting the {what}"):
                stack.enter_context(self._write_lock.held(what))
            yield

    # -- writes ----------------------------------------------------------------------------

    def file_state(self, path: str) -> FileState | None:
        row = self._db.execute(
            "SELECT d.size, d.mtime_ns, c.hash, c.pipeline FROM documents d "
            "JOIN contents c ON c.id = d.content_id WHERE d.path = ?",
            (path,),
        ).fetchone()
        return FileState(*row) if row else None

    def has_content(self, content_hash: str, pipeline: str) -> bool:
        return schema.content_id(self._db, content_hash, pipeline) is not None

    def cached_embeddings(self, text_hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Embeddings already stored for chunk texts with these hashes (reused, not recomputed)."""
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(text_hashes))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            rows = self._db.execute(
                "SELECT text_hash, embedding FROM chunks WHERE text_hash IN "
                f"({','.join('?' * len(part))}) GROUP BY text_hash",
                part,
            ).fetchall()
            found.update((h, np.frombuffer(e, dtype=np.float32)) for h, e in rows)
        return found

    def write(self, writes: Sequence[DocumentWrite]) -> None:
        """Store a batch of files in one transaction, then bring the indexes up to date."""
        if not writes:
            return
        with self._changing("write", "storing a batch of documents"):
            replaced = [schema.write_document(self._db, item) for item in writes]
            # Only at the end of the batch: a later write in it may link to that content (a
            # file moved to a new name while its old name got new content).
            for content_id in dict.fromkeys(c for c in replaced if c is not None):
                schema.drop_if_orphan(self._db, content_id)

    def remove(self, paths: Iterable[str]) -> int:
        """Forget these paths and their tags; content no other path shares is deleted.
        Returns how many."""
        removed = 0
        with self._changing("remove", "removing documents"):
            for path in paths:
                row = self._db.execute(
                    "SELECT content_id FROM documents WHERE path = ?", (path,)
                ).fetchone()
                if row is None:
                    continue
                self._db.execute("DELETE FROM documents WHERE path = ?", (path,))
                schema.drop_if_orphan(self._db, row[0])
                removed += 1
        return removed

    def tag(self, key: str, values: Mapping[str, str | None]) -> int:
        with self._changing("tag", "tagging documents"):
            return tags.sqlite_tag(self._db, key, values)

    def tags(self, key: str) -> dict[str, str]:
        with self._lock:
            return tags.sqlite_tags(self._db, key)

    def annotate(self, name: str, value: str | None) -> None:
        with self._changing("annotate", "storing an annotation"):
            tags.sqlite_annotate(self._db, name, value)

    def annotation(self, name: str) -> str | None:
        with self._lock:
            return tags.sqlite_annotation(self._db, name)

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT d.path, ct.title, ct.kind, (SELECT COUNT(*) FROM chunks ch "
                "WHERE ch.content_id = d.content_id), d.size, d.added_at, d.updated_at "
                "FROM documents d JOIN contents ct ON ct.id = d.content_id ORDER BY d.path"
            ).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def chunk_source(self, chunk_id: int) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ct.text FROM chunks ch JOIN contents ct ON ct.id = ch.content_id "
                "WHERE ch.id = ?",
                (chunk_id,),
            ).fetchone()
        return row[0] if row else None

    # -- derived indexes -------------------------------------------------------------------

    def _hnsw_params(self) -> HnswParams:
        s = self.settings
        return HnswParams(s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.hnsw_threshold)

    def _head(self) -> int:
        return schema.head(self._db)

    def _tag(self, seq: int) -> str:
        """What vector files at position `seq` of this store carry; others are not loaded."""
        return f"{self._identity}@{seq}"

    def _load_indexes(self) -> None:
        indexfiles.remove_stale_temp_files(self.directory)
        indexfiles.remove_old_kinds(self.directory)
        self._load_vectors()
        self._keywords.open()

    def _note(self, message: str) -> None:
        """Something `status()` should tell, said once on stderr (see `store.locking`)."""
        if message not in self._notes:
            self._notes.append(message)
            log.warning("%s", message)

    @contextmanager
    def _or_note(self, doing: str) -> Iterator[None]:
        """For writes of derived data only: when the disk takes no writes, say so and go on
        from memory (complete: SQLite and its change log hold everything)."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            if not faults.is_unwritable(exc):
                raise
            why = "the disk is full" if faults.is_disk_full(exc) else f"it is read-only ({exc})"
            self._note(
                f"could not {doing} in {self.directory}: {why}. Searches use the indexes in "
                "memory and nothing is lost; they are saved once the store can be written."
            )

    def _replayable(self, seq: int) -> bool:
        return schema.replayable(self._db, seq)

    def _chunk_count(self) -> int:
        return schema.chunk_count(self._db)

    # The vector index: in memory, saved to `vectors-<seq>.idx` now and then.

    def _load_vectors(self) -> None:
        seq = indexfiles.newest(self.directory, self._head())
        loaded = False
        if seq is not None:
            try:
                self._vectors = VectorIndex.load(
                    indexfiles.path_of(self.directory, indexfiles.STEM, seq),
                    self._hnsw_params(),
                    tag=self._tag(seq),
                )
                self._seq = seq
                loaded = self._replayable(seq)
            except ValueError as exc:
                self._note(f"{exc}; rebuilt the vector index from SQLite")
        if loaded:
            self._catch_up_vectors()
            count = self._chunk_count()
            if len(self._vectors) != count:
                loaded = False
                self._note(
                    f"the vector file disagreed with SQLite (it holds {len(self._vectors)} "
                    f"chunks, SQLite {count}); rebuilt the vector index from SQLite"
                )
        if not loaded:
            self._rebuild_vectors()

    def _rebuild_vectors(self) -> None:
        with self._lock:
            self._vectors = VectorIndex(self.dim, self._hnsw_params())
            self._db.execute("BEGIN")  # one snapshot: chunks and head agree
            try:
                head = self._head()
                for rows in schema.chunk_batches(self._db, "ch.id, ch.embedding", _REPLAY_BATCH):
                    self._add_vectors(rows)
            finally:
                self._db.execute("COMMIT")
            self._seq = head
            self._save_vectors()

    def _add_vectors(self, rows: Sequence[tuple]) -> None:
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            self._vectors.add(ids, vectors.reshape(len(rows), self.dim))

    def _catch_up_vectors(self) -> None:
        head = self._head()
        if head == self._seq:
            return
        if not self._replayable(self._seq):
            self._load_vectors()
            return
        added, deleted, _ = schema.logged(self._db, self._seq, head)
        self._vectors.delete(deleted)
        fresh = [c for c in added if c not in deleted]
        for start in range(0, len(fresh), _REPLAY_BATCH):
            part = fresh[start : start + _REPLAY_BATCH]
            self._add_vectors(
                self._db.execute(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({','.join('?' * len(part))}) "
                    "ORDER BY id",
                    part,
                ).fetchall()
            )
        self._seq = head

    def _save_vectors(self) -> None:
        seq = self._seq
        with self._or_note("save the index files"):
            indexfiles.save(self.directory, seq, self._vectors, tag=self._tag(seq))
            indexfiles.prune(self.directory, seq, self._head())
            # The log before both indexes' positions is not needed.
            kept = min(seq, self._keywords.on_disk())
            self._db.execute("DELETE FROM changes WHERE seq <= ?", (kept,))

    def _catch_up(self) -> None:
        """Apply logged changes past the indexes' positions (from this or another process)."""
        with self._lock:
            self._catch_up_vectors()
            self._keywords.catch_up(wait=False)

    def _save_if_behind(self) -> None:
        """Save the vector file once the log past it is long (`SAVE_AFTER`, or half the
        store): opening the store replays the log, so this bounds what a crash costs, and
        growing with the store keeps the saves' total work linear in what is ingested."""
        unsaved = self._db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        if unsaved >= max(SAVE_AFTER, len(self._vectors) // 2):
            self.sync()

    def sync(self) -> None:
        """Catch up with the log and persist the vector index (on close, and as writes go
        on); the keyword index is committed as it is written."""
        with self._lock:
            self._catch_up()
            if self._seq not in indexfiles.saved(self.directory, indexfiles.STEM):
                self._save_vectors()

    def _problems(self) -> list[str]:
        count = self._chunk_count()
        problems = []
        if len(self._vectors) != count:
            problems.append(f"vector index holds {len(self._vectors)} chunks, SQLite {count}")
        problems.extend(self._keywords.problems(count))
        return problems

    # -- reads -----------------------------------------------------------------------------

    def _allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        """Chunk ids passing the filters (sorted), or None when there is no filter.

        Kept per filter until the store changes: a filtered search repeats the same filter,
        and finding 10k chunk ids among 100k took 130 ms when the query read the chunk rows.
        """
        if not filters:
            return None
        where, args = tags.sqlite_where(filters)
        with self._lock:
            key = (self._generation(), where, tuple(args))
            cached = self._allowed.get(key)
            if cached is not None:
                return cached
            # Chunk ids through the content_id index alone: never the rows with their text
            # and embedding.
            rows = self._db.execute(
                "SELECT ch.id FROM chunks ch INDEXED BY chunks_content WHERE ch.content_id IN "
                "(SELECT d.content_id FROM documents d JOIN contents ct ON ct.id = d.content_id "
                f"WHERE {where})",
                args,
            ).fetchall()
            ids = np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            ids.flags.writeable = False  # shared between callers
            if len(self._allowed) >= 16 or any(k[0] != key[0] for k in self._allowed):
                self._allowed.clear()
            self._allowed[key] = ids
        return ids

    def _generation(self) -> tuple[int, int]:
        """Changes a cached filter may miss, not all of them in the change log (a path
        linked to stored content, a tag): commits by other connections (SQLite's
        data_version), then by this one."""
        return self._db.execute("PRAGMA data_version").fetchone()[0], self._commits

    def search_dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Ranking:
        allowed = self._allowed_ids(filters)
        with self._lock:
            self._catch_up()
            return self._vectors.search(vector, k, allowed=allowed)

    def search_keyword(self, query: str, k: int, filters: Filters | None = None) -> Ranking:
        with self._lock:
            self._catch_up()
            return self._keywords.search(query, k, filters)

    def records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not len(chunk_ids):
            return {}
        ids = [int(i) for i in chunk_ids]
        with self._lock:
            rows = self._db.execute(
                'SELECT ch.id, ch.text, ch.start, ch."end", ch.page, ch.heading, ct.title, '
                "ct.kind, (SELECT json_group_array(path) FROM (SELECT path FROM documents "
                "WHERE content_id = ch.content_id ORDER BY id)) FROM chunks ch "
                "JOIN contents ct ON ct.id = ch.content_id "
                f"WHERE ch.id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        return {
            r[0]: ChunkRecord(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], tuple(json.loads(r[8]))
            )
            for r in rows
        }

    def dump(self, after: str = "") -> Iterator[DocumentWrite]:
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT d.path, d.size, d.mtime_ns, ct.id, ct.hash, ct.pipeline, ct.kind, "
                    "ct.title, ct.text, ct.pages, ct.headings FROM documents d JOIN contents ct "
                    "ON ct.id = d.content_id WHERE d.path > ? ORDER BY d.path LIMIT 64",
                    (after,),
                ).fetchall()
                chunks = {
                    r[3]: self._db.execute(
                        'SELECT ord, text, start, "end", n_tokens, page, heading, text_hash, '
                        "embedding FROM chunks WHERE content_id = ? ORDER BY ord",
                        (r[3],),
                    ).fetchall()
                    for r in rows
                }
            if not rows:
                return
            for r in rows:
                stored = chunks[r[3]]
                vectors = np.frombuffer(b"".join(c[8] for c in stored), dtype=np.float32)
                yield schema.rebuilt_write(
                    r[:3], r[4:9], json.loads(r[9]), json.loads(r[10]),
                    [c[:7] for c in stored], [bytes(c[7]) for c in stored],
                    vectors.reshape(len(stored), self.dim),
                )  # fmt: skip
            after = rows[-1][0]

    def status(self, *, verify: bool = True) -> StoreStatus:
        with self._lock:
            self._catch_up()
            one = self._db.execute
            documents = one("SELECT COUNT(*) FROM documents").fetchone()[0]
            contents = one("SELECT COUNT(*) FROM contents").fetchone()[0]
            chunks = one("SELECT COUNT(*) FROM chunks").fetchone()[0]
            kinds = dict(
                one(
                    "SELECT ct.kind, COUNT(*) FROM documents d JOIN contents ct "
                    "ON ct.id = d.content_id GROUP BY ct.kind"
                ).fetchall()
            )
            problems = tuple(self._problems())
            notes = tuple(self._notes)
            tagged, annotations = tags.sqlite_summary(self._db)
            if verify and chunks and not problems:
                sample = self._vectors.ids()
                stored = np.array([r[0] for r in one("SELECT id FROM chunks ORDER BY id")])
                if not np.array_equal(sample, stored):
                    problems = ("vector index ids differ from SQLite's chunk ids",)
        return StoreStatus(
            str(self.directory),
            documents,
            contents,
            chunks,
            _bytes_in(self.directory),
            self.embedder_id,
            self.dim,
            self._vectors.kind,
            not problems,
            problems,
            kinds,
            notes,
            tagged,
            annotations,
        )


def _bytes_in(directory: Path) -> int:
    """Bytes of the files in `directory` and its folders (tantivy's); one deleted meanwhile
    (another process replacing an index file or merging segments) counts as nothing, not
    as an error."""
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                total += path.stat().st_size
    return total
