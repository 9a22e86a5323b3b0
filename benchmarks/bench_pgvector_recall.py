"""Recall@10 of pgvector's HNSW on MiniLM-shaped vectors, by graph density: what the
PostgreSQL store's m / ef_construction / ef_search would have to be for recall@10 >= 0.95.

    python benchmarks/bench_pgvector_recall.py [--n 100000] [--graphs 16:64,32:128]
        [--vectors shaped|real|real+python] [--queries scifact|held-out]

A bare table (id, embedding vector(384)) in PostgreSQL 16 + pgvector 0.6 from the pgserver
wheel, filled with `run.py`'s MiniLM-shaped vectors (those `bench_postgres_scale.py` stores:
the mean and covariance of the SciFact chunk embeddings, without their clusters). For each
graph the HNSW index is built as that benchmark builds it (one parallel worker per spare
core, 8 GB maintenance memory) and timed; then recall@10 against exact search, and the
single-query p50/p95, for 200 SciFact query embeddings at each ef_search.

`--vectors real` fills the table with real MiniLM embeddings instead, the same number of
them: every distinct sentence of five words or more in the shared data (SciFact, CLAPnq,
2WikiMultihopQA, XQuAD, AG News, rotten tomatoes; about 85,000), embedded once and cached,
in a seeded random order. Same queries, same graphs: the fair comparison for the shaped
vectors at the sizes real text reaches here. `--vectors real+python` adds the sentences of
the docstrings of every Python module installed beside this interpreter (about 260,000
more, so it depends on what is installed). `--queries held-out` asks with 200 sentences of
the pool that are not in the table instead of the SciFact queries.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import os
import re
import sysconfig
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import run
from bench_postgres import database
from bench_postgres_scale import hnsw_recall, shaped_vectors, start_server
from cpu import cpu_name
from pgvector.psycopg import register_vector

from askdocs import config
from askdocs.embeddings import load_embedder

EF_VALUES = (100, 200, 400, 800)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # fixed-width lookbehind: linear
MIN_WORDS = 5
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def shared_texts(data: Path) -> list[str]:
    """Every passage, abstract, article and review in the shared data."""
    texts = []
    for corpus in (data / "scifact" / "corpus.jsonl", data / "clapnq_dev" / "corpus.jsonl"):
        with corpus.open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    for squad in (
        data / "2wikimultihopqa_dev500" / "2wikimultihopqa_dev500.squad.json",
        data / "xquad_en" / "xquad.en.json",
    ):
        articles = json.loads(squad.read_text(encoding="utf-8"))["data"]
        texts += [p["context"] for a in articles for p in a["paragraphs"]]
    with (data / "ag_news_test" / "test.csv").open(encoding="utf-8", newline="") as f:
        texts += [row[2] for row in csv.reader(f)]
    for side in ("pos", "neg"):
        reviews = data / "rotten_tomatoes_mr" / f"rt-polarity.{side}"
        texts += reviews.read_text(encoding="utf-8").splitlines()  # re-encoded (its README)
    return texts


def docstrings(root: Path) -> Iterator[str]:
    """The docstrings of the modules, classes and functions of every .py file under `root`."""
    for file in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, _DOCUMENTED):
                continue
            if doc := ast.get_docstring(node):
                paragraphs = doc.split("\n\n")
                yield from (" ".join(p.split()) for p in paragraphs if not _doctest(p))


def _doctest(paragraph: str) -> bool:
    return paragraph.lstrip().startswith(">>>")


def sentences(texts: Iterable[str]) -> set[str]:
    """The distinct sentences of MIN_WORDS words or more."""
    split = (s.strip() for text in texts for s in _SENTENCE_END.split(text))
    return {s for s in split if len(s.split()) >= MIN_WORDS}


def real_vectors(data: Path, cache: Path, python: bool) -> tuple[run.StoredVectors, str]:
    """MiniLM embeddings of the shared data's distinct sentences (and, with `python`, of the
    installed Python modules' docstrings), in a seeded order, embedded once; and a digest of
    the sentences, which names the cache file and the table, so that a changed pool is never
    mistaken for the one embedded or stored before."""
    pool = sentences(shared_texts(data))
    if python:
        pool |= sentences(docstrings(Path(sysconfig.get_paths()["stdlib"])))
    ordered = sorted(pool)
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:16]
    path = cache / f"real-sentences-{digest}.npy"
    if not path.exists():
        order = np.random.default_rng(run.SEED).permutation(len(ordered))
        embedder = load_embedder(config.load().embedding)
        run.say(f"embedding {len(ordered):,} sentences")
        start = time.perf_counter()
        vectors = embedder.embed([ordered[i] for i in order], truncate=True)
        run.say(f"embedded in {time.perf_counter() - start:.0f} s")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    label = "real MiniLM sentences" + (" (shared data + Python docstrings)" if python else "")
    return run.StoredVectors(label, np.load(path)), digest


def contrast(vectors: run.VectorSource, n: int, queries: np.ndarray) -> dict[str, float]:
    """Medians over the queries: the cosine to the 1st, 10th and 100th neighbour and to the
    average vector, and the relative contrast (mean distance over the 10th neighbour's), the
    measure of how far a query's neighbours stand out; streamed over the vectors."""
    total = np.zeros(len(queries))
    top = np.zeros((len(queries), 0), dtype=np.float32)
    for _, batch in vectors.batches(n):
        sims = queries @ batch.T
        total += sims.sum(axis=1)
        top = -np.sort(-np.concatenate([top, sims], axis=1), axis=1)[:, :100]
    mean = total / n
    return {
        "1st": float(np.median(top[:, 0])),
        "10th": float(np.median(top[:, 9])),
        "100th": float(np.median(top[:, 99])),
        "mean": float(np.median(mean)),
        "contrast": float(np.median((1 - mean) / (1 - top[:, 9]))),
    }


def _holds(conn: psycopg.Connection, table: str, vectors: run.VectorSource, n: int) -> bool:
    """Whether `table`'s first and last vectors are those `vectors` gives (it was written from
    the same source before)."""
    first = last = None
    for ids, batch in vectors.batches(n):
        first = first if first is not None else (int(ids[0]), batch[0].copy())
        last = (int(ids[-1]), batch[-1].copy())
    for i, expected in (first, last):
        row = conn.execute(f"SELECT embedding FROM {table} WHERE id = %s", (i,)).fetchone()
        if row is None or not np.allclose(row[0].to_numpy(), expected):
            return False
    return True


def fill(url: str, vectors: run.VectorSource, n: int, table: str) -> None:
    """`table` holds exactly the first `n` vectors (ids 1..n), written once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        columns = f"id bigint PRIMARY KEY, embedding vector({run.DIM})"
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        count = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if count == n and _holds(conn, table, vectors, n):
            return  # written from the same vectors before
        conn.execute(f"DROP INDEX IF EXISTS {table}_hnsw")  # else every row goes through it
        conn.execute(f"TRUNCATE {table}")
        start = time.perf_counter()
        with conn.cursor() as cur:
            for ids, batch in vectors.batches(n):
                with cur.copy(
                    f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "vector"])
                    for i, vector in zip(ids.tolist(), batch, strict=True):
                        copy.write_row((i, vector))
        run.say(f"{n:,} vectors written in {time.perf_counter() - start:.0f} s")


def build(url: str, table: str, m: int, ef_construction: int) -> float:
    workers = max(1, (os.cpu_count() or 2) - 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {table}_hnsw")
        conn.execute("SET maintenance_work_mem = '8GB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        start = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops) "
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
    parser.add_argument("--vectors", choices=("shaped", "real", "real+python"), default="shaped")
    parser.add_argument("--queries", choices=("scifact", "held-out"), default="scifact")
    args = parser.parse_args()
    scifact, vectors = shaped_vectors(args.data, args.cache)
    embedder = load_embedder(config.load().embedding)
    queries = embedder.embed(list(scifact.queries.values())[:200], truncate=True)
    table = "shaped"
    if args.vectors != "shaped":
        vectors, digest = real_vectors(args.data, args.cache, python=args.vectors == "real+python")
        table = f"real_{digest}"
        spare = len(vectors.data) - (200 if args.queries == "held-out" else 0)
        if args.n > spare:
            raise SystemExit(
                f"--vectors {args.vectors} has {spare:,} vectors to store, not {args.n:,}"
            )
        if args.queries == "held-out":
            queries = vectors.data[-200:]
    elif args.queries == "held-out":
        raise SystemExit("--queries held-out needs real vectors")
    truth = run.exact_top_k(vectors, args.n, queries)
    server = start_server(args.pgdata, args.cache)
    url = database(server.get_uri(), f"{table}{args.n}")
    fill(url, vectors, args.n, table)
    rows = []
    for graph in args.graphs.split(","):
        m, ef_construction = (int(x) for x in graph.split(":"))
        seconds = build(url, table, m, ef_construction)
        run.say(f"m {m}, ef_construction {ef_construction}: built in {seconds:.0f} s")
        for ef in EF_VALUES:
            recall, latency = hnsw_recall(url, table, queries, truth, ef)
            rows.append((m, ef_construction, seconds, ef, recall, latency))
    server.cleanup()
    asked = "held-out sentences" if args.queries == "held-out" else "SciFact queries"
    print(f"\nCPU: {cpu_name()}; {args.n:,} {vectors.name} vectors; {len(queries)} {asked}")
    c = contrast(vectors, args.n, queries)
    print(
        f"median cosine to the 1st / 10th / 100th neighbour {c['1st']:.3f} / {c['10th']:.3f} / "
        f"{c['100th']:.3f}, to all {c['mean']:.3f}; relative contrast {c['contrast']:.2f}\n"
    )
    print(f"| m | ef_construction | build s | ef_search | recall@{run.K} | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for m, efc, seconds, ef, recall, latency in rows:
        print(
            f"| {m} | {efc} | {seconds:.0f} | {ef} | {recall:.3f} | "
            f"{latency['p50_ms']:.2f} | {latency['p95_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
