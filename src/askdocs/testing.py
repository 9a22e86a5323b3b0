"""Fakes for tests that are about something other than the model.

`FakeEmbedder` follows the `Embedder` protocol with a bag-of-words hashing trick: each word
adds +1 or -1 to one of `dim` coordinates, then the vector is L2-normalised. Texts sharing
words get similar vectors, so a store or retrieval test can still find what it looks for,
and it runs in microseconds with no model file. It counts and chunks with the real MiniLM
tokenizer, so chunk sizes and `ContextTooLong` behave as they do with the real embedder.

    >>> fake = FakeEmbedder()
    >>> vectors = fake.embed(["red apples", "apples red", "blue sky"])
    >>> round(float(vectors[0] @ vectors[1]), 3), round(float(vectors[0] @ vectors[2]), 3)
    (1.0, 0.0)

Never use it where the test is about embeddings, ranking by meaning, or the real model.

`FakeGenerator` follows the `Generator` protocol with scripted replies (see its docstring).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from askdocs.errors import ContextTooLong
from askdocs.generation import Decoding, Message, Usage
from askdocs.models import load_tokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_WORD = re.compile(r"\w+")
_FAKE_TEMPLATE_TOKENS = 4  # what a chat template adds around each message


def _slot(word: str, dim: int) -> tuple[int, float]:
    """A word's coordinate and sign, stable across processes (unlike `hash`)."""
    digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return digest % dim, 1.0 if (digest >> 63) & 1 else -1.0


class FakeEmbedder:
    """A deterministic keyword embedder with the `Embedder` protocol (see the module docs)."""

    def __init__(self, *, dim: int = 384, max_tokens: int = 256) -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.id = f"fake-bag-of-words:{dim}:max{max_tokens}"
        self.tokenizer: Tokenizer = load_tokenizer()
        self.calls: list[int] = []  # how many texts each embed() call received

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            text = texts[i]
            if len(encoding.ids) > self.max_tokens:
                if not truncate:
                    raise ContextTooLong(
                        f"text {i} has {len(encoding.ids)} tokens, "
                        f"over the embedder's {self.max_tokens}"
                    )
                # As the real embedder does: keep [CLS] and the first max_tokens - 2 tokens.
                text = text[: encoding.offsets[self.max_tokens - 2][1]]
            for word in _WORD.findall(text.lower()) or [""]:
                slot, sign = _slot(word, self.dim)
                out[i, slot] += sign
            norm = np.linalg.norm(out[i])
            if norm == 0:  # words cancelled out: any fixed unit vector will do
                out[i, 0] = norm = 1.0
            out[i] /= norm
        return out


class FakeGenerator:
    """A scripted chat model with the `Generator` protocol, for tests that are not about the LLM.

    Each `stream` call replies with the next scripted text (the last one repeats), in pieces of
    one word, and records the messages it was given. Tokens are counted by a whitespace rule:
    one token per whitespace-separated word, plus 4 per message for the chat template.

        >>> fake = FakeGenerator(["Lake Toma [1]."], context_length=64)
        >>> "".join(fake.stream([Message("user", "Where?")], Decoding()))
        'Lake Toma [1].'
        >>> fake.last_usage.prompt_tokens, fake.last_usage.completion_tokens
        (5, 3)
    """

    def __init__(
        self, replies: Sequence[str] = ("",), *, context_length: int = 2048, id: str = "fake"
    ) -> None:
        self.id = id
        self.context_length = context_length
        self.replies = list(replies) or [""]
        self.calls: list[tuple[Message, ...]] = []
        self.schemas: list[dict[str, Any] | None] = []
        self.grammars: list[str | None] = []
        self._usage = Usage()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def tokens(self, text: str) -> list[str]:
        return text.split()

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.count_tokens(m.content) + _FAKE_TEMPLATE_TOKENS for m in messages)

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """The scripted reply, word by word; a grammar is recorded, not enforced."""
        reply = self.replies[min(len(self.calls), len(self.replies) - 1)]
        self.calls.append(tuple(messages))
        self.schemas.append(json_schema)
        self.grammars.append(grammar)
        words = reply.split(" ")
        if decoding.max_tokens < len(words):
            words = words[: decoding.max_tokens]
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        self._usage = Usage(
            prompt_tokens=self.prompt_tokens(messages),
            completion_tokens=len(" ".join(words).split()),
        )

    @property
    def last_usage(self) -> Usage:
        return self._usage

    def close(self) -> None:
        pass


class CrashingGenerator(FakeGenerator):
    """A fake whose process really dies, for tests of crash isolation: when the last message
    contains `trigger`, its stream yields one piece and then kills the process with `signal`
    (SIGSEGV, as a llama.cpp build for another CPU does) or `os.abort()` (`signal=None`).
    With `crash_on_load`, constructing it kills the process. Run it in a `WorkerGenerator`:
    in the test process itself it would end the test run."""

    def __init__(
        self,
        replies: Sequence[str] = ("Lake Toma [1].",),
        *,
        trigger: str = "crash",
        signal: int | None = 11,
        crash_on_load: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(replies, **options)
        self.trigger = trigger
        self.signal = signal
        if crash_on_load:
            self._die()

    def _die(self) -> None:
        import os

        if self.signal is None:
            os.abort()
        os.kill(os.getpid(), self.signal)

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        pieces = super().stream(messages, decoding, json_schema=json_schema, grammar=grammar)
        if not messages or self.trigger not in messages[-1].content:
            return pieces
        return self._crashing(pieces)

    def _crashing(self, pieces: Iterator[str]) -> Iterator[str]:
        yield next(pieces, "")
        self._die()
