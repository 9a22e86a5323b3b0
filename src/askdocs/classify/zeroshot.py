"""Zero-shot classification by embeddings: each text goes to the nearest label.

Labels are names or short descriptions ("a negative movie review"), embedded with the same
model as the texts. A text's scores are the softmax of its cosines to the labels at
`temperature` (see `calibration`): the cosines of MiniLM vectors sit in a narrow band, so
the gaps between them are what carries the confidence. The temperatures that fitted the
validation parts of rotten tomatoes and AG News best were 0.04 to 0.066, for label names
and descriptions alike; at the default, 0.05, the expected calibration error on their test
parts was 0.02 to 0.07 (benchmarks/bench_classify.py). For labels of your own, fit one on
labelled texts: `calibration.fit_temperature(similarities(...), gold)`. `min_score` is the
score under which a text is "none of these" (label None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from askdocs.classify.calibration import most_likely, softmax
from askdocs.classify.types import Prediction
from askdocs.embeddings import Embedder

TEMPERATURE = 0.05


def similarities(vectors: np.ndarray, labels: Sequence[str], embedder: Embedder) -> np.ndarray:
    """Cosines (texts x labels) of the unit text `vectors` to the labels, embedded."""
    return np.asarray(vectors, np.float32) @ embedder.embed(list(labels), truncate=True).T


def zero_shot(
    vectors: np.ndarray,
    labels: Sequence[str],
    embedder: Embedder,
    *,
    ids: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    min_score: float | None = None,
    temperature: float = TEMPERATURE,
) -> list[Prediction]:
    """The nearest label for each text vector (unit length, from `embedder`'s model) with
    its calibrated probability. `descriptions` (one per label) are embedded instead of the
    names; `ids` default to the row numbers from 0."""
    if len(labels) < 2:
        raise ValueError("zero-shot classification needs at least two labels")
    if descriptions is not None and len(descriptions) != len(labels):
        raise ValueError(f"{len(descriptions)} descriptions for {len(labels)} labels")
    probabilities = softmax(similarities(vectors, descriptions or labels, embedder), temperature)
    return most_likely(probabilities, labels, ids, min_score)
