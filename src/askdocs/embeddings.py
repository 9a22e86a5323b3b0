"""Sentence embeddings: MiniLM-L6 from its packaged safetensors, run by ONNX Runtime.

The model package ships PyTorch weights. Rather than pull in torch, we write the same BERT
encoder as an ONNX graph whose initialisers are those weights (built in memory in ~0.5 s) and
let ONNX Runtime's CPU kernels run it. Output: mean pooling over real tokens, L2-normalised,
exactly as sentence-transformers computes all-MiniLM-L6-v2 (checked by tests against stored
reference vectors).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from askdocs.errors import ContextTooLong, ModelLoadError
from askdocs.models import MINILM_TOKENIZER, MINILM_WEIGHTS, load_tokenizer, verified

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    id: str
    dim: int
    max_tokens: int  # including special tokens
    tokenizer: Tokenizer  # what chunking counts with

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime; load once per process and reuse."""

    dim = 384

    def __init__(
        self, *, threads: int | None = None, max_tokens: int = 256, batch_tokens: int = 8192
    ) -> None:
        self.max_tokens = max_tokens
        self.batch_tokens = batch_tokens
        self.tokenizer: Tokenizer = load_tokenizer(MINILM_TOKENIZER)
        self.id = f"all-MiniLM-L6-v2:{MINILM_WEIGHTS.sha256[:12]}:max{max_tokens}"
        self._session = _session(threads or os.cpu_count() or 1)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes as model input, special tokens included."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), 384), unit length.

        A text longer than `max_tokens` raises ContextTooLong unless `truncate` is set:
        chunks are sized to fit, so an over-long one is a bug, never silently cut.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        for i, ids in enumerate(encodings):
            if len(ids) > self.max_tokens:
                if not truncate:
                    raise ContextTooLong(
                        f"text {i} has {len(ids)} tokens, over the embedder's {self.max_tokens}"
                    )
                encodings[i] = [*ids[: self.max_tokens - 1], ids[-1]]  # keep [SEP]
        # Sorting by length cuts padding: batches hold texts of similar length.
        order = np.argsort([len(ids) for ids in encodings], kind="stable")
        for batch in _batches(order, encodings, self.batch_tokens):
            out[batch] = self._run([encodings[i] for i in batch])
        return out

    def _run(self, encodings: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, ids in enumerate(encodings):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return self._session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


def _batches(order: np.ndarray, encodings: list[list[int]], budget: int) -> list[list[int]]:
    """Group indices (already sorted by length) so each padded batch holds <= `budget` tokens."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order.tolist():
        width = len(encodings[i])  # sorted ascending, so the newest is the widest
        if current and width * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _session(threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ModelLoadError(f"a core dependency is missing: {exc.name}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # shape-merge warnings from the optimiser are noise
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(_model_bytes(), options, providers=["CPUExecutionProvider"])


def _model_bytes() -> bytes:
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

    graph = bert_graph(load_file(str(verified(MINILM_WEIGHTS))))
    return graph.SerializeToString()
