"""Vector indexes over chunk embeddings: exact for small collections, HNSW (faiss) for large.

Both are *derived* from the store (SQLite keeps every embedding) and share one interface, so
`VectorIndex` can start exact and move to HNSW as the collection grows. Vectors are unit
length, so inner product is cosine similarity. Ids are int64 chunk ids.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from askdocs.config import IndexSettings

_DEFAULTS = IndexSettings()

FORMAT = "askdocs-vectors-2"
# The file ends with this magic and the CRC-32 of every byte before it: a bit flipped anywhere
# (in a vector, not only in a header) is caught before the index is used.
_TRAILER = struct.Struct("<4sI")
_TRAILER_MAGIC = b"AVC1"
_CHECK_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class HnswParams:
    """HNSW graph settings. The defaults are `IndexSettings`' (measured on 384-d MiniLM vectors,
    docs/benchmarks.md); below `threshold` vectors, exact search is fast enough and exact."""

    m: int = _DEFAULTS.hnsw_m
    ef_construction: int = _DEFAULTS.hnsw_ef_construction
    ef_search: int = _DEFAULTS.hnsw_ef_search
    threshold: int = _DEFAULTS.hnsw_threshold


@contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run faiss calls in this thread on one OpenMP thread, then restore the count.

    IndexIDMap translates result ids in an OpenMP parallel loop even for a single query:
    waking the second thread costs more than the HNSW search itself (measured 4-7x the CPU
    time), and on a busy machine it waits for scheduler time slices. The setting is per
    thread, so concurrent searches and index builds elsewhere keep their threads.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _dot(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`vectors @ query` on this thread alone, with faiss's SIMD inner-product kernel.

    For one query `@` is a BLAS gemv that OpenBLAS splits over every core. On an idle machine
    that is fastest (10k x 384: 0.3 ms, this 0.7 ms), but when other work shares the cores the
    split waits for time slices: 10-16 ms against 3 ms, measured with the load average at 9.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32)
    if vectors.ndim != 2 or query.shape != (vectors.shape[1],):
        raise ValueError(f"cannot score vectors {vectors.shape} against a query {query.shape}")
    scores = np.empty(len(vectors), dtype=np.float32)
    if len(vectors):
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(scores),
            faiss.swig_ptr(query),
            faiss.swig_ptr(vectors),
            vectors.shape[1],
            len(vectors),
        )
    return scores


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (ties: lower index first)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


def _array_reader(fh: BinaryIO) -> Any:
    """A faiss reader over the bytes of the uint8 array `np.save` wrote at this position.

    Streaming them into faiss, rather than `np.load` then `deserialize_index`, means a graph
    is held in memory once while it loads, not twice (1.8 GB less at peak for 1M vectors).
    """
    import faiss

    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    if dtype != np.uint8 or len(shape) != 1:
        raise ValueError(f"expected the graph as bytes, found {dtype} of shape {shape}")
    return faiss.PyCallbackIOReader(fh.read)


class ExactIndex:
    """Brute-force inner product over a contiguous matrix; deletes compact the matrix."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def ids(self) -> np.ndarray:
        return np.sort(self._ids[: self._size])

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        needed = self._size + len(ids)
        if needed > len(self._ids):  # grow geometrically: amortised O(1) appends
            capacity = max(needed, 2 * len(self._ids), 1024)
            self._ids = np.resize(self._ids, capacity)
            grown = np.zeros((capacity, self.dim), dtype=np.float32)
            grown[: self._size] = self._vectors[: self._size]
            self._vectors = grown
        self._ids[self._size : needed] = ids
        self._vectors[self._size : needed] = vectors
        self._size = needed

    def delete(self, ids: Iterable[int]) -> None:
        doomed = np.fromiter(ids, dtype=np.int64)
        if not len(doomed) or not self._size:
            return
        keep = ~np.isin(self._ids[: self._size], doomed)
        kept = int(keep.sum())
        self._ids[:kept] = self._ids[: self._size][keep]
        self._vectors[:kept] = self._vectors[: self._size][keep]
        self._size = kept

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._ids[: self._size], self._vectors[: self._size]

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, vectors = self.vectors()
        if allowed is not None:
            keep = np.isin(ids, allowed)
            ids, vectors = ids[keep], vectors[keep]
        if not len(ids) or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = _dot(vectors, query)
        best = _top_k(scores, k)
        return ids[best], scores[best]


class HnswIndex:
    """faiss HNSW graph keyed by chunk id; deletes are tombstones until the next rebuild."""

    def __init__(
        self, dim: int, params: HnswParams, index: Any = None, deleted: Iterable[int] = ()
    ) -> None:
        import faiss

        self.dim = dim
        self.params = params
        if index is None:
            inner = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = params.ef_construction
            index = faiss.IndexIDMap2(inner)
        self._index = index
        self._deleted: set[int] = set(deleted)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted)

    def ids(self) -> np.ndarray:
        all_ids = self._all_ids()
        return np.sort(all_ids[~np.isin(all_ids, list(self._deleted))])

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if self._deleted.intersection(ids.tolist()):
            # The graph still holds the old vectors under these ids: drop every tombstone
            # first, or a search could return the id scored by its deleted vector.
            self._compact()
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def delete(self, ids: Iterable[int]) -> None:
        # Only ids in the graph become tombstones: others would make len() undercount.
        doomed = np.fromiter((int(i) for i in ids), dtype=np.int64)
        present = doomed[np.isin(doomed, self._all_ids())]
        self._deleted.update(present.tolist())

    def _all_ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map)

    def _compact(self) -> None:
        ids, vectors = self.vectors()
        fresh = HnswIndex(self.dim, self.params)
        if len(ids):
            fresh.add(ids, vectors)
        self._index, self._deleted = fresh._index, set()

    @property
    def tombstone_ratio(self) -> float:
        return len(self._deleted) / max(1, int(self._index.ntotal))

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids()
        return ids, self._index.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim))

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if k <= 0 or not len(self):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        selector = None
        if allowed is not None:
            if self._deleted:  # a set difference over a wide filter costs ~20 ms per 100k ids
                allowed = np.setdiff1d(allowed, list(self._deleted), assume_unique=False)
            if len(allowed) <= max(1000, len(self) // 20):
                return self._search_subset(query, k, allowed)
            selector = faiss.IDSelectorBatch(allowed)
        elif self._deleted:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(list(self._deleted)))
        params = faiss.SearchParametersHNSW(efSearch=max(self.params.ef_search, k), sel=selector)
        with _one_omp_thread():
            scores, ids = self._index.search(
                query.reshape(1, -1).astype(np.float32), k, params=params
            )
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def _search_subset(
        self, query: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A narrow filter defeats graph search, so score the few allowed vectors exactly."""
        if not len(allowed):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = _dot(self._index.reconstruct_batch(allowed), query)
        best = _top_k(scores, k)
        return allowed[best], scores[best]


class VectorIndex:
    """Exact below `params.threshold` vectors, HNSW above; rebuilds HNSW when 20% is deleted."""

    def __init__(self, dim: int, params: HnswParams | None = None) -> None:
        self.dim = dim
        self.params = params or HnswParams()
        self._impl: ExactIndex | HnswIndex = ExactIndex(dim)

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self._impl, HnswIndex) else "exact"

    def __len__(self) -> int:
        return len(self._impl)

    def ids(self) -> np.ndarray:
        return self._impl.ids()

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self._impl.add(ids, vectors)
        if isinstance(self._impl, ExactIndex) and len(self._impl) >= self.params.threshold:
            self._rebuild(HnswIndex(self.dim, self.params))

    def delete(self, ids: Iterable[int]) -> None:
        self._impl.delete(ids)
        impl = self._impl
        if isinstance(impl, HnswIndex) and impl.tombstone_ratio > 0.2:
            target = (
                HnswIndex(self.dim, self.params)
                if len(impl) >= self.params.threshold
                else ExactIndex(self.dim)
            )
            self._rebuild(target)

    def _rebuild(self, target: ExactIndex | HnswIndex) -> None:
        ids, vectors = self._impl.vectors()
        target.add(ids.copy(), np.ascontiguousarray(vectors))
        self._impl = target

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._impl.search(np.asarray(query, dtype=np.float32).ravel(), k, allowed=allowed)

    def save(self, path: Path, *, tag: str = "") -> None:
        """Write atomically: a temp file in the same directory, fsync, then rename.

        `tag` names what the file belongs to (the store and its position); `load` with
        another tag refuses the file, so an index copied in from elsewhere is not trusted.
        """
        # A unique temp name: another process may be saving the same index at the same time.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                checked = _Checksummed(fh)
                self._write(checked, tag)
                fh.write(_TRAILER.pack(_TRAILER_MAGIC, checked.crc))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write(self, fh: _Checksummed, tag: str) -> None:
        np.save(fh, np.frombuffer(FORMAT.encode(), dtype=np.uint8))
        params = self.params
        np.save(
            fh,
            np.array(
                [self.dim, params.m, params.ef_construction, params.ef_search, params.threshold],
                dtype=np.int64,
            ),
        )
        np.save(fh, np.frombuffer(tag.encode(), dtype=np.uint8))
        if isinstance(self._impl, HnswIndex):
            import faiss

            np.save(fh, np.frombuffer(b"hnsw", dtype=np.uint8))
            np.save(fh, np.array(sorted(self._impl._deleted), dtype=np.int64))
            np.save(fh, faiss.serialize_index(self._impl._index))
        else:
            ids, vectors = self._impl.vectors()
            np.save(fh, np.frombuffer(b"exact", dtype=np.uint8))
            np.save(fh, ids)
            np.save(fh, vectors)

    @classmethod
    def load(
        cls, path: Path, params: HnswParams | None = None, *, tag: str | None = None
    ) -> VectorIndex:
        """Read a saved index; raises ValueError on a damaged or foreign file, or (given a
        `tag`) on a file saved with another tag."""
        try:
            with path.open("rb") as fh:
                if np.load(fh).tobytes().decode() != FORMAT:
                    raise ValueError(f"not an {FORMAT} file")
                _check_sum(fh)
                np.load(fh)  # the format, checked above
                dim, m, efc, efs, threshold = (int(v) for v in np.load(fh))
                saved_tag = np.load(fh).tobytes().decode()
                if tag is not None and saved_tag != tag:
                    raise ValueError(f"saved for {saved_tag!r}, not {tag!r}")
                index = cls(dim, params or HnswParams(m, efc, efs, threshold))
                index._read_impl(fh)
        # np.load raises ValueError for most damage, BadZipFile for bytes starting "PK".
        except (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: unreadable vector index ({exc})") from exc
        return index

    def _read_impl(self, fh: BinaryIO) -> None:
        kind = np.load(fh).tobytes()
        if kind == b"hnsw":
            import faiss

            deleted = np.load(fh)
            # efSearch is passed per query, so the saved graph needs no tuning here.
            generic = faiss.read_index(_array_reader(fh))
            raw = faiss.downcast_index(generic)
            generic.this.disown()  # the typed wrapper must own the native index
            raw.this.acquire()
            self._impl = HnswIndex(self.dim, self.params, raw, deleted.tolist())
        else:
            ids, vectors = np.load(fh), np.load(fh)
            self._impl.add(ids, vectors)


class _Checksummed:
    """A file being written that keeps the CRC-32 of everything written through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.crc = 0

    def write(self, data: bytes | memoryview) -> int:
        self.crc = zlib.crc32(data, self.crc)
        return self.fh.write(data)


def _check_sum(fh: BinaryIO) -> None:
    """Check the trailer's CRC-32 against the bytes before it, then rewind.

    Before any parsing: faiss trusts the sizes and neighbour lists it reads.
    """
    fh.seek(0)
    size = os.fstat(fh.fileno()).st_size
    if size < _TRAILER.size:
        raise ValueError("truncated (no checksum)")
    crc, left = 0, size - _TRAILER.size
    while left:
        block = fh.read(min(left, _CHECK_BLOCK))
        if not block:
            raise ValueError("truncated while reading")
        crc = zlib.crc32(block, crc)
        left -= len(block)
    magic, stored = _TRAILER.unpack(fh.read(_TRAILER.size))
    if magic != _TRAILER_MAGIC or stored != crc:
        raise ValueError("damaged (checksum mismatch)")
    fh.seek(0)
