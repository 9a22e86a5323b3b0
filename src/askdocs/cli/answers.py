"""Commands that answer: ask, chat, tokens; and serve, the HTTP API and page."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from askdocs import config
from askdocs.cli.common import (
    decoding_of,
    decoding_options,
    emit,
    generator_for,
    hops_option,
    json_option,
    main,
    model_option,
    opened,
    rerank_option,
    store_option,
    style_option,
    tag_option,
)
from askdocs.errors import AskdocsError
from askdocs.retrieval import MODES, Filters


@main.command()
@click.argument("text")
@click.option("--model", default=None, help="Packaged model name or .gguf path (default: config).")
@json_option
def tokens(text: str, model: str | None, as_json: bool) -> None:
    """Show how the LLM's and the embedder's tokenizers split TEXT, with counts."""
    from askdocs.generation import open_generator, split_tokens

    try:
        settings = config.load({"generation.model": model}).generation
        generator = open_generator(settings, config.api_key(settings))
        try:
            splits = split_tokens(text, generator)
        finally:
            generator.close()
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        emit([dataclasses.asdict(split) for split in splits])
        return
    for split in splits:
        click.secho(f"{split.tokenizer}: {split.count} tokens", bold=True)
        click.echo("|".join(split.tokens))


def _stream_to_terminal(events: Iterator[Any], quiet: bool) -> Any:
    """Print generated pieces as they come; return the final, checked answer."""
    from askdocs.answer import Final, Token

    streamed = False
    for event in events:
        if isinstance(event, Token) and not quiet:
            click.echo(event.text, nl=False)
            streamed = True
        elif isinstance(event, Final):
            if streamed:
                click.echo()
            return event.answer, streamed
    raise click.ClickException("the answer stream ended without an answer")


def _print_answer(answer: Any, streamed: bool) -> None:
    if not answer.answered:
        if streamed and answer.draft:
            click.secho("The answer above is withdrawn: the check found it unsupported.",
                        fg="yellow")  # fmt: skip
        click.secho(answer.text, bold=True)
        click.echo(f"({answer.reason})")
        click.secho("Closest passages:", bold=True)
        _print_passages(answer.passages)
        return
    if answer.note:
        click.secho(f"({answer.note})", fg="yellow")
    if not streamed or answer.text != answer.draft:
        click.secho(("Checked answer: " if streamed else "") + answer.text, bold=True)
    click.secho("Sources:", bold=True)
    _print_passages(answer.citations)
    for s in answer.sentences:
        for problem in s.problems:
            click.secho(f'  ! "{s.text}": {problem}', fg="yellow")


def _print_passages(passages: Any) -> None:
    """Title, file, page and the text the answer rests on; offsets and scores are in --json."""
    for c in passages:
        where = c.path + (f", page {c.page}" if c.page else "")
        click.echo(f"[{c.number}] {c.title} — {where}")
        click.echo("    " + " ".join(c.text.split())[:300])


@main.command(name="ask")
@click.argument("question")
@style_option
@hops_option
@rerank_option
@click.option("--extractive", is_flag=True, help="No LLM: quote the best-supported sentences.")
@click.option("--strict", is_flag=True, help="Drop unsupported sentences and bad citations.")
@click.option("--schema", type=click.Path(exists=True, dir_okay=False), help="JSON schema file.")
@click.option("-k", "k", type=click.IntRange(1, 50), default=None, help="Chunks retrieved (4).")
@click.option("--mode", type=click.Choice(MODES), default=None, help="Search mode (hybrid).")
@tag_option
@model_option
@decoding_options
@store_option
@json_option
def ask_command(
    question: str, style: str, hops: int | None, rerank: bool | None, extractive: bool,
    strict: bool, schema: str | None, k: int | None, mode: str | None,
    tags: tuple[tuple[str, str], ...], model: str | None, store: str | None, as_json: bool,
    **flags: Any,
) -> None:  # fmt: skip
    """Answer QUESTION from the store, citing the passages each sentence comes from."""
    from askdocs.answer import AskOptions, stream_answer

    json_schema = json.loads(Path(schema).read_text(encoding="utf-8")) if schema else None
    with (
        opened(store, **{"generation.model": model}) as kb,
        generator_for(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, rerank=rerank, mode=mode, strict=strict, extractive=extractive,
            json_schema=json_schema, decoding=decoding_of(kb.settings, flags),
            filters=Filters(tags=tags) if tags else None,
        ).but(**({"k": k} if k else {}))  # fmt: skip
        events = stream_answer(kb, generator, question, options)
        answer, streamed = _stream_to_terminal(events, quiet=as_json or bool(schema))
    if as_json:
        emit(dataclasses.asdict(answer))
    elif schema:
        emit(answer.data) if answer.answered else _print_answer(answer, streamed)
    else:
        _print_answer(answer, streamed)


@main.command()
@style_option
@hops_option
@click.option("--extractive", is_flag=True, help="No LLM: quote the best-supported sentences.")
@click.option("--strict", is_flag=True, help="Drop unsupported sentences and bad citations.")
@model_option
@decoding_options
@store_option
def chat(
    style: str, hops: int | None, extractive: bool, strict: bool, model: str | None,
    store: str | None, **flags: Any,
) -> None:  # fmt: skip
    """Ask questions in turn; follow-ups may refer to earlier ones. /sources /reset /quit."""
    from askdocs.answer import AskOptions
    from askdocs.conversation import Conversation

    with (
        opened(store, **{"generation.model": model}) as kb,
        generator_for(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, strict=strict, extractive=extractive,
            decoding=decoding_of(kb.settings, flags),
        )  # fmt: skip
        talk = Conversation(kb, generator, options)
        for line in _lines_from_stdin():
            if line in ("/quit", "/exit"):
                break
            if line == "/reset":
                talk.reset()
                click.echo("(conversation cleared)")
            elif line == "/sources":
                last = talk.last
                _print_passages(last.passages if last else ())
            elif line:
                _print_answer(*_stream_to_terminal(talk.stream(line), quiet=False))
                if talk.turns[-1].query != line:
                    click.secho(f"(searched for: {talk.turns[-1].query})", dim=True)


def _lines_from_stdin() -> Iterator[str]:
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo("> ", nl=False)
        line = sys.stdin.readline()
        if not line:
            return
        yield line.strip()


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default 8000.")
@click.option("--token", default=None, help="Bearer token the API requires ($ASKDOCS_API_TOKEN).")
@model_option
@store_option
def serve(
    host: str | None, port: int | None, token: str | None, model: str | None, store: str | None
) -> None:
    """Serve the HTTP API and the web page. Any host but loopback needs a token."""
    from askdocs.server import check_exposure, create_app

    overrides = {"server.host": host, "server.port": port, "server.token": token}
    try:
        settings = config.load({"store": store, "generation.model": model, **overrides})
        check_exposure(settings.server)
        app = create_app(settings)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    import uvicorn

    click.echo(f"askdocs: http://{settings.server.host}:{settings.server.port}/", err=True)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, server_header=False)
