"""The topics of a collection: UMAP -> HDBSCAN -> c-TF-IDF keywords, with a 2-D map.

    from askdocs.topics import TopicOptions, find_and_save, find_topics
    found = find_and_save(kb, TopicOptions(seed=0))     # over the stored documents
    for topic in found.topics:
        print(topic.id, topic.size, ", ".join(topic.keywords))
    kb.search("...", filters=Filters(tags=(("topic", "0"),)))   # search within a topic
    found = find_topics(items, embedder=embedder, n_topics=5, reassign=True, gold=classes)
    found.metrics["nmi"], found.outliers, found.outlier_share

Over the store, each document's stored vector is used (the mean of its chunks'); nothing
is embedded again. `find_and_save` tags every document with its topic (`topic` = "3";
"-1" for outliers) and keeps the topic table and the map in the store's annotation
`topics`, which the web page shows. The modules: `reduce` (UMAP), `cluster` (HDBSCAN,
reassigning outliers, merging topics, NMI/ARI), `ctfidf` (keywords), `labels` (names by the
language model), `maps` (PNG and HTML), `pipeline` (all of it in order). Needs
`pip install 'askdocs[topics]'`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from askdocs.topics.pipeline import Progress, default_size, find_topics
from askdocs.topics.types import Topic, TopicOptions, Topics

if TYPE_CHECKING:
    from askdocs.generation import Generator
    from askdocs.kb import KnowledgeBase
    from askdocs.retrieval import Filters

__all__ = [
    "SAVED", "TAG", "Topic", "TopicOptions", "Topics", "default_size", "find_and_save",
    "find_topics", "summary",
]  # fmt: skip

TAG = "topic"  # the document tag holding each document's topic
SAVED = "topics"  # the store annotation holding the last topic table and map
FORMAT = 1  # of the saved annotation; bump when its fields change meaning


def summary(found: Topics, options: TopicOptions) -> dict[str, Any]:
    """The topics as JSON data: the table, and a point per text when there is a map."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "created_at": round(time.time(), 3),
        "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
        "documents": len(found.ids),
        "outliers": found.outliers,
        "outlier_share": round(found.outlier_share, 4),
        "topics": [
            {"id": t.id, "size": t.size, "keywords": t.keywords, "label": t.label,
             "representatives": t.representatives}
            for t in found.topics
        ],
    }  # fmt: skip
    if found.coords is not None:
        titles = found.titles or [""] * len(found.ids)
        data["points"] = [
            {"path": i, "title": title, "topic": int(t), "x": round(float(xy[0]), 4),
             "y": round(float(xy[1]), 4)}
            for i, title, t, xy in zip(found.ids, titles, found.assignments, found.coords,
                                       strict=True)
        ]  # fmt: skip
    if found.metrics:
        data["metrics"] = {k: round(v, 4) for k, v in found.metrics.items()}
    return data


def find_and_save(
    kb: KnowledgeBase,
    options: TopicOptions | None = None,
    *,
    filters: Filters | None = None,
    generator: Generator | None = None,
    progress: Progress | None = None,
    save: bool = True,
) -> Topics:
    """The topics of the stored documents (those passing `filters`), from their stored
    vectors; with `save`, each document's topic becomes its `topic` tag (tags from an
    earlier run on documents not in this one are removed) and the table is kept. The
    embedder is loaded only for `diversity` (the keywords' embeddings), the configured
    language model only for `label_with_llm` when no `generator` is given."""
    options = options or TopicOptions()
    items = kb.collection(filters)
    if options.label_with_llm and generator is None:
        generator = kb.generator
    embedder = kb.embedder if options.diversity > 0 else None
    found = find_topics(items, options, embedder=embedder, generator=generator,
                        progress=progress)  # fmt: skip
    if save:
        values: dict[str, str | None] = dict.fromkeys(kb.tags(TAG))
        values |= {path: str(topic) for path, topic in found.by_id().items()}
        kb.tag(TAG, values)
        kb.annotate(SAVED, json.dumps(summary(found, options), ensure_ascii=False))
    return found
