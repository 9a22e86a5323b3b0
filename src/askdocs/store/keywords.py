"""The embedded store's keyword index: BM25 over the Analyzer's terms, on tantivy.

Each chunk is one tantivy document: its id, the Analyzer's terms of its title and text on
tantivy's `whitespace` tokenizer (so both sides of a search are analysed by askdocs'
`Analyzer`, as PostgreSQL's index is), and the fields search filters use: every path that
holds the chunk's content, its kind, and its documents' tags as `key<US>value` terms. A
filter becomes a zero-score clause on those fields (a path glob a regular expression over
paths), never a set of chunk ids: at 1M chunks a 10% id set cost 117 ms a search, a kind
term 6 ms (docs/benchmarks.md, "Keyword index").

The index is derived data. SQLite holds the truth and its change log says what changed;
`apply` writes a batch of changes and commits it, and `keywords.json` next to the index
then records the log position the commit holds. A crash between the two leaves the
position behind the commit, never ahead of it, and replaying a change twice is harmless:
an added chunk replaces any copy of itself. Only the holder of the store's write lock
writes the index on disk; a process that cannot (a full or read-only disk) builds one in
memory from SQLite instead (`in_memory`).

BM25 ranks with tantivy's constants, `BM25_K1` and `BM25_B`, which the PostgreSQL store's
BM25 uses too, so both backends rank alike.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tantivy

from askdocs.store import Filters, Ranking
from askdocs.text import BM25_B, BM25_K1, Analyzer

__all__ = ["BM25_B", "BM25_K1", "IndexedChunk", "KeywordIndex", "Position"]

DIRECTORY, POSITION = "keywords", "keywords.json"
FORMAT = 1  # of the fields below and of `keywords.json`
_TAG_SEPARATOR = "\x1f"
_MAX_TERM_CHARS = 16_000  # tantivy drops terms over 65,530 bytes; 4 bytes a char at most
_MAGIC = 1337  # the last four bytes of every tantivy segment file, after its footer
_WRITER_HEAP = 64_000_000  # bytes; tantivy needs at least 15 MB per indexing thread


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """What the keyword index holds of a chunk."""

    id: int
    text: str  # title and text, as the store's settings say
    kind: str
    paths: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Position:
    """What `keywords.json` says: the store the index belongs to, the last change of that
    store's log it holds, and what else shaped it (analyser, title in the terms)."""

    store: str
    seq: int
    spec: str


class KeywordIndex:
    """A tantivy index of chunks in `directory / DIRECTORY`, or in memory (`directory`
    None). Raises ValueError when the files on disk cannot be opened."""

    def __init__(self, directory: Path | None, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.directory = directory
        self.schema = _schema()
        if directory is None:
            self._index = tantivy.Index(self.schema)
        else:
            folder = directory / DIRECTORY
            folder.mkdir(parents=True, exist_ok=True)
            _check_files(folder)
            try:
                self._index = tantivy.Index(self.schema, path=str(folder), reuse=True)
            except (ValueError, OSError) as exc:
                raise ValueError(f"the keyword index in {folder} cannot be read ({exc})") from exc
        # Reloaded by `reload()` only (after our commits, and when keywords.json says another
        # process moved it): tantivy's default reloads in a thread that watches the folder,
        # and went on reading segment files after the store had closed.
        self._index.config_reader(reload_policy="Manual")
        self._searcher = self._index.searcher()
        self._memory_position: Position | None = None

    @property
    def in_memory(self) -> bool:
        return self.directory is None

    def __len__(self) -> int:
        return int(self._searcher.num_docs)

    def ids(self) -> np.ndarray:
        """Every chunk id in the index, sorted (repeats would show a chunk indexed twice)."""
        n = len(self)
        if not n:
            return np.empty(0, dtype=np.int64)
        hits = self._searcher.search(tantivy.Query.all_query(), n, count=False).hits
        found = self._searcher.fast_field_values("id", [address for _, address in hits])
        return np.sort(np.array(found, dtype=np.int64))

    # -- position --------------------------------------------------------------------------

    def position(self) -> Position | None:
        """The position the index holds (None: unknown, as after a crash before the first
        commit or in a folder from elsewhere)."""
        if self.directory is None:
            return self._memory_position
        return recorded(self.directory)

    def _record(self, position: Position) -> None:
        if self.directory is None:
            self._memory_position = position
            return
        target = self.directory / POSITION
        tmp = target.with_name(f".{POSITION}.{os.getpid()}.tmp")
        data = {"format": FORMAT, "store": position.store, "seq": position.seq}
        tmp.write_text(json.dumps(data | {"spec": position.spec}), encoding="utf-8")
        os.replace(tmp, target)

    def reload(self) -> None:
        """See what the last commit, of this or another process, holds."""
        self._index.reload()
        self._searcher = self._index.searcher()

    # -- writes ----------------------------------------------------------------------------

    def apply(
        self,
        deleted: Iterable[int],
        upserted: Sequence[IndexedChunk],
        position: Position | None,
    ) -> None:
        """Delete chunks, add or replace others, commit, and record `position` (None: keep
        the last one, as between the batches of a longer replay). The caller holds the
        store's write lock (for an index on disk). A full disk raises OSError."""
        with _io_errors():
            writer = self._index.writer(_WRITER_HEAP, 1)
            try:
                gone = sorted({int(i) for i in deleted} | {c.id for c in upserted})
                for start in range(0, len(gone), 50_000):
                    part = gone[start : start + 50_000]
                    writer.delete_documents_by_query(
                        tantivy.Query.term_set_query(self.schema, "id", part)
                    )
                for chunk in upserted:
                    writer.add_document(self._document(chunk))
                writer.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # releases tantivy's own writer lock
        if position is not None:
            self._record(position)
        self.reload()

    def _document(self, chunk: IndexedChunk) -> tantivy.Document:
        return tantivy.Document(
            id=chunk.id,
            terms=" ".join(self._terms(chunk.text)),
            path=list(chunk.paths),
            kind=chunk.kind,
            tag=[f"{k}{_TAG_SEPARATOR}{v}" for k, v in chunk.tags],
        )

    def _terms(self, text: str) -> list[str]:
        """The Analyzer's terms of `text` that tantivy can index (documents and queries)."""
        return [t for t in self.analyzer.tokens(text) if len(t) <= _MAX_TERM_CHARS]

    # -- search ----------------------------------------------------------------------------

    def search(self, query: str, k: int, filters: Filters | None = None) -> Ranking:
        """The `k` best chunks for `query` by BM25, passing `filters` as far as the index's
        fields can tell (the store checks the hits against SQLite)."""
        tokens = self._terms(query)
        if not tokens or k <= 0:
            return _no_hits()
        should, must = tantivy.Occur.Should, tantivy.Occur.Must
        q = tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self.schema, "terms", t)) for t in tokens]
        )
        clauses = self._filter_clauses(filters) if filters else []
        if clauses:
            allowed = tantivy.Query.boolean_query([(must, c) for c in clauses])
            q = tantivy.Query.boolean_query(
                [(must, tantivy.Query.const_score_query(allowed, 0.0)), (must, q)]
            )
        hits = self._searcher.search(q, k, count=False).hits
        if not hits:
            return _no_hits()
        ids = self._searcher.fast_field_values("id", [address for _, address in hits])
        return np.array(ids, dtype=np.int64), np.array([s for s, _ in hits], dtype=np.float32)

    def _filter_clauses(self, filters: Filters) -> list[tantivy.Query]:
        clauses = []
        glob, kinds = filters.glob(), filters.kind_names()
        if glob and glob.strip("*"):
            clauses.append(tantivy.Query.regex_query(self.schema, "path", path_regex(glob)))
        if kinds:
            should = tantivy.Occur.Should
            clauses.append(
                tantivy.Query.boolean_query(
                    [(should, tantivy.Query.term_query(self.schema, "kind", k)) for k in kinds]
                )
            )
        for key, value in filters.tags:
            term = f"{key}{_TAG_SEPARATOR}{value}"
            clauses.append(tantivy.Query.term_query(self.schema, "tag", term))
        return clauses

    def nbytes(self) -> int:
        if self.directory is None:
            return 0
        return sum(p.stat().st_size for p in (self.directory / DIRECTORY).rglob("*") if p.is_file())


def path_regex(glob: str) -> str:
    """A regular expression (tantivy's syntax, matched against the whole path) that admits
    every path the SQLite GLOB `glob` does, and perhaps more: a bracket class becomes any
    one character. The store checks each hit against the exact GLOB.

    >>> path_regex("*/notes/*.md")
    '(?s).*/notes/.*\\\\x{2e}md'
    """
    out, i = ["(?s)"], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = glob.find("]", i + 2)  # "[]...]": the first "]" is a member
            if end < 0:
                out.append(".*")  # never closed: admit anything from here
                break
            out.append(".")
            i = end
        elif (ch.isalnum() and ch.isascii()) or ch in "/_ ":
            out.append(ch)
        else:
            out.append(f"\\x{{{ord(ch):x}}}")
        i += 1
    return "".join(out)


def recorded(directory: Path) -> Position | None:
    """The position `keywords.json` in a store's `directory` records, if it can be read."""
    try:
        data = json.loads((directory / POSITION).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            return None
        return Position(str(data["store"]), int(data["seq"]), str(data["spec"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove(directory: Path) -> None:
    """Delete the index on disk (its folder and position), before a rebuild."""
    (directory / POSITION).unlink(missing_ok=True)
    shutil.rmtree(directory / DIRECTORY, ignore_errors=True)


def _check_files(folder: Path) -> None:
    """Raise ValueError unless every file of the committed segments matches the checksum in
    its footer. tantivy checks none of them when it opens an index, and reads them through
    memory maps: a damaged file gave wrong results or crashed the process."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        segments = {str(s["segment_id"]).replace("-", "") for s in meta["segments"]}
    except FileNotFoundError:
        return  # a new index
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the keyword index in {folder} cannot be read ({exc})") from exc
    for path in folder.iterdir():
        if path.name.split(".")[0] not in segments:
            continue
        data = path.read_bytes()
        footer_length, magic = struct.unpack("<II", data[-8:]) if len(data) >= 8 else (0, 0)
        try:
            crc = json.loads(data[-8 - footer_length : -8])["crc"] if magic == _MAGIC else None
        except (ValueError, KeyError, TypeError):
            crc = None
        if crc is None or zlib.crc32(data[: -8 - footer_length]) != crc:
            raise ValueError(f"{path}: damaged keyword index file (checksum mismatch)")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    for name in ("path", "kind", "tag"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    return builder.build()


@contextlib.contextmanager
def _io_errors() -> Iterator[None]:
    """tantivy reports I/O failures as ValueError: a full disk becomes the OSError the
    store's fault handling knows."""
    try:
        yield
    except ValueError as exc:
        text = str(exc)
        if "No space left" in text or "os error 28" in text:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from exc
        if "Read-only file system" in text or "os error 30" in text:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS)) from exc
        if "Permission denied" in text or "os error 13" in text:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES)) from exc
        raise


def _no_hits() -> Ranking:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
