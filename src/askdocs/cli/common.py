"""What every `askdocs` command shares: the group, store and output options, opening
the knowledge base, the model and decoding options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from askdocs import config
from askdocs.answer.styles import STYLES
from askdocs.errors import AskdocsError
from askdocs.kb import KnowledgeBase

store_option = click.option(
    "--store",
    "store",
    metavar="DIR|NAME|URL",
    envvar=None,
    help="Store directory, a name for one in the user data dir, or a postgresql:// URL "
    "(default: $ASKDOCS_STORE, else the store named 'default').",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@contextmanager
def opened(store: str | None, create: bool = False, **overrides: Any) -> Iterator[KnowledgeBase]:
    """Open the knowledge base; library errors become clean CLI errors."""
    with opened_kb(lambda: config.load({"store": store, **overrides}), create=create) as kb:
        yield kb


@contextmanager
def opened_kb(settings: Callable[[], config.Settings], create: bool) -> Iterator[KnowledgeBase]:
    try:
        with KnowledgeBase.open(settings(), create=create) as kb:
            yield kb
    except AskdocsError as exc:
        raise click.ClickException(str(exc)) from exc


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="askdocs")
def main() -> None:
    """Search and question your own documents, offline."""


rerank_option = click.option(
    "--rerank/--no-rerank",
    default=None,
    help="Reorder more candidates with the reranker (default: as configured, off).",
)


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


def decoding_of(settings: config.Settings, flags: dict[str, Any]) -> Any:
    from askdocs.generation import decoding_from

    changes = {name: value for name, value in flags.items() if value not in (None, ())}
    if "stop" in changes:
        changes["stop"] = tuple(changes["stop"])
    return decoding_from(settings.generation, **changes)


@contextmanager
def generator_for(settings: config.Settings, needed: bool) -> Iterator[Any]:
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


def count_progress(phase: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\r{phase}: {done}/{total}", nl=done == total, err=True)


def tag_pairs(
    ctx: click.Context, param: click.Parameter, given: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """`--tag topic=3 --tag label=a=b` -> (("topic", "3"), ("label", "a=b"))."""
    pairs = []
    for text in given:
        key, equals, value = text.partition("=")
        if not key or not equals:
            raise click.BadParameter(f"expected KEY=VALUE (e.g. topic=3), got {text!r}")
        pairs.append((key, value))
    return tuple(pairs)


tag_option = click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    callback=tag_pairs,
    help="Only documents with this tag (repeatable: all must hold).",
)
