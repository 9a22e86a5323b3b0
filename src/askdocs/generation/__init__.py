"""Text generation behind one small protocol: a local GGUF model (llama.cpp) by default, or
any OpenAI-compatible server.

A `Generator` takes chat messages and decoding settings and streams text pieces. It renders
the messages with the model's own chat template, so callers never format prompts by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Decoding:
    """Sampling controls. temperature 0 means greedy (and then top_k/top_p/seed do not matter)."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    seed: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds_to_first_token: float = 0.0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """A chat model. Implementations own their native resources; call `close()` when done."""

    id: str
    context_length: int  # tokens the prompt and the answer share

    def count_tokens(self, text: str) -> int: ...

    def tokens(self, text: str) -> list[str]: ...

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the messages take once rendered with the chat template."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Text pieces as they are generated; with `json_schema`, output is constrained to it.
        After the iterator is exhausted, `last_usage` describes the call."""
        ...

    @property
    def last_usage(self) -> Usage: ...

    def close(self) -> None: ...
