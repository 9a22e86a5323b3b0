"""BM25 in PostgreSQL's SQL over the postings table.

The scores are the embedded store's (tantivy's BM25, k1 1.2, b 0.75, with the (k1 + 1)
factor) over the same `Analyzer` terms:

    score(d) = sum over query terms t of w(t) * idf(t) * tf * (k1 + 1) / (tf + k1 * norm(d))

Two plans, chosen per query by how many postings its terms have (`askdocs_terms.df`):

- **Exact**, while the terms hold at most `EXACT_POSTINGS` postings together: every posting
  of every term is summed (SciFact: 10 ms a query).
- **Impact-ordered**, past that: a term in half of a million chunks means 500,000 rows to
  aggregate (0.7 s a query at 1M synthetic chunks). Each posting carries its `impact`, the
  document-dependent factor tf / (tf + k1 * norm(d)) as of its writing, and the term index
  is ordered by it, so the `DEPTH` postings of each term that contribute most are read
  first. Their partial sums choose the `RESCORED` likeliest chunks, which are then scored
  exactly (every query term, today's statistics) through the (chunk, term) index. The work
  is bounded by (terms x DEPTH) + (RESCORED x terms) index entries, whatever the terms'
  frequencies. A term with at most `DEPTH` postings is read whole, so only chunks that hold
  none of the rarer terms and none of a common term's strongest postings can be missed:
  the ones whose score is made of many weak contributions (docs/benchmarks.md, "A million
  chunks on PostgreSQL", measures how often on Zipfian text).

MaxScore pruning (candidates from the rare terms, completed by the common ones, exact by a
bound) was built and measured too: at the hybrid depth of 100 its bound rarely held, and it
was slower than summing everything.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import psycopg

from askdocs.text import BM25_B, BM25_K1

EXACT_POSTINGS = 20_000  # postings summed exactly; past this, the impact-ordered plan
DEPTH = 1_000  # postings read per term, strongest first, in the impact-ordered plan
RESCORED = 300  # chunks scored exactly in the impact-ordered plan (at least 3 x k)

_BM25 = "q.idf * p.tf * (%(k1)s + 1) / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.dl / %(avgdl)s))"
_TERMS = (
    "WITH q AS (SELECT w.term, w.idf FROM unnest(%(terms)s::text[], %(idfs)s::float8[]) "
    "AS w(term, idf))"
)
_EXACT = (
    _TERMS + f" SELECT p.chunk_id, SUM({_BM25}) AS score FROM q JOIN askdocs_postings p "
    "ON p.term = q.term WHERE TRUE{allowed} GROUP BY p.chunk_id "
    "ORDER BY score DESC, p.chunk_id LIMIT %(k)s"
)
_IMPACT_ORDERED = (
    _TERMS + f", partial AS (SELECT p.chunk_id, SUM({_BM25}) AS score FROM q CROSS JOIN "
    "LATERAL (SELECT p.chunk_id, p.tf, p.dl FROM askdocs_postings p WHERE p.term = q.term"
    "{allowed} ORDER BY p.impact DESC LIMIT %(depth)s) p GROUP BY p.chunk_id "
    "ORDER BY score DESC, p.chunk_id LIMIT %(rescored)s) "
    f"SELECT p.chunk_id, SUM({_BM25}) AS score FROM partial c CROSS JOIN q "
    "JOIN askdocs_postings p ON p.chunk_id = c.chunk_id AND p.term = q.term "
    "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(k)s"
)


def impact(tf: int, dl: int, avgdl: float) -> float:
    """A posting's document-dependent BM25 factor, the order of the term index.

    >>> round(impact(2, 50, 50.0), 4)  # tf / (tf + k1) for a chunk of average length
    0.625
    """
    return tf / (tf + BM25_K1 * (1 - BM25_B + BM25_B * dl / avgdl))


def search(
    cur: psycopg.Cursor[Any],
    counts: Counter[str],
    k: int,
    allowed: str,
    args: dict[str, Any],
) -> list[tuple[int, float]]:
    """The top `k` (chunk id, score) rows for the query terms `counts`; `allowed` is an SQL
    condition on `p.chunk_id` (or "") over `args`. Exact while the terms have at most
    `EXACT_POSTINGS` postings, impact-ordered past that (the module's docstring)."""
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
        "depth": DEPTH,
        "rescored": max(RESCORED, 3 * k),
    }
    exact = sum(found.values()) <= EXACT_POSTINGS or k > DEPTH
    sql = _EXACT if exact else _IMPACT_ORDERED
    return cur.execute(sql.format(allowed=allowed), params).fetchall()
