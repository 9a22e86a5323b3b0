"""BM25 in PostgreSQL's SQL over the postings table.

The scores are the embedded store's (tantivy's BM25, k1 1.2, b 0.75, with the (k1 + 1)
factor) over the same `Analyzer` terms:

    score(d) = sum over query terms t of w(t) * idf(t) * tf * (k1 + 1) / (tf + k1 * norm(d))

Three plans, chosen per query by how many postings its terms have (`askdocs_terms.df`) and
how many chunks its filter leaves:

- **Exact**, while the terms hold at most `EXACT_POSTINGS` postings together: every posting
  of every term is summed (SciFact: 10 ms a query; 299 of its 300 test queries).
- **Impact-ordered**, past that: a term in half of a million chunks means 500,000 rows to
  aggregate (0.6-0.7 s a query at 1M synthetic chunks). Each posting carries its `impact`,
  the document-dependent factor tf / (tf + k1 * norm(d)) as of its writing, and the term
  index is ordered by it, so the `DEPTH` postings of each term that contribute most are
  read first. Their partial sums choose the `RESCORED` likeliest chunks, which are then
  scored exactly (every query term, today's statistics) through the (chunk, term) index.
  The work is bounded by terms x (DEPTH + RESCORED) index entries, whatever the terms'
  frequencies. A term with at most `DEPTH` postings is read whole, so the chunks that can
  be missed are those whose score is made of several weak contributions of common terms.
  On SciFact with this plan forced on every query, nDCG@10 is unchanged; on the 1M
  synthetic store, where most query words are in most chunks, docs/benchmarks.md ("A
  million chunks on PostgreSQL") measures how much of the exact top 10 and top 100 it
  finds. The depths were chosen there, from the postings of 100 queries replayed offline.
- **Filtered**: a filter that leaves at most `FILTERED_CHUNKS` chunks past the exact plan's
  limit has those chunks' ids read first and their postings of the query terms looked up
  through the (chunk, term) index, exactly. Reading a term's postings in impact order until
  `DEPTH` of them pass a filter that keeps 1% of the chunks would walk a hundred times
  further. A wider filter is applied inside the impact-ordered plan.

The chosen chunks are scored one by one (a lateral join): the planner cannot know that a
common term has half a million postings, and given the chance it hashes all of them.

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
DEPTH = 3_000  # postings read per term, strongest first, in the impact-ordered plan
RESCORED = 1_500  # chunks scored exactly in the impact-ordered plan (at least 3 x k)
FILTERED_CHUNKS = 20_000  # at most this many chunks pass the filter: score each of them

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
_SCORED = (
    " SELECT c.id, s.score FROM {chosen} CROSS JOIN LATERAL (SELECT SUM("
    + _BM25
    + ") AS score FROM q JOIN askdocs_postings p ON p.chunk_id = c.id AND p.term = q.term) s "
    "WHERE s.score IS NOT NULL ORDER BY s.score DESC, c.id LIMIT %(k)s"
)
_FILTERED = _TERMS + _SCORED.format(chosen="unnest(%(ids)s::bigint[]) AS c(id)")
_IMPACT_ORDERED = (
    _TERMS + f", partial AS (SELECT p.chunk_id AS id, SUM({_BM25}) AS score FROM q CROSS JOIN "
    "LATERAL (SELECT p.chunk_id, p.tf, p.dl FROM askdocs_postings p WHERE p.term = q.term"
    "{allowed} ORDER BY p.impact DESC LIMIT %(depth)s) p GROUP BY p.chunk_id "
    "ORDER BY score DESC, p.chunk_id LIMIT %(rescored)s)" + _SCORED.format(chosen="partial c")
)


def impact(tf: int, dl: int, avgdl: float) -> float:
    """A posting's document-dependent BM25 factor, the order of the term index.

    >>> round(impact(2, 50, 50.0), 4)  # tf / (tf + k1) for a chunk of average length
    0.625
    """
    return tf / (tf + BM25_K1 * (1 - BM25_B + BM25_B * dl / avgdl))


def statistics(cur: psycopg.Cursor[Any]) -> tuple[int, float | None]:
    """The stored chunks' count and their mean length in terms (None while there are none)."""
    chunks, tokens = cur.execute("SELECT chunks, tokens FROM askdocs_stats").fetchone()
    return chunks, (tokens / chunks if chunks > 0 and tokens > 0 else None)


def search(
    cur: psycopg.Cursor[Any], counts: Counter[str], k: int, where: str, args: dict[str, Any]
) -> list[tuple[int, float]]:
    """The top `k` (chunk id, score) rows for the query terms `counts`; `where` is an SQL
    condition on `ch` (a chunk; "" for none) over `args`. The plan is chosen by the terms'
    postings and the filter's chunks (the module's docstring)."""
    n, avgdl = statistics(cur)
    if avgdl is None:  # no chunk holds a term
        return []
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
    # "IS TRUE" keeps the filter a hashed subplan, built once: as a semi-join the planner
    # looks each posting's chunk up on its own (42,000 lookups, 5 s, for a 10% filter).
    allowed = (
        f" AND (p.chunk_id IN (SELECT ch.id FROM askdocs_chunks ch WHERE TRUE{where})) IS TRUE"
        if where
        else ""
    )
    if sum(found.values()) <= EXACT_POSTINGS or k > DEPTH:
        return cur.execute(_EXACT.format(allowed=allowed), params).fetchall()
    if where:
        ids = cur.execute(
            f"SELECT ch.id FROM askdocs_chunks ch WHERE TRUE{where} LIMIT {FILTERED_CHUNKS + 1}",
            args,
        ).fetchall()
        if len(ids) <= FILTERED_CHUNKS:
            params["ids"] = [i for (i,) in ids]
            return cur.execute(_FILTERED, params).fetchall()
    return cur.execute(_IMPACT_ORDERED.format(allowed=allowed), params).fetchall()
