"""Topic discovery end to end: vectors -> UMAP -> HDBSCAN -> (reassign, merge) -> names.

Stored documents bring their stored vectors; other texts are embedded once here (nothing is
cached). No topic may hold more than half the texts (`LARGEST_SHARE`). Progress goes to
`progress(stage, fraction)`: the stages are "embedding", "reducing", "clustering",
"naming", "labelling" and "mapping".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from askdocs.embeddings import Embedder, vectors_of
from askdocs.errors import ConfigError
from askdocs.generation import Generator
from askdocs.topics import cluster
from askdocs.topics.ctfidf import ctfidf, mmr, term_counts, top_terms
from askdocs.topics.labels import llm_label
from askdocs.topics.reduce import exact_neighbours, reduce
from askdocs.topics.types import REASSIGN_BY, Topic, TopicOptions, Topics
from askdocs.types import Item

MIN_TEXTS = 8
REPRESENTATIVES = 3
LARGEST_SHARE = 0.5  # of the texts, in one topic at most (`cluster.density_groups`)
MAP_MIN_DIST = 0.1  # a map's points spread a little, so each stays visible
Progress = Callable[[str, float], None]


def default_size(n: int) -> int:
    """HDBSCAN's smallest topic for `n` texts: 5 for small sets, growing as sqrt(n) / 2.

    >>> default_size(40), default_size(5183), default_size(100_000)
    (5, 36, 158)
    """
    return max(5, round(math.sqrt(n) / 2))


def find_topics(
    items: Sequence[Item],
    options: TopicOptions | None = None,
    *,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    gold: Sequence[str] | None = None,
    progress: Progress | None = None,
    **changes: Any,
) -> Topics:
    """The topics of `items`: each item's stored vector is used as it is, the others are
    embedded by `embedder`; `generator` names the topics when `label_with_llm`. `changes`
    are `TopicOptions` fields (`find_topics(items, seed=3, n_topics=5)`); `gold`, a known
    class per item, fills `metrics` (NMI and ARI, `cluster.agreement`)."""
    options = _checked(dataclasses.replace(options or TopicOptions(), **changes), items)
    if options.label_with_llm and generator is None:
        raise ConfigError("labelling topics needs the language model")
    if gold is not None and len(gold) != len(items):
        raise ConfigError(f"{len(gold)} known classes for {len(items)} texts")
    report = progress or (lambda stage, fraction: None)
    vectors = _vectors(items, embedder, report)
    report("reducing", 0.3)
    known = exact_neighbours(vectors, options.neighbours)  # once, for both UMAP fits
    reduced = reduce(vectors, dims=options.dims, seed=options.seed,
                     neighbours=options.neighbours, known=known)  # fmt: skip
    report("clustering", 0.55)
    labels = _grouped(items, vectors, reduced, options)
    report("naming", 0.65)
    topics = _describe(items, vectors, labels, options, embedder)
    if options.label_with_llm and generator is not None:
        topics = _labelled(topics, items, generator, report)
    coords = None
    if options.map:
        report("mapping", 0.8)
        coords = reduce(vectors, dims=2, seed=options.seed, neighbours=options.neighbours,
                        min_dist=MAP_MIN_DIST, known=known)  # fmt: skip
    metrics = cluster.agreement(labels.tolist(), gold) if gold is not None else {}
    report("done", 1.0)
    return Topics(topics, [i.id for i in items], labels, coords, [i.title for i in items],
                  metrics)  # fmt: skip


def _grouped(
    items: Sequence[Item], vectors: np.ndarray, reduced: np.ndarray, options: TopicOptions
) -> np.ndarray:
    """Each item's topic (-1: an outlier), numbered from the largest topic."""
    size = options.min_cluster_size or default_size(len(items))
    largest = max(size, math.ceil(len(items) * LARGEST_SHARE))
    labels, probabilities = cluster.density_groups(reduced, min_size=size, max_size=largest)
    if options.reassign and options.reassign_by == "probabilities":
        labels = cluster.reassign_by_membership(reduced, labels, probabilities)
    elif options.reassign:
        labels = cluster.reassign(vectors, labels)
    found = sorted(set(labels.tolist()) - {-1})
    if options.n_topics and len(found) > options.n_topics:
        counts, _, _ = term_counts([item.text for item in items], labels.tolist(), found)
        labels = cluster.merge(labels, counts, found, options.n_topics)
    return cluster.by_size(labels)


def _checked(options: TopicOptions, items: Sequence[Item]) -> TopicOptions:
    if len(items) < MIN_TEXTS:
        raise ConfigError(f"finding topics needs at least {MIN_TEXTS} texts, not {len(items)}")
    if options.reassign_by not in REASSIGN_BY:
        raise ConfigError(f"reassign_by is one of {', '.join(REASSIGN_BY)}, "
                          f"not {options.reassign_by!r}")  # fmt: skip
    if not 0 <= options.diversity <= 1:
        raise ConfigError(f"diversity is between 0 and 1, not {options.diversity}")
    if options.min_cluster_size is not None and options.min_cluster_size < 2:
        raise ConfigError(f"min_cluster_size is at least 2, not {options.min_cluster_size}")
    if options.n_topics is not None and options.n_topics < 1:
        raise ConfigError(f"n_topics is at least 1, not {options.n_topics}")
    return options


def _vectors(items: Sequence[Item], embedder: Embedder | None, report: Progress) -> np.ndarray:
    """Each item's vector: the stored one, else embedded now (nothing is cached)."""
    missing = sum(item.vector is None for item in items)
    if missing and embedder is None:
        raise ConfigError("texts without stored vectors need the embedder")
    report("embedding", 0.0)
    if not missing:
        return np.stack([np.asarray(item.vector, np.float32) for item in items])
    done = [0]

    def embedded(n: int) -> None:
        done[0] += n
        report("embedding", 0.3 * done[0] / missing)

    assert embedder is not None
    return vectors_of(items, embedder, embedded)


def _describe(
    items: Sequence[Item], vectors: np.ndarray, labels: np.ndarray, options: TopicOptions,
    embedder: Embedder | None,
) -> list[Topic]:  # fmt: skip
    ids = sorted(set(labels.tolist()) - {-1})
    counts, terms, surfaces = term_counts([i.text for i in items], labels.tolist(), ids)
    weights = ctfidf(counts)
    pool = options.keywords * (3 if options.diversity > 0 and embedder else 1)
    centres = cluster.centroids(vectors, labels)
    out = []
    for row, topic in enumerate(ids):
        words = [surfaces[row][terms[c]] for c in top_terms(weights[row : row + 1], pool)[0]]
        if options.diversity > 0 and embedder and len(words) > options.keywords:
            keep = mmr(embedder.embed(words, truncate=True), centres[topic],
                       options.keywords, options.diversity)  # fmt: skip
            words = [words[k] for k in keep]
        members = np.flatnonzero(labels == topic)
        closest = members[np.argsort(-(vectors[members] @ centres[topic]))[:REPRESENTATIVES]]
        out.append(Topic(topic, len(members), words[: options.keywords], None,
                         [items[k].id for k in closest]))  # fmt: skip
    return out


def _labelled(
    topics: list[Topic], items: Sequence[Item], generator: Generator, report: Progress
) -> list[Topic]:
    text_of = {item.id: item.text for item in items}
    out = []
    for n, t in enumerate(topics):
        report("labelling", 0.7 + 0.1 * n / len(topics))
        label = llm_label(generator, t.keywords, [text_of[r] for r in t.representatives])
        out.append(Topic(t.id, t.size, t.keywords, label or None, t.representatives))
    return out
