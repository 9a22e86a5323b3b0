"""The `askdocs` command: thin wrappers over `KnowledgeBase`, each with `--json`."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from askdocs import config, evaluate
from askdocs.answer.styles import STYLES
from askdocs.errors import AskdocsError
from askdocs.ingest import IngestReport, Progress
from askdocs.kb import KnowledgeBase
from askdocs.retrieval import FUSIONS, MODES, Filters

store_option = click.option(
    "--store",
    "store",
    metavar="DIR|NAME",
    envvar=None,
    help="Store directory, or a name for one in the user data dir "
    "(default: $ASKDOCS_STORE, else the store named 'default').",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@contextmanager
def _open(store: str | None, create: bool = False, **overrides: Any) -> Iterator[KnowledgeBase]:
    """Open the knowledge base; library errors become clean CLI errors."""
    with _open_kb(lambda: config.load({"store": store, **overrides}), create=create) as kb:
        yield kb


@contextmanager
def _open_kb(settings: Callable[[], config.Settings], create: bool) -> Iterator[KnowledgeBase]:
    try:
        with KnowledgeBase.open(settings(), create=create) as kb:
            yield kb
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="askdocs")
def main() -> None:
    """Search and question your own documents, offline."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--prune", is_flag=True, help="Also forget files under PATHS that are gone.")
@store_option
@json_option
def ingest(paths: tuple[str, ...], prune: bool, store: str | None, as_json: bool) -> None:
    """Add new and changed files under PATHS to the store (txt, md, html, pdf, docx)."""
    with _open(store, create=True) as kb, _progress_bar(quiet=as_json) as progress:
        report = kb.ingest(paths, prune=prune, progress=progress)
    if as_json:
        _emit(dataclasses.asdict(report))
    else:
        _print_report(report)
    if report.failed:
        sys.exit(1)


_SKIPPED_SHOWN = 10


def _print_report(report: IngestReport) -> None:
    click.echo(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"removed {report.removed}, failed {len(report.failed)}; "
        f"{report.chunks} chunks ({report.embedded} embedded) in {report.seconds:.1f} s"
    )
    if report.skipped:
        names = [Path(p).name for p in report.skipped[:_SKIPPED_SHOWN]]
        more = len(report.skipped) - len(names)
        click.echo(
            f"skipped {len(report.skipped)} unsupported: {', '.join(names)}"
            + (f" and {more} more (--json lists them all)" if more else "")
        )
    for failure in report.failed:
        click.echo(f"failed: {failure.path}: {failure.reason}", err=True)


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable[[Progress], None] | None]:
    """A bar on a terminal (files, chunks, chunks/s, ETA); nothing when piped or in CI."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(unit="file", file=sys.stderr, dynamic_ncols=True)

    def update(p: Progress) -> None:
        bar.total = p.files_total
        bar.n = p.files_done
        rate = p.chunks / p.elapsed if p.elapsed else 0.0
        bar.set_postfix_str(f"{p.chunks} chunks, {rate:.1f} chunks/s", refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


rerank_option = click.option(
    "--rerank/--no-rerank",
    default=None,
    help="Reorder more candidates with the reranker (default: as configured, off).",
)


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(MODES), default=None, help="Default: hybrid.")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="Results (10).")
@click.option("--fusion", type=click.Choice(FUSIONS), default=None, help="Hybrid fusion.")
@click.option("--path", "path_glob", default=None, help="Only files matching this glob.")
@click.option("--type", "kinds", multiple=True, help="Only these file types (pdf, md, ...).")
@rerank_option
@store_option
@json_option
def search(
    query: str,
    mode: str | None,
    k: int | None,
    fusion: str | None,
    path_glob: str | None,
    kinds: tuple[str, ...],
    rerank: bool | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Search the store by meaning and keywords."""
    with _open(store, **{"search.fusion": fusion}) as kb:
        hits = kb.search(query, k=k, mode=mode, filters=Filters(path_glob, kinds), rerank=rerank)
    if as_json:
        _emit([dataclasses.asdict(h) for h in hits])
        return
    if not hits:
        click.echo("no results")
    for n, hit in enumerate(hits, 1):
        where = f"{hit.path}" + (f" p.{hit.page}" if hit.page else "")
        click.secho(
            f"{n}. {hit.title} — {where} [{hit.start}:{hit.end}] score {hit.score:.4f}", bold=True
        )
        click.echo("   " + " ".join(hit.text.split())[:300])


@main.command()
@click.argument("paths", nargs=-1, required=True)
@store_option
@json_option
def remove(paths: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Forget files (or everything under directories) from the store."""
    with _open(store) as kb:
        removed = kb.remove(paths)
    _emit({"removed": removed}) if as_json else click.echo(f"removed {removed} document(s)")


@main.command()
@store_option
@json_option
def status(store: str | None, as_json: bool) -> None:
    """Counts, size on disk, embedder, and whether the indexes agree with SQLite."""
    with _open(store) as kb:
        s = kb.status()
    if as_json:
        _emit(dataclasses.asdict(s))
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.kinds.items())) or "none"
    click.echo(
        f"store      {s.location}\ndocuments  {s.documents} ({kinds})\n"
        f"contents   {s.contents} distinct\nchunks     {s.chunks}\n"
        f"on disk    {s.bytes_on_disk / 1e6:.1f} MB\nembedder   {s.embedder} "
        f"(dim {s.dim})\nvectors    {s.vector_index}\n"
        f"in sync    {'yes' if s.in_sync else 'NO: ' + '; '.join(s.problems)}"
    )
    for note in s.notes:
        click.echo(f"note       {note}")


@main.command()
@store_option
@click.option("--fresh", is_flag=True, help="Run the llama.cpp self-test again, not cached.")
@json_option
def doctor(store: str | None, fresh: bool, as_json: bool) -> None:
    """Check the install, the CPU, the models, the llama.cpp runtime, the store and the
    server settings; exit 1 when something needs fixing."""
    from askdocs import doctor as checks

    try:
        settings = config.load({"store": store})
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    found = checks.run(settings, fresh=fresh)
    if as_json:
        _emit([dataclasses.asdict(c) for c in found])
    else:
        marks = {checks.OK: "ok     ", checks.PROBLEM: "PROBLEM", checks.SKIPPED: "skipped"}
        for c in found:
            click.echo(f"{marks[c.status]}  {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"{'':9}fix: {c.fix}")
    if any(c.status == checks.PROBLEM for c in found):
        sys.exit(1)


@main.group(name="eval")
def eval_group() -> None:
    """Measure search quality on labelled queries."""


def _split_modes(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in modes if m not in evaluate.EVAL_MODES]
    if unknown or not modes:
        raise click.BadParameter(f"choose from {', '.join(evaluate.EVAL_MODES)}")
    return modes


@eval_group.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to score.")
@click.option(
    "--modes",
    default=",".join(evaluate.EVAL_MODES),
    show_default=True,
    callback=_split_modes,
    help="Comma-separated modes to score.",
)
@click.option("--store", metavar="DIR|NAME", help="Store to use (default: eval-<DIR name>).")
@json_option
def retrieval(
    directory: str, split: str, modes: tuple[str, ...], store: str | None, as_json: bool
) -> None:
    """Score every search mode on a BEIR-format collection in DIRECTORY (corpus.jsonl,
    queries.jsonl, qrels/<split>.tsv): nDCG@10, MAP@100, MRR@10, Recall@10/100, latency."""
    with (
        _open_kb(lambda: evaluate.eval_settings(Path(directory), store), create=True) as kb,
        _progress_bar(quiet=as_json) as progress,
    ):
        result = evaluate.evaluate_retrieval(
            kb, Path(directory), split=split, modes=modes, progress=progress
        )
    if as_json:
        _emit(dataclasses.asdict(result))
        return
    _print_report(result.ingest)
    click.echo(evaluate.format_evaluation(result))


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
        _emit([dataclasses.asdict(split) for split in splits])
        return
    for split in splits:
        click.secho(f"{split.tokenizer}: {split.count} tokens", bold=True)
        click.echo("|".join(split.tokens))


# --- answers ---------------------------------------------------------------------------------

model_option = click.option(
    "--model", default=None, metavar="NAME|PATH", help="Packaged model name or .gguf path."
)


def decoding_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Sampling flags; unset ones keep the configured defaults (greedy unless configured)."""
    options = [
        click.option("--temperature", type=float, help="0 is greedy."),
        click.option("--top-k", "top_k", type=int),
        click.option("--top-p", "top_p", type=float),
        click.option("--repeat-penalty", "repeat_penalty", type=float),
        click.option("--seed", type=int),
        click.option("--max-tokens", "max_tokens", type=click.IntRange(1)),
        click.option("--stop", multiple=True, help="Stop sequence (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _decoding(settings: config.Settings, flags: dict[str, Any]) -> Any:
    from askdocs.generation import decoding_from

    changes = {name: value for name, value in flags.items() if value not in (None, ())}
    if "stop" in changes:
        changes["stop"] = tuple(changes["stop"])
    return decoding_from(settings.generation, **changes)


@contextmanager
def _generator(settings: config.Settings, needed: bool) -> Iterator[Any]:
    """The configured LLM, loaded once for the command; None when no LLM is needed."""
    if not needed:
        yield None
        return
    from askdocs.generation import open_generator

    generator = open_generator(settings.generation, config.api_key(settings.generation))
    try:
        yield generator
    finally:
        generator.close()


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


style_option = click.option(
    "--style",
    type=click.Choice(STYLES),
    default="auto",
    show_default=True,
    help="short: a phrase and its citation; full: cited sentences or steps; auto: by question.",
)


hops_option = click.option(
    "--hops",
    type=click.IntRange(1, 2),
    default=None,
    help="2: search again for the names the first passages add; 1: never (default: when the "
    "question asks about something through another, or compares two).",
)


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
@model_option
@decoding_options
@store_option
@json_option
def ask_command(
    question: str, style: str, hops: int | None, rerank: bool | None, extractive: bool,
    strict: bool, schema: str | None, k: int | None, mode: str | None, model: str | None,
    store: str | None, as_json: bool, **flags: Any,
) -> None:  # fmt: skip
    """Answer QUESTION from the store, citing the passages each sentence comes from."""
    from askdocs.answer import AskOptions, stream_answer

    json_schema = json.loads(Path(schema).read_text(encoding="utf-8")) if schema else None
    with (
        _open(store, **{"generation.model": model}) as kb,
        _generator(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, rerank=rerank, mode=mode, strict=strict, extractive=extractive,
            json_schema=json_schema, decoding=_decoding(kb.settings, flags),
        ).but(**({"k": k} if k else {}))  # fmt: skip
        events = stream_answer(kb, generator, question, options)
        answer, streamed = _stream_to_terminal(events, quiet=as_json or bool(schema))
    if as_json:
        _emit(dataclasses.asdict(answer))
    elif schema:
        _emit(answer.data) if answer.answered else _print_answer(answer, streamed)
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
        _open(store, **{"generation.model": model}) as kb,
        _generator(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, strict=strict, extractive=extractive,
            decoding=_decoding(kb.settings, flags),
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


@eval_group.command()
@click.argument("file", type=click.Path(exists=True))
@click.option("--store", metavar="DIR|NAME", help="Store to use (default: eval-<FILE name>).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Questions, spread evenly.")
@click.option("--extractive", is_flag=True, help="No LLM: score extractive answers.")
@style_option
@hops_option
@click.option("--no-refusals", is_flag=True, help="Skip the round with each article removed.")
@model_option
@decoding_options
@json_option
def answers(
    file: str, store: str | None, limit: int | None, extractive: bool, style: str,
    hops: int | None, no_refusals: bool, model: str | None, as_json: bool, **flags: Any,
) -> None:  # fmt: skip
    """Answer every question of a SQuAD v1.1-format FILE: EM, F1, citation accuracy,
    refusal with each article removed, time to first token, prompt tokens. FILE may also be
    a CLAPnq directory (long-form answers: refusals, ROUGE-L, citation precision)."""
    from askdocs.answer import AskOptions
    from askdocs.evaluate_answers import evaluate_answers, format_answers
    from askdocs.evaluate_longform import evaluate_longform, format_longform

    store = store or str(config.named_store(f"eval-{Path(file).stem}"))
    longform = Path(file).is_dir()
    with (
        _open(store, create=True, **{"generation.model": model}) as kb,
        _generator(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, extractive=extractive, decoding=_decoding(kb.settings, flags)
        )
        if longform:
            result: Any = evaluate_longform(
                kb, generator, Path(file), limit=limit, options=options,
                progress=None if as_json else lambda done, total: _count_progress(
                    "answered", done, total),
            )  # fmt: skip
        else:
            result = evaluate_answers(
                kb, generator, Path(file), limit=limit, options=options,
                refusals=not no_refusals, progress=None if as_json else _count_progress,
            )  # fmt: skip
    if as_json:
        _emit(dataclasses.asdict(result))
        return
    click.echo(format_longform(result) if longform else format_answers(result))


def _count_progress(phase: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\r{phase}: {done}/{total}", nl=done == total, err=True)
