"""Grounded answers: retrieve, pick sentences, pack a prompt, generate, check every citation.

    from askdocs.answer import AskOptions, ask
    answer = ask(kb, generator, "How do I descale the machine?", AskOptions(k=6))
    answer.text        # "Run dissolved citric acid through the machine [1]."
    answer.citations   # the passages cited, with document spans
    answer.sentences   # per sentence: support score, supported?, problems

`stream_answer` yields the same work as events, for a terminal or a server: `Retrieved`
once the prompt is packed, `Token` per generated piece, and one `Final` last.

The package is the pipeline's last stage, in four parts: `options` (how to answer, one frozen
value), `pipeline` (orchestration and events), `packing` (which passages the model sees, the
prompt and the grammar) and `checks` (support, refusal, schema).
"""

from askdocs.answer.checks import (
    EVIDENCE_THRESHOLD,
    NOT_IN_DOCUMENTS,
    final_text,
    is_refusal,
    refusal,
)
from askdocs.answer.events import Event, Final, Retrieved, Token
from askdocs.answer.options import AskOptions, K
from askdocs.answer.packing import (
    PASSAGE_BUDGET,
    REFUSAL,
    SYSTEM_PROMPT,
    answer_grammar,
    candidates,
    citation,
    messages_for,
    pack,
)
from askdocs.answer.pipeline import ask, embedding_cache, stream_answer

__all__ = [
    "EVIDENCE_THRESHOLD",
    "NOT_IN_DOCUMENTS",
    "PASSAGE_BUDGET",
    "REFUSAL",
    "SYSTEM_PROMPT",
    "AskOptions",
    "Event",
    "Final",
    "K",
    "Retrieved",
    "Token",
    "answer_grammar",
    "ask",
    "candidates",
    "citation",
    "embedding_cache",
    "final_text",
    "is_refusal",
    "messages_for",
    "pack",
    "refusal",
    "stream_answer",
]
