"""`askdocs eval answers` on a CLAPnq-format directory, generated here (extractive answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from askdocs.answer import AskOptions
from askdocs.errors import ConfigError
from askdocs.evaluate_longform import evaluate_longform, load_clapnq, rouge_l
from tests.conftest import MakeKb

PASSAGES = {
    "Tides": "Spring tides come after a full or new moon , when the Sun and Moon align . "
    "Their pull adds up , so high tides are higher and low tides lower .",
    "Volcanoes": "Magma rises through cracks in the crust . When the pressure of dissolved "
    "gases grows too high the volcano erupts , throwing lava and ash into the sky .",
    "Sourdough": "A sourdough starter is a mix of flour and water fed every day .",
}


def _record(n: int, question: str, title: str, answers: list[str]) -> dict:
    output = [{"answer": a, "meta": {"skip": False}} for a in answers] or [{"answer": ""}]
    return {"id": str(n), "input": question, "passages": [{"title": title,
            "text": PASSAGES[title], "sentences": []}], "output": output}  # fmt: skip


@pytest.fixture
def clapnq(tmp_path: Path) -> Path:
    answerable = [
        _record(1, "when do spring tides happen", "Tides",
                ["Spring tides happen after a full or new moon, when the Sun and Moon align."]),
        _record(2, "why does a volcano erupt", "Volcanoes",
                ["A volcano erupts when the pressure of dissolved gases grows too high.", "NA"]),
    ]  # fmt: skip
    unanswerable = [_record(3, "who invented the telescope", "Sourdough", [])]
    for name, records in (("answerable", answerable), ("unanswerable", unanswerable)):
        lines = "\n".join(json.dumps(r) for r in records)
        (tmp_path / f"clapnq_dev_{name}.jsonl").write_text(lines, encoding="utf-8")
    return tmp_path


def test_rouge_l_counts_the_longest_common_subsequence() -> None:
    assert rouge_l("a b c", "a b c") == (1.0, 1.0, 1.0)
    assert rouge_l("", "a b") == (0.0, 0.0, 0.0)


def test_loading_keeps_usable_references_and_distinct_passages(clapnq: Path) -> None:
    documents, questions = load_clapnq(clapnq)
    assert len(documents) == 3 and documents[0].title == "Tides"
    assert [len(q.references) for q in questions] == [1, 1, 0]  # "NA" is not a reference
    (clapnq / "clapnq_dev_answerable.jsonl").write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clapnq_dev_answerable.jsonl:1: not a CLAPnq"):
        load_clapnq(clapnq)


def test_longform_evaluation_scores_refusals_rouge_and_citations(
    clapnq: Path, make_kb: MakeKb
) -> None:
    kb = make_kb()
    result = evaluate_longform(kb, None, clapnq, options=AskOptions(extractive=True))
    m = result.metrics
    assert (m["answerable"], m["unanswerable"]) == (2, 1)
    assert m["false_refusal"] == 0.0 and m["correct_refusal"] == 100.0
    assert m["rouge_l_f1"] > 40 and m["gold_cited"] == 100.0 and m["citation_precision"] == 100.0
    tides = next(o for o in result.outcomes if o.id == "1")
    assert "full or new moon" in tides.answer and tides.words > 5
