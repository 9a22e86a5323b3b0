"""Answering: packing, refusals, extractive answers, the generative path with a scripted
generator, structured output, conversations, the SQuAD evaluation and the CLI.

The real embedder runs everywhere (sentence selection and the citation check are about
meaning); the LLM is `FakeGenerator` because these tests are about what surrounds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from askdocs.answer import (
    NOT_IN_DOCUMENTS,
    REFUSAL,
    SYSTEM_PROMPT,
    Final,
    Retrieved,
    Token,
    answer_grammar,
    ask,
    embedding_cache,
    is_refusal,
    messages_for,
    pack,
    stream_answer,
)
from askdocs.answer.checks import QUOTE_EVIDENCE
from askdocs.answer.packing import full_grammar
from askdocs.cli import main
from askdocs.conversation import REWRITE_PROMPT, Conversation, needs_context
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import AskdocsError, ConfigError, ContextTooLong
from askdocs.evaluate_answers import evaluate_answers, normalize_answer, token_f1
from askdocs.extractive import EmbeddingCache, coverage, score_passages
from askdocs.generation import Decoding
from askdocs.kb import KnowledgeBase
from askdocs.readers import read
from askdocs.testing import FakeGenerator
from askdocs.text import Analyzer
from askdocs.types import Hit
from tests.conftest import MakeKb

ESPRESSO_Q = "How do I descale an espresso machine?"
GROUNDED = "Dissolve citric acid in warm water and run it through the steam wand [1]."
INVENTED = "Then paint the boiler red with lead paint [1]."


@pytest.fixture
def kb(docs_kb: KnowledgeBase) -> KnowledgeBase:
    return docs_kb


def _passages(kb: KnowledgeBase, question: str) -> list:
    hits = kb.search(question, k=6)
    return score_passages(question, hits, embedding_cache(kb.embedder), Analyzer())


# --- packing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("room", [0, 30, 80, 500])  # tokens left for passages
@pytest.mark.parametrize("budget", [5, 25, 200])
def test_packing_never_exceeds_the_context_or_the_budget(
    kb: KnowledgeBase, room: int, budget: int
) -> None:
    passages = _passages(kb, "When do spring tides and neap tides come?")
    base = FakeGenerator().prompt_tokens(messages_for("When do tides come?", [], structured=False))
    context = base + 16 + room
    generator = FakeGenerator(context_length=context)
    packed = pack("When do tides come?", passages, generator, max_tokens=16, budget=budget)
    assert packed.prompt_tokens == generator.prompt_tokens(packed.messages)
    assert packed.prompt_tokens <= context - 16
    empty = pack("When do tides come?", [], generator, max_tokens=16, budget=budget)
    assert packed.prompt_tokens - empty.prompt_tokens <= budget
    assert [s.number for s in packed.shown] == list(range(1, len(packed.shown) + 1))
    assert packed.messages[0].content == SYSTEM_PROMPT  # fixed first: its KV prefix is reused


def test_packing_puts_the_best_passage_first(kb: KnowledgeBase) -> None:
    packed = pack(ESPRESSO_Q, _passages(kb, ESPRESSO_Q), FakeGenerator(), max_tokens=64)
    assert packed.shown[0].passage.hit.path.endswith("espresso.txt")
    assert "[1] " in packed.messages[1].content and ESPRESSO_Q in packed.messages[1].content


def test_a_question_too_long_for_the_context_names_the_counts(kb: KnowledgeBase) -> None:
    generator = FakeGenerator(context_length=120)
    with pytest.raises(ContextTooLong, match=r"take \d+ tokens.*120-token context"):
        ask(kb, generator, "why " * 100, decoding=Decoding(max_tokens=32))
    assert generator.calls == []


# --- refusing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [REFUSAL, "I don't know.", "The passages do not mention the painter.", "I cannot answer."],
)
def test_refusal_phrases_are_recognised(text: str) -> None:
    assert is_refusal(text)


def test_weak_evidence_refuses_without_calling_the_model(kb: KnowledgeBase) -> None:
    generator = FakeGenerator(["Leonardo da Vinci painted it [1]."])
    answer = ask(kb, generator, "Who painted the Mona Lisa?")
    assert not answer.answered
    assert answer.text == NOT_IN_DOCUMENTS
    assert "weak retrieval evidence" in answer.reason
    assert answer.passages and answer.citations == ()
    assert generator.calls == []


@pytest.fixture
def no_quoting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse whatever the evidence: the quoting fallback is tested on its own."""
    monkeypatch.setattr("askdocs.answer.pipeline._quote_instead", lambda *args: None)


def test_the_models_refusal_is_a_refusal(kb: KnowledgeBase, no_quoting: None) -> None:
    answer = ask(kb, FakeGenerator([REFUSAL]), ESPRESSO_Q)
    assert not answer.answered and answer.draft == REFUSAL
    assert answer.reason == "the model found no answer in the passages"
    assert answer.passages[0].path.endswith("espresso.txt")


def test_a_refusal_against_strong_evidence_quotes_the_passages(kb: KnowledgeBase) -> None:
    answer = ask(kb, FakeGenerator([REFUSAL]), ESPRESSO_Q)
    assert answer.evidence >= QUOTE_EVIDENCE
    assert answer.answered and answer.mode == "extractive" and answer.draft == REFUSAL
    assert "quoting the passages" in answer.note
    assert answer.citations and all(s.supported for s in answer.sentences)
    assert "citric acid" in answer.text.lower()


def test_an_answer_no_passage_supports_is_refused(kb: KnowledgeBase, no_quoting: None) -> None:
    answer = ask(kb, FakeGenerator([INVENTED]), ESPRESSO_Q)
    assert not answer.answered
    assert "no sentence" in answer.reason
    assert answer.sentences and not answer.sentences[0].supported


def test_an_answer_that_only_repeats_the_question_is_refused(
    kb: KnowledgeBase, no_quoting: None
) -> None:
    question = "Which acid do I dissolve in warm water to descale an espresso machine?"
    answer = ask(kb, FakeGenerator(["acid [1]"]), question)
    assert not answer.answered and "no sentence" in answer.reason
    assert answer.sentences[0].problems == ("only repeats words of the question",)
    assert ask(kb, FakeGenerator(["citric acid [1]"]), question).answered


# --- the generative path ---------------------------------------------------------------------


def test_stream_yields_passages_then_tokens_then_the_checked_answer(kb: KnowledgeBase) -> None:
    events = list(stream_answer(kb, FakeGenerator([GROUNDED]), ESPRESSO_Q))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Final)
    assert all(isinstance(e, Token) for e in events[1:-1])
    answer = events[-1].answer
    assert "".join(e.text for e in events[1:-1]) == answer.draft == GROUNDED
    assert answer.answered and answer.text == GROUNDED
    [cited] = answer.citations
    assert cited.number == 1 and cited.path.endswith("espresso.txt")
    [sentence] = answer.sentences
    assert sentence.supported and sentence.evidence is not None
    assert answer.tokens["prompt"] > 0 and answer.timings["time_to_first_token"] > 0
    assert events[0].passages == answer.passages


def test_citation_spans_point_at_the_documents_text(kb: KnowledgeBase, docs_store: Path) -> None:
    answer = ask(kb, FakeGenerator([GROUNDED]), ESPRESSO_Q)
    docs = docs_store.parent / "docs"
    for c in answer.passages:
        text = read(docs / Path(c.path).relative_to(docs)).text
        for start, end in c.spans:
            assert text[start:end] in c.text
        assert text[c.start : c.end].startswith(text[c.spans[0][0] : c.spans[0][1]])
    number, start, end = answer.sentences[0].evidence
    text = read(answer.passages[number - 1].path).text
    assert text[start:end] in answer.passages[number - 1].text


def test_strict_drops_unsupported_sentences_and_bad_citations(kb: KnowledgeBase) -> None:
    reply = f"{GROUNDED} {INVENTED} Rinse twice with fresh water [1, 9]."
    loose = ask(kb, FakeGenerator([reply]), ESPRESSO_Q)
    strict = ask(kb, FakeGenerator([reply]), ESPRESSO_Q, strict=True)
    assert loose.answered and strict.answered
    assert loose.text == reply
    flags = [p for s in loose.sentences for p in s.problems]
    assert any("not supported" in p for p in flags)
    assert "cites [9], which does not exist" in flags
    assert "paint" not in strict.text and "[9]" not in strict.text
    assert strict.text == f"{GROUNDED} Rinse twice with fresh water [1]."


def test_the_checker_adds_a_missing_citation(kb: KnowledgeBase) -> None:
    reply = "Dissolve citric acid in warm water and pour it into the reservoir."
    answer = ask(kb, FakeGenerator([reply]), ESPRESSO_Q)
    assert answer.answered
    assert answer.text == reply[:-1] + " [1]."
    assert answer.sentences[0].added == (1,)
    assert "added by the citation checker" in answer.sentences[0].problems[0]


def test_structured_output_is_validated_against_the_schema(kb: KnowledgeBase) -> None:
    schema = {
        "type": "object",
        "properties": {"acid": {"type": "string"}},
        "required": ["acid"],
    }
    generator = FakeGenerator(['{"acid": "citric acid"}'])
    answer = ask(kb, generator, ESPRESSO_Q, json_schema=schema)
    assert answer.mode == "structured" and answer.data == {"acid": "citric acid"}
    assert generator.schemas == [schema]
    [value] = answer.sentences  # string values are checked like uncited sentences
    assert value.text == "citric acid" and value.supported and value.added == (1,)
    assert answer.text[value.start : value.end] == "citric acid"
    assert answer.citations[0].path.endswith("espresso.txt")
    invented = ask(kb, FakeGenerator(['{"acid": "sulphuric"}']), ESPRESSO_Q, json_schema=schema)
    assert invented.sentences[0].problems == ("not supported by any passage",)
    assert invented.citations == ()
    with pytest.raises(AskdocsError, match="not valid against the schema"):
        ask(kb, FakeGenerator(['{"acid": 3}']), ESPRESSO_Q, json_schema=schema)
    with pytest.raises(ConfigError, match="invalid JSON schema"):
        ask(kb, generator, ESPRESSO_Q, json_schema={"type": "no-such-type"})


# --- extractive ------------------------------------------------------------------------------


def test_extractive_answer_quotes_the_documents(kb: KnowledgeBase) -> None:
    ask(kb, None, "What causes tides?", extractive=True)  # warm the sentence cache
    answer = ask(kb, FakeGenerator(["unused"]), ESPRESSO_Q, extractive=True)
    assert answer.answered and answer.mode == "extractive"
    assert answer.citations[0].path.endswith("espresso.txt")
    for s in answer.sentences:
        number, start, end = s.evidence
        text = read(answer.passages[number - 1].path).text
        assert text[start:end].rstrip(".") in s.text
    assert "citric acid" in answer.text
    assert answer.timings["total"] < 5.0  # well under a second on an idle machine


# --- conversation ----------------------------------------------------------------------------


def test_needs_context() -> None:
    assert needs_context("What acid does it need?")
    assert needs_context("And neap tides?")
    assert not needs_context("How do I descale an espresso machine?")


def test_follow_up_rewritten_without_a_generator(kb: KnowledgeBase) -> None:
    chat = Conversation(kb, None, window=1)
    chat.ask(ESPRESSO_Q)
    answer = chat.ask("What do I dissolve in the water for it?")
    assert chat.turns[-1].query.startswith("descale espresso machine")
    assert answer.answered and answer.citations[0].path.endswith("espresso.txt")
    assert "Asked: How do I descale" in chat.summary  # the first turn left the window
    chat.reset()
    assert chat.turns == [] and chat.summary == ""


def test_follow_up_rewritten_by_the_generator(kb: KnowledgeBase) -> None:
    generator = FakeGenerator([GROUNDED, "Which acid descales an espresso machine?", GROUNDED])
    chat = Conversation(kb, generator)
    chat.ask(ESPRESSO_Q)
    chat.ask("Which acid does it need?")
    assert chat.turns[-1].query == "Which acid descales an espresso machine?"
    assert generator.calls[1][0].content == REWRITE_PROMPT
    assert ESPRESSO_Q in generator.calls[1][1].content  # the history is in the rewrite prompt
    assert "Which acid descales" in generator.calls[2][1].content  # retrieval used the rewrite


# --- evaluation and the command line ---------------------------------------------------------

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Espresso",
            "paragraphs": [
                {
                    "context": "Limescale builds up in the boiler when the water is hard. "
                    "Citric acid dissolves limescale.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What dissolves limescale in an espresso boiler?",
                            "answers": [{"text": "Citric acid", "answer_start": 58}],
                        }
                    ],
                }
            ],
        },
        {
            "title": "Volcanoes",
            "paragraphs": [
                {
                    "context": "Vesuvius buried Pompeii and Herculaneum in the year 79.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "In what year did Vesuvius bury Pompeii?",
                            "answers": [{"text": "79", "answer_start": 52}],
                        }
                    ],
                }
            ],
        },
    ],
}


def test_squad_normalisation_and_f1() -> None:
    assert normalize_answer("The Citric-acid!") == "citricacid"
    assert token_f1("the citric acid", ["Citric acid"]) == 1.0
    assert token_f1("citric acid solution", ["citric acid"]) == pytest.approx(0.8)


def test_eval_answers_extractive(make_kb: MakeKb, tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    kb = make_kb(tmp_path / "eval-store")
    result = evaluate_answers(kb, None, path)
    assert result.questions == 2 and result.mode == "extractive"
    m = result.metrics
    assert m["answered"] == 100.0 and m["false_refusal"] == 0.0
    assert m["citation_accuracy"] == 100.0 and m["evidence_accuracy"] == 100.0
    assert m["correct_refusal"] == 100.0  # each article's question alone in the other's store
    assert 0 < m["f1"] <= 100
    assert sorted([d.path for d in kb.documents()]) == [
        "squad://000/000",
        "squad://001/000",
    ]  # re-added


def test_cli_ask_extractive_json(docs_store: Path) -> None:
    result = CliRunner().invoke(
        main, ["ask", ESPRESSO_Q, "--extractive", "--json", "--store", str(docs_store)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["answered"] and data["citations"][0]["spans"]
    assert {"support", "supported", "problems"} <= set(data["sentences"][0])


def test_cli_chat_reads_stdin(docs_store: Path) -> None:
    lines = f"{ESPRESSO_Q}\nWhat do I dissolve in the water for it?\n/sources\n/reset\n/quit\n"
    result = CliRunner().invoke(
        main, ["chat", "--extractive", "--store", str(docs_store)], input=lines
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Sources:") == 2
    assert "(searched for: descale espresso machine: What do I dissolve" in result.output
    assert "(conversation cleared)" in result.output


def test_generated_answers_are_held_to_a_cited_phrase(kb: KnowledgeBase) -> None:
    from llama_cpp import LlamaGrammar

    generator = FakeGenerator(["Run citric acid through the machine [1]."])
    answer = ask(kb, generator, "How do I descale the coffee maker?", style="short")
    (grammar,) = generator.grammars
    assert grammar == answer_grammar(len(answer.passages))
    LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp parses it
    full = FakeGenerator(["Run citric acid through the machine [1]. Rinse it twice [1]."])
    answer = ask(kb, full, "How do I descale the coffee maker?", style="full")
    (grammar,) = full.grammars
    assert grammar == full_grammar(len(answer.passages))
    LlamaGrammar.from_string(grammar, verbose=False)
    structured = FakeGenerator(['{"steps": "citric acid"}'])
    schema = {"type": "object", "properties": {"steps": {"type": "string"}}}
    ask(kb, structured, "How do I descale the coffee maker?", json_schema=schema)
    assert structured.grammars == [None]  # the schema's own grammar applies instead


def test_a_sentence_two_overlapping_chunks_share_is_quoted_once(kb: KnowledgeBase) -> None:
    from dataclasses import replace

    from askdocs.answer.pipeline import quoted

    hits = kb.search(ESPRESSO_Q, k=1)
    twin = replace(hits[0], chunk_id=hits[0].chunk_id + 10_000)  # the overlap of a neighbour
    passages = score_passages(ESPRESSO_Q, [hits[0], twin], embedding_cache(kb.embedder), Analyzer())
    answer = quoted(ESPRESSO_Q, passages, 0.9)
    texts = [s.text.rsplit(" [", 1)[0] for s in answer.sentences]
    assert texts and len(texts) == len(set(texts))


def test_a_short_list_item_is_shown_whole_and_scored_as_its_best_sentence(
    embedder: MiniLMEmbedder,
) -> None:
    item = (
        "2. Add the garlic, cumin and paprika and stir. Spices burn quickly, so keep them moving."
    )
    text = f"METHOD\n1. Heat the oil.\n{item}\n3. Add the lentils."
    analyzer = Analyzer()
    cache = EmbeddingCache(embedder)
    question = "Which spices go into the lentil soup?"
    (passage,) = score_passages(question, [_hit(text)], cache, analyzer)
    assert [s.text for s in passage.sentences] == ["1. Heat the oil.", item, "3. Add the lentils."]
    # The item scores as its best sentence alone would.
    apart = item.replace(" Spices", "\n\nSpices")
    (single,) = score_passages(question, [_hit(f"METHOD\n{apart}")], cache, analyzer)
    assert len(single.sentences) == 2
    best = max(s.score for s in single.sentences)
    assert passage.sentences[1].score == pytest.approx(best, abs=1e-5)
    assert passage.vectors.shape == (3, embedder.dim)
    # A long item keeps its sentences apart.
    long_item = "- " + "Stir the pot well. " * 20
    (long,) = score_passages(question, [_hit(long_item)], cache, analyzer)
    assert len(long.sentences) == 20


def test_coverage_matches_degrees_of_an_adjective() -> None:
    analyzer = Analyzer()
    terms = set(analyzer.tokens("Why does starting to save early matter?"))
    sentence = "Starting ten years earlier matters more than any other choice."
    assert coverage(terms, sentence, analyzer) == pytest.approx(3 / len(terms))
    assert coverage({"larg"}, "the largest city", analyzer) == 1.0
    assert coverage({"water"}, "the wat temple", analyzer) == 1.0  # a known, harmless overlap


def _hit(text: str) -> Hit:
    return Hit(1, text, "/home/soup.txt", "Lentil soup", "txt", 0, len(text), None, None, 1.0)


def test_the_examples_in_the_answer_sides_docs_hold() -> None:
    import doctest

    from askdocs import citations, extractive, text
    from askdocs.answer import checks, lists, quantities, rates

    for module in (citations, extractive, text, checks, lists, quantities, rates):
        assert doctest.testmod(module).failed == 0, module.__name__
