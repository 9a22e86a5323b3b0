"""A million synthetic chunks on PostgreSQL + pgvector against the embedded store, in one run.

    python benchmarks/bench_postgres_scale.py [--n 1000000] [--pgdata DIR] [--cache DIR]

PostgreSQL 16 + pgvector 0.6 from the pgserver wheel (data in `--pgdata`, default
~/.cache/askdocs-bench/pgdata). The store holds `run.py`'s synthetic chunks (Zipfian text, 10
chunks a document, every tenth document Markdown) with MiniLM-shaped vectors (`run.py`:
the mean and covariance of the SciFact chunk embeddings, without their clusters), written
through `PostgresStore.write` in batches of 5,000 chunks with the HNSW index dropped, which
is then built once with the store's parameters (pgvector's m=16, ef_construction=64), as a
bulk load into pgvector is done. The load is kept in the database and reused by later runs.

Then, with the embedded synthetic store of the same size from `run.py`'s cache (written if
missing; its HNSW graph is the one `run.py --vectors ...` installed last), interleaved query
by query: p50/p95 of `KnowledgeBase.search` per mode (query embedding included) for
`run.py`'s 300 queries, and hybrid search filtered by a path glob (1,000 documents) and by
kind (10%). Keyword search's two plans on PostgreSQL (`store/pg_keyword.py`), the first 100
queries at the hybrid depth (k = 100): every posting summed against the impact-ordered plan
the store uses at this size, p50/p95 and how many of the exact top 10 and top 100 the
impact-ordered plan returns. Recall@10 of pgvector's HNSW against exact search over the same
vectors, for 200 SciFact query embeddings, at the store's ef_search (192) and higher.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import run
from bench_postgres import database
from cpu import cpu_name
from pgvector.psycopg import register_vector

from askdocs import config
from askdocs.embeddings import load_embedder
from askdocs.evaluate import BeirDataset, eval_settings, latency_summary, load_beir
from askdocs.kb import KnowledgeBase, embedder_spec
from askdocs.retrieval import Filters
from askdocs.store import pg_keyword
from askdocs.store.postgres import HNSW_EF_CONSTRUCTION, HNSW_M, PostgresStore

EF_VALUES = (192, 400, 800)
FILTERS = {
    "hybrid, filter path glob, 1000 docs": Filters(path_glob="/synthetic/0000/*"),
    "hybrid, filter kind md, 10%": Filters(kinds=("md",)),
}


def load(url: str, n: int, vectors: run.Vectors, cache: Path, embedder_id: str) -> dict:
    """Write the synthetic chunks into the store at `url` and build its HNSW index, once
    (each step is recorded as it ends, so an interrupted run resumes); their times."""
    record_file = cache / f"postgres-synthetic-{n}.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    if record.get("format") != run.CACHE_FORMAT:
        record = {"format": run.CACHE_FORMAT}
    settings = config.load().index
    if "write_s" not in record:
        texts = run.bench_keyword.synthetic_texts(n, seed=run.SEED)
        start = time.perf_counter()
        with PostgresStore(url, embedder_id=embedder_id, dim=run.DIM, settings=settings) as store:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP INDEX IF EXISTS askdocs_chunks_embedding")
                done = conn.execute("SELECT COUNT(*) FROM askdocs_chunks").fetchone()[0]
            if done:
                raise SystemExit(f"{url} holds {done:,} chunks of an interrupted load: drop it")
            for ids, batch in vectors.batches(n):
                first_doc = int(ids[0] - 1) // run.CHUNKS_PER_DOC
                writes = []
                for j in range(len(ids) // run.CHUNKS_PER_DOC):
                    rows = slice(j * run.CHUNKS_PER_DOC, (j + 1) * run.CHUNKS_PER_DOC)
                    parts = texts[int(ids[rows][0]) - 1 : int(ids[rows][-1])]
                    writes.append(run.synthetic_write(first_doc + j, parts, batch[rows]))
                store.write(writes)
                if int(ids[-1]) % 100_000 == 0:
                    run.say(f"{int(ids[-1]):,} chunks in {time.perf_counter() - start:.0f} s")
        record["write_s"] = time.perf_counter() - start
        record_file.write_text(json.dumps(record))
    if "hnsw_s" not in record:
        run.say("building the HNSW index")
        start = time.perf_counter()
        workers = max(1, (os.cpu_count() or 2) - 1)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX IF EXISTS askdocs_chunks_embedding")
            conn.execute("SET maintenance_work_mem = '8GB'")
            conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
            conn.execute(
                "CREATE INDEX askdocs_chunks_embedding ON askdocs_chunks USING hnsw "
                f"(embedding vector_cosine_ops) WITH (m = {HNSW_M}, "
                f"ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
            first, last = conn.execute("SELECT MIN(id), MAX(id) FROM askdocs_chunks").fetchone()
        # Chunk ids as `run.Vectors.batches` numbers them (1..n): exact search can be compared.
        assert (first, last) == (1, n), (first, last)
        record["hnsw_s"] = time.perf_counter() - start
        record_file.write_text(json.dumps(record))
    return record


def recall(url: str, vectors: run.Vectors, n: int, queries: np.ndarray) -> list[tuple]:
    truth = run.exact_top_k(vectors, n, queries)
    rows = []
    for ef in EF_VALUES:
        value, summary = hnsw_recall(url, "askdocs_chunks", queries, truth, ef)
        rows.append((ef, value, summary["p50_ms"], summary["p95_ms"]))
    return rows


def hnsw_recall(
    url: str, table: str, queries: np.ndarray, truth: np.ndarray, ef: int
) -> tuple[float, dict]:
    """Recall@K of `table`'s HNSW index at `ef_search` against the exact `truth` ids, and
    the single-query latency summary."""
    found, seconds = [], []
    with psycopg.connect(url) as conn:
        register_vector(conn)
        with conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            for query in queries:
                begin = time.perf_counter()
                ids = conn.execute(
                    f"SELECT id FROM {table} ORDER BY embedding <=> %s LIMIT %s", (query, run.K)
                ).fetchall()
                seconds.append(time.perf_counter() - begin)
                found.append([r[0] for r in ids])
    hits = [len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / run.K, latency_summary(seconds)


def keyword_plans(store: PostgresStore, queries: list[str], k: int = 100) -> list[tuple]:
    """Per plan: p50 and p95 ms, and the share of the exact plan's top 10 and top `k` found."""
    found: dict[str, list[list[int]]] = {"exact": [], "impact-ordered": []}
    seconds: dict[str, list[float]] = {"exact": [], "impact-ordered": []}
    default = pg_keyword.EXACT_POSTINGS
    try:
        for query in queries:
            for plan in found:
                pg_keyword.EXACT_POSTINGS = 10**12 if plan == "exact" else default
                begin = time.perf_counter()
                ids, _ = store.search_keyword(query, k)
                seconds[plan].append(time.perf_counter() - begin)
                found[plan].append(ids.tolist())
    finally:
        pg_keyword.EXACT_POSTINGS = default
    rows = []
    for plan, lists in found.items():
        summary = latency_summary(seconds[plan])
        shares = [
            [len(set(got[:depth]) & set(truth[:depth])) / max(1, len(truth[:depth]))
             for got, truth in zip(lists, found["exact"], strict=True)]
            for depth in (10, k)
        ]  # fmt: skip
        rows.append((plan, summary["p50_ms"], summary["p95_ms"], *map(np.mean, shares)))
    return rows


def shaped_vectors(data: Path, cache: Path) -> tuple[BeirDataset, run.Vectors]:
    """SciFact, and vectors shaped like the chunk embeddings of its store (`run.py`)."""
    scifact = load_beir(data / "scifact")
    store = Path(eval_settings(data / "scifact").store)
    shaped = run.minilm_shaped(store, len(scifact.corpus), cache)
    if shaped is None:
        raise SystemExit("needs the SciFact store to shape the vectors: askdocs eval retrieval")
    return scifact, shaped


def start_server(pgdata: Path, cache: Path) -> Any:  # pgserver ships no type hints
    """PostgreSQL + pgvector from the pgserver wheel, data in `pgdata`."""
    import pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", str(cache / "runtime"))
    return pgserver.get_server(pgdata, cleanup_mode="stop")


def timed(kbs: dict[str, KnowledgeBase], queries: list[str], filters: Filters | None) -> dict:
    """Seconds per search, per store and mode, the stores interleaved query by query."""
    modes = ("hybrid",) if filters else run.MODES
    for kb in kbs.values():
        for query in queries[:5]:
            for mode in modes:
                kb.search(query, mode=mode, filters=filters)
    seconds: dict[tuple[str, str], list[float]] = {}
    for query in queries:
        for name, kb in kbs.items():
            for mode in modes:
                begin = time.perf_counter()
                kb.search(query, mode=mode, filters=filters)
                seconds.setdefault((name, mode), []).append(time.perf_counter() - begin)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="chunks")
    parser.add_argument("--data", type=Path, default=run.DEFAULT_DATA, help="holds scifact/")
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    parser.add_argument("--pgdata", type=Path, default=run.DEFAULT_CACHE / "pgdata")
    args = parser.parse_args()
    scifact, shaped = shaped_vectors(args.data, args.cache)
    settings = config.load()
    embedder_id = embedder_spec(settings)[0]
    embedder = load_embedder(settings.embedding)
    server = start_server(args.pgdata, args.cache)
    url = database(server.get_uri(), f"synthetic{args.n}")
    built = load(url, args.n, shaped, args.cache, embedder_id)
    directory, record = run.synthetic_store(args.n, args.cache, embedder_id, 300)
    queries = record["queries"][:300]
    stores = {"embedded": str(directory), "PostgreSQL": url}
    kbs = {
        name: KnowledgeBase.open(
            dataclasses.replace(settings, store=store), create=False, embedder=embedder
        )
        for name, store in stores.items()
    }
    rows = []
    for filters in (None, *FILTERS.values()):
        label = next((k for k, v in FILTERS.items() if v is filters), "")
        found = timed(kbs, queries if filters is None else queries[:100], filters)
        for (name, mode), seconds in found.items():
            summary = latency_summary(seconds)
            rows.append((name, label or mode, summary["p50_ms"], summary["p95_ms"], len(seconds)))
    for kb in kbs.values():
        kb.close()
    with PostgresStore(
        url, embedder_id=embedder_id, dim=run.DIM, settings=settings.index, create=False
    ) as store:
        plans = keyword_plans(store, queries[:100])
    query_vectors = embedder.embed(list(scifact.queries.values())[:200], truncate=True)
    recalls = recall(url, shaped, args.n, query_vectors)
    server.cleanup()
    base = {mode: p50 for name, mode, p50, _, _ in rows if name == "embedded"}
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} vCPU; {args.n:,} synthetic chunks")
    print("command: python benchmarks/bench_postgres_scale.py\n")
    print(
        f"PostgreSQL load: {built['write_s']:.0f} s through PostgresStore.write without the "
        f"HNSW index, then {built['hnsw_s']:.0f} s to build it.\n"
    )
    print("| store | mode | p50 ms | p95 ms | p50 vs embedded | queries |")
    print("|---|---|---:|---:|---:|---:|")
    for name, mode, p50, p95, count in rows:
        print(f"| {name} | {mode} | {p50:.1f} | {p95:.1f} | {p50 / base[mode]:.2f}x | {count} |")
    print("\n| PostgreSQL keyword plan (k = 100) | p50 ms | p95 ms | exact top 10 found "
          "| exact top 100 found |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for plan, p50, p95, top10, top100 in plans:
        print(f"| {plan} | {p50:.1f} | {p95:.1f} | {top10:.3f} | {top100:.3f} |")
    print(f"\n| pgvector HNSW ef_search | recall@{run.K} | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|")
    for ef, value, p50, p95 in recalls:
        print(f"| {ef} | {value:.3f} | {p50:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()
