"""Grouping: HDBSCAN over the UMAP-reduced points, then optional clean-ups (outliers into
topics, topics merged down to a wanted number), and agreement with known classes.

HDBSCAN finds dense groups and leaves the rest as outliers (-1) rather than forcing every
text into a topic. Labels are numpy int arrays, one per text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from askdocs.errors import MissingDependency
from askdocs.topics.ctfidf import ctfidf
from askdocs.topics.reduce import EXTRA


def density_groups(
    reduced: np.ndarray, *, min_size: int, max_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, membership probabilities) of the reduced points by scikit-learn's HDBSCAN:
    labels 0, 1, ... and -1 for outliers; probabilities 0 for outliers, 1 at a topic's core.
    A group over `max_size` is never chosen: its sub-groups are, where HDBSCAN's most stable
    choice would have been one giant topic (74% of AG News, 96% of SciFact's abstracts)."""
    try:
        from sklearn.cluster import HDBSCAN
    except ImportError as exc:
        raise MissingDependency(f"finding topics needs scikit-learn: {EXTRA}") from exc
    model = HDBSCAN(min_cluster_size=min_size, max_cluster_size=max_size, copy=True)
    labels = model.fit_predict(reduced)
    return np.asarray(labels, np.int64), np.asarray(model.probabilities_, np.float64)


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


def reassign_by_membership(
    reduced: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> np.ndarray:
    """Every outlier moved to the topic it most belongs to by HDBSCAN's distance-based soft
    membership (the `hdbscan` package's `dist_membership_vector`; scikit-learn's HDBSCAN has
    no soft clustering): membership falls with the distance, in the space HDBSCAN clustered
    in, to the topic's exemplars (its members of highest probability), so the topic with
    the nearest exemplar wins.

    >>> r, p = np.array([[0.0], [0.1], [5.0], [5.2], [4.0]]), np.array([1, 0.5, 0.5, 1, 0])
    >>> reassign_by_membership(r, np.array([0, 0, 1, 1, -1]), p).tolist()
    [0, 0, 1, 1, 1]
    """
    outliers = labels == -1
    topics = sorted(set(labels.tolist()) - {-1})
    if not topics or not outliers.any():
        return labels.copy()
    gaps = []
    for topic in topics:
        members = labels == topic
        exemplars = reduced[members & (probabilities >= probabilities[members].max())]
        apart = np.linalg.norm(reduced[outliers][:, None, :] - exemplars[None], axis=2)
        gaps.append(apart.min(axis=1))
    out = labels.copy()
    out[outliers] = np.array(topics)[np.stack(gaps, axis=1).argmin(axis=1)]
    return out


def merge(labels: np.ndarray, counts: np.ndarray, topics: list[int], n: int) -> np.ndarray:
    """Merge topics until `n` remain: the smallest into the one whose c-TF-IDF it is most
    similar to (cosine), counts summed, again and again (as BERTopic's `reduce_topics`).
    `counts` has a row of term counts per topic, in the order of `topics`.

    >>> counts = np.array([[5.0, 0, 1], [0, 5, 0], [4, 0, 0]])
    >>> merge(np.array([0, 0, 0, 1, 1, 2]), counts, [0, 1, 2], 2).tolist()
    [0, 0, 0, 1, 1, 0]
    """
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


def agreement(assignments: Sequence[int], gold: Sequence[str]) -> dict[str, float]:
    """NMI and ARI of the topics against known classes: over every text (the outliers as
    one more cluster), and `*_without_outliers` over the texts given a topic.

    >>> agreement([0, 0, 1, -1], ["a", "a", "b", "b"])["ari_without_outliers"]
    1.0
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    found, classes = np.asarray(assignments), np.asarray(gold, dtype=object)
    kept = found != -1
    out = {
        "nmi": float(normalized_mutual_info_score(classes, found)),
        "ari": float(adjusted_rand_score(classes, found)),
        "nmi_without_outliers": 0.0,
        "ari_without_outliers": 0.0,
    }
    if kept.any():
        out["nmi_without_outliers"] = float(
            normalized_mutual_info_score(classes[kept], found[kept])
        )
        out["ari_without_outliers"] = float(adjusted_rand_score(classes[kept], found[kept]))
    return out
