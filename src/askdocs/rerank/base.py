"""What every reranker shares: the protocol, its error, and ordering hits by scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from askdocs.errors import AskdocsError
from askdocs.types import Hit


class RerankError(AskdocsError):
    """A reranker failed, e.g. a remote one answered an error or something not a ranking."""


class Reranker(Protocol):
    """Reorders retrieved hits for a query."""

    id: str

    def rerank(self, query: str, hits: Sequence[Hit], *, top: int | None = None) -> list[Hit]:
        """`hits` best first, each with `scores["rerank"]` set, the best `top` (None: all)."""
        ...


def reorder(hits: Sequence[Hit], scores: Sequence[float], top: int | None) -> list[Hit]:
    """`hits` by descending score (ties keep their order), the best `top`, each a copy with
    `scores["rerank"]` set; its first-stage `score`, `scores` and `ranks` stay as they were."""
    if len(scores) != len(hits):
        raise RerankError(f"{len(scores)} scores for {len(hits)} passages")
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    if top is not None:
        order = order[: max(0, top)]
    return [
        replace(hits[i], scores={**hits[i].scores, "rerank": round(float(scores[i]), 6)})
        for i in order
    ]
