"""Reranking on SciFact and on 2WikiMultihopQA passages: quality gained, time added.

    python benchmarks/bench_rerank.py                 # the table: SciFact test + 2Wiki (~7 min)
    python benchmarks/bench_rerank.py --candidates 20 --sets scifact --queries 100
    python benchmarks/bench_rerank.py --fit           # refit askdocs.rerank.local's weights

SciFact (BEIR, `../shared/data/scifact`, test split, 300 queries): nDCG@10 and recall@10 of
hybrid search as `askdocs eval retrieval` ranks documents (each at its best chunk, from the
same number of chunks), without and with the local reranker reordering the first
`candidates` chunks (the rest keep their order behind them). 2WikiMultihopQA
(`../shared/data/2wikimultihopqa_dev500`, 452 questions over 5,000 paragraphs): the share of
each question's gold supporting paragraphs among the first 4 and 10 chunks. p: a paired
randomization test of the reranked run against hybrid (nDCG@10, recall@4). Milliseconds per
query: the hybrid search, and what reranking adds to it (p50 and p95); each reranked run
starts with an empty sentence-vector cache. Stores: SciFact's is `askdocs eval`'s, 2Wiki's
benchmarks/bench_answers.py's; both are built on first use and reused.

`--fit` reads SciFact's training split only (`qrels/train.tsv`) and prints the constants for
src/askdocs/rerank/local.py, with their two-fold cross-validated nDCG@10 on train.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cpu import cpu_name

from askdocs import config
from askdocs.evaluate import (
    corpus_documents,
    eval_settings,
    load_beir,
    ndcg_at,
    paired_randomization_test,
    recall_at,
)
from askdocs.evaluate_answers import load_squad
from askdocs.kb import KnowledgeBase
from askdocs.rerank import LocalReranker
from askdocs.retrieval import retrieve
from askdocs.types import Hit

DATA = Path(__file__).resolve().parents[1] / "../shared/data"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def search(kb: KnowledgeBase, query: str, k: int) -> tuple[list[Hit], float]:
    start = time.perf_counter()
    hits = retrieve(kb.store, kb.embedder, query, settings=kb.settings.search, k=k)
    return hits, (time.perf_counter() - start) * 1000


def reranked(
    reranker: LocalReranker, query: str, hits: list[Hit], candidates: int
) -> tuple[list[Hit], float]:
    start = time.perf_counter()
    head = reranker.rerank(query, hits[:candidates])
    return head + hits[candidates:], (time.perf_counter() - start) * 1000


def documents(hits: Sequence[Hit], prefix: str) -> list[str]:
    """Document ids best first, each at its best chunk (as `askdocs eval retrieval`)."""
    ranked: dict[str, None] = {}
    for hit in hits:
        for path in (hit.path, *hit.also_in):
            ranked.setdefault(path.removeprefix(prefix))
    return list(ranked)


def open_scifact(data: Path, split: str) -> tuple[Any, KnowledgeBase, str]:
    directory = (data / "scifact").resolve()
    dataset = load_beir(directory, split)
    kb = KnowledgeBase.open(eval_settings(directory))
    kb.ingest_documents(corpus_documents(dataset, directory.name))  # unchanged: nothing to do
    return dataset, kb, f"beir://{directory.name}/"


def scifact(data: Path, candidates: list[int], limit: int | None) -> list[dict[str, Any]]:
    dataset, kb, prefix = open_scifact(data, "test")
    with kb:
        status = kb.status()
        fetch = max(10, math.ceil(10 * status.chunks / max(1, status.contents) * 1.5))
        queries = list(dataset.queries.items())[:limit]
        search(kb, queries[0][1], fetch)  # warm-up
        first = {qid: search(kb, query, fetch) for qid, query in queries}
        base = [ndcg_at(documents(first[q][0], prefix), dataset.qrels[q], 10) for q, _ in queries]
        search_ms = [ms for _, ms in first.values()]
        rows = [_scifact_row("hybrid", queries, base, dataset, first, prefix, search_ms, None)]
        for n in candidates:
            reranker = LocalReranker(kb.embedder)
            runs = {qid: reranked(reranker, query, first[qid][0], n) for qid, query in queries}
            ndcg = [
                ndcg_at(documents(runs[q][0], prefix), dataset.qrels[q], 10) for q, _ in queries
            ]
            row = _scifact_row(f"hybrid + local rerank top {n}", queries, ndcg, dataset, runs,
                               prefix, search_ms, [ms for _, ms in runs.values()])  # fmt: skip
            row["p"] = paired_randomization_test(ndcg, base)
            rows.append(row)
    return rows


def _scifact_row(
    name: str,
    queries: list[tuple[str, str]],
    ndcg: list[float],
    dataset: Any,
    runs: dict[str, tuple[list[Hit], float]],
    prefix: str,
    search_ms: list[float],
    added_ms: list[float] | None,
) -> dict[str, Any]:
    recall = [recall_at(documents(runs[q][0], prefix), dataset.qrels[q], 10) for q, _ in queries]
    return {"set": "SciFact test", "run": name, "queries": len(queries),
            "nDCG@10": statistics.mean(ndcg), "recall@10": statistics.mean(recall),
            "search": search_ms, "added": added_ms}  # fmt: skip


def two_wiki(
    data: Path, stores: Path, candidates: list[int], limit: int | None
) -> list[dict[str, Any]]:
    folder = data / "2wikimultihopqa_dev500"
    squad = load_squad(folder / "2wikimultihopqa_dev500.squad.json")
    gold = [json.loads(line) for line in (folder / "gold.jsonl").read_text().splitlines()]
    gold = gold[:limit]
    settings = config.load({"store": str(stores / "2wiki")}, environ={})
    k = max(10, *candidates)
    rows = []
    with KnowledgeBase.open(settings) as kb:
        kb.ingest_documents(squad.documents)
        search(kb, gold[0]["question"], k)  # warm-up
        first = [search(kb, g["question"], k) for g in gold]
        search_ms = [ms for _, ms in first]
        runs: list[tuple[str, list[tuple[list[Hit], float]], list[float] | None]] = [
            ("hybrid", first, None)
        ]
        for n in candidates:
            reranker = LocalReranker(kb.embedder)
            out = [reranked(reranker, g["question"], hits, n)
                   for g, (hits, _) in zip(gold, first, strict=True)]  # fmt: skip
            runs.append((f"hybrid + local rerank top {n}", out, [ms for _, ms in out]))
        base_at4: list[float] = []
        for name, results, added in runs:
            at4, at10 = [], []
            for g, (hits, _) in zip(gold, results, strict=True):
                wanted = {f"squad://{g['article']:03d}/{p:03d}" for p in g["supporting_paragraphs"]}
                paths = [{h.path, *h.also_in} for h in hits]
                at4.append(len(wanted & set().union(*paths[:4])) / len(wanted))
                at10.append(len(wanted & set().union(*paths[:10])) / len(wanted))
            rows.append({"set": "2Wiki supporting paragraphs", "run": name, "queries": len(gold),
                         "recall@4": statistics.mean(at4), "recall@10": statistics.mean(at10),
                         "search": search_ms, "added": added})  # fmt: skip
            if added is None:
                base_at4 = at4
            else:
                rows[-1]["p"] = paired_randomization_test(at4, base_at4)
    return rows


# --- fitting the local reranker's weights (SciFact train only) -------------------------------


def fit(data: Path, candidates: int) -> None:
    from askdocs.rerank import local

    dataset, kb, prefix = open_scifact(data, "train")
    queries: list[tuple[str, np.ndarray, np.ndarray, list[list[str]]]] = []
    started = time.perf_counter()
    with kb:
        reranker = LocalReranker(kb.embedder)
        for qid, query in dataset.queries.items():
            hits, _ = search(kb, query, candidates)
            if not hits:
                continue
            x = reranker.features(query, hits)
            text_x = _bare_features(reranker, query, hits)
            docs = [[p.removeprefix(prefix) for p in (h.path, *h.also_in)] for h in hits]
            queries.append((qid, x, text_x, docs))
    print(f"{len(queries)} train queries, features in {time.perf_counter() - started:.0f} s")

    def label(qid: str, docs: list[list[str]]) -> np.ndarray:
        return np.array([float(any(d in dataset.qrels[qid] for d in ds)) for ds in docs])

    def ndcg(subset: list[Any], score: Callable[[np.ndarray], np.ndarray], col: int) -> float:
        values = []
        for qid, *cols, docs in subset:
            s = score(cols[col])
            order = sorted(range(len(docs)), key=lambda i: (-s[i], i))
            ranked = list(dict.fromkeys(d for i in order for d in docs[i]))
            values.append(ndcg_at(ranked, dataset.qrels[qid], 10))
        return statistics.mean(values)

    def fit_hits(subset: list[Any]) -> np.ndarray:
        pairs = [(x, label(qid, docs)) for qid, x, _, docs in subset]
        w = _pairwise_logistic(pairs)
        scores = np.concatenate([x @ w for x, _ in pairs])
        a, b = _logistic(np.c_[scores, np.ones_like(scores)], np.concatenate([y for _, y in pairs]))
        return np.append(a * w, b)

    def fit_texts(subset: list[Any]) -> np.ndarray:
        x = np.vstack([tx for _, _, tx, _ in subset])
        y = np.concatenate([label(qid, docs) for qid, _, _, docs in subset])
        return _logistic(np.c_[x, np.ones(len(x))], y, l2=1e-3)

    folds = [queries[0::2], queries[1::2]]
    for name, fitter, col in (("hits", fit_hits, 0), ("texts", fit_texts, 1)):
        cv = []
        for k in (0, 1):
            w = fitter(folds[1 - k])
            cv.append((ndcg(folds[k], lambda x: -np.arange(len(x)), col),
                       ndcg(folds[k], lambda x, w=w: x @ w[:-1], col)))  # fmt: skip
        both = [sum(c[i] * len(f) for c, f in zip(cv, folds, strict=True)) / len(queries)
                for i in (0, 1)]  # fmt: skip
        w = fitter(queries)
        print(f"{name}: weights {np.round(w[:-1], 3).tolist()} bias {w[-1]:.3f}; two-fold CV "
              f"nDCG@10 {both[0]:.4f} -> {both[1]:.4f}; per fold "
              + ", ".join(f"{a:.4f} -> {b:.4f}" for a, b in cv))  # fmt: skip
    print(f"in use: {local.WEIGHTS} {local.BIAS}; texts {local.TEXT_WEIGHTS} {local.TEXT_BIAS}")


def _bare_features(reranker: LocalReranker, query: str, hits: list[Hit]) -> np.ndarray:
    """What `LocalReranker.scores` sees of each chunk: its text alone, no title, no first
    stage; columns sentence, cosine to the mean sentence vector, coverage."""
    bare = [Hit(i, h.text, "", "", "txt", 0, len(h.text), None, None, 0.0)
            for i, h in enumerate(hits)]  # fmt: skip
    return reranker.features(query, bare)[:, :3]


def _pairwise_logistic(
    queries: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-2
) -> np.ndarray:
    """Weights w so that w . (relevant - other) > 0, every query weighing the same."""
    diffs = []
    for x, y in queries:
        good, bad = x[y == 1], x[y == 0]
        if len(good) and len(bad):
            d = (good[:, None, :] - bad[None, :, :]).reshape(-1, x.shape[1])
            diffs.append(d / math.sqrt(len(d)))
    d = np.vstack(diffs)
    return _logistic(d, np.ones(len(d)), l2=l2)


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.0, steps: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method."""
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + (l2 + 1e-9) * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--stores", type=Path, default=Path.home() / ".cache/askdocs-bench")
    parser.add_argument("--candidates", default="10,20", help="chunks reranked, e.g. 10,20")
    parser.add_argument("--queries", type=int, default=None, help="at most, per set")
    parser.add_argument("--sets", default="scifact,2wiki")
    parser.add_argument("--fit", action="store_true", help="refit the weights on SciFact train")
    parser.add_argument("--fit-candidates", type=int, default=20)
    args = parser.parse_args()
    candidates = [int(n) for n in args.candidates.split(",")]
    if args.fit:
        fit(args.data, args.fit_candidates)
        return
    rows: list[dict[str, Any]] = []
    if "scifact" in args.sets:
        rows += scifact(args.data, candidates, args.queries)
    if "2wiki" in args.sets:
        rows += two_wiki(args.data, args.stores, candidates, args.queries)
    print(f"CPU: {cpu_name()}; command: python {' '.join(sys.argv)}\n")
    print(
        "| set | run | queries | nDCG@10 | recall@4 | recall@10 | search p50/p95 ms "
        "| rerank adds p50/p95 ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r[m]:.3f}" if m in r else "—" for m in ("nDCG@10", "recall@4", "recall@10")]
        if "p" in r:
            cells[0 if "nDCG@10" in r else 1] += f" (p={r['p']:.3f})"
        added = f"{pct(r['added'], 0.5):.0f} / {pct(r['added'], 0.95):.0f}" if r["added"] else "—"
        print(
            f"| {r['set']} | {r['run']} | {r['queries']} | {' | '.join(cells)} | "
            f"{pct(r['search'], 0.5):.0f} / {pct(r['search'], 0.95):.0f} | {added} |"
        )


if __name__ == "__main__":
    main()
