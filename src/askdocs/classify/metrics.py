"""Scores of predicted labels against gold labels: accuracy, macro-F1, per class, confusion.

    >>> r = report(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    >>> r.accuracy, round(r.macro_f1, 4), r.confusion
    (0.6667, 0.6667, [[1, 1], [0, 1]])

A prediction of None ("none of these") counts as wrong for every class; it is a column of
its own in the confusion matrix only when some prediction is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClassScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # gold texts of this class


@dataclass(frozen=True, slots=True)
class Report:
    accuracy: float
    macro_f1: float
    classes: list[ClassScore]
    labels: list[str]  # rows (gold) and columns (predicted) of `confusion`, in order
    confusion: list[list[int]]  # confusion[gold][predicted]; a last column for None if any
    none: int  # predictions of "none of these"


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def report(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> Report:
    """Score `predicted` against `gold` over `labels` (every label either side must be in it)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels for {len(predicted)} predictions")
    order = list(dict.fromkeys(labels))
    at = {label: i for i, label in enumerate(order)}
    unknown = {g for g in gold if g not in at} | {
        p for p in predicted if p is not None and p not in at
    }
    if unknown:
        raise ValueError(f"labels not in the label set: {sorted(unknown)[:5]}")
    none = sum(p is None for p in predicted)
    width = len(order) + (1 if none else 0)
    confusion = [[0] * width for _ in order]
    for g, p in zip(gold, predicted, strict=True):
        confusion[at[g]][len(order) if p is None else at[p]] += 1
    classes = []
    for i, label in enumerate(order):
        tp = confusion[i][i]
        predicted_as = sum(row[i] for row in confusion)
        support = sum(confusion[i])
        precision, recall = (
            tp / predicted_as if predicted_as else 0.0,
            tp / support if support else 0.0,
        )
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes.append(
            ClassScore(label, round(precision, 4), round(recall, 4), round(f1, 4), support)
        )
    present = [
        c for c in classes if c.support or any(row[order.index(c.label)] for row in confusion)
    ]
    correct = sum(confusion[i][i] for i in range(len(order)))
    macro = sum(c.f1 for c in present) / len(present) if present else 0.0
    return Report(_ratio(correct, len(gold)), round(macro, 4), classes, order, confusion, none)


def report_on_gold(
    gold: Sequence[str | None], predicted: Sequence[str | None], order: Sequence[str] = ()
) -> Report | None:
    """`report` over the texts that have a gold label (None: not known), the labels in
    `order` first, then every other label seen, sorted; None when no text has one."""
    pairs = [(g, p) for g, p in zip(gold, predicted, strict=True) if g is not None]
    if not pairs:
        return None
    seen = sorted({x for pair in pairs for x in pair if x})
    names = list(dict.fromkeys([*order, *seen]))
    return report([g for g, _ in pairs], [p for _, p in pairs], names)
