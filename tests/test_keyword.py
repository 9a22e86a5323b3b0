"""BM25 keyword index: golden tests against bm25s and rank_bm25, incremental updates, files."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from askdocs import _keyword_segments, keyword
from askdocs.keyword import Analyzer, KeywordIndex

CORPUS = [
    "The cat sat on the mat while the dog slept by the fire.",
    "Dogs chase cats, and cats chase mice; the mice run away from everything.",
    "A quick brown fox jumps over the lazy dog.",
    "Insulin resistance is a hallmark of type 2 diabetes.",
    "Type 1 diabetes is an autoimmune disease that destroys insulin-producing beta cells.",
    "Metformin lowers blood glucose in patients with type 2 diabetes.",
    "Regular exercise improves insulin sensitivity and lowers blood pressure.",
    "High blood pressure raises the risk of stroke and heart disease.",
    "The heart pumps blood through arteries, veins and capillaries.",
    "Vaccines train the immune system to recognise a virus before infection.",
    "The COVID-19 pandemic began in 2019 and spread worldwide in 2020.",
    "mRNA vaccines against SARS-CoV-2 were authorised in December 2020.",
    "Antibiotics kill bacteria but do not work against a virus.",
    "Overuse of antibiotics drives antibiotic resistance in bacteria.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
    "Plants store glucose as starch in their roots and seeds.",
    "Python is a programming language; Python code is easy to read.",
    "The python is a large snake that squeezes its prey.",
    "Rust and C++ give programmers control over memory.",
    "Garbage collection frees memory that a program no longer uses.",
    "SQLite stores a whole database in a single file on disk.",
    "A database index speeds up queries at the cost of slower writes.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "Dense retrieval embeds queries and documents as vectors.",
    "Hybrid search fuses keyword scores and vector scores with reciprocal rank fusion.",
    "The river Rhine rises in the Swiss Alps and flows to the North Sea.",
    "Lake Geneva lies between Switzerland and France.",
    "The Alps are the highest mountain range in Europe.",
    "Mount Everest is the highest mountain on Earth, at 8849 metres.",
    "Running every morning keeps the runner fit; she runs ten kilometres.",
    "He ran the marathon in under three hours and ran it again next year.",
    "Café culture in Paris: croissants, espresso and naïve tourists.",
    "Über-fast trains connect München and Zürich.",
    "The stock market fell sharply after the interest rate rise.",
    "Interest rates rise when central banks fight inflation.",
    "Inflation erodes savings; savings accounts rarely beat inflation.",
    "The the the of of and and",  # only stop words: a document of length zero
    "Cells divide by mitosis; cancer cells divide without control.",
    "Blood cells are made in the bone marrow.",
    "Memory cells of the immune system remember a virus for years.",
    "glucose glucose glucose glucose insulin",
    "",
]
QUERIES = [
    "type 2 diabetes insulin",
    "blood pressure heart",
    "virus vaccine immune",
    "python programming",
    "memory cells",
    "highest mountain Alps",
    "running runner ran",
    "glucose",
    "inflation interest rates",
    "café zürich",
    "2020 pandemic",
    "cats cats dog",  # a repeated term counts twice, as in bm25s
]
ANALYZER = Analyzer()


def build(ids: list[int], texts: list[str], **kwargs: float) -> KeywordIndex:
    index = KeywordIndex(**kwargs)
    index.add(ids, texts)
    return index


def ranking(index: KeywordIndex, query: str) -> tuple[np.ndarray, np.ndarray]:
    return index.search(query, k=10_000)


@pytest.fixture(scope="module")
def corpus_index() -> KeywordIndex:
    return build(list(range(len(CORPUS))), CORPUS)


# --- analyzer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyzer", "text", "expected"),
    [
        (Analyzer(), "The running dogs!", ["run", "dog"]),
        (Analyzer(), "Studies of studying students", ["studi", "studi", "student"]),
        (Analyzer(stopwords=False), "The running dogs", ["the", "run", "dog"]),
        (Analyzer(stem=False), "The running dogs", ["running", "dogs"]),
        (Analyzer(stem=False), "COVID-19 began in 2019", ["covid", "19", "began", "2019"]),
        (Analyzer(stem=False), "Café ÜBER naïve Zürich", ["café", "über", "naïve", "zürich"]),
        (Analyzer(stem=False), "snake_case x 3.14", ["snake_case", "x", "3", "14"]),
        (Analyzer(), "to be or not to be", []),
        (Analyzer(), "", []),
    ],
)
def test_analyzer_tokens(analyzer: Analyzer, text: str, expected: list[str]) -> None:
    assert analyzer.tokens(text) == expected


@pytest.mark.parametrize("analyzer", [Analyzer(), Analyzer(stem=False), Analyzer(stopwords=False)])
def test_analyzer_terms_match_tokens(analyzer: Analyzer) -> None:
    words = ["the", "running", "dogs", "of", "zürich", "were", "studying", "42", "cats"]
    expected = analyzer.tokens(" ".join(words))
    assert [t for t in analyzer.terms(words) if t is not None] == expected


def test_analyzer_id_tells_settings_apart() -> None:
    ids = {Analyzer(stem=s, stopwords=w).id() for s in (True, False) for w in (True, False)}
    assert len(ids) == 4
    assert Analyzer().id() == Analyzer("english", True, True).id()


def test_analyzer_rejects_unsupported_settings() -> None:
    with pytest.raises(ValueError, match="stop words"):
        Analyzer(language="french")
    with pytest.raises(ValueError, match="stemmer"):
        Analyzer(language="klingon", stopwords=False)
    assert Analyzer(language="french", stopwords=False).tokens("Les chats") == ["le", "chat"]


# --- golden: bm25s and rank_bm25 -------------------------------------------------------------


@pytest.mark.parametrize(("k1", "b"), [(1.2, 0.75), (1.5, 0.3), (0.9, 1.0)])
def test_scores_equal_bm25s_lucene_on_same_tokens(k1: float, b: float) -> None:
    corpus_tokens = [ANALYZER.tokens(t) for t in CORPUS]
    reference = bm25s.BM25(method="lucene", k1=k1, b=b)
    reference.index(corpus_tokens, show_progress=False)
    index = build(list(range(len(CORPUS))), CORPUS, k1=k1, b=b)
    for query in QUERIES:
        tokens = [t for t in ANALYZER.tokens(query) if t in reference.vocab_dict]
        expected = reference.get_scores(tokens)
        ids, scores = ranking(index, query)
        assert set(ids.tolist()) == set(np.flatnonzero(expected).tolist()), query
        np.testing.assert_allclose(scores, expected[ids], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores) <= 0)
        # bm25s orders by score too; equal up to ties, which we break by smaller id.
        order = np.lexsort((np.arange(len(expected)), -np.round(expected, 5)))
        assert ids.tolist() == order[: len(ids)].tolist(), query


def test_every_term_matches_rank_bm25() -> None:
    """rank_bm25's BM25Okapi has the same tf part times (k1 + 1) and the Okapi idf
    ln((N - df + 0.5) / (df + 0.5)) (floored when negative) instead of Lucene's
    ln(1 + (N - df + 0.5) / (df + 0.5)). So its scores only match per term, once rescaled:
    ours = sum over t of okapi_t * lucene_idf(t) / (okapi_idf(t) * (k1 + 1)). That checks every
    term's tf part against an independent implementation; the sums check the rest."""
    k1, b = 1.2, 0.75
    corpus_tokens = [ANALYZER.tokens(t) for t in CORPUS]
    okapi = BM25Okapi(corpus_tokens, k1=k1, b=b)
    index = build(list(range(len(CORPUS))), CORPUS, k1=k1, b=b)
    n = len(CORPUS)
    for query in QUERIES:
        expected = np.zeros(n)
        for term in ANALYZER.tokens(query):
            if term not in okapi.idf:
                continue
            df = sum(term in doc for doc in corpus_tokens)
            lucene_idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            per_term = okapi.get_scores([term])
            expected += per_term * lucene_idf / (okapi.idf[term] * (k1 + 1))
        ids, scores = ranking(index, query)
        assert set(ids.tolist()) == set(np.flatnonzero(expected).tolist()), query
        np.testing.assert_allclose(scores, expected[ids], rtol=1e-5)


def test_single_term_ranking_equals_rank_bm25(corpus_index: KeywordIndex) -> None:
    okapi = BM25Okapi([ANALYZER.tokens(t) for t in CORPUS], k1=1.2, b=0.75)
    for term in ["glucos", "cell", "blood", "insulin", "rise"]:
        scores = okapi.get_scores([term])
        expected = np.lexsort((np.arange(len(scores)), -np.round(scores, 6)))
        ids, _ = corpus_index.search_tokens([term], k=100)
        assert ids.tolist() == expected[: len(ids)].tolist()


def test_score_by_hand() -> None:
    # N=2, avgdl=2.5; "cat": df=1, idf=ln(1 + 1.5/1.5)=ln 2; doc 1: tf=2, dl=3.
    index = build([1, 2], ["cat cat dog", "dog mouse"])
    ids, scores = index.search("cat", k=5)
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 2.5)
    assert ids.tolist() == [1]
    assert scores[0] == pytest.approx(math.log(2) * 2 / (2 + norm), rel=1e-6)


# --- search behaviour ------------------------------------------------------------------------


def test_results_are_typed_and_sorted(corpus_index: KeywordIndex) -> None:
    ids, scores = corpus_index.search("blood glucose insulin", k=5)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert len(ids) == 5 and np.all(scores > 0) and np.all(np.diff(scores) <= 0)


def test_k_larger_than_matches(corpus_index: KeywordIndex) -> None:
    ids, scores = corpus_index.search("snake", k=50)
    assert ids.tolist() == [17] and len(scores) == 1


@pytest.mark.parametrize("query", ["", "the of and", "zebra unicorn", "!!! ???"])
def test_empty_stopword_and_unknown_queries_return_nothing(
    corpus_index: KeywordIndex, query: str
) -> None:
    ids, scores = corpus_index.search(query, k=10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert len(ids) == 0 and len(scores) == 0


def test_unknown_terms_do_not_change_scores(corpus_index: KeywordIndex) -> None:
    plain = corpus_index.search("blood pressure", k=10)
    noisy = corpus_index.search("blood zebra pressure unicorn", k=10)
    np.testing.assert_array_equal(plain[0], noisy[0])
    np.testing.assert_array_equal(plain[1], noisy[1])


def test_k_zero_and_negative(corpus_index: KeywordIndex) -> None:
    assert len(corpus_index.search("blood", k=0)[0]) == 0
    with pytest.raises(ValueError, match="k must be"):
        corpus_index.search("blood", k=-1)


def test_ties_broken_by_smaller_id() -> None:
    index = build([9, 5, 3, 7], ["red apple", "red apple", "red apple", "green pear"])
    ids, scores = index.search("apple", k=2)
    assert ids.tolist() == [3, 5] and scores[0] == scores[1]


def test_allowed_filters_without_changing_scores(corpus_index: KeywordIndex) -> None:
    allowed = np.array([3, 4, 5, 6, 30, 40], dtype=np.int64)
    full_ids, full_scores = ranking(corpus_index, "insulin diabetes glucose")
    keep = np.isin(full_ids, allowed)
    ids, scores = corpus_index.search("insulin diabetes glucose", k=3, allowed=allowed)
    assert ids.tolist() == full_ids[keep][:3].tolist()
    np.testing.assert_array_equal(scores, full_scores[keep][:3])
    assert len(corpus_index.search("insulin", k=5, allowed=np.array([], dtype=np.int64))[0]) == 0


def test_allowed_must_be_sorted(corpus_index: KeywordIndex) -> None:
    with pytest.raises(ValueError, match="sorted"):
        corpus_index.search("insulin", k=5, allowed=np.array([5, 3]))


def test_search_tokens_equals_search(corpus_index: KeywordIndex) -> None:
    for query in QUERIES:
        a = corpus_index.search(query, k=10)
        b = corpus_index.search_tokens(ANALYZER.tokens(query), k=10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


# --- add and delete --------------------------------------------------------------------------


def test_len_and_ids() -> None:
    index = build([30, 10, 20], ["a b", "c d", "e f"])
    assert len(index) == 3 and index.ids().tolist() == [10, 20, 30]
    index.delete([20, 999])
    assert len(index) == 2 and index.ids().tolist() == [10, 30]
    assert index.ids().dtype == np.int64


def test_readding_a_live_id_raises() -> None:
    index = build([1, 2], ["alpha", "beta"])
    with pytest.raises(ValueError, match="already"):
        index.add([3, 2], ["gamma", "delta"])
    assert len(index) == 2 and index.search("gamma", k=5)[0].size == 0


def test_duplicate_ids_in_one_batch_and_length_mismatch_raise() -> None:
    index = KeywordIndex()
    with pytest.raises(ValueError, match="unique"):
        index.add([1, 1], ["alpha", "beta"])
    with pytest.raises(ValueError, match="texts"):
        index.add([1, 2], ["alpha"])
    assert len(index) == 0


def test_non_string_text_raises_before_adding_anything() -> None:
    index = KeywordIndex()
    texts = [f"text number {i}" for i in range(5000)] + [None]
    with pytest.raises(TypeError, match="strings"):
        index.add(range(5001), texts)  # type: ignore[arg-type]
    assert len(index) == 0


def test_delete_then_readd_same_id() -> None:
    index = build([1, 2], ["old text about whales", "something else"])
    index.delete([1])
    assert index.search("whales", k=5)[0].size == 0
    index.add([1], ["new text about dolphins"])
    assert index.search("dolphins", k=5)[0].tolist() == [1]
    assert index.search("whales", k=5)[0].size == 0
    assert index.ids().tolist() == [1, 2]


def test_delete_everything() -> None:
    index = build([1, 2], ["alpha beta", "beta gamma"])
    index.delete(np.array([1, 2]))
    assert len(index) == 0 and index.search("beta", k=5)[0].size == 0
    index.add([3], ["beta"])
    assert index.search("beta", k=5)[0].tolist() == [3]


@pytest.mark.parametrize(("seed", "merge_chunk"), [(0, 4_000_000), (1, 4_000_000), (2, 7)])
def test_incremental_equals_rebuild(
    seed: int, merge_chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random batches of adds and deletes give, bit for bit, the results of a fresh index."""
    monkeypatch.setattr(_keyword_segments, "_MERGE_CHUNK", merge_chunk)
    rng = np.random.default_rng(seed)
    index = KeywordIndex()
    live: dict[int, str] = {}
    for _ in range(40):
        if live and rng.random() < 0.4:
            doomed = rng.choice(list(live), size=rng.integers(1, 6))
            index.delete([*doomed.tolist(), 10_000])  # an unknown id is ignored
            for i in doomed.tolist():
                live.pop(i, None)
        else:
            new = rng.choice(300, size=rng.integers(1, 9), replace=False).tolist()
            new = [i for i in new if i not in live]
            texts = [CORPUS[j] for j in rng.integers(0, len(CORPUS), len(new))]
            index.add(new, texts)
            live.update(zip(new, texts, strict=True))
    order = rng.permutation(list(live))
    fresh = build(order.tolist(), [live[i] for i in order])
    assert index.ids().tolist() == sorted(live) == fresh.ids().tolist()
    for query in QUERIES:
        got, want = ranking(index, query), ranking(fresh, query)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_documents_without_terms_merge() -> None:
    index = KeywordIndex()
    for i in range(10):  # merges of segments that hold no postings at all
        index.add([i], [("the of and", "")[i % 2]])
    index.delete([0, 1])
    assert len(index) == 8 and index.search("the", k=3)[0].size == 0
    index.add([20], ["finally a word"])
    assert index.search("word", k=3)[0].tolist() == [20]


def test_many_segments_are_merged() -> None:
    index = KeywordIndex()
    for i in range(200):
        index.add([i], [CORPUS[i % len(CORPUS)]])
    assert len(index._segments) <= 3 * 4  # at most factor - 1 segments per size tier
    index.delete(range(0, 200, 2))
    assert sum(seg.n_dead for seg in index._segments) <= len(index)


# --- files -----------------------------------------------------------------------------------


def test_save_load_round_trip(corpus_index: KeywordIndex, tmp_path: Path) -> None:
    index = build(list(range(len(CORPUS))), CORPUS, k1=1.5, b=0.5)
    index.add([100, 101], ["extra text about glucose", "more about blood"])
    index.delete([3, 100])
    path = tmp_path / "keyword.idx"
    index.save(path)
    loaded = KeywordIndex.load(path)
    assert loaded.analyzer == index.analyzer and (loaded.k1, loaded.b) == (1.5, 0.5)
    assert len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for query in QUERIES:
        np.testing.assert_array_equal(ranking(loaded, query)[0], ranking(index, query)[0])
        np.testing.assert_array_equal(ranking(loaded, query)[1], ranking(index, query)[1])
    loaded.delete([101])  # a loaded index stays writable
    loaded.add([3], ["insulin again"])
    assert loaded.search("insulin", k=1)[0].tolist() == [3]
    assert [p.name for p in tmp_path.iterdir()] == ["keyword.idx"]  # no temp file left over


def test_save_load_empty_index(tmp_path: Path) -> None:
    KeywordIndex(Analyzer(stem=False)).save(tmp_path / "empty.idx")
    loaded = KeywordIndex.load(tmp_path / "empty.idx")
    assert len(loaded) == 0 and loaded.analyzer == Analyzer(stem=False)
    assert loaded.search("anything", k=3)[0].size == 0


def test_save_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "keyword.idx"
    build([1], ["first"]).save(path)
    build([2], ["second"]).save(path)
    assert KeywordIndex.load(path).ids().tolist() == [2]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:10], "not an askdocs"),
        (lambda data: b"hello world" * 10, "not an askdocs"),
        (
            lambda data: data[:-200] + bytes(b ^ 0xFF for b in data[-200:-199]) + data[-199:],
            "corrupt",
        ),
        (lambda data: data[:16] + (99).to_bytes(4, "little") + data[20:], "version 99"),
        (lambda data: data[:40] + b"#" + data[41:], "header"),
    ],
)
def test_corrupt_file_raises_value_error(
    tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "keyword.idx"
    build(list(range(len(CORPUS))), CORPUS).save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message):
        KeywordIndex.load(path)


def test_docstring_examples() -> None:
    for module in (keyword, _keyword_segments):
        assert doctest.testmod(module).failed == 0


def zipf_texts(n: int, seed: int) -> list[str]:
    """Documents over a Zipfian vocabulary: a few very common words, a long tail of rare ones."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 2001) ** 1.1
    words = rng.choice(2000, size=(n, 40), p=weights / weights.sum())
    return [" ".join(f"w{w}" for w in doc[: rng.integers(5, 41)]) for doc in words]


def test_pruned_search_equals_exhaustive(monkeypatch: pytest.MonkeyPatch) -> None:
    """MaxScore pruning must return exactly what scoring every posting returns."""
    index = KeywordIndex()
    texts = zipf_texts(3000, seed=0)
    for start in range(0, 3000, 700):
        index.add(range(start, min(start + 700, 3000)), texts[start : start + 700])
    index.delete(range(0, 3000, 7))
    rng = np.random.default_rng(1)
    pruned_answers = 0
    real_pruned = _keyword_segments._pruned

    def counting_pruned(*args: object) -> object:
        nonlocal pruned_answers
        hits = real_pruned(*args)
        pruned_answers += hits is not None
        return hits

    monkeypatch.setattr(_keyword_segments, "_pruned", counting_pruned)
    for _ in range(60):
        tokens = [f"w{w}" for w in rng.zipf(1.3, size=rng.integers(2, 7)) if w < 2000]
        k = int(rng.choice([1, 10, 50]))
        allowed = np.sort(rng.choice(3000, 2000, replace=False)) if rng.random() < 0.3 else None
        monkeypatch.setattr(_keyword_segments, "PRUNE_MIN_POSTINGS", 10**12)
        want = index.search_tokens(tokens, k, allowed=allowed)
        monkeypatch.setattr(_keyword_segments, "PRUNE_MIN_POSTINGS", 0)
        got = index.search_tokens(tokens, k, allowed=allowed)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert pruned_answers >= 10  # the pruned path did answer, not only fall back
