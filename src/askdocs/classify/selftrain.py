"""Zero-shot with self-training: label names and unlabelled texts, no labelled examples.

The label embeddings label a pool of unlabelled texts (those to classify, or more of their
kind); MiniLM is tuned (finetune.py) on the `share` of them each label is surest of, which
are right more often than the rest; the tuned classifier labels the pool again, and the
next round tunes on its surest share. The surest are taken per label in equal numbers (as
in Gera et al. 2022, "Zero-Shot Text Classification with Self-Training"), so a label that the
embeddings favour does not take over the pool.

With the 8,530 rotten tomatoes training texts as the pool: on validation 0.677 macro-F1 for
the label descriptions alone, 0.714 after one round, 0.723 after two (the pseudo-labels
chosen were 0.845 and 0.900 right); on the test part, scored once, 0.722 against 0.700
(benchmarks/bench_classify.py --self-train); on AG News 0.860 against 0.809. Each round
tunes MiniLM (with the classes' cross-entropy, as measured; the pool is large): minutes of
CPU. No temperature is fitted (see supervised.py), so the scores are not calibrated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from askdocs.classify.finetune import fine_tune, require
from askdocs.classify.supervised import Supervised
from askdocs.classify.zeroshot import similarities
from askdocs.embeddings import MiniLMEmbedder, in_batches
from askdocs.errors import ConfigError

ROUNDS = 2
SHARE = 0.3  # of the pool, tuned on each round
MIN_POOL = 20


def self_train(
    texts: Sequence[str], labels: Sequence[str], embedder: MiniLMEmbedder, *,
    descriptions: Sequence[str] | None = None, rounds: int = ROUNDS, share: float = SHARE,
    seed: int = 0, progress: Callable[[str, float], None] | None = None,
) -> Supervised:  # fmt: skip
    """A classifier for `labels` (worded as `descriptions`, if given) learnt from the
    unlabelled `texts` alone; `progress(what, fraction)` hears of each stage as it starts,
    with the fraction of the stages done."""
    labels = list(labels)
    check(len(texts), labels, embedder, descriptions=descriptions, share=share, rounds=rounds)
    stages, started = 1 + 2 * rounds, 0  # embedding; then tuning and embedding each round

    def say(what: str) -> None:
        nonlocal started
        if progress:
            progress(what, started / stages)
        started += 1

    say("embedding the texts")
    vectors = in_batches(texts, embedder.embed)
    scores = similarities(vectors, list(descriptions or labels), embedder)
    model = None
    for round_ in range(rounds):
        chosen = surest(scores, share)
        pseudo = [labels[j] for j in scores[chosen].argmax(axis=1)]
        say(f"round {round_ + 1} of {rounds}: tuning on {len(chosen)} texts")
        encoder, _ = fine_tune(
            [texts[i] for i in chosen], pseudo, objective="classes", int8=embedder.int8,
            max_tokens=embedder.max_tokens, threads=embedder.threads, seed=seed + round_,
        )  # fmt: skip
        tuned = encoder.embedder(embedder.threads)
        say(f"round {round_ + 1} of {rounds}: embedding the texts again")
        vectors = in_batches(texts, tuned.embed)
        model = Supervised.fit(
            vectors[chosen], pseudo, embedder_id=tuned.id, encoder=encoder, seed=seed
        )
        order = [model.classes.index(label) for label in labels if label in model.classes]
        if len(order) < len(labels):
            raise ConfigError("self-training lost a label: no text was surest of it")
        scores = model.probabilities(vectors)[:, order]
    assert model is not None
    return model


def check(
    texts: int, labels: Sequence[str], embedder: object, *,
    descriptions: Sequence[str] | None = None, share: float = SHARE, rounds: int = ROUNDS,
) -> None:  # fmt: skip
    """What fails before minutes of self-training on `texts` texts, at once: ConfigError,
    or MissingDependency without PyTorch."""
    if not isinstance(embedder, MiniLMEmbedder):
        raise ConfigError("self-training tunes the local MiniLM embedder, not a remote one")
    if len(labels) < 2 or (descriptions is not None and len(descriptions) != len(labels)):
        raise ConfigError("self-training needs two labels or more, and one description each")
    if texts < MIN_POOL:
        raise ConfigError(f"self-training needs {MIN_POOL} texts or more, not {texts}")
    if not 0 < share <= 1 or rounds < 1:
        raise ConfigError("self-training needs a share in (0, 1] and one round or more")
    require()


def surest(scores: np.ndarray, share: float) -> np.ndarray:
    """Indices of the texts each label is surest of: per label, among the texts it wins, the
    `share / labels` of all texts with the widest margin over the runner-up."""
    ranked = np.sort(scores, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    winner = scores.argmax(axis=1)
    per_label = max(1, int(share * len(scores) / scores.shape[1]))
    chosen = []
    for j in range(scores.shape[1]):
        won = np.flatnonzero(winner == j)
        chosen.append(won[np.argsort(-margin[won], kind="stable")[:per_label]])
    return np.sort(np.concatenate(chosen))
