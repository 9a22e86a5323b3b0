"""The askdocs routes: health, search, ask, passages, documents and upload jobs.

GET    /health                   counts and the generator's state; never needs the token
POST   /search                   {"hits": [Hit as a dict, ...]}  (like `askdocs search --json`)
POST   /ask                      Answer as a dict (like `askdocs ask --json`); with
                                 "stream": true, SSE: passages, token*, final (or error)
GET    /passages/{chunk_id}      a chunk with the text around it (?context=600 characters
                                 each side), to show a cited span in place
GET    /documents                {"documents": [...]}
POST   /documents                multipart `files` -> 202 {"job_id"}; ingested in background;
                                 a file that fails to ingest is reported by its job, not kept
GET    /jobs/{job_id}            an upload job's state and report
DELETE /documents?path=P         forget the stored document P -> {"removed": n} (404: none)
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from askdocs.answer import AskOptions, K
from askdocs.conversation import standalone_query
from askdocs.generation import Decoding, decoding_from
from askdocs.retrieval import Filters
from askdocs.server import schemas
from askdocs.server.jobs import is_upload, save_upload, suffix_kind, uploads_dir
from askdocs.server.state import ServerState
from askdocs.server.streaming import (
    AskParams,
    EventStream,
    ask_sse,
    final_answer,
    load_generator,
    unless_disconnected,
)

MAX_CONTEXT = 5000

public = APIRouter()
router = APIRouter()


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.askdocs
    return state


State = Annotated[ServerState, Depends(get_state)]


@public.get("/health", response_model=schemas.HealthOut)
def health(state: State) -> dict[str, Any]:
    status = state.kb.status(verify=False)  # verifying compares every chunk id
    documents, chunks = status.documents, status.chunks
    return {
        "status": "ok",
        "documents": documents,
        "chunks": chunks,
        "generator": state.model.status,
        "auth": bool(state.settings.server.token),
    }


def to_filters(given: schemas.FiltersIn | None) -> Filters | None:
    if given is None:
        return None
    tags = tuple((given.tags or {}).items())
    return Filters(given.path_glob or None, tuple(given.kinds or ()), tags)


@router.post("/search", response_model=schemas.SearchOut)
def search(body: schemas.SearchIn, state: State) -> dict[str, Any]:
    hits = state.kb.search(body.query, k=body.k, mode=body.mode, filters=to_filters(body.filters))
    return {"hits": [dataclasses.asdict(hit) for hit in hits]}


def to_decoding(state: ServerState, given: schemas.DecodingIn | None) -> Decoding:
    changes = given.model_dump(exclude_none=True) if given else {}
    if "stop" in changes:
        changes["stop"] = tuple(changes["stop"])
    return decoding_from(state.settings.generation, **changes)


@router.post(
    "/ask",
    responses={
        200: {"content": {"text/event-stream": {}}},
        413: {"model": schemas.ErrorOut, "description": "The question does not fit the model"},
        503: {"model": schemas.ErrorOut, "description": "The model could not be loaded"},
    },
)
async def ask(body: schemas.AskIn, state: State, request: Request) -> Any:
    options = AskOptions(
        style=body.style, hops=body.hops, rerank=body.rerank, k=body.k or K, mode=body.mode,
        filters=to_filters(body.filters), strict=body.strict, extractive=body.extractive,
        decoding=to_decoding(state, body.decoding),
    )  # fmt: skip
    params = AskParams(standalone_query(body.question, body.history), options)
    if body.stream:
        generator = await load_generator(state, params)
        return EventStream(ask_sse(state, generator, params))
    answer = await unless_disconnected(request, lambda: final_answer(state, params))
    if answer is None:  # nobody is listening any more
        return Response(status_code=499)
    return JSONResponse(dataclasses.asdict(answer))


@router.get(
    "/passages/{chunk_id}",
    response_model=schemas.PassageOut,
    responses={404: {"model": schemas.ErrorOut}},
)
def passage(
    chunk_id: int, state: State, context: Annotated[int, Query(ge=0, le=MAX_CONTEXT)] = 600
) -> Any:
    found = state.kb.passage(chunk_id) if 0 <= chunk_id < 2**63 else None
    if found is None:
        return JSONResponse({"error": f"no passage {chunk_id}", "type": "NotFound"}, 404)
    record, text = found
    start, end = max(0, record.start - context), min(len(text), record.end + context)
    return {
        "chunk_id": chunk_id, "text": record.text, "path": record.paths[0] if record.paths else "",
        "paths": list(record.paths), "title": record.title, "kind": record.kind,
        "page": record.page, "heading": record.heading, "start": record.start,
        "end": record.end, "context": {"text": text[start:end], "start": start, "end": end},
    }  # fmt: skip


@router.get("/documents", response_model=schemas.DocumentsOut)
def documents(state: State) -> dict[str, Any]:
    return {"documents": [dataclasses.asdict(d) for d in state.kb.documents()]}


def _check_uploads(state: ServerState, files: list[UploadFile]) -> None:
    limits = state.settings.server
    if len(files) > limits.max_files:
        raise HTTPException(413, f"at most {limits.max_files} files per upload")
    allowed = {k.lower().lstrip(".") for k in limits.kinds}
    for upload in files:
        kind = suffix_kind(upload.filename or "")
        if kind not in allowed:
            raise HTTPException(
                415, f"{kind or 'no'} files are not accepted; send {', '.join(sorted(allowed))}"
            )
        if upload.size is not None and upload.size > limits.max_upload_mb * 1e6:
            raise HTTPException(413, f"each file may hold at most {limits.max_upload_mb:g} MB")


@router.post(
    "/documents",
    status_code=202,
    response_model=schemas.JobAccepted,
    responses={413: {"model": schemas.ErrorOut}, 415: {"model": schemas.ErrorOut}},
)
async def upload(state: State, files: Annotated[list[UploadFile], File()]) -> dict[str, str]:
    _check_uploads(state, files)
    uploads = uploads_dir(state.settings)

    def save_all() -> list[Path]:
        saved: list[Path] = []
        try:
            for upload in files:
                saved.append(save_upload(uploads, upload.filename or "", upload.file))
        except BaseException:  # e.g. a full disk: keep no unlisted part of this upload
            for path in saved:
                shutil.rmtree(path.parent, ignore_errors=True)
            raise
        return saved

    paths = await anyio.to_thread.run_sync(save_all)
    return {"job_id": state.jobs.submit(paths)}


@router.get(
    "/jobs/{job_id}", response_model=schemas.JobOut, responses={404: {"model": schemas.ErrorOut}}
)
def job(job_id: str, state: State) -> Any:
    found = state.jobs.get(job_id)
    if found is None:
        return JSONResponse({"error": f"no job {job_id}", "type": "NotFound"}, 404)
    return found


@router.delete(
    "/documents", response_model=schemas.RemovedOut, responses={404: {"model": schemas.ErrorOut}}
)
def delete_document(
    state: State, path: Annotated[str, Query(min_length=1, max_length=4096)]
) -> Response | dict[str, int]:
    # Only an exact stored path: a directory prefix here would be a mass delete.
    removed = state.kb.remove([path], exact=True)
    if not removed:
        return JSONResponse({"error": f"no stored document {path}", "type": "NotFound"}, 404)
    uploads = uploads_dir(state.settings)
    if is_upload(path, uploads):  # the server's own copy goes too
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    return {"removed": removed}
