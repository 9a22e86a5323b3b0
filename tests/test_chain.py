"""Questions asked through a chain of relations, answered one link at a time, over a small
store with the real embedder (the model is a scripted fake: these tests are about the links)."""

from __future__ import annotations

import pytest

from askdocs.answer import AskOptions, Final, Retrieved, ask, stream_answer
from askdocs.answer.chain import Chain, decompose, follow_chain
from askdocs.answer.pipeline import embedding_cache
from askdocs.testing import FakeGenerator
from askdocs.types import Document
from tests.conftest import MakeKb

FILM = (
    "Aylwin (film)\nAylwin is a 1920 British silent drama film directed by Henry Edwards and "
    "starring Edwards, Chrissie White and Gerald Ames."
)
EDWARDS = (
    "Henry Edwards (actor)\nHenry Edwards (18 September 1882 \u2013 2 November 1952) was an "
    "English actor and film director. He was born in Weston-super-Mare, Somerset."
)
COUNT = (
    "Frederick of Luxembourg\nFrederick of Luxembourg was a count in the Moselgau. He was the "
    "son of Siegfried of Luxembourg and Hedwig of Nordgau, and married Irmtrud of Wetterau."
)
SIEGFRIED = (
    "Siegfried of Luxembourg\nSiegfried of Luxembourg was the first count of Luxembourg. He "
    "was born in 922 and died on 28 October 998."
)
DISTRACTORS = [
    "Weston-super-Mare\nWeston-super-Mare is a seaside town in Somerset with a long pier.",
    "Lighthouses\nA lighthouse keeper winds the clockwork lens every four hours.",
    "Sourdough\nA sourdough starter is fed with flour and water every day.",
    "Tides\nSpring tides come after a full or new moon, when the Sun and Moon align.",
]


def _kb(make_kb: MakeKb):
    kb = make_kb()
    texts = [FILM, EDWARDS, COUNT, SIEGFRIED, *DISTRACTORS]
    kb.ingest_documents(
        [Document(f"wiki://{n}", t, t.split("\n")[0], "txt") for n, t in enumerate(texts)]
    )
    return kb


@pytest.mark.parametrize(
    ("question", "chain"),
    [
        (
            "Where was the director of film Aylwin (Film) born?",
            Chain("Aylwin (Film)", ("director",), "Where was {} born?"),
        ),
        (
            "Who is the spouse of the performer of song Et Moi, Et Moi, Et Moi?",
            Chain("Et Moi, Et Moi, Et Moi", ("performer",), "Who is the spouse of {}?"),
        ),
        (
            "When did Joanna Of Aragon, Countess Of Foix's mother die?",
            Chain("Joanna Of Aragon, Countess Of Foix", ("mother",), "When did {} die?"),
        ),
        (
            "What is the date of birth of Frederick Of Liege's father?",
            Chain("Frederick Of Liege", ("father",), "What is the date of birth of {}?"),
        ),
        (
            "Who is Sultan Hatun's mother-in-law?",
            Chain("Sultan Hatun", ("spouse",), "Who is the mother of {}?"),
        ),
        (
            "Who is the paternal grandmother of Princess Feodora?",
            Chain("Princess Feodora", ("father",), "Who is the mother of {}?"),
        ),
        (
            "When is the director of film The Last Dragon 's birthday?",
            Chain("The Last Dragon", ("director",), "When is {}'s birthday?"),
        ),
        (
            "What is the cause of death of performer of song Just Playing (Dreams)?",
            Chain("Just Playing (Dreams)", ("performer",), "What is the cause of death of {}?"),
        ),
    ],
)
def test_a_chain_is_read_from_the_wording(question: str, chain: Chain) -> None:
    assert decompose(question) == chain


@pytest.mark.parametrize(
    "question",
    [
        "Who is the director of film Aylwin?",  # one link: its holder is the answer
        "Who is the father of James I, Count Of Urgell?",
        "Which film came out first, The Ex-Wife Of My Life or Wrangler'S Roost?",
        "Who is Amalie Adlerberg's grandfather?",  # which side is not said
        "How do I descale the coffee maker?",
        "Where was the founder of the company born?",  # no name to start from
        "Why does my coffee taste bitter?",
    ],
)
def test_questions_without_a_chain_are_left_whole(question: str) -> None:
    assert decompose(question) is None


def test_a_role_is_read_from_the_text_without_the_model(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    chain = decompose("Where was the director of film Aylwin (Film) born?")
    assert chain is not None
    generator = FakeGenerator(["never asked"])
    links = follow_chain(chain, [], kb.search, generator, embedding_cache(kb.embedder))
    assert links is not None and [link.holder for link in links] == ["Henry Edwards"]
    assert links[0].hit.path == "wiki://0" and "directed by" in links[0].hit.text
    assert generator.calls == []


def test_kinship_is_picked_by_the_model_among_the_passage_names(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    chain = decompose("When did Frederick Of Luxembourg's father die?")
    assert chain is not None and chain.relations == ("father",)
    generator = FakeGenerator(["Siegfried of Luxembourg [1]"])
    links = follow_chain(chain, [], kb.search, generator, embedding_cache(kb.embedder))
    assert links is not None and links[0].holder == "Siegfried of Luxembourg"
    grammar = generator.grammars[0]
    assert grammar is not None and '"Siegfried of Luxembourg"' in grammar
    assert '"Hedwig of Nordgau"' in grammar and "Frederick" not in grammar
    assert "son of Siegfried" in kb.search("Frederick of Luxembourg", k=1)[0].text
    # A reply that is not one of the passage's names does not make a link.
    wrong = FakeGenerator(["Otto the Great [1]"])
    assert follow_chain(chain, [], kb.search, wrong, embedding_cache(kb.embedder)) is None


def test_the_answer_is_asked_about_the_holder_and_cites_every_link(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    question = "Where was the director of film Aylwin (Film) born?"
    generator = FakeGenerator(["Weston-super-Mare [1]"])
    events = list(stream_answer(kb, generator, question, AskOptions(k=2, style="short")))
    answer = events[-1].answer
    assert isinstance(events[-1], Final) and answer.question == question
    assert len(generator.calls) == 1  # the role came from the text; one model call
    assert generator.calls[0][1].content.endswith("Question: Where was Henry Edwards born?")
    assert answer.answered and answer.text.startswith("Weston-super-Mare [1, ")
    paths = [c.path for c in answer.citations]
    assert paths[0] == "wiki://1" and paths[-1] == "wiki://0"  # the holder's, then the film's
    assert "directed by Henry Edwards" in answer.citations[-1].text
    retrieved = next(e for e in events if isinstance(e, Retrieved))
    assert retrieved.passages[-1] == answer.citations[-1]
    assert "Henry Edwards" in answer.note and "chain" in answer.timings


def test_a_full_answer_says_each_link(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    question = "Where was the director of film Aylwin (Film) born?"
    generator = FakeGenerator(["Henry Edwards was born in Weston-super-Mare, Somerset [1]."])
    answer = ask(kb, generator, question, AskOptions(k=2, style="full"))
    assert answer.answered
    last = answer.sentences[-1]
    assert last.text == f"The director of Aylwin (Film) is Henry Edwards [{last.cites[0]}]."
    assert answer.citations[-1].number == last.cites[0]
    assert answer.text.endswith(last.text)


def test_a_chain_that_cannot_be_followed_falls_back_to_the_whole_question(
    make_kb: MakeKb,
) -> None:
    kb = _kb(make_kb)
    question = "Where was the director of film Blue Lagoon Summer born?"  # not in the store
    generator = FakeGenerator(["Weston-super-Mare [1]"])
    answer = ask(kb, generator, question, AskOptions(k=2, style="short"))
    assert "answered as" not in answer.note
    assert all(question in m.content for call in generator.calls for m in call[1:])
    # Asked for one retrieval only, no chain is followed.
    one = FakeGenerator(["Weston-super-Mare [1]"])
    ask(kb, one, "Where was the director of film Aylwin (Film) born?", AskOptions(k=2, hops=1))
    assert "Henry Edwards born" not in one.calls[0][1].content


def test_the_module_examples_hold() -> None:
    import doctest

    from askdocs.answer import chain, compare, hops, names

    assert doctest.testmod(chain).failed == 0
    assert doctest.testmod(compare).failed == 0
    assert doctest.testmod(names).failed == 0
    assert doctest.testmod(hops).failed == 0


def test_of_two_founders_the_one_whose_passage_answers_is_followed(make_kb: MakeKb) -> None:
    kb = make_kb()
    texts = [
        "Les Films du Losange\nLes Films du Losange is a French film company founded by Barbet "
        "Schroeder and Éric Rohmer in 1962.",
        "Barbet Schroeder\nBarbet Schroeder is a film director and producer born in Tehran.",
        "Éric Rohmer\nÉric Rohmer was a film critic and novelist. He worked as editor-in-chief "
        "of the magazine Cahiers du cinéma.",
        *DISTRACTORS,
    ]
    kb.ingest_documents(
        [Document(f"wiki://{n}", t, t.split("\n")[0], "txt") for n, t in enumerate(texts)]
    )
    question = "Where does the founder of Les Films du Losange work?"
    chain = decompose(question)
    assert chain is not None
    links = follow_chain(chain, [], kb.search, FakeGenerator(), embedding_cache(kb.embedder))
    assert links is not None and links[0].holder == "Barbet Schroeder"
    assert links[0].others == ("Éric Rohmer",)
    generator = FakeGenerator(["Cahiers du cinéma [1]"])
    answer = ask(kb, generator, question, AskOptions(k=2, style="short"))
    assert generator.calls[0][1].content.endswith("Question: Where does Éric Rohmer work?")
    assert answer.answered and "Éric Rohmer" in answer.note
    assert answer.citations[0].path == "wiki://2"


CONNIE = (
    "Confidentially Connie\nConfidentially Connie is a 1953 film directed by Edward Buzzell. "
    "It stars Van Johnson and Janet Leigh."
)
BUZZELL = (
    "Edward Buzzell\nEdward Buzzell (November 13, 1895 \u2013 January 11, 1985) was an "
    "American film director. In 1926, Buzzell married actress Ona Munson."
)
PHILIP = (
    "Philip William, Prince of Orange\nPhilip William (19 December 1554 \u2013 20 February "
    "1618) was the eldest son of William the Silent by his first wife Anna van Egmont."
)


def test_kinship_said_in_a_fixed_form_is_read_without_the_model(make_kb: MakeKb) -> None:
    kb = _kb(make_kb)
    kb.ingest_documents(
        [Document(f"wiki://k{n}", t, t.split("\n")[0], "txt") for n, t in
         enumerate([CONNIE, BUZZELL, PHILIP])]
    )  # fmt: skip
    never = FakeGenerator(["never asked"])
    chain = decompose("Where was the father of Philip William, Prince Of Orange born?")
    assert chain is not None and chain.relations == ("father",)
    links = follow_chain(chain, [], kb.search, never, embedding_cache(kb.embedder))
    assert links is not None and links[0].holder == "William the Silent"
    # the last link is the answer: said in code, citing both sentences
    question = "Who is the spouse of the director of film Confidentially Connie?"
    answer = ask(kb, never, question, AskOptions(k=2, style="short"))
    assert never.calls == []
    assert answer.answered and answer.mode == "chained"
    assert answer.text == "Ona Munson [1, 2]"
    assert [c.path for c in answer.citations] == ["wiki://k0", "wiki://k1"]
    assert answer.citations[1].text == "In 1926, Buzzell married actress Ona Munson."
    full = ask(kb, never, question, AskOptions(k=2, style="full"))
    assert full.text == (
        "Ona Munson [1, 2]. The director of Confidentially Connie is Edward Buzzell [1]. "
        "The spouse of Edward Buzzell is Ona Munson [2]."
    )
