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
@click.option("--reassign", is_flag=True, help="Put every outlier in its nearest topic.")
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

    options = TopicOptions(
        seed=o["seed"], min_cluster_size=o["min_cluster_size"], n_topics=o["n_topics"],
        reassign=o["reassign"], keywords=o["keywords"], diversity=o["diversity"],
        label_with_llm=o["label_with_llm"],
    )  # fmt: skip
    try:
        result = _run(source, store, options, o)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        emit(result)
        return
    _print(result)


def _run(source: str | None, store: str | None, options: Any, o: dict[str, Any]) -> dict[str, Any]:
    from askdocs.classify.inputs import read_rows
    from askdocs.embeddings import load_embedder
    from askdocs.topics import find_and_save, find_topics, summary
    from askdocs.topics.maps import save_html, save_png

    changes = {"generation.model": o["llm"]} if o["llm"] else {}
    shown = sys.stderr.isatty() if o["progress"] is None else o["progress"]
    gold: list[str] | None = None
    with stage_bar(shown) as progress:
        if source is None:
            if o["gold_column"]:
                raise click.UsageError("--gold-column needs INPUT")
            with opened(store, **changes) as kb:
                generator = kb.generator if options.label_with_llm else None
                filters = Filters(o["path_glob"], tuple(o["kinds"]), o["tags"])
                found = find_and_save(kb, options, filters=filters, generator=generator,
                                      progress=progress, save=o["save"] is not False)  # fmt: skip
        else:
            if o["save"]:
                raise click.UsageError("--save stores topics for the store's documents: no INPUT")
            settings = config.load({"store": store, **changes})
            rows = read_rows(source, text_column=o["text_column"], gold_column=o["gold_column"])
            items = [Item(r.id, r.text, r.text[:80]) for r in rows]
            gold = [r.gold or "" for r in rows] if o["gold_column"] else None
            with generator_for(settings, options.label_with_llm) as generator:
                found = find_topics(items, options, embedder=load_embedder(settings.embedding),
                                    generator=generator, progress=progress)  # fmt: skip
    result = summary(found, options)
    result["assignments"] = found.by_id()
    if gold is not None:
        result["metrics"] = agreement(gold, found.assignments.tolist())
    if o["png"]:
        result["map"] = str(save_png(found, o["png"]))
    if o["html"]:
        result["html"] = str(save_html(found, o["html"]))
    result.pop("points", None)
    return result


def agreement(gold: list[str], topics: list[int]) -> dict[str, Any]:
    """NMI and ARI of the topics against known classes: over every text (the outliers as
    one more cluster) and over the texts given a topic."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    kept = [i for i, t in enumerate(topics) if t >= 0]
    inside = ([gold[i] for i in kept], [topics[i] for i in kept])
    return {
        "nmi": round(float(normalized_mutual_info_score(gold, topics)), 4),
        "ari": round(float(adjusted_rand_score(gold, topics)), 4),
        "nmi_without_outliers": round(float(normalized_mutual_info_score(*inside)), 4)
        if kept else 0.0,
        "ari_without_outliers": round(float(adjusted_rand_score(*inside)), 4) if kept else 0.0,
        "texts": len(topics),
        "outliers": len(topics) - len(kept),
    }  # fmt: skip


def _print(result: dict[str, Any]) -> None:
    n, outliers = result["documents"], result["outliers"]
    click.echo(f"{len(result['topics'])} topics over {n} texts; {outliers} outliers "
               f"({100 * outliers / max(n, 1):.1f}%)")  # fmt: skip
    for t in result["topics"]:
        name = f" {t['label']}:" if t["label"] else ""
        click.echo(f"{t['id']:>4} {t['size']:>6}{name} {', '.join(t['keywords'])}")
        for r in t["representatives"]:
            click.echo(f"{'':>12}{r}")
    if "metrics" in result:
        m = result["metrics"]
        click.echo(f"against the gold classes: NMI {m['nmi']:.4f}, ARI {m['ari']:.4f} "
                   f"(without outliers: {m['nmi_without_outliers']:.4f}, "
                   f"{m['ari_without_outliers']:.4f})")  # fmt: skip
    for key in ("map", "html"):
        if key in result:
            click.echo(f"{key}: {result[key]}")
