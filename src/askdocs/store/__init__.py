"""Where chunks, embeddings and documents live, behind one small protocol.

`SqliteStore` (one directory: SQLite + derived vector and keyword index files) is the
embedded default; `PostgresStore` (PostgreSQL + pgvector) implements the same `Store`
protocol for a shared server, so ingest, retrieval, the CLI and the HTTP API never change.
`open_store` picks the backend from the location: a `postgresql://` URL or a directory.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from askdocs.types import Chunk, Document

if TYPE_CHECKING:
    from askdocs.config import IndexSettings


@dataclass(frozen=True, slots=True)
class FileState:
    """What the store knows of a file on disk, to decide whether it changed."""

    size: int
    mtime_ns: int
    content_hash: str
    pipeline: str


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    """One file's new state. `document`/`chunks`/`embeddings` are None when the content
    (hash + pipeline) is already stored, e.g. an identical copy under another path."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    pipeline: str
    document: Document | None = None
    chunks: Sequence[Chunk] = ()
    embeddings: np.ndarray | None = None
    text_hashes: Sequence[bytes] = ()


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A stored chunk joined with its document, as search results need it."""

    chunk_id: int
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None
    title: str
    kind: str
    paths: tuple[str, ...]  # every path with this content, first added first


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A stored document as a listing shows it."""

    path: str
    title: str
    kind: str
    chunks: int
    size: int  # bytes of the file when it was ingested
    added_at: float  # Unix time
    updated_at: float


@dataclass(frozen=True, slots=True)
class StoreStatus:
    location: str
    documents: int
    contents: int
    chunks: int
    bytes_on_disk: int
    embedder: str
    dim: int
    vector_index: str
    in_sync: bool
    problems: tuple[str, ...] = field(default=())
    kinds: dict[str, int] = field(default_factory=dict)
    # What the store did or could not do that a user should know, though it is in sync:
    # index files found damaged and rebuilt, index files not saved on a full disk.
    notes: tuple[str, ...] = field(default=())
    tags: dict[str, int] = field(default_factory=dict)  # tag key -> documents that have it
    annotations: tuple[str, ...] = field(default=())  # names of the stored annotations


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict a search to some files: a path glob (`*.pdf`, `*/notes/*`), kinds, and/or
    document tags (`(("topic", "3"), ("label", "invoice"))`: every pair must hold).

    The glob is matched against the whole stored path, case-sensitively; one that starts
    with neither `/` nor `*` matches at any depth (`notes/*.md` is `*notes/*.md`).
    """

    path_glob: str | None = None
    kinds: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.path_glob or self.kinds or self.tags)

    def glob(self) -> str | None:
        g = self.path_glob
        return g if not g or g.startswith(("/", "*")) else f"*{g}"

    def kind_names(self) -> tuple[str, ...]:
        return tuple(k.lower().lstrip(".") for k in self.kinds)

    def admits(self, path: str, kind: str, tagged: set[str] | None = None) -> bool:
        """Whether a document passes, checked in Python (the stores check in SQL): `tagged`
        holds the paths that carry every tag asked for (None: no tag asked)."""
        glob, kinds = self.glob(), self.kind_names()
        if glob and not fnmatch.fnmatchcase(path, glob):
            return False
        if kinds and kind not in kinds:
            return False
        return tagged is None or path in tagged


Ranking = tuple[np.ndarray, np.ndarray]  # chunk ids (int64) and scores, best first


class Store(Protocol):
    """The storage backend: what ingest, search and administration need, nothing more.

    Writes are per-batch transactions; searches see committed data, from this process or
    another. `KnowledgeBase` is the only caller: the CLI and the server go through it.
    """

    embedder_id: str
    dim: int

    # -- ingest ----------------------------------------------------------------------------

    def writing(self, what: str = "write") -> AbstractContextManager[None]:
        """Exclusive write access across processes, held from deciding what to write (is
        this content stored? this path new?) to the commit; re-entrant; readers never wait."""
        ...

    def file_state(self, path: str) -> FileState | None: ...

    def has_content(self, content_hash: str, pipeline: str) -> bool: ...

    def cached_embeddings(self, text_hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]: ...

    def write(self, writes: Sequence[DocumentWrite]) -> None:
        """Store a batch in one transaction. A write without `document` links its path to
        stored content; for a path already holding that content it records the new size
        and mtime only (a file touched, not changed)."""
        ...

    def remove(self, paths: Iterable[str]) -> int:
        """Forget these exact paths; content no other path shares is deleted."""
        ...

    def tag(self, key: str, values: Mapping[str, str | None]) -> int:
        """Set the document tag `key` to a value for each path (None removes it), in one
        transaction; paths not stored are skipped. Returns how many documents changed.
        Tags belong to a path and go when it is removed."""
        ...

    def annotate(self, name: str, value: str | None) -> None:
        """Keep the text `value` (JSON, a few hundred KB at most: a topic table) under
        `name` with the store, replacing what was there; None deletes it."""
        ...

    # -- reads -----------------------------------------------------------------------------

    def tags(self, key: str) -> dict[str, str]:
        """path -> value of the tag `key`, for every stored path that has it."""
        ...

    def annotation(self, name: str) -> str | None:
        """The text kept under `name` (`annotate`), or None."""
        ...

    def documents(self) -> list[DocumentInfo]:
        """Every stored path, sorted, with what a listing shows."""
        ...

    def search_dense(
        self, vector: np.ndarray, k: int, filters: Filters | None = None
    ) -> Ranking: ...

    def search_keyword(self, query: str, k: int, filters: Filters | None = None) -> Ranking: ...

    def records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    def chunk_source(self, chunk_id: int) -> str | None:
        """The whole extracted text of the document holding this chunk (None: no such chunk);
        chunk and citation offsets index into it."""
        ...

    # -- administration --------------------------------------------------------------------

    def dump(self, after: str = "") -> Iterator[DocumentWrite]:
        """Every stored document after path `after`, in path order, as the complete write
        that stores it again (document, chunks, embeddings): what a migration copies."""
        ...

    def status(self, *, verify: bool = True) -> StoreStatus:
        """Counts and health; `verify=False` skips the consistency check (cheap to poll)."""
        ...

    def close(self) -> None: ...


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether a store location names a database server rather than a directory."""
    return str(location).startswith(URL_SCHEMES)


URL_SCHEMES = ("postgresql://", "postgres://")


def open_store(
    location: str | os.PathLike[str],
    *,
    embedder_id: str,
    dim: int,
    settings: IndexSettings | None = None,
    create: bool = True,
) -> Store:
    """The store at `location`: a PostgreSQL URL, or a directory (the embedded default)."""
    if is_url(location):
        from askdocs.store.postgres import PostgresStore

        return PostgresStore(
            str(location), embedder_id=embedder_id, dim=dim, settings=settings, create=create
        )
    from askdocs.store.sqlite import SqliteStore

    return SqliteStore(
        Path(location), embedder_id=embedder_id, dim=dim, settings=settings, create=create
    )


def recorded(location: str | os.PathLike[str]) -> tuple[str, int] | None:
    """(embedder id, dimension) the store at `location` was built with; None: no store."""
    if is_url(location):
        from askdocs.store.postgres import recorded as recorded_there

        return recorded_there(str(location))
    from askdocs.store.schema import recorded as recorded_here

    return recorded_here(Path(location))


def recorded_embedder(location: str | os.PathLike[str]) -> str | None:
    """The embedder id the store at `location` was built with; None if there is no store."""
    found = recorded(location)
    return found[0] if found else None
