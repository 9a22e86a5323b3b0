"""Topic discovery end to end: vectors -> UMAP -> HDBSCAN -> (reassign, merge) -> names.

Stored documents bring their stored vectors; other texts are embedded once here. Progress
goes to `progress(stage, fraction)`: the stages are "embedding", "reducing", "clustering",
"naming", "labelling" and "mapping".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from askdocs.embeddings import Embedder, vectors_of
from askdocs.errors import ConfigError
from askdocs.generation import Generator
from askdocs.topics import cluster
from askdocs.topics.ctfidf import ctfidf, mmr, term_counts, top_terms
from askdocs.topics.labels import llm_label
from askdocs.topics.types import Topic, TopicOptions, Topics
from askdocs.types import Item

MIN_TEXTS = 8
REPRESENTATIVES = 3
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
    progress: Progress | None = None,
) -> Topics:
    options = options or TopicOptions()
    report = progress or (lambda stage, fraction: None)
    if len(items) < MIN_TEXTS:
        raise ConfigError(f"finding topics needs at least {MIN_TEXTS} texts, not {len(items)}")
    if options.label_with_llm and generator is None:
        raise ConfigError("labelling topics needs the language model")
    missing = sum(item.vector is None for item in items)
    if missing and embedder is None:
        raise ConfigError("texts without stored vectors need the embedder")
    report("embedding", 0.0)
    done = [0]

    def embedded(n: int) -> None:
        done[0] += n
        report("embedding", 0.3 * done[0] / max(missing, 1))

    if embedder is not None:
        vectors = vectors_of(items, embedder, embedded)
    else:  # every item brings its stored vector
        vectors = np.stack([np.asarray(item.vector, np.float32) for item in items])
    report("reducing", 0.3)
    reduced = cluster.reduce(vectors, dims=options.dims, seed=options.seed,
                             neighbours=options.neighbours)  # fmt: skip
    report("clustering", 0.55)
    labels = cluster.density_groups(reduced, min_size=options.min_cluster_size
                                    or default_size(len(items)))  # fmt: skip
    if options.reassign:
        labels = cluster.reassign(vectors, labels)
    texts = [item.text for item in items]
    found = sorted(set(labels.tolist()) - {-1})
    if options.n_topics and len(found) > options.n_topics:
        counts, _, _ = term_counts(texts, labels.tolist(), found)
        labels = cluster.merge(labels, counts, found, options.n_topics)
    labels = cluster.by_size(labels)
    report("naming", 0.65)
    topics = _describe(items, vectors, labels, options, embedder)
    if options.label_with_llm and generator is not None:
        report("labelling", 0.7)
        topics = _labelled(topics, items, generator)
    coords = None
    if options.map:
        report("mapping", 0.8)
        coords = cluster.reduce(vectors, dims=2, seed=options.seed, neighbours=options.neighbours)
    report("done", 1.0)
    return Topics(topics, [i.id for i in items], labels, coords, [i.title for i in items])


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


def _labelled(topics: list[Topic], items: Sequence[Item], generator: Generator) -> list[Topic]:
    text_of = {item.id: item.text for item in items}
    return [
        Topic(
            t.id,
            t.size,
            t.keywords,
            llm_label(generator, t.keywords, [text_of[r] for r in t.representatives]) or None,
            t.representatives,
        )
        for t in topics
    ]
