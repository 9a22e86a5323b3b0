"""Questions that pick rows out of a table, answered from the table in code.

"Which plants should only be watered when the soil is fully dry?" is answered by a quick
reference table whose Watering column says "When soil is fully dry" on two rows. Shown the
table, the 1.5B model named one row, and the wrong one ("Spider plant"). A question that
starts with "Which" or "What" and names a table's first column ("plants" / "Plant") is
answered in code when the table's cells say what the question asks for:

- a cell whose every term is in the question ("When soil is fully dry"), or
- a "Yes" under a header the question names ("Safe for cats and dogs" for "Which plants
  are safe for cats?"), or a "No" when the question says "not",

on some rows but not all; the answer names those rows by their first cell and cites them.

    >>> table = "Plant | Watering\\nFern | When soil is moist\\nCactus | When soil is dry\\n"
    >>> [(t.header, len(t.rows)) for t in tables_in(table)]
    [(('Plant', 'Watering'), 2)]
    >>> [r.cells[0] for r in matching_rows("Which plants need watering when the soil is dry?",
    ...                                    tables_in(table)[0])]
    ['Cactus']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from askdocs.answer.checks import settled_answer
from askdocs.text import Analyzer
from askdocs.types import Answer, Citation, Hit

_ASKS = re.compile(r"^\s*(?:which|what)\b", re.IGNORECASE)
_RULE = re.compile(r"^[\s|:+-]*$")  # a markdown table's "---|---" line
_NEGATED = re.compile(r"\b(?:not|no|never|unsafe|without)\b|n't\b", re.IGNORECASE)
_ASKING = frozenset(Analyzer().tokens("which what of the in a an are is do does should can"))
MAX_HITS = 3  # the best hits whose tables are read


@dataclass(frozen=True, slots=True)
class Row:
    cells: tuple[str, ...]
    start: int  # offsets in the text the table was read from
    end: int


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[Row, ...]


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def tables_in(text: str) -> list[Table]:
    """Runs of "a | b | c" lines with the same number of cells (two or more), the first one
    the header; a markdown rule line under the header is skipped."""
    found: list[Table] = []
    header: tuple[str, ...] | None = None
    rows: list[Row] = []
    at = 0
    for line in text.splitlines(keepends=True):
        start, at = at, at + len(line)
        body = line.rstrip("\r\n")
        cells = _cells(body) if "|" in body else ()
        if header is not None and len(cells) == len(header):
            if not _RULE.match(body):
                rows.append(Row(cells, start, start + len(body)))
            continue
        if header is not None and rows:
            found.append(Table(header, tuple(rows)))
        header, rows = (cells, []) if len(cells) >= 2 else (None, [])
    if header is not None and rows:
        found.append(Table(header, tuple(rows)))
    return found


def matching_rows(question: str, table: Table) -> list[Row]:
    """The rows the question picks (see the module docs); [] when it picks none or all."""
    analyzer = Analyzer()
    asked = set(analyzer.tokens(question)) - _ASKING
    if not set(analyzer.tokens(table.header[0])) & asked:
        return []
    wanted = "no" if _NEGATED.search(question) else "yes"
    best: tuple[int, list[Row]] = (0, [])
    for column in range(1, len(table.header)):
        header = set(analyzer.tokens(table.header[column]))
        picked: list[Row] = []
        weight = 0
        for row in table.rows:
            cell = row.cells[column]
            terms = set(analyzer.tokens(cell))
            if cell.lower() in ("yes", "no") and _names(header, asked):
                if cell.lower() == wanted:
                    picked.append(row)
                    weight = len(header & asked)
            elif len(terms) >= 2 and terms <= asked:
                picked.append(row)
                weight = max(weight, len(terms))
        if picked and len(picked) < len(table.rows) and weight > best[0]:
            best = (weight, picked)
    return best[1]


def _names(header: set[str], asked: set[str]) -> bool:
    """Whether the question names a column: all its terms, or two of them ("safe for cats"
    names "Safe for cats and dogs")."""
    return bool(header) and (header <= asked or len(header & asked) >= 2)


def rows_asked(question: str, hits: Sequence[Hit], *, evidence: float) -> Answer | None:
    """The answer that names the table rows the question picks, from the best hits; None
    when the question is not a "Which ...?" or no table of theirs answers it."""
    if not _ASKS.match(question):
        return None
    for hit in hits[:MAX_HITS]:
        for table in tables_in(hit.text):
            rows = matching_rows(question, table)
            if rows:
                return _answer(question, hit, table, rows, evidence)
    return None


def _answer(question: str, hit: Hit, table: Table, rows: Sequence[Row], evidence: float) -> Answer:
    names = [row.cells[0] for row in rows]
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    spans = tuple((hit.start + r.start, hit.start + r.end) for r in rows)
    citation = Citation(
        number=1,
        chunk_id=hit.chunk_id,
        path=hit.path,
        title=hit.title,
        page=hit.page,
        start=spans[0][0],
        end=spans[-1][1],
        text="\n".join(" | ".join(row.cells) for row in (Row(table.header, 0, 0), *rows)),
        score=1.0,
        spans=spans,
    )
    return settled_answer(
        question, [(said, (1,), (1, *spans[0]))], (citation,), mode="table", style="short",
        evidence=evidence, note=f"the rows of a table in {hit.title} that the question picks",
    )  # fmt: skip
