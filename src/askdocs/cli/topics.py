"""`askdocs topics`: the topics of the stored documents, or of the rows of a file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from askdocs import config
from askdocs.cli.common import (
    emit,
    generator_for,
    json_option,
    main,
    opened,
    store_option,
    tag_option,
)
from askdocs.errors import AskdocsError
from askdocs.retrieval import Filters
from askdocs.types import Item


@contextmanager
def stage_bar(shown: bool) -> Iterator[Any]:
    """A tqdm bar on stderr over the stages of `find_topics` (when `shown`)."""
    if not shown:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=100, desc="topics", unit="%", file=sys.stderr, mininterval=0.5) as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.set_description(f"topics: {stage}")
            bar.update(max(0, round(100 * fraction) - bar.n))

        yield progress


@main.command()
@click.argument("source", required=False, metavar="INPUT")
@click.option("--text-column", default=None, help="Column of INPUT holding the text.")
@click.option("--gold-column", default=None, help="Column of INPUT with known classes: score.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same topics.")
@click.option(
    "--min-cluster-size", type=click.IntRange(2), help="Smallest topic (default: by size)."
)
@click.option("--topics", "n_topics", type=click.IntRange(1), help="Merge down to N topics.")
@click.option("--reassign", is_flag=True, help="Put every outlier in a topic.")
@click.option("--reassign-by", type=click.Choice(["centroid", "probabilities"]),
              default="centroid", show_default=True,
              help="The nearest topic centroid, or HDBSCAN's soft membership.")  # fmt: skip
@click.option("--keywords", type=click.IntRange(1, 50), default=10, show_default=True)
@click.option("--diversity", type=click.FloatRange(0, 1), default=0.0, help="MMR over keywords.")
@click.option("--label-with-llm", is_flag=True, help="Name each topic with the language model.")
@click.option("--llm", default=None, metavar="NAME|PATH", help="Language model for the names.")
@click.option("--map", "png", type=click.Path(dir_okay=False), help="Write the map as a PNG.")
@click.option("--html", type=click.Path(dir_okay=False), help="Write an interactive HTML map.")
@click.option("--save/--no-save", default=None, help="Tag the stored documents (default: on).")
@click.option("--path", "path_glob", default=None, help="Store: only files matching this glob.")
@click.option("--type", "kinds", multiple=True, help="Store: only these file types.")
@tag_option
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@store_option
@json_option
def topics(source: str | None, store: str | None, as_json: bool, **o: Any) -> None:
    """Find the topics of the stored documents, or of INPUT (CSV, TSV, JSONL)."""
    from askdocs.topics import TopicOptions

    if source is None and o["gold_column"]:
        raise click.UsageError("--gold-column needs INPUT")
    if source is not None and o["save"]:
        raise click.UsageError("--save keeps the topics of the stored documents: give no INPUT")
    save = source is None and o["save"] is not False
    options = TopicOptions(
        seed=o["seed"], min_cluster_size=o["min_cluster_size"], n_topics=o["n_topics"],
        reassign=o["reassign"], reassign_by=o["reassign_by"], keywords=o["keywords"],
        diversity=o["diversity"], label_with_llm=o["label_with_llm"],
        map=bool(save or o["png"] or o["html"]),  # a saved map is what the web page shows
    )  # fmt: skip
    try:
        result, titles = _run(source, store, options, save, o)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        emit(result)
        return
    _print(result, titles)


def _run(
    source: str | None, store: str | None, options: Any, save: bool, o: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the JSON result, id -> title of each topic's representative texts)."""
    from askdocs.classify.inputs import read_rows
    from askdocs.embeddings import load_embedder
    from askdocs.topics import find_and_save, find_topics, summary
    from askdocs.topics.maps import save_html, save_png

    changes = {"generation.model": o["llm"]} if o["llm"] else {}
    shown = sys.stderr.isatty() if o["progress"] is None else o["progress"]
    with stage_bar(shown) as progress:
        if source is None:
            with opened(store, **changes) as kb:
                filters = Filters(o["path_glob"], tuple(o["kinds"]), o["tags"])
                found = find_and_save(kb, options, filters=filters, progress=progress, save=save)
        else:
            settings = config.load({"store": store, **changes})
            columns = (o["text_column"],) if o["text_column"] else ("text",)
            rows = read_rows(source, text_columns=columns, gold_column=o["gold_column"])
            items = [Item(r.id, r.text, r.text[:80]) for r in rows]
            gold = [r.gold or "" for r in rows] if o["gold_column"] else None
            with generator_for(settings, options.label_with_llm) as generator:
                found = find_topics(items, options, embedder=load_embedder(settings.embedding),
                                    generator=generator, gold=gold, progress=progress)  # fmt: skip
    result = summary(found, options)
    result.pop("points", None)
    result["saved"] = save
    result["assignments"] = found.by_id()
    if o["png"]:
        result["map"] = str(save_png(found, o["png"]))
    if o["html"]:
        result["html"] = str(save_html(found, o["html"]))
    title_of = dict(zip(found.ids, found.titles or found.ids, strict=True))
    return result, {r: title_of[r] for t in found.topics for r in t.representatives}


def _print(result: dict[str, Any], titles: dict[str, str]) -> None:
    n, outliers = result["documents"], result["outliers"]
    click.echo(f"{len(result['topics'])} topics over {n} texts; {outliers} outliers "
               f"({100 * result['outlier_share']:.1f}%)")  # fmt: skip
    click.echo(f"{'id':>4} {'size':>6}  keywords (label), then the texts nearest the centre")
    for t in result["topics"]:
        label = f" ({t['label']})" if t["label"] else ""
        click.echo(f"{t['id']:>4} {t['size']:>6}  {', '.join(t['keywords'])}{label}")
        for r in t["representatives"]:
            title = titles.get(r) or ""
            click.echo(f"{'':>13}{r}" + (f"  {title}" if title and title != r else ""))
    if "metrics" in result:
        m = result["metrics"]
        click.echo(f"against the gold classes: NMI {m['nmi']:.4f}, ARI {m['ari']:.4f} "
                   f"(without outliers: {m['nmi_without_outliers']:.4f}, "
                   f"{m['ari_without_outliers']:.4f})")  # fmt: skip
    if result["saved"]:
        click.echo("saved: each document's topic is its tag 'topic' (-1: an outlier); "
                   "search within one with --tag topic=ID")  # fmt: skip
    for key in ("map", "html"):
        if key in result:
            click.echo(f"{key}: {result[key]}")
