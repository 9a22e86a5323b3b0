"""Rows of text, labelled or not, from a CSV, TSV or JSONL file, or lines from stdin.

Errors name the file and the reason: a missing column (with the columns there are), no
rows, text that is not UTF-8 (with the line), a line or field over the limits, too many
rows, a label column with one class. Files are read line by line with a bounded line
length, so a huge or endless input fails at a limit, in bounded time and memory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from askdocs.errors import ConfigError

MAX_ROWS = 1_000_000
MAX_ROW_CHARS = 100_000  # of the text of one row
MAX_LINE_BYTES = 1_000_000  # of one line of the file (a JSONL row, a CSV line)
MAX_TOTAL_CHARS = 200_000_000  # of all the texts read


@dataclass(frozen=True, slots=True)
class Row:
    id: str  # the row number, from 1 (a CSV header is not counted)
    text: str
    label: str | None = None  # from `label_column`
    gold: str | None = None  # from `gold_column`


def read_rows(
    source: str | Path,
    *,
    text_columns: Sequence[str] = ("text",),
    label_column: str | None = None,
    gold_column: str | None = None,
) -> list[Row]:
    """Every row of `source`: "-" is stdin, one text per line (blank lines skipped); else a
    .csv, .tsv or .jsonl file whose text is in the first of `text_columns` it has."""
    name = str(source)
    try:
        if name == "-":
            lines = _lines(sys.stdin.buffer, name)
            records: Iterator[dict[str, str]] = ({"text": t.rstrip("\r\n")} for t in lines)
            text_columns = ("text",)
        else:
            records = _records(Path(name))
        rows = list(_rows(name, records, text_columns, label_column, gold_column))
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if name == "-":
        rows = [row for row in rows if row.text.strip()]
    if not rows:
        raise ConfigError(f"{name}: no rows")
    return rows


def read_examples(
    source: str | Path, *, text_columns: Sequence[str] = ("text",), label_column: str
) -> list[tuple[str, str]]:
    """(text, label) of the rows that have a label; at least two different labels."""
    rows = read_rows(source, text_columns=text_columns, label_column=label_column)
    examples = [(row.text, row.label) for row in rows if row.label]
    counts = Counter(label for _, label in examples)
    if len(counts) < 2:
        held = f"one class only ({next(iter(counts))!r})" if counts else "no labels"
        raise ConfigError(f"{source}: the column {label_column!r} holds {held}; "
                          "examples of two classes or more are needed")  # fmt: skip
    return examples


def _lines(f: IO[bytes], name: str) -> Iterator[str]:
    """The lines of `f`, each read with a bounded length and decoded on its own (so that
    an encoding error names its line)."""
    n = 0
    while line := f.readline(MAX_LINE_BYTES + 1):
        n += 1
        if len(line) > MAX_LINE_BYTES:
            raise ConfigError(f"{name}: line {n} is over {MAX_LINE_BYTES:,} bytes")
        try:
            yield line.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{name}: line {n} is not UTF-8 text (byte {exc.start + 1}); convert the "
                "file, e.g. iconv -f latin1 -t utf-8"
            ) from exc


def _records(path: Path) -> Iterator[dict[str, str]]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson"):
        raise ConfigError(f"{path}: give a .csv, .tsv or .jsonl file (or - for stdin lines)")
    with path.open("rb") as f:
        lines = _lines(f, str(path))
        if suffix in (".csv", ".tsv"):
            reader = csv.DictReader(lines, delimiter="\t" if suffix == ".tsv" else ",")
            try:
                yield from (_strings(record) for record in reader)
            except csv.Error as exc:
                raise ConfigError(f"{path}: line {reader.line_num}: not CSV: {exc}") from exc
            return
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: line {n} is not JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise ConfigError(f"{path}: line {n} is not a JSON object")
            yield _strings(record)


def _strings(record: dict[object, object]) -> dict[str, str]:
    """Values as text; a CSV row's missing fields (None) and extra ones (a list) dropped."""
    return {str(k): str(v) for k, v in record.items() if v is not None and k is not None}


def _rows(
    name: str,
    records: Iterator[dict[str, str]],
    text_columns: Sequence[str],
    label_column: str | None,
    gold_column: str | None,
) -> Iterator[Row]:
    text_column, total = "", 0
    for n, record in enumerate(records, 1):
        if n > MAX_ROWS:
            raise ConfigError(f"{name}: more than {MAX_ROWS:,} rows")
        if n == 1:
            text_column = _text_column(name, record, text_columns)
            for column in (label_column, gold_column):
                if column and column not in record:
                    raise ConfigError(f"{name}: no column {column!r}; the columns are "
                                      f"{', '.join(record)}")  # fmt: skip
        text = record.get(text_column, "")
        if len(text) > MAX_ROW_CHARS:
            raise ConfigError(f"{name}: row {n} holds over {MAX_ROW_CHARS:,} characters")
        total += len(text)
        if total > MAX_TOTAL_CHARS:
            raise ConfigError(f"{name}: over {MAX_TOTAL_CHARS:,} characters of text in all")
        label = record.get(label_column, "").strip() if label_column else ""
        gold = record.get(gold_column, "").strip() if gold_column else ""
        yield Row(str(n), text, label or None, gold or None)


def _text_column(name: str, record: dict[str, str], wanted: Sequence[str]) -> str:
    for column in wanted:
        if column in record:
            return column
    asked = " or ".join(repr(c) for c in wanted)
    raise ConfigError(
        f"{name}: no column {asked}; the columns are {', '.join(record)} (say which holds "
        "the text with --text-column)"
    )


def parse_labels(given: str | None, path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(names, descriptions) from "a,b,c" (CSV quoting allowed) or from a file of lines
    `name: description` (a line without a colon is a name that describes itself; blank
    lines and lines starting with # are skipped).

    >>> parse_labels('pos, "neutral, mixed"')
    (['pos', 'neutral, mixed'], ['pos', 'neutral, mixed'])
    """
    lines: list[str] = []
    if path is not None:
        try:
            if Path(path).stat().st_size > MAX_LINE_BYTES:
                raise ConfigError(f"{path}: over {MAX_LINE_BYTES:,} bytes: not a labels file")
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the labels: {exc}") from exc
    elif given:
        lines = next(csv.reader(io.StringIO(given), skipinitialspace=True), [])
    names, descriptions = [], []
    for line in (x.strip() for x in lines):
        if not line or line.startswith("#"):
            continue
        name, _, description = line.partition(":") if path is not None else (line, "", "")
        names.append(name.strip())
        descriptions.append(description.strip() or name.strip())
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        raise ConfigError(f"the labels name {repeated[0]!r} twice")
    return names, descriptions
