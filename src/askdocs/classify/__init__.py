"""Label texts three ways, each a small function over the same types:

- `zero_shot` (zeroshot.py): the nearest label embedding; labels are names or descriptions.
  `self_train` (selftrain.py) goes further without labelled examples: MiniLM tuned on the
  unlabelled texts the label embeddings are surest of.
- `Supervised` (supervised.py): logistic regression over the embeddings of labelled
  examples (their layer vectors where the embedder gives them, features.py),
  cross-validated when they are few; saved as JSON weights. With `fine_tune`, MiniLM is
  first tuned on the examples (finetune.py, `askdocs[finetune]`) and the classifier reads
  its vectors.
- `llm_classify` (llm.py): the language model, held to the labels by a grammar.

`classify` runs any of them over `Item`s (stored documents and chunks bring their stored
vectors: zero-shot embeds nothing again) or plain strings. `report` (metrics.py) scores labels
against gold ones; calibration.py makes the scores probabilities and measures how well
they are; inputs.py reads CSV, JSONL and stdin lines. benchmarks/bench_classify.py
measures all three on rotten tomatoes and AG News.

    from askdocs.classify import classify, report
    predictions = classify(items, method="zero-shot", labels=["praise", "complaint"],
                           embedder=kb.embedder)
    print(report(gold, [p.label for p in predictions], ["praise", "complaint"]).macro_f1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from askdocs.classify.calibration import calibration_error, fit_temperature
from askdocs.classify.features import FEATURES, default_features, features_of
from askdocs.classify.finetune import EPOCHS, Encoder, fine_tune, steps_for
from askdocs.classify.finetune import check as check_tunable
from askdocs.classify.llm import SHOTS, llm_classify, pick_examples
from askdocs.classify.metrics import ClassScore, Report, report, report_on_gold
from askdocs.classify.selftrain import self_train
from askdocs.classify.supervised import Supervised, cross_validate
from askdocs.classify.types import Prediction
from askdocs.classify.zeroshot import zero_shot
from askdocs.embeddings import Embedder, vectors_of
from askdocs.errors import ConfigError
from askdocs.generation import Generator
from askdocs.types import Item

__all__ = [
    "EPOCHS", "FEATURES", "METHODS", "ClassScore", "Encoder", "Prediction", "Report",
    "Supervised", "calibration_error", "classify", "cross_validate", "default_features",
    "features_of", "fine_tune", "fit_temperature", "llm_classify", "pick_examples", "report",
    "report_on_gold", "self_train", "steps_for", "train", "vectors_of", "zero_shot",
]  # fmt: skip

METHODS = ("zero-shot", "supervised", "llm")


def classify(
    items: Sequence[Item] | Sequence[str],
    *,
    method: str,
    labels: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    examples: Sequence[tuple[str, str]] = (),
    model: Supervised | None = None,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    min_score: float | None = None,
    shots: int = SHOTS,
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """One prediction per text, in order. Texts are `Item`s, or strings (ids "0", "1", ...).

    zero-shot: `labels` (or, embedded in their place, `descriptions`, one per label) and
    the `embedder`. supervised: a trained `model`, or `examples` (text, label) to train one
    on, and the `embedder`. llm: `labels` (default: the examples') and the `generator`,
    shown up to `shots` examples per label. `min_score`: under it, the label is None (the
    llm's score is always 1.0, see llm.py). `progress(n)` hears of each n texts done.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    items = [x if isinstance(x, Item) else Item(str(i), x) for i, x in enumerate(items)]
    ids = [item.id for item in items]
    if method == "llm":
        labels = list(labels or dict.fromkeys(label for _, label in examples))
        if len(labels) < 2 or generator is None:
            raise ConfigError("llm classification needs two labels or more, and a model")
        unknown = sorted({label for _, label in examples} - set(labels))
        if unknown:
            raise ConfigError(f"the examples' labels {', '.join(unknown[:5])} are not labels")
        return llm_classify(
            generator, [item.text for item in items], labels, ids=ids, progress=progress,
            examples=pick_examples(examples, shots), descriptions=descriptions,
        )  # fmt: skip
    if embedder is None:
        raise ConfigError(f"{method} classification needs the embedder")
    if method == "zero-shot":
        if not labels or len(labels) < 2:
            raise ConfigError("zero-shot classification needs two labels or more (--labels)")
        vectors = vectors_of(items, embedder, progress)
        return zero_shot(vectors, labels, embedder, ids=ids, descriptions=descriptions,
                         min_score=min_score)  # fmt: skip
    if model is None:
        if not examples:
            raise ConfigError("supervised classification needs labelled examples (--train)")
        model = train(examples, embedder)
    if model.encoder is not None:  # its own tuned MiniLM, not the store's
        embedder = model.encoder.embedder(getattr(embedder, "threads", None))
        items = [replace(item, vector=None) for item in items]
    vectors = features_of(items, embedder, model.features, progress)
    return model.predict(vectors, embedder_id=embedder.id, ids=ids, min_score=min_score)


def train(
    examples: Sequence[tuple[str, str]], embedder: Embedder, *, features: str | None = None,
    fine_tune_epochs: float | None = None, seed: int = 0,
    progress: Callable[[int], None] | None = None,
    tuning_progress: Callable[[int], None] | None = None,
) -> Supervised:  # fmt: skip
    """A supervised classifier fitted on `examples` (text, label), reading `features`
    (default: layer vectors where `embedder` gives them, see features.py).

    `fine_tune_epochs`: first tune the local MiniLM on the examples for that many passes
    (finetune.py; `tuning_progress(1)` after each of its `steps_for` updates), then read
    its sentence vectors, the ones it was tuned on.
    """
    texts = [Item(str(n), text) for n, (text, _) in enumerate(examples)]
    labels = [label for _, label in examples]
    encoder = None
    if fine_tune_epochs is not None:
        local = check_tunable(embedder, labels)
        if features not in (None, "sentence"):
            raise ConfigError("a fine-tuned classifier reads the tuned sentence vectors")
        encoder, _ = fine_tune(
            [item.text for item in texts], labels, epochs=fine_tune_epochs, int8=local.int8,
            max_tokens=local.max_tokens, threads=local.threads, seed=seed,
            progress=tuning_progress,
        )  # fmt: skip
        embedder, features = encoder.embedder(local.threads), "sentence"
    kind = features or default_features(embedder)
    vectors = features_of(texts, embedder, kind, progress)
    return Supervised.fit(
        vectors, labels, embedder_id=embedder.id, features=kind, encoder=encoder, seed=seed
    )
