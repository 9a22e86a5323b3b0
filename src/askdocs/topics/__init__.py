"""The topics of a collection: UMAP -> HDBSCAN -> c-TF-IDF keywords, with a 2-D map.

    from askdocs.topics import TopicOptions, find_and_save
    found = find_and_save(kb, TopicOptions(seed=0))     # over the stored documents
    for topic in found.topics:
        print(topic.id, topic.size, ", ".join(topic.keywords))
    kb.search("...", filters=Filters(tags=(("topic", "0"),)))   # search within a topic

Over the store, each document's stored vector is used (the mean of its chunks'); nothing
is embedded again. `find_and_save` tags every document with its topic (`topic` = "3";
"-1" for outliers) and keeps the topic table and the map in the store's annotation
`topics`, which the web page shows. Needs `pip install 'askdocs[topics]'`.
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


def summary(found: Topics, options: TopicOptions) -> dict[str, Any]:
    """The topics as JSON data: the table, and a point per text when there is a map."""
    data: dict[str, Any] = {
        "created_at": round(time.time(), 3),
        "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
        "documents": len(found.ids),
        "outliers": found.outliers,
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
    earlier run on documents not in this one are removed) and the table is kept."""
    options = options or TopicOptions()
    items = kb.collection(filters)
    found = find_topics(items, options, generator=generator, progress=progress)
    if save:
        values: dict[str, str | None] = dict.fromkeys(kb.tags(TAG))
        values |= {path: str(topic) for path, topic in found.by_id().items()}
        kb.tag(TAG, values)
        kb.annotate(SAVED, json.dumps(summary(found, options), ensure_ascii=False))
    return found
