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
    try:
        settings = config.load({"store": store, **overrides})
        with KnowledgeBase.open(settings, create=create) as kb:
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


def _print_report(report: IngestReport) -> None:
    click.echo(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"removed {report.removed}, failed {len(report.failed)}; "
        f"{report.chunks} chunks ({report.embedded} embedded) in {report.seconds:.1f} s"
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


@main.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(MODES), default=None, help="Default: hybrid.")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=None, help="Results (10).")
@click.option("--fusion", type=click.Choice(FUSIONS), default=None, help="Hybrid fusion.")
@click.option("--path", "path_glob", default=None, help="Only files matching this glob.")
@click.option("--type", "kinds", multiple=True, help="Only these file types (pdf, md, ...).")
@store_option
@json_option
def search(
    query: str,
    mode: str | None,
    k: int | None,
    fusion: str | None,
    path_glob: str | None,
    kinds: tuple[str, ...],
    store: str | None,
    as_json: bool,
) -> None:
    """Search the store by meaning and keywords."""
    with _open(store, **{"search.fusion": fusion}) as kb:
        hits = kb.search(query, k=k, mode=mode, filters=Filters(path_glob, kinds))
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
    store = store or str(evaluate.default_store(Path(directory)))
    with _open(store, create=True) as kb, _progress_bar(quiet=as_json) as progress:
        result = evaluate.evaluate_retrieval(
            kb, Path(directory), split=split, modes=modes, progress=progress
        )
    if as_json:
        _emit(dataclasses.asdict(result))
        return
    _print_report(result.ingest)
    click.echo(evaluate.format_evaluation(result))
