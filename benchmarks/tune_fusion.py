"""Choose the hybrid-search defaults on SciFact's *train* queries, then report *test* once.

    python benchmarks/tune_fusion.py                   # ../shared/data/scifact
    python benchmarks/tune_fusion.py --data DIR        # any BEIR folder with qrels/train.tsv

Uses the store `askdocs eval retrieval DIR` builds (`eval-<dir name>`; ingested here if
missing, which embeds the whole corpus once). Every candidate is scored offline on train from
rankings fetched once per query: dense from the store, keyword from in-memory keyword indexes
(`askdocs.store.keywords`, the store's own kind) built over the store's chunk texts (no re-
embedding), fused with `askdocs.fusion`, and mapped to documents (a document ranks at its best
chunk) before scoring, as `askdocs eval` does. Only train decides. For each family of settings
(keyword variants, RRF k x depth, convex weight x depth, and ideas that would need code:
weighted RRF, document-level fusion) the train winner is the highest mean nDCG@10, but it
replaces the current default only if tuning that family also wins on held-out queries: 5-fold
cross-validation over the train queries, compared with the current default by a paired
randomization test (p < 0.05). Test is scored afterwards, for the result and for each family's
winner, and feeds no choice. Query embeddings are cached.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import platformdirs

from askdocs.config import IndexSettings, SearchSettings
from askdocs.evaluate import (
    BeirDataset,
    corpus_documents,
    eval_settings,
    evaluate_run,
    load_beir,
    paired_randomization_test,
    per_query,
)
from askdocs.fusion import Ranking, fuse_convex, fuse_rrf
from askdocs.kb import KnowledgeBase
from askdocs.retrieval import retrieve
from askdocs.store.keywords import IndexedChunk, KeywordIndex
from askdocs.store.sqlite import DATABASE
from askdocs.text import Analyzer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
CACHE = Path(platformdirs.user_cache_dir("askdocs")) / "bench"
FETCH = 1000  # chunks each retriever returns per query; every depth tried is below this
DOCS = 100  # documents kept per query, enough for MAP@100 and Recall@100
METRICS = ("ndcg@10", "recall@100")
RRF_KS = (1, 5, 10, 20, 30, 40, 60, 80, 100)
CONVEX_WEIGHTS = tuple(round(w, 2) for w in np.arange(0.1, 0.95, 0.05))
DEPTHS = (20, 50, 100, 200, 400)
RRF_DENSE_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
ALPHA = 0.05  # a default changes only for a held-out gain significant at this level
FOLDS = 5  # cross-validation folds over the train queries

Rankings = dict[str, Ranking]  # query id -> (chunk ids, scores), best first
Run = dict[str, list[str]]  # query id -> doc ids, best first


@dataclass(frozen=True, slots=True)
class Corpus:
    """The store's chunks as the keyword variants need them, and chunk -> documents."""

    ids: np.ndarray
    texts: list[str]
    titles: list[str]
    content_of: dict[int, int]  # chunk id -> content id (identical documents share one)
    docs_of: dict[int, tuple[str, ...]]  # content id -> BEIR doc ids


@dataclass(frozen=True, slots=True)
class KeywordVariant:
    name: str
    analyzer: Analyzer = field(default_factory=Analyzer)
    title: bool = True


# BM25's k1 and b are tantivy's fixed constants (askdocs.text.BM25_K1, BM25_B): no variants.
KEYWORD_VARIANTS = (
    KeywordVariant("default: stem, stop words, title"),
    KeywordVariant("no title", title=False),
    KeywordVariant("no stemming", Analyzer(stem=False)),
    KeywordVariant("keep stop words", Analyzer(stopwords=False)),
    KeywordVariant("no stemming, keep stop words", Analyzer(stem=False, stopwords=False)),
)


# --- data ------------------------------------------------------------------------------------


def read_corpus(store: Path, collection: str) -> Corpus:
    db = sqlite3.connect(f"file:{store / DATABASE}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT ch.id, ch.text, ct.title, ch.content_id FROM chunks ch "
        "JOIN contents ct ON ct.id = ch.content_id ORDER BY ch.id"
    ).fetchall()
    prefix = f"beir://{collection}/"
    docs: dict[int, list[str]] = {}
    for content_id, path in db.execute("SELECT content_id, path FROM documents ORDER BY id"):
        if path.startswith(prefix):
            docs.setdefault(content_id, []).append(path.removeprefix(prefix))
    db.close()
    return Corpus(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        texts=[r[1] for r in rows],
        titles=[r[2] for r in rows],
        content_of={r[0]: r[3] for r in rows},
        docs_of={c: tuple(d) for c, d in docs.items()},
    )


def query_vectors(kb: KnowledgeBase, queries: Mapping[str, str], cache: Path) -> np.ndarray:
    """Embeddings of `queries` in order, cached per embedder and query set."""
    digest = hashlib.sha256(repr([kb.store.embedder_id, *queries.items()]).encode())
    file = cache / f"queries-{digest.hexdigest()[:16]}.npy"
    if file.exists():
        return np.load(file)
    vectors = kb.embedder.embed(list(queries.values()), truncate=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, vectors)
    return vectors


def dense_rankings(kb: KnowledgeBase, queries: Mapping[str, str], cache: Path) -> Rankings:
    vectors = query_vectors(kb, queries, cache)
    return {qid: kb.store.search_dense(v, FETCH) for qid, v in zip(queries, vectors, strict=True)}


def keyword_rankings(
    corpus: Corpus, variant: KeywordVariant, queries: Mapping[str, str]
) -> Rankings:
    index = KeywordIndex(None, variant.analyzer)
    texts = corpus.texts
    if variant.title:  # as the store builds it: `title\ntext`
        texts = [f"{t}\n{x}" if t else x for t, x in zip(corpus.titles, texts, strict=True)]
    chunks = [
        IndexedChunk(int(i), text, "", (), ()) for i, text in zip(corpus.ids, texts, strict=True)
    ]
    index.apply((), chunks, None)
    return {qid: index.search(q, FETCH) for qid, q in queries.items()}


def store_keyword(kb: KnowledgeBase, corpus: Corpus, queries: Mapping[str, str]) -> Rankings:
    """Keyword rankings as the store's own index settings give them."""
    i = kb.settings.index
    variant = KeywordVariant("store", title=i.title_in_keywords)
    return keyword_rankings(corpus, variant, queries)


# --- runs --------------------------------------------------------------------------------------


def to_documents(ranking: Ranking, corpus: Corpus) -> list[str]:
    """Chunk ranking -> doc ids, a document at its best chunk, at most DOCS of them."""
    ranked: dict[str, None] = {}
    for chunk_id in ranking[0].tolist():
        for doc in corpus.docs_of.get(corpus.content_of[chunk_id], ()):
            ranked.setdefault(doc)
        if len(ranked) >= DOCS:
            break
    return list(ranked)[:DOCS]


def collapse(ranking: Ranking, corpus: Corpus) -> Ranking:
    """Keep each content's best chunk only, keyed by content id: document-level fusion."""
    seen: dict[int, float] = {}
    for chunk_id, score in zip(ranking[0].tolist(), ranking[1].tolist(), strict=True):
        seen.setdefault(corpus.content_of[chunk_id], score)
    return np.array(list(seen), dtype=np.int64), np.array(list(seen.values()))


def cut(ranking: Ranking, depth: int) -> Ranking:
    return ranking[0][:depth], ranking[1][:depth]


Fuse = Callable[[Ranking, Ranking], Ranking]  # (dense, keyword) -> fused


def rrf(k: int, depth: int, dense_weight: float = 0.5) -> Fuse:
    weights = {"dense": 2 * dense_weight, "keyword": 2 * (1 - dense_weight)}
    return lambda d, kw: fuse_rrf(
        {"dense": cut(d, depth), "keyword": cut(kw, depth)}, k=k, weights=weights
    )


def convex(weight: float, depth: int) -> Fuse:
    weights = {"dense": weight, "keyword": 1 - weight}
    return lambda d, kw: fuse_convex(
        {"dense": cut(d, depth), "keyword": cut(kw, depth)}, weights=weights
    )


def single(rankings: Rankings, corpus: Corpus) -> dict[str, list[str]]:
    return {qid: to_documents(r, corpus) for qid, r in rankings.items()}


def fused(
    dense: Rankings, keyword: Rankings, fuse: Fuse, corpus: Corpus, *, by_document: bool = False
) -> dict[str, list[str]]:
    """Fuse per query; `by_document` collapses each list to one entry per document first."""
    run = {}
    for qid in dense:
        d, kw = dense[qid], keyword[qid]
        if by_document:
            ids, _ = fuse(collapse(d, corpus), collapse(kw, corpus))
            run[qid] = [doc for c in ids.tolist() for doc in corpus.docs_of.get(c, ())][:DOCS]
        else:
            run[qid] = to_documents(fuse(d, kw), corpus)
    return run


def check_simulation(
    kb: KnowledgeBase, dense: Rankings, keyword: Rankings, queries: Mapping[str, str]
) -> None:
    """The offline rankings must be what `retrieve` returns, or tuning them proves nothing.

    `keyword` must come from the variant matching the store's settings. Checks hybrid RRF at
    the store's settings on a sample of queries; prints how many top-100 lists differ.
    """
    settings = replace(kb.settings.search, fusion="rrf")
    s = kb.settings.search
    differ = 0
    sample = list(queries)[:50]
    for qid in sample:
        hits = retrieve(
            kb.store, kb.embedder, queries[qid], settings=settings, k=s.depth, mode="hybrid"
        )
        expected = rrf(s.rrf_k, s.depth)(dense[qid], keyword[qid])[0][: s.depth]
        differ += [h.chunk_id for h in hits] != expected.tolist()
    print(f"offline hybrid rankings equal to retrieve(): {len(sample) - differ}/{len(sample)}")


# --- choosing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    fuse: Fuse
    by_document: bool = False
    settings: dict[str, object] | None = None  # SearchSettings changes; None: needs new code


def rrf_candidate(k: int, depth: int) -> Candidate:
    changes = {"fusion": "rrf", "rrf_k": k, "depth": depth}
    return Candidate(f"rrf k={k} depth={depth}", rrf(k, depth), settings=changes)


def convex_candidate(w: float, depth: int) -> Candidate:
    changes = {"fusion": "convex", "convex_weight": w, "depth": depth}
    return Candidate(f"convex w={w} depth={depth}", convex(w, depth), settings=changes)


def current_candidate(s: SearchSettings) -> Candidate:
    if s.fusion == "rrf":
        return rrf_candidate(s.rrf_k, s.depth)
    return convex_candidate(s.convex_weight, s.depth)


def families(rrf_k: int, depth: int) -> dict[str, list[Candidate]]:
    return {
        "rrf": [rrf_candidate(k, d) for k in RRF_KS for d in DEPTHS],
        "convex": [convex_candidate(w, d) for w in CONVEX_WEIGHTS for d in DEPTHS],
        # Not expressible by the settings yet: would need changes in retrieval.py.
        "weighted rrf": [
            Candidate(f"rrf k={rrf_k} depth={depth} dense weight={w}", rrf(rrf_k, depth, w))
            for w in RRF_DENSE_WEIGHTS
        ],
        "document-level rrf": [
            Candidate(f"document-level rrf k={k} depth={d}", rrf(k, d), True)
            for k in RRF_KS
            for d in DEPTHS
        ],
        "document-level convex": [
            Candidate(f"document-level convex w={w} depth={d}", convex(w, d), True)
            for w in CONVEX_WEIGHTS
            for d in DEPTHS
        ],
    }


def ndcg_by_query(run: Run, data: BeirDataset) -> np.ndarray:
    scored = per_query(run, data.qrels, metrics=["ndcg@10"])
    return np.array([scored[q]["ndcg@10"] for q in data.qrels])


def cross_validated(by_query: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-query nDCG@10 of "pick the family's best setting on the other folds", for each
    fold's queries: what tuning gains on queries it did not see. The in-sample maximum over a
    grid is biased upwards (it also fits the noise), so decisions use this instead.

    >>> cross_validated({"a": np.array([1.0, 0, 1, 0, 1]), "b": np.array([0.0, 1, 0, 1, 0])})
    array([1., 0., 1., 0., 1.])
    """
    matrix = np.stack(list(by_query.values()))  # settings x queries
    n = matrix.shape[1]
    folds = np.random.default_rng(0).permutation(n) % min(FOLDS, n)
    out = np.empty(n)
    for fold in np.unique(folds):
        held = folds == fold
        out[held] = matrix[int(np.argmax(matrix[:, ~held].mean(axis=1))), held]
    return out


def decide(by_query: Mapping[str, np.ndarray], baseline: np.ndarray) -> tuple[bool, float, float]:
    """Adopt a family's train winner only if tuning it beats the current default on held-out
    folds, significantly (paired randomization, p < ALPHA). Returns (adopt, gain, p)."""
    tuned = cross_validated(by_query)
    gain = float(tuned.mean() - baseline.mean())
    p = paired_randomization_test(tuned, baseline)
    return gain > 0 and p < ALPHA, gain, p


def p_value(a: Run, b: Run, data: BeirDataset) -> float:
    """Paired randomization test on per-query nDCG@10."""
    return paired_randomization_test(ndcg_by_query(a, data), ndcg_by_query(b, data))


# --- reporting ---------------------------------------------------------------------------------


def scores(run: Mapping[str, Sequence[str]], data: BeirDataset) -> dict[str, float]:
    return evaluate_run(run, data.qrels, metrics=METRICS)


def table(title: str, rows: Iterable[tuple[str, Mapping[str, float]]]) -> None:
    print(f"\n### {title}\n\n| setting | nDCG@10 | Recall@100 |\n|---|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s['ndcg@10']:.4f} | {s['recall@100']:.4f} |")


def top(results: Mapping[str, dict[str, float]], n: int, keep: str) -> list[tuple[str, dict]]:
    """The n best rows by nDCG@10, plus the row `keep` (the current default) wherever it is."""
    rows = sorted(results.items(), key=lambda kv: -kv[1]["ndcg@10"])[:n]
    if keep in results and all(name != keep for name, _ in rows):
        rows.append((f"{keep} (current default)", results[keep]))
    return rows


# --- the steps -----------------------------------------------------------------------------------


def tune_keyword(
    corpus: Corpus, train: BeirDataset, index: IndexSettings
) -> tuple[KeywordVariant, Rankings]:
    """Keyword variants on train; the winner replaces the current settings only if tuning
    them wins on held-out folds (see `decide`)."""
    runs = {v.name: keyword_rankings(corpus, v, train.queries) for v in KEYWORD_VARIANTS}
    docs = {name: single(r, corpus) for name, r in runs.items()}
    table("Keyword variants (train)", [(n, scores(d, train)) for n, d in docs.items()])
    settings = (Analyzer(), index.title_in_keywords)
    current = next(v for v in KEYWORD_VARIANTS if (v.analyzer, v.title) == settings)
    by_query = {name: ndcg_by_query(d, train) for name, d in docs.items()}
    winner = next(v for v in KEYWORD_VARIANTS if v.name == best_mean(by_query))
    adopt, gain, p = decide(by_query, by_query[current.name])
    chosen = winner if adopt else current
    print(
        f"\nkeyword: train winner '{winner.name}'; tuning gains {gain:+.4f} nDCG@10 on "
        f"held-out folds (p={p:.3f}) -> '{chosen.name}'"
    )
    return chosen, runs[chosen.name]


def best_mean(by_query: Mapping[str, np.ndarray]) -> str:
    """The setting with the highest mean; the first listed wins a tie."""
    return max(by_query, key=lambda name: by_query[name].mean())


def tune_fusion(
    dense: Rankings, keyword: Rankings, corpus: Corpus, train: BeirDataset, now: SearchSettings
) -> tuple[Candidate, dict[str, Candidate]]:
    """Every family on train; returns the settings to use and each family's winner."""
    baseline = current_candidate(now)
    baseline_ndcg = ndcg_by_query(fused(dense, keyword, baseline.fuse, corpus), train)
    winners: dict[str, Candidate] = {}
    chosen, chosen_gain = baseline, 0.0
    for family, candidates in families(now.rrf_k, now.depth).items():
        runs = {
            c.name: fused(dense, keyword, c.fuse, corpus, by_document=c.by_document)
            for c in candidates
        }
        results = {name: scores(run, train) for name, run in runs.items()}
        table(f"{family} (train, best 10 of {len(results)})", top(results, 10, baseline.name))
        by_query = {name: ndcg_by_query(run, train) for name, run in runs.items()}
        winner = next(c for c in candidates if c.name == best_mean(by_query))
        winners[family] = winner
        adopt, gain, p = decide(by_query, baseline_ndcg)
        settable = "" if winner.settings else " (needs code, not a setting)"
        print(
            f"\n{family}: train winner '{winner.name}'{settable}; tuning gains {gain:+.4f} "
            f"nDCG@10 over the current default on held-out folds (p={p:.3f})"
        )
        if adopt and winner.settings and gain > chosen_gain:
            chosen, chosen_gain = winner, gain
    print(f"\nfusion -> '{chosen.name}'{' (unchanged)' if chosen is baseline else ''}")
    return chosen, winners


def report_test(
    kb: KnowledgeBase,
    data_dir: Path,
    corpus: Corpus,
    cache: Path,
    variant: KeywordVariant,
    chosen: Candidate,
    winners: Mapping[str, Candidate],
) -> None:
    """Test scores of what train chose, and of each family's train winner: nothing is chosen
    here. (`askdocs eval retrieval DIR` gives the same through the real search path.)"""
    test = load_beir(data_dir, "test")
    dense = dense_rankings(kb, test.queries, cache)
    keyword = keyword_rankings(corpus, variant, test.queries)
    runs = {
        "dense": single(dense, corpus),
        f"keyword ({variant.name})": single(keyword, corpus),
        f"hybrid, chosen: {chosen.name}": fused(dense, keyword, chosen.fuse, corpus),
    }
    for family, c in winners.items():
        runs[f"{family} train winner: {c.name}"] = fused(
            dense, keyword, c.fuse, corpus, by_document=c.by_document
        )
    table(
        f"Test ({len(test.queries)} queries; nothing chosen here)",
        [(name, scores(run, test)) for name, run in runs.items()],
    )
    reference = runs[f"hybrid, chosen: {chosen.name}"]
    for name, run in runs.items():
        print(f"p (nDCG@10 vs chosen hybrid) = {p_value(run, reference, test):.4f}  {name}")


# --- main --------------------------------------------------------------------------------------


def open_store(data_dir: Path) -> KnowledgeBase:
    settings = eval_settings(data_dir)
    kb = KnowledgeBase.open(settings)
    if kb.status().chunks == 0:
        print(f"building {settings.store} (embeds the corpus once, minutes)...", flush=True)
    # Unchanged documents are skipped, so this only costs a scan when the store is built.
    data = load_beir(data_dir, "test")
    report = kb.ingest_documents(corpus_documents(data, data_dir.name))
    print(f"store {settings.store}: {report.unchanged} unchanged, {report.added} added")
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR folder")
    args = parser.parse_args()
    data_dir = args.data.resolve()
    cache = CACHE / data_dir.name
    started = time.perf_counter()
    kb = open_store(data_dir)
    corpus = read_corpus(kb.settings.store, data_dir.name)
    train = load_beir(data_dir, "train")
    print(f"{len(corpus.ids)} chunks; {len(train.queries)} train queries")

    dense = dense_rankings(kb, train.queries, cache)
    table(
        "Dense (train)", [("MiniLM-L6, title in embedding", scores(single(dense, corpus), train))]
    )
    check_simulation(kb, dense, store_keyword(kb, corpus, train.queries), train.queries)
    variant, keyword = tune_keyword(corpus, train, kb.settings.index)
    chosen, winners = tune_fusion(dense, keyword, corpus, train, kb.settings.search)
    report_test(kb, data_dir, corpus, cache, variant, chosen, winners)
    kb.close()
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
