"""How-to questions answered with a document's numbered steps, quoted and cited, over a
small store with the real embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from askdocs.answer import ask
from askdocs.answer.steps import asks_steps, lists_in
from askdocs.testing import FakeGenerator
from askdocs.types import Document
from tests.conftest import MakeKb

MANUAL = """Kettle: Care Guide

This guide covers the electric kettle with a limescale filter and a 1.7 litre jug.

FIRST USE
1. Remove the stickers and wash the jug with warm water.
2. Fill the kettle to the maximum mark and boil it twice,
   pouring the water away each time.

DESCALING
Limescale builds up on the element in hard-water areas and slows boiling.
1. Fill the jug halfway with equal parts white vinegar and water.
2. Boil it, then leave it to stand for an hour.
3. Pour the solution away and boil clean water three times to rinse it.

DAILY CARE
- Empty the jug after use.
- Wipe the outside with a damp cloth.
"""
RECIPE = """Tomato Soup

A quick soup for four.

METHOD
1. Soften an onion in olive oil for ten minutes.

2. Add two tins of tomatoes and a litre of stock and simmer for twenty minutes.

3. Blend until smooth and season to taste.

TIPS
For a richer soup, stir in a spoon of cream before serving.
"""


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("How do I descale the kettle?", True),
        ("how to descale a kettle", True),
        ("What should I do before using the kettle for the first time?", True),
        ("What are the steps to make tomato soup?", True),
        ("How often should I descale the kettle?", False),
        ("How does limescale form?", False),
        ("Why is my kettle slow?", False),
    ],
)
def test_how_to_questions_are_told_apart(question: str, asks: bool) -> None:
    assert asks_steps(question) is asks


def test_numbered_lists_are_read_with_their_headings_and_wrapped_lines() -> None:
    found = lists_in(MANUAL)
    assert [(f.heading, len(f.steps)) for f in found] == [("FIRST USE", 2), ("DESCALING", 3)]
    assert found[0].steps[1].text == (
        "Fill the kettle to the maximum mark and boil it twice, pouring the water away each time."
    )
    assert found[1].intro.startswith("Limescale builds up")
    for step in found[1].steps:  # offsets into the document
        assert MANUAL[step.start : step.end].lstrip().startswith(f"{step.number}.")
    [method] = lists_in(RECIPE)  # blank lines between Markdown-style steps
    assert (method.heading, len(method.steps)) == ("METHOD", 3)
    assert lists_in("1. Only one step.\n\nThen prose.") == []


@pytest.fixture
def kb(make_kb: MakeKb):  # type: ignore[no-untyped-def]
    made = make_kb(overrides={"chunking.size": 48, "chunking.overlap": 8})
    made.ingest_documents(
        [
            Document("/home/kettle.txt", MANUAL, "Kettle: Care Guide", "txt"),
            Document("/home/soup.txt", RECIPE, "Tomato Soup", "txt"),
        ]
    )
    return made


def test_a_how_to_question_quotes_the_list_its_words_name(kb) -> None:  # type: ignore[no-untyped-def]
    generator = FakeGenerator(["never asked"])
    answer = ask(kb, generator, "How do I descale the kettle?", style="auto")
    assert answer.answered and answer.mode == "steps" and generator.calls == []
    assert answer.text.splitlines() == [
        s.text for s in answer.sentences
    ]  # one step a line, each with its citation
    assert [s.text.split(".")[0] for s in answer.sentences] == ["1", "2", "3"]
    assert "vinegar" in answer.text and "three times to rinse" in answer.text
    assert "DESCALING" not in answer.text and "stickers" not in answer.text
    for sentence in answer.sentences:  # each step is quoted from the passage it cites
        [number] = sentence.cites
        cited = next(c for c in answer.citations if c.number == number)
        assert sentence.evidence is not None and sentence.supported
        start, end = sentence.evidence[1:]
        assert cited.start <= start and end <= cited.end
        body = sentence.text.split(". ", 1)[1].rsplit(" [", 1)[0]
        assert body.split()[0] in cited.text
    first = ask(kb, generator, "What should I do before using the kettle for the first time?")
    assert first.mode == "steps" and "stickers" in first.text and "vinegar" not in first.text


def test_a_recipe_method_answers_how_to_make_the_dish(kb) -> None:  # type: ignore[no-untyped-def]
    answer = ask(kb, None, "How do I make the tomato soup?", style="full")
    assert answer.mode == "steps" and len(answer.sentences) == 3
    assert {c.path for c in answer.citations} == {"/home/soup.txt"}


def test_a_question_that_names_no_list_is_answered_as_before(kb) -> None:  # type: ignore[no-untyped-def]
    for question in ("How do I make the tomato soup richer?", "How do I clean the outside?"):
        answer = ask(kb, None, question, style="full")
        assert answer.mode != "steps", question


def test_a_web_page_numbered_list_answers_how_its_subject_works(
    make_kb: MakeKb, tmp_path: Path
) -> None:
    page = tmp_path / "tea.html"
    page.write_text(
        "<html><head><title>Making tea</title></head><body><h1>Making tea</h1>"
        "<p>Tea is the leaf of Camellia sinensis, dried and steeped in hot water.</p>"
        "<h2>How steeping works</h2><p>Steeping tea in hot water goes through three stages:</p>"
        "<ol>"
        "<li>Hot water softens the dried leaf and it unfurls.</li>"
        "<li>Caffeine and aroma dissolve in the first two minutes.</li>"
        "<li>Tannins follow and make the brew bitter after five minutes.</li></ol>"
        "<h2>Storage</h2><p>Keep leaves in a dark, airtight tin.</p></body></html>"
    )
    kb = make_kb()
    kb.ingest([page])
    answer = ask(kb, None, "How does steeping tea work?", style="auto")
    assert answer.mode == "steps"
    assert [s.text for s in answer.sentences] == [
        "1. Hot water softens the dried leaf and it unfurls [1].",
        "2. Caffeine and aroma dissolve in the first two minutes [1].",
        "3. Tannins follow and make the brew bitter after five minutes [1].",
    ]
