"""`KnowledgeBase`: the one stateful noun. Open a store, ingest into it, search it.

    with KnowledgeBase.open(config.load({"store": "./kb"})) as kb:
        kb.ingest(["~/notes"])
        for hit in kb.search("how do I descale the machine", k=5):
            print(hit.path, hit.page, hit.text[:80])

The embedder is loaded on first use (status and removal need no model) and kept for the life
of the object; open one KnowledgeBase per process and reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from askdocs import ingest as ingesting
from askdocs.config import Settings
from askdocs.embeddings import Embedder, MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.models import MINILM_WEIGHTS
from askdocs.retrieval import Filters, retrieve
from askdocs.store import Store, StoreStatus
from askdocs.store.sqlite import SqliteStore
from askdocs.types import Document, Hit

EMBEDDERS: dict[str, tuple[str, int]] = {
    # name -> (id stored with the index, dimension); the id is known without loading weights
    "minilm": (f"all-MiniLM-L6-v2:{MINILM_WEIGHTS.sha256[:12]}", 384),
}


def embedder_spec(settings: Settings) -> tuple[str, int]:
    try:
        base, dim = EMBEDDERS[settings.embedding.model]
    except KeyError:
        raise ConfigError(
            f"unknown embedding model '{settings.embedding.model}' "
            f"(available: {', '.join(EMBEDDERS)})"
        ) from None
    return f"{base}:max{settings.embedding.max_tokens}", dim


class KnowledgeBase:
    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder

    @classmethod
    def open(
        cls, settings: Settings, *, create: bool = True, embedder: Embedder | None = None
    ) -> KnowledgeBase:
        embedder_id, dim = (embedder.id, embedder.dim) if embedder else embedder_spec(settings)
        store = SqliteStore(
            settings.store, embedder_id=embedder_id, dim=dim, settings=settings.index, create=create
        )
        return cls(settings, store, embedder)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            e = self.settings.embedding
            self._embedder = MiniLMEmbedder(
                threads=e.threads or None, max_tokens=e.max_tokens, batch_tokens=e.batch_tokens
            )
        return self._embedder

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

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

    def remove(self, paths: Sequence[str | Path]) -> int:
        return ingesting.remove(paths, self.store)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        return retrieve(
            self.store,
            self.embedder,
            query,
            settings=self.settings.search,
            k=k,
            mode=mode,
            filters=filters,
        )

    def status(self) -> StoreStatus:
        return self.store.status()
