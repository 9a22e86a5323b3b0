"""Label texts: by the nearest label embedding (zero-shot), by logistic regression over
embeddings of labelled examples (supervised), or by the language model held to the labels
by a grammar (llm). Texts are `Item`s: stored documents and chunks bring their stored
vectors (nothing is embedded again), other texts are embedded here.

    from askdocs.classify import classify, report
    predictions = classify(items, method="zero-shot", labels=["praise", "complaint"],
                           embedder=kb.embedder)
    print(report(gold, [p.label for p in predictions], ["praise", "complaint"]).macro_f1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from askdocs.classify.llm import llm_classify
from askdocs.classify.metrics import ClassScore, Report, report
from askdocs.classify.supervised import Supervised, cross_validate
from askdocs.classify.types import Prediction
from askdocs.classify.zeroshot import zero_shot
from askdocs.embeddings import Embedder, vectors_of
from askdocs.errors import ConfigError
from askdocs.generation import Generator
from askdocs.types import Item

__all__ = [
    "METHODS", "ClassScore", "Prediction", "Report", "Supervised", "classify",
    "cross_validate", "llm_classify", "report", "vectors_of", "zero_shot",
]  # fmt: skip

METHODS = ("zero-shot", "supervised", "llm")


def classify(
    items: Sequence[Item],
    *,
    method: str,
    labels: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    examples: Sequence[tuple[str, str]] = (),
    model: Supervised | None = None,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    min_score: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """One prediction per item, in order. zero-shot needs `labels` (and `embedder`);
    supervised needs `examples` (text, label) to train on, or a trained `model`; llm
    needs `labels` (or examples to take them from) and `generator`, and shows it the
    examples."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    ids = [item.id for item in items]
    if method == "llm":
        labels = list(labels or dict.fromkeys(label for _, label in examples))
        if len(labels) < 2 or generator is None:
            raise ConfigError("llm classification needs two labels or more, and a model")
        return llm_classify(generator, ids, [i.text for i in items], labels,
                            examples=examples, progress=progress)  # fmt: skip
    if embedder is None:
        raise ConfigError(f"{method} classification needs the embedder")
    if method == "zero-shot":
        if not labels or len(labels) < 2:
            raise ConfigError("zero-shot classification needs two labels or more (--labels)")
        vectors = vectors_of(items, embedder, progress)
        return zero_shot(ids, vectors, labels, embedder, descriptions=descriptions,
                         min_score=min_score)  # fmt: skip
    if model is None:
        if not examples:
            raise ConfigError("supervised classification needs labelled examples (--train)")
        train = [Item(str(n), text) for n, (text, _) in enumerate(examples)]
        model = Supervised.fit(vectors_of(train, embedder), [label for _, label in examples],
                               embedder_id=embedder.id)  # fmt: skip
    vectors = vectors_of(items, embedder, progress)
    return model.predict(ids, vectors, embedder_id=embedder.id, min_score=min_score)
