"""The PostgreSQL store's impact-ordered keyword plan replayed offline, to choose its depths.

    python benchmarks/replay_keyword_plans.py [--url URL] [--queries 100]

Reads, once, every posting of the terms of `run.py`'s first `--queries` synthetic queries out
of the 1M PostgreSQL store that `bench_postgres_scale.py` loads (cached in
~/.cache/askdocs-bench/replay-postings.pkl), then computes for each (postings read per term,
chunks rescored) pair what `store/pg_keyword.py`'s impact-ordered plan would return, and how
much of the exact top 10 and top 100 (k = 100, the hybrid depth) that is. Timings in
PostgreSQL are `bench_postgres_scale.py`'s business; this only measures what is found.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import psycopg

from askdocs.store import pg_keyword
from askdocs.text import BM25_K1, Analyzer

CACHE = Path.home() / ".cache/askdocs-bench"
URL = f"postgresql://postgres:@/synthetic1000000?host={CACHE / 'pgdata'}"
PAIRS = ((1000, 300), (2000, 1000), (3000, 1500), (2000, 2000), (5000, 2000), (3000, 10**9))
K = 100


def postings(url: str, queries: list[str], cache: Path) -> dict:
    """Each query's term counts and each term's postings (chunk, tf, dl, impact), strongest
    first, with the store's chunk count and mean length."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    analyzer, out = Analyzer(), {"queries": [], "terms": {}}
    with psycopg.connect(url) as conn:
        n, tokens = conn.execute("SELECT chunks, tokens FROM askdocs_stats").fetchone()
        out["n"], out["avgdl"] = n, tokens / n
        for query in queries:
            counts = dict(Counter(analyzer.tokens(query)))
            out["queries"].append((query, counts))
            for term in counts.keys() - out["terms"].keys():
                rows = conn.execute(
                    "SELECT chunk_id, tf, dl, impact FROM askdocs_postings WHERE term = %s "
                    "ORDER BY impact DESC, chunk_id",
                    (term,),
                ).fetchall()
                out["terms"][term] = np.array(rows, dtype=np.float64).reshape(-1, 4)
    cache.write_bytes(pickle.dumps(out))
    return out


def top(scores: np.ndarray, k: int, among: np.ndarray | None = None) -> np.ndarray:
    """The ids of the `k` best nonzero `scores` (ties by id), or of the best `among` ids."""
    ids = np.flatnonzero(scores) if among is None else among[scores[among] != 0]
    return ids[np.lexsort((ids, -scores[ids]))][:k]


def replay(data: dict, counts: dict[str, int], depth: int, rescored: int) -> tuple[list, list]:
    """(exact top K, the impact-ordered plan's top K) chunk ids for one query."""
    n, avgdl = data["n"], data["avgdl"]
    size = 1 + max(int(rows[:, 0].max()) for rows in data["terms"].values() if len(rows))
    exact, partial = np.zeros(size), np.zeros(size)
    for term, w in counts.items():
        rows = data["terms"].get(term)
        if rows is None or not len(rows):
            continue
        idf = w * math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
        tf, dl, ids = rows[:, 1], rows[:, 2], rows[:, 0].astype(np.int64)
        scores = idf * (BM25_K1 + 1) * pg_keyword.impact(tf, dl, avgdl)
        np.add.at(exact, ids, scores)
        np.add.at(partial, ids[:depth], scores[:depth])
    chosen = top(partial, max(rescored, 3 * K))
    return top(exact, K).tolist(), top(exact, K, among=chosen).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    record = json.loads((CACHE / "synthetic-1000000/build.json").read_text())
    data = postings(args.url, record["queries"][: args.queries], CACHE / "replay-postings.pkl")
    print(f"{len(data['queries'])} queries, {len(data['terms'])} terms\n")
    print("| postings per term | chunks rescored | exact top 10 found | exact top 100 found |")
    print("|---:|---:|---:|---:|")
    for depth, rescored in PAIRS:
        found10, found100 = [], []
        for _, counts in data["queries"]:
            truth, got = replay(data, counts, depth, rescored)
            if truth:
                found10.append(len(set(got[:10]) & set(truth[:10])) / len(truth[:10]))
                found100.append(len(set(got) & set(truth)) / len(truth))
        label = "all" if rescored >= 10**9 else f"{rescored:,}"
        print(f"| {depth:,} | {label} | {np.mean(found10):.3f} | {np.mean(found100):.3f} |")


if __name__ == "__main__":
    main()
