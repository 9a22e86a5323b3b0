"""BM25 keyword search over chunks: the keyword half of hybrid search.

The index is derived data: the SQLite store is the source of truth, calls `add` and `delete` as
chunks come and go, and saves or reloads the index file. Scores follow the Lucene BM25 variant,
identical to `bm25s.BM25(method="lucene")` given the same tokens:

    idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
    score(d) = sum over query tokens t of idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))

N, df and avgdl are taken over the live documents when the query runs, so results after any mix
of adds and deletes equal those of an index rebuilt from the live documents. Like bm25s (and
Lucene since 8.0) the constant factor (k1 + 1) of the textbook formula is left out: it scales
every score alike and changes no ranking. A token repeated in the query counts once per
occurrence, as in bm25s ("cat cat" weighs "cat" twice). `allowed` only filters results; it does
not change N, df or avgdl.

    >>> index = KeywordIndex()
    >>> index.add([1, 2], ["The cat sat on the mat.", "Dogs chase cats."])
    >>> index.search("cats", k=5)[0]
    array([1, 2])

Not thread-safe: the store serialises writes; concurrent searches without writes are fine.
Terms whose documents were all deleted stay in the vocabulary (a few dozen bytes each) until the
index is rebuilt.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from askdocs._keyword_segments import (
    Query,
    Segment,
    build_segment,
    evaluate,
    locate,
    merge_plan,
    merge_segments,
    segment_arrays,
    segment_from_arrays,
)
from askdocs.text import Analyzer
from askdocs.text import words as _words

_ENCODE_BATCH = 4096  # texts tokenised per step of add(): bounds the Python lists alive at once

# File layout: a fixed prelude (magic, format version, header length, header crc32), a JSON
# header describing every array (dtype, shape, offset from the data start, crc32), then the raw
# arrays, each 64-byte aligned so they load as zero-copy views.
_MAGIC = b"ASKDOCS-KEYWORD\n"
_FORMAT_VERSION = 1
_PRELUDE = struct.Struct("<16sIQI")
_ALIGN = 64


class KeywordIndex:
    """An incremental BM25 index from int64 chunk ids to their text (see the module docstring)."""

    def __init__(self, analyzer: Analyzer | None = None, *, k1: float = 1.2, b: float = 0.75):
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.analyzer = analyzer or Analyzer()
        self.k1 = float(k1)
        self.b = float(b)
        self._vocab: dict[str, int] = {}
        self._segments: list[Segment] = []
        self._n_live = 0
        self._total_length = 0  # tokens in live documents, for avgdl

    def __len__(self) -> int:
        return self._n_live

    def __repr__(self) -> str:
        return (
            f"KeywordIndex({self._n_live} docs, {len(self._vocab)} terms, "
            f"{len(self._segments)} segments, analyzer={self.analyzer.id()!r})"
        )

    def ids(self) -> np.ndarray:
        """The live ids, ascending."""
        parts = [seg.ids[seg.live] for seg in self._segments]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def nbytes(self) -> int:
        """Bytes held by the posting arrays (the vocabulary dict is not counted)."""
        return sum(seg.nbytes() for seg in self._segments)

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Index `texts` under `ids`. Raises ValueError if an id is repeated or already live."""
        ids_array = _as_ids(ids)
        if len(ids_array) != len(texts):
            raise ValueError(f"got {len(ids_array)} ids for {len(texts)} texts")
        if len(np.unique(ids_array)) != len(ids_array):
            raise ValueError("ids passed to add() must be unique")
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("texts must be strings")  # checked first so no batch lands half-added
        self._reject_live(ids_array)
        word_ids = _WordIds()
        for start in range(0, len(ids_array), _ENCODE_BATCH):
            stop = start + _ENCODE_BATCH
            lengths, tokens = self._encode(texts[start:stop], word_ids)
            self._segments.append(build_segment(ids_array[start:stop], lengths, tokens))
            self._n_live += len(lengths)
            self._total_length += int(lengths.sum())
            self._merge()

    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents by id; ids that are not live are ignored."""
        wanted = np.unique(_as_ids(ids))
        for seg in self._segments:
            local = seg.find_live(wanted)
            if len(local):
                self._total_length -= seg.kill(local)
                self._n_live -= len(local)
        # A segment that is mostly tombstones wastes memory and query time: rewrite it alone.
        self._segments = [
            merge_segments([seg]) if seg.n_dead > seg.n_live else seg
            for seg in self._segments
            if seg.n_live
        ]
        self._merge()

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best `k` (ids int64, scores float32) for `query`, best first, score > 0 only.

        `allowed`, if given, is a sorted int64 array of the only ids that may be returned.
        """
        return self.search_tokens(self.analyzer.tokens(query), k, allowed=allowed)

    def search_tokens(
        self, tokens: Sequence[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like `search`, for a query already turned into terms by this index's analyzer."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        allowed = _check_allowed(allowed)
        terms, counts = self._query_terms(tokens)
        if k == 0 or len(terms) == 0 or self._n_live == 0 or self._total_length == 0:
            return _no_hits()
        located = [loc for seg in self._segments if (loc := locate(seg, terms)) is not None]
        if not located:
            return _no_hits()
        df = np.zeros(len(terms), dtype=np.int64)
        for loc in located:
            df[loc.term] += loc.live_df
        n = self._n_live
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        weights = (idf * counts).astype(np.float32)
        avgdl = self._total_length / n
        return evaluate(located, Query(weights, avgdl, self.k1, self.b, k, allowed))

    def save(self, path: Path, *, tag: str = "") -> None:
        """Write the index to `path` atomically (temp file in the same folder, fsync, replace).

        `tag` names what the file belongs to; `load` with another tag refuses the file."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                _write_file(f, {**self._header(), "tag": tag}, self._arrays())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path, *, tag: str | None = None) -> KeywordIndex:
        """Read an index written by `save`. ValueError if the file is corrupt, from another
        format version or (given a `tag`) saved with another tag; rebuild the index from the
        store in that case."""
        header, arrays = _read_file(Path(path))
        if tag is not None and header.get("tag") != tag:
            raise ValueError(f"{path}: keyword index saved for {header.get('tag')!r}, not {tag!r}")
        try:
            spec = header["analyzer"]
            analyzer = Analyzer(spec["language"], spec["stem"], spec["stopwords"])
            index = cls(analyzer, k1=header["k1"], b=header["b"])
            n_terms = int(header["n_terms"])
            terms = arrays["vocab"].tobytes().decode("utf-8").split("\n") if n_terms else []
            segments = [
                segment_from_arrays(arrays, str(i), n_terms) for i in range(header["segments"])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: corrupt keyword index ({exc})") from exc
        if len(terms) != n_terms:
            raise ValueError(f"{path}: corrupt keyword index (vocabulary size)")
        if analyzer.id() != spec.get("id"):
            raise ValueError(
                f"{path}: index was built with analyzer {spec.get('id')!r}, this askdocs uses "
                f"{analyzer.id()!r}; rebuild the keyword index"
            )
        index._vocab = {t: i for i, t in enumerate(terms)}
        index._segments = segments
        index._n_live = sum(seg.n_live for seg in index._segments)
        index._total_length = sum(
            int(seg.lengths[seg.live].sum(dtype=np.int64)) for seg in index._segments
        )
        return index

    def _header(self) -> dict[str, object]:
        return {
            "analyzer": {
                "language": self.analyzer.language,
                "stem": self.analyzer.stem,
                "stopwords": self.analyzer.stopwords,
                "id": self.analyzer.id(),
            },
            "k1": self.k1,
            "b": self.b,
            "n_terms": len(self._vocab),
            "segments": len(self._segments),
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        # Terms are runs of word characters, so a newline can never occur inside one.
        vocab = "\n".join(self._vocab).encode("utf-8")
        arrays = {"vocab": np.frombuffer(vocab, dtype=np.uint8)}
        for i, seg in enumerate(self._segments):
            arrays.update(segment_arrays(seg, str(i)))
        return arrays

    def _encode(self, texts: Sequence[str], word_ids: _WordIds) -> tuple[np.ndarray, np.ndarray]:
        """Per-text token counts and all texts' term ids back to back; grows the vocabulary."""
        words = [_words(text) for text in texts]
        flat: list[int] = []
        for doc in words:
            flat.extend(map(word_ids.__getitem__, doc))
        tokens = np.array(flat, dtype=np.int64)
        new = tokens <= -2
        tokens[new] = word_ids.resolve(self.analyzer, self._vocab)[-2 - tokens[new]]
        raw_lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        kept = tokens >= 0
        doc_of_token = np.repeat(np.arange(len(texts)), raw_lengths)
        lengths = np.bincount(doc_of_token[kept], minlength=len(texts))
        return lengths, tokens[kept].astype(np.uint32)

    def _query_terms(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Known query terms and how often each occurs in the query.

        Terms are ordered by their text, not their id: ids depend on insertion history, and a
        fixed order keeps float sums, hence scores, identical to a rebuilt index.
        """
        counted = sorted((t, c) for t, c in Counter(tokens).items() if t in self._vocab)
        terms = np.array([self._vocab[t] for t, _ in counted], dtype=np.uint32)
        counts = np.array([c for _, c in counted], dtype=np.float64)
        return terms, counts

    def _reject_live(self, ids: np.ndarray) -> None:
        wanted = np.unique(ids)
        for seg in self._segments:
            local = seg.find_live(wanted)
            if len(local):
                raise ValueError(
                    f"id {int(seg.ids[local[0]])} is already in the keyword index; "
                    "delete it before adding it again"
                )

    def _merge(self) -> None:
        while (plan := merge_plan([seg.n_live for seg in self._segments])) is not None:
            merged = merge_segments([self._segments[i] for i in plan])
            self._segments = [s for i, s in enumerate(self._segments) if i not in plan]
            self._segments.append(merged)


class _WordIds(dict[str, int]):
    """Surface word -> term id, -1 for a stop word, kept for the batches of one add().

    Most words of a batch repeat, and a dict hit is far cheaper than analysing a word again.
    A word seen for the first time gets a provisional id (-2, -3, ...) until `resolve`
    analyses all new words in one call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.new_words: list[str] = []

    def __missing__(self, word: str) -> int:
        provisional = self[word] = -2 - len(self.new_words)
        self.new_words.append(word)
        return provisional

    def resolve(self, analyzer: Analyzer, vocab: dict[str, int]) -> np.ndarray:
        """Give the new words their term ids (growing `vocab`); real id per provisional id."""
        terms = analyzer.terms(self.new_words)
        real = [-1 if t is None else vocab.setdefault(t, len(vocab)) for t in terms]
        self.update(zip(self.new_words, real, strict=True))
        self.new_words = []
        return np.array(real, dtype=np.int64)


def _as_ids(ids: Iterable[int]) -> np.ndarray:
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
        return ids.astype(np.int64).ravel()
    return np.fromiter(ids, dtype=np.int64)


def _check_allowed(allowed: np.ndarray | None) -> np.ndarray | None:
    if allowed is None:
        return None
    allowed = np.asarray(allowed, dtype=np.int64)
    if allowed.ndim != 1 or np.any(allowed[1:] < allowed[:-1]):
        raise ValueError("allowed must be a sorted 1-d array of ids")
    return allowed


def _no_hits() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


def _write_file(f: BinaryIO, header: dict[str, object], arrays: dict[str, np.ndarray]) -> None:
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    specs, offset = {}, 0
    for name, array in arrays.items():
        specs[name] = {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "offset": offset,
            "crc32": zlib.crc32(array),
        }
        offset = _aligned(offset + array.nbytes)
    blob = json.dumps({**header, "arrays": specs}).encode("utf-8")
    f.write(_PRELUDE.pack(_MAGIC, _FORMAT_VERSION, len(blob), zlib.crc32(blob)))
    f.write(blob)
    start = _aligned(_PRELUDE.size + len(blob))
    f.write(bytes(start - _PRELUDE.size - len(blob)))
    for name, array in arrays.items():
        f.write(bytes(start + specs[name]["offset"] - f.tell()))
        f.write(array.data)


def _read_file(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and zero-copy array views of a saved index; ValueError if anything is off."""
    data = path.read_bytes()
    if len(data) < _PRELUDE.size or not data.startswith(_MAGIC):
        raise ValueError(f"{path}: not an askdocs keyword index")
    _, version, size, crc = _PRELUDE.unpack_from(data)
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{path}: keyword index format version {version}, this askdocs reads version "
            f"{_FORMAT_VERSION}; rebuild the keyword index"
        )
    blob = data[_PRELUDE.size : _PRELUDE.size + size]
    if len(blob) != size or zlib.crc32(blob) != crc:
        raise ValueError(f"{path}: keyword index header is truncated or corrupt")
    start = _aligned(_PRELUDE.size + size)
    try:
        header = json.loads(blob)
        specs = header.pop("arrays")
        arrays = {
            name: _array_view(data, start, spec, f"{path}: array {name!r}")
            for name, spec in specs.items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: keyword index header is malformed ({exc!r})") from exc
    return header, arrays


def _array_view(data: bytes, start: int, spec: dict, what: str) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.hasobject:
        raise ValueError(f"{what} has an object dtype")
    count = int(np.prod(spec["shape"], dtype=np.int64))
    begin = start + spec["offset"]
    end = begin + count * dtype.itemsize
    if end > len(data):
        raise ValueError(f"{what} is truncated")
    view = memoryview(data)[begin:end]
    if zlib.crc32(view) != spec["crc32"]:
        raise ValueError(f"{what} is corrupt (checksum mismatch)")
    return np.frombuffer(view, dtype=dtype).reshape(spec["shape"])


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
