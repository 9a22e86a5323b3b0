"""Questions that pick rows out of a table, and short answers that open a list: read in code
from the passages, over a small store with the real embedder."""

from __future__ import annotations

import pytest

from askdocs.answer import ask
from askdocs.answer.lists import asks_for_any, whole_list
from askdocs.answer.tables import matching_rows, tables_in
from askdocs.kb import KnowledgeBase
from askdocs.testing import FakeGenerator
from askdocs.types import Document
from tests.conftest import MakeKb

GUIDE = """Caring for houseplants

Most houseplants die from too much water rather than too little.

Quick reference

| Plant | Light | Watering | Safe for cats and dogs |
|---|---|---|---|
| Snake plant | Low to bright | When soil is fully dry | No |
| Pothos | Low to bright indirect | When top few cm are dry | No |
| ZZ plant | Low to bright indirect | When soil is fully dry | No |
| Spider plant | Bright indirect | When top few cm are dry | Yes |

Plants marked No irritate the mouth of pets that chew them.
"""
NOTES = """Notes on photosynthesis

Factors that limit the rate of photosynthesis include light intensity, carbon dioxide
concentration and temperature. Chlorophyll absorbs mainly blue and red light.
"""
BIO = """Roger Nygard

Roger Nygard is a film director. He was born in Melbourne, Australia with his wife and
children, and later moved to Los Angeles.
"""
MANUAL = """Kettle care

Descale the kettle every month if your water is hard, or every three months if it is soft.
The kettle holds 1.7 litres of water.
"""


def test_tables_are_read_with_their_rows_and_offsets() -> None:
    [table] = tables_in(GUIDE)
    assert table.header == ("Plant", "Light", "Watering", "Safe for cats and dogs")
    assert [row.cells[0] for row in table.rows] == ["Snake plant", "Pothos", "ZZ plant",
                                                    "Spider plant"]  # fmt: skip
    for row in table.rows:  # the markdown rule line is not a row
        assert GUIDE[row.start : row.end].startswith(f"| {row.cells[0]} |")
    assert tables_in("a | b\nno table here\n") == []  # a header alone is no table
    assert tables_in("Just prose, with a | in it.") == []


@pytest.mark.parametrize(
    ("question", "rows"),
    [
        ("Which plants should only be watered when the soil is fully dry?",
         ["Snake plant", "ZZ plant"]),
        ("Which plants are safe for cats?", ["Spider plant"]),
        ("Which plants are not safe for cats and dogs?", ["Snake plant", "Pothos", "ZZ plant"]),
        ("Which plants need low light?", []),  # "Low to bright" says more than the question
        ("Which dogs are safe?", []),  # the question does not name the rows' column
    ],
)  # fmt: skip
def test_a_question_picks_the_rows_its_words_name(question: str, rows: list[str]) -> None:
    [table] = tables_in(GUIDE)
    assert [row.cells[0] for row in matching_rows(question, table)] == rows


@pytest.mark.parametrize(
    ("phrase", "sentence", "whole"),
    [
        ("light intensity", NOTES.split("\n\n")[1],
         "light intensity, carbon dioxide concentration and temperature"),
        ("cumin", "Add the cumin, paprika, or chilli and stir.", "cumin, paprika, or chilli"),
        ("Paris", "He lived in Paris, where he died in 1900.", None),
        ("red", "It absorbs red and gives off the rest of the spectrum as heat.", None),
        ("blue", "Chlorophyll absorbs mainly blue and red light.", None),  # one item, no comma
        ("missing", "A sentence without the phrase, or a list.", None),
    ],
)  # fmt: skip
def test_a_phrase_that_opens_a_list_becomes_the_list(
    phrase: str, sentence: str, whole: str | None
) -> None:
    assert whole_list(phrase, sentence) == whole


def test_only_questions_a_list_can_answer_are_extended() -> None:
    assert asks_for_any("Which spices go into the soup?")
    assert not asks_for_any("What is the main factor?")
    assert not asks_for_any("When was it printed?")


@pytest.fixture
def kb(make_kb: MakeKb) -> KnowledgeBase:
    made = make_kb()
    made.ingest_documents(
        [
            Document("/home/plants.md", GUIDE, "Caring for houseplants", "md"),
            Document("/home/photosynthesis.md", NOTES, "Notes on photosynthesis", "md"),
            Document("/home/kettle.txt", MANUAL, "Kettle care", "txt"),
            Document("/home/nygard.txt", BIO, "Roger Nygard", "txt"),
        ]
    )
    return made


def test_a_table_question_is_answered_from_the_rows_without_the_model(kb: KnowledgeBase) -> None:
    generator = FakeGenerator(["never asked"])
    answer = ask(kb, generator, "Which plants should only be watered when the soil is fully dry?")
    assert answer.answered and answer.mode == "table" and generator.calls == []
    assert answer.text == "Snake plant and ZZ plant [1]"
    [cited] = answer.citations
    assert cited.path == "/home/plants.md" and len(cited.spans) == 2
    assert [GUIDE[a:b].split("|")[1].strip() for a, b in cited.spans] == ["Snake plant",
                                                                         "ZZ plant"]  # fmt: skip
    assert answer.sentences[0].supported
    # A question no cell answers goes to the model as before.
    other = ask(kb, FakeGenerator(["Snake plant [1]"]), "Which plant is the tallest?")
    assert other.mode != "table"


def test_a_short_answer_that_opens_a_list_is_given_as_the_list(kb: KnowledgeBase) -> None:
    generator = FakeGenerator(["light intensity [1]"])
    answer = ask(kb, generator, "What limits the rate of photosynthesis?", style="short")
    assert answer.answered and answer.draft == "light intensity [1]"
    assert answer.text == "light intensity, carbon dioxide concentration and temperature [1]"
    [sentence] = answer.sentences
    assert sentence.supported and sentence.text == answer.text
    # "Which colour ...?" asks for one ("main"): the model's phrase stands.
    one = ask(kb, FakeGenerator(["blue [1]"]), "What is the main colour chlorophyll absorbs?",
              style="short")  # fmt: skip
    assert one.text == "blue [1]"


def test_a_short_answer_that_holds_under_a_condition_is_given_with_it(kb: KnowledgeBase) -> None:
    answer = ask(kb, FakeGenerator(["every three months [1]"]),
                 "How often should I descale the kettle?", style="short")  # fmt: skip
    assert answer.text == (
        "Descale the kettle every month if your water is hard, or every three months if it is "
        "soft [1]."
    )
    assert answer.sentences[0].supported
    # A citation the checker re-points stays re-pointed in the whole sentence.
    repointed = ask(kb, FakeGenerator(["every three months [2]"]),
                    "How often should I descale the kettle?", style="short")  # fmt: skip
    assert repointed.sentences[0].added == (1,)
    assert repointed.text == answer.text
    plain = ask(kb, FakeGenerator(["1.7 litres [1]"]), "How much water does the kettle hold?",
                style="short")  # fmt: skip
    assert plain.text == "1.7 litres [1]"


def test_a_list_is_given_only_when_the_sentence_introduces_it_with_the_question_words(
    kb: KnowledgeBase,
) -> None:
    # "Melbourne, Australia with his wife and children" is no list of places of birth.
    answer = ask(kb, FakeGenerator(["Melbourne [1]"]),
                 "What is the place of birth of Roger Nygard?", style="short")  # fmt: skip
    assert answer.answered and answer.text == "Melbourne [1]"
