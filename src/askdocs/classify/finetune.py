"""Fine-tuning MiniLM on labelled examples, for a supervised classifier (`askdocs[finetune]`).

Frozen vectors cap what logistic regression can learn: MiniLM was trained for similarity, and
on rotten tomatoes its vectors give 0.78 macro-F1 with all 8,530 training examples. Training
the encoder itself on the examples first (SetFit's recipe: tune the sentence encoder, then
fit the logistic regression on its vectors) moves the words that decide a label into the
vector. The head is then dropped and `Supervised` fits its logistic regression on the tuned
vectors as on any others. Two objectives (benchmarks/bench_classify.py):

- `classes`, beyond `PAIRS_UP_TO` examples: a linear head on the sentence vector (mean
  pooling, unit length, scaled by `SCALE`) and cross-entropy, AdamW, a linear warm-up and
  decay. With all the training examples: 0.834 macro-F1 against 0.784 for the frozen layer
  vectors on rotten tomatoes, 0.901 against 0.886 on AG News. With 8-16 per class it did
  worse than frozen vectors.
- `pairs`, for few examples: SetFit's own. Pairs of examples, half with the same label and
  half with different ones, their cosine pulled to 1 or 0. Chosen on rotten tomatoes
  validation (better than `classes` at 8-32 per class). On its test part, 3 draws, macro-F1
  at 8 / 16 / 32 / 64 per class: 0.578 / 0.608 / 0.667 / 0.733, against 0.558 / 0.600 /
  0.672 / 0.707 for `classes` and 0.592 / 0.618 / 0.655 / 0.684 for the frozen vectors; on
  AG News at 8 / 16 / 32 per class, 0.834 / 0.819 / 0.853 against 0.779 / 0.806 / 0.845
  and 0.777 / 0.811 / 0.845.

PyTorch and transformers' `BertModel` do the training and nothing else: the tuned weights
(float16 safetensors, ~45 MB, named by their SHA-256) run on ONNX Runtime like the packaged
ones (`MiniLMEmbedder(weights=...)`), so a saved classifier predicts without PyTorch.
Loading checks that a weights file holds exactly the packaged model's tensors and shapes.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from askdocs.embeddings import MiniLMEmbedder, cut
from askdocs.errors import ConfigError, MissingDependency
from askdocs.models import MINILM_WEIGHTS, load_tokenizer, verified

EPOCHS = 2
LEARNING_RATE = 3e-5  # the usual BERT rate, set before any run and kept (no search)
BATCH = 32
MIN_STEPS = 40  # a few examples per class still get this many updates
WEIGHT_DECAY = 0.01
WARMUP = 0.1  # share of the steps
SCALE = 20.0  # the head reads unit vectors times this, as a cosine with a temperature
# SetFit's pairs, for few examples: per pass, each example meets PAIR_ROUNDS random examples
# of its own label and as many of others (2 passes: SetFit's 20 iterations), in batches of
# PAIR_BATCH pairs at SetFit's rate
PAIRS_UP_TO = 256  # examples; more are tuned with the classes' cross-entropy
PAIR_ROUNDS = 10
PAIR_BATCH = 16
PAIR_LEARNING_RATE = 2e-5
OBJECTIVES = ("pairs", "classes")


class Encoder:
    """Tuned encoder weights (as float32, after the float16 round trip of their file)."""

    def __init__(
        self, tensors: dict[str, np.ndarray], sha256: str, *, int8: bool, max_tokens: int
    ) -> None:
        self.tensors, self.sha256 = tensors, sha256
        self.int8, self.max_tokens = int8, max_tokens
        self._embedder: MiniLMEmbedder | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_bytes(cls, data: bytes, *, int8: bool, max_tokens: int) -> Encoder:
        """Weights from a safetensors file's bytes; ValueError unless they are MiniLM's."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            tensors = load(data)
        except (SafetensorError, ValueError) as exc:
            raise ValueError(f"not a safetensors file: {exc}") from None
        expected = expected_shapes()
        if set(tensors) != set(expected):
            missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
            raise ValueError(
                f"not MiniLM's tensors (missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})"
            )
        for name, array in tensors.items():
            if array.shape != expected[name] or array.dtype != np.float16:
                raise ValueError(f"tensor {name} is {array.dtype}{list(array.shape)}")
            if not np.isfinite(array).all():
                raise ValueError(f"tensor {name} holds a value that is not a finite number")
        as_float = {name: array.astype(np.float32) for name, array in tensors.items()}
        digest = hashlib.sha256(data).hexdigest()
        return cls(as_float, digest, int8=int8, max_tokens=max_tokens)

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, np.ndarray], *, int8: bool, max_tokens: int
    ) -> Encoder:
        """Freshly tuned weights, rounded to what their file will hold."""
        return cls.from_bytes(_serialised(tensors), int8=int8, max_tokens=max_tokens)

    def to_bytes(self) -> bytes:
        return _serialised(self.tensors)

    def embedder(self, threads: int | None = None) -> MiniLMEmbedder:
        """The embedder that runs these weights (built once, ~1 s)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = MiniLMEmbedder(
                    threads=threads, max_tokens=self.max_tokens, int8=self.int8, weights=self
                )
            return self._embedder


def _serialised(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({name: np.asarray(t, np.float16) for name, t in sorted(tensors.items())})


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The packaged model's float tensors that the encoder uses (not the pooler), by name."""
    from safetensors import safe_open

    shapes = {}
    with safe_open(str(verified(MINILM_WEIGHTS)), framework="np") as f:
        for name in f.keys():  # noqa: SIM118 - a safetensors handle, not a dict
            sliced = f.get_slice(name)
            if sliced.get_dtype().startswith("F") and not name.startswith("pooler."):
                shapes[name] = tuple(sliced.get_shape())
    return shapes


def objective_for(examples: int) -> str:
    """`pairs` (SetFit's) up to `PAIRS_UP_TO` examples, `classes` (cross-entropy) beyond."""
    return "pairs" if examples <= PAIRS_UP_TO else "classes"


def steps_for(examples: int, epochs: float = EPOCHS, objective: str | None = None) -> int:
    """How many updates `fine_tune` makes on this many examples."""
    if (objective or objective_for(examples)) == "pairs":
        return max(MIN_STEPS, math.ceil(_pair_count(examples, epochs) / PAIR_BATCH))
    return max(MIN_STEPS, math.ceil(epochs * math.ceil(examples / BATCH)))


def _pair_count(examples: int, epochs: float) -> int:
    return math.ceil(epochs * 2 * PAIR_ROUNDS * examples)


def fine_tune(
    texts: Sequence[str], labels: Sequence[str], *, epochs: float = EPOCHS,
    objective: str | None = None, learning_rate: float | None = None, int8: bool = False,
    max_tokens: int = 256, threads: int | None = None, seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[Encoder, list[float]]:  # fmt: skip
    """MiniLM tuned to tell `labels` apart from `texts`; and the loss of each update.

    `objective`: `pairs` (SetFit's: the cosine of two examples' vectors pulled to 1 for the
    same label, 0 for different ones) or `classes` (cross-entropy of a linear head); by
    default `objective_for(len(texts))`. `progress(1)` after each of the `steps_for`
    updates. Deterministic for a `seed` on one machine.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts for {len(labels)} labels")
    _two_classes(labels)
    classes = sorted(set(labels))
    if epochs <= 0:
        raise ConfigError(f"epochs must be positive, not {epochs}")
    objective = objective or objective_for(len(texts))
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}: choose one of {OBJECTIVES}")
    pairs = objective == "pairs"
    torch, bert_model = _torch()
    tokenizer = load_tokenizer()
    ids = [cut(e.ids, max_tokens) for e in tokenizer.encode_batch(list(texts))]
    gold = np.array([classes.index(label) for label in labels])
    steps = steps_for(len(texts), epochs, objective)
    rate = learning_rate or (PAIR_LEARNING_RATE if pairs else LEARNING_RATE)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads or os.cpu_count() or 1))
    torch.manual_seed(seed)
    try:
        model = bert_model()
        head = torch.nn.Linear(model.config.hidden_size, len(classes))
        trained = [*model.parameters(), *([] if pairs else head.parameters())]
        optimiser = torch.optim.AdamW(trained, lr=rate, weight_decay=WEIGHT_DECAY)
        warm = max(1, round(WARMUP * steps))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm + 1)))
        )
        model.train()

        def encode(rows: Sequence[int]) -> Any:
            input_ids, mask = _padded(torch, [ids[i] for i in rows])
            states = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1)
            return torch.nn.functional.normalize(pooled, dim=-1)

        if pairs:
            batches = _pair_batches(gold, _pair_count(len(texts), epochs), steps, seed)
        else:
            batches = _batches(len(texts), min(BATCH, len(texts)), steps, seed)
        losses: list[float] = []
        for chosen in batches:
            if pairs:  # both sides of each pair in one pass: firsts, then seconds
                vectors = encode(np.concatenate([chosen[:, 0], chosen[:, 1]]))
                first, second = vectors[: len(chosen)], vectors[len(chosen) :]
                same = torch.from_numpy((gold[chosen[:, 0]] == gold[chosen[:, 1]]) * 1.0)
                loss = torch.nn.functional.mse_loss((first * second).sum(-1), same.float())
            else:
                logits = head(encode(chosen) * SCALE)
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(gold[chosen]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if progress:
                progress(1)
        tensors = {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}
    finally:
        torch.set_num_threads(previous_threads)
    return Encoder.from_tensors(tensors, int8=int8, max_tokens=max_tokens), losses


def _pair_batches(gold: np.ndarray, count: int, steps: int, seed: int) -> list[np.ndarray]:
    """`steps` batches (PAIR_BATCH x 2 indices) of `count` pairs: in turn, each example with
    a random one of its own label and a random one of another (SetFit's sampling), shuffled;
    repeated when `steps` needs more. An example alone in its label pairs with itself."""
    rng = np.random.default_rng(seed)
    by_label = [np.flatnonzero(gold == label) for label in range(int(gold.max()) + 1)]
    others = [np.flatnonzero(gold != label) for label in range(int(gold.max()) + 1)]
    needed = max(count, steps * PAIR_BATCH)
    rows = []
    while len(rows) < needed:
        for i, label in enumerate(gold):
            rows.append((i, int(rng.choice(by_label[label]))))
            rows.append((i, int(rng.choice(others[label]))))
    pairs = np.array(rows)[rng.permutation(len(rows))][:needed]
    return [pairs[i * PAIR_BATCH : (i + 1) * PAIR_BATCH] for i in range(steps)]


def _batches(n: int, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """`steps` batches of `batch` indices: shuffled passes over 0..n-1, one after another."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * batch / n) + 1)])
    return [order[i * batch : (i + 1) * batch] for i in range(steps)]


def _padded(torch: Any, rows: list[list[int]]) -> tuple[Any, Any]:
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return torch.from_numpy(ids), torch.from_numpy((ids != 0).astype(np.int64))


def check(embedder: object, labels: Sequence[str]) -> MiniLMEmbedder:
    """What fails before minutes of tuning, at once: ConfigError unless `embedder` is the
    local MiniLM (returned) and `labels` hold two classes or more; MissingDependency
    without PyTorch."""
    if not isinstance(embedder, MiniLMEmbedder):
        raise ConfigError("fine-tuning needs the local MiniLM embedder, not a remote one")
    _two_classes(labels)
    require()
    return embedder


def _two_classes(labels: Sequence[str]) -> None:
    if len(set(labels)) < 2:
        raise ConfigError("fine-tuning needs examples of two classes or more")


def require() -> None:
    """MissingDependency, naming the extra, unless PyTorch and transformers are installed
    (checked without importing them)."""
    import importlib.util

    for name in ("torch", "transformers"):
        if importlib.util.find_spec(name) is None:
            raise MissingDependency(_missing(name))


def _missing(name: str | None) -> str:
    return (
        f"fine-tuning needs PyTorch and transformers ({name} is missing): "
        "pip install 'askdocs[finetune]'"
    )


def _torch() -> tuple[Any, Callable[[], Any]]:
    """torch, and a function giving MiniLM as a trainable `BertModel` with the packaged weights."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the hub; never ask it
    try:
        import torch
        from transformers import BertConfig, BertModel
    except ImportError as exc:
        raise MissingDependency(_missing(exc.name)) from exc

    def load() -> Any:
        from safetensors.torch import load_file

        shapes = expected_shapes()
        vocab, hidden = shapes["embeddings.word_embeddings.weight"]
        config = BertConfig(
            vocab_size=vocab, hidden_size=hidden, num_hidden_layers=6, num_attention_heads=12,
            intermediate_size=shapes["encoder.layer.0.intermediate.dense.weight"][0],
            max_position_embeddings=shapes["embeddings.position_embeddings.weight"][0],
            type_vocab_size=shapes["embeddings.token_type_embeddings.weight"][0],
            layer_norm_eps=1e-12, hidden_act="gelu",
        )  # fmt: skip
        model = BertModel(config, add_pooling_layer=False)
        packaged = load_file(str(verified(MINILM_WEIGHTS)))
        model.load_state_dict({name: packaged[name] for name in shapes}, strict=True)
        return model

    return torch, load
