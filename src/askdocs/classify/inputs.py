"""Rows of labelled or unlabelled text from a CSV or JSONL file, or lines from stdin.

Errors name the file and the reason: a missing column (with the columns there are), an
empty file, text that is not UTF-8, a row over `MAX_ROW_CHARS`, more than `MAX_ROWS` rows.
Files are read as a stream, so a huge or endless input fails at the limit, not in memory.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from askdocs.errors import ConfigError

MAX_ROWS = 1_000_000
MAX_ROW_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class Row:
    id: str  # the row number, from 1 (the header is not counted)
    text: str
    label: str | None = None  # from `label_column`
    gold: str | None = None  # from `gold_column`


def read_rows(
    source: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    gold_column: str | None = None,
) -> list[Row]:
    """Every row of `source` ("-": stdin, one text per line; else .csv, .tsv or .jsonl)."""
    name = str(source)
    try:
        if name == "-":
            records: Iterator[dict[str, str]] = ({"text": line.rstrip("\n")} for line in sys.stdin)
            text_column = text_column or "text"
        else:
            records = _records(Path(name))
        rows = list(_rows(name, records, text_column, label_column, gold_column))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text (byte {exc.start} of a line)") from exc
    except csv.Error as exc:
        raise ConfigError(f"{name}: not a readable CSV file: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if not rows:
        raise ConfigError(f"{name}: no rows")
    return rows


def _records(path: Path) -> Iterator[dict[str, str]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}: line {n} is not JSON: {exc.msg}") from exc
                if not isinstance(record, dict):
                    raise ConfigError(f"{path}: line {n} is not a JSON object")
                yield {str(k): "" if v is None else str(v) for k, v in record.items()}
        return
    if suffix not in (".csv", ".tsv"):
        raise ConfigError(f"{path}: give a .csv, .tsv or .jsonl file (or - for stdin lines)")
    csv.field_size_limit(MAX_ROW_CHARS + 1)
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")


def _rows(
    name: str,
    records: Iterator[dict[str, str]],
    text_column: str | None,
    label_column: str | None,
    gold_column: str | None,
) -> Iterator[Row]:
    wanted = [c for c in (text_column, label_column, gold_column) if c]
    for n, record in enumerate(records, 1):
        if n > MAX_ROWS:
            raise ConfigError(f"{name}: more than {MAX_ROWS} rows")
        if n == 1:
            text_column = text_column or _guess_text_column(name, record)
            missing = [c for c in [text_column, *wanted] if c not in record]
            if missing:
                raise ConfigError(
                    f"{name}: no column {missing[0]!r}; the columns are {', '.join(record)}"
                )
        assert text_column is not None
        text = record.get(text_column) or ""
        if len(text) > MAX_ROW_CHARS:
            raise ConfigError(f"{name}: row {n} holds over {MAX_ROW_CHARS} characters")
        label = record.get(label_column) if label_column else None
        gold = record.get(gold_column) if gold_column else None
        yield Row(str(n), text, label or None, gold or None)


def _guess_text_column(name: str, record: dict[str, str]) -> str:
    if "text" in record:
        return "text"
    raise ConfigError(f"{name}: say which column holds the text (--text-column); the columns "
                      f"are {', '.join(record)}")  # fmt: skip


def parse_labels(given: str | None, path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(names, descriptions) from "a,b,c" or a file of `name: description` lines (a line
    without a colon is a name that describes itself)."""
    lines: list[str] = []
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the labels: {exc}") from exc
    elif given:
        lines = next(csv.reader(io.StringIO(given), skipinitialspace=True))
    names, descriptions = [], []
    for line in (x.strip() for x in lines):
        if not line or line.startswith("#"):
            continue
        name, _, description = line.partition(":") if path is not None else (line, "", "")
        names.append(name.strip())
        descriptions.append(description.strip() or name.strip())
    if len(set(names)) != len(names):
        raise ConfigError("the labels repeat a name")
    return names, descriptions
