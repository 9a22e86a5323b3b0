"""Comparisons of two dates answered in code, over passages and over a small real store."""

from __future__ import annotations

import pytest

from askdocs.answer import AskOptions, Final, ask, stream_answer
from askdocs.answer.compare import Date, asked, compare, winner
from askdocs.answer.compare import _dated as dated
from askdocs.answer.names import about
from askdocs.testing import FakeGenerator
from askdocs.types import Document, Hit
from tests.conftest import MakeKb

FILMS = {
    "Der Wixxer": "Der Wixxer is a 2004 German comedy film directed by Tobi Baumann.",
    "The Butterfly Room": (
        "The Butterfly Room is a 2012 horror film directed by Jonathan Zarantonello."
    ),
    "Her Luck in London": (
        "Her Luck in London is a 1914 British silent drama film directed by Maurice Elvey and "
        "starring A.V. Bramble."
    ),
    "The Death Kiss": (
        "The Death Kiss is a 1932 American mystery film. It was directed by Edwin L. Marin. "
        "The film stars Bela Lugosi."
    ),
}
PEOPLE = {
    "Maurice Elvey": (
        "Maurice Elvey( 11 November 1887 \u2013 28 August 1967) was the most prolific film "
        "director in British history."
    ),
    "Edwin L. Marin": (
        "Edwin L. Marin (February 21, 1899 \u2013 May 2, 1951) was an American film director."
    ),
    "Tobi Baumann": "Tobi Baumann (born 1974) is a German film director.",
    "Jonathan Zarantonello": "Jonathan Zarantonello is an Italian director, born in 1976.",
}


def _hit(n: int, title: str, text: str) -> Hit:
    return Hit(n, text, f"wiki://{n}", title, "txt", 0, len(text), None, None, 1.0)


HITS = [_hit(n, t, x) for n, (t, x) in enumerate({**FILMS, **PEOPLE}.items())]


def _search_nothing(name: str) -> list[Hit]:
    return []


@pytest.mark.parametrize(
    ("question", "earliest", "event", "role"),
    [
        ("Which film came out first, Der Wixxer or The Butterfly Room?", True, "event", None),
        ("Which film was released more recently, A or B?", False, "event", None),
        ("Who was born later, Edwin Sumner or Rene Röthke?", False, "birth", None),
        ("Who is younger, Zhang Lifang or Lalengzama?", False, "birth", None),
        ("Who died first, A or B?", True, "death", None),
        ("Which film has the director who died later, A or B?", False, "death", "director"),
        ("Which film whose director is younger, A or B?", False, "birth", "director"),
        ("Was Ausaf Ali or Steven Perry born first?", True, "birth", None),
        ("Who was born first out of Peter Haslop and Barbara Nawratowicz?", True, "birth", None),
        ("Was Der Wixxer or The Butterfly Room released first?", True, "event", None),
    ],
)
def test_the_question_says_which_date_and_which_order(
    question: str, earliest: bool, event: str, role: str | None
) -> None:
    what = asked(question)
    assert what is not None
    assert (what.earliest, what.event, what.role) == (earliest, event, role)


@pytest.mark.parametrize(
    "question",
    [
        "Which is better, tea or coffee?",  # no order of dates
        "Is it red or blue?",  # no comma before the choices
        "Who came first and last, A or B?",  # both orders
        "Which plant needs more light, a fern or a cactus?",
    ],
)
def test_other_questions_are_not_comparisons_of_dates(question: str) -> None:
    assert asked(question) is None


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ("Maurice Elvey( 11 November 1887 \u2013 28 August 1967) was a director.", "birth",
         Date(1887, 11, 11)),
        ("Maurice Elvey( 11 November 1887 \u2013 28 August 1967) was a director.", "death",
         Date(1967, 8, 28)),
        ("Sky Dayton( born August 8, 1971) is an American entrepreneur.", "birth",
         Date(1971, 8, 8)),
        ("John De Margheriti( born July 1962) is an engineer.", "birth", Date(1962, 7)),
        ("Wisigard (c. 510 - c. 540) was a Frankish Queen.", "death", Date(540)),
        ("Steno (director) Steno, the artistic name of Stefano Vanzina( 19 January 1917 \u2013 "
         "13 March 1988) was an Italian film director.", "birth", Date(1917, 1, 19)),
        ("Jonathan Zarantonello is an Italian director, born in 1976.", "birth", Date(1976)),
        ("He was a painter. He died on 3 May 1901 in Paris.", "death", Date(1901, 5, 3)),
        ("Der Wixxer is a 2004 German comedy film.", "event", Date(2004)),
        # a living person's parenthesis without "born"
        ("José Luis Cuerda Martínez( 18 February 1947 Albacete, Castile- La Mancha) is a "
         "Spanish film director.", "birth", Date(1947, 2, 18)),
        # the source lost the dash between the two dates
        ("Éric Rohmer (21 March 192011 January 2010), was a French film director.", "death",
         Date(2010, 1, 11)),
        # a parenthesis inside the life span
        ("Josef von Báky( 23 March 1902, Zombor, Austria- Hungary( now, Slovakia) \u2013 28 July "
         "1966, Munich, Germany) was a Hungarian filmmaker.", "death", Date(1966, 7, 28)),
    ],
)  # fmt: skip
def test_dates_are_read_from_the_passage(text: str, event: str, expected: Date) -> None:
    found = dated(_hit(0, "", text), event)
    assert found is not None and found[0] == expected


def test_a_passage_without_the_date_gives_none() -> None:
    assert dated(_hit(0, "", "Peter Levin is an American director of film."), "birth") is None


def test_release_dates_are_compared_and_the_earlier_film_wins() -> None:
    result = compare("Which film came out first, Der Wixxer or The Butterfly Room?", HITS,
                     _search_nothing)  # fmt: skip
    assert result is not None
    assert winner(*result).choice == "Der Wixxer"
    result = compare("Which film was released more recently, Der Wixxer or The Butterfly Room?",
                     HITS, _search_nothing)  # fmt: skip
    assert result is not None and winner(*result).choice == "The Butterfly Room"


def test_the_role_is_followed_to_the_person_and_their_dates() -> None:
    question = "Which film has the director who died later, The Death Kiss or Her Luck In London?"
    result = compare(question, HITS, _search_nothing)
    assert result is not None
    what, first, second = result
    assert (first.person, second.person) == ("Edwin L. Marin", "Maurice Elvey")
    assert winner(what, first, second).choice == "Her Luck In London"
    question = "Which film whose director is younger, Der Wixxer or The Butterfly Room?"
    result = compare(question, HITS, _search_nothing)
    assert result is not None and winner(*result).choice == "The Butterfly Room"


def test_a_missing_passage_is_searched_for_by_name() -> None:
    people = [h for h in HITS if h.title in PEOPLE]
    films = [h for h in HITS if h.title in FILMS]
    searched: list[str] = []

    def search(name: str) -> list[Hit]:
        searched.append(name)
        return [h for h in people if h.title == name]

    question = "Which film has the director who died later, The Death Kiss or Her Luck In London?"
    result = compare(question, films, search)
    assert result is not None and winner(*result).choice == "Her Luck In London"
    assert searched == ["Edwin L. Marin", "Maurice Elvey"]


def test_a_missing_date_or_a_tie_leaves_the_question_to_the_model() -> None:
    no_people = [h for h in HITS if h.title in FILMS]
    question = "Which film has the director who died later, The Death Kiss or Her Luck In London?"
    assert compare(question, no_people, _search_nothing) is None
    same_year = [_hit(1, "A", "A is a 1990 film."), _hit(2, "B", "B is a 1990 film.")]
    assert compare("Which film came out first, A or B?", same_year, _search_nothing) is None
    # 1962 against July 1962: the month of the first is unknown, so no order
    people = [_hit(1, "P", "P (born 1962) is a poet."), _hit(2, "Q", "Q (born July 1962) is.")]
    assert compare("Who was born first, P or Q?", people, _search_nothing) is None


def _store(make_kb: MakeKb):
    kb = make_kb()
    texts = {**FILMS, **PEOPLE, "Tides": "Spring tides come after a full or new moon."}
    kb.ingest_documents(
        [Document(f"wiki://{n}", f"{t}\n{x}", t, "txt") for n, (t, x) in enumerate(texts.items())]
    )
    return kb


def test_ask_answers_a_comparison_without_the_model_and_cites_both_dates(
    make_kb: MakeKb,
) -> None:
    kb = _store(make_kb)
    generator = FakeGenerator(["The Death Kiss [1]"])  # would be wrong: must not be asked
    question = "Which film has the director who died later, The Death Kiss or Her Luck In London?"
    events = list(stream_answer(kb, generator, question, AskOptions(style="full")))
    answer = events[-1].answer
    assert isinstance(events[-1], Final) and answer.answered and answer.mode == "compared"
    assert generator.calls == []
    assert answer.text.startswith("Her Luck In London [")
    assert "died on 28 August 1967" in answer.text and "died on 2 May 1951" in answer.text
    cited = {c.title for c in answer.citations}
    assert cited == {"The Death Kiss", "Edwin L. Marin", "Her Luck in London", "Maurice Elvey"}
    for c in answer.citations:  # every citation points at the sentence it was read from
        assert c.text in kb.store.chunk_source(c.chunk_id)[c.start : c.end + 1]
    assert all(s.supported for s in answer.sentences)
    short = ask(kb, generator, question, AskOptions(style="short"))
    assert short.text.split(" [")[0] == "Her Luck In London"


def test_a_comparison_the_code_cannot_settle_goes_to_the_model(make_kb: MakeKb) -> None:
    kb = _store(make_kb)
    generator = FakeGenerator(["Der Wixxer [1]"])
    answer = ask(kb, generator, "Which film is better, Der Wixxer or The Butterfly Room?",
                 AskOptions(style="short"))  # fmt: skip
    assert answer.mode == "generative" and len(generator.calls) == 1


@pytest.mark.parametrize(
    ("title", "film", "person", "said", "question"),
    [
        ("Romeo, Juliet And Darkness",
         "Romeo, Juliet and Darkness is a 1960 Czechoslovak film directed by Jiří Weiss.",
         "Jiří Weiss", "Jiří Weiss (29 March 1913 \u2013 9 April 2004) was a Czech film director.",
         "Which film has the director who died later, {} or Her Luck In London?"),  # 2004 > 1967
        ("Occhio, Malocchio, Prezzemolo E Finocchio",
         "Occhio, malocchio, prezzemolo e finocchio is a 1983 film directed by Sergio Martino.",
         "Sergio Martino", "Sergio Martino( born 19 July 1938) is an Italian film director.",
         "Which film has the director born later, {} or Her Luck In London?"),  # 1938 > 1887
    ],
)  # fmt: skip
def test_a_title_with_commas_is_read_whole(
    title: str, film: str, person: str, said: str, question: str
) -> None:
    hits = [*HITS, _hit(20, film.split(" is a ")[0], film), _hit(21, person, said)]
    result = compare(question.format(title), hits, _search_nothing)
    assert result is not None
    what, first, second = result
    assert what.choices[0] == title and first.person == person
    assert winner(what, first, second).choice == title


def test_the_director_is_read_past_other_credits_and_descriptions() -> None:
    films = {
        "Corazón de criolla": "Corazón de criolla is a 1923 silent Argentine film directed and "
        "written by José A. Ferreyra.",
        "Cannibal Tours": "Cannibal Tours is a 1988 film by Australian director and "
        "cinematographer Dennis O'Rourke.",
    }
    people = {
        "José A. Ferreyra": "José Agustín Ferreyra( 28 August 1889 \u2013 29 January 1943) was "
        "an Argentine film director.",
        "Dennis O'Rourke": "Dennis O'Rourke( 14 February 1945 \u2013 15 June 2013) was an "
        "Australian documentary filmmaker.",
    }
    hits = [_hit(n, t, x) for n, (t, x) in enumerate({**films, **people}.items(), 30)]
    question = "Which film has the director who died first, Corazón De Criolla or Cannibal Tours?"
    result = compare(question, hits, _search_nothing)
    assert result is not None
    _, first, second = result
    assert (first.person, second.person) == ("José A. Ferreyra", "Dennis O'Rourke")
    assert winner(*result).choice == "Corazón De Criolla"


def test_a_person_is_found_without_accents_or_under_another_first_name() -> None:
    film = "I'll Take Sweden is a 1965 comedy film directed by Frederick de Cordova."
    person = (
        "Fred de Cordova\nFrederick Timmins de Cordova( October 27, 1910 \u2013 September "
        "15, 2001) was an American director."
    )
    remake = "Springtime in a Small Town\nSpringtime in a Small Town is a 2002 film."
    hits = [_hit(40, "I'll Take Sweden", film), _hit(41, "x", person), _hit(42, "y", remake),
            *HITS]  # fmt: skip
    question = "Which film has the director who was born later, I'Ll Take Sweden or Der Wixxer?"
    result = compare(question, hits, _search_nothing)
    assert result is not None and result[1].date == Date(1910, 10, 27)
    assert about("Spring In A Small Town", hits) is None
    assert about("Frederick De Cordova", hits) is hits[1]
