"""The second retrieval for a bridge passage, over a small store with real models."""

from __future__ import annotations

from askdocs.answer import AskOptions, Final, ask
from askdocs.answer.hops import bridge_terms, follow
from askdocs.answer.pipeline import embedding_cache
from askdocs.extractive import score_passages
from askdocs.testing import FakeGenerator
from askdocs.text import Analyzer
from askdocs.types import Document
from tests.conftest import MakeKb

STUDIO = (
    "Les Films du Losange\nLes Films du Losange is a French film production and distribution "
    "company founded in 1962 by Barbet Schroeder and Éric Rohmer."
)
ROHMER = (
    "Éric Rohmer\nJean-Marie Maurice Schérer, known as Éric Rohmer, was a film critic, "
    "journalist and novelist. He worked as editor-in-chief of the magazine Cahiers du cinéma."
)
DISTRACTORS = [
    "Barbet Schroeder\nBarbet Schroeder is a film director and producer born in Tehran.",
    "Lighthouses\nA lighthouse keeper winds the clockwork lens every four hours.",
    "Sourdough\nA sourdough starter is fed with flour and water every day.",
    "Tides\nSpring tides come after a full or new moon, when the Sun and Moon align.",
]
QUESTION = "Where does the founder of Les Films du Losange work?"
# Named otherwise than its passage, the studio is not found by name, so no chain of relations
# is followed (`answer.chain`): the second retrieval is what finds the founder.
VARIANT = "Where does the founder of Films du Losange work?"


def _kb(make_kb: MakeKb):
    kb = make_kb()
    texts = [STUDIO, ROHMER, *DISTRACTORS]
    kb.ingest_documents(
        [Document(f"wiki://{n}", t, t.split("\n")[0], "txt") for n, t in enumerate(texts)]
    )
    return kb


def test_bridge_names_are_what_the_passages_add_to_the_question() -> None:
    sentence = STUDIO.split("\n")[1]
    assert bridge_terms(QUESTION, [sentence]) == ["French", "Barbet Schroeder", "Éric Rohmer"]


def test_the_second_retrieval_finds_the_bridge_passage(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    options = AskOptions(k=1)
    hits = kb.search(QUESTION, k=1)
    assert hits[0].path == "wiki://0"  # the first retrieval finds only the studio
    cache = embedding_cache(kb.embedder)
    passages = score_passages(QUESTION, hits, cache, Analyzer())
    hop = follow(kb, QUESTION, passages, options, cache)
    assert hop is not None and "Éric Rohmer" in hop.query
    assert "wiki://1" in {p.hit.path for p in hop.passages}


def test_an_answer_with_hops_shows_and_cites_the_bridge_passage(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    generator = FakeGenerator(["Cahiers du cinéma [2]"])
    without = ask(kb, generator, VARIANT, AskOptions(k=1, style="short", hops=1))
    assert [c.path for c in without.passages] == ["wiki://0"]
    answer = ask(kb, generator, VARIANT, AskOptions(k=1, style="short", hops=2))
    assert ask(kb, generator, VARIANT, AskOptions(k=1, style="short")).passages == answer.passages
    paths = [c.path for c in answer.passages]
    assert paths[0] == "wiki://0" and "wiki://1" in paths
    assert answer.answered and answer.citations[0].path == "wiki://1"
    assert "hop" in answer.timings
    assert isinstance(Final(answer), Final)


def test_an_answer_naming_the_bridge_is_asked_again_about_it(make_kb: MakeKb) -> None:
    from askdocs.answer import Token, stream_answer

    kb = _kb(make_kb)
    generator = FakeGenerator(["Éric Rohmer [1]", "Cahiers du cinéma [1]"])
    options = AskOptions(k=1, style="short", hops=2)
    events = list(stream_answer(kb, generator, VARIANT, options))
    answer = events[-1].answer
    assert len(generator.calls) == 2
    assert "(about Éric Rohmer)" in generator.calls[1][1].content
    # Only the second answer was streamed; the first, held back, named the bridge.
    assert "".join(e.text for e in events if isinstance(e, Token)) == "Cahiers du cinéma [1]"
    assert answer.answered and "Cahiers du cinéma" in answer.text
    assert answer.citations[0].path == "wiki://1" and "asked again" in answer.note


def test_an_answer_that_is_not_the_bridge_is_sent_as_it_came(make_kb: MakeKb) -> None:
    from askdocs.answer import Token, stream_answer

    kb = _kb(make_kb)
    generator = FakeGenerator(["Cahiers du cinéma [2]"])
    events = list(stream_answer(kb, generator, VARIANT, AskOptions(k=1, style="short", hops=2)))
    assert len(generator.calls) == 1
    assert [e.text for e in events if isinstance(e, Token)] == ["Cahiers du cinéma [2]"]
    assert events[-1].answer.note == ""
