"""Classification by the language model, its output held by a grammar to one of the labels.

The labels and any examples go in the system prompt and the first turns, identical for
every text, so llama.cpp's prefix cache evaluates them once; each text then costs its own
tokens and a few generated ones. Greedy decoding under the grammar always yields a label,
so the score is 1.0: the model's choice, not a probability.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from askdocs.classify.types import Prediction
from askdocs.generation import Decoding, Generator, Message

MAX_TEXT_CHARS = 2000  # of each text shown to the model; longer ones are cut
MAX_EXAMPLE_CHARS = 400


def grammar(labels: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are the labels.

    >>> grammar(['yes', 'say "no"'])
    'root ::= "yes" | "say \\\\"no\\\\""'
    """
    return "root ::= " + " | ".join(json.dumps(label, ensure_ascii=False) for label in labels)


def prompt(labels: Sequence[str], examples: Sequence[tuple[str, str]]) -> list[Message]:
    """The turns every text shares: the task, then each example as a question and answer."""
    system = (
        "Classify the text into exactly one of these labels: "
        + "; ".join(labels)
        + ". Answer with the label only."
    )
    turns = [Message("system", system)]
    for text, label in examples:
        turns += [Message("user", f"Text: {text[:MAX_EXAMPLE_CHARS]}"), Message("assistant", label)]
    return turns


def llm_classify(
    generator: Generator,
    ids: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    examples: Sequence[tuple[str, str]] = (),
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    if len(labels) < 2:
        raise ValueError("classification needs at least two labels")
    unknown = {label for _, label in examples} - set(labels)
    if unknown:
        raise ValueError(f"example labels not among the labels: {sorted(unknown)[:5]}")
    shared = prompt(labels, examples)
    rules = grammar(labels)
    longest = max(generator.count_tokens(label) for label in labels)
    decoding = Decoding(temperature=0.0, max_tokens=longest + 2)
    out = []
    for text_id, text in zip(ids, texts, strict=True):
        messages = [*shared, Message("user", f"Text: {text[:MAX_TEXT_CHARS]}")]
        answer = "".join(generator.stream(messages, decoding, grammar=rules)).strip()
        label = answer if answer in labels else None  # a cut-off answer: none of these
        out.append(Prediction(text_id, label, 1.0 if label else 0.0))
        if progress:
            progress(1)
    return out
