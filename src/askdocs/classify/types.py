"""What classification returns: a label per text, with its confidence."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Prediction:
    """The label of one text (None: "none of these", under the score threshold), the
    confidence in it (0..1) and every label's score when the method gives them."""

    id: str
    label: str | None
    score: float
    scores: dict[str, float] = field(default_factory=dict)
