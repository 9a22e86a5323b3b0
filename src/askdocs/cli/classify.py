"""`askdocs classify`: label the rows of a file, stdin lines, or the stored documents."""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Callable, Iterator
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
def progress_bar(total: int, what: str, shown: bool) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr (when `shown`: a terminal, or --progress) fed by counts."""
    if not shown or total == 0:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit="text", file=sys.stderr, mininterval=1.0) as bar:
        yield bar.update


@main.command()
@click.argument("source", required=False, metavar="INPUT")
@click.option("--text-column", default=None, help="Column of INPUT holding the text.")
@click.option("--method", type=click.Choice(["zero-shot", "supervised", "llm"]), required=True)
@click.option("--labels", default=None, help='Label names or descriptions: "a,b,...".')
@click.option("--labels-file", type=click.Path(dir_okay=False), help="`name: description` lines.")
@click.option("--train", type=click.Path(dir_okay=False), help="Labelled examples (CSV/JSONL).")
@click.option("--label-column", default="label", show_default=True, help="Label column of --train.")
@click.option("--gold-column", default=None, help="Column of INPUT with the right labels: score.")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Below it: none of these.")
@click.option("--save", type=click.Path(dir_okay=False), help="Save the trained classifier here.")
@click.option("--model", "model_file", type=click.Path(dir_okay=False, exists=True),
              help="A classifier saved with --save (instead of --train).")  # fmt: skip
@click.option("--llm", default=None, metavar="NAME|PATH", help="Language model for --method llm.")
@click.option("--from-store", is_flag=True, help="Classify the stored documents instead.")
@click.option("--unit", type=click.Choice(["document", "chunk"]), default="document")
@click.option("--path", "path_glob", default=None, help="With --from-store: files matching this.")
@click.option("--type", "kinds", multiple=True, help="With --from-store: only these file types.")
@tag_option
@click.option("--write-tag", default=None, metavar="KEY", help="Store each label as tag KEY.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the rows here.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a TTY).")
@store_option
@json_option
def classify(source: str | None, store: str | None, as_json: bool, **o: Any) -> None:
    """Label each text of INPUT (CSV, TSV, JSONL, or - for stdin lines) or of the store."""
    if (source is None) == (not o["from_store"]):
        raise click.UsageError("give INPUT, or --from-store")
    if o["write_tag"] and not (o["from_store"] and o["unit"] == "document"):
        raise click.UsageError("--write-tag needs --from-store (and --unit document)")
    try:
        result = _run(source, store, o)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    _show(result, as_json, o["output"])


@contextmanager
def _models(store: str | None, o: dict[str, Any]) -> Iterator[tuple[Any, Any, Any]]:
    """(knowledge base or None, embedder, generator or None): the store only when asked for."""
    from askdocs.embeddings import load_embedder

    changes = {"generation.model": o["llm"]} if o["llm"] else {}
    llm = o["method"] == "llm"
    if o["from_store"]:
        with opened(store, **changes) as kb:
            yield kb, kb.embedder, kb.generator if llm else None
        return
    settings = config.load({"store": store, **changes})
    with generator_for(settings, llm) as generator:
        yield None, load_embedder(settings.embedding), generator


def _run(source: str | None, store: str | None, o: dict[str, Any]) -> dict[str, Any]:
    from askdocs.classify import Supervised, classify, report, vectors_of
    from askdocs.classify.inputs import parse_labels, read_rows

    labels, descriptions = parse_labels(o["labels"], o["labels_file"])
    examples: list[tuple[str, str]] = []
    if o["train"]:
        try:  # the training file's text column is INPUT's, or else "text"
            rows = read_rows(
                o["train"], text_column=o["text_column"], label_column=o["label_column"]
            )
        except AskdocsError:
            rows = read_rows(o["train"], label_column=o["label_column"])
        examples = [(r.text, r.label) for r in rows if r.label]
        if not examples:
            raise click.ClickException(f"{o['train']}: no labelled rows in {o['label_column']!r}")
    model = Supervised.load(o["model_file"]) if o["model_file"] else None
    result: dict[str, Any] = {}
    gold: list[str] | None = None
    with _models(store, o) as (kb, embedder, generator):
        if o["method"] == "supervised" and model is None and examples:
            train = [Item(str(n), text) for n, (text, _) in enumerate(examples)]
            model = Supervised.fit(vectors_of(train, embedder), [label for _, label in examples],
                                   embedder_id=embedder.id)  # fmt: skip
            if model.cross_validation is not None:
                result["cross_validation"] = dataclasses.asdict(model.cross_validation)
            if o["save"]:
                model.save(o["save"])
        if kb is not None:
            filters = Filters(o["path_glob"], tuple(o["kinds"]), o["tags"])
            items = kb.collection(filters, unit=o["unit"])
        else:
            rows = read_rows(
                source or "-", text_column=o["text_column"], gold_column=o["gold_column"]
            )
            items = [Item(r.id, r.text) for r in rows]
            gold = [r.gold or "" for r in rows] if o["gold_column"] else None
        shown = sys.stderr.isatty() if o["progress"] is None else o["progress"]
        what = "asking the model" if o["method"] == "llm" else "embedding"
        with progress_bar(len(items), what, shown) as advance:
            predictions = classify(
                items, method=o["method"], labels=labels or None,
                descriptions=descriptions or None, examples=examples, model=model,
                embedder=embedder, generator=generator, min_score=o["min_score"],
                progress=advance,
            )  # fmt: skip
        result["predictions"] = [dataclasses.asdict(p) for p in predictions]
        if gold is not None:
            names = sorted({*gold, *(p.label for p in predictions if p.label is not None)})
            result["metrics"] = dataclasses.asdict(
                report(gold, [p.label for p in predictions], names)
            )
        if kb is not None and o["write_tag"]:
            result["tagged"] = kb.tag(o["write_tag"], {p.id: p.label for p in predictions})
    return result


def _show(result: dict[str, Any], as_json: bool, output: str | None) -> None:
    if as_json and not output:
        emit(result)
        return
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out)
        writer.writerow(["id", "label", "score"])
        for p in result["predictions"]:
            writer.writerow([p["id"], "" if p["label"] is None else p["label"], p["score"]])
    finally:
        if output:
            out.close()
    if as_json:
        emit({k: v for k, v in result.items() if k != "predictions"} | {"output": output})
        return
    for name in ("cross_validation", "metrics"):
        if name in result:
            click.echo(_describe(name, result[name]), err=True)
    if "tagged" in result:
        click.echo(f"tagged {result['tagged']} document(s)", err=True)


def _describe(name: str, m: dict[str, Any]) -> str:
    title = "cross-validation" if name == "cross_validation" else "against the gold labels"
    lines = [f"{title}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"]
    width = max(len(c["label"]) for c in m["classes"])
    lines.append(f"  {'class':<{width}}  precision  recall  f1      support")
    for c in m["classes"]:
        lines.append(f"  {c['label']:<{width}}  {c['precision']:<9.4f}  {c['recall']:<6.4f}"
                     f"  {c['f1']:<6.4f}  {c['support']}")  # fmt: skip
    columns = m["labels"] + (["(none)"] if m["none"] else [])
    lines.append("  confusion (rows: gold, columns: predicted " + ", ".join(columns) + ")")
    lines += [f"  {label:<{width}}  " + " ".join(f"{n:>5}" for n in row)
              for label, row in zip(m["labels"], m["confusion"], strict=True)]  # fmt: skip
    return "\n".join(lines)
