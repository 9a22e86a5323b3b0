"""`askdocs eval retrieval` end to end on a tiny BEIR collection, with the real packaged model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from askdocs import config
from askdocs.cli import main
from askdocs.errors import ConfigError
from askdocs.evaluate import (
    DEFAULT_METRICS,
    EVAL_MODES,
    default_store,
    eval_settings,
    evaluate_retrieval,
    format_evaluation,
)
from askdocs.kb import KnowledgeBase

TOPICS = [
    (
        "Espresso extraction",
        "Espresso is brewed by forcing hot water through finely ground coffee.",
    ),
    ("Descaling kettles", "Limescale builds up in kettles; vinegar or citric acid dissolves it."),
    ("Sourdough starters", "A sourdough starter is a culture of wild yeast and lactobacilli."),
    ("Tomato blight", "Late blight is a fungal-like disease that rots tomato leaves and fruit."),
    ("Bicycle chains", "A bicycle chain wears and stretches; replace it before it ruins gears."),
    ("Solar panels", "Photovoltaic panels turn sunlight into electricity with silicon cells."),
    ("Heat pumps", "A heat pump moves heat from outside air into a house using a compressor."),
    ("Bee colonies", "Honey bee colonies have one queen, thousands of workers and drones."),
    ("Glacier retreat", "Mountain glaciers are shrinking as summers grow warmer."),
    ("Vaccines", "Vaccines train the immune system to recognise a pathogen without illness."),
    ("Sleep and memory", "Deep sleep consolidates memories formed during the day."),
    ("Insulin", "Insulin lets cells take up glucose; diabetes disturbs this regulation."),
    ("Rust prevention", "Iron rusts when exposed to water and oxygen; paint keeps them away."),
    ("Chess openings", "The Sicilian Defence answers 1.e4 with the move c5."),
    ("Volcano types", "Shield volcanoes erupt runny basalt lava in gentle flows."),
    ("Tea oxidation", "Black tea leaves are fully oxidised, green tea leaves are not."),
    ("Compost heaps", "Compost heaps need nitrogen-rich greens and carbon-rich browns."),
    ("Antibiotic resistance", "Overuse of antibiotics selects for resistant bacteria."),
]
QUERIES = {
    "q1": ("how do I remove limescale from a kettle", ["d1"]),
    "q2": ("wild yeast culture for baking bread", ["d2"]),
    "q3": ("why do bacteria become resistant to antibiotics", ["d17"]),
    "q4": ("photovoltaic silicon cells electricity", ["d5"]),
    "q5": ("the queen of a honey bee colony", ["d7", "dup"]),  # "dup" repeats d7's content
}


def _write_collection(root: Path) -> Path:
    root.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": t, "text": x} for i, (t, x) in enumerate(TOPICS)]
    docs.append({**docs[7], "_id": "dup"})  # identical content under a second id
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
    (root / "queries.jsonl").write_text(queries)
    (root / "qrels").mkdir()
    qrels = [f"{q}\t{d}\t1" for q, (_, rel) in QUERIES.items() for d in rel]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels))
    return root


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_collection(tmp_path_factory.mktemp("beir") / "tiny")


@pytest.fixture(scope="module")
def first_run(collection: Path) -> tuple[Result, Path]:
    store = collection.parent / "store"
    result = CliRunner().invoke(
        main, ["eval", "retrieval", str(collection), "--store", str(store), "--json"]
    )
    return result, store


def test_json_has_every_metric_for_every_mode(first_run: tuple[Result, Path]) -> None:
    result, _ = first_run
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["collection"], data["split"], data["queries"], data["documents"]) == (
        "tiny",
        "test",
        5,
        len(TOPICS) + 1,
    )
    assert [r["mode"] for r in data["results"]] == list(EVAL_MODES)
    for mode in data["results"]:
        assert set(mode["metrics"]) == set(DEFAULT_METRICS)
        assert all(0.0 <= v <= 1.0 for v in mode["metrics"].values())
        assert 0 < mode["latency"]["p50_ms"] <= mode["latency"]["p95_ms"]
        assert set(mode["per_query"]) == set(QUERIES)
        # The collection is small and the queries unambiguous: every mode finds them.
        assert mode["metrics"]["recall@10"] == 1.0
        assert mode["metrics"]["ndcg@10"] > 0.8


def test_first_run_embeds_the_corpus(first_run: tuple[Result, Path]) -> None:
    ingest = json.loads(first_run[0].output)["ingest"]
    # "dup" is stored once and linked, so it adds a document but no chunks.
    assert (ingest["added"], ingest["unchanged"], ingest["failed"]) == (len(TOPICS) + 1, 0, [])
    assert ingest["embedded"] == ingest["chunks"] > 0


def test_second_run_reuses_the_store(collection: Path, first_run: tuple[Result, Path]) -> None:
    _, store = first_run
    result = CliRunner().invoke(
        main, ["eval", "retrieval", str(collection), "--store", str(store), "--modes", "keyword"]
    )
    assert result.exit_code == 0, result.output
    assert f"unchanged {len(TOPICS) + 1}" in result.output
    assert "(0 embedded)" in result.output
    table = result.output.splitlines()
    assert any(line.startswith("keyword ") for line in table)
    assert not any(line.startswith("dense ") for line in table)


def test_library_reports_modes_in_the_order_asked(collection: Path, tmp_path: Path) -> None:
    settings = config.load({"store": str(tmp_path / "kb")})
    with KnowledgeBase.open(settings) as kb:
        evaluation = evaluate_retrieval(kb, collection, modes=["hybrid-convex", "dense"])
        text = format_evaluation(evaluation)
        with pytest.raises(ConfigError, match="unknown mode"):
            evaluate_retrieval(kb, collection, modes=["bm42"])
    assert [r.mode for r in evaluation.results] == ["hybrid-convex", "dense"]
    assert "ndcg@10" in text and "hybrid-convex" in text


def test_unknown_mode_and_missing_split_are_clean_errors(collection: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "kb")
    bad_mode = runner.invoke(main, ["eval", "retrieval", str(collection), "--modes", "bm42"])
    assert bad_mode.exit_code == 2 and "choose from" in bad_mode.output
    args = ["eval", "retrieval", str(collection), "--split", "dev", "--store", store]
    no_split = runner.invoke(main, args)
    assert no_split.exit_code == 1 and "splits found here: ['test']" in no_split.output


def test_default_store_is_named_after_the_directory(tmp_path: Path) -> None:
    assert default_store(tmp_path / "scifact") == config.named_store("eval-scifact")
    int8 = config.named_store("eval-scifact-int8")  # the int8 encoder's vectors live apart
    assert default_store(tmp_path / "scifact", int8=True) == int8


def test_eval_settings_pick_the_store_for_the_configured_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKDOCS_EMBEDDING__INT8", "true")
    assert eval_settings(tmp_path / "scifact").store == config.named_store("eval-scifact-int8")
    assert eval_settings(tmp_path / "scifact", str(tmp_path / "kb")).store == tmp_path / "kb"
    monkeypatch.setenv("ASKDOCS_EMBEDDING__INT8", "false")
    assert eval_settings(tmp_path / "scifact").store == config.named_store("eval-scifact")
