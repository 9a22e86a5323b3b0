"""Where chunks, embeddings and documents live, behind one small protocol.

`SqliteStore` (one directory: SQLite + derived vector and keyword index files) is the
embedded default. Another backend (PostgreSQL + pgvector) implements the same `Store`
protocol, so ingest, retrieval and the CLI never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from askdocs.types import Chunk, Document


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


class Store(Protocol):
    """The storage backend. Writes are per-batch transactions; searches see committed data."""

    embedder_id: str
    dim: int

    def file_state(self, path: str) -> FileState | None: ...

    def has_content(self, content_hash: str, pipeline: str) -> bool: ...

    def cached_embeddings(self, text_hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]: ...

    def writing(self, what: str = "write") -> AbstractContextManager[None]:
        """Exclusive write access across processes, held from deciding what to write (is
        this content stored? this path new?) to the commit; re-entrant; readers never wait."""
        ...

    def write(self, writes: Sequence[DocumentWrite]) -> None: ...

    def touch(self, path: str, size: int, mtime_ns: int) -> None: ...

    def remove(self, paths: Iterable[str]) -> int: ...

    def paths(self) -> list[str]: ...

    def documents(self) -> list[DocumentInfo]: ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks), without `status()`'s consistency check: cheap enough to poll."""
        ...

    def chunk_source(self, chunk_id: int) -> str | None:
        """The whole extracted text of the document holding this chunk (None: no such chunk);
        chunk and citation offsets index into it."""
        ...

    def allowed_ids(
        self, *, path_glob: str | None = None, kinds: Sequence[str] | None = None
    ) -> np.ndarray | None: ...

    def search_dense(
        self, vector: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def search_keyword(
        self, query: str, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    def status(self) -> StoreStatus: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...
