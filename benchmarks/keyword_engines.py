"""The keyword engines `bench_keyword_engines.py` compares, behind one small interface (`add`,
`remove`, `search` -> a `Ranking`, `size`): askdocs' keyword index as the store keeps it (on
tantivy since this comparison chose it; askdocs' own engine before), an SQLite FTS5 table of
the Analyzer's terms, and plain tantivy (on the Analyzer's terms, or with its own `en_stem`).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import tantivy

from askdocs.fusion import Ranking
from askdocs.store import Filters
from askdocs.store.keywords import IndexedChunk, KeywordIndex, remove
from askdocs.text import Analyzer, words


class Terms:
    """Text -> the Analyzer's terms joined by spaces; words are analysed once, then looked up.

    >>> Terms(Analyzer())("The running dogs!")
    'run dog'
    """

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._cache: dict[str, str | None] = {}

    def __call__(self, text: str) -> str:
        found = words(text)
        new = [w for w in dict.fromkeys(found) if w not in self._cache]
        if new:
            self._cache.update(zip(new, self.analyzer.terms(new), strict=True))
        return " ".join(t for w in found if (t := self._cache[w]) is not None)


def _no_hits() -> Ranking:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


# Every engine: add and delete (durable on return), search, finish
# (after a build: persist, let merges end), size (bytes on disk), close.


class Ours:
    """askdocs' keyword index as the store keeps it (`askdocs.store.keywords`: tantivy over
    the Analyzer's terms, with the fields filters use); a chunk the filter allows has kind
    "md", as `tantivy-kind`; one commit per add or delete."""

    def __init__(self, path: Path, allowed: np.ndarray) -> None:
        self.path, self.allowed = path, allowed
        self.index = KeywordIndex(path, Analyzer())
        self.md = Filters(kinds=("md",))

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        md = np.isin(ids, self.allowed).tolist()
        chunks = [
            IndexedChunk(i, text, "md" if m else "txt", (), ())
            for i, text, m in zip(ids.tolist(), texts, md, strict=True)
        ]
        self.index.apply((), chunks, None)

    def delete(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        self.index.apply(ids.tolist(), (), None)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> Ranking:
        return self.index.search(query, k, self.md if allowed is not None else None)

    def finish(self) -> None:
        pass

    def size(self) -> int:
        return self.index.nbytes()

    def close(self) -> None:
        pass


class Fts5:
    """An FTS5 table of Analyzer terms; one transaction per add or delete."""

    def __init__(self, path: Path, terms: Terms, *, contentless: bool) -> None:
        self.path, self.terms, self.contentless = path, terms, contentless
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")  # as the store's own connection
        self.db.execute("PRAGMA synchronous=NORMAL")
        content = ", content=''" if contentless else ""
        self.db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS kw USING fts5(terms, "
            f"tokenize=\"ascii tokenchars '_'\", detail=full{content})"
        )
        self.db.execute("CREATE TEMP TABLE allowed (id INTEGER PRIMARY KEY)")
        self._allowed: np.ndarray | None = None

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(sql, rows)
        self.db.execute("COMMIT")

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        rows = zip(ids.tolist(), map(self.terms, texts), strict=True)
        self._write("INSERT INTO kw (rowid, terms) VALUES (?, ?)", rows)

    def delete(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        if self.contentless:  # FTS5 must be told the terms it indexed to remove them
            rows = zip(ids.tolist(), map(self.terms, texts), strict=True)
            self._write("INSERT INTO kw (kw, rowid, terms) VALUES ('delete', ?, ?)", rows)
        else:
            self._write("DELETE FROM kw WHERE rowid = ?", [(i,) for i in ids.tolist()])

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> Ranking:
        tokens = self.terms.analyzer.tokens(query)
        if not tokens or k <= 0:
            return _no_hits()
        match = " OR ".join(f'"{t}"' for t in tokens)  # terms are \w runs: nothing to escape
        where = ""
        if allowed is not None:
            if allowed is not self._allowed:  # a filter's ids, kept while it is reused
                self._write("DELETE FROM temp.allowed", [()])
                self._write("INSERT INTO temp.allowed VALUES (?)", [(i,) for i in allowed.tolist()])
                self._allowed = allowed
            # "+rowid": a bare rowid IN (...) makes FTS5 run the query once per allowed id
            where = "AND +rowid IN (SELECT id FROM temp.allowed) "
        rows = self.db.execute(
            f"SELECT rowid, bm25(kw) AS s FROM kw WHERE kw MATCH ? {where}ORDER BY s LIMIT ?",
            (match, k),
        ).fetchall()
        if not rows:
            return _no_hits()
        ids, ranks = zip(*rows, strict=True)
        return np.array(ids, dtype=np.int64), -np.array(ranks, dtype=np.float32)

    def finish(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))

    def close(self) -> None:
        self.db.close()


def en_stem() -> tantivy.TextAnalyzer:
    """tantivy's built-in `en_stem` analyzer, rebuilt to analyse queries the same way."""
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    for step in (tantivy.Filter.remove_long(40), tantivy.Filter.lowercase()):
        builder = builder.filter(step)
    return builder.filter(tantivy.Filter.stemmer("english")).build()


class Tantivy:
    """A tantivy index: Analyzer terms on `whitespace`, or raw text on `en_stem`.

    With `kind_md` (the ids of the chunks the filter allows), each chunk also gets an indexed
    `kind` field ("md" for those, "txt" for the others) and a filtered search is a term query
    on it, as a store would index a document's kind, instead of a set of ids. With `by_path`,
    the field is the chunk's document path instead ("/corpus/0/1234.txt" for those, about 8
    chunks a document) and the filter a regular expression over paths, as a path glob
    ("/corpus/0/*") would become.
    """

    def __init__(
        self,
        path: Path,
        terms: Terms,
        *,
        own_analyzer: bool,
        kind_md: np.ndarray | None = None,
        by_path: bool = False,
    ) -> None:
        self.path, self.terms, self.kind_md, self.by_path = path, terms, kind_md, by_path
        self.analyze: Callable[[str], list[str]] = (
            en_stem().analyze if own_analyzer else terms.analyzer.tokens
        )
        self.prepare: Callable[[str], str] = (lambda text: text) if own_analyzer else terms
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("id", indexed=True, fast=True)
        tokenizer = "en_stem" if own_analyzer else "whitespace"
        builder.add_text_field("body", tokenizer_name=tokenizer, index_option="freq")
        if kind_md is not None:
            builder.add_text_field("kind", tokenizer_name="raw", index_option="basic")
        self.schema = builder.build()
        path.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        self.writer: tantivy.IndexWriter | None = None
        self.searcher = self.index.searcher()

    def _writer(self) -> tantivy.IndexWriter:
        if self.writer is None:  # one indexing thread, like the other engines
            self.writer = self.index.writer(128_000_000, 1)
        return self.writer

    def _commit(self) -> None:
        self._writer().commit()
        self.index.reload()
        self.searcher = self.index.searcher()

    def add(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        writer = self._writer()
        if self.kind_md is None:
            for chunk_id, text in zip(ids.tolist(), texts, strict=True):
                writer.add_document(tantivy.Document(id=chunk_id, body=self.prepare(text)))
        else:
            md = np.isin(ids, self.kind_md).tolist()
            for chunk_id, text, is_md in zip(ids.tolist(), texts, md, strict=True):
                kind = "md" if is_md else "txt"
                if self.by_path:
                    kind = f"/corpus/{0 if is_md else 1}/{chunk_id // 8}.txt"
                writer.add_document(
                    tantivy.Document(id=chunk_id, body=self.prepare(text), kind=kind)
                )
        self._commit()

    def delete(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        query = tantivy.Query.term_set_query(self.schema, "id", ids.tolist())
        self._writer().delete_documents_by_query(query)
        self._commit()

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> Ranking:
        tokens = self.analyze(query)
        if not tokens or k <= 0:
            return _no_hits()
        should = tantivy.Occur.Should
        q = tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self.schema, "body", t)) for t in tokens]
        )
        if allowed is not None:  # a zero-score filter clause: ranking unchanged
            ids = (
                tantivy.Query.term_set_query(self.schema, "id", allowed.tolist())
                if self.kind_md is None
                else tantivy.Query.regex_query(self.schema, "kind", "/corpus/0/.*")
                if self.by_path
                else tantivy.Query.term_query(self.schema, "kind", "md")
            )
            must = tantivy.Occur.Must
            q = tantivy.Query.boolean_query(
                [(must, tantivy.Query.const_score_query(ids, 0.0)), (must, q)]
            )
        hits = self.searcher.search(q, k, count=False).hits
        if not hits:
            return _no_hits()
        found = self.searcher.fast_field_values("id", [address for _, address in hits])
        scores = np.array([score for score, _ in hits], dtype=np.float32)
        return np.array(found, dtype=np.int64), scores

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.wait_merging_threads()
            self.writer = None
            self.index.reload()
            self.searcher = self.index.searcher()

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def close(self) -> None:
        self.finish()


Engine = Ours | Fts5 | Tantivy


def open_engine(name: str, directory: Path, terms: Terms, allowed: np.ndarray) -> Engine:
    """`allowed`: the chunks the filtered searches allow (indexed as a field by
    `tantivy-kind`)."""
    if name == "ours":
        return Ours(directory / "ours", allowed)
    if name.startswith("fts5"):
        path = directory / f"{name}.sqlite3"
        return Fts5(path, terms, contentless=name == "fts5-contentless")
    kind_md = allowed if name in ("tantivy-kind", "tantivy-path") else None
    return Tantivy(
        directory / name,
        terms,
        own_analyzer=name == "tantivy-en_stem",
        kind_md=kind_md,
        by_path=name == "tantivy-path",
    )


def remove_engine(name: str, directory: Path) -> None:
    if name == "ours":
        (directory / "ours.idx").unlink(missing_ok=True)  # the engine before tantivy
        remove(directory / "ours")
    for path in directory.glob(f"{name}.sqlite3*"):
        path.unlink()
    shutil.rmtree(directory / name, ignore_errors=True)  # tantivy's folder
