"""Retrieval metrics, the BEIR test-collection loader, and a harness that scores a knowledge
base on a BEIR collection in every search mode (`evaluate_retrieval`).

The metrics reproduce `trec_eval` as BEIR runs it through `pytrec_eval`, so numbers here can be
put next to published BEIR tables:

- a relevance grade of 0 (or below) means "judged, not relevant"; only grades > 0 count;
- a ranked list is read best first, and a doc id seen again further down is dropped (the first
  occurrence keeps its rank) because a run that repeats a document must not score it twice;
- a query in the qrels that the run does not answer scores 0 on every metric, and queries in the
  run that have no qrels are ignored (BEIR instead averages over the queries the run answered).

BEIR also drops any hit whose doc id equals the query id before scoring (on by default there); it
only matters for collections whose queries are also documents (ArguAna, Quora). Here it is
opt-in through `without_self_hits`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from askdocs import config
from askdocs.config import SearchSettings, Settings, named_store
from askdocs.errors import ConfigError, NotFound
from askdocs.ingest import IngestReport, Progress
from askdocs.types import Document

if TYPE_CHECKING:
    from askdocs.kb import KnowledgeBase

Run = dict[str, list[str]]
"""Query id -> ranked doc ids, best first."""

Metric = Callable[[Sequence[str], Mapping[str, int], int], float]

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "map@100", "mrr@10", "recall@10", "recall@100")

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """One split of a BEIR collection.

    `queries` holds only the queries judged in the split; `qrels` keeps grades as given, so
    grade-0 judgments are present (and count as not relevant).
    """

    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance grade}


# --- loading ---------------------------------------------------------------------------------


def load_beir(path: Path, split: str = "test") -> BeirDataset:
    """Read `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` from a BEIR directory.

    Raises `NotFound` for a missing file and `ConfigError` naming file and line for a malformed
    record, a duplicate id, or a judged query that `queries.jsonl` lacks. Judged documents
    missing from the corpus are allowed, as in BEIR: they simply cannot be retrieved.
    """
    path = Path(path)
    qrels_file = path / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
        raise NotFound(f"{qrels_file}: no such file; splits found here: {splits or 'none'}")
    qrels, first_seen = _read_qrels(qrels_file)
    all_queries = {qid: text for qid, (_, text) in _read_records(path / "queries.jsonl").items()}
    for qid, line_no in first_seen.items():
        if qid not in all_queries:
            raise ConfigError(f"{qrels_file}:{line_no}: query id {qid!r} is not in queries.jsonl")
    queries = {qid: all_queries[qid] for qid in qrels}
    return BeirDataset(corpus=_read_records(path / "corpus.jsonl"), queries=queries, qrels=qrels)


def _lines(file: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without newline) for each non-blank line."""
    if not file.is_file():
        raise NotFound(f"{file}: no such file")
    # Binary reading lets a decoding error name its line.
    with file.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{file}:{line_no}: not valid UTF-8 ({exc.reason})") from exc
            text = text.rstrip("\r\n")
            if text.strip():
                yield line_no, text


def _read_records(file: Path) -> dict[str, tuple[str, str]]:
    """Read a BEIR JSONL file into id -> (title, text); a missing or null title becomes ""."""
    records: dict[str, tuple[str, str]] = {}
    seen_at: dict[str, int] = {}
    for line_no, line in _lines(file):
        where = f"{file}:{line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        doc_id, title, text = record.get("_id"), record.get("title") or "", record.get("text")
        # Some exports write numeric ids; qrels ids are always strings, so match them as such.
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            raise ConfigError(f"{where}: '_id' must be a non-empty string")
        if not isinstance(text, str) or not isinstance(title, str):
            raise ConfigError(f"{where}: 'text' (and 'title' if present) must be strings")
        if doc_id in seen_at:
            raise ConfigError(f"{where}: duplicate id {doc_id!r} (first on line {seen_at[doc_id]})")
        seen_at[doc_id] = line_no
        records[doc_id] = (title, text)
    return records


def _read_qrels(file: Path) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Read a BEIR qrels TSV; also return the line where each query id first appears."""
    qrels: dict[str, dict[str, int]] = {}
    first_seen: dict[str, int] = {}
    lines = _lines(file)
    header = next(lines, None)
    if header is None or tuple(f.strip() for f in header[1].split("\t")) != QRELS_HEADER:
        line_no = header[0] if header else 1
        expected = "<TAB>".join(QRELS_HEADER)
        raise ConfigError(f"{file}:{line_no}: expected the header {expected!r}")
    for line_no, line in lines:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise ConfigError(f"{file}:{line_no}: expected 'query-id<TAB>corpus-id<TAB>score'")
        qid, doc_id, grade = fields
        try:
            value = int(grade)
        except ValueError as exc:
            raise ConfigError(f"{file}:{line_no}: score {grade!r} is not an integer") from exc
        judged = qrels.setdefault(qid, {})
        if doc_id in judged:
            raise ConfigError(f"{file}:{line_no}: ({qid!r}, {doc_id!r}) is judged twice")
        judged[doc_id] = value
        first_seen.setdefault(qid, line_no)
    if not qrels:
        raise ConfigError(f"{file}: no judgments after the header")
    return qrels, first_seen


# --- per-query metrics -----------------------------------------------------------------------


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first k distinct doc ids of `ranked`; a repeated id keeps its first rank."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    seen: set[str] = set()
    top: list[str] = []
    for doc_id in ranked:
        if doc_id not in seen:
            seen.add(doc_id)
            top.append(doc_id)
            if len(top) == k:
                break
    return top


def _n_relevant(relevant: Mapping[str, int]) -> int:
    return sum(1 for grade in relevant.values() if grade > 0)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gain (the grade) and a log2(rank + 1) discount, as trec's ndcg_cut.

    The ideal ranking is built from every judged doc with grade > 0, retrieved or not, and is
    cut at k too. Grades <= 0 give no gain. No relevant docs -> 0.

    >>> ndcg_at(["a", "b"], {"b": 1}, 10)  # (1 / log2(3)) / 1
    0.6309...
    """
    top = _top_k(ranked, k)
    dcg = sum(max(relevant.get(d, 0), 0) / math.log2(rank + 1) for rank, d in enumerate(top, 1))
    ideal = sorted((grade for grade in relevant.values() if grade > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, 1))
    return dcg / idcg if idcg > 0 else 0.0


def average_precision_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """AP@k as trec's map_cut: precision at each relevant hit in the top k, summed, divided by
    the number of relevant docs judged (not the number retrieved). Grades only matter as > 0.

    >>> average_precision_at(["a", "x", "c"], {"a": 1, "c": 2, "z": 1}, 10)  # (1/1 + 2/3) / 3
    0.5555...
    """
    hits, total = 0, 0.0
    for rank, doc_id in enumerate(_top_k(ranked, k), 1):
        if relevant.get(doc_id, 0) > 0:
            hits += 1
            total += hits / rank
    n_relevant = _n_relevant(relevant)
    return total / n_relevant if n_relevant else 0.0


def reciprocal_rank_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant doc within the top k, else 0 (BEIR's MRR@k per query).

    >>> reciprocal_rank_at(["a", "b"], {"a": 0, "b": 2}, 10)  # "a" is judged not relevant
    0.5
    """
    for rank, doc_id in enumerate(_top_k(ranked, k), 1):
        if relevant.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Relevant docs in the top k over all relevant docs judged, as trec's recall_k.

    >>> recall_at(["a", "b", "c"], {"a": 1, "c": 1}, 2)  # only "a" is in the top 2
    0.5
    """
    n_relevant = _n_relevant(relevant)
    if not n_relevant:
        return 0.0
    hits = sum(1 for doc_id in _top_k(ranked, k) if relevant.get(doc_id, 0) > 0)
    return hits / n_relevant


METRICS: dict[str, Metric] = {
    "ndcg": ndcg_at,
    "map": average_precision_at,
    "mrr": reciprocal_rank_at,
    "recall": recall_at,
}
"""Metric families by name; `evaluate_run` accepts any "<name>@<k>" built from these."""


# --- whole runs ------------------------------------------------------------------------------


def _parse_metric(name: str) -> tuple[Metric, int]:
    family, _, cutoff = name.partition("@")
    if family not in METRICS or not (cutoff.isascii() and cutoff.isdigit()) or int(cutoff) < 1:
        known = ", ".join(f"{f}@<k>" for f in METRICS)
        raise ConfigError(f"unknown metric {name!r}; use one of {known} with k >= 1")
    return METRICS[family], int(cutoff)


def per_query(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, dict[str, float]]:
    """Every metric for every judged query; a query missing from the run scores 0.

    >>> per_query({"q1": ["a", "b"]}, {"q1": {"b": 1}, "q2": {"c": 1}}, metrics=["mrr@10"])
    {'q1': {'mrr@10': 0.5}, 'q2': {'mrr@10': 0.0}}
    """
    parsed = [(name, *_parse_metric(name)) for name in metrics]
    return {
        qid: {name: metric(run.get(qid, ()), relevant, k) for name, metric, k in parsed}
        for qid, relevant in qrels.items()
    }


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over all judged queries (keys: the metric names, e.g. "ndcg@10").

    Queries with no relevant judgments stay in the mean with 0, as trec_eval scores them.

    >>> evaluate_run({"q1": ["a", "b"]}, {"q1": {"b": 1}, "q2": {"c": 1}}, metrics=["mrr@10"])
    {'mrr@10': 0.25}
    """
    if not qrels:
        raise ValueError("qrels is empty: there is nothing to evaluate against")
    scores = per_query(run, qrels, metrics=metrics)
    return {name: math.fsum(s[name] for s in scores.values()) / len(scores) for name in metrics}


def without_self_hits(run: Mapping[str, Sequence[str]]) -> Run:
    """Drop each query's own id from its ranking, as BEIR does by default before scoring.

    Use it for collections whose queries are also corpus documents (ArguAna, Quora), and
    retrieve one extra hit per query so the cut-off lists stay full.

    >>> without_self_hits({"q1": ["q1", "d2"]})
    {'q1': ['d2']}
    """
    return {qid: [doc_id for doc_id in ranked if doc_id != qid] for qid, ranked in run.items()}


# --- significance and latency ----------------------------------------------------------------


def paired_randomization_test(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value that per-query scores `a` and `b` have the same mean.

    Fisher's paired randomization test: under the null hypothesis each query's two scores are
    exchangeable, so the sign of each difference is flipped at random and we count how often
    the permuted |mean difference| reaches the observed one. The add-one estimate never
    returns 0, and identical lists give exactly 1.

    >>> paired_randomization_test([0.5, 0.2, 0.9], [0.5, 0.2, 0.9])
    1.0
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.ndim != 1 or diff.size == 0 or len(a) != len(b):
        raise ValueError("a and b must be non-empty score lists of the same length")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    observed = abs(diff.mean())
    # A difference equal up to rounding must count as reaching the observed one.
    threshold = observed - 1e-12 * max(1.0, observed)
    rng = np.random.default_rng(seed)
    rows = max(1, 2_000_000 // diff.size)  # bounds memory at ~16 MB per batch
    reached = 0
    for start in range(0, n_resamples, rows):
        n = min(rows, n_resamples - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(n, diff.size))
        reached += int(np.count_nonzero(np.abs(signs @ diff) / diff.size >= threshold))
    return (reached + 1) / (n_resamples + 1)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean of latencies given in seconds, reported in ms.

    Percentiles use numpy's "linear" method (Hyndman & Fan type 7, numpy's default): with few
    samples p95 interpolates between the two slowest ones rather than picking one.

    >>> latency_summary([0.010, 0.020, 0.030])  # p95 at position 0.95 * 2 = 1.9 -> 20 + 0.9 * 10
    {'p50_ms': 20.0, 'p95_ms': 29.0, 'mean_ms': 20.0}
    """
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.ndim != 1 or ms.size == 0:
        raise ValueError("latency_summary needs at least one measurement")
    p50, p95 = np.percentile(ms, [50, 95], method="linear")
    return {"p50_ms": float(p50), "p95_ms": float(p95), "mean_ms": float(ms.mean())}


# --- evaluating a knowledge base on a BEIR collection ----------------------------------------

EVAL_MODES: dict[str, tuple[str, dict[str, str]]] = {
    "keyword": ("keyword", {}),
    "dense": ("dense", {}),
    "hybrid-rrf": ("hybrid", {"fusion": "rrf"}),
    "hybrid-convex": ("hybrid", {"fusion": "convex"}),
}
"""Name in reports -> (search mode, `SearchSettings` changes). A new retriever goes here."""


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]  # mean over the split's judged queries
    latency: dict[str, float]  # p50_ms, p95_ms, mean_ms per query, embedding included
    per_query: dict[str, dict[str, float]]  # for significance tests between modes


@dataclass(frozen=True, slots=True)
class RetrievalEvaluation:
    collection: str
    split: str
    store: str
    documents: int
    queries: int
    chunks_fetched: int  # chunks asked of each search so that `depth` documents come back
    ingest: IngestReport
    results: tuple[ModeResult, ...]


def default_store(directory: Path, *, int8: bool = False) -> Path:
    """The named store a collection is ingested into, reused by later runs: `eval-<dir name>`,
    or `eval-<dir name>-int8` for the int8 encoder's vectors."""
    return named_store(f"eval-{Path(directory).resolve().name}" + ("-int8" if int8 else ""))


def eval_settings(directory: Path, store: str | None = None) -> Settings:
    """Settings (config file and environment) with `store`, or the collection's default store
    for the configured encoder."""
    settings = config.load({"store": store})
    if store is None:
        default = default_store(directory, int8=settings.embedding.int8)
        settings = dataclasses.replace(settings, store=default)
    return settings


def corpus_documents(data: BeirDataset, collection: str) -> list[Document]:
    """The corpus as documents keyed `beir://<collection>/<doc id>`."""
    return [
        Document(f"beir://{collection}/{doc_id}", text, title, "txt")
        for doc_id, (title, text) in data.corpus.items()
    ]


def evaluate_retrieval(
    kb: KnowledgeBase,
    directory: Path,
    *,
    split: str = "test",
    modes: Sequence[str] = tuple(EVAL_MODES),
    metrics: Sequence[str] = DEFAULT_METRICS,
    progress: Callable[[Progress], None] | None = None,
) -> RetrievalEvaluation:
    """Ingest a BEIR collection into `kb` (unchanged documents are skipped, so a second run
    embeds nothing) and score every mode on the split's judged queries."""
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; choose from {', '.join(EVAL_MODES)}")
    directory = Path(directory).resolve()
    data = load_beir(directory, split)
    report = kb.ingest_documents(corpus_documents(data, directory.name), progress=progress)
    depth = max(_parse_metric(name)[1] for name in metrics)
    fetch = _chunks_for(kb, depth)
    prefix = f"beir://{directory.name}/"
    results = tuple(
        _evaluate_mode(kb, data, mode, prefix=prefix, depth=depth, fetch=fetch, metrics=metrics)
        for mode in modes
    )
    return RetrievalEvaluation(
        directory.name,
        split,
        str(kb.settings.store),
        len(data.corpus),
        len(data.queries),
        fetch,
        report,
        results,
    )


def _chunks_for(kb: KnowledgeBase, depth: int) -> int:
    """Chunks to fetch for `depth` distinct documents: 1.5 times the mean chunks per document
    (a few long documents would otherwise crowd the list); `_rank_documents` asks again if short.
    """
    status = kb.status()
    per_document = status.chunks / max(1, status.contents)
    return max(depth, math.ceil(depth * per_document * 1.5))


def _evaluate_mode(
    kb: KnowledgeBase,
    data: BeirDataset,
    mode: str,
    *,
    prefix: str,
    depth: int,
    fetch: int,
    metrics: Sequence[str],
) -> ModeResult:
    search_mode, changes = EVAL_MODES[mode]
    settings = dataclasses.replace(kb.settings.search, **changes)
    search = functools.partial(
        _rank_documents, kb, settings=settings, mode=search_mode, prefix=prefix, depth=depth
    )
    search(next(iter(data.queries.values())), fetch=fetch)  # warm-up: model load, caches
    run: Run = {}
    seconds: list[float] = []
    for qid, query in data.queries.items():
        run[qid], elapsed = search(query, fetch=fetch)
        seconds.append(elapsed)
    scores = per_query(run, data.qrels, metrics=metrics)
    means = {name: math.fsum(s[name] for s in scores.values()) / len(scores) for name in metrics}
    return ModeResult(mode, means, latency_summary(seconds), scores)


def _rank_documents(
    kb: KnowledgeBase,
    query: str,
    *,
    settings: SearchSettings,
    mode: str,
    prefix: str,
    depth: int,
    fetch: int,
) -> tuple[list[str], float]:
    """Doc ids for `query`, best first (a document ranks at its best chunk), and the seconds
    the last search took. Asks for more chunks while fewer than `depth` documents came back."""
    while True:
        start = time.perf_counter()
        hits = kb.search(query, k=fetch, mode=mode, rerank=False, settings=settings)
        elapsed = time.perf_counter() - start
        ranked: dict[str, None] = {}
        for hit in hits:
            # Identical content under several ids is stored once; each id counts as retrieved.
            for path in (hit.path, *hit.also_in):
                if path.startswith(prefix):
                    ranked.setdefault(path.removeprefix(prefix))
        if len(ranked) >= depth or len(hits) < fetch:
            return list(ranked)[:depth], elapsed
        fetch *= 2


def format_evaluation(evaluation: RetrievalEvaluation) -> str:
    """A plain-text table: one row per mode, metrics then latency in ms."""
    names = list(evaluation.results[0].metrics) if evaluation.results else []
    header = ["mode", *names, "p50 ms", "p95 ms"]
    rows = [
        [r.mode, *(f"{r.metrics[n]:.4f}" for n in names), *_latency_cells(r.latency)]
        for r in evaluation.results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:  # names flush left, numbers flush right
        numbers = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([cells[0].ljust(widths[0]), *numbers])

    title = (
        f"{evaluation.collection} ({evaluation.split}): {evaluation.queries} queries, "
        f"{evaluation.documents} documents, store {evaluation.store}"
    )
    return "\n".join([title, line(header), *map(line, rows)])


def _latency_cells(latency: dict[str, float]) -> list[str]:
    return [f"{latency['p50_ms']:.1f}", f"{latency['p95_ms']:.1f}"]
