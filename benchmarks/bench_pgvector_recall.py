"""Recall@10 of pgvector's HNSW on MiniLM-shaped vectors, by graph density: what the
PostgreSQL store's m / ef_construction / ef_search would have to be for recall@10 >= 0.95.

    python benchmarks/bench_pgvector_recall.py [--n 100000] [--graphs 16:64,32:128]

A bare table (id, embedding vector(384)) in PostgreSQL 16 + pgvector 0.6 from the pgserver
wheel, filled with `run.py`'s MiniLM-shaped vectors (those `bench_postgres_scale.py` stores:
the mean and covariance of the SciFact chunk embeddings, without their clusters). For each
graph the HNSW index is built as that benchmark builds it (one parallel worker per spare
core, 8 GB maintenance memory) and timed; then recall@10 against exact search, and the
single-query p50/p95, for 200 SciFact query embeddings at each ef_search.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import psycopg
import run
from bench_postgres import database
from bench_postgres_scale import hnsw_recall, shaped_vectors, start_server
from cpu import cpu_name
from pgvector.psycopg import register_vector

from askdocs import config
from askdocs.embeddings import load_embedder

EF_VALUES = (100, 200, 400, 800)
_COPY = "COPY shaped (id, embedding) FROM STDIN WITH (FORMAT BINARY)"


def fill(url: str, vectors: run.Vectors, n: int) -> None:
    """The table holds exactly the first `n` vectors (ids 1..n), written once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        columns = f"id bigint PRIMARY KEY, embedding vector({run.DIM})"
        conn.execute(f"CREATE TABLE IF NOT EXISTS shaped ({columns})")
        if conn.execute("SELECT COUNT(*) FROM shaped").fetchone()[0] == n:
            return
        conn.execute("TRUNCATE shaped")
        start = time.perf_counter()
        with conn.cursor() as cur:
            for ids, batch in vectors.batches(n):
                with cur.copy(
                    "COPY shaped (id, embedding) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "vector"])
                    for i, vector in zip(ids.tolist(), batch, strict=True):
                        copy.write_row((i, vector))
        run.say(f"{n:,} vectors written in {time.perf_counter() - start:.0f} s")


def build(url: str, m: int, ef_construction: int) -> float:
    workers = max(1, (os.cpu_count() or 2) - 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS shaped_hnsw")
        conn.execute("SET maintenance_work_mem = '8GB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        start = time.perf_counter()
        conn.execute(
            "CREATE INDEX shaped_hnsw ON shaped USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = {m}, ef_construction = {ef_construction})"
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors")
    parser.add_argument("--graphs", default="16:64,32:128", help="m:ef_construction,...")
    parser.add_argument("--data", type=Path, default=run.DEFAULT_DATA, help="holds scifact/")
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    parser.add_argument("--pgdata", type=Path, default=run.DEFAULT_CACHE / "pgdata")
    args = parser.parse_args()
    scifact, shaped = shaped_vectors(args.data, args.cache)
    embedder = load_embedder(config.load().embedding)
    queries = embedder.embed(list(scifact.queries.values())[:200], truncate=True)
    truth = run.exact_top_k(shaped, args.n, queries)
    server = start_server(args.pgdata, args.cache)
    url = database(server.get_uri(), f"shaped{args.n}")
    fill(url, shaped, args.n)
    rows = []
    for graph in args.graphs.split(","):
        m, ef_construction = (int(x) for x in graph.split(":"))
        seconds = build(url, m, ef_construction)
        run.say(f"m {m}, ef_construction {ef_construction}: built in {seconds:.0f} s")
        for ef in EF_VALUES:
            recall, latency = hnsw_recall(url, "shaped", queries, truth, ef)
            rows.append((m, ef_construction, seconds, ef, recall, latency))
    server.cleanup()
    print(f"\nCPU: {cpu_name()}; {args.n:,} MiniLM-shaped vectors; {len(queries)} queries")
    print(f"| m | ef_construction | build s | ef_search | recall@{run.K} | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for m, efc, seconds, ef, recall, latency in rows:
        print(
            f"| {m} | {efc} | {seconds:.0f} | {ef} | {recall:.3f} | "
            f"{latency['p50_ms']:.2f} | {latency['p95_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
