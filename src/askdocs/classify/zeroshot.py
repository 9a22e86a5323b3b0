"""Zero-shot classification by embeddings: each text goes to the nearest label.

Labels are names or short descriptions ("a positive movie review"); they are embedded with
the same model as the texts, and a text's scores are the softmax of its cosine similarities
to the labels at `temperature`. Cosines of MiniLM vectors sit in a narrow band (0.1-0.5),
so a raw cosine is no confidence; the softmax turns the gaps between labels into one. The
default temperature was chosen on the validation part of rotten tomatoes
(benchmarks/bench_classify.py); `min_score` below which a text is "none of these" (None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from askdocs.classify.types import Prediction
from askdocs.embeddings import Embedder

TEMPERATURE = 0.02


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of `scores / temperature`.

    >>> softmax(np.array([[0.3, 0.2]]), 0.1).round(3).tolist()
    [[0.731, 0.269]]
    """
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def zero_shot(
    ids: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str],
    embedder: Embedder,
    *,
    descriptions: Sequence[str] | None = None,
    min_score: float | None = None,
    temperature: float = TEMPERATURE,
) -> list[Prediction]:
    """The nearest label for each text vector (unit length, the embedder's), with its
    softmax probability; `descriptions` (one per label) are embedded instead of the names."""
    if len(labels) < 2:
        raise ValueError("zero-shot classification needs at least two labels")
    label_vectors = embedder.embed(list(descriptions or labels), truncate=True)
    probabilities = softmax(np.asarray(vectors, np.float32) @ label_vectors.T, temperature)
    best = probabilities.argmax(axis=1)
    out = []
    for i, text_id in enumerate(ids):
        score = round(float(probabilities[i, best[i]]), 4)  # compared as shown
        label = labels[best[i]] if min_score is None or score >= min_score else None
        scores = {labels[j]: round(float(p), 4) for j, p in enumerate(probabilities[i])}
        out.append(Prediction(text_id, label, score, scores))
    return out
