"""Citation parsing, answer sentence splitting and support scoring (real embedder where it
matters: the support score is about meaning)."""

from __future__ import annotations

import numpy as np
import pytest

from askdocs import citations
from askdocs.citations import (
    Source,
    check,
    combine,
    lexical_support,
    parse_citations,
    remove_markers,
    split_answer,
    strip_citations,
)
from askdocs.embeddings import MiniLMEmbedder


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lake Toma [1].", (1,)),
        ("Both [1, 3].", (1, 3)),
        ("Both [1][2].", (1, 2)),
        ("Both [1] [2] and again [1].", (1, 2)),
        ("Semicolons [2; 4].", (2, 4)),
        ("A range [2-4].", (2, 3, 4)),
        ("Spelled out [Passage 2].", (2,)),
        ("No citation here.", ()),
        ("A list [a] or [x1] is not a citation.", ()),
        ("An absurd range [1-99] is two numbers.", (1, 99)),
    ],
)
def test_parse_citations(text: str, expected: tuple[int, ...]) -> None:
    assert parse_citations(text) == expected


def test_strip_and_remove_markers() -> None:
    assert strip_citations("It rose [1]. It fell [2, 3] sharply.") == "It rose. It fell sharply."
    assert remove_markers("Tall [1, 7]. Old [7].", [7]) == "Tall [1]. Old."


@pytest.mark.parametrize(
    ("text", "sentences", "cites"),
    [
        ("Lake Toma [2]. It is in Switzerland [1, 3].", 2, [(2,), (1, 3)]),
        ("It is 5 km long. [1] [2] Also wide [3].", 2, [(1, 2), (3,)]),
        ("It is 5 km long.[1]", 1, [(1,)]),
        ("Dr. Smith found 3.5 mg [1]. Nothing else.", 2, [(1,), ()]),
        ("[2]", 1, [(2,)]),
        ("", 0, []),
    ],
)
def test_split_answer(text: str, sentences: int, cites: list[tuple[int, ...]]) -> None:
    parts = split_answer(text)
    assert len(parts) == sentences
    assert [p.cites for p in parts] == cites
    for part in parts:  # spans point into the answer
        assert text[part.start : part.end] == part.text


def test_lexical_support_counts_only_content_words() -> None:
    passage = "The Rhine rises in the Swiss Alps at Lake Toma."
    assert lexical_support("It rises at Lake Toma", passage) == 1.0
    assert lexical_support("The river is blue", passage) == 0.0
    assert lexical_support("Yes.", passage) == 0.0


def test_a_country_its_demonym_and_accents_are_the_same_term() -> None:
    assert lexical_support("English", "Edward I was King of England from 1272.") == 1.0
    assert lexical_support("France", "He was a French film director.") == 1.0
    assert lexical_support("USA", "Albert Pyun is an American film director.") == 1.0
    assert lexical_support("Lodz", "A graduate of the National Film School in Łódź.") == 1.0
    # the mapping joins a country with its own names only
    assert lexical_support("Spain", "He was a French film director.") == 0.0


def test_question_terms_weigh_less() -> None:
    """Restating the question is cheap: an invented answer must not pass on those words."""
    passage = "The Rhine rises in the Swiss Alps at Lake Toma."
    question = "Where does the Rhine rise?"
    invented = "The Rhine rises near Geneva in France"
    plain = lexical_support(invented, passage)
    weighted = lexical_support(invented, passage, question=question)
    assert weighted < plain
    assert weighted < 0.3


def test_combine_weights_and_clips() -> None:
    assert combine(1.0, 1.0) == 1.0
    assert combine(0.0, -0.5) == 0.0
    assert combine(1.0, 0.0) == pytest.approx(citations.LEXICAL_WEIGHT)


def _sources(embedder: MiniLMEmbedder, passages: dict[int, list[str]]) -> dict[int, Source]:
    out = {}
    for number, sentences in passages.items():
        spans = tuple((100 * number + i, 100 * number + i + 1) for i in range(len(sentences)))
        out[number] = Source(number, " ".join(sentences), embedder.embed(sentences), spans)
    return out


PASSAGES = {
    1: ["Magma rises through cracks in the crust.", "Vesuvius buried Pompeii in the year 79."],
    2: ["Spring tides come at full moon and new moon, when the Sun and the Moon line up."],
}


def _check(embedder: MiniLMEmbedder, answer: str, question: str = "") -> list:
    parts = split_answer(answer)
    vectors = embedder.embed([p.claim for p in parts]) if parts else np.zeros((0, 384))
    return check(parts, vectors, _sources(embedder, PASSAGES), question=question)


def test_supported_sentence_points_at_its_evidence(embedder: MiniLMEmbedder) -> None:
    [s] = _check(embedder, "Vesuvius buried Pompeii in 79 [1].", "What buried Pompeii?")
    assert s.supported and s.problems == ()
    assert s.support >= citations.SUPPORT_THRESHOLD
    assert s.evidence == (1, 101, 102)  # the second sentence of passage 1


def test_unsupported_and_missing_citations_are_flagged(embedder: MiniLMEmbedder) -> None:
    wrong, missing = _check(
        embedder, "Vesuvius buried Rome in 1066 [2]. The Moon causes tides [7].", "What buried?"
    )
    [bare] = _check(embedder, "[1]")
    assert not wrong.supported
    assert any("not supported" in p for p in wrong.problems)
    assert not missing.supported
    assert "cites [7], which does not exist" in missing.problems
    assert missing.cites == (7,)
    assert not bare.supported  # "[1]" alone claims nothing
    assert bare.problems == ("a citation without a claim",)


def test_checker_adds_a_citation_only_when_clearly_supported(embedder: MiniLMEmbedder) -> None:
    clear, vague = _check(
        embedder,
        "Spring tides come at full moon and new moon. Things happen sometimes.",
    )
    assert clear.added == (2,) and clear.supported
    assert any("added by the citation checker" in p for p in clear.problems)
    assert vague.added == () and not vague.supported
    assert "no citation" in vague.problems


def test_a_wrong_number_is_re_pointed_only_to_a_clear_source(embedder: MiniLMEmbedder) -> None:
    from askdocs.answer import final_text

    answer = "Vesuvius buried Pompeii in the year 79 [2]."
    [moved] = _check(embedder, answer, "What buried Pompeii?")
    assert moved.supported and moved.cites == (2,) and moved.added == (1,)
    assert any("re-pointed to [1]" in p for p in moved.problems)
    assert moved.evidence == (1, 101, 102)
    assert final_text([moved], {1, 2}, strict=False) == answer.replace("[2]", "[1]")
    [kept] = _check(embedder, "Vesuvius buried Rome in 1066 [2].", "What buried?")
    assert not kept.supported and kept.added == ()


def test_a_sentence_takes_the_citation_that_ends_its_paragraph(embedder: MiniLMEmbedder) -> None:
    from askdocs.citations import paragraph_citations

    answer = "Pompeii was buried by Vesuvius in 79. Magma rises through cracks [1].\nTides vary."
    parts = paragraph_citations(answer, split_answer(answer))
    assert [p.cites for p in parts] == [(1,), (1,), ()]  # not across the line break
    assert [p.text for p in parts] == [p.text for p in split_answer(answer)]
    vectors = embedder.embed([p.claim for p in parts])
    first, _, last = check(parts, vectors, _sources(embedder, PASSAGES), question="")
    assert first.supported and first.cites == (1,) and not first.added
    assert not last.supported and "no citation" in last.problems[0]
