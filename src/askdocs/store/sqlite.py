"""The embedded store: one directory holding SQLite (the truth) and two derived index files.

SQLite (WAL) holds documents, their extracted text, chunks and embeddings, plus `changes`, a
log of chunk ids added and deleted. The vector and keyword indexes are files named after the
last change they contain (`vectors-<seq>.idx`, `keywords-<seq>.idx`, see `indexfiles`).
Opening the store loads the newest index files and replays the log past them; if a file is
missing, damaged, from another store or disagrees with SQLite, the indexes are rebuilt from
SQLite and `status()` says so. Content is stored once per (content hash, pipeline); paths
point at it, and carry their tags (`tags`). Writers, in this and other processes, take turns
through `writing()`.
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
from askdocs.keyword import Analyzer, KeywordIndex
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
from askdocs.store.locking import WriteLock
from askdocs.store.schema import ADD, DATABASE, DELETE
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
        self._analyzer = Analyzer()
        self._seq = 0
        self._commits = 0  # write transactions this connection committed
        self._allowed: dict[tuple[tuple[int, int], str, tuple[str, ...]], np.ndarray] = {}
        self._vectors = VectorIndex(dim, self._hnsw_params())
        self._keywords = self._new_keyword_index()
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

    def _new_keyword_index(self) -> KeywordIndex:
        return KeywordIndex(self._analyzer, k1=self.settings.bm25_k1, b=self.settings.bm25_b)

    def _head(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0

    def _tag(self, seq: int) -> str:
        """What index files at position `seq` of this store carry; others are not loaded."""
        return f"{self._identity}@{seq}"

    def _load_indexes(self) -> None:
        indexfiles.remove_stale_temp_files(self.directory)
        seq = indexfiles.newest_pair(self.directory, self._head())
        loaded, problems = False, []
        if seq is not None and self._keyword_spec_stored() == self._keyword_spec():
            try:
                self._vectors = VectorIndex.load(
                    indexfiles.path_of(self.directory, "vectors", seq),
                    self._hnsw_params(),
                    tag=self._tag(seq),
                )
                self._keywords = KeywordIndex.load(
                    indexfiles.path_of(self.directory, "keywords", seq), tag=self._tag(seq)
                )
                self._seq = seq
                loaded = self._replayable()
            except ValueError as exc:
                self._note(f"{exc}; rebuilt the indexes from SQLite")
        if loaded:
            self._catch_up()
            problems = self._problems()
            if problems:
                self._note(
                    f"the index files disagreed with SQLite ({'; '.join(problems)}); "
                    "rebuilt the indexes from SQLite"
                )
        if not loaded or problems:
            self._rebuild()

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

    def _keyword_spec(self) -> str:
        """What shapes the keyword index besides the chunks; a change means a rebuild."""
        s = self.settings
        return f"{self._analyzer.id()}|k1={s.bm25_k1}|b={s.bm25_b}|title={int(s.title_in_keywords)}"

    def _keyword_spec_stored(self) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'keyword_spec'").fetchone()
        return row[0] if row else None

    def _replayable(self) -> bool:
        """True when the log still holds every change after the indexes' position."""
        if self._seq == self._head():
            return True
        row = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()
        return row[0] is not None and row[0] <= self._seq + 1

    def _rebuild(self) -> None:
        """Recreate both derived indexes from SQLite alone."""
        with self._lock:
            self._vectors = VectorIndex(self.dim, self._hnsw_params())
            self._keywords = self._new_keyword_index()
            self._db.execute("BEGIN")  # one snapshot: chunks and head agree
            head = self._head()
            last = 0
            while True:
                ids = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT id FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                        (last, _REPLAY_BATCH),
                    )
                ]
                if not ids:
                    break
                self._add_to_indexes(ids)
                last = ids[-1]
            self._db.execute("COMMIT")
            self._seq = head
            with self._or_note("record the keyword settings"):
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('keyword_spec', ?)",
                    (self._keyword_spec(),),
                )
            self._save_indexes()

    def _catch_up(self) -> None:
        """Apply logged changes past the indexes' position (from this or another process)."""
        with self._lock:
            head = self._head()
            if head == self._seq:
                return
            if not self._replayable():
                self._load_indexes()
                return
            rows = self._db.execute(
                "SELECT chunk_id, op FROM changes WHERE seq > ? AND seq <= ?", (self._seq, head)
            ).fetchall()
            added = [c for c, op in rows if op == ADD]
            deleted = {c for c, op in rows if op == DELETE}
            self._vectors.delete(deleted)
            self._keywords.delete(deleted)
            fresh = [c for c in added if c not in deleted]
            for start in range(0, len(fresh), _REPLAY_BATCH):
                self._add_to_indexes(fresh[start : start + _REPLAY_BATCH])
            self._seq = head

    def _add_to_indexes(self, chunk_ids: Sequence[int]) -> None:
        rows = self._db.execute(
            "SELECT ch.id, ch.embedding, ch.text, ct.title FROM chunks ch "
            "JOIN contents ct ON ct.id = ch.content_id "
            f"WHERE ch.id IN ({','.join('?' * len(chunk_ids))}) ORDER BY ch.id",
            list(chunk_ids),
        ).fetchall()
        if not rows:
            return
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        self._vectors.add(ids, vectors.reshape(len(rows), self.dim))
        self._keywords.add(ids.tolist(), [self._keyword_text(r[2], r[3]) for r in rows])

    def _keyword_text(self, text: str, title: str) -> str:
        return f"{title}\n{text}" if self.settings.title_in_keywords and title else text

    def _save_indexes(self) -> None:
        seq = self._seq
        with self._or_note("save the index files"):
            indexfiles.save_pair(
                self.directory, seq, self._vectors, self._keywords, tag=self._tag(seq)
            )
            indexfiles.prune(self.directory, seq, self._head())
            # Both files now hold every change up to seq: the log before it is not needed.
            self._db.execute("DELETE FROM changes WHERE seq <= ?", (seq,))

    def _save_if_behind(self) -> None:
        """Save the index files once the log past them is long (`SAVE_AFTER`, or half the
        store): opening the store replays the log, so this bounds what a crash costs, and
        growing with the store keeps the saves' total work linear in what is ingested."""
        unsaved = self._db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        if unsaved >= max(SAVE_AFTER, len(self._vectors) // 2):
            self.sync()

    def sync(self) -> None:
        """Catch up with the log and persist both indexes (on close, and as writes go on)."""
        with self._lock:
            self._catch_up()
            if self._seq not in indexfiles.saved(self.directory, "vectors"):
                self._save_indexes()

    def _problems(self) -> list[str]:
        count = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        problems = []
        if len(self._vectors) != count:
            problems.append(f"vector index holds {len(self._vectors)} chunks, SQLite {count}")
        if len(self._keywords) != count:
            problems.append(f"keyword index holds {len(self._keywords)} chunks, SQLite {count}")
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
        allowed = self._allowed_ids(filters)
        with self._lock:
            self._catch_up()
            return self._keywords.search(query, k, allowed=allowed)

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
    """Bytes of the files in `directory`; one deleted meanwhile (another process replacing
    an index file) counts as nothing, not as an error."""
    total = 0
    for path in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                total += path.stat().st_size
    return total
