"""BM25 on PostgreSQL: the impact-ordered plan against the exact one.

The store holds generated text whose words are as skewed as real ones (Zipfian: a few words
in nearly every chunk, most in a handful), so that queries of common words, of rare words and
of both are all there. The plans' thresholds are lowered so that a few hundred chunks take
the path a million take in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from askdocs.retrieval import Filters
from askdocs.store import DocumentWrite, pg_keyword
from askdocs.store.postgres import PostgresStore
from askdocs.testing import FakeEmbedder

WORDS = [f"w{i}x" for i in range(400)]  # "w0x" is the commonest; one analyser token each
DOCUMENTS, PARAGRAPHS = 30, 8
QUERIES = ["w0x w1x", "w0x w2x w5x w9x", "w3x w150x", "w1x w220x w7x", "w2x w4x w6x"]


def _paragraph(rng: np.random.Generator) -> str:
    weights = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.1
    drawn = rng.choice(len(WORDS), int(rng.integers(8, 40)), p=weights / weights.sum())
    return " ".join(WORDS[i] for i in drawn)


@pytest.fixture
def zipf_store(
    make_pg_url: Callable[[], str], make_write: Callable[..., DocumentWrite]
) -> Iterator[PostgresStore]:
    rng = np.random.default_rng(0)
    fake = FakeEmbedder()
    with PostgresStore(make_pg_url(), embedder_id=fake.id, dim=fake.dim) as store:
        for d in range(DOCUMENTS):
            folder = "even" if d % 2 == 0 else "odd"
            paragraphs = [_paragraph(rng) for _ in range(PARAGRAPHS)]
            store.write([make_write(f"/docs/{folder}/{d}.txt", paragraphs)])
        yield store


def _search(
    store: PostgresStore,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    k: int,
    *,
    plan: str,
    depth: int = 1_000,
    rescored: int = 1_000,
    filters: Filters | None = None,
) -> list[tuple[int, float]]:
    exact = plan == "exact"
    monkeypatch.setattr(pg_keyword, "EXACT_POSTINGS", 10**9 if exact else 0)
    monkeypatch.setattr(pg_keyword, "DEPTH", depth)
    monkeypatch.setattr(pg_keyword, "RESCORED", rescored)
    ids, scores = store.search_keyword(query, k, filters)
    return list(zip(ids.tolist(), scores.tolist(), strict=True))


@pytest.mark.parametrize("query", QUERIES)
def test_reading_every_posting_in_impact_order_is_the_exact_ranking(
    zipf_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    exact = _search(zipf_store, monkeypatch, query, 10, plan="exact")
    ordered = _search(zipf_store, monkeypatch, query, 10, plan="impact", rescored=50)
    assert len(exact) == 10
    assert [i for i, _ in ordered] == [i for i, _ in exact]
    assert [s for _, s in ordered] == pytest.approx([s for _, s in exact], rel=1e-9)


@pytest.mark.parametrize("query", QUERIES)
def test_a_shallow_read_still_scores_what_it_returns_exactly(
    zipf_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    every = dict(_search(zipf_store, monkeypatch, query, 10_000, plan="exact"))
    shallow = _search(zipf_store, monkeypatch, query, 10, plan="impact", depth=12, rescored=30)
    assert len(shallow) == 10
    for chunk_id, score in shallow:
        assert score == pytest.approx(every[chunk_id], rel=1e-9)
    assert [s for _, s in shallow] == sorted((s for _, s in shallow), reverse=True)
    best = max(every.values())
    assert shallow[0][1] == pytest.approx(best, rel=1e-9)


def test_a_rare_term_is_read_whole_however_common_its_companions(
    zipf_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # w150x is in a few chunks: all of them are candidates, and outrank chunks of w0x alone.
    exact = _search(zipf_store, monkeypatch, "w0x w150x", 5, plan="exact")
    shallow = _search(zipf_store, monkeypatch, "w0x w150x", 5, plan="impact", depth=12, rescored=15)
    rare = dict(_search(zipf_store, monkeypatch, "w150x", 1_000, plan="exact"))
    assert 0 < len(rare) <= 12
    holding = [i for i, _ in exact if i in rare]
    assert holding and [i for i, _ in shallow][: len(holding)] == holding


def test_a_narrow_filter_is_scored_exactly_and_a_wide_one_kept_to(
    zipf_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = Filters(path_glob="/docs/odd/*")
    exact = _search(zipf_store, monkeypatch, "w0x w3x", 10, plan="exact", filters=odd)
    narrow = _search(zipf_store, monkeypatch, "w0x w3x", 10, plan="impact", depth=12, filters=odd)
    monkeypatch.setattr(pg_keyword, "FILTERED_CHUNKS", 10)  # fewer than the odd documents hold
    wide = _search(zipf_store, monkeypatch, "w0x w3x", 10, plan="impact", depth=12, filters=odd)
    paths = {i: r.paths[0] for i, r in zipf_store.records([i for i, _ in wide]).items()}
    assert len(exact) == 10 and [i for i, _ in narrow] == [i for i, _ in exact]
    assert [s for _, s in narrow] == pytest.approx([s for _, s in exact], rel=1e-9)
    assert len(wide) == 10 and all(paths[i].startswith("/docs/odd/") for i, _ in wide)
