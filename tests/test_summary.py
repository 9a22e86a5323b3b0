"""Summaries of one document: its sections' lead sentences, quoted and cited, over a small
store with the real embedder."""

from __future__ import annotations

import pytest

from askdocs.answer import ask
from askdocs.answer.summary import subject
from askdocs.testing import FakeGenerator
from askdocs.types import Document
from tests.conftest import MakeKb

GUIDE = """Keeping bees
A first hive needs a sheltered spot, a steady source of water and flowers within reach. A
beginner does best with two hives, to compare them.

Inspections
Open the hive every week in spring to look for eggs, larvae and queen cells. Work slowly
and calmly; sudden movements make the bees defensive.

Harvest
Take honey only from frames that are capped with wax. Leave enough honey for the bees to
survive the winter, about twenty kilograms in a cold climate.

Winter
Bees cluster together in winter and shiver to keep the queen warm. Check the weight of the
hive in January and feed fondant if it feels light.
"""
OTHER = "Sourdough\nA sourdough starter is fed with flour and water every day in a warm kitchen."


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("Summarise the beekeeping guide.", "the beekeeping guide"),
        ("summarize keeping bees", "keeping bees"),
        ("Can you give me a short summary of the beekeeping guide?", "the beekeeping guide"),
        ("Give an overview of winter care", "winter care"),
        ("How do bees survive the winter?", None),
        ("How do I summarise a report?", None),
    ],
)
def test_what_is_to_be_summarised_is_read_from_the_question(question: str, said: str) -> None:
    assert subject(question) == said


def test_a_summary_quotes_each_section_once_in_order(make_kb: MakeKb) -> None:
    kb = make_kb(overrides={"chunking.size": 48, "chunking.overlap": 8})
    kb.ingest_documents(
        [
            Document("/notes/bees.md", GUIDE, "Keeping bees", "md"),
            Document("/notes/bread.txt", OTHER, "Sourdough", "txt"),
        ]
    )
    generator = FakeGenerator(["never asked"])
    answer = ask(kb, generator, "Summarise the beekeeping guide", style="auto")
    assert answer.answered and answer.mode == "summary" and generator.calls == []
    assert {c.path for c in answer.citations} == {"/notes/bees.md"}
    texts = [s.text for s in answer.sentences]
    leads = ["A first hive", "Open the hive", "Take honey only", "Bees cluster"]
    found = [next(i for i, t in enumerate(texts) if t.startswith(lead)) for lead in leads]
    assert found == sorted(found)  # in the document's order
    assert len(set(texts)) == len(texts)  # overlapping chunks: each sentence said once
    for sentence in answer.sentences:  # every sentence is the document's own, at its span
        (number,) = sentence.cites
        cited = answer.citations[number - 1]
        body = sentence.text.rsplit(" [", 1)[0]
        quoted = " ".join(GUIDE[cited.start : cited.end].split()).rstrip(".")
        assert quoted.endswith(body.rstrip("."))
        assert sentence.supported
    assert "Inspections" not in answer.text  # headings are not said
    # The document's opening is said in its first two sentences, with one citation.
    assert texts[0].startswith("A first hive") and "two hives, to compare them [1]." in texts[0]


def test_a_short_answer_or_a_missing_document_is_not_summarised(make_kb: MakeKb) -> None:
    kb = make_kb()
    kb.ingest_documents([Document("/notes/bees.md", GUIDE, "Keeping bees", "md")])
    short = ask(kb, FakeGenerator(["weekly [1]"]), "Summarise the beekeeping guide", style="short")
    assert short.mode != "summary"
    missing = ask(kb, None, "Summarise the quarterly tax return", style="full")
    assert missing.mode != "summary"


def test_the_module_examples_hold() -> None:
    import doctest

    from askdocs.answer import summary

    assert doctest.testmod(summary).failed == 0


PAGE = """Home brewing

Brewing beer at home takes a day of work and a month of patience.

Equipment

Before brewing, gather a large pot, a fermenting bucket with an airlock and a thermometer:

- A pot of at least 20 litres.
- A bucket with a tight lid.

Fermenting

Yeast turns the sugar in the cooled wort into alcohol over about two weeks.
"""


def test_a_web_page_summary_says_each_section_lead_even_before_a_list(make_kb: MakeKb) -> None:
    # Headings a paragraph apart from their text, as the web page reader lays them out.
    kb = make_kb()
    kb.ingest_documents([Document("/web/brewing.html", PAGE, "Home brewing", "html")])
    answer = ask(kb, FakeGenerator(["never asked"]), "Summarise the home brewing page")
    assert answer.mode == "summary"
    said = [s.text.rsplit(" [", 1)[0] for s in answer.sentences]
    assert said[0].startswith("Brewing beer at home")
    # The lead-in to the list is said as a sentence; the list items are not.
    assert (
        "Before brewing, gather a large pot, a fermenting bucket with an airlock and a "
        "thermometer" in said
    )
    assert not any(s.startswith(("- ", "A pot of")) for s in said)
    assert any(s.startswith("Yeast turns the sugar") for s in said)
