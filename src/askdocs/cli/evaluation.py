"""`askdocs eval`: retrieval on BEIR data, answers on SQuAD-format and CLAPnq data."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from askdocs import config, evaluate
from askdocs.cli.common import (
    count_progress,
    decoding_of,
    decoding_options,
    emit,
    generator_for,
    hops_option,
    json_option,
    main,
    model_option,
    opened,
    opened_kb,
    style_option,
)
from askdocs.cli.documents import print_report, progress_bar


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
        opened_kb(lambda: evaluate.eval_settings(Path(directory), store), create=True) as kb,
        progress_bar(quiet=as_json) as progress,
    ):
        result = evaluate.evaluate_retrieval(
            kb, Path(directory), split=split, modes=modes, progress=progress
        )
    if as_json:
        emit(dataclasses.asdict(result))
        return
    print_report(result.ingest)
    click.echo(evaluate.format_evaluation(result))


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
        opened(store, create=True, **{"generation.model": model}) as kb,
        generator_for(kb.settings, needed=not extractive) as generator,
    ):
        options = AskOptions(
            style=style, hops=hops, extractive=extractive, decoding=decoding_of(kb.settings, flags)
        )
        if longform:
            result: Any = evaluate_longform(
                kb, generator, Path(file), limit=limit, options=options,
                progress=None if as_json else lambda done, total: count_progress(
                    "answered", done, total),
            )  # fmt: skip
        else:
            result = evaluate_answers(
                kb, generator, Path(file), limit=limit, options=options,
                refusals=not no_refusals, progress=None if as_json else count_progress,
            )  # fmt: skip
    if as_json:
        emit(dataclasses.asdict(result))
        return
    click.echo(format_longform(result) if longform else format_answers(result))
