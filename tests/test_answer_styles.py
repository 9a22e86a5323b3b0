"""Answer styles, the options record, the checks for bare replies and number words, the
packer's first passage, and asking through `KnowledgeBase`."""

from __future__ import annotations

import numpy as np
import pytest

from askdocs import citations
from askdocs.answer import (
    AskOptions,
    Final,
    Retrieved,
    Token,
    candidates,
    pack,
    stream_answer,
)
from askdocs.answer.packing import FULL_PROMPT, SYSTEM_PROMPT, full_grammar
from askdocs.answer.styles import choose_style
from askdocs.citations import Source
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.kb import KnowledgeBase
from askdocs.testing import FakeGenerator
from askdocs.text import sentence_spans
from askdocs.types import Document
from tests.conftest import MakeKb
from tests.test_answer import ESPRESSO_Q, _passages


@pytest.mark.parametrize(
    ("question", "style"),
    [
        ("How do I descale the coffee maker?", "full"),
        ("Why does my coffee taste bitter?", "full"),
        ("Summarise the houseplant guide", "full"),
        ("Is the spider plant safe for cats?", "full"),
        ("What is the difference between simple and compound interest?", "full"),
        ("How long does lentil soup keep in the fridge, and can I freeze it?", "full"),
        ("How much coffee should I use per cup?", "short"),
        ("What were the parts of Gutenberg's printing system?", "full"),
        ("What was the name of the lens?", "short"),
        ("How often should I descale the coffee maker?", "short"),
        ("Who painted the Mona Lisa?", "short"),
        ("When do spring tides come?", "short"),
        ("", "short"),
    ],
)
def test_auto_chooses_a_style_from_the_question(question: str, style: str) -> None:
    assert choose_style(question) == style


def test_options_are_checked_and_copied() -> None:
    with pytest.raises(ConfigError, match="unknown style 'long'"):
        AskOptions(style="long")
    with pytest.raises(ConfigError, match="k must be at least 1"):
        AskOptions(k=0)
    with pytest.raises(ConfigError, match=r"unknown ask option\(s\) colour"):
        AskOptions().but(colour="red")
    options = AskOptions(style="full")
    assert options.but(k=7) == AskOptions(style="full", k=7) and options.k == 4


def test_full_style_packs_more_of_each_passage_and_its_own_prompt(kb: KnowledgeBase) -> None:
    passages = _passages(kb, ESPRESSO_Q)
    short = pack(ESPRESSO_Q, passages, FakeGenerator(), max_tokens=64)
    full = pack(ESPRESSO_Q, passages, FakeGenerator(), max_tokens=64, budget=400, style="full")
    assert short.messages[0].content == SYSTEM_PROMPT
    assert full.messages[0].content == FULL_PROMPT
    shown = sum(len(s.indices) for s in full.shown)
    assert shown > sum(len(s.indices) for s in short.shown)
    for s in full.shown:  # a run of consecutive sentences
        assert list(s.indices) == list(range(s.indices[0], s.indices[-1] + 1))


def test_full_grammar_bans_cjk_unless_the_passages_use_it() -> None:
    assert "\\u3000-\\u9fff" in full_grammar(3)
    assert "\\u3000" not in full_grammar(3, cjk=True)


def test_a_full_answer_is_checked_sentence_by_sentence(kb: KnowledgeBase) -> None:
    reply = (
        "Dissolve citric acid in warm water [1]. Run it through the steam wand [1]. "
        "Then paint the boiler red with lead paint [1]."
    )
    generator = FakeGenerator([reply])
    events = list(stream_answer(kb, generator, ESPRESSO_Q, AskOptions(style="full")))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Final)
    assert any(isinstance(e, Token) for e in events)
    answer = events[-1].answer
    assert answer.answered and answer.style == "full"
    assert [s.supported for s in answer.sentences] == [True, True, False]
    strict = stream_answer(kb, FakeGenerator([reply]), ESPRESSO_Q, style="full", strict=True)
    final = list(strict)[-1].answer
    assert "lead paint" not in final.text and "citric acid" in final.text


def test_the_first_retrieved_passage_is_always_a_candidate(kb: KnowledgeBase) -> None:
    hits = kb.search(ESPRESSO_Q, k=6)
    passages = _passages(kb, ESPRESSO_Q)
    # Move the weakest passage (by best sentence) to the front, as if search ranked it first.
    weakest = min(passages, key=lambda p: p.best)
    reordered = [weakest, *[p for p in passages if p is not weakest]]
    chosen = candidates(reordered, limit=2)
    assert weakest in chosen and len(chosen) == 2
    assert hits  # the search itself found the passages


def _source(embedder: MiniLMEmbedder, number: int, text: str) -> Source:
    spans = tuple(sentence_spans(text))
    vectors = embedder.embed([text[a:b] for a, b in spans])
    return Source(number, text, np.asarray(vectors), spans)


def test_a_bare_yes_is_checked_as_the_question_it_answers(embedder: MiniLMEmbedder) -> None:
    question = "Is the spider plant safe for cats?"
    table = "Plant | Safe for cats and dogs\nSnake plant | No\nSpider plant | Yes"
    mites = "Spider mites leave fine webbing and thrive in dry air."
    sources = {1: _source(embedder, 1, mites), 2: _source(embedder, 2, table)}
    parts = citations.split_answer("Yes [1]")
    claims = [citations.with_question(p.claim, question) for p in parts]
    (checked,) = citations.check(parts, embedder.embed(claims), sources, question=question)
    assert checked.supported and checked.added == (2,), checked.problems
    assert citations.with_question("Lake Toma", question) == "Lake Toma"


def test_number_words_support_digits() -> None:
    passage = "Use roughly one rounded tablespoon per 150 ml cup."
    assert citations.lexical_support("1 tablespoon", passage) == 1.0
    assert citations.lexical_support("2 tablespoons", passage) < 1.0


def test_knowledge_base_asks_without_a_model_when_extractive(kb: KnowledgeBase) -> None:
    answer = kb.ask(ESPRESSO_Q, extractive=True)
    assert answer.answered and answer.mode == "extractive" and answer.citations
    events = list(kb.stream_ask(ESPRESSO_Q, AskOptions(extractive=True)))
    assert isinstance(events[0], Retrieved) and events[-1].answer.text == answer.text
    assert kb._generator is None  # no model was loaded


def test_knowledge_base_asks_with_its_generator(kb: KnowledgeBase) -> None:
    generator = FakeGenerator(["Dissolve citric acid in warm water [1]."])
    with_model = KnowledgeBase(kb.settings, kb.store, kb.embedder, generator)
    answer = with_model.ask(ESPRESSO_Q, style="short")
    assert answer.answered and answer.style == "short" and generator.calls
    assert with_model.generator is generator


@pytest.fixture
def kb(docs_kb: KnowledgeBase) -> KnowledgeBase:
    return docs_kb


def test_a_rewrite_that_drops_the_follow_ups_own_words_is_not_used(kb: KnowledgeBase) -> None:
    from askdocs.conversation import Conversation, Turn
    from askdocs.types import Answer

    earlier = "How long do I cook the lentils?"
    # The model "rewrites" the follow-up into the first question, as a small model did.
    talk = Conversation(kb, FakeGenerator([earlier]))
    talk.turns = [
        Turn(earlier, earlier, Answer(earlier, "40 minutes [1].", True, ())),
        Turn("Can I use red lentils?", "Can I use red lentils?", Answer("q", "Yes [1].", True, ())),
    ]
    query = talk.standalone("What about freezing it?")
    assert "freezing" in query and query.endswith("What about freezing it?")
    good = Conversation(kb, FakeGenerator(["Can I freeze lentil soup?"]))
    good.turns = talk.turns
    assert good.standalone("What about freezing it?") == "Can I freeze lentil soup?"


def test_a_question_that_offers_choices_is_answered_with_one(kb: KnowledgeBase) -> None:
    from llama_cpp import LlamaGrammar

    from askdocs.answer.packing import choice_grammar, choices

    question = "Which is descaled with citric acid, an espresso machine or a volcano?"
    assert choices(question) == ("an espresso machine", "a volcano")
    generator = FakeGenerator(["an espresso machine [1]"])
    answer = stream_answer(kb, generator, question, style="short", hops=1)
    final = list(answer)[-1].answer
    (grammar,) = generator.grammars
    assert grammar == choice_grammar(("an espresso machine", "a volcano"), len(final.passages))
    LlamaGrammar.from_string(grammar, verbose=False)
    assert choices("When do spring tides come?") is None


def test_quotes_replace_a_refusal_only_when_they_hold_the_question() -> None:
    from askdocs.answer.pipeline import quotes_the_question
    from askdocs.types import Answer, Citation

    soup = Citation(1, 1, "soup.txt", "Everyday Lentil Soup", None, 0, 10, "", 0.7)
    storage = Answer(
        "q", "Keep it covered in the fridge for up to 4 days [1]. It freezes well [1].", True,
        (soup,),
    )  # fmt: skip
    asked = "How long does lentil soup keep in the fridge, and can I freeze it?"
    assert quotes_the_question(asked, storage) is storage
    protein = Answer("q", "Cooked lentils contain roughly 9 grams of protein [1].", True, (soup,))
    assert quotes_the_question("How many calories are in a bowl of lentil soup?", protein) is None
    # "difference between" shapes the question; the lentils are what it is about.
    kinds = Answer("q", "Brown or green lentils hold their shape; red lentils break down [1].",
                   True, (soup,))  # fmt: skip
    asked = "What is the difference between brown or green lentils and red lentils?"
    assert quotes_the_question(asked, kinds) is kinds
    # One term of three missing: the quote stands only when the documents use that word
    # elsewhere (the question is about what they discuss), and only when told how to know.
    manual = Citation(1, 2, "coffee.txt", "Coffee maker manual", None, 0, 10, "", 0.6)
    stove = Answer("q", "Use the carafe only on the warming plate, never on a stove [1].", True,
                   (manual,))  # fmt: skip
    used = {"heat", "carafe", "stove"}.__contains__
    assert quotes_the_question("Can I heat the carafe on the stove?", stove) is None
    assert quotes_the_question("Can I heat the carafe on the stove?", stove, used) is stove
    assert quotes_the_question("How long is the warranty on the carafe stove?", stove, used) is None
    assert quotes_the_question("Can I heat the stove?", stove, used) is None  # one of two


def test_a_question_asking_where_is_answered_without_digits(kb: KnowledgeBase) -> None:
    from llama_cpp import LlamaGrammar

    generator = FakeGenerator(["in the machine [1]"])
    for asked in ("Where does limescale build up", "When does limescale build up"):
        question = f"{asked} in an espresso machine?"
        list(stream_answer(kb, generator, question, style="short", hops=1))
    where, when = generator.grammars
    assert where is not None and "0-9" in where.splitlines()[1]
    assert when is not None and "0-9" not in when
    LlamaGrammar.from_string(where, verbose=False)


def one_document_kb(make_kb: MakeKb, path: str, text: str, title: str, kind: str) -> KnowledgeBase:
    """A new store holding one document."""
    kb = make_kb()
    kb.ingest_documents([Document(path, text, title, kind)])
    return kb


def test_a_yes_that_a_cited_passage_denies_is_not_supported(make_kb: MakeKb) -> None:
    notes = (
        "Notes on photosynthesis\n\nWater molecules are split in the light reactions. All the "
        "oxygen given off by a plant comes from water, not from carbon dioxide.\n"
    )
    kb = one_document_kb(make_kb, "/home/photo.md", notes, "Notes on photosynthesis", "md")
    question = "Does the oxygen plants give off come from carbon dioxide?"
    generator = FakeGenerator(["Yes, the oxygen plants give off comes from carbon dioxide [1]."])
    answer = list(stream_answer(kb, generator, question, style="full"))[-1].answer
    # The "Yes" is unsupported, so the passage is quoted instead (or the answer refused).
    assert answer.draft.startswith("Yes") and not answer.text.startswith("Yes")
    assert answer.mode == "extractive" or not answer.answered
    # Asked about water, the same passage denies nothing the question asks.
    water = list(stream_answer(kb, FakeGenerator(["Yes, the oxygen comes from water [1]."]),
                               "Does the oxygen plants give off come from water?",
                               style="full"))[-1].answer  # fmt: skip
    assert water.answered and water.text.startswith("Yes") and water.sentences[0].supported


MANUAL = (
    "Coffee maker manual\n\nSAFETY\n- Do not open the filter basket while brewing.\n- Use the "
    "carafe only on the warming plate of this machine, never on a stove.\n- Unplug the "
    "machine before cleaning.\n\nHEATING\nThe heating element keeps the plate warm for 30 "
    "minutes.\n"
)


def test_a_refused_full_answer_is_quoted_when_the_documents_use_every_missing_word(
    make_kb: MakeKb,
) -> None:
    kb = one_document_kb(make_kb, "/home/coffee.txt", MANUAL, "Coffee maker manual", "txt")
    refusing = FakeGenerator(["The passages do not contain the answer. [1]"])
    stove = ask_full(kb, refusing, "Can I heat the carafe on the stove?")
    assert stove.answered and stove.mode == "extractive" and "never on a stove" in stove.text
    # "oven" is in no document: the model's refusal stands.
    oven = ask_full(kb, refusing, "Can I put the carafe on the warming plate of an oven?")
    assert not oven.answered and oven.reason == "the model found no answer in the passages"


def ask_full(kb: KnowledgeBase, generator: FakeGenerator, question: str):  # type: ignore[no-untyped-def]
    return list(stream_answer(kb, generator, question, style="full"))[-1].answer


HTTPS = (
    "How HTTPS works\n\nHTTPS encrypts the connection between a browser and a site.\n\n"
    "HTTPS also says nothing about whether a site is honest: a padlock only means the "
    "connection to that domain is private and authenticated. Sites can send an HSTS header.\n"
)


def test_a_sentence_cut_short_of_what_is_asked_is_given_whole(make_kb: MakeKb) -> None:
    kb = one_document_kb(make_kb, "/home/https.html", HTTPS, "How HTTPS works", "html")
    cut = FakeGenerator(
        ["The padlock only means the connection to that domain is private and authenticated [1]."]
    )
    answer = ask_full(kb, cut, "Does the padlock mean a website is honest?")
    assert answer.answered
    assert answer.text == (
        "HTTPS also says nothing about whether a site is honest: a padlock only means the "
        "connection to that domain is private and authenticated [1]."
    )
    only = answer.sentences[0]
    assert answer.text[only.start : only.end] == only.text
    # Asked what it means, the cut sentence answers: nothing is added.
    means = ask_full(kb, cut, "What does the padlock mean?")
    assert means.text == means.draft


PRESS = (
    "The printing press\n\nThe best known result is the Gutenberg Bible, completed in Mainz "
    "around 1455. Its pages have 42 lines in two columns, and about 180 copies were printed, "
    "some on paper and some on vellum. Around fifty copies, complete or partial, survive "
    "today. Gutenberg himself did not grow rich.\n"
)


def test_each_how_many_of_a_question_gets_its_number(make_kb: MakeKb) -> None:
    kb = one_document_kb(make_kb, "/home/press.txt", PRESS, "The printing press", "txt")
    question = "How many copies of the Gutenberg Bible were printed, and how many survive?"
    vague = FakeGenerator(["About 180 copies were printed, and some survive today [1]."])
    answer = ask_full(kb, vague, question)
    assert answer.text == (
        "About 180 copies were printed, and some survive today [1]. "
        "Around fifty copies, complete or partial, survive today [1]."
    )
    added = answer.sentences[-1]
    assert answer.text[added.start : added.end] == added.text and added.supported
    assert added.evidence is not None
    assert PRESS[added.evidence[1] : added.evidence[2]].startswith("Around fifty copies")
    # Both numbers given: nothing is added; one ask, one number: nothing either.
    both = FakeGenerator(["About 180 copies were printed and about fifty survive [1]."])
    assert ask_full(kb, both, question).text == both.replies[0]
    one = FakeGenerator(["About 180 copies were printed [1]."])
    printed = ask_full(kb, one, "How many copies of the Gutenberg Bible were printed?")
    assert printed.text == one.replies[0]


def test_a_list_items_number_does_not_support_a_number_in_the_answer(make_kb: MakeKb) -> None:
    kb = one_document_kb(make_kb, "/home/coffee.txt", STEPS, "Coffee maker manual", "txt")
    invented = FakeGenerator(["4 cups [1]"])
    answer = ask_short(kb, invented, "How many cups does the carafe hold?")
    assert not answer.sentences or not answer.sentences[0].supported
    assert "4 cups" not in answer.text
    # Said in the text, the same number is supported.
    said = ask_short(kb, FakeGenerator(["3 minutes [1]"]), "How long does the carafe rest?")
    assert said.answered and said.text == "3 minutes [1]"


STEPS = (
    "Coffee maker manual\n\nMAKING COFFEE\n1. Fill the reservoir with cold water.\n"
    "2. Add ground coffee to the filter basket.\n3. Put the carafe on the warming plate.\n"
    "4. Close the lid and switch the machine on. Let the carafe rest 3 minutes after brewing.\n"
)


def ask_short(kb: KnowledgeBase, generator: FakeGenerator, question: str):  # type: ignore[no-untyped-def]
    return list(stream_answer(kb, generator, question, style="short"))[-1].answer


DOSE = (
    "Coffee maker manual\n\nMAKING COFFEE\n1. Fill the reservoir with fresh cold water.\n"
    "2. Add ground coffee. A good starting point is about 55 to 60 grams of medium-ground "
    "coffee per litre\n   of water, roughly one rounded tablespoon per 150 ml cup. Adjust to "
    "taste.\n3. Close the lid and switch the machine on.\n"
)


def test_an_amount_per_something_else_is_given_per_what_was_asked(make_kb: MakeKb) -> None:
    kb = one_document_kb(make_kb, "/home/coffee.txt", DOSE, "Coffee maker manual", "txt")
    per_litre = FakeGenerator(["55 to 60 grams [1]"])
    answer = ask_short(kb, per_litre, "How much coffee should I use per cup?")
    assert answer.answered
    assert answer.text == "roughly one rounded tablespoon per 150 ml cup [1]"
    only = answer.sentences[0]
    assert answer.text[only.start : only.end] == only.text
    # Asked per litre, the same answer stands; so does the per-cup one asked per cup.
    assert ask_short(kb, per_litre, "How much coffee per litre of water?").text == (
        "55 to 60 grams [1]"
    )
    per_cup = FakeGenerator(["one rounded tablespoon [1]"])
    assert ask_short(kb, per_cup, "How much coffee should I use per cup?").text == (
        "one rounded tablespoon [1]"
    )
