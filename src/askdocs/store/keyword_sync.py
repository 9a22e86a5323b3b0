"""The embedded store's keyword index kept in step with SQLite.

The index (`store.keywords`, tantivy's folder) is shared by every process that opens the
store, and only the holder of the store's write lock writes it: a writer applies its own
changes right after its SQLite commit. A process that finds the index behind the log (a
writer between its two commits, or one that died between them) catches it up when the
write lock is free, and meanwhile leaves out of its results the chunks deleted since. When
the disk takes no writes, the process builds an index of its own in memory and says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from askdocs.config import IndexSettings
from askdocs.store import Filters, Ranking, faults, keywords, schema, tags
from askdocs.store.locking import WriteLock
from askdocs.text import Analyzer

_BATCH = 5000  # chunks read from SQLite and committed to the index at a time


class KeywordSync:
    """The keyword index of the store in `directory`, for `SqliteStore`, which calls it
    under its own lock."""

    def __init__(
        self,
        db: sqlite3.Connection,
        directory: Path,
        identity: str,
        settings: IndexSettings,
        write_lock: WriteLock,
        note: Callable[[str], None],
    ) -> None:
        self.db, self.directory, self.identity = db, directory, identity
        self.title_in_keywords = settings.title_in_keywords
        self.write_lock, self.note = write_lock, note
        self.analyzer = Analyzer()
        self.index: keywords.KeywordIndex  # set by `open`, or by `rebuild` if it fails
        self._opened = False
        self.seq = -1  # the log position the index holds, as this process last saw it
        self.in_memory = False  # the disk took no writes: the index is this process's own

    def spec(self) -> str:
        """What shapes the index besides the chunks; a change means a rebuild."""
        return f"{self.analyzer.id()}|title={int(self.title_in_keywords)}"

    def on_disk(self) -> int:
        """The log position the index on disk holds (0: none), below which the log may go."""
        position = keywords.recorded(self.directory)
        if position is None or position.store != self.identity or position.spec != self.spec():
            return 0
        return position.seq

    def problems(self, count: int) -> list[str]:
        """What `status` reports: the index at the log's head holding another number of
        chunks than SQLite's `count`."""
        if self.seq == schema.head(self.db) and len(self.index) != count:
            return [f"keyword index holds {len(self.index)} chunks, SQLite {count}"]
        return []

    # -- opening, catching up, rebuilding ----------------------------------------------------

    def open(self) -> None:
        """Open the index on disk and bring it up to the log; rebuild it when it is missing,
        damaged, from another store or position, or built another way."""
        try:
            self.index = keywords.KeywordIndex(self.directory, self.analyzer)
            self._opened = True
        except ValueError as exc:
            self.note(f"{exc}; rebuilt the keyword index from SQLite")
            self.rebuild()
            return
        problem = self._problem(self.index.position())
        if problem is None:
            self.catch_up(wait=True)
            count = schema.chunk_count(self.db)
            if self.seq == schema.head(self.db) and len(self.index) != count:
                problem = f"the keyword index holds {len(self.index)} chunks, SQLite {count}"
        if problem is not None:
            if problem:
                self.note(f"{problem}; rebuilt the keyword index from SQLite")
            self.rebuild()

    def _problem(self, position: keywords.Position | None) -> str | None:
        """Why the index cannot be caught up from the log ("" when that needs no note), or
        None when it can."""
        if position is None:
            return "" if not len(self.index) else "the keyword index records no position"
        if position.store != self.identity:
            return "the keyword index is from another store"
        if position.seq > schema.head(self.db):
            return "the keyword index is ahead of the database (restored from a backup?)"
        if position.spec != self.spec() or not schema.replayable(self.db, position.seq):
            return ""
        return None

    @contextmanager
    def _writer(self, *, wait: bool) -> Iterator[bool]:
        """Whether this process may write the index now: always in memory; on disk only
        with the store's write lock (waited for if `wait`)."""
        if self.in_memory:
            yield True
        elif wait:
            with self.write_lock.held("keyword index update"):
                yield True
        else:
            with self.write_lock.held_if_free("keyword index update") as free:
                yield free

    def catch_up(self, *, wait: bool) -> None:
        """Bring the index up to the log's head: see another process's commit, or write the
        logged changes when this process may (`_writer`)."""
        head = schema.head(self.db)
        if self.seq == head:
            return  # nothing logged since the index was last seen: no file to read
        if not self.in_memory:
            position = self.index.position()
            seq = position.seq if position else -1
            if seq != self.seq:
                self.index.reload()
                self.seq = seq
        if self.seq == head:
            return
        with self._writer(wait=wait) as free:
            if not free:
                return  # the writer commits its changes itself; searches skip its deletes
            position = self.index.position()
            if position is None or self._problem(position) is not None:
                self.rebuild()
                return
            added, deleted, changed = schema.logged(self.db, position.seq, head)
            fresh = [c for c in dict.fromkeys(added + changed) if c not in deleted]
            try:
                for start in range(0, max(len(fresh), 1), _BATCH):
                    self.index.apply(
                        deleted if start == 0 else (),
                        self._indexed(fresh[start : start + _BATCH]),
                        self._position(head) if start + _BATCH >= len(fresh) else None,
                    )
            except OSError as exc:
                if not faults.is_unwritable(exc):
                    raise
                self._to_memory(exc)
            self.seq = head

    def rebuild(self) -> None:
        """Recreate the index from SQLite alone (in memory if the disk takes no writes)."""
        with self._writer(wait=True):
            try:
                if not self.in_memory and (not self._opened or len(self.index)):
                    keywords.remove(self.directory)
                    self.index = keywords.KeywordIndex(self.directory, self.analyzer)
                    self._opened = True
                self._fill()
            except OSError as exc:
                if not faults.is_unwritable(exc):
                    raise
                self._to_memory(exc)

    def _fill(self) -> None:
        self.db.execute("BEGIN")  # one snapshot: chunks and head agree
        try:
            head = schema.head(self.db)
            for rows in schema.chunk_batches(self.db, "ch.id", _BATCH):
                self.index.apply((), self._indexed([r[0] for r in rows]), None)
        finally:
            self.db.execute("COMMIT")
        self.index.apply((), (), self._position(head))
        self.seq = head

    def _to_memory(self, exc: OSError) -> None:
        why = "the disk is full" if faults.is_disk_full(exc) else f"it is read-only ({exc})"
        self.note(
            f"could not save the keyword index in {self.directory}: {why}. Searches use an "
            "index in memory and nothing is lost; it is saved once the store can be written."
        )
        self.index = keywords.KeywordIndex(None, self.analyzer)
        self.in_memory = True
        self._fill()

    def _position(self, seq: int) -> keywords.Position:
        return keywords.Position(self.identity, seq, self.spec())

    def _indexed(self, chunk_ids: Sequence[int]) -> list[keywords.IndexedChunk]:
        """The chunks as the index holds them: text, kind, paths and tags."""
        if not chunk_ids:
            return []
        rows = self.db.execute(
            "SELECT ch.id, ch.content_id, ch.text, ct.title, ct.kind FROM chunks ch JOIN "
            f"contents ct ON ct.id = ch.content_id WHERE ch.id IN ({_marks(chunk_ids)}) "
            "ORDER BY ch.id",
            list(chunk_ids),
        ).fetchall()
        contents = sorted({r[1] for r in rows})
        paths: dict[int, list[str]] = {c: [] for c in contents}
        tagged: dict[int, list[tuple[str, str]]] = {c: [] for c in contents}
        for start in range(0, len(contents), 500):
            part = contents[start : start + 500]
            for content, path in self.db.execute(
                f"SELECT content_id, path FROM documents WHERE content_id IN ({_marks(part)})",
                part,
            ):
                paths[content].append(path)
            for content, key, value in self.db.execute(
                "SELECT d.content_id, t.key, t.value FROM tags t JOIN documents d ON "
                f"d.id = t.document_id WHERE d.content_id IN ({_marks(part)})",
                part,
            ):
                tagged[content].append((key, value))
        return [
            keywords.IndexedChunk(
                chunk_id,
                f"{title}\n{text}" if self.title_in_keywords and title else text,
                kind,
                tuple(paths[content]),
                tuple(dict.fromkeys(tagged[content])),
            )
            for chunk_id, content, text, title, kind in rows
        ]

    # -- search ------------------------------------------------------------------------------

    def search(self, query: str, k: int, filters: Filters | None) -> Ranking:
        """BM25 from tantivy. Its hits are checked against SQLite when filtered (a content
        under two paths carries both paths' tags, and a glob's bracket class is matched
        loosely) and when the index is behind the log."""
        stale = self._lag()
        want = k
        while True:
            ids, scores = self.index.search(query, want, filters)
            keep = np.ones(len(ids), dtype=bool)
            if stale:
                keep &= ~np.isin(ids, list(stale))
            if filters and len(ids):
                keep &= np.isin(ids, self._admitted(ids, filters))
            if keep.all() or len(ids) < want or keep.sum() >= k:
                return ids[keep][:k], scores[keep][:k]
            want *= 4

    def _lag(self) -> set[int]:
        """Chunks deleted since the index's position."""
        head = schema.head(self.db)
        if self.seq == head or self.in_memory:
            return set()
        return schema.logged(self.db, max(self.seq, 0), head)[1]

    def _admitted(self, ids: np.ndarray, filters: Filters) -> list[int]:
        where, args = tags.sqlite_where(filters)
        listed = [int(i) for i in ids]
        rows = self.db.execute(
            f"SELECT ch.id FROM chunks ch WHERE ch.id IN ({_marks(listed)}) AND EXISTS "
            "(SELECT 1 FROM documents d JOIN contents ct ON ct.id = d.content_id WHERE "
            f"d.content_id = ch.content_id AND {where})",
            [*listed, *args],
        ).fetchall()
        return [r[0] for r in rows]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))
