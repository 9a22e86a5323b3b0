"""Ingest: files on disk -> documents -> chunks -> embeddings -> store, incrementally.

A file is skipped when its size and mtime are unchanged, or when its bytes hash to what is
stored. Identical content under two paths is stored once. Chunk embeddings are reused by the
hash of the text embedded, so editing one paragraph re-embeds only the chunks it touched.
Files are embedded in batches across files and committed together; a crash loses at most the
batch in flight, and re-running ingest picks up where it stopped.

Another process may write to the same store meanwhile (a second ingest, a `remove`). Each
batch therefore holds the store's write lock from a re-check of what is stored (files another
ingest stored are unchanged, content a remove deleted is chunked again) through embedding to
the commit: nothing is embedded or counted twice, and no file links to content that is gone.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from askdocs.chunking import split
from askdocs.config import Settings
from askdocs.embeddings import Embedder
from askdocs.errors import AskdocsError, StorageFull, UnreadableDocument
from askdocs.readers import SUPPORTED_SUFFIXES, read
from askdocs.store import DocumentWrite, Store
from askdocs.types import Chunk, Document

READER_VERSION = 2  # 2: HTML list items keep their "1. " and "- " markers
T = TypeVar("T")
_TITLE_TOKENS = 24  # at most this much of the title is prepended to each embedded chunk
_BATCH_FILES = 512  # files already stored elsewhere embed nothing; bound the batch anyway
UNSUPPORTED = "unsupported file type"  # the reason `discover` gives files it passes over


@dataclass(frozen=True, slots=True)
class Failure:
    path: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files of an unsupported type in folders
    chunks: int = 0  # chunks stored
    embedded: int = 0  # chunks that needed the model (the rest reused stored vectors)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    files_done: int
    files_total: int
    chunks: int
    elapsed: float


@dataclass(slots=True)
class _Pending:
    """A file read (and chunked unless its content was stored), waiting for its batch."""

    write: DocumentWrite  # without document, chunks or embeddings
    document: Document  # kept to chunk it after all, if its content is removed meanwhile
    chunks: list[Chunk]  # empty: link to the stored content
    embed_texts: list[str]


def pipeline_id(settings: Settings, embedder_id: str) -> str:
    """Everything that shapes stored chunks: change any of it and files are re-chunked."""
    c = settings.chunking
    return (
        f"{embedder_id}|chunk{c.size}/{c.overlap}|title{int(c.title_in_embedding)}"
        f"|reader{READER_VERSION}"
    )


def _absolute(path: str | Path) -> Path:
    """The absolute path with `..` and `.` folded, the one key a file is stored under."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def printable(path: str | Path) -> str:
    """The path as text that can be printed and stored: a name that is not valid UTF-8 (its
    bytes kept by Python as surrogates) shows them as escapes, `bad\\xff.txt`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def discover(
    paths: Iterable[str | Path], *, hidden: bool = False
) -> Iterator[tuple[Path, str | None]]:
    """Files to ingest under `paths`, each with None or the reason it cannot be ingested.

    Files in folders whose type no reader supports come with the reason `UNSUPPORTED`;
    a folder that cannot be listed comes with the reason it cannot.
    """
    for given in paths:
        path = _absolute(given)
        if path.is_dir():
            found = _walk(path, hidden)
        elif path.is_file():
            found = iter([(path, None)])
        elif path.exists() or path.is_symlink():
            found = iter([(path, "not a regular file (broken link, socket or device)")])
        else:
            found = iter([(path, "no such file or directory")])
        for file, reason in found:
            if reason is None and printable(file) != str(file):
                # SQLite stores text as UTF-8: such a name cannot be a key, nor be printed.
                reason = "the file name is not valid UTF-8; rename the file to ingest it"
            yield file, reason


def _walk(folder: Path, hidden: bool) -> Iterator[tuple[Path, str | None]]:
    unlisted: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=unlisted.append):
        yield from _unlisted(unlisted)
        dirs[:] = sorted(d for d in dirs if hidden or not d.startswith("."))
        for name in sorted(files):
            if not hidden and name.startswith("."):
                continue
            supported = Path(name).suffix.lower() in SUPPORTED_SUFFIXES
            yield Path(root) / name, None if supported else UNSUPPORTED
    yield from _unlisted(unlisted)


def _unlisted(errors: list[OSError]) -> Iterator[tuple[Path, str | None]]:
    """Folders `os.walk` could not list (it reports them through `onerror`, then goes on)."""
    for exc in errors:
        if isinstance(exc, PermissionError):
            reason = "permission denied: cannot list this folder; check its permissions"
        else:
            reason = f"cannot list this folder: {exc.strerror or exc}"
        yield Path(exc.filename or "?"), reason
    errors.clear()


def ingest(
    paths: Sequence[str | Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    prune: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> IngestReport:
    """Bring the store up to date with `paths`; with `prune`, forget files gone from them."""
    found = list(dict.fromkeys(discover(paths, hidden=settings.ingest.follow_hidden)))
    files = [entry for entry in found if entry[1] != UNSUPPORTED]
    pipeline = pipeline_id(settings, embedder.id)

    def prepare(entry: tuple[Path, str | None], report: IngestReport) -> _Pending | None:
        path, problem = entry
        if problem:
            raise UnreadableDocument(printable(path), problem)
        return _prepare(path, store, embedder, settings, pipeline, report)

    report = _run(
        files, lambda entry: printable(entry[0]), prepare, store, embedder, settings, progress
    )
    report.skipped = [printable(path) for path, problem in found if problem == UNSUPPORTED]
    if prune:
        report.removed = prune_missing(paths, store)
    return report


def ingest_documents(
    documents: Sequence[Document],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    progress: Callable[[Progress], None] | None = None,
) -> IngestReport:
    """Store already-extracted documents (a BEIR corpus, say), keyed by `document.path`.

    Unchanged documents (same title, kind and text) are skipped, as files are.
    """
    pipeline = pipeline_id(settings, embedder.id)

    def prepare(document: Document, report: IngestReport) -> _Pending | None:
        content = f"{document.kind}\0{document.title}\0{document.text}".encode()
        content_hash = hashlib.sha256(content).hexdigest()
        state = store.file_state(document.path)
        if state and (state.content_hash, state.pipeline) == (content_hash, pipeline):
            report.unchanged += 1
            return None
        write = DocumentWrite(document.path, len(content), 0, content_hash, pipeline)
        return _pending(write, document, store, embedder, settings)

    return _run(documents, lambda d: d.path, prepare, store, embedder, settings, progress)


def _run(
    items: Sequence[T],
    name: Callable[[T], str],
    prepare: Callable[[T, IngestReport], _Pending | None],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    progress: Callable[[Progress], None] | None,
) -> IngestReport:
    """Prepare each item, embedding and committing in batches; failures are recorded."""
    start = time.perf_counter()
    report = IngestReport()
    pending: list[_Pending] = []
    for done, item in enumerate(items, start=1):
        try:
            prepared = prepare(item, report)
        except StorageFull:
            raise  # not this file's fault: every file after it would fail the same way
        except AskdocsError as exc:
            reason = exc.reason if isinstance(exc, UnreadableDocument) else str(exc)
            report.failed.append(Failure(name(item), reason))
        except OSError as exc:
            report.failed.append(Failure(name(item), exc.strerror or str(exc)))
        else:
            if prepared is not None:
                pending.append(prepared)
        if (
            sum(len(p.embed_texts) for p in pending) >= settings.ingest.batch_chunks
            or len(pending) >= _BATCH_FILES
        ):
            _flush(pending, store, embedder, settings, report)
        if progress:
            progress(Progress(done, len(items), report.chunks, time.perf_counter() - start))
    _flush(pending, store, embedder, settings, report)
    report.seconds = time.perf_counter() - start
    return report


def _prepare(
    path: Path,
    store: Store,
    embedder: Embedder,
    settings: Settings,
    pipeline: str,
    report: IngestReport,
) -> _Pending | None:
    stat = path.stat()
    key = str(path)
    state = store.file_state(key)
    if state and (state.size, state.mtime_ns, state.pipeline) == (
        stat.st_size,
        stat.st_mtime_ns,
        pipeline,
    ):
        report.unchanged += 1
        return None
    max_bytes = int(settings.ingest.max_file_mb * 1_000_000)
    document = read(path, max_bytes=max_bytes)  # validates size, type and encoding first
    content_hash = _file_hash(path, document.kind)
    if state and (state.content_hash, state.pipeline) == (content_hash, pipeline):
        store.write([DocumentWrite(key, stat.st_size, stat.st_mtime_ns, content_hash, pipeline)])
        report.unchanged += 1
        return None
    write = DocumentWrite(key, stat.st_size, stat.st_mtime_ns, content_hash, pipeline)
    return _pending(write, document, store, embedder, settings)


def _pending(
    write: DocumentWrite,
    document: Document,
    store: Store,
    embedder: Embedder,
    settings: Settings,
) -> _Pending:
    """The file to write; chunked unless its content is stored (the batch checks again)."""
    if store.has_content(write.content_hash, write.pipeline):
        return _Pending(write, document, [], [])
    chunks, texts = chunk_for_embedding(document, embedder, settings)
    if not chunks:
        raise UnreadableDocument(write.path, "no text to index")
    return _Pending(write, document, chunks, texts)


def chunk_for_embedding(
    document: Document, embedder: Embedder, settings: Settings
) -> tuple[list[Chunk], list[str]]:
    """Chunks sized so that `title + chunk` fits the embedder, and the texts to embed."""
    c = settings.chunking
    prefix = ""
    if c.title_in_embedding and document.title:
        prefix = _clip_title(document.title, embedder) + "\n"
    room = embedder.max_tokens - embedder.count_tokens([prefix])[0]  # includes [CLS] [SEP]
    size = min(c.size, room)
    chunks = split(document, embedder.tokenizer, size=size, overlap=min(c.overlap, size // 2))
    return chunks, [prefix + chunk.text for chunk in chunks]


def _clip_title(title: str, embedder: Embedder) -> str:
    encoding = embedder.tokenizer.encode(title, add_special_tokens=False)
    if len(encoding.ids) <= _TITLE_TOKENS:
        return title
    return title[: encoding.offsets[_TITLE_TOKENS - 1][1]]


def _file_hash(path: Path, kind: str) -> str:
    """SHA-256 of the kind and the bytes: the same bytes read as .txt and as .md differ."""
    digest = hashlib.sha256(f"{kind}\0".encode())
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _flush(
    pending: list[_Pending],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    report: IngestReport,
) -> None:
    """Embed every pending chunk (reusing stored vectors) and commit the batch at once.

    Under the store's write lock, held from the re-check of what is stored to the commit:
    another process's ingest or remove can change the store between the files' preparation
    and now, but not during this.
    """
    if not pending:
        return
    with store.writing("ingest"):
        batch = _recheck(pending, store, embedder, settings, report)
        texts = [t for p, _ in batch for t in p.embed_texts]
        hashes = [hashlib.sha256(f"{embedder.id}\n{t}".encode()).digest() for t in texts]
        known = store.cached_embeddings(hashes)
        todo: dict[bytes, str] = {}  # each new text once, however many chunks repeat it
        for h, text in zip(hashes, texts, strict=True):
            if h not in known:
                todo.setdefault(h, text)
        if todo:
            known.update(zip(todo, embedder.embed(list(todo.values())), strict=True))
            report.embedded += len(todo)
        writes, offset, contents = [], 0, set()
        for item, is_update in batch:
            n = len(item.embed_texts)
            own = hashes[offset : offset + n]
            offset += n
            key = (item.write.content_hash, item.write.pipeline)
            fields: dict[str, object] = {}
            if n and key not in contents:
                contents.add(key)
                fields = {
                    "document": item.document,
                    "chunks": item.chunks,
                    "embeddings": np.stack([known[h] for h in own]),
                    "text_hashes": own,
                }
                report.chunks += n
            # else: content already stored, or a second identical file in this batch: a link
            writes.append(DocumentWrite(**{**_fields(item.write), **fields}))
            if is_update:
                report.updated += 1
            else:
                report.added += 1
        store.write(writes)
    pending.clear()


def _recheck(
    pending: list[_Pending],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    report: IngestReport,
) -> list[tuple[_Pending, bool]]:
    """What the batch still has to write, each with whether it updates a stored path.

    Files another ingest stored meanwhile are unchanged; content stored meanwhile is linked
    to, not embedded again; content removed meanwhile is chunked (and embedded) after all.
    """
    batch = []
    for item in pending:
        write = item.write
        state = store.file_state(write.path)
        if state and (state.content_hash, state.pipeline) == (write.content_hash, write.pipeline):
            report.unchanged += 1
            continue
        if store.has_content(write.content_hash, write.pipeline):
            item.chunks, item.embed_texts = [], []
        elif not item.chunks:
            item.chunks, item.embed_texts = chunk_for_embedding(item.document, embedder, settings)
            if not item.chunks:
                report.failed.append(Failure(write.path, "no text to index"))
                continue
        batch.append((item, state is not None))
    return batch


def _fields(write: DocumentWrite) -> dict[str, object]:
    return {name: getattr(write, name) for name in DocumentWrite.__slots__}


def stored_under(paths: Sequence[str | Path], store: Store) -> list[str]:
    """Stored paths equal to one of `paths` or inside one of them (as directories)."""
    roots = [str(_absolute(p)) for p in paths]
    return [
        p
        for p in (d.path for d in store.documents())
        if any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
    ]


def prune_missing(paths: Sequence[str | Path], store: Store) -> int:
    """Remove stored documents under `paths` whose files no longer exist."""
    return store.remove([p for p in stored_under(paths, store) if not os.path.exists(p)])


def remove(paths: Sequence[str | Path], store: Store) -> int:
    """Forget the documents at `paths` (files, or every file under a directory)."""
    return store.remove(stored_under(paths, store))
