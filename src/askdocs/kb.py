"""`KnowledgeBase`: the one stateful noun. Open a store, ingest into it, search it.

    with KnowledgeBase.open(config.load({"store": "./kb"})) as kb:
        kb.ingest(["~/notes"])
        for hit in kb.search("how do I descale the machine", k=5):
            print(hit.path, hit.page, hit.text[:80])

Questions are answered with `ask` (the checked answer) or `stream_ask` (events as they come):

    with KnowledgeBase.open(config.load({"store": "./kb"})) as kb:
        answer = kb.ask("How do I descale the coffee maker?", style="full")
        print(answer.text)                      # "1. Fill the reservoir with ... [1] ..."
        for c in answer.citations:
            print(c.number, c.title, c.page, c.text)

The embedder and the language model are loaded on first use (status and removal need neither)
and kept for the life of the object; open one KnowledgeBase per process and reuse it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from askdocs import ingest as ingesting
from askdocs import rerank as reranking
from askdocs.answer.events import Event
from askdocs.answer.options import AskOptions, options_of
from askdocs.config import SearchSettings, Settings
from askdocs.embeddings import Embedder, embedder_id, embedder_identity, load_embedder
from askdocs.generation import Generator
from askdocs.rerank import Reranker
from askdocs.retrieval import Filters, retrieve
from askdocs.store import (
    ChunkRecord,
    DocumentInfo,
    Store,
    StoreStatus,
    open_store,
    recorded_embedder,
)
from askdocs.types import Answer, Document, Hit, Item


def embedder_spec(settings: Settings) -> tuple[str, int]:
    """(id, dimension) a store must record for `settings`; remote: asked of the server."""
    return embedder_identity(settings.embedding)


def _keep_store_encoder(settings: Settings) -> Settings:
    """`embedding.int8` chooses the encoder of new stores; an existing store keeps the one it
    was built with (int8 or float), so changing the setting never locks a store out."""
    e = settings.embedding
    if e.backend != "local":
        return settings
    other = dataclasses.replace(e, int8=not e.int8)
    if recorded_embedder(settings.store) == embedder_id(other.max_tokens, int8=other.int8):
        return dataclasses.replace(settings, embedding=other)
    return settings


class KnowledgeBase:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._generator = generator
        self._owns_generator = False
        self._rerankers: dict[str, Reranker | None] = {}

    @classmethod
    def open(
        cls, settings: Settings, *, create: bool = True, embedder: Embedder | None = None
    ) -> KnowledgeBase:
        if embedder is None and settings.embedding.backend == "remote":
            # No local model to load: the client learns the server's id and dimension once.
            embedder = load_embedder(settings.embedding)
        if embedder is None:
            settings = _keep_store_encoder(settings)
        vectors_id, dim = (embedder.id, embedder.dim) if embedder else embedder_spec(settings)
        store = open_store(
            settings.store, embedder_id=vectors_id, dim=dim, settings=settings.index, create=create
        )
        return cls(settings, store, embedder)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedding)
        return self._embedder

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generator(self) -> Generator:
        """The configured language model (`settings.generation`), loaded on first use."""
        if self._generator is None:
            from askdocs.config import api_key
            from askdocs.generation import open_generator

            generation = self.settings.generation
            self._generator = open_generator(generation, api_key(generation))
            self._owns_generator = True
        return self._generator

    def close(self) -> None:
        if self._owns_generator and self._generator is not None:
            self._generator.close()
            self._generator = None
        if self.settings.embedding.backend == "remote":  # its connection pool
            getattr(self._embedder, "close", lambda: None)()
        self.store.close()

    def ask(self, question: str, options: AskOptions | None = None, **changes: Any) -> Answer:
        """Answer `question` from the documents, every sentence checked against its citations.

        `options` (or keyword changes: `style="full"`, `k=6`, `extractive=True`, ...) say how;
        see `askdocs.answer.AskOptions`. An extractive answer loads no language model.
        """
        from askdocs.answer import ask

        o = options_of(options, changes)
        return ask(self, None if o.extractive else self.generator, question, o)

    def stream_ask(
        self, question: str, options: AskOptions | None = None, **changes: Any
    ) -> Iterator[Event]:
        """`ask` as events: `Retrieved(passages)`, `Token(text)` pieces, then `Final(answer)`."""
        from askdocs.answer import stream_answer

        o = options_of(options, changes)
        return stream_answer(self, None if o.extractive else self.generator, question, o)

    def ingest(
        self,
        paths: Sequence[str | Path],
        *,
        prune: bool = False,
        progress: Callable[[ingesting.Progress], None] | None = None,
    ) -> ingesting.IngestReport:
        return ingesting.ingest(
            paths, self.store, self.embedder, self.settings, prune=prune, progress=progress
        )

    def ingest_documents(
        self,
        documents: Sequence[Document],
        *,
        progress: Callable[[ingesting.Progress], None] | None = None,
    ) -> ingesting.IngestReport:
        """Store documents that are already text, keyed by `Document.path` (e.g. a corpus)."""
        return ingesting.ingest_documents(
            documents, self.store, self.embedder, self.settings, progress=progress
        )

    def remove(self, paths: Sequence[str | Path], *, exact: bool = False) -> int:
        """Forget the documents at `paths`: files, or every file under a directory; with
        `exact`, only these stored paths as they are (a server's delete, a URL-like key)."""
        if exact:
            return self.store.remove([str(p) for p in paths])
        return ingesting.remove(paths, self.store)

    def holds(self, path: str) -> bool:
        """Whether a document is stored under exactly `path`."""
        return self.store.file_state(path) is not None

    def documents(self) -> list[DocumentInfo]:
        """Every stored document, sorted by path."""
        return self.store.documents()

    def passage(self, chunk_id: int) -> tuple[ChunkRecord, str] | None:
        """A stored chunk and the whole text of its document (chunk offsets index into it),
        or None when there is no such chunk."""
        record = self.store.records([chunk_id]).get(chunk_id)
        text = self.store.chunk_source(chunk_id) if record else None
        return (record, text) if record is not None and text is not None else None

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
        settings: SearchSettings | None = None,
    ) -> list[Hit]:
        """The best `k` chunks for `query`. With a reranker (`rerank=True`, or None and
        `settings.rerank.backend` set), `settings.rerank.candidates` hits are retrieved and
        the reranker keeps the best `k` of them. `settings` replaces `self.settings.search`
        for this search (an evaluation trying fusion settings)."""
        reranker = self.reranker(rerank)
        top = k or self.settings.search.k
        depth = max(top, self.settings.rerank.candidates) if reranker else top
        hits = retrieve(
            self.store,
            self.embedder,
            query,
            settings=settings or self.settings.search,
            k=depth,
            mode=mode,
            filters=filters,
        )
        return reranking.rerank(reranker, query, hits, top=top) if reranker else hits

    def reranker(self, wanted: bool | None = None) -> Reranker | None:
        """The configured reranker (None: none configured); `wanted=True` without one
        configured gives the local one, `wanted=False` none."""
        if wanted is False:
            return None
        backend = self.settings.rerank.backend
        if wanted and backend == "none":
            backend = "local"
        if backend not in self._rerankers:
            rerank_settings = dataclasses.replace(self.settings.rerank, backend=backend)
            self._rerankers[backend] = reranking.open_reranker(
                rerank_settings, lambda: self.embedder
            )
        return self._rerankers[backend]

    def collection(self, filters: Filters | None = None, *, unit: str = "document") -> list[Item]:
        """The stored texts with their stored embeddings, in path order: one `Item` per
        document (`unit="document"`; its vector is the normalised mean of its chunks') or
        per chunk (`unit="chunk"`, ids `path#ord`). Nothing is embedded again."""
        if unit not in ("document", "chunk"):
            raise ValueError(f"unit must be 'document' or 'chunk', not {unit!r}")
        tagged = self._tagged(filters)
        items: list[Item] = []
        for write in self.store.dump():
            doc = write.document
            if doc is None or write.embeddings is None or not len(write.chunks):
                continue
            if filters and not filters.admits(write.path, doc.kind, tagged):
                continue
            if unit == "chunk":
                items.extend(
                    Item(f"{write.path}#{c.ord}", c.text, doc.title, write.embeddings[i])
                    for i, c in enumerate(write.chunks)
                )
                continue
            mean = write.embeddings.mean(axis=0)
            norm = float(np.linalg.norm(mean))
            items.append(Item(write.path, doc.text, doc.title, mean / norm if norm else mean))
        return items

    def _tagged(self, filters: Filters | None) -> set[str] | None:
        """Paths holding every tag the filters ask for (None: no tag asked)."""
        if not filters or not filters.tags:
            return None
        paths: set[str] | None = None
        for key, value in filters.tags:
            have = {p for p, v in self.store.tags(key).items() if v == value}
            paths = have if paths is None else paths & have
        return paths or set()

    def tag(self, key: str, values: dict[str, str | None]) -> int:
        """Set the document tag `key` (a label, a topic) for these paths, None removes it;
        searches can then filter on it (`Filters(tags=((key, value),))`). Returns how many
        documents changed; paths not stored are ignored."""
        return self.store.tag(key, values)

    def tags(self, key: str) -> dict[str, str]:
        """path -> value of the document tag `key`, for the documents that have it."""
        return self.store.tags(key)

    def annotate(self, name: str, value: str | None) -> None:
        """Keep the text `value` (JSON, a few hundred KB at most: e.g. what each topic tag
        means) under `name` with the store; None deletes it."""
        self.store.annotate(name, value)

    def annotation(self, name: str) -> str | None:
        """The text kept under `name` by `annotate`, or None."""
        return self.store.annotation(name)

    def status(self, *, verify: bool = True) -> StoreStatus:
        """Counts and health; `verify=False` skips the consistency check (cheap to poll)."""
        return self.store.status(verify=verify)
