"""Document tags and named annotations in both backends' SQL, and search filters as SQL.

A tag is a (key, value) pair on a stored path: `topic` = `3`, `label` = `invoice`. Its row
points at the document's row, which keeps its id when the file's content changes (an edited
file ingested again keeps its labels) and takes its tags along when it is deleted (ON DELETE
CASCADE: `remove`, `prune`). An annotation is a named text kept with the store, such as the
table that says what each topic tag means.

The functions run in the caller's transaction, on a SQLite connection (`sqlite_*`) or a
psycopg cursor (`postgres_*`); the tables are in `schema` and `pgschema`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from askdocs.store import Filters

if TYPE_CHECKING:
    import psycopg


def checked(key: str, values: Mapping[str, str | None]) -> tuple[list[list[str]], list[str]]:
    """([path, value] to set, paths to untag) for `Store.tag`; raises on a value of another
    type, which a backend would store as text or refuse.

    >>> checked("topic", {"/a.txt": "3", "/b.txt": None})
    ([['/a.txt', '3']], ['/b.txt'])
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"a tag key is a non-empty string, not {key!r}")
    wrong = [v for v in values.values() if v is not None and not isinstance(v, str)]
    if wrong:
        raise TypeError(f"tag values are strings or None (to remove), not {wrong[0]!r}")
    given = [[p, v] for p, v in values.items() if v is not None]
    return given, [p for p, v in values.items() if v is None]


# -- SQLite --------------------------------------------------------------------------------


def sqlite_tag(db: sqlite3.Connection, key: str, values: Mapping[str, str | None]) -> int:
    """Set or remove tag `key` per stored path; returns how many documents changed."""
    given, untag = checked(key, values)
    changed = 0
    if given:
        changed += db.executemany(
            "INSERT INTO tags (document_id, key, value) SELECT id, ?, ? FROM documents "
            "WHERE path = ? ON CONFLICT (document_id, key) DO UPDATE SET value = "
            "excluded.value WHERE value <> excluded.value",
            [(key, v, p) for p, v in given],
        ).rowcount
    if untag:
        changed += db.executemany(
            "DELETE FROM tags WHERE key = ? AND document_id = "
            "(SELECT id FROM documents WHERE path = ?)",
            [(key, p) for p in untag],
        ).rowcount
    return changed


def sqlite_tags(db: sqlite3.Connection, key: str) -> dict[str, str]:
    rows = db.execute(
        "SELECT d.path, t.value FROM tags t JOIN documents d ON d.id = t.document_id "
        "WHERE t.key = ? ORDER BY d.path",
        (key,),
    ).fetchall()
    return dict(rows)


def sqlite_summary(db: sqlite3.Connection) -> tuple[dict[str, int], tuple[str, ...]]:
    """(tag key -> documents tagged, annotation names), for `status`."""
    counts = db.execute("SELECT key, COUNT(*) FROM tags GROUP BY key ORDER BY key").fetchall()
    names = db.execute("SELECT name FROM annotations ORDER BY name").fetchall()
    return dict(counts), tuple(r[0] for r in names)


def sqlite_annotate(db: sqlite3.Connection, name: str, value: str | None) -> None:
    if value is None:
        db.execute("DELETE FROM annotations WHERE name = ?", (name,))
    else:
        db.execute(
            "INSERT INTO annotations VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )


def sqlite_annotation(db: sqlite3.Connection, name: str) -> str | None:
    row = db.execute("SELECT value FROM annotations WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def sqlite_where(filters: Filters) -> tuple[str, list[str]]:
    """The condition on `d` (a document) and `ct` (its content) for `filters`, and its
    arguments; `filters` must ask for something."""
    where, args = [], []
    glob, kinds = filters.glob(), filters.kind_names()
    if glob:
        where.append("d.path GLOB ?")
        args.append(glob)
    if kinds:
        where.append(f"ct.kind IN ({','.join('?' * len(kinds))})")
        args.extend(kinds)
    for key, value in filters.tags:
        where.append(
            "EXISTS (SELECT 1 FROM tags t WHERE t.document_id = d.id AND t.key = ? AND t.value = ?)"
        )
        args.extend((key, value))
    return " AND ".join(where), args


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_tag(cur: psycopg.Cursor[Any], key: str, values: Mapping[str, str | None]) -> int:
    given, untag = checked(key, values)
    changed = 0
    if given:
        cur.execute(
            "INSERT INTO askdocs_tags (document_id, key, value) SELECT d.id, %s, v.value "
            "FROM unnest(%s::text[], %s::text[]) AS v(path, value) "
            "JOIN askdocs_documents d ON d.path = v.path ON CONFLICT (document_id, key) "
            "DO UPDATE SET value = EXCLUDED.value WHERE askdocs_tags.value <> EXCLUDED.value",
            (key, [p for p, _ in given], [v for _, v in given]),
        )
        changed += cur.rowcount
    if untag:
        cur.execute(
            "DELETE FROM askdocs_tags t USING askdocs_documents d WHERE t.document_id = d.id "
            "AND t.key = %s AND d.path = ANY(%s)",
            (key, untag),
        )
        changed += cur.rowcount
    return changed


def postgres_tags(cur: psycopg.Cursor[Any], key: str) -> dict[str, str]:
    rows = cur.execute(
        "SELECT d.path, t.value FROM askdocs_tags t JOIN askdocs_documents d "
        'ON d.id = t.document_id WHERE t.key = %s ORDER BY d.path COLLATE "C"',
        (key,),
    ).fetchall()
    return dict(rows)


def postgres_summary(cur: psycopg.Cursor[Any]) -> tuple[dict[str, int], tuple[str, ...]]:
    """(tag key -> documents tagged, annotation names), for `status`."""
    counts = cur.execute(
        'SELECT key, COUNT(*) FROM askdocs_tags GROUP BY key ORDER BY key COLLATE "C"'
    ).fetchall()
    names = cur.execute('SELECT name FROM askdocs_annotations ORDER BY name COLLATE "C"').fetchall()
    return dict(counts), tuple(r[0] for r in names)


def postgres_annotate(cur: psycopg.Cursor[Any], name: str, value: str | None) -> None:
    if value is None:
        cur.execute("DELETE FROM askdocs_annotations WHERE name = %s", (name,))
    else:
        cur.execute(
            "INSERT INTO askdocs_annotations VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            (name, value),
        )


def postgres_annotation(cur: psycopg.Cursor[Any], name: str) -> str | None:
    row = cur.execute("SELECT value FROM askdocs_annotations WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def postgres_where(filters: Filters | None) -> tuple[str, dict[str, Any]]:
    """The SQL condition on `ch` (a chunk) for `filters` ("" for none), and its parameters."""
    if not filters:
        return "", {}
    conditions, args = [], {}
    glob, kinds = filters.glob(), filters.kind_names()
    if glob:
        conditions.append("d.path ~ %(path_re)s")
        args["path_re"] = glob_regex(glob)
    if kinds:
        conditions.append("ct.kind = ANY(%(kinds)s)")
        args["kinds"] = list(kinds)
    for n, (key, value) in enumerate(filters.tags):
        conditions.append(
            "EXISTS (SELECT 1 FROM askdocs_tags t WHERE t.document_id = d.id "
            f"AND t.key = %(tag_key_{n})s AND t.value = %(tag_value_{n})s)"
        )
        args |= {f"tag_key_{n}": key, f"tag_value_{n}": value}
    return (
        " AND ch.content_id IN (SELECT d.content_id FROM askdocs_documents d JOIN "
        "askdocs_contents ct ON ct.id = d.content_id WHERE " + " AND ".join(conditions) + ")"
    ), args


def glob_regex(glob: str) -> str:
    """A path glob (`*`, `?`, `[...]`, as SQLite's GLOB) as an anchored POSIX regex.

    >>> glob_regex("*/notes/[ab]*.md")
    '^.*/notes/[ab].*\\\\.md$'
    """
    out, i = ["^"], 0
    while i < len(glob):
        c = glob[i]
        end = glob.find("]", i + 2) if c == "[" else -1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif end > 0:
            body = glob[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"
