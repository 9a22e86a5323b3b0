"""An `Embedder` over HTTP: any server answering OpenAI's embeddings API.

    POST {url}/v1/embeddings  {"input": ["text", ...], "model": "...", "encoding_format": "float"}
    -> {"data": [{"index": 0, "embedding": [0.1, ...]}, ...], "model": "<id>", ...}

text-embeddings-inference, vLLM, Infinity, llama.cpp's server and `askdocs serve` answer it.
A url may be given with or without its version: http://host:8080 and http://host:8080/v1
are the same server.

Texts go in batches of `batch`, up to `concurrency` requests in flight over all the URLs,
each request to the least busy URL (ties in turn). A 429, a 5xx, a timeout or a refused or
broken connection is tried again, on another URL when there is one: `retries` attempts in
all, waiting `backoff` seconds, then twice that, ..., each wait jittered (half to all of it,
so that many clients do not retry in step), or what a Retry-After header asks, up to
`MAX_WAIT`. Any other failure, or the last attempt's, raises `EmbeddingServerError` naming
the URL and the reason.

Identity: `id` is the model id the server reports (`model` in its response) and `dim` the
length of its vectors, both learned from one tiny request when the embedder is made. A store
records them as it records the local embedder's, and `askdocs serve` reports its local
embedder's id, so a store built locally can be searched through a server and the other way
round. Every later response must report the same id and dimension, else IndexMismatch
names the URL that differs (two URLs serving different models would mix vector spaces).
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from askdocs.errors import ConfigError, ContextTooLong, IndexMismatch, ModelLoadError
from askdocs.models import load_tokenizer
from askdocs.retrying import MAX_WAIT, detail, retry_after

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from askdocs.config import EmbeddingSettings

PROBE_TEXT = "askdocs"  # embedded once to learn the server's model id and dimension


class EmbeddingServerError(ModelLoadError):
    """An embedding server could not be reached or answered an error (a ModelLoadError: the
    server's model, not the caller's input, is at fault; the HTTP API answers 503)."""


class RemoteEmbedder:
    """Embeds with an OpenAI-compatible `/v1/embeddings` server; `close()` when done.

    Tokens are counted here, not by the server: chunking counts every chunk, and the
    embeddings API has no tokenize route (TEI's, llama.cpp's and vLLM's differ). The default
    `tokenizer` is the packaged MiniLM's WordPiece: exact for another askdocs serve, and the
    vocabulary most BERT-family embedders (bge, e5, gte) share; for another model pass its
    own tokenizer.json (`[embedding] tokenizer`). `max_tokens` must not exceed the served
    model's limit, since servers reject or cut what is longer.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        model: str = "",
        api_key: str = "",
        batch: int = 32,
        concurrency: int = 4,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_tokens: int = 256,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.urls = [endpoint(u) for u in urls if u.strip()]
        if not self.urls:
            raise ConfigError("embedding.urls is empty: set the embedding server's address")
        self.model, self.max_tokens = model, max_tokens
        self.batch, self.concurrency = max(1, batch), max(1, concurrency)
        self.retries, self.backoff = max(1, retries), backoff
        self.tokenizer: Tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency + len(self.urls))
        self._client = httpx.Client(timeout=timeout, headers=headers, limits=limits)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._lock = threading.Lock()
        self._busy = dict.fromkeys(self.urls, 0)
        self._turn = 0
        self._identity: tuple[str, int, str] | None = None  # id, dim, the URL that told us
        try:
            self._request([PROBE_TEXT])
        except BaseException:
            self.close()
            raise
        assert self._identity is not None
        self.id, self.dim = self._identity[:2]

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings, api_key: str = "") -> RemoteEmbedder:
        """From `[embedding]` settings; the key comes from `config.api_key`."""
        return cls(
            settings.urls,
            model=settings.model,
            api_key=api_key,
            batch=settings.batch,
            concurrency=settings.concurrency,
            timeout=settings.timeout,
            retries=settings.retries,
            backoff=settings.backoff,
            max_tokens=settings.max_tokens,
            tokenizer=tokenizer_file(settings.tokenizer) if settings.tokenizer else None,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes as model input by `tokenizer`, special tokens included."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), dim), float32, unit length, in order.

        A text over `max_tokens` raises ContextTooLong, as the local embedder does, unless
        `truncate` is set: then it is cut after its last token that fits.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        fitted = self._fit(texts, truncate)
        starts = range(0, len(fitted), self.batch)
        if len(starts) == 1 or self.concurrency == 1:
            for start in starts:
                out[start : start + self.batch] = self._request(fitted[start : start + self.batch])
            return out
        pool = ThreadPoolExecutor(min(self.concurrency, len(starts)))
        try:
            futures = [pool.submit(self._request, fitted[s : s + self.batch]) for s in starts]
            for start, future in zip(starts, futures, strict=True):
                out[start : start + self.batch] = future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed batch stops the rest
        return out

    def _fit(self, texts: Sequence[str], truncate: bool) -> list[str]:
        fitted = list(texts)
        for i, encoding in enumerate(self.tokenizer.encode_batch(fitted)):
            if len(encoding.ids) > self.max_tokens:
                if not truncate:
                    raise ContextTooLong(
                        f"text {i} has {len(encoding.ids)} tokens, "
                        f"over the embedder's {self.max_tokens}"
                    )
                # Keep the first max_tokens - 2 tokens after [CLS]; the server adds [SEP].
                fitted[i] = fitted[i][: encoding.offsets[self.max_tokens - 2][1]]
        return fitted

    def _request(self, texts: list[str]) -> np.ndarray:
        """One batch's vectors, with the retries the module docstring describes."""
        body: dict[str, Any] = {"input": texts, "encoding_format": "float"}
        if self.model:
            body["model"] = self.model
        failures: dict[str, str] = {}  # the last failure of each URL tried
        url: str | None = None
        for attempt in range(1, self.retries + 1):
            wait = self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            with self._claim(avoid=url) as url:
                try:
                    response = self._client.post(url, json=body)
                except httpx.TransportError as exc:  # timeouts, refused or broken connections
                    failures[url] = f"{url}: {type(exc).__name__}: {exc or 'no detail'}"
                else:
                    if response.is_success:
                        return self._vectors(url, response, len(texts))
                    failures[url] = f"{url}: HTTP {response.status_code}: {detail(response)}"
                    if not _retryable(response.status_code):
                        raise EmbeddingServerError(failures[url])
                    wait = retry_after(response, wait)
            if attempt < self.retries:
                time.sleep(min(wait, MAX_WAIT))
        tried = "; ".join(failures.values())
        raise EmbeddingServerError(f"no embeddings after {self.retries} attempt(s): {tried}")

    @contextmanager
    def _claim(self, *, avoid: str | None) -> Iterator[str]:
        """A request slot and the least busy URL (ties in turn), preferring one other than
        `avoid`, the URL that just failed."""
        with self._slots:
            with self._lock:
                n = len(self.urls)
                order = [self.urls[(self._turn + i) % n] for i in range(n)]
                url = min([u for u in order if u != avoid] or order, key=self._busy.__getitem__)
                self._busy[url] += 1
                self._turn = (self.urls.index(url) + 1) % n
            try:
                yield url
            finally:
                with self._lock:
                    self._busy[url] -= 1

    def _vectors(self, url: str, response: httpx.Response, n: int) -> np.ndarray:
        """The response's vectors in input order, float32, normalised where the server did not."""
        try:
            data = response.json()
            items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
            if [int(item.get("index", i)) for i, item in enumerate(items)] != list(range(n)):
                raise ValueError(f"{len(items)} vectors or their indexes do not match {n} texts")
            vectors = np.stack([_vector(item["embedding"]) for item in items])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EmbeddingServerError(f"{url}: not an embeddings response ({exc})") from exc
        model_id = str(data.get("model") or self.model)
        if not model_id:
            raise EmbeddingServerError(f"{url}: the response names no model; set embedding.model")
        self._check_identity(url, model_id, vectors.shape[1])
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
        # Rows already of unit length keep the server's exact values.
        scale = np.where((norms > 0) & (np.abs(norms - 1.0) > 1e-6), norms, 1.0)
        return (vectors / scale).astype(np.float32)

    def _check_identity(self, url: str, model_id: str, dim: int) -> None:
        with self._lock:
            if self._identity is None:
                self._identity = (model_id, dim, url)
                return
            known_id, known_dim, first = self._identity
        if (model_id, dim) != (known_id, known_dim):
            raise IndexMismatch(
                f"{url} serves embedder {model_id} (dim {dim}), but {first} serves {known_id} "
                f"(dim {known_dim}); every embedding URL must serve the same model"
            )


def endpoint(url: str) -> str:
    """The embeddings route of a server given by its base URL.

    http://h:8080 -> http://h:8080/v1/embeddings; http://h:8080/v1/ -> http://h:8080/v1/embeddings
    """
    base = url.strip().rstrip("/")
    if base.endswith("/embeddings"):
        return base
    last = base.rsplit("/", 1)[-1]
    versioned = len(last) > 1 and last[0] == "v" and last[1:].isdigit()
    return f"{base}/embeddings" if versioned else f"{base}/v1/embeddings"


def tokenizer_file(path: str) -> Tokenizer:
    """A tokenizer.json to count tokens with, its own truncation and padding turned off."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(Path(path).expanduser()))
    except Exception as exc:  # the tokenizers library raises plain Exception
        raise ConfigError(f"embedding.tokenizer: cannot load {path}: {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _vector(value: Any) -> np.ndarray:
    """One embedding: a list of floats, or base64 little-endian float32 (some servers
    answer so whatever was asked)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4")
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1 or not len(vector):
        raise ValueError("an embedding is not a list of numbers")
    return vector


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500
