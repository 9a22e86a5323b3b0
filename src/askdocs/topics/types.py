"""What topic discovery returns: the topics, each text's topic, and a 2-D map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REASSIGN_BY = ("centroid", "probabilities")


@dataclass(frozen=True, slots=True)
class TopicOptions:
    seed: int = 0
    min_cluster_size: int | None = None  # None: from the number of texts (`default_size`)
    n_topics: int | None = None  # merge down to this many; None: as HDBSCAN finds them
    reassign: bool = False  # put every outlier in a topic...
    reassign_by: str = "centroid"  # ...its centroid's nearest, or by HDBSCAN "probabilities"
    keywords: int = 10
    diversity: float = 0.0  # MMR over the keywords' embeddings; 0: c-TF-IDF order
    dims: int = 5  # UMAP dimensions HDBSCAN clusters in
    neighbours: int = 15
    label_with_llm: bool = False
    map: bool = True  # compute the 2-D map coordinates


@dataclass(frozen=True, slots=True)
class Topic:
    id: int  # 0 is the largest
    size: int
    keywords: list[str]
    label: str | None  # a short name by the language model, when asked for
    representatives: list[str]  # ids of the texts closest to the topic's centre


@dataclass(frozen=True)
class Topics:
    topics: list[Topic]
    ids: list[str]  # every text's id, in input order
    assignments: np.ndarray  # each text's topic, -1 for outliers
    coords: np.ndarray | None = field(default=None, repr=False)  # (texts, 2) map, or None
    titles: list[str] = field(default_factory=list, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)  # against known classes, if given

    @property
    def outliers(self) -> int:
        return int((self.assignments == -1).sum())

    @property
    def outlier_share(self) -> float:
        return self.outliers / len(self.assignments) if len(self.assignments) else 0.0

    def by_id(self) -> dict[str, int]:
        return dict(zip(self.ids, self.assignments.tolist(), strict=True))
