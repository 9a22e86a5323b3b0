"""What a supervised classifier reads of a text: its sentence vector, or its layer vectors.

- `sentence`: the embedder's vector (384 numbers for MiniLM), the one search uses; stored
  documents and chunks bring it along, so nothing is embedded again.
- `layers`: the mean of each of MiniLM's seven hidden states, side by side (2,688 numbers,
  `MiniLMEmbedder.layer_vectors`); every text is run through the model again.

The last layer, which the sentence vector pools, is trained for similarity and averages away
some of the words that carry sentiment or topic; the earlier layers keep them. With the same
logistic regression, layer vectors scored 0.790 against 0.767 macro-F1 in 5-fold
cross-validation on the rotten tomatoes training part, and 0.784 against 0.767 on its test
part (benchmarks/bench_classify.py). So `layers` is the default wherever the embedder gives
them (the local one); a remote embedder gives sentence vectors only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from askdocs.embeddings import Embedder, in_batches, vectors_of
from askdocs.errors import ConfigError
from askdocs.types import Item

FEATURES = ("layers", "sentence")


@runtime_checkable
class LayerEmbedder(Protocol):
    def layer_vectors(self, texts: Sequence[str], *, truncate: bool = False) -> np.ndarray: ...


def default_features(embedder: Embedder) -> str:
    """`layers` when `embedder` gives them, else `sentence`."""
    return "layers" if isinstance(embedder, LayerEmbedder) else "sentence"


def features_of(
    items: Sequence[Item], embedder: Embedder, kind: str,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:  # fmt: skip
    """The `kind` features of each item (texts x dims), texts cut to the model's limit."""
    if kind == "sentence":
        return vectors_of(items, embedder, progress)
    if kind not in FEATURES:
        raise ConfigError(f"unknown features {kind!r}: choose one of {', '.join(FEATURES)}")
    if not isinstance(embedder, LayerEmbedder):
        raise ConfigError(
            "this classifier reads layer vectors, which the embedder does not give (only the "
            "local MiniLM does; a remote one gives sentence vectors): train one with it instead"
        )
    return in_batches([item.text for item in items], embedder.layer_vectors, progress)
