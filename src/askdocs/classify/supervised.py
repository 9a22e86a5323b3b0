"""Supervised classification: logistic regression over frozen embeddings.

scikit-learn fits it (`askdocs[classify]`). The fitted weights are plain numbers, so a saved
classifier is a JSON file (format name and version, embedder id, features, classes, weights)
that loads and predicts with numpy alone, and loading never runs code from the file (no
pickle). A classifier refuses vectors from another embedder than the one it was trained on.
It reads a text's sentence vector or its layer vectors (`features`, see features.py).

Under 5,000 examples, or with a class under 20, `fit` also cross-validates (stratified
k-fold: each text predicted by a model that never saw it), reports it, and fits a
temperature on those held-out predictions (see `calibration`). Regularised as it must be on
few examples, logistic regression is far less sure of itself than it should be: on AG News
with 64 examples per class its scores claimed 0.24 less than its accuracy (expected
calibration error), 0.03 after the temperature (benchmarks/bench_classify.py). Past 5,000
examples the k fits would cost more than the held-out check is worth.

A classifier over a fine-tuned encoder (finetune.py) carries it: `save` writes its weights
beside the JSON file (`NAME.encoder.safetensors`, named in the JSON with its SHA-256), and
`load` checks them. Such a classifier is not cross-validated: its encoder has seen every
example, so folds would not hold any text out.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from askdocs.classify.calibration import fit_temperature, most_likely, softmax
from askdocs.classify.features import FEATURES
from askdocs.classify.finetune import Encoder
from askdocs.classify.metrics import Report, report
from askdocs.classify.types import Prediction
from askdocs.errors import ConfigError, MissingDependency

FORMAT = "askdocs-classifier"
VERSION = 3  # 2 added "features" (a version 1 file read sentence vectors), 3 "encoder"
CALIBRATED_UNDER, FEW_PER_CLASS = 5000, 20  # examples: under either, cross-validate
FOLDS = 5
# The inverse regularisation. On the validation parts of rotten tomatoes and AG News, 1.0
# was best or within 0.01 macro-F1 of best from 8 examples per class to all of them.
C = 1.0
MAX_FILE_BYTES = 64 * 2**20  # 384 dims x 1,000 classes is about 8 MB of JSON
MAX_ENCODER_BYTES = 64 * 2**20  # MiniLM's tensors in float16 are 45 MB


def _logistic_regression(c: float) -> Any:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependency(
            "supervised classification needs scikit-learn: pip install 'askdocs[classify]'"
        ) from exc
    return LogisticRegression(C=c, max_iter=2000)


@dataclass(frozen=True, slots=True, eq=False)
class Supervised:
    """A fitted classifier: `predict(vectors)`; `save(path)` / `Supervised.load(path)`."""

    embedder_id: str
    classes: tuple[str, ...]
    coef: np.ndarray  # (1, dim) for two classes (the second's logit), (classes, dim) otherwise
    intercept: np.ndarray
    temperature: float = 1.0
    cross_validation: Report | None = None  # when it was fitted on few examples
    features: str = "sentence"  # what `vectors` are: see features.py
    encoder: Encoder | None = None  # fine-tuned weights the vectors come from (finetune.py)

    @classmethod
    def fit(
        cls, vectors: np.ndarray, labels: Sequence[str], *, embedder_id: str, c: float = C,
        seed: int = 0, features: str = "sentence", encoder: Encoder | None = None,
    ) -> Supervised:  # fmt: skip
        """Train on `vectors` (texts x dim, of the kind `features`, from the `encoder` if it
        was fine-tuned) and their `labels`; see the module docstring."""
        counts = Counter(labels)
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors for {len(labels)} labels")
        if len(counts) < 2:
            raise ConfigError(f"the examples hold one class only ({next(iter(counts), '')!r})")
        fitted = _fit(vectors, list(labels), embedder_id, c)
        fitted = replace(fitted, features=features, encoder=encoder)
        fewest = min(counts.values())
        many = len(labels) >= CALIBRATED_UNDER and fewest >= FEW_PER_CLASS
        if many or fewest < 2 or encoder is not None:
            return fitted
        logits = out_of_fold(vectors, labels, c=c, folds=min(FOLDS, fewest), seed=seed)
        gold = [fitted.classes.index(label) for label in labels]
        cv = report(labels, [fitted.classes[j] for j in logits.argmax(axis=1)], fitted.classes)
        return replace(fitted, temperature=fit_temperature(logits, gold), cross_validation=cv)

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """Texts x classes; for two classes, the first class's column is 0."""
        if vectors.ndim != 2 or vectors.shape[1] != self.coef.shape[1]:
            raise ConfigError(
                f"vectors of shape {vectors.shape} for a classifier of {self.coef.shape[1]} dims"
            )
        z = np.asarray(vectors, np.float64) @ self.coef.T + self.intercept
        return np.hstack([np.zeros_like(z), z]) if len(self.classes) == 2 else z

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(self.logits(vectors), self.temperature)

    def predict(
        self, vectors: np.ndarray, *, embedder_id: str, ids: Sequence[str] | None = None,
        min_score: float | None = None,
    ) -> list[Prediction]:  # fmt: skip
        """The likeliest class of each text; None under `min_score`."""
        if embedder_id != self.embedder_id:
            raise ConfigError(
                f"this classifier was trained on vectors of {self.embedder_id}, not "
                f"{embedder_id}: train it again with this embedder"
            )
        return most_likely(self.probabilities(vectors), self.classes, ids, min_score)

    def save(self, path: str | Path) -> None:
        """The JSON file at `path`; a fine-tuned encoder's weights beside it."""
        path = Path(path)
        data: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "embedder": self.embedder_id,
            "features": self.features, "classes": list(self.classes),
            "temperature": self.temperature, "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }  # fmt: skip
        if self.encoder is not None:
            weights = path.with_name(path.stem + ".encoder.safetensors")
            weights.write_bytes(self.encoder.to_bytes())
            data["encoder"] = {
                "file": weights.name, "sha256": self.encoder.sha256,
                "int8": self.encoder.int8, "max_tokens": self.encoder.max_tokens,
            }  # fmt: skip
        path.write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Supervised:
        """A classifier saved by `save`; anything else is refused with the reason."""
        try:
            if Path(path).stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"over {MAX_FILE_BYTES // 2**20} MB")
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            model = _from_json(data)
            if isinstance(data.get("encoder"), dict):
                model = replace(model, encoder=_encoder(Path(path), data["encoder"]))
            elif "encoder" in data:
                raise ValueError("the encoder entry must be an object")
            return model
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"{path}: cannot load a classifier: {reason}") from exc


def _encoder(path: Path, entry: dict[str, Any]) -> Encoder:
    """The fine-tuned weights a classifier file names, from beside it, checked."""
    name = str(entry["file"])
    if Path(name).name != name or not name.endswith(".safetensors"):
        raise ValueError(f"the encoder file must be a .safetensors name beside it, not {name!r}")
    weights = path.with_name(name)
    if weights.stat().st_size > MAX_ENCODER_BYTES:
        raise ValueError(f"{weights.name} is over {MAX_ENCODER_BYTES // 2**20} MB")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{weights.name} does not have the SHA-256 the classifier recorded")
    max_tokens = entry["max_tokens"]
    if not isinstance(max_tokens, int) or not 8 <= max_tokens <= 512:
        raise ValueError(f"max_tokens must be a whole number from 8 to 512, not {max_tokens!r}")
    return Encoder.from_bytes(data, int8=bool(entry["int8"]), max_tokens=max_tokens)


def _from_json(data: Any) -> Supervised:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not an askdocs classifier")
    if data.get("version") not in range(1, VERSION + 1):
        raise ValueError(f"format version {data.get('version')}, this askdocs reads 1 to {VERSION}")
    features = data.get("features", "sentence")
    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}")
    classes = tuple(data["classes"])
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError("the classes must be two or more different names")
    if not all(isinstance(name, str) for name in classes):
        raise ValueError("the classes must be names")
    coef = np.asarray(data["coef"], np.float64)
    intercept = np.asarray(data["intercept"], np.float64)
    temperature = float(data.get("temperature", 1.0))
    rows = 1 if len(classes) == 2 else len(classes)
    if coef.ndim != 2 or coef.shape[0] != rows or intercept.shape != (rows,):
        raise ValueError("the weights do not match the classes")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all() and temperature > 0):
        raise ValueError("the weights must be finite numbers and the temperature positive")
    return Supervised(
        str(data["embedder"]), classes, coef, intercept, temperature, features=features
    )


def out_of_fold(
    vectors: np.ndarray, labels: Sequence[str], *, c: float = C, folds: int = FOLDS,
    seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Stratified k-fold logits (texts x sorted classes): each text scored by a classifier
    trained on the other folds only."""
    from sklearn.model_selection import StratifiedKFold

    labels = list(labels)
    out = np.zeros((len(labels), len(set(labels))))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(vectors, labels):
        model = _fit(vectors[train], [labels[i] for i in train], "", c)
        out[test] = model.logits(vectors[test])
    return out


def cross_validate(
    vectors: np.ndarray, labels: Sequence[str], *, c: float = C, folds: int = FOLDS,
    seed: int = 0,
) -> Report:  # fmt: skip
    """Accuracy, macro-F1 and the rest of stratified k-fold predictions."""
    classes = sorted(set(labels))
    logits = out_of_fold(vectors, labels, c=c, folds=folds, seed=seed)
    return report(labels, [classes[j] for j in logits.argmax(axis=1)], classes)


def _fit(vectors: np.ndarray, labels: list[str], embedder_id: str, c: float) -> Supervised:
    model = _logistic_regression(c)
    model.fit(vectors, labels)
    classes = tuple(str(name) for name in model.classes_)  # sorted, as out_of_fold's columns
    return Supervised(embedder_id, classes, model.coef_.astype(np.float64),
                      model.intercept_.astype(np.float64))  # fmt: skip
