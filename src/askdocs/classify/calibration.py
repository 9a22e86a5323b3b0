"""Scores that mean what they say: a score of 0.8 should be right 8 times in 10.

A classifier's raw scores (cosines to the labels, logistic regression's logits) rank the
labels well but are no probabilities: MiniLM's cosines sit in a narrow band, so a text at
0.31 from one label and 0.27 from the other is not "52% sure". Temperature scaling (Guo et
al., 2017) turns them into ones: the softmax of scores / T, with the one number T fitted on
held-out texts by likelihood. It changes the confidence only; the best label stays the best.
`calibration_error` measures the result; `most_likely` turns probabilities into labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from askdocs.classify.types import Prediction

GRID = np.geomspace(0.002, 50.0, 400)  # temperatures tried by `fit_temperature`


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `scores / temperature`.

    >>> softmax(np.array([[0.3, 0.2]]), 0.1).round(3).tolist()
    [[0.731, 0.269]]
    """
    z = np.asarray(scores, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, gold: Sequence[int]) -> float:
    """The temperature under which `softmax(scores / T)` (texts x labels) gives the right
    labels (`gold`, column indices) the highest likelihood. Fit it on texts the scores were
    not trained on, and judge it on others again.

    >>> fit_temperature(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), [0, 0, 1, 1])
    0.91
    """
    rows, columns = np.arange(len(gold)), np.asarray(gold)
    losses = [
        -np.log(np.maximum(softmax(scores, float(t))[rows, columns], 1e-12)).mean() for t in GRID
    ]
    return float(f"{GRID[int(np.argmin(losses))]:.2g}")


def calibration_error(scores: Sequence[float], correct: Sequence[bool], *, bins: int = 10) -> float:
    """Expected calibration error: how far the scores are from the accuracy they claim.

    Scores fall into `bins` equal-width bins over (0, 1]; each bin adds its share of the
    texts times |accuracy in the bin - mean score in the bin|. 0 is perfectly calibrated.

    >>> calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True])  # 0.4/2 + 0.4/2
    0.4
    """
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} scores for {len(correct)} outcomes")
    if not scores:
        return 0.0
    sums = [[0.0, 0] for _ in range(bins)]  # per bin: sum of scores, texts right
    for score, right in zip(scores, correct, strict=True):
        b = min(bins - 1, max(0, math.ceil(round(score * bins, 9)) - 1))  # (b/bins, (b+1)/bins]
        sums[b][0] += score
        sums[b][1] += bool(right)
    return round(sum(abs(right - total) for total, right in sums) / len(scores), 4)


def most_likely(
    probabilities: np.ndarray,
    labels: Sequence[str],
    ids: Sequence[str] | None = None,
    min_score: float | None = None,
) -> list[Prediction]:
    """One `Prediction` per row of `probabilities` (texts x labels): the likeliest label,
    or None ("none of these") when its probability is under `min_score`. `ids` default to
    the row numbers from 0."""
    out = []
    for i, row in enumerate(probabilities):
        best = int(row.argmax())
        score = round(float(row[best]), 4)  # compared as shown
        label = labels[best] if min_score is None or score >= min_score else None
        scores = {name: round(float(p), 4) for name, p in zip(labels, row, strict=True)}
        out.append(Prediction(ids[i] if ids is not None else str(i), label, score, scores))
    return out
