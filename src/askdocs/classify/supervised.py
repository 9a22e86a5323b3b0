"""Supervised classification: logistic regression over frozen embeddings.

scikit-learn fits it (`askdocs[classify]`); the fitted weights are plain numbers, so a
saved classifier is a JSON file (format header, embedder id, classes, weights) that loads
and predicts with numpy alone, and loading never runs code from the file (no pickle). A
classifier refuses vectors from another embedder than the one it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from askdocs.classify.metrics import Report, report
from askdocs.classify.types import Prediction
from askdocs.errors import ConfigError, MissingDependency

FORMAT = "askdocs-classifier"
VERSION = 1
FEW = 20  # examples per class under which `fit` also cross-validates


def _sklearn_linear() -> type:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependency(
            "supervised classification needs scikit-learn: pip install 'askdocs[classify]'"
        ) from exc
    return LogisticRegression


@dataclass(frozen=True)
class Supervised:
    """A fitted classifier: `predict(ids, vectors)`; `save(path)` / `Supervised.load(path)`."""

    embedder_id: str
    classes: tuple[str, ...]
    coef: np.ndarray  # (1, dim) for two classes, (classes, dim) otherwise
    intercept: np.ndarray
    cross_validation: Report | None = None  # when the examples were few

    @classmethod
    def fit(
        cls, vectors: np.ndarray, labels: Sequence[str], *, embedder_id: str, c: float = 1.0
    ) -> Supervised:
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ConfigError(f"the training labels hold one class only ({classes[0]!r})")
        fitted = _plain_fit(vectors, list(labels), embedder_id, c)
        fewest = min(list(labels).count(k) for k in classes)
        if fewest < FEW and fewest >= 2:
            cv = cross_validate(vectors, labels, embedder_id=embedder_id, c=c, folds=min(5, fewest))
            fitted = cls(fitted.embedder_id, fitted.classes, fitted.coef, fitted.intercept, cv)
        return fitted

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        z = np.asarray(vectors, np.float64) @ self.coef.T + self.intercept
        if len(self.classes) == 2:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(
        self, ids: Sequence[str], vectors: np.ndarray, *, embedder_id: str,
        min_score: float | None = None,
    ) -> list[Prediction]:  # fmt: skip
        if embedder_id != self.embedder_id:
            raise ConfigError(
                f"this classifier was trained on vectors of {self.embedder_id}, not "
                f"{embedder_id}: train it again with this embedder"
            )
        p = self.probabilities(vectors)
        out = []
        for i, text_id in enumerate(ids):
            j = int(p[i].argmax())
            score = round(float(p[i, j]), 4)
            label = self.classes[j] if min_score is None or score >= min_score else None
            scores = {k: round(float(v), 4) for k, v in zip(self.classes, p[i], strict=True)}
            out.append(Prediction(text_id, label, score, scores))
        return out

    def save(self, path: str | Path) -> None:
        data = {
            "format": FORMAT, "version": VERSION, "embedder": self.embedder_id,
            "classes": list(self.classes), "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }  # fmt: skip
        Path(path).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Supervised:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError("not an askdocs classifier")
            if data.get("version") != VERSION:
                raise ValueError(
                    f"format version {data.get('version')}, this askdocs reads {VERSION}"
                )
            coef = np.asarray(data["coef"], np.float64)
            intercept = np.asarray(data["intercept"], np.float64)
            classes = tuple(str(c) for c in data["classes"])
            rows = 1 if len(classes) == 2 else len(classes)
            if coef.ndim != 2 or coef.shape[0] != rows or intercept.shape != (rows,):
                raise ValueError("weights do not match the classes")
            return cls(str(data["embedder"]), classes, coef, intercept)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: cannot load a classifier: {exc}") from exc


def cross_validate(
    vectors: np.ndarray, labels: Sequence[str], *, embedder_id: str, c: float = 1.0,
    folds: int = 5, seed: int = 0,
) -> Report:  # fmt: skip
    """Stratified k-fold: every text predicted by a classifier that never saw it."""
    from sklearn.model_selection import StratifiedKFold

    labels = list(labels)
    predicted: list[str | None] = [None] * len(labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(vectors, labels):
        model = _plain_fit(vectors[train], [labels[i] for i in train], embedder_id, c)
        found = model.predict([str(i) for i in test], vectors[test], embedder_id=embedder_id)
        for i, p in zip(test, found, strict=True):
            predicted[i] = p.label
    return report(labels, predicted, sorted(set(labels)))


def _plain_fit(vectors: np.ndarray, labels: list[str], embedder_id: str, c: float) -> Supervised:
    model = _sklearn_linear()(C=c, max_iter=2000)
    model.fit(vectors, labels)
    return Supervised(embedder_id, tuple(model.classes_), model.coef_.astype(np.float64),
                      model.intercept_.astype(np.float64))  # fmt: skip
