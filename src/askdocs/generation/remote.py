"""The remote backend: any server speaking OpenAI's chat completions API, streamed over SSE.

Tested against llama-cpp-python's own server; llama.cpp's `llama-server`, vLLM, Ollama and
LM Studio speak the same protocol. `top_k`, `repeat_penalty` and `min_p` are not in OpenAI's
API but these servers read them from the request body; OpenAI itself rejects unknown
fields, so they are only sent when `extra_sampling` is true (the default).

Token counts, in order of preference:
1. llama-cpp-python's `POST /extras/tokenize` (exact, the served model's tokenizer);
2. llama.cpp's `POST /tokenize` (exact);
3. otherwise an estimate of one token per 4 characters (`token_count_exact` is False).
The chat template is applied by the server, so `prompt_tokens(messages)` adds the template's
markup as learned from the server's usage counts for two tiny prompts (or an estimated 4
tokens per message). After a call, `last_usage` holds the server's own counts when the
stream reports them (`stream_options.include_usage`; llama-cpp-python's server does not),
else these computed ones.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from askdocs.errors import AskdocsError, ContextTooLong, MissingDependency, ModelLoadError
from askdocs.generation import Decoding, Message, Usage

MESSAGE_OVERHEAD = 4  # template markup per message (role and turn markers), estimated
CHARS_PER_TOKEN = 4
_ESTIMATE_PIECES = re.compile(r"\s*\w+|\s*[^\w\s]")


class OpenAIGenerator:
    """A chat model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str = "",
        context_length: int = 4096,
        timeout: float = 120.0,
        extra_sampling: bool = True,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise MissingDependency("httpx is not installed; run: pip install httpx") from exc
        self.base_url = base_url.rstrip("/")
        self._root = self.base_url.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._stack = ExitStack()
        self._http = self._stack.enter_context(httpx.Client(headers=headers, timeout=timeout))
        self.model = model or self._first_model()
        self.id = f"openai:{self.model}"
        self.context_length = context_length
        self._extra_sampling = extra_sampling
        self._tokenize_via: str | None = None  # "extras", "llamacpp" or "estimate", once known
        self._overhead: tuple[int, int] | None = None
        self._bos: list[int] | None = None
        self._usage = Usage()

    @classmethod
    def from_settings(cls, settings: Any, api_key: str = "") -> OpenAIGenerator:
        """From a `config.GenerationSettings`; the key comes from `config.api_key`."""
        return cls(
            settings.base_url,
            settings.api_model,
            api_key=api_key,
            context_length=settings.n_ctx,
            timeout=settings.timeout,
        )

    @property
    def last_usage(self) -> Usage:
        return self._usage

    @property
    def token_count_exact(self) -> bool:
        return self._tokenizer_kind() != "estimate"

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> OpenAIGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        """One JSON request; transport and HTTP errors become askdocs errors."""
        import httpx

        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ModelLoadError(f"cannot reach the generation server at {url}: {exc}") from exc
        if response.status_code >= 400:
            raise AskdocsError(f"{url} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def _first_model(self) -> str:
        data = self._request("GET", f"{self.base_url}/models").get("data") or []
        if not data:
            raise ModelLoadError(f"{self.base_url}/models lists no model; set api_model")
        return str(data[0]["id"])

    def _tokenizer_kind(self) -> str:
        if self._tokenize_via is None:
            self._tokenize_via = "estimate"
            for kind, url, body in (
                ("extras", f"{self._root}/extras/tokenize", {"input": "a"}),
                ("llamacpp", f"{self._root}/tokenize", {"content": "a"}),
            ):
                if self._probe(url, body):
                    self._tokenize_via = kind
                    break
        return self._tokenize_via

    def _probe(self, url: str, body: dict[str, Any]) -> bool:
        import httpx

        try:
            response = self._http.post(url, json=body)
            return response.status_code == 200 and "tokens" in response.json()
        except (httpx.HTTPError, ValueError):
            return False

    def _token_ids(self, text: str) -> list[int]:
        kind = self._tokenizer_kind()
        if kind == "extras":
            ids = self._extras_tokenize(text)
            if self._bos is None:
                self._bos = self._extras_tokenize("")  # its tokenizer adds BOS where the model does
            return ids[len(self._bos) :] if ids[: len(self._bos)] == self._bos else ids
        data = self._request("POST", f"{self._root}/tokenize", json={"content": text})
        return [t if isinstance(t, int) else t["id"] for t in data["tokens"]]

    def _extras_tokenize(self, text: str) -> list[int]:
        body = {"input": text, "model": self.model}
        return list(self._request("POST", f"{self._root}/extras/tokenize", json=body)["tokens"])

    def count_tokens(self, text: str) -> int:
        if self._tokenizer_kind() == "estimate":
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        return len(self._token_ids(text))

    def tokens(self, text: str) -> list[str]:
        kind = self._tokenizer_kind()
        if kind == "estimate":
            return _ESTIMATE_PIECES.findall(text)  # words, not the server's tokens
        if kind == "llamacpp":
            body = {"content": text, "with_pieces": True}
            data = self._request("POST", f"{self._root}/tokenize", json=body)["tokens"]
            return [str(t["piece"]) if isinstance(t, dict) else str(t) for t in data]
        url = f"{self._root}/extras/detokenize"
        return [
            self._request("POST", url, json={"tokens": [t], "model": self.model})["text"]
            for t in self._token_ids(text)
        ]

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        base, per_message = self._template_overhead()
        return base + sum(self.count_tokens(m.content) + per_message for m in messages)

    def _template_overhead(self) -> tuple[int, int]:
        """Tokens the server's chat template adds: once, and per message. Learned from the
        server's own usage counts for two tiny conversations (2 and 4 messages, starting
        with a system message: some templates insert a default one) when it has a tokenizer
        endpoint; else the estimate `(0, MESSAGE_OVERHEAD)`."""
        if self._overhead is None:
            self._overhead = (0, MESSAGE_OVERHEAD)
            if self._tokenizer_kind() != "estimate":
                turn = [Message("system", "a"), Message("user", "a")]
                two = self._server_prompt_tokens(turn)
                four = self._server_prompt_tokens([*turn, Message("assistant", "a"), turn[1]])
                if two and four:
                    per_message = (four - two) // 2 - self.count_tokens("a")
                    self._overhead = (two - 2 * (self.count_tokens("a") + per_message), per_message)
        return self._overhead

    def _server_prompt_tokens(self, messages: Sequence[Message]) -> int:
        body = self.request_body(messages, Decoding(max_tokens=1), None)
        body["stream"] = False
        del body["stream_options"]
        usage = self._request("POST", f"{self.base_url}/chat/completions", json=body).get("usage")
        return int((usage or {}).get("prompt_tokens") or 0)

    def request_body(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        json_schema: dict[str, Any] | None,
        grammar: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": max(decoding.temperature, 0.0),
            "top_p": decoding.top_p,
            "max_tokens": decoding.max_tokens,
            "seed": decoding.seed,
        }
        if decoding.stop:
            body["stop"] = list(decoding.stop)
        if self._extra_sampling:
            body |= {"top_k": decoding.top_k, "repeat_penalty": decoding.repeat_penalty}
            body |= {"min_p": 0.0, "typical_p": 1.0}  # as the local backend: off
        if json_schema is not None:
            # llama-cpp-python and llama.cpp read this form; llama.cpp and vLLM also
            # read OpenAI's {"type": "json_schema", ...}, which llama-cpp-python rejects.
            body["response_format"] = {"type": "json_object", "schema": json_schema}
        elif grammar is not None:
            # llama.cpp's server and llama-cpp-python's read a GBNF `grammar`; servers that do
            # not ignore it, and the answer is then free text (checked all the same).
            body["grammar"] = grammar
        return body

    def stream(
        self,
        messages: Sequence[Message],
        decoding: Decoding,
        *,
        json_schema: dict[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Iterator[str]:
        body = self.request_body(messages, decoding, json_schema, grammar)
        estimate = self.prompt_tokens(messages)
        if estimate + decoding.max_tokens > self.context_length:
            raise ContextTooLong(
                f"the prompt takes about {estimate} tokens and {decoding.max_tokens} are reserved "
                f"for the answer, but the context holds {self.context_length}"
            )
        return self._run(body, estimate)

    def _run(self, body: dict[str, Any], estimate: int) -> Iterator[str]:
        import httpx

        started = time.perf_counter()
        state = _StreamState()
        url = f"{self.base_url}/chat/completions"
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise AskdocsError(f"{url} answered {response.status_code}: {response.text}")
                for piece in state.pieces(response.iter_lines()):
                    state.first = state.first or time.perf_counter() - started
                    yield piece
        except httpx.HTTPError as exc:
            raise ModelLoadError(f"the generation server at {url} failed: {exc}") from exc
        self._usage = self._usage_from(state, estimate, time.perf_counter() - started)

    def _usage_from(self, state: _StreamState, estimate: int, seconds: float) -> Usage:
        server = state.usage or {}
        completion = server.get("completion_tokens")
        if completion is None:
            completion = self.count_tokens(state.text) if state.text else 0
        return Usage(
            prompt_tokens=int(server.get("prompt_tokens") or estimate),
            completion_tokens=int(completion),
            seconds_to_first_token=state.first or seconds,
            seconds=seconds,
            finish_reason=state.finish,
            extra={"usage_from_server": bool(server)},
        )


class _StreamState:
    """Reads SSE lines (`data: {...}`, ending with `data: [DONE]`) into text pieces."""

    def __init__(self) -> None:
        self.text = ""
        self.finish = ""
        self.first = 0.0
        self.usage: dict[str, Any] | None = None

    def pieces(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            if not line.startswith("data:"):
                continue  # blank separators, comments (": ping"), event names
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            piece = self._read(json.loads(data))
            if piece:
                self.text += piece
                yield piece

    def _read(self, chunk: dict[str, Any]) -> str:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if "error" in chunk:
            raise AskdocsError(f"the generation server reported: {chunk['error']}")
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        self.finish = choices[0].get("finish_reason") or self.finish
        return str((choices[0].get("delta") or {}).get("content") or "")
