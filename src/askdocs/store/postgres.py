"""A store in PostgreSQL (16+) with pgvector (0.6+): the `Store` protocol on a shared server,
for many ingesting and searching processes over one collection.

The tables mirror the embedded store: content is stored once per (hash, pipeline), documents
are paths pointing at it, chunks hold their text, offsets and embedding. Dense search is
pgvector's HNSW index (cosine). Keyword search is PostgreSQL's full-text search (a GIN index
on a `tsvector`) over the very tokens askdocs' `Analyzer` makes (stemmed, stopwords out),
written as tsvector literals so that no PostgreSQL dictionary changes them: both backends
index the same terms. Ranking is BM25 computed in SQL from term statistics kept in the same
transactions as the chunks (`ts_rank_cd`, PostgreSQL's own, is the alternative measured in
docs/benchmarks.md). Filters are SQL conditions (`tags`); the tables are made and upgraded
by numbered migrations (`pgschema`). Writers take turns through a session advisory lock,
held from deciding what to write to the commit; readers never wait, and see what another
server committed on their next query.

Tables are named `askdocs_*` in the connection's current schema, so a database can hold
other things; `?options=-csearch_path%3Dname` in the URL puts a store in schema `name`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from askdocs.config import IndexSettings
from askdocs.errors import ConfigError, IndexMismatch, NotFound
from askdocs.store import (
    ChunkRecord,
    DocumentInfo,
    DocumentWrite,
    FileState,
    Filters,
    Ranking,
    StoreStatus,
    pg_keyword,
    tags,
)
from askdocs.store.pgschema import MIGRATIONS, SCHEMA_VERSION
from askdocs.store.schema import rebuilt_write
from askdocs.text import Analyzer

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ConfigError(
        "a PostgreSQL store needs the postgres extra: pip install 'askdocs[postgres]'"
    ) from exc

_LOCK_KEY = 0x61736B646F6373  # "askdocs": the writers' advisory lock
_MAX_POSITIONS = 255  # PostgreSQL keeps at most 256 positions per lexeme
log = logging.getLogger("askdocs.store")


def _tsvector(tokens: Sequence[str]) -> str:
    """A tsvector literal of `tokens` with their positions: read as is, no dictionary."""
    positions: dict[str, list[int]] = {}
    for at, token in enumerate(tokens[:16383], 1):
        positions.setdefault(token, []).append(at)
    return " ".join(
        "'"
        + t.replace("\\", "\\\\").replace("'", "''")
        + "':"
        + ",".join(map(str, p[:_MAX_POSITIONS]))
        for t, p in positions.items()
    )


def _array(vector: Any) -> np.ndarray:
    """A stored vector as float32: pgvector's loader gives a numpy array before 0.5, a
    `pgvector.Vector` from 0.5 on."""
    to_numpy = getattr(vector, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else vector, dtype=np.float32)


def _tsquery(terms: Iterable[str]) -> str:
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms)


def recorded(url: str) -> tuple[str, int] | None:
    """(embedder id, dimension) the store at `url` was built with; None if there is none."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            if conn.execute("SELECT to_regclass('askdocs_meta')").fetchone()[0] is None:
                return None
            meta = dict(conn.execute("SELECT key, value FROM askdocs_meta").fetchall())
    except psycopg.OperationalError as exc:
        raise NotFound(f"cannot reach the PostgreSQL store {_redacted(url)}: {exc}") from None
    return (meta["embedder"], int(meta["dim"])) if "embedder" in meta else None


def _redacted(url: str) -> str:
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


# pgvector's own defaults: the embedded index's m 48 / efConstruction 80 are tuned for faiss,
# and pgvector refuses them (it needs ef_construction >= 2 * m).
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64


class PostgresStore:
    """The `Store` on PostgreSQL + pgvector. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        *,
        embedder_id: str,
        dim: int,
        settings: IndexSettings | None = None,
        create: bool = True,
        pool_size: int = 4,
    ) -> None:
        self.url, self.location = url, _redacted(url)
        self.settings = settings or IndexSettings()
        self.ranking = self.settings.keyword_ranking
        if self.ranking not in ("bm25", "ts_rank_cd"):
            raise ConfigError(
                f"unknown index.keyword_ranking '{self.ranking}' (bm25 or ts_rank_cd)"
            )
        self._analyzer = Analyzer()
        self._thread_lock = threading.RLock()
        self._depth = 0
        try:
            self._lock_conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise NotFound(f"cannot reach the PostgreSQL store {self.location}: {exc}") from None
        try:
            self.embedder_id, self.dim = self._open(embedder_id, dim, create)
            self._pool = ConnectionPool(
                url, min_size=1, max_size=pool_size, configure=register_vector, open=True
            )
        except BaseException:
            self._lock_conn.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._thread_lock:
            if getattr(self, "_pool", None) is not None:
                self._pool.close()
                self._pool = None  # type: ignore[assignment]
            self._lock_conn.close()

    def _open(self, embedder_id: str, dim: int, create: bool) -> tuple[str, int]:
        """Create or migrate the tables (under the writers' lock: two processes may open a
        new store at once), then check the embedder."""
        conn = self._lock_conn
        exists = conn.execute("SELECT to_regclass('askdocs_meta')").fetchone()[0] is not None
        if not exists and not create:
            raise NotFound(f"no askdocs store at {self.location}; run `askdocs ingest` first")
        with self.writing("creation"):
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            version = self._version()
            if version > SCHEMA_VERSION:
                raise IndexMismatch(
                    f"{self.location} has store schema {version}, this askdocs reads "
                    f"{SCHEMA_VERSION} at most; upgrade askdocs"
                )
            with conn.transaction():
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    script = MIGRATIONS[number].format(dim=dim, m=HNSW_M, ef=HNSW_EF_CONSTRUCTION)
                    conn.execute(script.encode())
                    if number == 1:
                        conn.execute(
                            "INSERT INTO askdocs_meta VALUES ('embedder', %s), ('dim', %s), "
                            "('analyzer', %s), ('store_id', %s), ('created_at', %s)",
                            (embedder_id, str(dim), self._analyzer.id(), uuid.uuid4().hex,
                             str(time.time())),
                        )  # fmt: skip
                    conn.execute(
                        "INSERT INTO askdocs_meta VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        (str(number),),
                    )
            if 0 < version < 4:
                # The rewritten postings are read by index-only scans, which visit the table
                # itself until a vacuum marks its pages all-visible (autovacuum comes later).
                conn.execute("VACUUM (ANALYZE) askdocs_postings")
        meta = dict(conn.execute("SELECT key, value FROM askdocs_meta").fetchall())
        if meta["embedder"] != embedder_id or int(meta["dim"]) != dim:
            raise IndexMismatch(
                f"{self.location} was built with embedder {meta['embedder']} "
                f"(dim {meta['dim']}), not {embedder_id} (dim {dim}); open it with the "
                "embedder it was built with, or ingest into a new --store"
            )
        if meta["analyzer"] != self._analyzer.id():
            raise IndexMismatch(
                f"{self.location} indexed keywords with analyzer {meta['analyzer']}, this "
                f"askdocs uses {self._analyzer.id()}; migrate it to a new store"
            )
        return embedder_id, dim

    def _version(self) -> int:
        conn = self._lock_conn
        if conn.execute("SELECT to_regclass('askdocs_meta')").fetchone()[0] is None:
            return 0
        row = conn.execute("SELECT value FROM askdocs_meta WHERE key = 'schema_version'")
        found = row.fetchone()
        return int(found[0]) if found else 0

    @contextmanager
    def writing(self, what: str = "write") -> Iterator[None]:
        """Hold the writers' advisory lock (re-entrant in this process); another process's
        writer waits here, saying so after a moment."""
        with self._thread_lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    self._acquire(what)
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))

    def _acquire(self, what: str) -> None:
        conn = self._lock_conn
        if conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:
            return
        log.warning("%s: waiting for another writer of %s to finish", what, self.location)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    # -- writes ----------------------------------------------------------------------------

    def file_state(self, path: str) -> FileState | None:
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT d.size, d.mtime_ns, c.hash, c.pipeline FROM askdocs_documents d "
                "JOIN askdocs_contents c ON c.id = d.content_id WHERE d.path = %s",
                (path,),
            ).fetchone()
        return FileState(*row) if row else None

    def has_content(self, content_hash: str, pipeline: str) -> bool:
        with self._cursor() as cur:
            return self._content_id(cur, content_hash, pipeline) is not None

    @staticmethod
    def _content_id(cur: psycopg.Cursor[Any], content_hash: str, pipeline: str) -> int | None:
        row = cur.execute(
            "SELECT id FROM askdocs_contents WHERE hash = %s AND pipeline = %s",
            (content_hash, pipeline),
        ).fetchone()
        return row[0] if row else None

    def cached_embeddings(self, text_hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        unique = list(dict.fromkeys(bytes(h) for h in text_hashes))
        if not unique:
            return {}
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT DISTINCT ON (text_hash) text_hash, embedding FROM askdocs_chunks "
                "WHERE text_hash = ANY(%s)",
                (unique,),
            ).fetchall()
        return {bytes(h): _array(e) for h, e in rows}

    def write(self, writes: Sequence[DocumentWrite]) -> None:
        """Store a batch of files in one transaction."""
        if not writes:
            return
        with self.writing(), self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            replaced = [self._write_one(cur, item) for item in writes]
            # Only at the end of the batch: a later write in it may link to that content.
            for content_id in dict.fromkeys(c for c in replaced if c is not None):
                self._drop_if_orphan(cur, content_id)

    def _write_one(self, cur: psycopg.Cursor[Any], item: DocumentWrite) -> int | None:
        now = time.time()
        content_id = self._content_id(cur, item.content_hash, item.pipeline)
        if content_id is None:
            if item.document is None or item.embeddings is None:
                raise ValueError(f"{item.path}: new content needs its document and embeddings")
            content_id = self._insert_content(cur, item)
        row = cur.execute(
            "SELECT content_id FROM askdocs_documents WHERE path = %s", (item.path,)
        ).fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO askdocs_documents (path, content_id, size, mtime_ns, added_at, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (item.path, content_id, item.size, item.mtime_ns, now, now),
            )
            return None
        cur.execute(  # the same content again: a touched file, not an update
            "UPDATE askdocs_documents SET content_id = %s, size = %s, mtime_ns = %s, "
            "updated_at = CASE WHEN content_id = %s THEN updated_at ELSE %s END WHERE path = %s",
            (content_id, item.size, item.mtime_ns, content_id, now, item.path),
        )
        return row[0] if row[0] != content_id else None

    def _insert_content(self, cur: psycopg.Cursor[Any], item: DocumentWrite) -> int:
        doc = item.document
        assert doc is not None and item.embeddings is not None
        cur.execute(
            "INSERT INTO askdocs_contents (hash, pipeline, kind, title, text, pages, headings) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                item.content_hash, item.pipeline, doc.kind, doc.title, doc.text,
                psycopg.types.json.Jsonb([[p.number, p.start, p.end] for p in doc.pages]),
                psycopg.types.json.Jsonb([[h.start, h.level, h.text] for h in doc.headings]),
            ),
        )  # fmt: skip
        content_id = int(cur.fetchone()[0])
        embeddings = np.ascontiguousarray(item.embeddings, dtype=np.float32)
        rows, counts, df, tokens_total = [], [], Counter[str](), 0
        for chunk, vector, text_hash in zip(item.chunks, embeddings, item.text_hashes, strict=True):
            tokens = self._analyzer.tokens(self._keyword_text(chunk.text, doc.title))
            counts.append((Counter(tokens), len(tokens)))
            df.update(set(tokens))
            tokens_total += len(tokens)
            rows.append((
                content_id, chunk.ord, chunk.text, chunk.start, chunk.end, chunk.page,
                chunk.heading, chunk.n_tokens, bytes(text_hash), vector, _tsvector(tokens),
                len(tokens),
            ))  # fmt: skip
        cur.executemany(
            'INSERT INTO askdocs_chunks (content_id, ord, text, start, "end", page, heading, '
            "n_tokens, text_hash, embedding, terms, n_terms) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::tsvector, %s) RETURNING id",
            rows,
            returning=True,
        )
        ids = []
        while True:
            ids.append(cur.fetchone()[0])
            if not cur.nextset():
                break
        avgdl = pg_keyword.statistics(cur)[1] or tokens_total / max(len(rows), 1)
        with cur.copy("COPY askdocs_postings (term, chunk_id, tf, dl, impact) FROM STDIN") as copy:
            for chunk_id, (tf, dl) in zip(ids, counts, strict=True):
                for term, n in tf.items():
                    copy.write_row((term, chunk_id, n, dl, pg_keyword.impact(n, dl, avgdl)))
        self._count(cur, df, len(rows), tokens_total)
        return content_id

    @staticmethod
    def _count(cur: psycopg.Cursor[Any], df: Counter[str], chunks: int, tokens: int) -> None:
        """Add (or, negative, take away) chunks to the BM25 statistics."""
        if df:
            terms = sorted(df)  # one order for every writer: no deadlock between two
            cur.execute(
                "INSERT INTO askdocs_terms SELECT * FROM unnest(%s::text[], %s::bigint[]) "
                "ON CONFLICT (term) DO UPDATE SET df = askdocs_terms.df + EXCLUDED.df",
                (terms, [df[t] for t in terms]),
            )
        cur.execute(
            "UPDATE askdocs_stats SET chunks = chunks + %s, tokens = tokens + %s", (chunks, tokens)
        )

    def _drop_if_orphan(self, cur: psycopg.Cursor[Any], content_id: int) -> None:
        if cur.execute(
            "SELECT 1 FROM askdocs_documents WHERE content_id = %s LIMIT 1", (content_id,)
        ).fetchone():
            return
        gone = cur.execute(
            "SELECT u.lexeme, COUNT(*) FROM askdocs_chunks ch, unnest(ch.terms) u "
            "WHERE ch.content_id = %s GROUP BY u.lexeme",
            (content_id,),
        ).fetchall()
        n, tokens = cur.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_terms), 0) FROM askdocs_chunks WHERE content_id = %s",
            (content_id,),
        ).fetchone()
        self._count(cur, Counter({t: -c for t, c in gone}), -n, -tokens)
        cur.execute(
            "DELETE FROM askdocs_terms WHERE df <= 0 AND term = ANY(%s)", ([t for t, _ in gone],)
        )
        cur.execute(
            "DELETE FROM askdocs_postings WHERE chunk_id IN "
            "(SELECT id FROM askdocs_chunks WHERE content_id = %s)",
            (content_id,),
        )
        cur.execute("DELETE FROM askdocs_chunks WHERE content_id = %s", (content_id,))
        cur.execute("DELETE FROM askdocs_contents WHERE id = %s", (content_id,))

    def remove(self, paths: Iterable[str]) -> int:
        """Forget these paths and their tags; content no other path shares is deleted.
        Returns how many."""
        removed = 0
        with self.writing("remove"), self._pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            for path in paths:
                row = cur.execute(
                    "DELETE FROM askdocs_documents WHERE path = %s RETURNING content_id", (path,)
                ).fetchone()
                if row is not None:
                    self._drop_if_orphan(cur, row[0])
                    removed += 1
        return removed

    def tag(self, key: str, values: Mapping[str, str | None]) -> int:
        with self.writing("tag"), self._pool.connection() as conn, conn.transaction():
            return tags.postgres_tag(conn.cursor(), key, values)

    def annotate(self, name: str, value: str | None) -> None:
        with self.writing("annotate"), self._pool.connection() as conn, conn.transaction():
            tags.postgres_annotate(conn.cursor(), name, value)

    def _keyword_text(self, text: str, title: str) -> str:
        return f"{title}\n{text}" if self.settings.title_in_keywords and title else text

    # -- reads -----------------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT d.path, ct.title, ct.kind, (SELECT COUNT(*) FROM askdocs_chunks ch "
                "WHERE ch.content_id = d.content_id), d.size, d.added_at, d.updated_at "
                "FROM askdocs_documents d JOIN askdocs_contents ct ON ct.id = d.content_id "
                'ORDER BY d.path COLLATE "C"'
            ).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def chunk_source(self, chunk_id: int) -> str | None:
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT ct.text FROM askdocs_chunks ch JOIN askdocs_contents ct "
                "ON ct.id = ch.content_id WHERE ch.id = %s",
                (chunk_id,),
            ).fetchone()
        return row[0] if row else None

    def tags(self, key: str) -> dict[str, str]:
        with self._cursor() as cur:
            return tags.postgres_tags(cur, key)

    def annotation(self, name: str) -> str | None:
        with self._cursor() as cur:
            return tags.postgres_annotation(cur, name)

    def search_dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> Ranking:
        if k <= 0:
            return _ranking([])
        where, args = tags.postgres_where(filters)
        args |= {"v": np.asarray(vector, dtype=np.float32).ravel(), "k": k}
        ef = min(1000, max(self.settings.hnsw_ef_search, k))
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            rows = conn.execute(
                "SELECT id, 1 - (embedding <=> %(v)s) FROM askdocs_chunks ch WHERE TRUE"
                + where
                + " ORDER BY embedding <=> %(v)s LIMIT %(k)s",
                args,
            ).fetchall()
            if where and len(rows) < k:
                # The HNSW index filters after its search and may come back short: search the
                # allowed chunks exactly (the + 0 keeps the planner off the index).
                rows = conn.execute(
                    "SELECT id, 1 - (embedding <=> %(v)s) FROM askdocs_chunks ch WHERE TRUE"
                    + where
                    + " ORDER BY (embedding <=> %(v)s) + 0, id LIMIT %(k)s",
                    args,
                ).fetchall()
        return _ranking(rows)

    def search_keyword(self, query: str, k: int, filters: Filters | None = None) -> Ranking:
        counts = Counter(self._analyzer.tokens(query))
        if not counts or k <= 0:
            return _ranking([])
        where, args = tags.postgres_where(filters)
        with self._cursor() as cur:
            if self.ranking == "bm25":
                return _ranking(pg_keyword.search(cur, counts, k, where, args))
            sql = (
                "SELECT ch.id, ts_rank_cd(ch.terms, %(q)s::tsquery) AS score "
                "FROM askdocs_chunks ch WHERE ch.terms @@ %(q)s::tsquery" + where +
                " ORDER BY score DESC, ch.id LIMIT %(k)s"
            )  # fmt: skip
            args |= {"q": _tsquery(sorted(counts)), "k": k}
            return _ranking(cur.execute(sql, args).fetchall())

    def records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return {}
        with self._cursor() as cur:
            rows = cur.execute(
                'SELECT ch.id, ch.text, ch.start, ch."end", ch.page, ch.heading, ct.title, '
                "ct.kind, (SELECT array_agg(path ORDER BY id) FROM askdocs_documents "
                "WHERE content_id = ch.content_id) FROM askdocs_chunks ch "
                "JOIN askdocs_contents ct ON ct.id = ch.content_id WHERE ch.id = ANY(%s)",
                (ids,),
            ).fetchall()
        return {r[0]: ChunkRecord(*r[:8], tuple(r[8] or ())) for r in rows}

    # -- administration --------------------------------------------------------------------

    def dump(self, after: str = "") -> Iterator[DocumentWrite]:
        while True:
            with self._cursor() as cur:
                rows = cur.execute(
                    "SELECT d.path, d.size, d.mtime_ns, ct.id, ct.hash, ct.pipeline, ct.kind, "
                    "ct.title, ct.text, ct.pages, ct.headings FROM askdocs_documents d "
                    "JOIN askdocs_contents ct ON ct.id = d.content_id "
                    'WHERE d.path COLLATE "C" > %s ORDER BY d.path COLLATE "C" LIMIT 64',
                    (after,),
                ).fetchall()
                chunks = {
                    r[3]: cur.execute(
                        'SELECT ord, text, start, "end", n_tokens, page, heading, text_hash, '
                        "embedding FROM askdocs_chunks WHERE content_id = %s ORDER BY ord",
                        (r[3],),
                    ).fetchall()
                    for r in rows
                }
            if not rows:
                return
            for r in rows:
                stored = chunks[r[3]]
                vectors = np.array([_array(c[8]) for c in stored], np.float32)
                yield rebuilt_write(
                    r[:3], r[4:9], r[9], r[10], [c[:7] for c in stored],
                    [bytes(c[7]) for c in stored], vectors.reshape(len(stored), self.dim),
                )  # fmt: skip
            after = rows[-1][0]

    def status(self, *, verify: bool = True) -> StoreStatus:
        with self._cursor() as cur:
            documents, contents, chunks, counted = cur.execute(
                "SELECT (SELECT COUNT(*) FROM askdocs_documents), "
                "(SELECT COUNT(*) FROM askdocs_contents), (SELECT COUNT(*) FROM askdocs_chunks), "
                "(SELECT chunks FROM askdocs_stats)"
            ).fetchone()
            kinds = dict(
                cur.execute(
                    "SELECT ct.kind, COUNT(*) FROM askdocs_documents d JOIN askdocs_contents ct "
                    "ON ct.id = d.content_id GROUP BY ct.kind"
                ).fetchall()
            )
            size = cur.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relname LIKE 'askdocs\\_%%' AND c.relkind = 'r' "
                "AND pg_table_is_visible(c.oid)"
            ).fetchone()[0]
            tagged, annotations = tags.postgres_summary(cur)
            problems = []
            if counted != chunks:
                problems.append(f"keyword statistics count {counted} chunks, the table {chunks}")
            if verify:
                invalid = cur.execute(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname LIKE 'askdocs\\_%%' AND NOT i.indisvalid "
                    "AND pg_table_is_visible(c.oid)"
                ).fetchall()
                problems.extend(f"index {r[0]} is not valid; REINDEX it" for r in invalid)
        return StoreStatus(
            self.location, documents, contents, chunks, int(size), self.embedder_id, self.dim,
            "pgvector hnsw", not problems, tuple(problems), kinds, (), tagged, annotations,
        )  # fmt: skip


def _ranking(rows: Sequence[tuple[int, float]]) -> Ranking:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows))
    return ids, scores
