"""`AskOptions`: how one question is answered, as one value.

The CLI, the HTTP API, the OpenAI-compatible endpoint, `Conversation` and Python callers all
build this one frozen record; the pipeline reads it. Changing a default here changes it
everywhere.

    >>> AskOptions().k, AskOptions(strict=True).strict
    (4, True)
    >>> AskOptions().but(k=8).k
    8
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from askdocs.answer.styles import STYLES
from askdocs.errors import ConfigError
from askdocs.generation import Decoding
from askdocs.retrieval import Filters

# Chunks retrieved. On 400 XQuAD-en questions, 3 passages of at most 2 sentences (2.7 on
# average) hold the gold answer for 94.1% of questions (docs/benchmarks.md, "Grounded answers").
K = 4


@dataclass(frozen=True, slots=True)
class AskOptions:
    """Everything about answering one question except the question and the model.

    `style` is `short` (a phrase and its citation), `full` (a few cited sentences or steps) or
    `auto` (chosen from the question, see `styles.py`); `k` chunks are retrieved (`mode`:
    dense, keyword or hybrid; `filters` restrict files);
    `extractive` quotes sentences instead of generating; `strict` drops unsupported sentences
    and bad citations; `json_schema` makes the model fill in JSON valid against the schema;
    `budget` caps the prompt tokens the passages take (None: the default); `decoding` holds
    the sampling settings (None: greedy, the configured defaults); `hops=2` retrieves again
    for the names the first passages add to the question (`hops.py`; None: when the question
    names what it asks about through another entity, or compares two); `rerank` reorders
    more candidates with a reranker (None: as `settings.rerank` says; `askdocs.rerank`).
    """

    k: int = K
    style: str = "auto"
    mode: str | None = None
    filters: Filters | None = None
    extractive: bool = False
    strict: bool = False
    json_schema: Mapping[str, Any] | None = None
    budget: int | None = None
    decoding: Decoding | None = None
    hops: int | None = None
    rerank: bool | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"unknown style {self.style!r} (choose one of {', '.join(STYLES)})")
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if self.hops not in (None, 1, 2):
            raise ConfigError(f"hops must be 1, 2 or None (by the question), got {self.hops}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"budget must be at least 1 token, got {self.budget}")

    def but(self, **changes: Any) -> AskOptions:
        """A copy with `changes`; an unknown name is a ConfigError naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"unknown ask option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return replace(self, **changes)


def options_of(options: AskOptions | None, changes: Mapping[str, Any]) -> AskOptions:
    """`options` (or the defaults) with keyword `changes` applied; None values are unset."""
    base = options or AskOptions()
    given = {name: value for name, value in changes.items() if value is not None}
    return base.but(**given) if given else base
