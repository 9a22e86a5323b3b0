"""askdocs next to LangChain + Chroma and bm25s on a BEIR collection (SciFact by default).

    python benchmarks/peers.py                          # ../shared/data/scifact
    python benchmarks/peers.py --data DIR --ingest-docs 1000

The peers run in their own virtualenv, created under the user cache directory on first use and
reused after (pinned versions; torch is the CPU build). They are never askdocs dependencies: this
file is also the peers' worker (`--worker NAME`), run by the venv's Python, importing nothing
from askdocs. Every run is scored by `askdocs.evaluate`, so all systems share the metric code.

- Quality: the full corpus, the split's judged queries, 100 documents per query (a document
  ranks at its best chunk). askdocs uses its evaluation store (`eval-<dir name>`, built by
  `askdocs eval retrieval DIR` and reused); the Chroma index of the full corpus is cached.
- Ingest: the first `--ingest-docs` documents into a fresh index, one system after the other,
  model already loaded (not timed), until the index is persisted and searchable.
- Query latency: one query at a time, query embedding included, for 100 documents.

LangChain + Chroma is set up as its documentation shows: `RecursiveCharacterTextSplitter()` with
its defaults (4,000 characters, 200 overlap), `HuggingFaceEmbeddings` on the same packaged
all-MiniLM-L6-v2 files askdocs uses, `Chroma` with its defaults, `similarity_search`. Those
4,000-character chunks exceed the model's 256 tokens and are truncated when embedded, so a
second setup, `langchain-chroma-tokens`, splits with
`RecursiveCharacterTextSplitter.from_huggingface_tokenizer` (the model's tokenizer, 200 tokens,
32 overlap, as askdocs chunks) and embeds all of the text. The
document text is "title\\ntext" for every system. bm25s indexes title + text per document with
its defaults (Lucene BM25, k1=1.5, b=0.75), English stop words and the Snowball stemmer.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
DOCS = 100  # documents per query
PEERS = ("langchain-chroma", "langchain-chroma-tokens", "bm25s")
REQUIREMENTS = (
    "torch==2.13.0",  # resolves to the local CPU wheel; never an unpinned (GPU) torch
    "sentence-transformers==6.2.0",
    "langchain-text-splitters==1.1.3",
    "langchain-chroma==1.1.0",
    "langchain-huggingface==1.2.3",
    "chromadb==1.5.9",
    "bm25s==0.3.16",
    "PyStemmer==3.1.0",
)
PEER_ENV = {  # everything offline and quiet: no telemetry, no hub look-ups
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

Run = dict[str, list[str]]


# --- shared by both sides (standard library only) ----------------------------------------------


def read_collection(data: Path, split: str) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Corpus as (doc id, title, text) in file order, and the split's judged queries."""
    with (data / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = [(str(d["_id"]), d.get("title") or "", d["text"]) for d in map(json.loads, f)]
    judged = {
        line.split("\t")[0]
        for line in (data / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
    }
    with (data / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {str(q["_id"]): q["text"] for q in map(json.loads, f) if str(q["_id"]) in judged}
    return corpus, queries


def timed_queries(
    queries: dict[str, str], search: Callable[[str], list[str]]
) -> tuple[Run, list[float]]:
    search(next(iter(queries.values())))  # warm-up
    run, seconds = {}, []
    for qid, text in queries.items():
        start = time.perf_counter()
        run[qid] = search(text)
        seconds.append(time.perf_counter() - start)
    return run, seconds


def first_docs(pairs: Iterator[tuple[str, Any]], n: int) -> list[str]:
    """The first `n` distinct doc ids of (doc id, anything) pairs."""
    ranked: dict[str, None] = {}
    for doc_id, _ in pairs:
        ranked.setdefault(doc_id)
        if len(ranked) == n:
            break
    return list(ranked)


# --- peer workers (run inside the peers' virtualenv) ---------------------------------------------


def chroma_worker(args: argparse.Namespace, *, token_splitter: bool = False) -> dict[str, Any]:
    import torch
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    torch.set_num_threads(os.cpu_count() or 1)  # the same cores askdocs' ONNX Runtime uses
    corpus, queries = read_collection(args.data, args.split)
    embeddings = HuggingFaceEmbeddings(model_name=args.model)
    if token_splitter:  # every token embedded: chunks counted in the model's own tokens
        from transformers import AutoTokenizer

        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            AutoTokenizer.from_pretrained(args.model), chunk_size=200, chunk_overlap=32
        )
    else:
        splitter = RecursiveCharacterTextSplitter()

    def build(docs: list[tuple[str, str, str]], directory: str) -> tuple[Chroma, int]:
        pages = [Document(f"{t}\n{x}", metadata={"doc_id": i}) for i, t, x in docs]
        chunks = splitter.split_documents(pages)
        store = Chroma(embedding_function=embeddings, persist_directory=directory)
        batch = 5000  # under Chroma's maximum batch size
        for start in range(0, len(chunks), batch):
            store.add_documents(chunks[start : start + batch])
        return store, len(chunks)

    embeddings.embed_query("warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        _, n_chunks = build(corpus[: args.ingest_docs], tmp)
        ingest_seconds = time.perf_counter() - start

    full = args.index_dir / f"chroma{'-tokens' if token_splitter else ''}-{len(corpus)}"
    if (full / "complete").exists():  # the full-corpus index is built once, then cached
        store = Chroma(embedding_function=embeddings, persist_directory=str(full))
    else:
        shutil.rmtree(full, ignore_errors=True)
        store, _ = build(corpus, str(full))
        (full / "complete").touch()
    fetch = int(DOCS * 1.5)

    def search(query: str) -> list[str]:
        k = fetch
        while True:
            found = store.similarity_search(query, k=k)
            docs = first_docs(((d.metadata["doc_id"], d) for d in found), DOCS)
            if len(docs) >= DOCS or len(found) < k:
                return docs
            k *= 2

    run, seconds = timed_queries(queries, search)
    return {
        "ingest_seconds": ingest_seconds,
        "ingest_chunks": n_chunks,
        "run": run,
        "latency_seconds": seconds,
    }


def bm25s_worker(args: argparse.Namespace) -> dict[str, Any]:
    import bm25s
    import Stemmer

    corpus, queries = read_collection(args.data, args.split)
    stemmer = Stemmer.Stemmer("english")

    def build(docs: list[tuple[str, str, str]]) -> bm25s.BM25:
        tokens = bm25s.tokenize(
            [f"{t}\n{x}" for _, t, x in docs], stopwords="en", stemmer=stemmer, show_progress=False
        )
        index = bm25s.BM25()
        index.index(tokens, show_progress=False)
        return index

    start = time.perf_counter()
    build(corpus[: args.ingest_docs])
    ingest_seconds = time.perf_counter() - start
    index = build(corpus)
    ids = [doc_id for doc_id, _, _ in corpus]

    def search(query: str) -> list[str]:
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, show_progress=False)
        found, scores = index.retrieve(tokens, k=min(DOCS, len(ids)), show_progress=False)
        # bm25s fills k slots even with documents sharing no term with the query: drop those.
        return [ids[i] for i, s in zip(found[0].tolist(), scores[0].tolist(), strict=True) if s > 0]

    run, seconds = timed_queries(queries, search)
    return {
        "ingest_seconds": ingest_seconds,
        "ingest_chunks": args.ingest_docs,
        "run": run,
        "latency_seconds": seconds,
    }


WORKERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "langchain-chroma": chroma_worker,
    "langchain-chroma-tokens": functools.partial(chroma_worker, token_splitter=True),
    "bm25s": bm25s_worker,
}


# --- the askdocs side --------------------------------------------------------------------------


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("askdocs")) / "bench"


def peer_python() -> Path:
    """The peers' virtualenv Python, created and filled on first use."""
    venv = cache_dir() / "peers-venv"
    python = venv / "bin" / "python"
    marker = venv / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing peers into {venv} (once)...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def run_peer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from askdocs.models import MINILM_WEIGHTS, locate

    model = locate(MINILM_WEIGHTS).parent  # the same packaged files askdocs embeds with
    command = [
        str(peer_python()),
        __file__,
        "--worker",
        name,
        "--data",
        str(args.data),
        "--split",
        args.split,
        "--ingest-docs",
        str(args.ingest_docs),
        "--model",
        str(model),
        "--index-dir",
        str(cache_dir() / args.data.name),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | PEER_ENV
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout)


def askdocs_ingest_seconds(data: Path, n: int) -> tuple[float, int]:
    """The first `n` documents into a fresh temporary store, model loaded beforehand."""
    from askdocs import config
    from askdocs.evaluate import corpus_documents, load_beir
    from askdocs.kb import KnowledgeBase

    docs = corpus_documents(load_beir(data), data.name)[:n]
    with (
        tempfile.TemporaryDirectory() as tmp,
        KnowledgeBase.open(config.load({"store": tmp})) as kb,
    ):
        kb.embedder.embed(["warm-up"])
        start = time.perf_counter()
        report = kb.ingest_documents(docs)
        seconds = time.perf_counter() - start
    return seconds, report.chunks


def askdocs_quality(data: Path, split: str) -> dict[str, dict[str, Any]]:
    from askdocs.evaluate import eval_settings, evaluate_retrieval
    from askdocs.kb import KnowledgeBase

    settings = eval_settings(data)
    modes = ["keyword", "dense", f"hybrid-{settings.search.fusion}"]
    with KnowledgeBase.open(settings) as kb:
        evaluation = evaluate_retrieval(kb, data, split=split, modes=modes)
    return {r.mode: {"metrics": r.metrics, "latency": r.latency} for r in evaluation.results}


def score(result: dict[str, Any], data: Path, split: str) -> dict[str, Any]:
    from askdocs.evaluate import evaluate_run, latency_summary, load_beir

    qrels = load_beir(data, split).qrels
    return {
        "metrics": evaluate_run(result["run"], qrels),
        "latency": latency_summary(result["latency_seconds"]),
    }


def print_table(rows: dict[str, dict[str, Any]], reference: str, n_docs: int) -> None:
    ref = rows[reference]
    print(
        f"\nratios are to askdocs {reference.removeprefix('askdocs ')}; ingest: first {n_docs} "
        "documents, fresh index\n\n| system | nDCG@10 | x | Recall@100 | ingest s | chunks "
        "| x (their time / ours) | p50 ms | p95 ms | x p50 |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, row in rows.items():
        m, lat = row["metrics"], row["latency"]
        ingest = row.get("ingest_seconds")
        ingest_cells = (
            f"{ingest:.1f} | {row['ingest_chunks']} | {ingest / ref['ingest_seconds']:.2f}"
            if ingest
            else "— | — | —"
        )
        print(
            f"| {name} | {m['ndcg@10']:.4f} | {m['ndcg@10'] / ref['metrics']['ndcg@10']:.3f} "
            f"| {m['recall@100']:.4f} | {ingest_cells} | {lat['p50_ms']:.1f} "
            f"| {lat['p95_ms']:.1f} | {lat['p50_ms'] / ref['latency']['p50_ms']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--ingest-docs", type=int, default=1000, help="documents timed")
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data = args.data.resolve()
    if args.worker:
        json.dump(WORKERS[args.worker](args), sys.stdout)
        return
    # One system at a time: ingest timings must not share the two cores with anything else.
    seconds, chunks = askdocs_ingest_seconds(args.data, args.ingest_docs)
    print(f"askdocs ingest: {seconds:.1f} s, {chunks} chunks", file=sys.stderr, flush=True)
    quality = askdocs_quality(args.data, args.split)
    rows = {f"askdocs {mode}": q for mode, q in quality.items()}
    reference = f"askdocs {list(quality)[-1]}"
    rows[reference] |= {"ingest_seconds": seconds, "ingest_chunks": chunks}
    for name in PEERS:
        result = run_peer(name, args)
        rows[name] = score(result, args.data, args.split) | {
            k: result[k] for k in ("ingest_seconds", "ingest_chunks")
        }
        print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(rows, reference, args.ingest_docs)


if __name__ == "__main__":
    main()
