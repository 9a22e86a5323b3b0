"""Grounded answers from a real packaged GGUF model, greedy, over the tiny sample corpus.

Assertions are about structure (citations resolve, spans point at real text), refusal of an
obviously absent fact, and determinism; never about the wording a model build produces.
The default model (`GenerationSettings().model`) is used when its packages are installed,
else SmolLM2-135M.
"""

from __future__ import annotations

from collections.abc import Iterator

import jsonschema
import pytest

from askdocs import config
from askdocs.answer import Final, Retrieved, Token, ask, stream_answer
from askdocs.errors import ModelLoadError
from askdocs.generation import Decoding
from askdocs.kb import KnowledgeBase
from askdocs.readers import read

pytest.importorskip("llama_cpp", reason="pip install llama-cpp-python==0.3.36")

from askdocs.generation.worker import WorkerGenerator
from tests.conftest import llama_worker

MODELS = (config.GenerationSettings().model, "smollm2-135m")  # the default, else the small one
GREEDY = Decoding(temperature=0.0, max_tokens=48)
TIDES_Q = "When do spring tides come?"


@pytest.fixture(scope="module")
def generator() -> Iterator[WorkerGenerator]:
    for name in MODELS:
        try:
            loaded = llama_worker(name, n_ctx=2048, n_batch=256, n_threads=1)
        except ModelLoadError:
            continue
        yield loaded
        loaded.close()
        return
    pytest.skip(f"none of the packaged models is installed: {', '.join(MODELS)}")


@pytest.fixture
def kb(docs_kb: KnowledgeBase) -> KnowledgeBase:
    return docs_kb


def test_answer_structure_and_spans(kb: KnowledgeBase, generator: WorkerGenerator) -> None:
    events = list(stream_answer(kb, generator, TIDES_Q, decoding=GREEDY))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Final)
    assert all(isinstance(e, Token) for e in events[1:-1])
    answer = events[-1].answer
    assert answer.draft == "".join(e.text for e in events[1:-1])
    assert answer.tokens["prompt"] <= generator.context_length - GREEDY.max_tokens
    numbers = {c.number for c in answer.passages}
    assert answer.passages, "the closest passages are always shown"
    for c in answer.passages:
        text = read(c.path).text
        assert all(text[a:b] in c.text for a, b in c.spans)
    for s in answer.sentences:
        bad = [n for n in s.cites if n not in numbers]
        assert all(f"cites [{n}], which does not exist" in s.problems for n in bad)
    if answer.answered:
        assert {c.number for c in answer.citations} <= numbers
        assert any(s.supported for s in answer.sentences)
    else:
        assert answer.reason


def test_an_absent_fact_is_refused(kb: KnowledgeBase, generator: WorkerGenerator) -> None:
    answer = ask(kb, generator, "Who painted the Mona Lisa?", decoding=GREEDY)
    assert not answer.answered
    assert answer.citations == () and answer.passages


def test_greedy_answers_repeat(kb: KnowledgeBase, generator: WorkerGenerator) -> None:
    first = ask(kb, generator, TIDES_Q, decoding=GREEDY)
    second = ask(kb, generator, TIDES_Q, decoding=GREEDY)
    assert first.draft == second.draft
    assert first.text == second.text
    assert first.sentences == second.sentences


def test_structured_answer_is_valid(kb: KnowledgeBase, generator: WorkerGenerator) -> None:
    schema = {
        "type": "object",
        "properties": {"when": {"type": "string", "maxLength": 60}},
        "required": ["when"],
        "additionalProperties": False,
    }
    answer = ask(kb, generator, TIDES_Q, decoding=Decoding(max_tokens=40), json_schema=schema)
    assert answer.mode == "structured"
    jsonschema.validate(answer.data, schema)
