"""`askdocs classify`: label the rows of a file, stdin lines, or the stored documents."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from askdocs import config
from askdocs.classify.finetune import EPOCHS
from askdocs.classify.llm import SHOTS
from askdocs.cli.common import generator_for, json_option, main, opened, store_option, tag_option
from askdocs.errors import AskdocsError
from askdocs.store import Filters
from askdocs.types import Item


@main.command()
@click.argument("source", required=False, metavar="INPUT")
@click.option("--method", type=click.Choice(["zero-shot", "supervised", "llm"]), required=True)
@click.option("--text-column", default=None, help="Column of INPUT (and --train) with the text.")
@click.option("--labels", default=None, help='Label names or descriptions: "a,b,...".')
@click.option("--labels-file", type=click.Path(dir_okay=False), help="`name: description` lines.")
@click.option("--train", type=click.Path(dir_okay=False), help="Labelled examples (CSV/JSONL).")
@click.option("--label-column", default="label", show_default=True, help="Label column of --train.")
@click.option("--gold-column", default=None, help="Column of INPUT with the right labels: score.")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Below it: none of these.")
@click.option("--fine-tune", is_flag=True,
              help="supervised: tune MiniLM on --train first (minutes).")  # fmt: skip
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=EPOCHS,
              show_default=True, help="With --fine-tune: passes over the examples.")  # fmt: skip
@click.option("--self-train", is_flag=True,
              help="zero-shot: tune MiniLM on its surest texts (minutes).")  # fmt: skip
@click.option("--save", type=click.Path(dir_okay=False), help="Save the trained classifier here.")
@click.option("--model", "model_file", type=click.Path(dir_okay=False, exists=True),
              help="A classifier saved with --save (instead of --train).")  # fmt: skip
@click.option("--llm", default=None, metavar="NAME|PATH", help="Language model for --method llm.")
@click.option("--shots", type=click.IntRange(0), default=SHOTS, show_default=True,
              help="llm: examples per label from --train shown to the model.")  # fmt: skip
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
    """Label each text of INPUT (CSV, TSV, JSONL, or - for stdin lines) or of the store.

    Prints one row per text (id, label, score) as CSV, or JSON with --json; with
    --gold-column, also accuracy, macro-F1, per-class precision and recall and the
    confusion matrix (on stderr, unless --json).
    """
    _check_usage(source, o)
    try:
        result = _run(source, store, o)
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc
    _show(result, as_json, o["output"])


def _check_usage(source: str | None, o: dict[str, Any]) -> None:
    method = o["method"]
    problems = {
        "give INPUT, or --from-store": (source is None) == (not o["from_store"]),
        "--write-tag needs --from-store (and --unit document)": o["write_tag"]
        and not (o["from_store"] and o["unit"] == "document"),
        "--gold-column is for INPUT, not --from-store": o["gold_column"] and o["from_store"],
        "supervised needs --train or --model": method == "supervised"
        and not (o["train"] or o["model_file"]),
        "--model goes with --method supervised (any classifier saved with --save)": o["model_file"]
        and method != "supervised",
        "--save needs supervised and --train, or zero-shot and --self-train": o["save"]
        and not (method == "supervised" and o["train"])
        and not (method == "zero-shot" and o["self_train"]),
        "--self-train is for zero-shot": o["self_train"] and method != "zero-shot",
        "--train is for supervised and llm": o["train"] and method == "zero-shot",
        "--fine-tune needs supervised and --train": o["fine_tune"]
        and not (method == "supervised" and o["train"]),
    }
    for message, wrong in problems.items():
        if wrong:
            raise click.UsageError(message)


def _run(source: str | None, store: str | None, o: dict[str, Any]) -> dict[str, Any]:
    from askdocs.classify import Supervised, classify
    from askdocs.classify.inputs import parse_labels, read_examples

    labels, descriptions = parse_labels(o["labels"], o["labels_file"])
    columns = (o["text_column"], "text") if o["text_column"] else ("text",)
    examples: list[tuple[str, str]] = []
    if o["train"]:
        examples = read_examples(o["train"], text_columns=columns, label_column=o["label_column"])
    model = Supervised.load(o["model_file"]) if o["model_file"] else None
    shown = sys.stderr.isatty() if o["progress"] is None else o["progress"]
    result: dict[str, Any] = {}
    with _models(store, o) as (kb, embedder, generator):
        items, gold = _texts(kb, source, o)
        if o["method"] == "supervised" and model is None:
            model = _train(examples, embedder, o, shown)
            if model.cross_validation is not None:
                result["cross_validation"] = dataclasses.asdict(model.cross_validation)
        if o["self_train"]:
            model = _self_train(items, labels, descriptions, embedder, shown)
        if model is not None and o["save"]:
            model.save(o["save"])
        what = "asking the model" if o["method"] == "llm" else "embedding"
        method = "supervised" if o["self_train"] else o["method"]
        with progress_bar(len(items), what, shown) as advance:
            predictions = classify(
                items, method=method, labels=labels or None,
                descriptions=descriptions or None, examples=examples, model=model,
                embedder=embedder, generator=generator, min_score=o["min_score"],
                shots=o["shots"], progress=advance,
            )  # fmt: skip
        result["predictions"] = [dataclasses.asdict(p) for p in predictions]
        if gold is not None:
            order = list(model.classes) if model else labels or [y for _, y in examples]
            result["metrics"] = _metrics(source, gold, [p.label for p in predictions], order)
        if kb is not None and o["write_tag"]:
            result["tagged"] = kb.tag(o["write_tag"], {p.id: p.label for p in predictions})
    return result


def _train(examples: list[tuple[str, str]], embedder: Any, o: dict[str, Any], shown: bool) -> Any:
    from askdocs.classify import steps_for, train

    epochs = o["epochs"] if o["fine_tune"] else None
    steps = steps_for(len(examples), o["epochs"]) if o["fine_tune"] else 0
    with (
        progress_bar(steps, "fine-tuning", shown, unit="update") as tuned,
        progress_bar(len(examples), "embedding the examples", shown) as advance,
    ):
        return train(
            examples, embedder, fine_tune_epochs=epochs, progress=advance, tuning_progress=tuned
        )


def _self_train(
    items: list[Item], labels: list[str], descriptions: list[str], embedder: Any, shown: bool
) -> Any:
    from askdocs.classify.selftrain import self_train

    say = (lambda what, _: click.echo(f"self-training: {what}", err=True)) if shown else None
    texts = [item.text for item in items]
    return self_train(texts, labels, embedder, descriptions=descriptions or None, progress=say)


@contextmanager
def _models(store: str | None, o: dict[str, Any]) -> Iterator[tuple[Any, Any, Any]]:
    """(knowledge base or None, embedder, generator or None): the store only when asked for."""
    from askdocs.embeddings import load_embedder

    changes = {"generation.model": o["llm"]} if o["llm"] else {}
    llm = o["method"] == "llm"
    if o["from_store"]:
        with opened(store, **changes) as kb:
            yield kb, None if llm else kb.embedder, kb.generator if llm else None
        return
    settings = config.load({"store": store, **changes})
    with generator_for(settings, llm) as generator:
        yield None, None if llm else load_embedder(settings.embedding), generator


def _texts(kb: Any, source: str | None, o: dict[str, Any]) -> tuple[list[Item], Any]:
    """The items to label and, with --gold-column, their gold labels (None where empty)."""
    from askdocs.classify.inputs import read_rows

    if kb is not None:
        filters = Filters(o["path_glob"], tuple(o["kinds"]), o["tags"])
        return kb.collection(filters, unit=o["unit"]), None
    columns = (o["text_column"],) if o["text_column"] else ("text",)
    rows = read_rows(source or "-", text_columns=columns, gold_column=o["gold_column"])
    gold = [row.gold for row in rows] if o["gold_column"] else None
    return [Item(row.id, row.text) for row in rows], gold


def _metrics(
    source: str | None, gold: list[str | None], found: list[str | None], order: list[str]
) -> dict[str, Any]:
    """The report over the rows that have a gold label; labels in the order given."""
    from askdocs.classify import report_on_gold

    scored = report_on_gold(gold, found, order)
    if scored is None:
        raise click.ClickException(f"{source}: no gold labels in the --gold-column")
    return dataclasses.asdict(scored) | {"texts": sum(g is not None for g in gold)}


@contextmanager
def progress_bar(
    total: int, what: str, shown: bool, unit: str = "text"
) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr (when `shown`: a terminal, or --progress) fed by counts; it
    appears only once the work has taken a second."""
    if not shown or total == 0:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit=unit, file=sys.stderr, delay=1.0) as bar:
        yield bar.update


def _show(result: dict[str, Any], as_json: bool, output: str | None) -> None:
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    try:
        if as_json:
            out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(out)
            writer.writerow(["id", "label", "score"])
            for p in result["predictions"]:
                writer.writerow([p["id"], p["label"] or "", p["score"]])
    finally:
        if output:
            out.close()
    if as_json and not output:
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
