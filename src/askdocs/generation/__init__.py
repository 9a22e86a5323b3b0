"""Text generation behind one small protocol: a local GGUF model (llama.cpp) by default, or
any OpenAI-compatible server.

A `Generator` takes chat messages and decoding settings and streams text pieces. It renders
the messages with the model's own chat template, so callers never format prompts by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from askdocs.config import GenerationSettings

_DEFAULTS = GenerationSettings()

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Decoding:
    """Sampling controls. temperature 0 means greedy (and then top_k/top_p/seed do not matter).
    The defaults are the settings' (`GenerationSettings`), which live in one place."""

    temperature: float = _DEFAULTS.temperature
    top_k: int = _DEFAULTS.top_k
    top_p: float = _DEFAULTS.top_p
    repeat_penalty: float = _DEFAULTS.repeat_penalty
    seed: int = _DEFAULTS.seed
    max_tokens: int = _DEFAULTS.max_tokens
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds_to_first_token: float = 0.0
    seconds: float = 0.0
    finish_reason: str = ""  # "stop" (end of turn or a stop sequence) or "length" (max_tokens)
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
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Text pieces as they are generated; with `json_schema`, output is constrained to it;
        with `grammar` (GBNF, as llama.cpp reads it) to the grammar, where the backend can.
        After the iterator is exhausted, `last_usage` describes the call. Raises
        ContextTooLong at the call, before any work, when the prompt's tokens plus
        `decoding.max_tokens` exceed `context_length`."""
        ...

    @property
    def last_usage(self) -> Usage: ...

    def close(self) -> None: ...


BACKENDS = ("llama", "openai")


def take_turn(lock: threading.Lock, owner: int | None) -> None:
    """Acquire `lock`, the one model's turn: wait while another thread streams, but refuse
    the thread `owner` that holds an open stream, which would otherwise wait for itself."""
    if not lock.acquire(blocking=False):
        if owner == threading.get_ident():
            raise RuntimeError(
                "a previous stream on this model is still open in this thread; "
                "exhaust or close it before starting another"
            )
        lock.acquire()


def decoding_from(settings: GenerationSettings, **changes: Any) -> Decoding:
    """The configured default decoding, with per-call `changes` (e.g. `stop=("\\n",)`)."""
    values = {
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "repeat_penalty": settings.repeat_penalty,
        "seed": settings.seed,
        "max_tokens": settings.max_tokens,
    }
    return Decoding(**{**values, **changes})


def open_generator(settings: GenerationSettings, api_key: str = "") -> Generator:
    """The configured backend. The model is loaded here (seconds); keep the generator for
    the life of the process and `close()` it at the end. Pass `config.api_key(settings)`."""
    if settings.backend == "llama":
        return _open_llama(settings)
    if settings.backend == "openai":
        from askdocs.generation.remote import OpenAIGenerator

        return OpenAIGenerator.from_settings(settings, api_key=api_key)
    from askdocs.errors import ConfigError

    raise ConfigError(
        f"unknown generation backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}"
    )


def _open_llama(settings: GenerationSettings) -> Generator:
    """The GGUF model, in a worker process unless `settings.isolate` is off, after the
    runtime's self-test (cached) when `settings.runtime_check` is on."""
    import functools

    from askdocs.errors import RuntimeCrash
    from askdocs.generation import runtime
    from askdocs.generation.llama import LlamaGenerator
    from askdocs.generation.packaged import resolve_model
    from askdocs.generation.worker import WorkerGenerator

    if settings.runtime_check:
        path = resolve_model(settings.model)
        result = runtime.check(path, threads=settings.n_threads)
        if not result.ok:
            raise RuntimeCrash(result.reason)
    if not settings.isolate:
        return LlamaGenerator.from_settings(settings)
    return WorkerGenerator(functools.partial(LlamaGenerator.from_settings, settings))


@dataclass(frozen=True, slots=True)
class TokenSplit:
    """How one tokenizer splits a text."""

    tokenizer: str
    count: int
    tokens: tuple[str, ...]


def split_tokens(text: str, generator: Generator) -> list[TokenSplit]:
    """The text as the LLM's tokenizer and the embedder's tokenizer see it (special tokens
    such as [CLS] left out, as chunk sizes count them)."""
    from askdocs.models import load_tokenizer

    llm_tokens = tuple(generator.tokens(text))
    embedder = load_tokenizer().encode(text, add_special_tokens=False)
    return [
        TokenSplit(generator.id, generator.count_tokens(text), llm_tokens),
        TokenSplit("embedder:minilm", len(embedder.tokens), tuple(embedder.tokens)),
    ]
