"""Commands over the store: ingest, search, remove, status, doctor, migrate."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from askdocs import config
from askdocs.cli.common import (
    emit,
    json_option,
    main,
    opened,
    rerank_option,
    store_option,
    tag_option,
)
from askdocs.errors import AskdocsError
from askdocs.ingest import IngestReport, Progress
from askdocs.retrieval import FUSIONS, MODES, Filters


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--prune", is_flag=True, help="Also forget files under PATHS that are gone.")
@store_option
@json_option
def ingest(paths: tuple[str, ...], prune: bool, store: str | None, as_json: bool) -> None:
    """Add new and changed files under PATHS to the store (txt, md, html, pdf, docx)."""
    with opened(store, create=True) as kb, progress_bar(quiet=as_json) as progress:
        report = kb.ingest(paths, prune=prune, progress=progress)
    if as_json:
        emit(dataclasses.asdict(report))
    else:
        print_report(report)
    if report.failed:
        sys.exit(1)


_SKIPPED_SHOWN = 10


def print_report(report: IngestReport) -> None:
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
def progress_bar(quiet: bool) -> Iterator[Callable[[Progress], None] | None]:
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


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(MODES), default=None, help="Default: hybrid.")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="Results (10).")
@click.option("--fusion", type=click.Choice(FUSIONS), default=None, help="Hybrid fusion.")
@click.option("--path", "path_glob", default=None, help="Only files matching this glob.")
@click.option("--type", "kinds", multiple=True, help="Only these file types (pdf, md, ...).")
@tag_option
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
    tags: tuple[tuple[str, str], ...],
    rerank: bool | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Search the store by meaning and keywords."""
    filters = Filters(path_glob, kinds, tags)
    with opened(store, **{"search.fusion": fusion}) as kb:
        hits = kb.search(query, k=k, mode=mode, filters=filters, rerank=rerank)
    if as_json:
        emit([dataclasses.asdict(h) for h in hits])
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
    with opened(store) as kb:
        removed = kb.remove(paths)
    emit({"removed": removed}) if as_json else click.echo(f"removed {removed} document(s)")


@main.command()
@store_option
@json_option
def status(store: str | None, as_json: bool) -> None:
    """Counts, size on disk, embedder, and whether the indexes agree with SQLite."""
    with opened(store) as kb:
        s = kb.status()
    if as_json:
        emit(dataclasses.asdict(s))
        return
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.kinds.items())) or "none"
    click.echo(
        f"store      {s.location}\ndocuments  {s.documents} ({kinds})\n"
        f"contents   {s.contents} distinct\nchunks     {s.chunks}\n"
        f"on disk    {s.bytes_on_disk / 1e6:.1f} MB\nembedder   {s.embedder} "
        f"(dim {s.dim})\nvectors    {s.vector_index}\n"
        f"in sync    {'yes' if s.in_sync else 'NO: ' + '; '.join(s.problems)}"
    )
    if s.tags:
        click.echo("tags       " + ", ".join(f"{k} ({n} documents)" for k, n in s.tags.items()))
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
        emit([dataclasses.asdict(c) for c in found])
    else:
        marks = {checks.OK: "ok     ", checks.PROBLEM: "PROBLEM", checks.SKIPPED: "skipped"}
        for c in found:
            click.echo(f"{marks[c.status]}  {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"{'':9}fix: {c.fix}")
    if any(c.status == checks.PROBLEM for c in found):
        sys.exit(1)


@main.command()
@click.option("--from", "source", required=True, metavar="DIR|NAME|URL", help="Store to copy.")
@click.option("--to", "target", required=True, metavar="DIR|NAME|URL", help="Store to fill.")
@json_option
def migrate(source: str, target: str, as_json: bool) -> None:
    """Copy a store to another place or backend (a directory, PostgreSQL) without embedding
    again; run it again to resume. Verified by counts and a checksum at the end."""
    from askdocs.migrate import migrate as copy

    try:
        settings = config.load({"store": source})
        where = config.load({"store": target}).store

        def show(done: int, total: int) -> None:
            if not as_json and sys.stderr.isatty():
                click.echo(f"\rcopied {done}/{total} documents", nl=done == total, err=True)

        report = copy(settings.store, where, index=settings.index, progress=show)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        emit(dataclasses.asdict(report))
        return
    click.echo(
        f"{report.target}: {report.documents} documents, {report.chunks} chunks "
        f"({report.copied} copied now, {report.skipped} already there); "
        f"checksum {report.checksum[:16]} equal to {report.source}'s"
    )
