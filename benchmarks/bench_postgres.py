"""SciFact on PostgreSQL + pgvector against the embedded store, in one run.

    python benchmarks/bench_postgres.py [--data ../shared/data] [--pgdata DIR]

Starts PostgreSQL 16 + pgvector 0.6 from the pgserver wheel (data kept in `--pgdata`,
default ~/.cache/askdocs-bench/pgdata), copies the embedded SciFact store into it with
`askdocs.migrate` (no embedding: both stores hold the same vectors; the embedded store is
built first with `askdocs eval retrieval` if missing), then scores keyword, dense and hybrid
retrieval on SciFact test with `askdocs.evaluate` on: the embedded store; PostgreSQL with
BM25 computed in SQL; the same with the impact-ordered keyword plan forced on every query
(`store/pg_keyword.py`; at SciFact's size nearly every query is small enough for the exact
plan); PostgreSQL with `ts_rank_cd`. Prints nDCG@10, per-query p50 latency
(query embedding included) and the paired randomization test of each PostgreSQL row against
the embedded store's, with the CPU that ran it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import psycopg
from cpu import cpu_name

from askdocs import evaluate
from askdocs.kb import KnowledgeBase
from askdocs.migrate import migrate
from askdocs.store import pg_keyword

MODES = ("keyword", "dense", "hybrid-rrf")
NDCG = "ndcg@10"


def database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE DATABASE {name}")
    return admin.replace("/postgres?", f"/{name}?", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    cache = Path.home() / ".cache/askdocs-bench"
    parser.add_argument("--pgdata", type=Path, default=cache / "pgdata")
    args = parser.parse_args()
    scifact = (args.data / "scifact").resolve()
    import pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", str(cache / "runtime"))
    server = pgserver.get_server(args.pgdata, cleanup_mode="stop")
    settings = evaluate.eval_settings(scifact)
    with KnowledgeBase.open(settings) as kb:  # the embedded store, built if missing
        evaluate.evaluate_retrieval(kb, scifact, modes=("keyword",))
    url = database(server.get_uri(), "scifact")
    start = time.perf_counter()
    report = migrate(settings.store, url, index=settings.index)
    print(f"migrated {report.copied} documents ({report.skipped} already there) in "
          f"{time.perf_counter() - start:.1f} s; {report.chunks} chunks")  # fmt: skip
    rows = []
    baseline: dict[str, evaluate.ModeResult] = {}
    default = pg_keyword.EXACT_POSTINGS
    for name, store, ranking, exact_postings in [
        ("embedded (SQLite, tantivy BM25, exact vectors)", settings.store, "bm25", default),
        ("PostgreSQL, BM25 in SQL", url, "bm25", default),
        ("PostgreSQL, BM25 in SQL, impact-ordered plan for every query", url, "bm25", 0),
        ("PostgreSQL, ts_rank_cd", url, "ts_rank_cd", default),
    ]:
        pg_keyword.EXACT_POSTINGS = exact_postings
        index = dataclasses.replace(settings.index, keyword_ranking=ranking)
        chosen = dataclasses.replace(settings, store=store, index=index)
        with KnowledgeBase.open(chosen) as kb:
            kb.search("warm up", k=1)  # load the embedder and warm the caches
            result = evaluate.evaluate_retrieval(kb, scifact, modes=MODES)
        for mode in result.results:
            base = baseline.setdefault(mode.mode, mode)
            p = "—"
            if base is not mode:
                ids = sorted(mode.per_query)
                value = evaluate.paired_randomization_test(
                    [base.per_query[q][NDCG] for q in ids], [mode.per_query[q][NDCG] for q in ids]
                )
                p = f"{value:.3f}"
            ndcg, p50 = mode.metrics[NDCG], mode.latency["p50_ms"]
            rows.append((name, mode.mode, ndcg, ndcg - base.metrics[NDCG], p, p50,
                         p50 / base.latency["p50_ms"]))  # fmt: skip
    server.cleanup()
    machine = f"{cpu_name()}, {os.cpu_count()} vCPU"
    print(f"\nCPU: {machine}; SciFact test, {report.documents} documents, {report.chunks} chunks")
    print("command: python benchmarks/bench_postgres.py\n")
    print("| store | mode | nDCG@10 | vs embedded | p (paired) | p50 ms | p50 vs embedded |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, ndcg, delta, p, p50, ratio in rows:
        print(f"| {name} | {mode} | {ndcg:.4f} | {delta:+.4f} | {p} | {p50:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
