"""The Store protocol: contract tests for every backend (SqliteStore's derived indexes:
test_store_indexes.py).

Vectors come from `FakeEmbedder`: these tests are about storage, not about the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from askdocs.config import IndexSettings, SearchSettings
from askdocs.errors import IndexMismatch, NotFound
from askdocs.retrieval import retrieve
from askdocs.store import DocumentWrite, FileState, Filters, Store
from askdocs.store.sqlite import SqliteStore
from askdocs.testing import FakeEmbedder
from tests.conftest import PIPELINE

OpenStore = Callable[..., Store]


def open_sqlite(directory: Path, *, embedder_id: str, dim: int, hnsw_threshold: int) -> Store:
    return SqliteStore(
        directory,
        embedder_id=embedder_id,
        dim=dim,
        settings=IndexSettings(hnsw_threshold=hnsw_threshold),
    )


def open_postgres(url: str, *, embedder_id: str, dim: int, hnsw_threshold: int) -> Store:
    from askdocs.store.postgres import PostgresStore

    return PostgresStore(url, embedder_id=embedder_id, dim=dim)


# Every backend passes the same contract tests.
BACKENDS: dict[str, Callable[..., Store]] = {"sqlite": open_sqlite, "postgresql": open_postgres}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: FakeEmbedder
) -> Iterator[OpenStore]:
    """`open_store(name="store", *, embedder_id=fake's, dim=fake's, hnsw_threshold=20_000)`:
    the same `name` is the same store (a directory, or a database of the test server)."""
    opened: list[Store] = []
    urls: dict[str, str] = {}

    def open_(
        name: str = "store",
        *,
        embedder_id: str = fake_embedder.id,
        dim: int = fake_embedder.dim,
        hnsw_threshold: int = 20_000,
    ) -> Store:
        where: Path | str = tmp_path / name
        if request.param == "postgresql":
            if name not in urls:
                urls[name] = request.getfixturevalue("make_pg_url")()
            where = urls[name]
        store = BACKENDS[request.param](
            where, embedder_id=embedder_id, dim=dim, hnsw_threshold=hnsw_threshold
        )
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def link(write: DocumentWrite, path: str) -> DocumentWrite:
    """The same content under another path, as ingest sends it: without the document."""
    return dataclasses.replace(
        write, path=path, document=None, chunks=(), embeddings=None, text_hashes=()
    )


def paths(store: Store) -> list[str]:
    return [d.path for d in store.documents()]


def keyword_ids(store: Store, query: str, k: int = 10) -> list[int]:
    return store.search_keyword(query, k)[0].tolist()


def all_ids(store: Store) -> list[int]:
    """Every chunk id, through the protocol: the dense index holds them all."""
    return sorted(store.search_dense(np.ones(store.dim, np.float32), 10_000)[0].tolist())


ALPHA = ["Aardvarks dig burrows at night.", "They eat ants and termites."]
BETA = ["Beavers build dams from branches.", "Their lodges keep kits warm in winter."]
GAMMA = ["Capybaras are the largest rodents.", "They graze beside rivers and lakes."]


# -- contract ------------------------------------------------------------------------------


def test_written_chunks_come_back_with_their_document(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    write = make_write("/docs/alpha.pdf", ALPHA, kind="pdf", title="Alpha")
    store.write([write])
    [chunk_id] = keyword_ids(store, "termites")
    record = store.records([chunk_id])[chunk_id]
    assert (record.text, record.start, record.end) == (
        ALPHA[1],
        len(ALPHA[0]) + 2,
        len(write.document.text),
    )
    assert (record.page, record.heading, record.title, record.kind) == (2, "Alpha", "Alpha", "pdf")
    assert record.paths == ("/docs/alpha.pdf",)
    ids, scores = store.search_dense(write.embeddings[1], 1)
    assert ids.tolist() == [chunk_id] and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert store.records([]) == {}


def test_file_state_content_and_touch(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    write = make_write("/docs/alpha.txt", ALPHA)
    assert store.file_state(write.path) is None
    assert not store.has_content(write.content_hash, PIPELINE)
    store.write([write])
    assert store.file_state(write.path) == FileState(
        write.size, 1_000, write.content_hash, PIPELINE
    )
    assert store.has_content(write.content_hash, PIPELINE)
    assert not store.has_content(write.content_hash, "another-pipeline")
    [before] = store.documents()
    store.write([dataclasses.replace(link(write, write.path), mtime_ns=2_000)])  # touched
    assert store.file_state(write.path).mtime_ns == 2_000
    [after] = store.documents()
    assert (after.added_at, after.updated_at) == (before.added_at, before.updated_at)


def test_cached_embeddings_are_the_stored_vectors(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    write = make_write("/docs/alpha.txt", ALPHA)
    store.write([write])
    unknown = hashlib.sha256(b"never stored").digest()
    cached = store.cached_embeddings([*write.text_hashes, unknown, write.text_hashes[0]])
    assert set(cached) == set(write.text_hashes)
    for text_hash, vector in zip(write.text_hashes, write.embeddings, strict=True):
        np.testing.assert_array_equal(cached[text_hash], vector)


def test_identical_content_is_stored_once(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> None:
    store = open_store()
    write = make_write("/docs/alpha.txt", ALPHA)
    store.write([write, link(write, "/copies/alpha.txt")])
    store.write([link(write, "/more/alpha.txt")])
    status = store.status()
    assert (status.documents, status.contents, status.chunks) == (3, 1, 2)
    [chunk_id] = keyword_ids(store, "burrows")
    assert store.records([chunk_id])[chunk_id].paths == (
        "/docs/alpha.txt",
        "/copies/alpha.txt",
        "/more/alpha.txt",
    )
    [hit] = retrieve(
        store, fake_embedder, "burrows", settings=SearchSettings(), mode="keyword", k=5
    )
    assert (hit.path, hit.also_in) == ("/docs/alpha.txt", ("/copies/alpha.txt", "/more/alpha.txt"))
    # The content lives while any path points at it.
    assert store.remove(["/docs/alpha.txt", "/more/alpha.txt"]) == 2
    assert store.records([chunk_id])[chunk_id].paths == ("/copies/alpha.txt",)
    assert store.remove(["/copies/alpha.txt"]) == 1
    assert keyword_ids(store, "burrows") == [] and store.status().contents == 0


def test_changed_content_replaces_old_chunks_in_both_indexes(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    store.write([make_write("/docs/beta.txt", BETA)])
    old = make_write("/docs/animal.txt", ALPHA)
    store.write([old])
    old_ids = keyword_ids(store, "aardvarks termites")
    assert len(old_ids) == 2
    new = make_write("/docs/animal.txt", GAMMA)
    store.write([new])
    assert keyword_ids(store, "aardvarks termites") == []
    for vector in old.embeddings:
        assert not set(store.search_dense(vector, 10)[0].tolist()) & set(old_ids)
    assert store.records(old_ids) == {}
    assert store.file_state("/docs/animal.txt").content_hash == new.content_hash
    assert len(keyword_ids(store, "capybaras rivers")) == 2
    status = store.status()
    assert (status.documents, status.contents, status.chunks, status.in_sync) == (2, 2, 4, True)
    assert len(all_ids(store)) == 4


def test_content_a_batch_moves_to_another_path_is_kept(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    old = make_write("/docs/a.txt", ALPHA)
    store.write([old])
    [chunk_id, _] = sorted(keyword_ids(store, "aardvarks termites"))
    # a.txt gets new content and, in the same batch, b.txt links to a.txt's old content.
    store.write([make_write("/docs/a.txt", BETA), link(old, "/docs/b.txt")])
    assert store.records([chunk_id])[chunk_id].paths == ("/docs/b.txt",)
    status = store.status()
    assert (status.documents, status.contents, status.chunks, status.in_sync) == (2, 2, 4, True)


def test_a_failed_batch_stores_nothing(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    good = make_write("/docs/alpha.txt", ALPHA)
    orphan = link(make_write("/docs/beta.txt", BETA), "/docs/beta.txt")  # content never stored
    with pytest.raises(ValueError, match=r"beta\.txt"):
        store.write([good, orphan])
    assert paths(store) == [] and store.status().chunks == 0
    assert keyword_ids(store, "aardvarks") == [] and all_ids(store) == []


def test_remove_and_documents(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    store.write([make_write(p, t) for p, t in [("/b/beta.txt", BETA), ("/a/alpha.txt", ALPHA)]])
    store.write([make_write("/c/gamma.txt", GAMMA)])
    assert paths(store) == ["/a/alpha.txt", "/b/beta.txt", "/c/gamma.txt"]
    assert store.remove(["/b/beta.txt", "/not/stored.txt"]) == 1
    assert store.remove([]) == 0
    assert paths(store) == ["/a/alpha.txt", "/c/gamma.txt"]
    assert keyword_ids(store, "beavers lodges") == []
    assert store.file_state("/b/beta.txt") is None
    assert len(all_ids(store)) == 4 and store.status().in_sync


def test_filters_by_path_glob_and_kind(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    store.write(
        [
            make_write("/docs/notes/alpha.md", ALPHA, kind="md"),
            make_write("/docs/beta.pdf", BETA, kind="pdf"),
            make_write("/docs/notes/gamma.txt", GAMMA),
        ]
    )

    def texts(path_glob: str | None = None, kinds: tuple[str, ...] = ()) -> set[str]:
        filters = Filters(path_glob, kinds)
        ids = store.search_dense(np.ones(store.dim, np.float32), 100, filters)[0]
        found = {r.text for r in store.records(ids.tolist()).values()}
        # Keyword search admits exactly the same chunks ("they" is a stop word).
        by_keyword = store.search_keyword("aardvarks beavers capybaras they", 100, filters)[0]
        said = {r.text for r in store.records(by_keyword.tolist()).values()}
        assert said == found & {ALPHA[0], BETA[0], GAMMA[0]}
        return found

    assert len(store.search_dense(np.ones(store.dim, np.float32), 100, Filters())[0]) == 6
    assert texts(path_glob="*.md") == set(ALPHA)
    assert texts(path_glob="notes/*") == set(ALPHA + GAMMA)  # relative: matches anywhere
    assert texts(path_glob="/docs/*.pdf") == set(BETA)
    assert texts(kinds=("pdf", ".TXT")) == set(BETA + GAMMA)
    assert texts(path_glob="*/notes/*", kinds=("txt",)) == set(GAMMA)
    assert texts(path_glob="*.docx") == set()
    assert texts(path_glob="/docs/notes/[ag]*") == set(ALPHA + GAMMA)
    assert texts(path_glob="*/NOTES/*") == set()  # case-sensitive, like the file system
    only_md = store.search_keyword("graze ants", 10, Filters(kinds=("md",)))[0].tolist()
    assert only_md and {store.records(only_md)[i].kind for i in only_md} == {"md"}
    # the ids are kept per filter, and follow every change to the store
    store.write([make_write("/docs/delta.md", GAMMA, kind="md")])
    assert texts(kinds=("md",)) == set(ALPHA + GAMMA)
    store.remove(["/docs/notes/alpha.md"])
    assert texts(kinds=("md",)) == set(GAMMA)
    assert texts(path_glob="*.md") == set(GAMMA)


def test_a_path_linked_to_stored_content_passes_a_filter_kept_from_before(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    write = make_write("/a/alpha.txt", ALPHA)
    store.write([write])
    only_b = Filters("/b/*")
    assert store.search_keyword("aardvarks", 10, only_b)[0].tolist() == []
    store.write([link(write, "/b/alpha.txt")])  # no chunk added: the change log stays put
    assert len(store.search_keyword("aardvarks", 10, only_b)[0]) == 1
    store.remove(["/b/alpha.txt"])
    assert store.search_keyword("aardvarks", 10, only_b)[0].tolist() == []


def test_a_filter_holds_per_path_when_content_has_two(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    """One content under /a (tagged) and /b (not): a glob for /b and the tag must hold for
    the same path, as a document is one path."""
    store = open_store()
    write = make_write("/a/alpha.txt", ALPHA)
    store.write([write, link(write, "/b/alpha.txt"), make_write("/b/beta.txt", BETA)])
    store.tag("topic", {"/a/alpha.txt": "animals", "/b/beta.txt": "animals"})
    both = Filters("/b/*", tags=(("topic", "animals"),))
    query = "aardvarks beavers"
    by_keyword = store.search_keyword(query, 10, both)[0].tolist()
    by_dense = store.search_dense(np.ones(store.dim, np.float32), 10, both)[0].tolist()
    assert {r.text for r in store.records(by_keyword).values()} == {BETA[0]}
    assert {r.text for r in store.records(by_dense).values()} == set(BETA)
    tagged_a = Filters("/a/*", tags=(("topic", "animals"),))
    assert {
        r.text
        for r in store.records(store.search_keyword(query, 10, tagged_a)[0].tolist()).values()
    } == {ALPHA[0]}


def test_tags_are_set_overwritten_and_removed_per_path(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    store.write([make_write("/docs/alpha.txt", ALPHA), make_write("/docs/beta.txt", BETA)])
    assert store.tags("topic") == {}
    assert store.tag("topic", {"/docs/alpha.txt": "1", "/docs/beta.txt": "2"}) == 2
    assert store.tag("label", {"/docs/alpha.txt": "animal"}) == 1
    assert store.tags("topic") == {"/docs/alpha.txt": "1", "/docs/beta.txt": "2"}
    # Unchanged values and paths not stored do not count.
    assert store.tag("topic", {"/docs/alpha.txt": "1", "/docs/beta.txt": "3", "/no.txt": "1"}) == 1
    assert store.tags("topic") == {"/docs/alpha.txt": "1", "/docs/beta.txt": "3"}
    assert store.tag("topic", {"/docs/alpha.txt": None, "/docs/gone.txt": None}) == 1
    assert store.tag("topic", {"/docs/alpha.txt": None}) == 0
    assert store.tags("topic") == {"/docs/beta.txt": "3"}
    assert store.tags("label") == {"/docs/alpha.txt": "animal"}  # other keys untouched
    assert store.tag("topic", {}) == 0
    assert store.status().tags == {"label": 1, "topic": 1}
    with pytest.raises(TypeError, match="strings"):
        store.tag("topic", {"/docs/alpha.txt": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="key"):
        store.tag("", {"/docs/alpha.txt": "1"})
    assert store.tags("topic") == {"/docs/beta.txt": "3"}


def test_tags_stay_with_an_edited_path_and_go_with_a_removed_one(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    alpha = make_write("/docs/alpha.txt", ALPHA)
    store.write([alpha, link(alpha, "/docs/copy.txt"), make_write("/docs/beta.txt", BETA)])
    store.tag("label", {"/docs/alpha.txt": "a", "/docs/copy.txt": "c", "/docs/beta.txt": "b"})
    store.write([make_write("/docs/alpha.txt", GAMMA)])  # the file edited, ingested again
    store.write([dataclasses.replace(link(alpha, "/docs/beta.txt"), mtime_ns=5)])  # re-pointed
    assert store.tags("label") == {"/docs/alpha.txt": "a", "/docs/beta.txt": "b",
                                   "/docs/copy.txt": "c"}  # fmt: skip
    assert store.remove(["/docs/copy.txt"]) == 1
    assert store.tags("label") == {"/docs/alpha.txt": "a", "/docs/beta.txt": "b"}
    store.write([make_write("/docs/copy.txt", ALPHA)])  # the same path again: a new document
    assert "/docs/copy.txt" not in store.tags("label")
    store.close()
    again = open_store()
    assert again.tags("label") == {"/docs/alpha.txt": "a", "/docs/beta.txt": "b"}


def test_searches_filter_by_tags(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> None:
    store = open_store()
    store.write(
        [
            make_write("/docs/alpha.md", ALPHA, kind="md"),
            make_write("/docs/beta.txt", BETA),
            make_write("/docs/gamma.txt", GAMMA),
        ]
    )
    store.tag("topic", {"/docs/alpha.md": "animals", "/docs/beta.txt": "animals"})
    store.tag("label", {"/docs/beta.txt": "builders", "/docs/gamma.txt": "builders"})
    query = "aardvarks beavers capybaras they"

    def texts(filters: Filters | None, mode: str = "dense", on: Store = store) -> set[str]:
        if mode == "dense":
            ids = on.search_dense(np.ones(on.dim, np.float32), 100, filters)[0]
        else:  # the texts holding a query word
            ids = on.search_keyword(query, 100, filters)[0]
        return {r.text for r in on.records(ids.tolist()).values()}

    animals = Filters(tags=(("topic", "animals"),))
    for mode in ("dense", "keyword"):
        found = texts(None, mode)
        assert texts(animals, mode) == found & set(ALPHA + BETA)
        both = Filters(tags=(("topic", "animals"), ("label", "builders")))
        assert texts(both, mode) == found & set(BETA)
        txt_animals = Filters(kinds=("txt",), tags=(("topic", "animals"),))
        assert texts(txt_animals, mode) == found & set(BETA)
        assert texts(Filters(tags=(("topic", "plants"),)), mode) == set()
        assert texts(Filters(tags=(("builders", "label"),)), mode) == set()  # key, then value
    hybrid = retrieve(
        store, fake_embedder, query, settings=SearchSettings(), mode="hybrid", k=10,
        filters=animals,
    )  # fmt: skip
    assert hybrid and {h.path for h in hybrid} == {"/docs/alpha.md", "/docs/beta.txt"}
    # A tag written after a filtered search changes that same search's result at once, in
    # this store object and in another one.
    other = open_store()
    assert texts(animals) == texts(animals, on=other) == set(ALPHA + BETA)
    store.tag("topic", {"/docs/gamma.txt": "animals", "/docs/alpha.md": None})
    assert texts(animals) == texts(animals, on=other) == set(BETA + GAMMA)
    other.tag("topic", {"/docs/beta.txt": None})
    assert texts(animals) == set(GAMMA) and texts(animals, "keyword") == {GAMMA[0]}


def test_annotations_round_trip(open_store: OpenStore) -> None:
    store = open_store()
    assert store.annotation("topics") is None
    table = json.dumps({str(n): {"words": ["aardvark"] * 50, "size": n} for n in range(1000)})
    store.annotate("topics", table)
    store.annotate("labels", "[]")
    assert store.annotation("topics") == table and len(table) > 100_000
    store.annotate("labels", '["invoice"]')
    assert store.status().annotations == ("labels", "topics")
    store.annotate("topics", None)
    store.annotate("never stored", None)
    store.close()
    again = open_store()
    assert again.annotation("topics") is None
    assert again.annotation("labels") == '["invoice"]'
    assert again.status().annotations == ("labels",)


def test_status_reports_counts_embedder_and_sync(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> None:
    store = open_store()
    empty = store.status()
    assert (empty.documents, empty.chunks, empty.in_sync, empty.kinds) == (0, 0, True, {})
    write = make_write("/docs/alpha.md", ALPHA, kind="md")
    store.write(
        [write, link(write, "/docs/copy.md"), make_write("/docs/beta.pdf", BETA, kind="pdf")]
    )
    status = store.status()
    assert (status.documents, status.contents, status.chunks) == (3, 2, 4)
    assert status.kinds == {"md": 2, "pdf": 1}
    assert (status.embedder, status.dim) == (fake_embedder.id, fake_embedder.dim)
    assert status.in_sync and status.problems == ()
    assert status.bytes_on_disk > 0 and status.vector_index


def test_reopening_keeps_everything(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    store = open_store()
    store.write([make_write("/docs/alpha.txt", ALPHA), make_write("/docs/beta.txt", BETA)])
    before = keyword_ids(store, "dams ants"), all_ids(store), paths(store)
    store.close()
    again = open_store()
    assert (keyword_ids(again, "dams ants"), all_ids(again), paths(again)) == before
    assert again.status().in_sync


def test_another_embedder_is_refused_with_the_fix(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> None:
    open_store().close()
    with pytest.raises(IndexMismatch) as info:
        open_store(embedder_id="some-other-model:max512")
    message = str(info.value)
    assert fake_embedder.id in message and "some-other-model:max512" in message
    assert "ingest into a new --store" in message
    with pytest.raises(IndexMismatch, match="dim 768"):
        open_store(dim=768)


def test_a_second_store_object_sees_new_writes_on_its_next_search(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    writer, reader = open_store(), open_store()
    writer.write([make_write("/docs/alpha.txt", ALPHA)])
    assert len(keyword_ids(reader, "aardvarks ants")) == 2
    writer.write([make_write("/docs/alpha.txt", GAMMA), make_write("/docs/beta.txt", BETA)])
    assert keyword_ids(reader, "aardvarks ants") == []
    assert reader.search_dense(make_write("x", BETA).embeddings[0], 1)[0].tolist() == keyword_ids(
        writer, "beavers", 1
    )
    if isinstance(writer, SqliteStore):  # index files saved, log truncated: the reader must
        writer.sync()  # reload, not miss changes
    writer.remove(["/docs/beta.txt"])
    assert keyword_ids(reader, "beavers") == [] and len(all_ids(reader)) == 2
    assert reader.status().in_sync and paths(reader) == ["/docs/alpha.txt"]


def test_hnsw_backed_store_stays_in_sync(
    open_store: OpenStore, make_write: Callable[..., DocumentWrite]
) -> None:
    writer, reader = open_store(hnsw_threshold=4), open_store(hnsw_threshold=4)
    writer.write(
        [
            make_write(f"/docs/{n}.txt", [f"document {n} part {i}" for i in range(3)])
            for n in range(30)
        ]
    )
    assert "hnsw" in reader.status().vector_index
    # Chunks added and deleted between two of the reader's catch-ups never reach its index
    # (few enough deletes that no compaction hides a miscount).
    writer.write([make_write("/docs/0.txt", GAMMA)])
    writer.write([make_write("/docs/0.txt", BETA)])
    writer.remove(["/docs/1.txt"])
    for store in (writer, reader):
        status = store.status()
        assert (status.chunks, status.in_sync) == (86, True), status.problems
        assert len(all_ids(store)) == 86
    assert keyword_ids(reader, "capybaras") == [] and len(keyword_ids(reader, "beavers")) == 1


def test_a_missing_store_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="askdocs ingest"):
        SqliteStore(tmp_path / "nowhere", embedder_id="x", dim=4, create=False)
    assert not (tmp_path / "nowhere").exists()


def test_a_sqlite_store_made_before_tags_gains_them_at_schema_1(
    tmp_path: Path, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> None:
    opened = {"directory": tmp_path / "store", "embedder_id": fake_embedder.id,
              "dim": fake_embedder.dim}  # fmt: skip
    with SqliteStore(**opened) as store:
        store.write([make_write("/docs/alpha.txt", ALPHA)])
    db = sqlite3.connect(tmp_path / "store" / "askdocs.sqlite3")
    with db:  # as an askdocs before tags left it
        db.execute("DROP TABLE tags")
        db.execute("DROP TABLE annotations")
    db.close()
    with SqliteStore(**opened) as store:
        assert store.tag("topic", {"/docs/alpha.txt": "animals"}) == 1
        store.annotate("topics", "{}")
        only = Filters(tags=(("topic", "animals"),))
        assert len(store.search_keyword("aardvarks", 5, only)[0]) == 1
    db = sqlite3.connect(tmp_path / "store" / "askdocs.sqlite3")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    db.close()


def test_a_missing_postgresql_store_is_not_created_and_a_bad_url_is_named(
    make_pg_url: Callable[[], str],
) -> None:
    from askdocs.store import recorded_embedder
    from askdocs.store.postgres import PostgresStore

    url = make_pg_url()
    with pytest.raises(NotFound, match="askdocs ingest"):
        PostgresStore(url, embedder_id="x", dim=4, create=False)
    assert recorded_embedder(url) is None  # nothing was created
    PostgresStore(url, embedder_id="x", dim=4).close()
    assert recorded_embedder(url) == "x"
    unreachable = "postgresql://someone:secret@127.0.0.1:9/nothing"
    with pytest.raises(NotFound, match="cannot reach") as info:
        PostgresStore(unreachable, embedder_id="x", dim=4)
    assert "secret" not in str(info.value)  # the password is not repeated
