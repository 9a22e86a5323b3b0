"""UMAP: unit-length embeddings down to a few dimensions (for HDBSCAN) or to two (a map).

Density means little in 384 dimensions, so HDBSCAN clusters in UMAP's few. A fixed `seed`
makes UMAP deterministic (it then runs on one thread). umap-learn compiles its numba kernels
on first use in each process (~7 s on a 2-core machine). Below 4,096 points UMAP finds the
neighbours exactly; past that it searches approximately (pynndescent), and that search's
kernels compile too (~20 s more). So from 4,096 up to `EXACT_UP_TO` points the neighbours
are found here, exactly, by blocks of dot products (7,600 texts: ~2 s), and given to UMAP;
the 2-D map reuses them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from askdocs.errors import MissingDependency

EXTRA = "pip install 'askdocs[topics]'"
UMAP_EXACT_BELOW = 4096  # UMAP's own threshold for computing every distance
EXACT_UP_TO = 50_000  # past this, n^2 dot products cost more than UMAP's own search
BLOCK = 2**24  # similarities computed at once (64 MB of float32)

Neighbours = tuple[np.ndarray, np.ndarray]  # (indices, cosine distances), each (n, k)


def umap_module() -> Any:
    try:
        import umap
    except ImportError as exc:
        raise MissingDependency(f"finding topics needs umap-learn: {EXTRA}") from exc
    return umap


def exact_neighbours(vectors: np.ndarray, neighbours: int) -> Neighbours | None:
    """`nearest` for UMAP with `neighbours`, or None where UMAP searches well itself: below
    `UMAP_EXACT_BELOW` vectors (exactly) and past `EXACT_UP_TO` (approximately)."""
    n = len(vectors)
    if not UMAP_EXACT_BELOW <= n <= EXACT_UP_TO:
        return None
    return nearest(np.asarray(vectors, np.float32), max(2, min(neighbours, n - 1)))


def nearest(vectors: np.ndarray, k: int) -> Neighbours:
    """Each unit vector's `k` nearest by cosine, itself first (as UMAP counts them).

    >>> v = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> indices, distances = nearest(v, 2)
    >>> indices.tolist(), (100 * distances).round().astype(int).tolist()  # in hundredths
    ([[0, 1], [1, 0], [2, 1]], [[0, 20], [0, 20], [0, 40]])
    """
    n = len(vectors)
    indices, distances = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    step = max(1, BLOCK // n)
    for start in range(0, n, step):
        similar = vectors[start : start + step] @ vectors.T
        rows = np.arange(len(similar))
        similar[rows, start + rows] = np.inf  # itself first, even beside a duplicate
        top = np.argpartition(-similar, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similar, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        near = 1 - np.take_along_axis(similar, top, axis=1)
        near[:, 0] = 0.0
        indices[start : start + step], distances[start : start + step] = top, near.clip(min=0)
    return indices, distances


def reduce(
    vectors: np.ndarray,
    *,
    dims: int,
    seed: int,
    neighbours: int = 15,
    min_dist: float = 0.0,
    known: Neighbours | None = None,
) -> np.ndarray:
    """`vectors` (n, d), unit length, as (n, dims) points: UMAP with the cosine metric.
    `known`: `exact_neighbours(vectors, neighbours)`, when an earlier call computed them."""
    n = len(vectors)
    if known is None:
        known = exact_neighbours(vectors, neighbours)
    model = umap_module().UMAP(
        n_components=dims,
        n_neighbors=max(2, min(neighbours, n - 1)),
        min_dist=min_dist,
        metric="cosine",
        random_state=seed,
        n_jobs=1,
        init="spectral" if n > dims + 1 else "random",  # spectral needs more points than dims
        precomputed_knn=known if known is not None else (None, None, None),
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by setting random_state", "transform will not be available":
        # both meant (one thread keeps it deterministic; nothing is transformed later)
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*precomputed_knn", category=UserWarning)
        return np.asarray(model.fit_transform(np.asarray(vectors, np.float32)), np.float32)
