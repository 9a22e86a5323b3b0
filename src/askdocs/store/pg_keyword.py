"""BM25 in PostgreSQL's SQL over the postings table.

The scores are the embedded store's (tantivy's BM25, k1 1.2, b 0.75, with the (k1 + 1)
factor) over the same `Analyzer` terms:

    score(d) = sum over query terms t of w(t) * idf(t) * tf * (k1 + 1) / (tf + k1 * norm(d))

Every posting of every query term is summed: exact, and fast while the terms are rare
(SciFact: 10 ms a query), but a term in half of a million chunks means 500,000 rows to
aggregate (0.7 s a query at 1M synthetic chunks, docs/benchmarks.md). MaxScore pruning
(candidates from the rare terms, completed by the common ones, exact by a bound) was built
and measured there: at the hybrid depth of 100 its bound rarely held, and it was slower.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import psycopg

from askdocs.text import BM25_B, BM25_K1

_SQL = (
    "WITH q AS (SELECT w.term, w.idf FROM unnest(%(terms)s::text[], %(idfs)s::float8[]) "
    "AS w(term, idf)) SELECT p.chunk_id, SUM(q.idf * p.tf * (%(k1)s + 1) / (p.tf + %(k1)s * "
    "(1 - %(b)s + %(b)s * p.dl / %(avgdl)s))) AS score FROM q JOIN askdocs_postings p "
    "ON p.term = q.term WHERE TRUE{allowed} GROUP BY p.chunk_id "
    "ORDER BY score DESC, p.chunk_id LIMIT %(k)s"
)


def search(
    cur: psycopg.Cursor[Any], counts: Counter[str], k: int, allowed: str, args: dict[str, Any]
) -> list[tuple[int, float]]:
    """The top `k` (chunk id, score) rows for the query terms `counts`; `allowed` is an SQL
    condition on `p.chunk_id` (or "") over `args`."""
    chunks, tokens = cur.execute("SELECT chunks, tokens FROM askdocs_stats").fetchone()
    n, avgdl = float(chunks), max(float(tokens), 1.0) / max(float(chunks), 1.0)
    found = dict(
        cur.execute(
            "SELECT term, df FROM askdocs_terms WHERE term = ANY(%s)", (list(counts),)
        ).fetchall()
    )
    if not found:
        return []
    terms = sorted(found)
    params = args | {
        "terms": terms,
        "idfs": [counts[t] * math.log(1 + (n - found[t] + 0.5) / (found[t] + 0.5)) for t in terms],
        "k1": BM25_K1,
        "b": BM25_B,
        "avgdl": avgdl,
        "k": k,
    }
    return cur.execute(_SQL.format(allowed=allowed), params).fetchall()
