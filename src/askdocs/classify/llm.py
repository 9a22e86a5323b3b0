"""Classification by the language model, its output held by a grammar to one of the labels.

The task, the labels and the examples come first and are the same for every text, so
llama.cpp's prefix cache evaluates them once; each text then costs its own tokens and the
few of its label. The grammar (GBNF) admits the labels and nothing else, on the local model
and on an OpenAI-compatible server that reads `grammar` (llama.cpp's, llama-cpp-python's).

The score is 1.0: greedy decoding under the grammar gives the model's choice, not a
probability (the label's probability would take the logits of every label token, which
neither backend returns through `Generator`). A label that did not finish within the
token budget, which a grammar-respecting server never produces, is None with score 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from askdocs.classify.types import Prediction
from askdocs.generation import Decoding, Generator, Message

MAX_TEXT_CHARS = 2000  # of each text shown to the model; longer ones are cut
MAX_EXAMPLE_CHARS = 400
SHOTS = 4  # examples per class shown to the model, at most


def grammar(labels: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are the labels.

    >>> grammar(['yes', 'say "no"'])
    'root ::= "yes" | "say \\\\"no\\\\""'
    """
    return "root ::= " + " | ".join(json.dumps(label, ensure_ascii=False) for label in labels)


def pick_examples(
    examples: Sequence[tuple[str, str]], per_class: int = SHOTS
) -> list[tuple[str, str]]:
    """The first `per_class` examples of each label, taking the classes in turn, so that
    no class is always the last one the model saw.

    >>> pick_examples([("a", "x"), ("b", "x"), ("c", "x"), ("d", "y")], 2)
    [('a', 'x'), ('d', 'y'), ('b', 'x')]
    """
    by_label: dict[str, list[tuple[str, str]]] = {}
    for text, label in examples:
        kept = by_label.setdefault(label, [])
        if len(kept) < per_class:
            kept.append((text, label))
    out: list[tuple[str, str]] = []
    for n in range(per_class):
        out += [kept[n] for kept in by_label.values() if n < len(kept)]
    return out


def prompt(
    labels: Sequence[str],
    examples: Sequence[tuple[str, str]] = (),
    descriptions: Sequence[str] | None = None,
) -> list[Message]:
    """The turns every text shares: the task, then each example as a question and answer."""
    named = [
        f"{label} ({about})" if about != label else label
        for label, about in zip(labels, descriptions or labels, strict=True)
    ]
    system = (
        f"Classify the text into exactly one of these labels: {'; '.join(named)}. "
        "Answer with the label only."
    )
    turns = [Message("system", system)]
    for text, label in examples:
        turns += [Message("user", f"Text: {text[:MAX_EXAMPLE_CHARS]}"), Message("assistant", label)]
    return turns


def llm_classify(
    generator: Generator,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    examples: Sequence[tuple[str, str]] = (),
    descriptions: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """The label the model picks for each text, after the `examples` (text, label), which
    are all shown: choose a few with `pick_examples`. `ids` default to the row numbers."""
    if len(labels) < 2:
        raise ValueError("classification needs at least two labels")
    unknown = {label for _, label in examples} - set(labels)
    if unknown:
        raise ValueError(f"example labels not among the labels: {sorted(unknown)[:5]}")
    shared = prompt(labels, examples, descriptions)
    rules = grammar(labels)
    longest = max(generator.count_tokens(label) for label in labels)
    decoding = Decoding(temperature=0.0, max_tokens=longest + 2)
    out = []
    for i, text in enumerate(texts):
        messages = [*shared, Message("user", f"Text: {text[:MAX_TEXT_CHARS]}")]
        answer = "".join(generator.stream(messages, decoding, grammar=rules)).strip()
        label = answer if answer in labels else None
        out.append(Prediction(ids[i] if ids is not None else str(i), label, 1.0 if label else 0.0))
        if progress:
            progress(1)
    return out
