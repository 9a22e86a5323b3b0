"""Move a store to another backend, e.g. from a directory to PostgreSQL and back, without
embedding anything again: `askdocs migrate --from DIR --to postgresql://...`.

Documents are copied in path order, a batch per transaction, with their extracted text,
chunks and embeddings; then their tags and the store's annotations. A copy that stops half
way is resumed by running it again: documents the target already holds with the same
content are skipped. At the end both stores must hold the same number of documents and
chunks, and the same checksum over everything copied (paths, file states, texts, chunk
spans, the embeddings' bytes, tags and annotations).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from askdocs.config import IndexSettings
from askdocs.errors import AskdocsError, NotFound
from askdocs.store import DocumentWrite, Store, open_store, recorded

BATCH = 32  # documents per transaction


class MigrationFailed(AskdocsError):
    """The target does not hold what the source holds after a migration."""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    source: str
    target: str
    documents: int
    chunks: int
    copied: int  # documents written by this run
    skipped: int  # documents the target held already (a resumed run)
    checksum: str
    seconds: float


def migrate(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    index: IndexSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH,
) -> MigrationReport:
    """Copy every document of the store at `source` into the store at `target` (created
    with the source's embedder if new), then verify; raises MigrationFailed when the two
    differ afterwards."""
    start = time.perf_counter()
    found = recorded(source)
    if found is None:
        raise NotFound(f"no askdocs store at {source}")
    embedder_id, dim = found
    with (
        open_store(source, embedder_id=embedder_id, dim=dim, settings=index, create=False) as a,
        open_store(target, embedder_id=embedder_id, dim=dim, settings=index) as b,
    ):
        total = a.status(verify=False).documents
        copied = skipped = 0
        batch: list[DocumentWrite] = []
        for write in a.dump():
            state = b.file_state(write.path)
            if state and (state.content_hash, state.pipeline) == (
                write.content_hash,
                write.pipeline,
            ):
                skipped += 1
            else:
                batch.append(write)
            if len(batch) >= batch_size:
                b.write(batch)
                copied += len(batch)
                batch = []
            if progress:
                progress(copied + skipped + len(batch), total)
        b.write(batch)
        copied += len(batch)
        _copy_tags(a, b)
        return _verified(a, b, copied, skipped, time.perf_counter() - start)


def _copy_tags(a: Store, b: Store) -> None:
    """Every tag key and annotation of `a` into `b`, a key's tags made equal (a resumed run
    also takes back a tag `a` no longer has)."""
    held = a.status(verify=False)
    for key in held.tags:
        b.tag(key, {**dict.fromkeys(b.tags(key)), **a.tags(key)})
    for name in held.annotations:
        b.annotate(name, a.annotation(name))


def _verified(a: Store, b: Store, copied: int, skipped: int, seconds: float) -> MigrationReport:
    mine, theirs = a.status(verify=False), b.status(verify=False)
    if (mine.documents, mine.chunks) != (theirs.documents, theirs.chunks):
        raise MigrationFailed(
            f"{theirs.location} holds {theirs.documents} documents and {theirs.chunks} chunks, "
            f"{mine.location} {mine.documents} and {mine.chunks}: the target held other "
            "documents before, or another process changed one of the stores meanwhile"
        )
    digest = checksum(a)
    if checksum(b) != digest:
        raise MigrationFailed(
            f"{theirs.location} differs from {mine.location} (checksums); run the migration "
            "again into an empty target"
        )
    return MigrationReport(
        mine.location, theirs.location, mine.documents, mine.chunks, copied, skipped, digest,
        round(seconds, 3),
    )  # fmt: skip


def checksum(store: Store) -> str:
    """SHA-256 over every document a store holds, as `dump` gives them, then its tags and
    annotations: equal for two stores holding the same documents, texts, chunks, embeddings,
    tags and annotations, whatever the backend."""
    digest = hashlib.sha256()
    for w in store.dump():
        doc = w.document
        assert doc is not None and w.embeddings is not None
        head = [w.path, w.size, w.mtime_ns, w.content_hash, w.pipeline, doc.kind, doc.title,
                [[p.number, p.start, p.end] for p in doc.pages],
                [[h.start, h.level, h.text] for h in doc.headings],
                [[c.ord, c.text, c.start, c.end, c.n_tokens, c.page, c.heading] for c in w.chunks],
                [h.hex() for h in w.text_hashes]]  # fmt: skip
        digest.update(json.dumps(head, ensure_ascii=False).encode())
        digest.update(doc.text.encode())
        digest.update(w.embeddings.astype("<f4").tobytes())
    held = store.status(verify=False)
    for key in sorted(held.tags):
        digest.update(json.dumps(["tag", key, store.tags(key)], sort_keys=True).encode())
    for name in sorted(held.annotations):
        digest.update(json.dumps(["annotation", name, store.annotation(name)]).encode())
    return digest.hexdigest()
