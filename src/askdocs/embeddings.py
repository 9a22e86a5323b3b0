"""Sentence embeddings: MiniLM-L6 from its packaged safetensors, run by ONNX Runtime.

The model package ships PyTorch weights. Rather than pull in torch, we write the same BERT
encoder as an ONNX graph whose initialisers are those weights (built in memory in ~0.5 s) and
let ONNX Runtime's CPU kernels run it. Output: mean pooling over real tokens, L2-normalised,
as sentence-transformers computes all-MiniLM-L6-v2. The float graph matches its vectors to
1e-6; the int8 graph, the default for new stores, to a cosine of about 0.993 (both checked by
tests against stored reference vectors).

`[embedding] backend = "remote"` embeds with a server instead (askdocs.remote_embedder);
`load_embedder` chooses, and `embedder_identity` gives the (id, dimension) a store must
record for given settings without loading a local model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from askdocs.config import EmbeddingSettings
from askdocs.errors import ConfigError, ContextTooLong, ModelLoadError
from askdocs.models import MINILM_TOKENIZER, MINILM_WEIGHTS, load_tokenizer, verified

if TYPE_CHECKING:
    from collections.abc import Callable

    from tokenizers import Tokenizer

    from askdocs.remote_embedder import RemoteEmbedder
    from askdocs.types import Item


class Weights(Protocol):
    """An encoder's tensors by name, and the SHA-256 that names them."""

    @property
    def tensors(self) -> Mapping[str, np.ndarray]: ...

    @property
    def sha256(self) -> str: ...


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    id: str
    dim: int
    max_tokens: int  # including special tokens
    tokenizer: Tokenizer  # what chunking counts with

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


LAYER_BLOCKS = 7  # MiniLM-L6's hidden states: the embedding layer's and six encoder layers'


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime; load once per process and reuse.

    Each text runs through the encoder on its own, never padded into a batch, so its vector
    does not depend on what it was embedded with. `threads` texts run at once, one core each,
    on one shared session: on 2 cores that was 1.14x faster than padded batches on 2 intra-op
    threads. `int8` runs the int8 graph (see askdocs.onnx_bert): about 1.5x faster again, with
    vectors at cosine ~0.993 to the float ones; stores record which (docs/benchmarks.md).
    """

    dim = 384

    def __init__(
        self, *, threads: int | None = None, max_tokens: int = 256, int8: bool = False,
        weights: Weights | None = None,
    ) -> None:  # fmt: skip
        """`weights`: an encoder fine-tuned from MiniLM's (askdocs.classify.finetune), with
        the same names and shapes, in place of the packaged ones."""
        self.max_tokens = max_tokens
        self.int8 = int8
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.tokenizer: Tokenizer = load_tokenizer(MINILM_TOKENIZER)
        self.id = embedder_id(max_tokens, int8=int8, weights=weights)
        self._weights = weights
        self._session = _session(int8, weights=weights)
        self._layers_session: Any = None
        self._layers_lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes as model input, special tokens included."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), 384), unit length.

        A text longer than `max_tokens` raises ContextTooLong unless `truncate` is set:
        chunks are sized to fit, so an over-long one is a bug, never silently cut.
        """
        return self._encode(texts, self._session, self.dim, truncate)

    def layer_vectors(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray:
        """Features for a classifier, shape (len(texts), 7 x 384): the mean of each hidden
        state (the embedding layer's and the six encoder layers'), each of unit length. The
        last block is `embed`'s vector. The model that computes them loads on first use."""
        with self._layers_lock:
            if self._layers_session is None:
                self._layers_session = _session(self.int8, layers=True, weights=self._weights)
        return self._encode(texts, self._layers_session, self.dim * LAYER_BLOCKS, truncate)

    def _encode(self, texts: Sequence[str], session: Any, dim: int, truncate: bool) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        encodings = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        for i, ids in enumerate(encodings):
            if len(ids) > self.max_tokens:
                if not truncate:
                    raise ContextTooLong(
                        f"text {i} has {len(ids)} tokens, over the embedder's {self.max_tokens}"
                    )
                encodings[i] = cut(ids, self.max_tokens)

        def run(ids: list[int]) -> np.ndarray:
            input_ids = np.array([ids], dtype=np.int64)
            feed = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
            return session.run(None, feed)[0][0]

        if len(encodings) == 1 or self.threads == 1:
            for i, ids in enumerate(encodings):
                out[i] = run(ids)
            return out
        # Longest first, so the last texts to finish are short ones and no core idles long.
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i]))
        with ThreadPoolExecutor(min(self.threads, len(encodings))) as pool:
            vectors = pool.map(run, [encodings[i] for i in order])
            for i, vector in zip(order, vectors, strict=True):
                out[i] = vector
        return out


def cut(ids: list[int], max_tokens: int) -> list[int]:
    """Token ids cut to `max_tokens`, the closing [SEP] kept."""
    return ids if len(ids) <= max_tokens else [*ids[: max_tokens - 1], ids[-1]]


BACKENDS = ("local", "remote")
LOCAL_MODELS: dict[str, int] = {"minilm": MiniLMEmbedder.dim}  # name -> dimension


def load_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder `settings` describe: the local model (its ~0.5 s load happens here), or
    a client of the remote server (one small request learns its model id and dimension)."""
    if _backend(settings) == "remote":
        return _remote(settings)
    _local_dim(settings)
    return MiniLMEmbedder(
        threads=settings.threads or None, max_tokens=settings.max_tokens, int8=settings.int8
    )


def embedder_identity(settings: EmbeddingSettings) -> tuple[str, int]:
    """(id, dimension) of the vectors `settings` give, as a store records them.

    Local: known without loading the model. Remote: what the server reports, asked with one
    small request (the server must be up).
    """
    if _backend(settings) == "remote":
        with _remote(settings) as remote:
            return remote.id, remote.dim
    return embedder_id(settings.max_tokens, int8=settings.int8), _local_dim(settings)


def _remote(settings: EmbeddingSettings) -> RemoteEmbedder:
    from askdocs.config import api_key
    from askdocs.remote_embedder import RemoteEmbedder

    # api_key reads only `api_key` and `api_key_env`, which both settings sections have
    return RemoteEmbedder.from_settings(settings, api_key(settings))


def _backend(settings: EmbeddingSettings) -> str:
    if settings.backend not in BACKENDS:
        raise ConfigError(
            f"unknown embedding backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    return settings.backend


def _local_dim(settings: EmbeddingSettings) -> int:
    try:
        return LOCAL_MODELS[settings.model]
    except KeyError:
        raise ConfigError(
            f"unknown embedding model '{settings.model}' (available: {', '.join(LOCAL_MODELS)})"
        ) from None


def embedder_id(max_tokens: int, *, int8: bool = False, weights: Weights | None = None) -> str:
    """The id a store records for MiniLM vectors, known without loading the weights; for
    fine-tuned `weights`, named by their digest."""
    name = f"all-MiniLM-L6-v2:{MINILM_WEIGHTS.sha256[:12]}"
    if weights is not None:
        name = f"fine-tuned-all-MiniLM-L6-v2:{weights.sha256[:12]}"
    return f"{name}:max{max_tokens}" + (":int8" if int8 else "")


def _session(int8: bool, *, layers: bool = False, weights: Weights | None = None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelLoadError(f"a core dependency is missing: {exc.name}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # parallel across texts instead, see MiniLMEmbedder
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # shape-merge warnings from the optimiser are noise
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = _model_bytes(int8, layers, weights)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _model_bytes(int8: bool, layers: bool, weights: Weights | None) -> bytes:
    """The encoder as a serialised ONNX model.

    Built in its own frame so the weights and the graph object are freed before ONNX Runtime
    makes its copy: kept alive through session creation, they raised the peak RSS of loading
    the model from 435 to 506 MB.
    """
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelLoadError(f"a core dependency is missing: {exc.name}") from exc
    from askdocs.onnx_bert import bert_graph

    tensors = weights.tensors if weights else load_file(str(verified(MINILM_WEIGHTS)))
    graph = bert_graph(tensors, int8=int8, layers_out=layers)
    return graph.SerializeToString()


ITEM_BATCH = 64  # texts embedded per step of a progress bar


def vectors_of(
    items: Sequence[Item], embedder: Embedder, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Each item's vector: the stored one, else the text embedded (cut to the model's limit)."""
    out = np.zeros((len(items), embedder.dim), np.float32)
    todo = [i for i, item in enumerate(items) if item.vector is None]
    for i, item in enumerate(items):
        if item.vector is not None:
            out[i] = item.vector
    if todo:
        out[todo] = in_batches([items[i].text for i in todo], embedder.embed, progress)
    return out


def in_batches(
    texts: Sequence[str], embed: Callable[..., np.ndarray],
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:  # fmt: skip
    """`embed(texts, truncate=True)`, `ITEM_BATCH` texts at a time, `progress(n)` after each."""
    parts = []
    for start in range(0, len(texts), ITEM_BATCH):
        batch = list(texts[start : start + ITEM_BATCH])
        parts.append(embed(batch, truncate=True))
        if progress:
            progress(len(batch))
    return np.concatenate(parts) if parts else embed([], truncate=True)
