"""Request and response bodies of the HTTP API: pydantic lives here and nowhere else.

Bounds are part of the contract: anything outside them is a 422 before any work is done.
Every number must be finite (JSON parsers accept `NaN`) and every string valid Unicode (a
JSON `\\ud800` escape without its pair decodes to a lone surrogate, which no tokenizer,
database or response can take).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def encodable(text: str) -> str:
    """`text` if it is valid Unicode; a lone surrogate is a ValueError (a 422)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"not valid Unicode: a lone surrogate at character {exc.start} "
            "(a JSON \\uD800-\\uDFFF escape must be one of a pair)"
        ) from None
    return text


Text = Annotated[str, AfterValidator(encodable)]
Mode = Literal["hybrid", "dense", "keyword"]
MAX_QUERY_CHARS = 4000
MAX_EMBED_INPUTS = 256
MAX_EMBED_CHARS = 20_000
Stop = Annotated[Text, Field(min_length=1, max_length=64)]
EmbedText = Annotated[Text, Field(max_length=MAX_EMBED_CHARS)]

# no `true` for an int, no "5" for a number, no NaN or infinity
STRICT = ConfigDict(strict=True, allow_inf_nan=False)
LENIENT = ConfigDict(extra="allow", allow_inf_nan=False)  # OpenAI's bodies: extras ignored


class FiltersIn(BaseModel):
    model_config = STRICT
    path_glob: Text | None = Field(default=None, max_length=500)
    kinds: list[Annotated[Text, Field(max_length=16)]] | None = Field(default=None, max_length=20)
    # every tag must hold: {"topic": "3", "label": "invoice"}
    tags: (
        dict[
            Annotated[Text, Field(min_length=1, max_length=100)],
            Annotated[Text, Field(max_length=500)],
        ]
        | None
    ) = Field(default=None, max_length=20)


class SearchIn(BaseModel):
    model_config = STRICT
    query: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    mode: Mode | None = None
    k: int | None = Field(default=None, ge=1, le=100)
    filters: FiltersIn | None = None


class DecodingIn(BaseModel):
    """Unset fields keep the configured defaults."""

    model_config = STRICT

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_k: int | None = Field(default=None, ge=0, le=1000)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=2048)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=10.0)
    stop: list[Stop] | None = Field(default=None, max_length=8)


class AskIn(BaseModel):
    model_config = STRICT
    question: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    # The conversation so far: earlier questions as they were searched for, most recent last.
    # A follow-up ("And when was it built?") is made standalone from them before retrieval.
    history: list[Annotated[Text, Field(max_length=MAX_QUERY_CHARS)]] = Field(
        default_factory=list, max_length=50
    )
    style: Literal["auto", "short", "full"] = "auto"
    hops: int | None = Field(default=None, ge=1, le=2)  # None: by the question
    rerank: bool | None = None  # None: as `settings.rerank` says
    mode: Mode | None = None
    k: int | None = Field(default=None, ge=1, le=50)
    filters: FiltersIn | None = None
    strict: bool = False
    extractive: bool = False
    stream: bool = False
    decoding: DecodingIn | None = None


class SearchOut(BaseModel):
    hits: list[dict[str, Any]]


class HealthOut(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int
    generator: Literal["ready", "not loaded", "unavailable"]
    auth: bool  # whether the other routes need `Authorization: Bearer <token>`


class DocumentOut(BaseModel):
    path: str
    title: str
    kind: str
    chunks: int
    size: int
    added_at: float
    updated_at: float


class DocumentsOut(BaseModel):
    documents: list[DocumentOut]


class JobAccepted(BaseModel):
    job_id: str


class FailureOut(BaseModel):
    path: str
    reason: str


class ReportOut(BaseModel):
    added: int
    updated: int
    unchanged: int
    removed: int
    failed: list[FailureOut]
    chunks: int
    embedded: int
    seconds: float


class JobOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    files: int
    done_files: int
    chunks: int
    report: ReportOut | None
    error: str | None


class RemovedOut(BaseModel):
    removed: int


class ContextOut(BaseModel):
    text: str
    start: int  # document offset of text[0]
    end: int


class PassageOut(BaseModel):
    chunk_id: int
    text: str
    path: str
    paths: list[str]
    title: str
    kind: str
    page: int | None
    heading: str | None
    start: int
    end: int
    context: ContextOut


class ErrorOut(BaseModel):
    error: str
    type: str


# --- OpenAI-compatible ------------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = LENIENT
    type: Text
    text: Text | None = None


class ChatMessageIn(BaseModel):
    model_config = LENIENT
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: Text | list[ContentPart] | None = Field(default=None)


class ChatIn(BaseModel):
    """OpenAI's chat request; fields askdocs has no use for are accepted and ignored."""

    model_config = LENIENT
    model: Text = Field(max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=2048)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=2048)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    stop: Stop | list[Stop] | None = Field(default=None, max_length=8)
    style: Literal["auto", "short", "full"] = "auto"  # askdocs' own: the answer's form


class EmbeddingsIn(BaseModel):
    model_config = LENIENT
    input: EmbedText | list[EmbedText] = Field(min_length=1, max_length=MAX_EMBED_INPUTS)
    model: Text = Field(default="", max_length=200)
    encoding_format: Literal["float", "base64"] = "float"


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "askdocs"


class ModelsOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
