"""Combining ranked lists from several retrievers into one ranking.

A ranking is `(ids, scores)`, best first. Fusion returns `(ids, fused_scores)`, best first,
ties broken by the smaller id so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Ranking = tuple[np.ndarray, np.ndarray]


def _ordered(scores: dict[int, float]) -> Ranking:
    items = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return (
        np.array([i for i, _ in items], dtype=np.int64),
        np.array([s for _, s in items], dtype=np.float64),
    )


def fuse_rrf(
    rankings: Mapping[str, Ranking], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> Ranking:
    """Reciprocal rank fusion: score(d) = sum over lists of w / (k + rank(d)), ranks from 1.

    >>> ids, scores = fuse_rrf({"a": (np.array([7, 8]), np.array([.9, .5])),
    ...                         "b": (np.array([8]), np.array([3.0]))}, k=60)
    >>> ids.tolist(), [round(float(s), 5) for s in scores]
    ([8, 7], [0.03252, 0.01639])
    """
    fused: dict[int, float] = {}
    for name, (ids, _) in rankings.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, doc in enumerate(ids.tolist(), start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return _ordered(fused)


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a list whose scores are all equal maps to 1.

    >>> min_max(np.array([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    if not len(scores):
        return scores.astype(np.float64)
    low, high = float(scores.min()), float(scores.max())
    if high == low:
        return np.ones(len(scores))
    return (scores.astype(np.float64) - low) / (high - low)


def fuse_convex(rankings: Mapping[str, Ranking], *, weights: Mapping[str, float]) -> Ranking:
    """Convex combination of min-max normalised scores; a list that misses a doc gives it 0.

    >>> ids, scores = fuse_convex({"dense": (np.array([1, 2]), np.array([.8, .4])),
    ...                            "keyword": (np.array([2, 3]), np.array([9.0, 3.0]))},
    ...                           weights={"dense": .5, "keyword": .5})
    >>> ids.tolist(), scores.tolist()
    ([1, 2, 3], [0.5, 0.5, 0.0])
    """
    fused: dict[int, float] = {}
    for name, (ids, scores) in rankings.items():
        w = weights.get(name, 0.0)
        for doc, s in zip(ids.tolist(), min_max(scores).tolist(), strict=True):
            fused[doc] = fused.get(doc, 0.0) + w * s
    return _ordered(fused)
