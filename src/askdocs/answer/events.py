"""What answering a question yields, in order: `Retrieved`, `Token`s, then one `Final`.

A question refused before generation (weak evidence) yields `Final` alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from askdocs.types import Answer, Citation


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The numbered passages the answer will be built from (sent before generation starts)."""

    passages: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of generated text, as the model produced it (before checking)."""

    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """The checked answer; always the last event."""

    answer: Answer


Event = Retrieved | Token | Final


@dataclass
class Clock:
    """Seconds spent in each step of one answer."""

    start: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    laps: dict[str, float] = field(default_factory=dict)
    first_token: float = 0.0  # seconds from the start to the first generated piece

    def lap(self, name: str) -> None:
        now = time.perf_counter() - self.start
        self.laps[name] = round(now - self.last, 4)
        self.last = now

    def total(self) -> dict[str, float]:
        return {**self.laps, "total": round(time.perf_counter() - self.start, 4)}
