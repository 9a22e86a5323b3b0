"""Retrieval: dense, keyword and hybrid search over a store, returning `Hit`s.

Hybrid search asks each retriever for `depth` candidates and fuses them (RRF or a convex
combination of normalised scores). Every hit carries each retriever's score and rank, so a
caller can see why it ranks where it does. Its keyword search runs on a worker thread while
the query is embedded and searched by meaning: on PostgreSQL the two queries run at once in
two server processes; the embedded store serialises its searches, and the embedding still
overlaps the keyword search.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from askdocs.config import SearchSettings
from askdocs.embeddings import Embedder
from askdocs.errors import ConfigError
from askdocs.fusion import Ranking, fuse_convex, fuse_rrf
from askdocs.store import Filters, Store
from askdocs.types import Hit

__all__ = ["FUSIONS", "MODES", "Filters", "retrieve"]

MODES = ("dense", "keyword", "hybrid")
FUSIONS = ("rrf", "convex")
_KEYWORD_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="askdocs-keyword")


def retrieve(
    store: Store,
    embedder: Embedder,
    query: str,
    *,
    settings: SearchSettings,
    k: int | None = None,
    mode: str | None = None,
    filters: Filters | None = None,
) -> list[Hit]:
    """The `k` best chunks for `query`, best first."""
    mode = mode or settings.mode
    k = settings.k if k is None else k
    if mode not in MODES:
        raise ConfigError(f"unknown search mode '{mode}' (choose from {', '.join(MODES)})")
    if settings.fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion '{settings.fusion}' (choose {', '.join(FUSIONS)})")
    if not query.strip() or k <= 0:
        return []
    depth = k if mode != "hybrid" else max(k, settings.depth)
    rankings: dict[str, Ranking] = {}
    if mode == "keyword":
        rankings["keyword"] = store.search_keyword(query, depth, filters)
    else:
        keyword = (
            _KEYWORD_THREADS.submit(store.search_keyword, query, depth, filters)
            if mode == "hybrid"
            else None
        )
        vector = embedder.embed([query], truncate=True)[0]
        rankings["dense"] = store.search_dense(vector, depth, filters)
        if keyword is not None:
            rankings["keyword"] = keyword.result()
    ids, scores = _combine(rankings, mode, settings)
    return _hits(store, ids[:k], scores[:k], rankings)


def _combine(rankings: dict[str, Ranking], mode: str, settings: SearchSettings) -> Ranking:
    if mode != "hybrid":
        ids, scores = rankings[mode]
        return ids, scores.astype(np.float64)
    if settings.fusion == "rrf":
        return fuse_rrf(rankings, k=settings.rrf_k)
    w = settings.convex_weight
    return fuse_convex(rankings, weights={"dense": w, "keyword": 1.0 - w})


def _hits(
    store: Store, ids: np.ndarray, scores: np.ndarray, rankings: dict[str, Ranking]
) -> list[Hit]:
    per_retriever = {
        name: {
            int(i): (float(s), rank)
            for rank, (i, s) in enumerate(zip(r_ids, r_scores, strict=True), 1)
        }
        for name, (r_ids, r_scores) in rankings.items()
    }
    records = store.records(ids.tolist())
    hits = []
    for chunk_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
        record = records.get(chunk_id)
        if record is None:  # deleted between search and lookup
            continue
        found = {n: r[chunk_id] for n, r in per_retriever.items() if chunk_id in r}
        hits.append(
            Hit(
                chunk_id=chunk_id,
                text=record.text,
                path=record.paths[0],
                title=record.title,
                kind=record.kind,
                start=record.start,
                end=record.end,
                page=record.page,
                heading=record.heading,
                score=score,
                scores={n: s for n, (s, _) in found.items()},
                ranks={n: rank for n, (_, rank) in found.items()},
                also_in=record.paths[1:],
            )
        )
    return hits
