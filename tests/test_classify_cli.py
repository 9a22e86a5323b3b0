"""`askdocs classify` end to end: files, stdin, the store, a saved classifier, the LLM."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from askdocs.cli import main
from askdocs.kb import KnowledgeBase
from askdocs.store import Filters
from tests.conftest import DOCS_STORE_SETTINGS, MakeSettings

THEMES = Path(__file__).parent / "data" / "classify_themes.csv"


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    """Two thirds of the themes to train on (column text), a third to test (sentence, gold)."""
    with THEMES.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train, test = tmp_path / "train.csv", tmp_path / "test.jsonl"
    with train.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((r["text"], r["label"]) for i, r in enumerate(rows) if i % 3)
    test.write_text(
        "".join(
            json.dumps({"sentence": r["text"], "gold": r["label"]}) + "\n"
            for i, r in enumerate(rows)
            if not i % 3
        )
    )
    return train, test


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["classify", *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_supervised_with_gold_saves_and_the_saved_model_loads(
    split: tuple[Path, Path], tmp_path: Path
) -> None:
    train, test = split
    saved = tmp_path / "clf.json"
    code, out, err = run(
        str(test),
        "--text-column",
        "sentence",
        "--method",
        "supervised",
        "--train",
        str(train),
        "--label-column",
        "label",
        "--gold-column",
        "gold",
        "--json",
        "--save",
        str(saved),
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["metrics"]["accuracy"] >= 0.9 and body["metrics"]["macro_f1"] >= 0.9
    assert body["metrics"]["texts"] == len(body["predictions"]) == 12
    assert body["cross_validation"]["accuracy"] >= 0.8  # 8 per class: cross-validated
    again = run(
        str(test),
        "--text-column",
        "sentence",
        "--method",
        "supervised",
        "--model",
        str(saved),
        "--gold-column",
        "gold",
        "--json",
    )
    assert again[0] == 0, again[2]
    assert json.loads(again[1])["predictions"] == body["predictions"]


def test_csv_rows_and_the_report_on_stderr(split: tuple[Path, Path]) -> None:
    _, test = split
    code, out, err = run(
        str(test),
        "--text-column",
        "sentence",
        "--method",
        "zero-shot",
        "--labels",
        "sport,cooking,weather",
        "--gold-column",
        "gold",
        "--progress",
    )
    assert code == 0, err
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["id", "label", "score"] and len(rows) == 13
    assert {r[1] for r in rows[1:]} == {"sport", "cooking", "weather"}
    assert all(0 < float(r[2]) <= 1 for r in rows[1:])
    assert "against the gold labels: accuracy" in err
    assert "confusion (rows: gold, columns: predicted sport, cooking, weather)" in err


def test_stdin_lines_labels_file_and_output_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("sport: a sports match\nfood: a recipe for a dish\n")
    output = tmp_path / "out.json"
    code, out, err = run(
        "-",
        "--method",
        "zero-shot",
        "--labels-file",
        str(labels),
        "--json",
        "--output",
        str(output),
        input="The goalie saved it\n\nBake the pie\n",
    )
    assert code == 0, err
    assert out == ""
    found = json.loads(output.read_text())["predictions"]
    assert [(p["id"], p["label"]) for p in found] == [("1", "sport"), ("3", "food")]


def test_from_store_writes_labels_as_tags_that_filter_searches(
    docs_store: Path, tmp_path: Path, make_settings: MakeSettings
) -> None:
    store = str(shutil.copytree(docs_store, tmp_path / "store"))  # the session's stays as it is
    settings = make_settings(Path(store), DOCS_STORE_SETTINGS)
    code, out, err = run(
        "--from-store",
        "--store",
        store,
        "--method",
        "zero-shot",
        "--labels",
        "food and drink,the sea and the coast",
        "--write-tag",
        "subject",
        "--json",
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["tagged"] == len(body["predictions"]) == 6
    with KnowledgeBase.open(settings) as kb:
        tags = {Path(p).name: v for p, v in kb.tags("subject").items()}
        assert tags["espresso.txt"] == "food and drink"
        assert tags["tides.pdf"] == "the sea and the coast"
        hits = kb.search("water", filters=Filters(tags=(("subject", "the sea and the coast"),)))
        assert hits and {tags[Path(h.path).name] for h in hits} == {"the sea and the coast"}
    only = run(
        "--from-store",
        "--store",
        store,
        "--method",
        "zero-shot",
        "--labels",
        "a,b",
        "--tag",
        "subject=food and drink",
        "--json",
    )
    assert only[0] == 0, only[2]
    ids = [Path(p["id"]).name for p in json.loads(only[1])["predictions"]]
    assert sorted(ids) == sorted(n for n, v in tags.items() if v == "food and drink")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--method", "llm"], "give INPUT, or --from-store"),
        (["T", "--method", "zero-shot", "--write-tag", "k"], "--write-tag needs --from-store"),
        (["T", "--method", "zero-shot", "--labels", "one"], "two labels or more"),
        (["T", "--method", "supervised"], "supervised needs --train or --model"),
        (
            ["T", "--method", "zero-shot", "--labels", "a,b", "--text-column", "body"],
            "no column 'body'; the columns are text, x",
        ),
        (["T", "--method", "zero-shot", "--labels", "a,b", "--gold-column", "x"], "no gold labels"),
        (["T", "--method", "supervised", "--train", "T", "--label-column", "x"], "holds no labels"),
    ],
)
def test_usage_and_input_errors(tmp_path: Path, args: list[str], problem: str) -> None:
    given = tmp_path / "t.csv"
    given.write_text("text,x\nsome text,\n")
    code, _, err = run(*[str(given) if a == "T" else a for a in args])
    assert code != 0
    assert problem in err


def test_llm_method_through_the_command(askdocs_exe: str, split: tuple[Path, Path]) -> None:
    """The small packaged model, in its own process: what it says is held to the labels."""
    train, test = split
    done = subprocess.run(
        [
            askdocs_exe,
            "classify",
            str(test),
            "--text-column",
            "sentence",
            "--method",
            "llm",
            "--train",
            str(train),
            "--shots",
            "1",
            "--llm",
            "smollm2-135m",
            "--gold-column",
            "gold",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout)
    assert len(body["predictions"]) == 12
    assert {p["label"] for p in body["predictions"]} <= {"sport", "cooking", "weather"}
    assert 0 <= body["metrics"]["macro_f1"] <= 1
