from __future__ import annotations

import doctest
import json
import math
import random
from pathlib import Path

import pytest

from askdocs import evaluate
from askdocs.errors import ConfigError, NotFound
from askdocs.evaluate import (
    DEFAULT_METRICS,
    average_precision_at,
    evaluate_run,
    latency_summary,
    load_beir,
    ndcg_at,
    paired_randomization_test,
    per_query,
    recall_at,
    reciprocal_rank_at,
    without_self_hits,
)

SCIFACT = Path("/work/shared/data/scifact")
L2, L3, L4 = math.log2(3), math.log2(4), math.log2(5)  # discounts at ranks 2, 3, 4

# --- hand-computed metrics -------------------------------------------------------------------

GRADED = {"a": 3, "b": 0, "c": 1, "d": 2, "z": 1}  # "b" judged not relevant; "z" never retrieved
RANKED = ["a", "b", "x", "c", "d"]


def test_ndcg_graded_linear_gain() -> None:
    # DCG@10 = 3/log2(2) + 0 + 0 + 1/log2(5) + 2/log2(6)
    # ideal grades 3, 2, 1, 1 -> 3/log2(2) + 2/log2(3) + 1/log2(4) + 1/log2(5)
    dcg = 3 + 1 / L4 + 2 / math.log2(6)
    idcg = 3 + 2 / L2 + 1 / L3 + 1 / L4
    assert ndcg_at(RANKED, GRADED, 10) == pytest.approx(dcg / idcg)


def test_ndcg_cuts_the_ideal_list_at_k() -> None:
    # @2: DCG = 3 + 0; ideal = 3 + 2/log2(3) (the two best grades only)
    assert ndcg_at(RANKED, GRADED, 2) == pytest.approx(3 / (3 + 2 / L2))


def test_average_precision_divides_by_all_relevant() -> None:
    # relevant hits at ranks 1, 4, 5 -> precisions 1/1, 2/4, 3/5; 4 relevant judged (a, c, d, z)
    assert average_precision_at(RANKED, GRADED, 100) == pytest.approx((1 + 2 / 4 + 3 / 5) / 4)
    # @4 keeps ranks 1 and 4 only
    assert average_precision_at(RANKED, GRADED, 4) == pytest.approx((1 + 2 / 4) / 4)


def test_reciprocal_rank_skips_grade_zero_and_respects_k() -> None:
    assert reciprocal_rank_at(["b", "x", "c"], GRADED, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at(["b", "x", "c"], GRADED, 2) == 0.0


def test_recall_counts_relevant_in_top_k() -> None:
    # top 4 holds a and c out of the 4 relevant
    assert recall_at(RANKED, GRADED, 4) == pytest.approx(2 / 4)
    assert recall_at(RANKED, GRADED, 100) == pytest.approx(3 / 4)


@pytest.mark.parametrize("metric", evaluate.METRICS.values())
def test_metrics_are_zero_without_relevant_docs(metric: evaluate.Metric) -> None:
    assert metric(["a", "b"], {}, 10) == 0.0
    assert metric(["a", "b"], {"a": 0, "b": 0}, 10) == 0.0
    assert metric([], {"a": 1}, 10) == 0.0


@pytest.mark.parametrize("metric", evaluate.METRICS.values())
def test_duplicates_keep_their_first_rank(metric: evaluate.Metric) -> None:
    relevant = {"a": 2, "c": 1}
    # a repeated "a" must neither score twice nor push "c" out of the top 3
    assert metric(["a", "a", "b", "c"], relevant, 3) == metric(["a", "b", "c"], relevant, 3)


def test_perfect_ranking_scores_one() -> None:
    relevant = {"a": 2, "b": 1}
    for metric in evaluate.METRICS.values():
        assert metric(["a", "b", "x"], relevant, 10) == pytest.approx(1.0)


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at(["a"], {"a": 1}, 0)


# --- whole runs ------------------------------------------------------------------------------


def test_evaluate_run_averages_over_all_judged_queries() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": ["a"], "q2": ["x", "b"], "extra": ["a"]}  # q3 unanswered, "extra" unjudged
    scores = evaluate_run(run, qrels)
    assert list(scores) == list(DEFAULT_METRICS)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert scores["recall@10"] == pytest.approx(2 / 3)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / L2) / 3)


def test_evaluate_run_takes_any_cutoff_and_rejects_unknown_metrics() -> None:
    qrels = {"q1": {"a": 1}}
    assert evaluate_run({"q1": ["x", "a"]}, qrels, metrics=["recall@1", "ndcg@2"]) == {
        "recall@1": 0.0,
        "ndcg@2": pytest.approx(1 / L2),
    }
    for bad in ["precision@10", "ndcg", "ndcg@0", "ndcg@ten"]:
        with pytest.raises(ConfigError, match="unknown metric"):
            evaluate_run({}, qrels, metrics=[bad])
    with pytest.raises(ValueError, match="empty"):
        evaluate_run({}, {})


def test_per_query_matches_the_mean() -> None:
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 1}}
    run = {"q1": ["b", "x", "a"], "q2": ["c"]}
    rows = per_query(run, qrels)
    assert set(rows) == {"q1", "q2"}
    means = evaluate_run(run, qrels)
    for name in DEFAULT_METRICS:
        assert means[name] == pytest.approx((rows["q1"][name] + rows["q2"][name]) / 2)


def test_without_self_hits() -> None:
    run = {"q1": ["q1", "d1", "q2"], "q2": ["d1"]}
    assert without_self_hits(run) == {"q1": ["d1", "q2"], "q2": ["d1"]}
    qrels = {"q1": {"d1": 1}}
    assert evaluate_run(run, qrels)["mrr@10"] == 0.5
    assert evaluate_run(without_self_hits(run), qrels)["mrr@10"] == 1.0


# --- agreement with trec_eval ----------------------------------------------------------------


def _random_collection(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """50 graded queries over 100 docs; some runs short, one query unanswered, one all-zero."""
    rnd = random.Random(seed)
    docs = [f"d{i}" for i in range(100)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for q in range(50):
        qid = f"q{q}"
        judged = rnd.sample(docs, rnd.randint(1, 30))
        qrels[qid] = {d: rnd.choice([0, 0, 1, 1, 2, 3]) for d in judged}
        run[qid] = rnd.sample(docs, rnd.choice([5, 20, 100]))
    qrels["q0"] = dict.fromkeys(qrels["q0"], 0)
    del run["q1"]
    return run, qrels


def _trec_scores(run: dict[str, list[str]], qrels: dict, measure: str) -> dict[str, float]:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    # strictly decreasing scores, so trec_eval's tie-breaking never reorders the list
    as_scores = {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in run.items()}
    result = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(as_scores)
    key = measure.replace(".", "_")
    return {qid: result.get(qid, {}).get(key, 0.0) for qid in qrels}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_trec_eval(seed: int) -> None:
    run, qrels = _random_collection(seed)
    # trec's recip_rank has no cut-off, so MRR@10 is recip_rank on the run cut at 10
    top10 = {q: ds[:10] for q, ds in run.items()}
    expected = {
        "ndcg@10": _trec_scores(run, qrels, "ndcg_cut.10"),
        "map@100": _trec_scores(run, qrels, "map_cut.100"),
        "mrr@10": _trec_scores(top10, qrels, "recip_rank"),
        "recall@10": _trec_scores(run, qrels, "recall.10"),
        "recall@100": _trec_scores(run, qrels, "recall.100"),
    }
    ours = per_query(run, qrels)
    means = evaluate_run(run, qrels)
    for name, by_query in expected.items():
        for qid, value in by_query.items():
            assert ours[qid][name] == pytest.approx(value, abs=1e-6), (name, qid)
        assert means[name] == pytest.approx(sum(by_query.values()) / len(qrels), abs=1e-6)
    assert means["ndcg@10"] > 0  # the comparison is not vacuous


# --- loading BEIR ----------------------------------------------------------------------------


def _write_beir(root: Path, qrels_lines: list[str] | None = None) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "First", "text": "one", "metadata": {}},
        {"_id": "d2", "text": "two"},  # no title
        {"_id": 3, "title": None, "text": "three"},  # numeric id, null title
    ]
    queries = [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n\n")
    if qrels_lines is None:
        qrels_lines = ["query-id\tcorpus-id\tscore", "q1\td1\t2", "q1\td2\t0", "q1\t3\t1"]
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels_lines) + "\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td2\t1\n")
    return root


def test_load_beir(tmp_path: Path) -> None:
    data = load_beir(_write_beir(tmp_path))
    assert data.corpus == {"d1": ("First", "one"), "d2": ("", "two"), "3": ("", "three")}
    assert data.queries == {"q1": "first?"}  # q2 is judged in train only
    assert data.qrels == {"q1": {"d1": 2, "d2": 0, "3": 1}}  # grade 0 kept as given
    assert load_beir(tmp_path, "train").queries == {"q2": "second?"}


def test_load_beir_missing_files(tmp_path: Path) -> None:
    root = _write_beir(tmp_path)
    with pytest.raises(NotFound, match=r"dev\.tsv.*\['test', 'train'\]"):
        load_beir(root, "dev")
    (root / "corpus.jsonl").unlink()
    with pytest.raises(NotFound, match=r"corpus\.jsonl"):
        load_beir(root)


def test_load_beir_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    root = _write_beir(tmp_path)
    with (root / "corpus.jsonl").open("a") as handle:
        handle.write('{"_id": "d4", "text": "four"\n')  # line 4, unterminated object
    with pytest.raises(ConfigError, match=r"corpus\.jsonl:4: not valid JSON"):
        load_beir(root)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["q1\td1\t1"], r"test\.tsv:1: expected the header"),
        (["query-id\tcorpus-id\tscore", "q1\td1"], r"test\.tsv:2: expected 'query-id"),
        (["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\thigh"], r"test\.tsv:3: score 'high'"),
        (["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td1\t2"], r"test\.tsv:3: .* judged twice"),
        (["query-id\tcorpus-id\tscore", "q9\td1\t1"], r"test\.tsv:2: query id 'q9' is not in"),
        (["query-id\tcorpus-id\tscore"], r"test\.tsv: no judgments"),
    ],
)
def test_load_beir_malformed_qrels(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_beir(_write_beir(tmp_path, lines))


def test_load_beir_rejects_duplicate_ids(tmp_path: Path) -> None:
    root = _write_beir(tmp_path)
    with (root / "corpus.jsonl").open("a") as handle:
        handle.write('{"_id": "d1", "text": "again"}\n')
    with pytest.raises(ConfigError, match=r"corpus\.jsonl:4: duplicate id 'd1' \(first on line 1"):
        load_beir(root)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="SciFact data not available")
def test_load_scifact() -> None:
    data = load_beir(SCIFACT)
    assert len(data.queries) == 300
    assert len(data.corpus) == 5183
    assert sum(len(judged) for judged in data.qrels.values()) == 339
    assert len(load_beir(SCIFACT, "train").queries) == 809


# --- significance and latency ----------------------------------------------------------------


def test_randomization_test_identical_lists() -> None:
    scores = [random.Random(3).random() for _ in range(40)]
    assert paired_randomization_test(scores, list(scores)) == 1.0


def test_randomization_test_detects_a_clear_improvement() -> None:
    rnd = random.Random(4)
    base = [rnd.random() * 0.8 for _ in range(50)]
    better = [s + 0.1 + rnd.uniform(-0.05, 0.05) for s in base]
    p = paired_randomization_test(better, base, n_resamples=2000)
    assert p < 0.01
    assert p == paired_randomization_test(base, better, n_resamples=2000)  # seeded, two-sided


def test_randomization_test_matches_the_exact_sign_test() -> None:
    # Differences of +-0.1 make the randomization test a sign test: with 20 "+" and 30 "-",
    # p = P(|2j - 50| >= 10) for j ~ Binomial(50, 1/2), about 0.2026.
    a = [0.5] * 50
    b = [0.4] * 20 + [0.6] * 30
    exact = sum(math.comb(50, j) for j in range(51) if abs(2 * j - 50) >= 10) / 2**50
    assert paired_randomization_test(a, b) == pytest.approx(exact, abs=0.015)


def test_randomization_test_validates_input() -> None:
    with pytest.raises(ValueError):
        paired_randomization_test([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        paired_randomization_test([], [])


def test_latency_summary() -> None:
    # ms: 10..100; p50 = 55 (midway between 50 and 60); p95 at position 8.55 -> 90 + 0.55 * 10
    summary = latency_summary([i / 100 for i in range(1, 11)])
    assert summary == pytest.approx({"p50_ms": 55.0, "p95_ms": 95.5, "mean_ms": 55.0})
    with pytest.raises(ValueError):
        latency_summary([])


def test_docstring_examples() -> None:
    result = doctest.testmod(evaluate, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 9
    assert result.failed == 0
