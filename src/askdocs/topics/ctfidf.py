"""Naming topics: class-based TF-IDF over the analyser's terms, shown as readable words.

Every topic's texts are one document; a term's weight in a topic is its frequency there,
normalised by the topic's length, times log(1 + A / f), with A the average number of terms
per topic and f the term's frequency over all topics (BERTopic's c-TF-IDF). Terms are the
analyser's stems, as keyword search has them, without very common words and markup
remnants ("quot"); each is shown as the word it most often came from in that topic
("run" -> "running").

    >>> counts = np.array([[2.0, 0.0], [1.0, 3.0]])  # 2 topics x 2 terms
    >>> ctfidf(counts).round(3).tolist()
    [[0.693, 0.0], [0.173, 0.52]]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from askdocs.text import Analyzer, words


def ctfidf(counts: np.ndarray) -> np.ndarray:
    """c-TF-IDF weights of a (topics x terms) count matrix."""
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average = counts.sum() / max(len(counts), 1)
    idf = np.log(1 + average / np.maximum(counts.sum(axis=0), 1))
    return tf * idf


def _common_words() -> frozenset[str]:
    """Words too common to name a topic: scikit-learn's English list (318 words), wider
    than the analyser's, which keeps words a search may need ("over", "its")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | {"said", "says", "quot", "lt", "gt", "amp", "nbsp"}


def _keepable(word: str, common: frozenset[str]) -> bool:
    return len(word) > 1 and not word.isdigit() and word not in common


def term_counts(
    texts: Sequence[str], topic_of: Sequence[int], topics: Sequence[int]
) -> tuple[np.ndarray, list[str], list[dict[str, str]]]:
    """(topics x terms counts, the terms, per topic: term -> its most frequent word)."""
    analyzer = Analyzer()
    common = _common_words()
    row = {t: i for i, t in enumerate(topics)}
    vocabulary: dict[str, int] = {}
    cells: Counter[tuple[int, int]] = Counter()
    surfaces: list[Counter[tuple[str, str]]] = [Counter() for _ in topics]
    for text, topic in zip(texts, topic_of, strict=True):
        if topic not in row:
            continue
        found = [w for w in words(text) if _keepable(w, common)]
        for word, term in zip(found, analyzer.terms(found), strict=True):
            if term is None:
                continue
            column = vocabulary.setdefault(term, len(vocabulary))
            cells[row[topic], column] += 1
            surfaces[row[topic]][term, word] += 1
    counts = np.zeros((len(topics), len(vocabulary)))
    for (r, c), n in cells.items():
        counts[r, c] = n
    shown: list[dict[str, str]] = []
    for counter in surfaces:
        best: dict[str, tuple[int, str]] = {}
        for (term, word), n in counter.items():
            if term not in best or n > best[term][0]:
                best[term] = (n, word)
        shown.append({term: word for term, (_, word) in best.items()})
    return counts, list(vocabulary), shown


def top_terms(weights: np.ndarray, n: int) -> list[list[int]]:
    """The `n` heaviest term columns of each row, heaviest first (zero weights left out)."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :n]
    return [[int(c) for c in row if weights[i, c] > 0] for i, row in enumerate(order)]


def mmr(candidates: np.ndarray, centroid: np.ndarray, n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: indices of `n` candidate vectors close to `centroid` and
    unlike each other; `diversity` 0 is plain similarity order, 1 only unlikeness.

    >>> v = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    >>> mmr(v, np.array([0.8, 0.6]), 2, 0.0), mmr(v, np.array([0.8, 0.6]), 2, 0.7)
    ([1, 0], [1, 2])
    """
    relevance = candidates @ centroid
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(n, len(candidates)):
        similar = (candidates @ candidates[chosen].T).max(axis=1)
        score = (1 - diversity) * relevance - diversity * similar
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen
