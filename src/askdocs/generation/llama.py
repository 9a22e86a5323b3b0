"""The in-process backend: a GGUF model run by llama.cpp through llama-cpp-python.

Messages are rendered with the chat template stored in the GGUF file and tokenised by the
model's own tokenizer, so `prompt_tokens` is exactly what the model will evaluate.

One loaded model is shared by every `LlamaGenerator` asking for the same file and
parameters (counted references; the last `close()` frees it). Consecutive prompts that
start alike (the same system prompt) reuse the evaluated prefix from the KV cache:
llama-cpp-python keeps the previous prompt's tokens and only evaluates what differs.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from askdocs.errors import ContextTooLong, MissingDependency, ModelLoadError
from askdocs.generation import Decoding, Message, Usage, take_turn
from askdocs.generation.runtime import INSTALL as INSTALL_HINT

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

_MARK = re.compile("\x00(\\d+)\x00")  # where message n's content goes in the template


@dataclass(frozen=True, slots=True)
class LlamaParams:
    """What a loaded model depends on; generators with equal params share one model."""

    path: Path
    n_ctx: int = 4096
    n_batch: int = 512
    n_threads: int = 1  # generating, one token at a time
    n_threads_batch: int = 0  # evaluating the prompt; 0: every core


@dataclass(slots=True)
class _Loaded:
    llama: Llama
    stack: ExitStack
    template: Any  # llama_cpp.llama_chat_format.Jinja2ChatFormatter
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0
    owner: int | None = None  # thread currently streaming, to refuse re-entry
    # The KV cache of recent shared prompt prefixes (the system prompt and the template up to
    # the last message), so that switching between prompts does not evaluate them again.
    prefixes: OrderedDict[tuple[int, ...], bytes] = field(default_factory=OrderedDict)


_LOADED: dict[LlamaParams, _Loaded] = {}
_LOADED_LOCK = threading.Lock()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency(f"llama-cpp-python is not installed; run: {INSTALL_HINT}") from exc
    return llama_cpp


def _acquire(params: LlamaParams) -> _Loaded:
    with _LOADED_LOCK:
        loaded = _LOADED.get(params)
        if loaded is None:
            loaded = _load(params)
            _LOADED[params] = loaded
        loaded.users += 1
        return loaded


def _release(params: LlamaParams) -> None:
    with _LOADED_LOCK:
        loaded = _LOADED.get(params)
        if loaded is None:
            return
        loaded.users -= 1
        if loaded.users <= 0:
            del _LOADED[params]
            loaded.stack.close()


def _load(params: LlamaParams) -> _Loaded:
    llama_cpp = _import_llama_cpp()
    stack = ExitStack()
    try:
        llama = llama_cpp.Llama(
            model_path=str(params.path),
            n_ctx=params.n_ctx,
            n_batch=params.n_batch,
            n_ubatch=params.n_batch,
            n_threads=params.n_threads,
            n_threads_batch=params.n_threads_batch or os.cpu_count() or 1,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"llama.cpp could not load {params.path}: {exc}") from exc
    stack.callback(llama.close)
    return _Loaded(llama=llama, stack=stack, template=_chat_template(llama, params.path))


def _chat_template(llama: Llama, path: Path) -> Any:
    """The GGUF file's own Jinja chat template, as llama-cpp-python renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        llama.close()
        raise ModelLoadError(
            f"{path} has no chat template in its metadata (a base model?); "
            "use an instruct/chat model"
        )
    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
    )


@lru_cache(maxsize=16)
def _grammar(text: str, *, schema: bool) -> LlamaGrammar:
    """A compiled grammar from GBNF text, or from a JSON schema (`schema`). Compiling takes
    milliseconds; callers repeat the same few."""
    from llama_cpp import LlamaGrammar

    try:
        if schema:
            return LlamaGrammar.from_json_schema(text, verbose=False)
        return LlamaGrammar.from_string(text, verbose=False)
    except (ValueError, RuntimeError) as exc:
        what = "turn the JSON schema into a grammar" if schema else "parse the grammar"
        raise ValueError(f"cannot {what}: {exc}") from exc


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LlamaGenerator:
    """A packaged or local GGUF chat model in this process. See the module docstring."""

    def __init__(
        self,
        model: str | Path,
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_threads: int = 1,
        n_threads_batch: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        from askdocs.generation.packaged import resolve_model

        path = resolve_model(model, cache_dir=cache_dir)
        self.id = f"llama:{model if isinstance(model, str) and '/' not in model else path.name}"
        self._params = LlamaParams(path, n_ctx, n_batch, n_threads, n_threads_batch)
        self._stack = ExitStack()
        self._loaded = _acquire(self._params)
        self._stack.callback(_release, self._params)
        self.context_length: int = self._loaded.llama.n_ctx()
        self._usage = Usage()

    @classmethod
    def from_settings(cls, settings: Any) -> LlamaGenerator:
        """From a `config.GenerationSettings`."""
        return cls(
            settings.model,
            n_ctx=settings.n_ctx,
            n_batch=settings.n_batch,
            n_threads=settings.n_threads,
            n_threads_batch=settings.n_threads_batch,
        )

    @property
    def path(self) -> Path:
        return self._params.path

    @property
    def last_usage(self) -> Usage:
        return self._usage

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LlamaGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _token_ids(self, text: str) -> list[int]:
        # special=False: text that merely looks like a control token stays text.
        return self._loaded.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self._token_ids(text))

    def tokens(self, text: str) -> list[str]:
        llama = self._loaded.llama
        return [
            llama.detokenize([t]).decode("utf-8", errors="replace") for t in self._token_ids(text)
        ]

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees: the messages in its chat template."""
        rendered = self._loaded.template(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        return str(rendered.prompt)

    def shared_length(self, messages: Sequence[Message]) -> int:
        """How many leading tokens of the prompt come before the last message's content:
        the part that other questions with the same instructions share."""
        marked = [Message(m.role, f"\x00{n}\x00") for n, m in enumerate(messages)]
        llama = self._loaded.llama
        count = 0
        last = len(messages) - 1
        for n, piece in enumerate(_MARK.split(self.render(marked))):
            if n % 2:
                if int(piece) == last:
                    return count
                count += len(self._token_ids(messages[int(piece)].content))
            elif piece:
                count += len(llama.tokenize(piece.encode("utf-8"), add_bos=False, special=True))
        return count

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The rendered prompt's tokens. The template's own markers are parsed as control
        tokens, the contents never are: a passage containing "<|im_end|>" stays text and
        cannot end a turn early. The template already adds BOS where the model wants one."""
        marked = [Message(m.role, f"\x00{n}\x00") for n, m in enumerate(messages)]
        llama = self._loaded.llama
        ids: list[int] = []
        for n, piece in enumerate(_MARK.split(self.render(marked))):
            if n % 2:
                ids += self._token_ids(messages[int(piece)].content)
            elif piece:
                ids += llama.tokenize(piece.encode("utf-8"), add_bos=False, special=True)
        return ids

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.prompt_ids(messages))

    def reset_cache(self) -> None:
        """Forget the evaluated prefix, so the next prompt is evaluated from scratch
        (for measurements; normal use wants the reuse)."""
        self._loaded.llama.reset()

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        started = time.perf_counter()
        ids = self.prompt_ids(messages)
        self._check_fits(len(ids), decoding.max_tokens)
        if json_schema:
            compiled = _grammar(json.dumps(json_schema, sort_keys=True), schema=True)
        else:
            compiled = _grammar(grammar, schema=False) if grammar else None
        shared = self.shared_length(messages) if len(messages) > 1 else 0
        return self._run(ids, decoding, compiled, started, shared)

    def _check_fits(self, prompt: int, answer: int) -> None:
        if prompt + answer > self.context_length:
            raise ContextTooLong(
                f"the prompt takes {prompt} tokens and {answer} are reserved for the answer, "
                f"but the context holds {self.context_length}; shorten the prompt or the answer"
            )

    def _run(
        self,
        ids: list[int],
        decoding: Decoding,
        grammar: LlamaGrammar | None,
        started: float,
        shared: int = 0,
    ) -> Iterator[str]:
        loaded = self._loaded
        self._enter(loaded)
        try:
            llama = loaded.llama
            _restore_prefix(loaded, ids[:shared])
            reused = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), ids)
            decoder = _Decoder(llama, ids, decoding)
            first = 0.0
            for piece in decoder.pieces(grammar):
                first = first or time.perf_counter() - started
                yield piece
            total = time.perf_counter() - started
            self._usage = Usage(
                prompt_tokens=len(ids),
                completion_tokens=len(decoder.completion),
                seconds_to_first_token=first or total,
                seconds=total,
                finish_reason=decoder.finish,
                extra={"reused_prompt_tokens": min(reused, len(ids) - 1)},
            )
        finally:
            loaded.owner = None
            loaded.lock.release()

    @staticmethod
    def _enter(loaded: _Loaded) -> None:
        """One stream at a time per loaded model: they share its KV cache."""
        take_turn(loaded.lock, loaded.owner)
        loaded.owner = threading.get_ident()


PREFIXES = 4  # shared prompt prefixes whose KV cache is kept (a few MB each)


def _restore_prefix(loaded: _Loaded, prefix: Sequence[int]) -> None:
    """Make the model's KV cache start with `prefix`: kept already, restored from a saved
    copy, or evaluated and saved. Short and long answers have different instructions; without
    this, every switch between them evaluated the instructions again (about 3 s on 2 cores)."""
    import llama_cpp

    llama = loaded.llama
    key = tuple(prefix)
    if not key or _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), key) == len(key):
        return
    ctx = llama._ctx.ctx
    saved = loaded.prefixes.get(key)
    llama._ctx.kv_cache_seq_rm(-1, 0, -1)
    llama.n_tokens = 0
    if saved is not None:
        buffer = (ctypes.c_uint8 * len(saved)).from_buffer_copy(saved)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(saved), 0) == len(saved):
            llama.input_ids[: len(key)] = key
            llama.n_tokens = len(key)
            loaded.prefixes.move_to_end(key)
            return
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)  # a failed restore: evaluate instead
    llama.eval(list(key))
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
    loaded.prefixes[key] = bytes(buffer[:written])
    while len(loaded.prefixes) > PREFIXES:
        loaded.prefixes.popitem(last=False)


def _sampling(decoding: Decoding) -> dict[str, Any]:
    """Our controls in `Llama.generate`'s terms. min_p and typical_p are switched off so
    that top_k/top_p are the only truncation, as on the remote backend."""
    return {
        "temp": max(decoding.temperature, 0.0),
        "top_k": decoding.top_k,
        "top_p": decoding.top_p,
        "min_p": 0.0,
        "typical_p": 1.0,
        "repeat_penalty": decoding.repeat_penalty,
    }


class _Decoder:
    """Samples tokens with `Llama.generate` and turns them into text pieces: whole UTF-8
    characters only, text that could be the start of a stop sequence held back until it is
    known not to be one, nothing from the stop sequence on."""

    def __init__(self, llama: Llama, ids: list[int], decoding: Decoding) -> None:
        import llama_cpp

        self._llama = llama
        self._ids = ids
        self._decoding = decoding
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self.completion: list[int] = []
        self.finish = "length"
        self._sent = 0  # characters of the text already yielded

    def pieces(self, grammar: LlamaGrammar | None) -> Iterator[str]:
        self._llama.set_seed(self._decoding.seed)
        tokens = self._llama.generate(self._ids, grammar=grammar, **_sampling(self._decoding))
        for token in tokens:
            if self._is_eog(self._vocab, token):
                self.finish = "stop"
                break
            self.completion.append(token)
            piece, stopped = self._next_piece(final=False)
            if piece:
                yield piece
            if stopped:
                self.finish = "stop"
                return
            if len(self.completion) >= self._decoding.max_tokens:
                break
        piece, _ = self._next_piece(final=True)
        if piece:
            yield piece

    def _next_piece(self, *, final: bool) -> tuple[str, bool]:
        raw = self._llama.detokenize(self.completion, prev_tokens=self._ids)
        text = (raw if final else _whole_characters(raw)).decode("utf-8", errors="replace")
        found = [at for stop in self._decoding.stop if (at := text.find(stop, self._sent)) != -1]
        if found:
            return self._take(text, min(found)), True
        end = len(text) if final else len(text) - _partial_stop(text, self._decoding.stop)
        return self._take(text, end), False

    def _take(self, text: str, end: int) -> str:
        piece = text[self._sent : end] if end > self._sent else ""
        self._sent = max(self._sent, end)
        return piece


def _whole_characters(raw: bytes) -> bytes:
    """`raw` without a trailing, still incomplete UTF-8 character (a token can end mid-way).

    >>> _whole_characters("é".encode()[:1]), _whole_characters(b"ok")
    (b'', b'ok')
    """
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the character starts here
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return raw if need <= back else raw[:-back]
    return raw


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that begins one of `stops` (to hold back).

    >>> _partial_stop("Answer: [1", ["[1]", "\\n\\n"])
    2
    """
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest
