"""Reranking on SciFact and on 2WikiMultihopQA passages: quality gained, time added.

    python benchmarks/bench_rerank.py                    # SciFact test + 2Wiki, candidates 20
    python benchmarks/bench_rerank.py --candidates 30 --queries 300

SciFact (BEIR, `../shared/data/scifact`, test split): nDCG@10 and recall@10 of hybrid search,
as `askdocs eval retrieval` ranks documents (a document at its best chunk), without and with
the local reranker (`askdocs.rerank.SentenceReranker`) reordering the first `--candidates`
chunks; and the milliseconds per query each takes (p50, p95), the query embedding included.
2WikiMultihopQA (`../shared/data/2wikimultihopqa_dev500`): the share of each question's gold
supporting paragraphs among the top 4 and top 10 chunks (what an answer prompt can show).
Stores are the ones `askdocs eval` and benchmarks/bench_answers.py build, reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    names = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln]
    return names[0] if names else "unknown CPU"


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - start) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scifact(data: Path, candidates: int, limit: int | None) -> list[dict[str, Any]]:
    from askdocs.evaluate import corpus_documents, eval_settings, load_beir, ndcg_at, recall_at
    from askdocs.kb import KnowledgeBase
    from askdocs.rerank import SentenceReranker, rerank

    directory = (data / "scifact").resolve()
    dataset = load_beir(directory, "test")
    prefix = f"beir://{directory.name}/"
    rows = []
    with KnowledgeBase.open(eval_settings(directory)) as kb:
        kb.ingest_documents(corpus_documents(dataset, directory.name))
        reranker = SentenceReranker(kb.embedder)
        queries = list(dataset.queries.items())[:limit]
        kb.search(queries[0][1], k=candidates)  # warm-up
        for name in ("hybrid", "hybrid + rerank"):
            ndcg, recall, ms = [], [], []
            for qid, query in queries:
                start = time.perf_counter()
                hits = kb.search(query, k=candidates)
                if name != "hybrid":
                    hits = rerank(reranker, query, hits)
                ms.append((time.perf_counter() - start) * 1000)
                ranked = list(dict.fromkeys(h.path.removeprefix(prefix) for h in hits))
                ndcg.append(ndcg_at(ranked, dataset.qrels[qid], 10))
                recall.append(recall_at(ranked, dataset.qrels[qid], 10))
            rows.append({"set": "SciFact test", "run": name, "queries": len(queries),
                         "ndcg@10": statistics.mean(ndcg), "recall@10": statistics.mean(recall),
                         "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95)})  # fmt: skip
    return rows


def two_wiki(data: Path, stores: Path, candidates: int, limit: int | None) -> list[dict[str, Any]]:
    from askdocs import config
    from askdocs.evaluate_answers import load_squad
    from askdocs.kb import KnowledgeBase
    from askdocs.rerank import SentenceReranker, rerank

    folder = data / "2wikimultihopqa_dev500"
    squad = load_squad(folder / "2wikimultihopqa_dev500.squad.json")
    gold = [json.loads(line) for line in (folder / "gold.jsonl").read_text().splitlines()]
    gold = gold[:limit]
    settings = config.load({"store": str(stores / "2wiki")}, environ={})
    rows = []
    with KnowledgeBase.open(settings) as kb:
        kb.ingest_documents(squad.documents)
        reranker = SentenceReranker(kb.embedder)
        for name in ("hybrid", "hybrid + rerank"):
            at4, at10, ms = [], [], []
            for g in gold:
                wanted = {f"squad://{g['article']:03d}/{p:03d}" for p in g["supporting_paragraphs"]}
                start = time.perf_counter()
                hits = kb.search(g["question"], k=candidates)
                if name != "hybrid":
                    hits = rerank(reranker, g["question"], hits)
                ms.append((time.perf_counter() - start) * 1000)
                paths = [{h.path, *h.also_in} for h in hits]
                at4.append(len(wanted & set().union(*paths[:4])) / len(wanted))
                at10.append(len(wanted & set().union(*paths[:10])) / len(wanted))
            rows.append({"set": "2Wiki supporting paragraphs", "run": name, "queries": len(gold),
                         "recall@4": statistics.mean(at4), "recall@10": statistics.mean(at10),
                         "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1] / "../shared/data")
    parser.add_argument("--stores", type=Path, default=Path.home() / ".cache/askdocs-bench")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--queries", type=int, default=None, help="at most, per set")
    parser.add_argument("--sets", default="scifact,2wiki")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if "scifact" in args.sets:
        rows += scifact(args.data, args.candidates, args.queries)
    if "2wiki" in args.sets:
        rows += two_wiki(args.data, args.stores, args.candidates, args.queries)
    print(f"CPU: {machine()}; candidates {args.candidates}; command: python {' '.join(sys.argv)}")
    print("| set | run | queries | nDCG@10 | recall@4 | recall@10 | p50 ms | p95 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r[m]:.3f}" if m in r else "—" for m in ("ndcg@10", "recall@4", "recall@10")]
        print(f"| {r['set']} | {r['run']} | {r['queries']} | {' | '.join(cells)} | "
              f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
