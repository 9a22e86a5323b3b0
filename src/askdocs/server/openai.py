"""OpenAI-compatible routes, so any OpenAI client can use askdocs (mounted under /v1).

    POST /v1/chat/completions   the "model" is the askdocs RAG pipeline: `askdocs` (the
                                configured LLM) or `askdocs-extractive` (no LLM)
    POST /v1/embeddings         the packaged embedder; `model` is ignored and answered with
                                the embedder's id
    GET  /v1/models             both pipelines and the embedder

The last user message is the question. Earlier user messages are used only when the
question leans on them ("When was it built?"): it is rewritten with the previous user
message's key terms, `conversation.fallback_rewrite` (no model call); assistant and system
messages are ignored, so every answer stays grounded in the documents alone.

The answer text keeps its `[n]` markers; the response adds a top-level `citations` list (the
cited passages as in /ask) and `askdocs` (answered, reason, mode, timings). Streaming sends
the model's tokens as they come (its draft); the last chunk carries `citations` and, under
`askdocs.text`, the checked answer. When the checker refuses a streamed draft, the refusal
is appended to the streamed content. Decoding: temperature, top_p, max_tokens (or
max_completion_tokens), seed and stop map to `Decoding`; other fields are ignored.
"""

from __future__ import annotations

import base64
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from askdocs.answer import AskOptions, Final, Token
from askdocs.conversation import standalone_query
from askdocs.generation import Generator, decoding_from
from askdocs.server import schemas
from askdocs.server.routes import State
from askdocs.server.state import ServerState
from askdocs.server.streaming import (
    AskParams,
    EventStream,
    answer_events,
    error_data,
    final_answer,
    load_generator,
    sse,
    unless_disconnected,
)
from askdocs.types import Answer

MODELS = {"askdocs": False, "askdocs-extractive": True}  # id -> extractive
router = APIRouter()


def _text(message: schemas.ChatMessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    return " ".join(part.text or "" for part in message.content or () if part.type == "text")


def question_of(messages: list[schemas.ChatMessageIn]) -> str:
    """The last user message, made standalone with the one before it when it needs that."""
    asked = [_text(m) for m in messages if m.role == "user" and _text(m).strip()]
    if not asked:
        raise HTTPException(422, "the messages hold no user question")
    question = " ".join(asked[-1].split())[: schemas.MAX_QUERY_CHARS]
    return standalone_query(question, [q[: schemas.MAX_QUERY_CHARS] for q in asked[:-1]])


def params_of(state: ServerState, body: schemas.ChatIn) -> AskParams:
    if body.model not in MODELS:
        raise HTTPException(404, f"no model {body.model!r}; models: {', '.join(MODELS)}")
    changes: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        if getattr(body, name) is not None:
            changes[name] = getattr(body, name)
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens:
        changes["max_tokens"] = max_tokens
    if body.stop:
        changes["stop"] = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop)
    decoding = decoding_from(state.settings.generation, **changes)
    options = AskOptions(style=body.style, decoding=decoding, extractive=MODELS[body.model])
    return AskParams(question_of(body.messages), options)


def _extras(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "askdocs": {
            "text": answer.text, "answered": answer.answered, "reason": answer.reason,
            "mode": answer.mode, "timings": answer.timings,
        },
    }  # fmt: skip


def _usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.tokens.get("prompt", 0), answer.tokens.get("completion", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@router.post(
    "/chat/completions",
    responses={
        200: {"content": {"text/event-stream": {}}},
        404: {"model": schemas.ErrorOut, "description": "No such model"},
        413: {"model": schemas.ErrorOut},
        503: {"model": schemas.ErrorOut, "description": "The model could not be loaded"},
    },
)
async def chat_completions(body: schemas.ChatIn, state: State, request: Request) -> Any:
    params = params_of(state, body)
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        generator = await load_generator(state, params)
        chunks = _chunks(state, generator, params, reply_id, created, body.model)
        return EventStream(chunks)
    answer = await unless_disconnected(request, lambda: final_answer(state, params))
    if answer is None:  # the client left; its generation was stopped
        return Response(status_code=499)
    message = {"role": "assistant", "content": answer.text}
    return JSONResponse({
        "id": reply_id, "object": "chat.completion", "created": created, "model": body.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(answer), **_extras(answer),
    })  # fmt: skip


async def _chunks(
    state: ServerState,
    generator: Generator | None,
    params: AskParams,
    reply_id: str,
    created: int,
    model: str,
) -> AsyncIterator[str]:
    """`chat.completion.chunk` events, then `data: [DONE]`."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse(None, {
            "id": reply_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [choice], **extra,
        })  # fmt: skip

    yield chunk({"role": "assistant", "content": ""})
    streamed = False
    try:
        async with aclosing(answer_events(state, generator, params)) as events:
            async for event in events:
                if isinstance(event, Token) and event.text:
                    streamed = True
                    yield chunk({"content": event.text})
                elif isinstance(event, Final):
                    for text in _last(event.answer, streamed, chunk):
                        yield text
    except Exception as exc:
        error = error_data(exc)
        yield sse(None, {"error": {"message": error["error"], "type": error["type"]}})
    yield sse(None, "[DONE]")


def _last(answer: Answer, streamed: bool, chunk: Callable[..., str]) -> list[str]:
    """The checked answer's content not yet sent, then the closing chunk."""
    out = []
    if not streamed:
        out.append(chunk({"content": answer.text}))
    elif not answer.answered:  # the draft was refused: say so after it
        out.append(chunk({"content": f"\n\n{answer.text}"}))
    out.append(chunk({}, "stop", usage=_usage(answer), **_extras(answer)))
    return out


@router.post("/embeddings")
async def embeddings(body: schemas.EmbeddingsIn, state: State) -> Any:
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    embedder = state.kb.embedder

    def embed() -> tuple[np.ndarray, int]:
        vectors = embedder.embed(texts, truncate=True)
        return vectors, sum(min(n, embedder.max_tokens) for n in embedder.count_tokens(texts))

    vectors, tokens = await anyio.to_thread.run_sync(embed)
    data = []
    for index, vector in enumerate(vectors.astype("<f4")):
        value: Any = (
            base64.b64encode(vector.tobytes()).decode("ascii")
            if body.encoding_format == "base64"
            else vector.tolist()
        )
        data.append({"object": "embedding", "index": index, "embedding": value})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": embedder.id, "usage": usage}


@router.get("/models", response_model=schemas.ModelsOut)
def models(state: State) -> dict[str, Any]:
    ids = [*MODELS, state.kb.embedder.id]
    return {"object": "list", "data": [{"id": i} for i in ids]}
