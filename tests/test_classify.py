"""Classification with the real MiniLM embedder, real scikit-learn and the small packaged LLM.

The data is a few dozen sentences on two and three themes written here; the metrics are
checked against scikit-learn's own.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score

from askdocs.classify import Supervised, classify, report, vectors_of, zero_shot
from askdocs.classify.inputs import parse_labels, read_rows
from askdocs.classify.llm import grammar
from askdocs.cli import main
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.kb import KnowledgeBase
from askdocs.types import Item

SPORT = [
    "The striker scored twice in the second half of the match",
    "Our team won the championship after a penalty shootout",
    "The tennis final went to five sets under the floodlights",
    "She ran the marathon in under three hours",
    "The goalkeeper saved a penalty in the last minute",
    "The cyclists climbed the mountain stage of the race",
    "He swam the relay for the national team at the games",
    "The coach picked a new captain for the football season",
    "The boxer won the title fight on points",
    "Fans filled the stadium for the derby",
    "The basketball player made the winning three-pointer",
    "The rugby side trained hard before the cup final",
]
COOKING = [
    "Simmer the onions in butter until they are soft and golden",
    "Knead the bread dough for ten minutes and let it rise",
    "Season the soup with salt, pepper and fresh thyme",
    "Bake the cake at 180 degrees for forty minutes",
    "Whisk the eggs with sugar until pale and thick",
    "Roast the chicken with garlic, lemon and rosemary",
    "Chop the carrots and add them to the stew",
    "Fry the mushrooms in olive oil over a high heat",
    "Stir the risotto and add the stock a ladle at a time",
    "Marinate the fish in lime juice and chilli",
    "Grate the cheese over the pasta before serving",
    "Blend the tomatoes into a smooth sauce with basil",
]
LABELS = ["sport", "cooking"]


def labelled() -> list[tuple[str, str]]:
    return [(t, "sport") for t in SPORT] + [(t, "cooking") for t in COOKING]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- metrics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c"]
    gold = list(rng.choice(names, 60))
    predicted = [g if rng.random() < 0.6 else str(rng.choice(names)) for g in gold]
    found = report(gold, predicted, names)
    assert found.accuracy == pytest.approx(accuracy_score(gold, predicted), abs=1e-4)
    assert found.macro_f1 == pytest.approx(f1_score(gold, predicted, average="macro"), abs=1e-4)
    expected = precision_score(gold, predicted, average=None, labels=names, zero_division=0)
    assert [c.precision for c in found.classes] == pytest.approx(list(expected), abs=1e-4)
    assert found.confusion == confusion_matrix(gold, predicted, labels=names).tolist()


def test_report_counts_none_as_wrong_in_its_own_column() -> None:
    found = report(["a", "b", "b"], ["a", None, "b"], ["a", "b"])
    assert found.accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert found.none == 1
    assert found.confusion == [[1, 0, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="not in the label set"):
        report(["a"], ["z"], ["a", "b"])


# -- the three methods -------------------------------------------------------------------------


def test_zero_shot_finds_themes_with_calibrated_scores(embedder: MiniLMEmbedder) -> None:
    rows = labelled()
    items = [Item(str(i), t) for i, (t, _) in enumerate(rows)]
    found = classify(items, method="zero-shot", labels=LABELS, embedder=embedder)
    accuracy = report([g for _, g in rows], [p.label for p in found], LABELS).accuracy
    assert accuracy >= 0.9
    for p in found:
        assert p.label is not None and p.score == max(p.scores.values())
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-3)
    cut = float(np.median([p.score for p in found]))
    strict = classify(items, method="zero-shot", labels=LABELS, embedder=embedder, min_score=cut)
    for loose, held in zip(found, strict, strict=True):  # under the cut: "none of these"
        assert held.label == (loose.label if loose.score >= cut else None)
    assert any(p.label is None for p in strict)


def test_zero_shot_uses_stored_vectors_without_embedding(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(SPORT[:2])
    items = [Item("a", "(not embedded)", vector=vectors[0]), Item("b", "(no)", vector=vectors[1])]
    assert np.array_equal(vectors_of(items, embedder), vectors)
    found = zero_shot(["a", "b"], vectors, LABELS, embedder)
    assert [p.label for p in found] == ["sport", "sport"]


def test_supervised_learns_cross_validates_saves_and_loads(
    embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    rows = labelled()
    vectors = vectors_of([Item(str(i), t) for i, (t, _) in enumerate(rows)], embedder)
    model = Supervised.fit(vectors, [g for _, g in rows], embedder_id=embedder.id)
    assert model.cross_validation is not None  # 12 per class: few, so cross-validated
    assert model.cross_validation.accuracy >= 0.9
    new = ["The sprinter broke the world record", "Slice the potatoes thinly and fry them"]
    items = [Item(str(i), t) for i, t in enumerate(new)]
    first = classify(items, method="supervised", model=model, embedder=embedder)
    assert [p.label for p in first] == ["sport", "cooking"]
    model.save(tmp_path / "clf.json")
    loaded = Supervised.load(tmp_path / "clf.json")
    again = classify(items, method="supervised", model=loaded, embedder=embedder)
    assert again == first
    saved = json.loads((tmp_path / "clf.json").read_text())
    assert saved["format"] == "askdocs-classifier" and saved["embedder"] == embedder.id
    with pytest.raises(ConfigError, match="trained on vectors of"):
        loaded.predict(["x"], vectors[:1], embedder_id="another-model")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json at all", "cannot load a classifier"),
        ('{"format": "something-else"}', "not an askdocs classifier"),
        ('{"format": "askdocs-classifier", "version": 99}', "format version 99"),
        (
            '{"format": "askdocs-classifier", "version": 1, "embedder": "e", '
            '"classes": ["a", "b"], "coef": [[1, 2], [3, 4]], "intercept": [0]}',
            "do not match",
        ),
    ],
)
def test_a_bad_classifier_file_is_refused_by_name(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as caught:
        Supervised.load(path)
    assert str(path) in str(caught.value)


def test_one_class_of_examples_is_an_error(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(ConfigError, match="one class only"):
        classify([Item("0", "x")], method="supervised", examples=[("a", "sport")] * 3,
                 embedder=embedder)  # fmt: skip


def test_grammar_quotes_labels() -> None:
    assert grammar(["yes", 'a "b"\\c']) == 'root ::= "yes" | "a \\"b\\"\\\\c"'


# -- inputs ----------------------------------------------------------------------------------


def test_inputs_name_the_file_and_the_problem(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "a.csv", [("hello", "x")], ("body", "label"))
    assert read_rows(good, text_column="body", gold_column="label")[0].gold == "x"
    with pytest.raises(ConfigError, match=r"a\.csv: no column 'text'; the columns are body"):
        read_rows(good, text_column="text")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty\.csv: no rows"):
        read_rows(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.csv: not UTF-8"):
        read_rows(latin)
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"text": "a", "y": "b"}\n[1]\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl: line 2 is not a JSON object"):
        read_rows(lines)
    with pytest.raises(ConfigError, match=r"give a \.csv"):
        read_rows(tmp_path / "notes.xlsx")


def test_labels_from_a_string_or_a_file(tmp_path: Path) -> None:
    assert parse_labels('sport, "food, drink"') == (
        ["sport", "food, drink"],
        ["sport", "food, drink"],
    )
    path = tmp_path / "labels.txt"
    path.write_text("# labels\npos: a positive review\nneg\n")
    assert parse_labels(None, path) == (["pos", "neg"], ["a positive review", "neg"])


# -- the command -----------------------------------------------------------------------------


def test_cli_supervised_with_gold_prints_metrics_json(tmp_path: Path) -> None:
    rows = labelled()
    train = write_csv(tmp_path / "train.csv", rows[::2] + rows[1::4], ("text", "label"))
    test = write_csv(tmp_path / "test.csv", rows[1::2], ("sentence", "gold"))
    result = CliRunner().invoke(main, [
        "classify", str(test), "--text-column", "sentence", "--method", "supervised",
        "--train", str(train), "--label-column", "label", "--gold-column", "gold", "--json",
        "--save", str(tmp_path / "clf.json"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["metrics"]["accuracy"] >= 0.9
    assert 0 <= body["metrics"]["macro_f1"] <= 1
    assert len(body["predictions"]) == len(rows[1::2])
    assert (tmp_path / "clf.json").is_file()


def test_cli_zero_shot_writes_csv_rows(tmp_path: Path) -> None:
    test = write_csv(tmp_path / "t.csv", [(SPORT[0], "x"), (COOKING[0], "y")], ("text", "id"))
    result = CliRunner().invoke(
        main, ["classify", str(test), "--method", "zero-shot", "--labels", "sport,cooking"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(result.stdout.splitlines()))
    assert rows[0] == ["id", "label", "score"]
    assert [r[1] for r in rows[1:]] == ["sport", "cooking"]


def test_cli_from_store_writes_labels_as_tags(docs_kb: KnowledgeBase, tmp_path: Path) -> None:
    store = str(docs_kb.settings.store)
    docs_kb.close()
    result = CliRunner().invoke(main, [
        "classify", "--from-store", "--store", store, "--method", "zero-shot",
        "--labels", "food and drink,the sea and the coast", "--write-tag", "subject", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["tagged"] == len(body["predictions"]) == 6
    with KnowledgeBase.open(docs_kb.settings) as kb:
        tags = kb.tags("subject")
    by_name = {Path(p).name: v for p, v in tags.items()}
    assert by_name["espresso.txt"] == "food and drink"
    assert by_name["tides.pdf"] == "the sea and the coast"


def test_cli_usage_errors(tmp_path: Path) -> None:
    run = CliRunner().invoke
    assert "give INPUT, or --from-store" in run(main, ["classify", "--method", "llm"]).output
    test = write_csv(tmp_path / "t.csv", [("a", "b")], ("text", "x"))
    out = run(main, ["classify", str(test), "--method", "zero-shot", "--write-tag", "k"]).output
    assert "--write-tag needs --from-store" in out
    out = run(main, ["classify", str(test), "--method", "zero-shot", "--labels", "one"]).output
    assert "two labels or more" in out


def test_cli_llm_answers_only_with_labels(askdocs_exe: str, tmp_path: Path) -> None:
    """The small packaged model, in its own process: what it says is held to the labels."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in SPORT[:3] + COOKING[:3]))
    train = write_csv(
        tmp_path / "train.csv", labelled()[3:5] + labelled()[15:17], ("text", "label")
    )
    done = subprocess.run(
        [askdocs_exe, "classify", str(texts), "--method", "llm", "--labels", "sport,cooking",
         "--train", str(train), "--llm", "smollm2-135m", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    predictions = json.loads(done.stdout)["predictions"]
    assert len(predictions) == 6
    assert {p["label"] for p in predictions} <= {"sport", "cooking"}
