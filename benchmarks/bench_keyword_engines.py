"""Keyword-index options side by side: askdocs' keyword index, SQLite FTS5 and tantivy.

    python benchmarks/bench_keyword_engines.py                     # SciFact, 100k and 1M chunks
    python benchmarks/bench_keyword_engines.py --sizes 100000      # SciFact and 100k
    python benchmarks/bench_keyword_engines.py --sizes none        # SciFact only

Engines (BM25 k1=1.2, b=0.75 wherever it can be set):
- `ours`: askdocs' keyword index as the embedded store keeps it (`askdocs.store.keywords`:
  tantivy over the default `Analyzer`'s terms, with a `kind` field that the 10% filter asks
  for). Until the replacement this decided, it was askdocs' own BM25 engine (`keyword.py`,
  deleted; the first tables in docs/benchmarks.md come from it, at commit dc7549a).
- `fts5`, `fts5-contentless`: an FTS5 table in its own SQLite file holding the Analyzer's terms
  joined by spaces, `tokenize="ascii tokenchars '_'"` (keeps every term whole; `unicode61` splits
  on "_" and folds diacritics), ranked with `bm25()`. The contentless table
  stores no copy of the terms, so a delete must hand them back (`'delete'` command).
- `tantivy`: tantivy 0.27 with the Analyzer's terms on its `whitespace` tokenizer.
- `tantivy-en_stem`: tantivy's own `en_stem` analyzer on the raw text (no stop words).
- `tantivy-kind`: `tantivy` with an indexed `kind` field per chunk; the 10% filter is a term
  query on it (how a store would filter by kind) instead of a set of chunk ids.
- `tantivy-path`: the same with a `path` per document of about 8 chunks; the filter is a
  regular expression over paths (`/corpus/0/.*`), as a path glob would become.

SciFact: the chunks of the `askdocs eval` store (`eval-scifact-int8`, built first if missing),
each keyword engine asked for `depth` chunks per test query; a document ranks at its best chunk.
Hybrid fuses the store's dense ranking with each engine's through `askdocs.fusion` as
`askdocs.retrieval` does with the default `SearchSettings`. nDCG@10 and the paired randomization
test come from `askdocs.evaluate`. Synthetic: `run.py`'s Zipfian chunks (ids 1..N) and queries;
the dense half is `VectorIndex` (HNSW, default parameters) over N random unit vectors, built by
`run.graph` and shared with `run.py`'s cache. Indexes are cached under --cache; their build time
is the one measured when they were built. Timings interleave the engines query by query.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import run
import tantivy
from keyword_engines import Engine, Terms, open_engine, remove_engine

from askdocs import config
from askdocs.config import SearchSettings
from askdocs.embeddings import load_embedder
from askdocs.evaluate import latency_summary, load_beir, paired_randomization_test, per_query
from askdocs.fusion import Ranking, fuse_convex, fuse_rrf
from askdocs.store.sqlite import DATABASE
from askdocs.text import Analyzer
from askdocs.vectors import HnswParams, VectorIndex

ENGINES = (
    "ours", "fts5", "fts5-contentless", "tantivy", "tantivy-en_stem", "tantivy-kind",
    "tantivy-path",
)  # fmt: skip
CACHE_FORMAT = 1
BATCH = run.WRITE_BATCH  # chunks per build step: one store transaction
SEARCH = SearchSettings()
GOALS = {100_000: 15.0, 1_000_000: 40.0}  # hybrid p50 ms at (at least) this many chunks


def say(message: str) -> None:
    run.say(f"{message} (load {os.getloadavg()[0]:.2f})")


def columns(spec: str) -> tuple[str, ...]:
    return tuple(spec.split("|"))


@dataclass(slots=True)
class Corpus:
    label: str
    directory: Path  # where its indexes are cached
    n: int
    texts: Callable[[], Sequence[str]]  # keyword text of chunk i + 1 (ids 1..n), made on demand
    queries: list[str]
    allowed: np.ndarray  # a filter: the chunks of every tenth document


def build_or_open(corpus: Corpus, names: Sequence[str], terms: Terms, rebuild: bool) -> dict:
    """Open each engine's cached index, building it first if missing; returns the engines and
    their build record (build seconds, size, open seconds)."""
    record_file = corpus.directory / "build.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    if record.get("format") != CACHE_FORMAT or record.get("n") != corpus.n:
        record = {"format": CACHE_FORMAT, "n": corpus.n, "engines": {}}
    if rebuild:
        record["engines"] = {}
    corpus.directory.mkdir(parents=True, exist_ok=True)
    engines: dict[str, Engine] = {}
    for name in names:
        built = record["engines"].get(name)
        if built is None:
            remove_engine(name, corpus.directory)
            texts = corpus.texts()
            say(f"{corpus.label}: building {name}")
            start, cpu = time.perf_counter(), time.process_time()
            engine = open_engine(name, corpus.directory, terms, corpus.allowed)
            for first in range(0, corpus.n, BATCH):
                ids = np.arange(first + 1, min(first + BATCH, corpus.n) + 1, dtype=np.int64)
                engine.add(ids, texts[first : first + BATCH])
            engine.finish()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            built = {"wall": wall, "cpu": cpu, "load": os.getloadavg()[0]}
            engine.close()
        start = time.perf_counter()
        engines[name] = open_engine(name, corpus.directory, terms, corpus.allowed)
        built |= {"open": time.perf_counter() - start, "size": engines[name].size()}
        record["engines"][name] = built
        record_file.write_text(json.dumps(record, indent=1))
    return {"engines": engines, "built": record["engines"]}


def synthetic_corpus(n: int, cache: Path, n_queries: int) -> Corpus:
    directory = cache / "keyword-engines" / f"synthetic-{n}"
    queries_file = directory / "queries.json"
    texts = functools.cache(lambda: run.bench_keyword.synthetic_texts(n, seed=run.SEED))

    if queries_file.exists() and len(json.loads(queries_file.read_text())) >= n_queries:
        queries = json.loads(queries_file.read_text())[:n_queries]
    else:
        queries = run.synthetic_queries(texts(), n_queries)
        directory.mkdir(parents=True, exist_ok=True)
        queries_file.write_text(json.dumps(queries))
    ids = np.arange(1, n + 1, dtype=np.int64)
    allowed = ids[((ids - 1) // run.CHUNKS_PER_DOC) % 10 == 0]  # run.py's "kind md" documents
    return Corpus(f"synthetic {n:,}", directory, n, texts, queries, allowed)


@dataclass(slots=True)
class SciFact:
    corpus: Corpus
    ids: np.ndarray  # store chunk id of corpus chunk i + 1
    docs: dict[int, list[str]]  # store chunk id -> BEIR doc ids holding it
    query_ids: list[str]
    qrels: dict[str, dict[str, int]]
    dense: list[Ranking]  # the store's dense ranking per query, `depth` deep
    dense_seconds: list[float]  # dense search alone, per query
    embed_seconds: list[float]  # embedding one query, per query


def load_scifact(data: Path, cache: Path) -> SciFact:
    """Chunks, their documents and the dense rankings of the `askdocs eval` SciFact store."""
    folder = data / "scifact"
    beir = load_beir(folder)
    embedder = load_embedder(config.load().embedding)
    kb = run.scifact_kb(folder, embedder, build=True)
    assert kb is not None
    with kb:
        title_in = kb.settings.index.title_in_keywords
        with sqlite3.connect(f"file:{kb.settings.store / DATABASE}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT ch.id, ch.text, ct.title FROM chunks ch JOIN contents ct "
                "ON ct.id = ch.content_id ORDER BY ch.id"
            ).fetchall()
            paths = db.execute(
                "SELECT ch.id, d.path FROM chunks ch JOIN documents d "
                "ON d.content_id = ch.content_id ORDER BY d.id"
            ).fetchall()
        queries = list(beir.queries.values())
        dense, dense_seconds, embed_seconds = [], [], []
        for query in queries:
            marks = [time.perf_counter()]
            vector = kb.embedder.embed([query], truncate=True)[0]
            marks.append(time.perf_counter())
            dense.append(kb.store.search_dense(vector, SEARCH.depth))
            marks.append(time.perf_counter())
            embed_seconds.append(marks[1] - marks[0])
            dense_seconds.append(marks[2] - marks[1])
    texts = [f"{title}\n{text}" if title_in and title else text for _, text, title in rows]
    docs: dict[int, list[str]] = {}
    prefix = f"beir://{folder.name}/"
    for chunk_id, path in paths:
        docs.setdefault(chunk_id, []).append(path.removeprefix(prefix))
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    # Engines index the chunks as 1..n (the store's ids need not be dense); the filter is the
    # chunks of every tenth document.
    position = {int(c): i + 1 for i, c in enumerate(ids)}
    tenth = set(sorted({d[0] for d in docs.values()})[::10])
    allowed = np.array([position[c] for c, d in docs.items() if d[0] in tenth], dtype=np.int64)
    dense = [(np.array([position[int(c)] for c in i]), s) for i, s in dense]
    label, directory = f"SciFact ({len(texts):,} chunks)", cache / "keyword-engines" / "scifact"
    corpus = Corpus(label, directory, len(texts), lambda: texts, queries, np.sort(allowed))
    query_ids = list(beir.queries)
    return SciFact(corpus, ids, docs, query_ids, beir.qrels, dense, dense_seconds, embed_seconds)


def documents(scifact: SciFact, ranking: Ranking, k: int = 10) -> list[str]:
    """The first `k` distinct documents of a ranking of chunks (a document ranks at its best
    chunk; identical content under several ids counts for each)."""
    ranked: dict[str, None] = {}
    for position in ranking[0].tolist():
        for doc in scifact.docs[int(scifact.ids[position - 1])]:
            ranked.setdefault(doc)
    return list(ranked)[:k]


def hybrid(dense: Ranking, keyword: Ranking, fusion: str) -> Ranking:
    """Fusion as `askdocs.retrieval._combine` does it, with the default settings."""
    rankings = {"dense": dense, "keyword": keyword}
    if fusion == "rrf":
        return fuse_rrf(rankings, k=SEARCH.rrf_k)
    w = SEARCH.convex_weight
    return fuse_convex(rankings, weights={"dense": w, "keyword": 1.0 - w})


def quality(scifact: SciFact, engines: dict[str, Engine]) -> run.Table:
    runs: dict[str, dict[str, dict[str, list[str]]]] = {}
    tops: dict[str, list[set[int]]] = {}
    for name, engine in engines.items():
        runs[name] = {"keyword": {}, "rrf": {}, "convex": {}}
        tops[name] = []
        for qid, query, dense in zip(
            scifact.query_ids, scifact.corpus.queries, scifact.dense, strict=True
        ):
            keyword = engine.search(query, SEARCH.depth)
            tops[name].append(set(keyword[0][: SEARCH.k].tolist()))
            runs[name]["keyword"][qid] = documents(scifact, keyword)
            for fusion in ("rrf", "convex"):
                runs[name][fusion][qid] = documents(scifact, hybrid(dense, keyword, fusion))
    scores = {
        name: {
            mode: [s["ndcg@10"] for s in per_query(r, scifact.qrels, metrics=["ndcg@10"]).values()]
            for mode, r in by_mode.items()
        }
        for name, by_mode in runs.items()
    }
    rows = []
    for name in engines:
        cells = [name]
        for mode in ("keyword", "rrf", "convex"):
            mine, ours = scores[name][mode], scores["ours"][mode]
            p = paired_randomization_test(mine, ours) if name != "ours" else 1.0
            delta = float(np.mean(mine) - np.mean(ours))
            cells.append(f"{np.mean(mine):.4f} ({delta:+.4f}, p={p:.2f})")
        same = sum(a == b for a, b in zip(tops[name], tops["ours"], strict=True))
        cells.append(f"{same}/{len(tops['ours'])}")
        rows.append(tuple(cells))
    header = columns(
        "engine|keyword nDCG@10 (vs ours, p)|hybrid RRF nDCG@10 (default)|"
        "hybrid convex nDCG@10|same top-10 chunks as ours"
    )
    title = f"Quality on SciFact test ({len(scifact.query_ids)} queries)"
    note = "p: paired randomization test on per-query nDCG@10 against `ours` (10,000 resamples)."
    return run.Table(title, header, rows, (note,))


def ms(values: Sequence[float], rate: bool = False) -> str:
    """p50 / p95 ms, and queries/s (one at a time) if `rate`."""
    summary = latency_summary(values)
    text = f"{summary['p50_ms']:.2f} / {summary['p95_ms']:.2f}"
    return text + (f", {len(values) / sum(values):,.0f}" if rate else "")


def speed(
    corpus: Corpus,
    setup: dict,
    dense: Callable[[int], Ranking],
    extra: tuple[float, str],
    args: argparse.Namespace,
) -> run.Table:
    """Latency per engine (interleaved query by query), filtered search, small adds/deletes.

    An engine stops being timed once its searches took `args.budget` seconds in all."""
    engines: dict[str, Engine] = setup["engines"]
    names = list(engines)
    kinds = ("k10", "k100", "hybrid", "filtered")
    seconds = {name: {kind: [] for kind in kinds} for name in names}
    tops: dict[str, list[set[int]]] = {name: [] for name in names}
    loads = [os.getloadavg()[0]]
    for i, query in enumerate(corpus.queries[:5]):  # warm-up: cold pages, caches
        for engine in engines.values():
            engine.search(query, SEARCH.depth)
            engine.search(query, SEARCH.depth, corpus.allowed)
        dense(i)
    spent = dict.fromkeys(names, 0.0)
    for i, query in enumerate(corpus.queries):
        for name in [n for n in names if spent[n] < args.budget]:
            engine = engines[name]
            began = time.perf_counter()
            engine.search(query, SEARCH.depth)  # untimed: each engine starts warm
            marks = [time.perf_counter()]
            found = engine.search(query, SEARCH.k)
            marks.append(time.perf_counter())
            engine.search(query, SEARCH.depth)
            marks.append(time.perf_counter())
            hybrid(dense(i), engine.search(query, SEARCH.depth), SEARCH.fusion)
            marks.append(time.perf_counter())
            engine.search(query, SEARCH.depth, corpus.allowed)
            marks.append(time.perf_counter())
            for kind, a, b in zip(kinds, marks, marks[1:], strict=False):
                seconds[name][kind].append(b - a)
            tops[name].append(set(found[0].tolist()))
            spent[name] += marks[-1] - began
    loads.append(os.getloadavg()[0])
    churn_ms = {name: churn_times(engines[name], corpus, args.churn) for name in names}
    goal = next((g for n, g in sorted(GOALS.items(), reverse=True) if corpus.n >= n), None)
    rows = []
    for name in names:
        built, s = setup["built"][name], seconds[name]
        p50 = latency_summary(s["hybrid"])["p50_ms"] + extra[0]
        same = sum(a == b for a, b in zip(tops[name], tops["ours"], strict=False))
        rows.append(
            (
                name,
                f"{len(s['k10'])}",
                f"{built['wall']:.1f} ({built['cpu']:.1f})",
                f"{built['size'] / 2**20:,.1f}",
                f"{built['open']:.2f}",
                ms(s["k10"], rate=True),
                ms(s["k100"], rate=True),
                ms(s["filtered"]),
                ms(s["hybrid"]),
                f"{p50:.1f}" + ("" if goal is None else f" ({run.verdict(p50 <= goal)})"),
                "{add:.1f} / {delete:.1f}".format(**churn_ms[name]),
                f"{same}/{len(tops[name])}",
            )
        )
    d = SEARCH.depth
    header = columns(
        "engine|queries|build s (CPU s)|size MiB|open s|k=10: p50 / p95 ms, queries/s|"
        f"k={d}: p50 / p95 ms, queries/s|k={d}, 10% filter, p50 / p95 ms|hybrid p50 / p95 ms|"
        "hybrid p50, all stages, ms" + ("" if goal is None else f" (goal <= {goal:.0f})") + "|"
        f"add / delete {args.churn} chunks ms|same top-10 as ours"
    )
    notes = (
        f"Queries one at a time, at most {args.budget:.0f} s of searches per engine; load "
        f"average {loads[0]:.2f} before, {loads[1]:.2f} after the query timings. {extra[1]}",
    )
    return run.Table(f"Speed, {corpus.label}", header, rows, notes)


def churn_times(engine: Engine, corpus: Corpus, churn: int, rounds: int = 20) -> dict[str, float]:
    """ms per durable add of `churn` new chunks, then per delete of them (index unchanged after)."""
    texts = corpus.queries  # short texts, new ids above n
    added, removed = [], []
    batches = [
        (np.arange(churn, dtype=np.int64) + corpus.n + 1 + r * churn, texts[r : r + churn])
        for r in range(rounds)
    ]
    for ids, batch in batches:
        added.append(run.timed(lambda ids=ids, batch=batch: engine.add(ids, batch)))
    for ids, batch in batches:
        removed.append(run.timed(lambda ids=ids, batch=batch: engine.delete(ids, batch)))
    return {"add": 1000 * float(np.median(added)), "delete": 1000 * float(np.median(removed))}


def synthetic_dense(n: int, cache: Path, n_queries: int) -> Callable[[int], Ranking]:
    """Query i -> `VectorIndex` search (HNSW, default parameters) over n random unit vectors."""
    s = config.load().index
    params = HnswParams(s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.hnsw_threshold)
    path, _ = run.graph(run.ISOTROPIC, n, params, cache)
    index = VectorIndex.load(path, params)
    rng = np.random.default_rng(run.SEED + 2)
    vectors = rng.standard_normal((n_queries, run.DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return lambda i: index.search(vectors[i], SEARCH.depth)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=run.DEFAULT_DATA, help="holds scifact/")
    parser.add_argument("--sizes", default="100000,1000000", help="synthetic sizes, or none")
    parser.add_argument("--engines", default=",".join(ENGINES), help="subset of the engines")
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE, help="built indexes")
    parser.add_argument("--queries", type=int, default=300, help="synthetic queries timed")
    parser.add_argument("--churn", type=int, default=10, help="chunks per timed add/delete")
    parser.add_argument("--budget", type=float, default=120, help="search seconds per engine")
    parser.add_argument("--rebuild", action="store_true", help="ignore cached indexes")
    args = parser.parse_args(argv)
    args.sizes = [] if args.sizes == "none" else [int(v) for v in args.sizes.split(",")]
    args.engines = args.engines.split(",")
    if "ours" not in args.engines or set(args.engines) - set(ENGINES):
        parser.error(f"--engines: a subset of {','.join(ENGINES)} that includes ours")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "scifact" / "corpus.jsonl").is_file():
        print(f"no SciFact at {args.data / 'scifact'}; pass --data DIR", file=sys.stderr)
        return 2
    print("## Keyword index options: askdocs' keyword index, SQLite FTS5, tantivy\n")
    print(f"- machine: {run.machine()}; SQLite {sqlite3.sqlite_version}, {tantivy.__version__}")
    command = " ".join(["python", "benchmarks/bench_keyword_engines.py", *sys.argv[1:]])
    print(f"- command: `{command}`")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.2f}")
    terms = Terms(Analyzer())
    scifact = load_scifact(args.data, args.cache)
    sample = scifact.corpus.texts()[:500]
    assert all(terms(t).split() == terms.analyzer.tokens(t) for t in sample)
    setup = build_or_open(scifact.corpus, args.engines, terms, rebuild=True)
    run.show(quality(scifact, setup["engines"]))
    embed_ms = latency_summary(scifact.embed_seconds)["p50_ms"]
    dense_ms = latency_summary(scifact.dense_seconds)["p50_ms"]
    note = (
        f"Hybrid = keyword search ({SEARCH.depth}) + RRF with the store's dense ranking "
        f"(computed beforehand); all stages adds its dense search ({dense_ms:.2f} ms p50) and "
        f"the query embedding ({embed_ms:.1f} ms p50)."
    )
    say("timing SciFact")
    extra = (embed_ms + dense_ms, note)
    run.show(speed(scifact.corpus, setup, scifact.dense.__getitem__, extra, args))
    for engine in setup["engines"].values():
        engine.close()
    for n in args.sizes:
        corpus = synthetic_corpus(n, args.cache, args.queries)
        setup = build_or_open(corpus, args.engines, terms, rebuild=args.rebuild)
        dense = synthetic_dense(n, args.cache, len(corpus.queries))
        note = (
            f"Hybrid = dense search ({SEARCH.depth}, HNSW over {n:,} random unit vectors) + "
            f"keyword search ({SEARCH.depth}) + RRF; all stages adds the query embedding "
            f"({embed_ms:.1f} ms p50, SciFact queries, this run)."
        )
        say(f"timing {corpus.label}")
        run.show(speed(corpus, setup, dense, (embed_ms, note), args))
        for engine in setup["engines"].values():
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
