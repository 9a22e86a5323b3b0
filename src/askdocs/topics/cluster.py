"""Grouping: UMAP down to a few dimensions, HDBSCAN over them, then optional clean-ups
(outliers to their nearest topic, topics merged down to a wanted number).

HDBSCAN finds dense groups and leaves the rest as outliers (-1) rather than forcing every
text into a topic; UMAP first, because density means little in 384 dimensions. Both are
deterministic for a given `seed` (UMAP then runs on one thread).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from askdocs.errors import MissingDependency
from askdocs.topics.ctfidf import ctfidf

EXTRA = "pip install 'askdocs[topics]'"


def _umap() -> Any:
    try:
        import umap
    except ImportError as exc:
        raise MissingDependency(f"topics need umap-learn: {EXTRA}") from exc
    return umap


def reduce(vectors: np.ndarray, *, dims: int, seed: int, neighbours: int = 15) -> np.ndarray:
    """`vectors` (unit length) in `dims` dimensions, by UMAP with the cosine metric."""
    n = len(vectors)
    model = _umap().UMAP(
        n_components=dims, n_neighbors=max(2, min(neighbours, n - 1)), min_dist=0.0,
        metric="cosine", random_state=seed, n_jobs=1, init="spectral" if n > dims + 1 else "random",
    )  # fmt: skip
    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": meant
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return np.asarray(model.fit_transform(vectors), np.float32)


def density_groups(reduced: np.ndarray, *, min_size: int) -> np.ndarray:
    """HDBSCAN labels (0, 1, ...; -1 for outliers) of the reduced points."""
    try:
        from sklearn.cluster import HDBSCAN
    except ImportError as exc:
        raise MissingDependency(f"topics need scikit-learn: {EXTRA}") from exc
    return np.asarray(HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(reduced))


def centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Unit-length mean vector of each topic (outliers left out)."""
    out = {}
    for topic in sorted(set(labels.tolist()) - {-1}):
        mean = vectors[labels == topic].mean(axis=0)
        out[topic] = mean / (np.linalg.norm(mean) or 1.0)
    return out


def reassign(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every outlier moved to the topic whose centroid is most similar to it.

    >>> v = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2]])
    >>> reassign(v, np.array([0, 0, 1, -1])).tolist()
    [0, 0, 1, 0]
    """
    found = centroids(vectors, labels)
    outliers = labels == -1
    if not found or not outliers.any():
        return labels.copy()
    topics = np.array(list(found))
    nearest = topics[(vectors[outliers] @ np.stack(list(found.values())).T).argmax(axis=1)]
    out = labels.copy()
    out[outliers] = nearest
    return out


def merge(labels: np.ndarray, counts: np.ndarray, topics: list[int], n: int) -> np.ndarray:
    """Merge topics until `n` remain: the smallest into the one whose c-TF-IDF it is most
    similar to, counts summed, again and again (as BERTopic's `reduce_topics`). `counts`
    has a row of term counts per topic, in the order of `topics`."""
    labels = labels.copy()
    rows = {t: counts[i].astype(np.float64) for i, t in enumerate(topics)}
    while len(rows) > max(n, 1):
        order = list(rows)
        sizes = {t: int((labels == t).sum()) for t in order}
        smallest = min(order, key=lambda t: (sizes[t], -t))
        weights = ctfidf(np.stack([rows[t] for t in order]))
        weights /= np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
        at = order.index(smallest)
        similarity = weights @ weights[at]
        similarity[at] = -np.inf
        into = order[int(np.argmax(similarity))]
        rows[into] = rows[into] + rows.pop(smallest)
        labels[labels == smallest] = into
    return labels


def by_size(labels: np.ndarray) -> np.ndarray:
    """Topics renumbered 0, 1, ... from the largest; ties by the old number; -1 stays.

    >>> by_size(np.array([3, 3, -1, 5, 5, 5])).tolist()
    [1, 1, -1, 0, 0, 0]
    """
    topics = sorted(set(labels.tolist()) - {-1}, key=lambda t: (-(labels == t).sum(), t))
    new = {old: i for i, old in enumerate(topics)} | {-1: -1}
    return np.array([new[t] for t in labels.tolist()], dtype=np.int64)
