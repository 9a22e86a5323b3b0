"""The knowledge-base benchmarks of issue 2 in one command, one Markdown table per benchmark.

    python benchmarks/run.py                 # full run; SciFact from ../shared/data
    python benchmarks/run.py --quick         # small sizes: a smoke check in a few minutes
    python benchmarks/run.py --only latency,rss --sizes 100000

0. encoder: the float and the int8 encoder on the same SciFact chunk texts: chunks/s,
   tokens/s, and the cosine of each int8 vector to its float one.
1. ingest: chunks/s of `KnowledgeBase.ingest_documents` on SciFact documents into a fresh store,
   against `MiniLMEmbedder.embed` alone on the very same chunk texts in the same batches.
2. keyword: BM25 queries/s against bm25s and rank_bm25 (benchmarks/bench_keyword.py).
3. latency: p50/p95 of `KnowledgeBase.search` (query embedding included) per mode on the shared
   SciFact store (`eval-scifact`, ingested first if incomplete, except with --quick), with a
   per-stage breakdown of hybrid search.
4. rss: peak RSS of a fresh process that opens a store and runs every query in every mode.
5. synthetic: stores of N chunks with Zipfian text and random unit 384-d vectors, written
   through the store layer and cached under --cache. HNSW graphs are built and timed on their
   own with `VectorIndex` over vectors shaped like the SciFact embeddings (isotropic without a
   SciFact store), cached too; the one with the default parameters becomes the store's vector
   index, so later runs only search. Reports build time, recall@10 against exact search for
   several efSearch values (also on the real SciFact embeddings), latency per mode, with
   filters, and peak RSS.

Timings are wall-clock on whatever else the machine is doing: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import resource
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_keyword
import numpy as np
from cpu import cpu_name

from askdocs import config
from askdocs.config import Settings
from askdocs.embeddings import MiniLMEmbedder, load_embedder
from askdocs.evaluate import (
    corpus_documents,
    eval_settings,
    latency_summary,
    load_beir,
)
from askdocs.fusion import fuse_rrf
from askdocs.ingest import chunk_for_embedding
from askdocs.kb import KnowledgeBase, embedder_spec
from askdocs.retrieval import Filters
from askdocs.store import DocumentWrite
from askdocs.store.sqlite import DATABASE, SqliteStore
from askdocs.types import Chunk, Document
from askdocs.vectors import HnswParams, VectorIndex

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CACHE = Path.home() / ".cache" / "askdocs-bench"
MODES = ("dense", "keyword", "hybrid")
PARTS = ("encoder", "ingest", "keyword", "latency", "rss", "synthetic")
DIM = 384
K = 10
SEED = 20240601
CHUNKS_PER_DOC = 10  # synthetic documents: 10 chunks each, 1000 documents per directory
WRITE_BATCH = 5000  # synthetic chunks per store.write (one transaction, like an ingest batch)
CACHE_FORMAT = 1  # bump when the synthetic data changes, so cached stores are rebuilt
GOALS = {"ratio": 0.9, "hybrid_100k_ms": 15.0, "hybrid_1m_ms": 40.0, "rss_mb": 800.0}


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    notes: tuple[str, ...] = ()


def show(table: Table) -> None:
    print(f"\n### {table.title}\n")
    print("| " + " | ".join(table.header) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(table.header))) + "|")
    for row in table.rows:
        print("| " + " | ".join(row) + " |")
    for note in table.notes:
        print(f"\n{note}")
    sys.stdout.flush()


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def machine() -> str:
    model = cpu_name()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import faiss
    import onnxruntime

    return (
        f"{model}, {os.cpu_count()} cores, {ram:.0f} GiB RAM; Python {platform.python_version()}, "
        f"numpy {np.__version__}, faiss {faiss.__version__}, onnxruntime {onnxruntime.__version__}"
    )


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM where /proc has it, else ru_maxrss.

    On Linux ru_maxrss survives exec: a child started by a 1 GB parent reports >= 1 GB however
    little it uses itself. VmHWM belongs to the address space, which exec replaces.
    """
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# --- ingest throughput ---------------------------------------------------------------------


def ingest_batches(per_document: list[list[str]], batch_chunks: int) -> list[list[str]]:
    """Chunk texts grouped as ingest flushes them: whole documents until >= batch_chunks."""
    batches: list[list[str]] = [[]]
    for texts in per_document:
        batches[-1].extend(texts)
        if len(batches[-1]) >= batch_chunks:
            batches.append([])
    return [b for b in batches if b]


def ingest_fresh(
    documents: Sequence[Document], settings: Settings, embedder: MiniLMEmbedder
) -> int:
    """Open a new store, ingest, close (which saves both indexes): what `askdocs ingest` does."""
    with tempfile.TemporaryDirectory(prefix="askdocs-bench-") as tmp:
        with KnowledgeBase.open(settings.replace(store=Path(tmp)), embedder=embedder) as kb:
            report = kb.ingest_documents(documents)
        if report.failed or report.embedded != report.chunks:
            raise RuntimeError(f"unexpected ingest report: {report}")
        return report.chunks


def chunked_documents(
    scifact: Path, n_docs: int, embedder: MiniLMEmbedder, settings: Settings
) -> tuple[list[Document], list[list[str]]]:
    """The first `n_docs` SciFact documents and, per document, the chunk texts ingest embeds."""
    documents = corpus_documents(load_beir(scifact), scifact.name)[:n_docs]
    return documents, [chunk_for_embedding(d, embedder, settings)[1] for d in documents]


def bench_ingest(scifact: Path, n_docs: int, repeats: int, embedder: MiniLMEmbedder) -> Table:
    settings = config.load()
    documents, per_document = chunked_documents(scifact, n_docs, embedder, settings)
    batches = ingest_batches(per_document, settings.ingest.batch_chunks)
    texts = [t for b in batches for t in b]
    embedder.embed(texts[:64])  # warm-up: ONNX Runtime allocates its buffers on first runs
    runs: dict[str, list[float]] = {"encoder": [], "pipeline": [], "one call": []}
    for _ in range(repeats):  # interleaved, best of each: the machine's load drifts
        runs["encoder"].append(timed(lambda: [embedder.embed(b) for b in batches]))
        runs["pipeline"].append(timed(lambda: ingest_fresh(documents, settings, embedder)))
    runs["one call"].append(timed(lambda: embedder.embed(texts)))  # a reference: once is enough
    best = {name: min(seconds) for name, seconds in runs.items()}
    rate = {name: len(texts) / s for name, s in best.items()}
    ratio = rate["pipeline"] / rate["encoder"]
    labels = {
        "encoder": f"raw encoder: `MiniLMEmbedder.embed`, {len(batches)} ingest-sized batches",
        "pipeline": "askdocs `ingest_documents` into a fresh store (open to close)",
        "one call": "raw encoder: one `embed` call over all chunks (for reference)",
    }
    rows = [
        (
            labels[n],
            f"{len(texts)}",
            f"{best[n]:.1f}",
            f"{rate[n]:.1f}",
            f"{rate[n] / rate['encoder']:.2f}x",
        )
        for n in ("encoder", "pipeline", "one call")
    ]
    return Table(
        f"Ingest throughput: {len(documents)} SciFact documents, {len(texts)} chunks",
        ("run", "chunks", f"seconds, best of {repeats}", "chunks/s", "vs encoder"),
        rows,
        (
            f"Goal >= {GOALS['ratio']}x the raw encoder: "
            f"{verdict(ratio >= GOALS['ratio'])} ({ratio:.2f}x).",
        ),
    )


def bench_encoder(scifact: Path, n_docs: int, repeats: int, embedder: MiniLMEmbedder) -> Table:
    """`embedder` against the same model in the other precision, on the same chunk texts."""
    settings = config.load()
    other = load_embedder(dataclasses.replace(settings.embedding, int8=not embedder.int8))
    pair = (other, embedder) if embedder.int8 else (embedder, other)
    encoders = dict(zip(("float", "int8"), pair, strict=True))
    documents, per_document = chunked_documents(scifact, n_docs, embedder, settings)
    texts = [t for texts in per_document for t in texts]
    tokens = sum(encoders["float"].count_tokens(texts))
    vectors: dict[str, np.ndarray] = {}
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    for encoder in encoders.values():
        encoder.embed(texts[:16])  # warm-up
    for _ in range(repeats):  # interleaved, best of each: the machine's load drifts
        for name, encoder in encoders.items():
            start = time.perf_counter()
            vectors[name] = encoder.embed(texts)
            seconds[name].append(time.perf_counter() - start)
    cosines = np.sum(vectors["int8"] * vectors["float"], axis=1)
    best = {name: min(s) for name, s in seconds.items()}
    threads = encoders["float"].threads
    rows = [
        (
            f"{name} ({threads} texts at once, 1 core each)",
            f"{best[name]:.1f}",
            f"{len(texts) / best[name]:.1f}",
            f"{tokens / best[name]:,.0f}",
            f"{best['float'] / best[name]:.2f}x",
            "1" if name == "float" else f"{cosines.mean():.4f} / {cosines.min():.4f}",
        )
        for name in encoders
    ]
    return Table(
        f"Encoder: {len(texts)} chunk texts of {len(documents)} SciFact documents, "
        f"{tokens:,} tokens",
        (
            "encoder",
            f"seconds, best of {repeats}",
            "chunks/s",
            "tokens/s",
            "speed vs float",
            "cosine to float, mean / min",
        ),
        rows,
    )


# --- search latency ------------------------------------------------------------------------


def time_modes(
    kb: KnowledgeBase, queries: Sequence[str], filters: Filters | None = None
) -> dict[str, list[float]]:
    """Seconds per `kb.search` call, per mode; modes interleaved so load drift hits all alike."""
    for query in queries[:5]:  # warm-up: first calls touch cold pages and allocate
        for mode in MODES:
            kb.search(query, mode=mode, filters=filters)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for query in queries:
        for mode in MODES:
            start = time.perf_counter()
            kb.search(query, mode=mode, filters=filters)
            seconds[mode].append(time.perf_counter() - start)
    return seconds


def time_stages(kb: KnowledgeBase, queries: Sequence[str]) -> dict[str, list[float]]:
    """Hybrid search taken apart as `retrieve()` runs it, to see where the time goes."""
    s = kb.settings.search
    depth = max(s.k, s.depth)
    stages: dict[str, list[float]] = {}
    for query in queries:
        marks = [time.perf_counter()]
        vector = kb.embedder.embed([query], truncate=True)[0]
        marks.append(time.perf_counter())
        dense = kb.store.search_dense(vector, depth)
        marks.append(time.perf_counter())
        keyword = kb.store.search_keyword(query, depth)
        marks.append(time.perf_counter())
        ids, _ = fuse_rrf({"dense": dense, "keyword": keyword}, k=s.rrf_k)
        marks.append(time.perf_counter())
        kb.store.records(ids[: s.k].tolist())
        marks.append(time.perf_counter())
        names = ("embed query", "dense search", "keyword search", "RRF fusion", "record lookup")
        for name, a, b in zip(names, marks, marks[1:], strict=False):
            stages.setdefault(name, []).append(b - a)
    return stages


def latency_rows(label: str, seconds: dict[str, list[float]]) -> list[tuple[str, ...]]:
    rows = []
    for name, values in seconds.items():
        summary = latency_summary(values)
        rows.append(
            (label, name, f"{summary['p50_ms']:.2f}", f"{summary['p95_ms']:.2f}", f"{len(values)}")
        )
    return rows


LATENCY_HEADER = ("store", "mode / stage", "p50 ms", "p95 ms", "queries")


def bench_latency(kb: KnowledgeBase, label: str, queries: Sequence[str]) -> Table:
    rows = latency_rows(label, time_modes(kb, queries))
    rows += latency_rows(label + " (hybrid stages)", time_stages(kb, queries))
    return Table(f"Search latency, {label}, k={K}, query embedding included", LATENCY_HEADER, rows)


def scifact_kb(scifact: Path, embedder: MiniLMEmbedder, *, build: bool) -> KnowledgeBase | None:
    """The shared SciFact store (`eval-scifact`); ingested first when `build`, else None."""
    data = load_beir(scifact)
    settings = eval_settings(scifact)
    kb = KnowledgeBase.open(settings, embedder=embedder)
    if kb.status().documents < len(data.corpus):
        if not build:
            kb.close()
            return None
        say(f"ingesting SciFact into {settings.store} (first run only; ~10k chunks to embed)")
        kb.ingest_documents(corpus_documents(data, scifact.name))
    return kb


# --- peak RSS of a search process ----------------------------------------------------------


def rss_probe(store: Path, queries_file: Path) -> None:
    """Child process: open `store`, search every query in every mode, print memory as JSON."""
    queries = json.loads(queries_file.read_text())
    start = rss_now_mb()
    kb = KnowledgeBase.open(config.load({"store": str(store)}), create=False)
    opened = rss_now_mb()
    kb.embedder.embed(["warm up"])
    model = rss_now_mb()
    for query in queries:
        for mode in MODES:
            kb.search(query, mode=mode)
    result = {"start": start, "opened": opened, "model": model, "peak": peak_rss_mb()}
    print(json.dumps({**result, "chunks": kb.status().chunks}))


def measure_rss(store: Path, queries: Sequence[str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(list(queries), f)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-probe", str(store), f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])


def rss_row(label: str, rss: dict[str, float], n_queries: int) -> tuple[str, ...]:
    return (
        label,
        f"{rss['chunks']:,.0f}",
        f"{n_queries} x {len(MODES)}",
        f"{rss['opened'] - rss['start']:.0f}",
        f"{rss['model'] - rss['opened']:.0f}",
        f"{rss['peak']:.0f}",
        verdict(rss["peak"] <= GOALS["rss_mb"]),
    )


RSS_HEADER = (
    "store",
    "chunks",
    "searches",
    "open store MiB",
    "load model MiB",
    "peak RSS MiB",
    f"goal <= {GOALS['rss_mb']:.0f} MB",
)


# --- synthetic stores ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vectors:
    """Random unit vectors: isotropic, or shaped like real embeddings.

    Shaped vectors are normalise(mean + chol @ z), z ~ N(0, I), with the mean and covariance of
    the SciFact chunk embeddings: the spread of MiniLM's space without its clusters, so HNSW
    finds them harder than real embeddings but far easier than isotropic noise, where nearest
    neighbours are barely nearer than anything else.
    """

    name: str
    mean: np.ndarray | None = None
    chol: np.ndarray | None = None

    def batches(self, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(chunk ids, vectors) in WRITE_BATCH slices, each with its own seed, so the same vectors
        come back whoever asks. Ids are what SQLite gives a fresh store: 1, 2, 3, ..."""
        for first in range(0, n, WRITE_BATCH):
            rng = np.random.default_rng([SEED, first])
            x = rng.standard_normal((min(WRITE_BATCH, n - first), DIM), dtype=np.float32)
            if self.chol is not None:
                x = self.mean + x @ self.chol.T
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            yield np.arange(first + 1, first + 1 + len(x), dtype=np.int64), x


ISOTROPIC = Vectors("isotropic")


@dataclass(frozen=True, slots=True)
class StoredVectors:
    """The chunk embeddings of a real store, in the same (ids, vectors) batches as `Vectors`."""

    name: str
    data: np.ndarray

    def batches(self, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first in range(0, n, WRITE_BATCH):
            batch = self.data[first : min(n, first + WRITE_BATCH)]
            yield np.arange(first + 1, first + 1 + len(batch), dtype=np.int64), batch


VectorSource = Vectors | StoredVectors


def stored_embeddings(store: Path, documents: int) -> np.ndarray | None:
    """Every chunk embedding in `store` once it holds all `documents`; None before that."""
    if not (store / DATABASE).exists():
        return None
    with sqlite3.connect(f"file:{store / DATABASE}?mode=ro", uri=True) as db:
        if db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] < documents:
            return None
        blobs = [row[0] for row in db.execute("SELECT embedding FROM chunks ORDER BY id")]
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, DIM)


def minilm_shaped(store: Path, documents: int, cache: Path) -> Vectors | None:
    """Vectors shaped like the embeddings in `store`, once it holds all `documents` (fitted
    once, then kept in `cache`); None before that."""
    fitted = cache / "minilm-shape.npz"
    if not fitted.exists():
        real = stored_embeddings(store, documents)
        if real is None:
            return None
        chol = np.linalg.cholesky(np.cov(real.T) + 1e-6 * np.eye(DIM))
        fitted.parent.mkdir(parents=True, exist_ok=True)
        np.savez(fitted, mean=real.mean(axis=0), chol=chol, fitted_on=len(real))
    data = np.load(fitted)
    return Vectors(
        "MiniLM-shaped", data["mean"].astype(np.float32), data["chol"].astype(np.float32)
    )


def synthetic_write(doc: int, parts: Sequence[str], vectors: np.ndarray) -> DocumentWrite:
    """One synthetic document: `parts` are its chunks; every tenth document is Markdown."""
    kind = "md" if doc % 10 == 0 else "txt"
    path = f"/synthetic/{doc // 1000:04d}/doc{doc:07d}.{kind}"
    chunks, start = [], 0
    for i, part in enumerate(parts):
        chunks.append(Chunk(i, part, start, start + len(part), len(part.split())))
        start += len(part) + 2
    text = "\n\n".join(parts)
    return DocumentWrite(
        path,
        len(text),
        0,
        hashlib.sha256(text.encode()).hexdigest(),
        "synthetic",
        Document(path, text, "", kind),
        chunks,
        vectors,
        [hashlib.sha256(p.encode()).digest() for p in parts],
    )


def write_store(directory: Path, texts: Sequence[str], embedder_id: str) -> float:
    """Write the synthetic chunks through `SqliteStore.write`; returns seconds."""
    # Exact vectors while loading: the HNSW graph is built and timed on its own afterwards.
    settings = dataclasses.replace(config.load().index, hnsw_threshold=2**62)
    start = time.perf_counter()
    with SqliteStore(directory, embedder_id=embedder_id, dim=DIM, settings=settings) as store:
        for ids, vectors in ISOTROPIC.batches(len(texts)):
            first_doc = int(ids[0] - 1) // CHUNKS_PER_DOC
            writes = []
            for j in range(len(ids) // CHUNKS_PER_DOC):
                rows = slice(j * CHUNKS_PER_DOC, (j + 1) * CHUNKS_PER_DOC)
                parts = texts[int(ids[rows][0]) - 1 : int(ids[rows][-1])]
                writes.append(synthetic_write(first_doc + j, parts, vectors[rows]))
            store.write(writes)
    return time.perf_counter() - start


def synthetic_queries(texts: Sequence[str], n: int) -> list[str]:
    """2-5 words of a random chunk, as someone recalling a passage would type them."""
    rng = np.random.default_rng(SEED + 1)
    queries = []
    for chunk in rng.integers(0, len(texts), n):
        words = texts[chunk].split()
        queries.append(" ".join(rng.choice(words, rng.integers(2, 6), replace=False)))
    return queries


def synthetic_store(
    n: int, cache: Path, embedder_id: str, n_queries: int
) -> tuple[Path, dict[str, Any]]:
    """The cached synthetic store of `n` chunks, written on first use; and its build record."""
    directory = cache / f"synthetic-{n}"
    record_file = directory / "build.json"
    if record_file.exists():
        record = json.loads(record_file.read_text())
        if record.get("format") == CACHE_FORMAT:
            return directory, record
    say(f"writing a synthetic store of {n:,} chunks in {directory}")
    for old in directory.glob("*") if directory.exists() else ():
        old.unlink()
    texts = bench_keyword.synthetic_texts(n, seed=SEED)
    record = {"format": CACHE_FORMAT, "n": n, "queries": synthetic_queries(texts, n_queries)}
    record["write_s"] = write_store(directory, texts, embedder_id)
    record_file.write_text(json.dumps(record))
    return directory, record


def graph(vectors: VectorSource, n: int, params: HnswParams, cache: Path) -> tuple[Path, dict]:
    """A saved `VectorIndex` (HNSW) over `n` vectors, built once and cached; and its build
    time, wall and CPU (CPU time is the steadier figure when other work shares the cores)."""
    key = f"{vectors.name}-{n}-m{params.m}-efc{params.ef_construction}"
    path = cache / "graphs" / f"{key}.idx"
    timings_file = cache / "graphs" / "build-times.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    if path.exists() and key in timings:
        return path, timings[key]
    say(f"building HNSW {key}")
    index = VectorIndex(DIM, params)
    start, cpu = time.perf_counter(), time.process_time()
    for ids, batch in vectors.batches(n):
        index.add(ids, batch)
    timings[key] = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}
    path.parent.mkdir(parents=True, exist_ok=True)
    index.save(path)
    timings_file.write_text(json.dumps(timings, indent=1))
    return path, timings[key]


def install(directory: Path, graph_file: Path) -> None:
    """Make a cached graph the store's vector index file, tagged for that store and position
    as the store's own saves are (a file with another tag is rebuilt from SQLite)."""
    (current,) = directory.glob("vectors-*.idx")
    with sqlite3.connect(f"file:{directory / DATABASE}?mode=ro", uri=True) as db:
        [store_id] = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    tag = f"{store_id}@{int(current.stem.split('-')[1])}"
    marker = directory / "installed-graph.txt"
    if marker.exists() and marker.read_text() == f"{graph_file.name} {current.name}":
        return
    say(f"installing {graph_file.name} as {current.name}")
    VectorIndex.load(graph_file).save(current, tag=tag)
    marker.write_text(f"{graph_file.name} {current.name}")


def exact_top_k(vectors: VectorSource, n: int, queries: np.ndarray) -> np.ndarray:
    """Exact top-K ids per query, streamed over the vectors (never 1.5 GB at once)."""
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best = np.zeros((len(queries), 0), dtype=np.float32)
    for ids, batch in vectors.batches(n):
        scores = np.concatenate([best, queries @ batch.T], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids, (len(queries), len(ids)))], 1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        best, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(all_ids, top, 1)
    return best_ids


def recall_rows(
    vectors: VectorSource,
    n: int,
    graphs: Sequence[tuple[HnswParams, Path, dict]],
    queries: np.ndarray,
    ef_values: Sequence[int],
) -> list[tuple[str, ...]]:
    """Recall@K against exact search and single-query latency, per graph and efSearch."""
    truth = exact_top_k(vectors, n, queries)
    rows = []
    for params, path, built in graphs:
        for ef in ef_values:
            index = VectorIndex.load(path, dataclasses.replace(params, ef_search=ef))
            found, seconds = [], []
            for query in queries:
                start = time.perf_counter()
                found.append(index.search(query, K)[0])
                seconds.append(time.perf_counter() - start)
            hits = [len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)]
            summary = latency_summary(seconds)
            rows.append(
                (
                    f"{vectors.name}, {n:,}",
                    f"M={params.m} efC={params.ef_construction}",
                    "{wall:.0f} ({cpu:.0f})".format(**built),
                    f"{ef}",
                    f"{np.mean(hits) / K:.3f}",
                    f"{summary['p50_ms']:.2f}",
                    f"{summary['p95_ms']:.2f}",
                )
            )
    return rows


RECALL_HEADER = (
    "vectors",
    "graph",
    "build s (CPU s)",
    "efSearch",
    f"recall@{K}",
    "p50 ms",
    "p95 ms",
)


def bench_synthetic_latency(
    directory: Path, record: dict[str, Any], embedder: MiniLMEmbedder, n_queries: int
) -> Table:
    n, queries = record["n"], record["queries"][:n_queries]
    settings = config.load({"store": str(directory)})
    start = time.perf_counter()
    with KnowledgeBase.open(settings, create=False, embedder=embedder) as kb:
        opened = time.perf_counter() - start
        label = f"synthetic {n:,}"
        by_mode = time_modes(kb, queries)
        rows = latency_rows(label, by_mode)
        rows += latency_rows(label + " (hybrid stages)", time_stages(kb, queries))
        narrow = Filters(path_glob="/synthetic/0000/*")
        kinds = Filters(kinds=("md",))
        for name, filters in (("path glob, 1000 docs", narrow), ("kind md, 10%", kinds)):
            hybrid = time_modes(kb, queries[:50], filters)["hybrid"]
            rows += latency_rows(label, {f"hybrid, filter {name}": hybrid})
        kind = kb.status().vector_index
    goal = GOALS["hybrid_1m_ms"] if n >= 1_000_000 else GOALS["hybrid_100k_ms"]
    p50 = latency_summary(by_mode["hybrid"])["p50_ms"]
    return Table(
        f"Search latency, synthetic store of {n:,} chunks ({kind} vectors), k={K}",
        LATENCY_HEADER,
        rows,
        (
            f"Store opened in {opened:.1f} s. Written through the store layer in "
            f"{record['write_s']:.0f} s (SQLite + keyword index; vectors exact while loading).",
            f"Goal hybrid p50 <= {goal:.0f} ms: {verdict(p50 <= goal)} ({p50:.1f} ms).",
        ),
    )


def parse_variants(text: str | None, base: HnswParams) -> list[HnswParams]:
    """`32:80,16:40` -> HNSW params (M:efConstruction) to try on the MiniLM-shaped vectors."""
    if not text:
        return [base]
    pairs = [item.split(":") for item in text.split(",")]
    return [dataclasses.replace(base, m=int(m), ef_construction=int(efc)) for m, efc in pairs]


def run_synthetic(args: argparse.Namespace, embedder: MiniLMEmbedder) -> None:
    settings = config.load()
    s = settings.index
    base = HnswParams(s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.hnsw_threshold)
    scifact = load_beir(args.data / "scifact")
    scifact_store = eval_settings(args.data / "scifact").store  # the configured encoder's
    shaped = (
        minilm_shaped(Path(scifact_store), len(scifact.corpus), args.cache)
        if args.vectors == "shaped"
        else None
    )
    if shaped is None and args.vectors == "shaped":
        say("no complete SciFact store to fit MiniLM-shaped vectors on: isotropic only")
    scifact_queries = list(scifact.queries.values())
    query_vectors = embedder.embed(scifact_queries[: args.recall_queries], truncate=True)
    recall: list[tuple[str, ...]] = []
    real = stored_embeddings(Path(scifact_store), len(scifact.corpus))
    if real is not None:  # the real thing, though too small to need HNSW by default
        stored = StoredVectors("SciFact chunks", real)
        forced = [dataclasses.replace(p, threshold=0) for p in parse_variants(args.hnsw, base)]
        graphs = [(p, *graph(stored, len(real), p, args.cache)) for p in forced]
        recall += recall_rows(stored, len(real), graphs, query_vectors, args.ef)
    rss_rows = []
    for n in args.sizes:
        directory, record = synthetic_store(n, args.cache, embedder_spec(settings)[0], args.queries)
        if n >= base.threshold:  # below it the store searches exactly: nothing to build
            # The store searches the graph of the default parameters over MiniLM-shaped vectors
            # when there are any: isotropic noise has no neighbourhoods for HNSW to find, so
            # its recall and search cost say little about real embeddings.
            source = shaped if shaped is not None else ISOTROPIC
            variants = parse_variants(args.hnsw, base)
            graphs = [(p, *graph(source, n, p, args.cache)) for p in variants]
            if base not in variants:
                graphs.append((base, *graph(source, n, base, args.cache)))
            install(directory, next(path for p, path, _ in graphs if p == base))
            recall += recall_rows(source, n, graphs, query_vectors, args.ef)
        show(bench_synthetic_latency(directory, record, embedder, args.queries))
        if n <= args.rss_max:
            queries = record["queries"][: args.queries]
            rss = measure_rss(directory, queries)
            rss_rows.append(rss_row(f"synthetic {n:,}", rss, len(queries)))
    if recall:
        title = f"HNSW vs exact search, {len(query_vectors)} SciFact query embeddings"
        show(Table(title + " (vector search only)", RECALL_HEADER, recall))
    if rss_rows:
        show(Table("Peak RSS of a search process, synthetic stores", RSS_HEADER, rss_rows))


# --- main ----------------------------------------------------------------------------------


def run_scifact(args: argparse.Namespace, embedder: MiniLMEmbedder) -> None:
    scifact = args.data / "scifact"
    if "keyword" in args.only:
        print("\n### BM25 on SciFact: askdocs keyword index (tantivy) vs bm25s and rank_bm25\n")
        sys.stdout.flush()
        bench_keyword.main(["--data", str(scifact)])
    if "encoder" in args.only:
        say("encoder benchmark")
        show(bench_encoder(scifact, args.ingest_docs, args.repeats, embedder))
    if "ingest" in args.only:
        say("ingest benchmark")
        show(bench_ingest(scifact, args.ingest_docs, args.repeats, embedder))
    if not {"latency", "rss"} & set(args.only):
        return
    kb = scifact_kb(scifact, embedder, build=not args.quick)
    if kb is None:
        print("\n(SciFact store not built yet: latency and RSS on SciFact skipped in --quick)")
        return
    queries = list(load_beir(scifact).queries.values())[: args.queries]
    with kb:
        if "latency" in args.only:
            show(bench_latency(kb, f"SciFact ({kb.status().chunks:,} chunks)", queries))
    if "rss" in args.only:
        rss = measure_rss(kb.settings.store, queries)
        show(
            Table(
                "Peak RSS of a search process, SciFact",
                RSS_HEADER,
                [rss_row("SciFact", rss, len(queries))],
            )
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="holds scifact/")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--only", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument(
        "--sizes", help="synthetic store sizes (default 100000,1000000; none: SciFact recall only)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="synthetic stores")
    parser.add_argument(
        "--hnsw", help="HNSW graphs to try on MiniLM-shaped vectors: M:efConstruction[,...]"
    )
    parser.add_argument(
        "--ef", default="64,96,256,512,1024,2048", help="efSearch values for recall"
    )
    parser.add_argument(
        "--vectors",
        choices=("shaped", "isotropic"),
        default="shaped",
        help="the synthetic stores' HNSW graph: over MiniLM-shaped vectors (default; a 1M graph "
        "takes ~30 min to build once), or over the isotropic vectors the stores hold (quicker "
        "to set up when only search latency matters; HNSW recall on noise says little)",
    )
    parser.add_argument(
        "--rss-max", type=int, default=1_000_000, help="largest synthetic store to measure RSS on"
    )
    parser.add_argument("--rss-probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = args.only.split(",")
    args.ef = [int(v) for v in args.ef.split(",")]
    default_sizes = "20000" if args.quick else "100000,1000000"
    sizes = args.sizes or default_sizes
    args.sizes = [] if sizes == "none" else [int(v) for v in sizes.split(",")]
    if any(n % WRITE_BATCH for n in args.sizes):
        parser.error(f"synthetic sizes must be multiples of {WRITE_BATCH}")
    args.queries = 30 if args.quick else 300
    args.recall_queries = 50 if args.quick else 200
    args.ingest_docs = 40 if args.quick else 500
    args.repeats = 1 if args.quick else 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_probe:
        rss_probe(*args.rss_probe)
        return 0
    if not (args.data / "scifact" / "corpus.jsonl").is_file():
        print(f"no SciFact at {args.data / 'scifact'}; pass --data DIR", file=sys.stderr)
        return 2
    print("## askdocs knowledge-base benchmarks\n")
    print(f"- machine: {machine()}")
    print(f"- command: `{shlex.join(['python', 'benchmarks/run.py', *sys.argv[1:]])}`")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}")
    embedder = load_embedder(config.load().embedding)
    run_scifact(args, embedder)
    if "synthetic" in args.only:
        run_synthetic(args, embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
