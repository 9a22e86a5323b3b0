"""SqliteStore's derived indexes: the vector file and tantivy's keyword folder, kept in step
with SQLite through damage, crashes, other processes and a full disk.

Vectors come from `FakeEmbedder`: these tests are about storage, not about the model.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from askdocs import vectors
from askdocs.config import IndexSettings
from askdocs.errors import StorageFull
from askdocs.store import DocumentWrite, Filters, keywords
from askdocs.store.keyword_sync import KeywordSync
from askdocs.store.keywords import KeywordIndex
from askdocs.store.locking import WriteLock
from askdocs.store.sqlite import SqliteStore
from askdocs.testing import FakeEmbedder
from askdocs.vectors import VectorIndex
from tests.test_store import ALPHA, BETA, GAMMA, keyword_ids, paths

# -- SqliteStore: derived index files ------------------------------------------------------


@pytest.fixture
def filled(
    tmp_path: Path, make_write: Callable[..., DocumentWrite], fake_embedder: FakeEmbedder
) -> Path:
    """A closed store directory holding three documents, its index files saved."""
    with SqliteStore(
        tmp_path / "store", embedder_id=fake_embedder.id, dim=fake_embedder.dim
    ) as store:
        store.write([make_write("/docs/alpha.txt", ALPHA), make_write("/docs/beta.txt", BETA)])
        store.write([make_write("/docs/gamma.txt", GAMMA)])
    return tmp_path / "store"


def results(store: SqliteStore, fake_embedder: FakeEmbedder) -> list[object]:
    queries = ["aardvarks", "they", "beavers winter", "rodents rivers lakes"]
    return [store.search_keyword(q, 10)[0].tolist() for q in queries] + [
        store.search_dense(v, 10)[0].tolist() for v in fake_embedder.embed(queries)
    ]


def open_at(directory: Path, fake_embedder: FakeEmbedder) -> SqliteStore:
    return SqliteStore(directory, embedder_id=fake_embedder.id, dim=fake_embedder.dim)


def die(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def only(directory: Path, stem: str) -> Path:
    """The vector file, or the largest file of tantivy's keyword folder."""
    if stem == "keywords":
        return max((directory / "keywords").rglob("*.idx"), key=lambda p: p.stat().st_size)
    [path] = directory.glob(f"{stem}-*.idx")
    return path


def drop_keywords(directory: Path) -> None:
    shutil.rmtree(directory / "keywords")
    (directory / "keywords.json").unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "vectors-deleted": lambda d: only(d, "vectors").unlink(),
    "keywords-deleted": drop_keywords,
    "keywords-position-deleted": lambda d: (d / "keywords.json").unlink(),
    "both-deleted": lambda d: drop_keywords(d) or only(d, "vectors").unlink(),
    "vectors-empty": lambda d: only(d, "vectors").write_bytes(b""),
    "vectors-truncated": lambda d: only(d, "vectors").write_bytes(
        only(d, "vectors").read_bytes()[:300]
    ),
    "vectors-zip-like": lambda d: only(d, "vectors").write_bytes(b"PK\x03\x04" + bytes(500)),
    "keywords-meta-truncated": lambda d: (d / "keywords" / "meta.json").write_bytes(
        (d / "keywords" / "meta.json").read_bytes()[:-9]
    ),
    "keywords-meta-garbage": lambda d: (d / "keywords" / "meta.json").write_bytes(
        bytes(range(256)) * 4
    ),
    "keywords-position-garbage": lambda d: (d / "keywords.json").write_text("{[}"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_index_files_are_rebuilt_when_missing_or_damaged(
    filled: Path,
    fake_embedder: FakeEmbedder,
    damage: str,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    with open_at(filled, fake_embedder) as store:
        expected = results(store, fake_embedder)
    DAMAGE[damage](filled)
    with open_at(filled, fake_embedder) as store:
        assert results(store, fake_embedder) == expected
        assert_consistent(store)
    # The rebuilt files are good ones: the next open loads them as they are.
    with open_at(filled, fake_embedder) as store:
        assert results(store, fake_embedder) == expected


def flip_bytes(path: Path) -> None:
    """XOR 64 bytes in the middle of the file: vectors (or postings), not a header."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit-flips", "from-another-store"])
@pytest.mark.parametrize("stem", ["vectors", "keywords"])
def test_damaged_or_foreign_index_files_are_caught_and_rebuilt(
    filled: Path,
    tmp_path: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    stem: str,
    damage: str,
) -> None:
    """Neither leaves the chunk ids or counts wrong, so only a checksum or the file's tag
    (store and position) can tell: without them, search quietly ranked the wrong vectors."""
    with open_at(filled, fake_embedder) as store:
        expected = results(store, fake_embedder)
    target = only(filled, stem)
    if damage == "bit-flips":
        flip_bytes(target)
    else:
        # Another store of the same shape (three documents of two chunks: the same chunk
        # ids and counts) about other things; its file copied in under this store's name.
        with open_at(tmp_path / "other", fake_embedder) as other:
            other.write([make_write("/x/a.txt", GAMMA), make_write("/x/b.txt", ALPHA)])
            other.write([make_write("/x/c.txt", BETA)])
        if stem == "vectors":
            shutil.copy(only(tmp_path / "other", stem), target)
        else:  # tantivy's folder and its position, both from the other store
            drop_keywords(filled)
            shutil.copytree(tmp_path / "other" / "keywords", filled / "keywords")
            shutil.copy(tmp_path / "other" / "keywords.json", filled / "keywords.json")
    with open_at(filled, fake_embedder) as store:
        status = store.status()
        assert status.in_sync
        [note] = status.notes
        foreign_keywords = (stem, damage) == ("keywords", "from-another-store")
        named = "another store" if foreign_keywords else target.name
        assert named in note and f"rebuilt the {stem[:-1]} index from SQLite" in note
        assert results(store, fake_embedder) == expected
        assert_consistent(store)
    with open_at(filled, fake_embedder) as store:  # the rebuilt files load as they are
        assert store.status().notes == ()
        assert results(store, fake_embedder) == expected


@pytest.mark.parametrize(
    "change",
    [{"title_in_keywords": False}],
    ids=["title"],
)
def test_changed_keyword_settings_rebuild_the_keyword_index(
    filled: Path, fake_embedder: FakeEmbedder, change: dict[str, object]
) -> None:
    def scores(settings: IndexSettings) -> list[float]:
        with SqliteStore(
            filled, embedder_id=fake_embedder.id, dim=fake_embedder.dim, settings=settings
        ) as store:
            return store.search_keyword("beavers rivers winter", 10)[1].tolist()

    before = scores(IndexSettings())
    changed = scores(dataclasses.replace(IndexSettings(), **change))
    assert changed != before  # the saved index, built with other settings, was not reused
    assert scores(IndexSettings()) == before  # and going back rebuilds it as it was


def test_index_files_behind_sqlite_are_caught_up_from_the_log(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_at(filled, fake_embedder) as writer:
        # Committed to SQLite, but neither the vector file saved nor the keyword index
        # committed, as after a crash.
        with monkeypatch.context() as crashed:
            crashed.setattr(KeywordIndex, "apply", lambda *args, **kwargs: None)
            writer.write([make_write("/docs/alpha.txt", ["Aardvarks again.", "New text."])])
            writer.remove(["/docs/beta.txt"])
            writer.write([make_write("/docs/delta.txt", ["Dolphins sleep with half a brain."])])
            writer.tag("topic", {"/docs/gamma.txt": "rodents"})

        def no_rebuild(self: object) -> None:
            raise AssertionError("rebuilt from scratch instead of replaying the log")

        with monkeypatch.context() as replay_only:
            replay_only.setattr(SqliteStore, "_rebuild_vectors", no_rebuild)
            replay_only.setattr(KeywordSync, "rebuild", no_rebuild)
            with open_at(filled, fake_embedder) as reader:
                found = results(reader, fake_embedder)
                assert_consistent(reader)
                assert keyword_ids(reader, "dolphins") and not keyword_ids(reader, "termites")
                tagged = Filters(tags=(("topic", "rodents"),))
                assert len(reader.search_keyword("capybaras", 10, tagged)[0]) == 1
        writer._db.close()  # no clean close: nothing more reaches the disk
        writer._db = None  # type: ignore[assignment]
    # The same as indexes built from SQLite alone.
    for path in filled.glob("*.idx"):
        path.unlink()
    drop_keywords(filled)
    with open_at(filled, fake_embedder) as rebuilt:
        assert results(rebuilt, fake_embedder) == found


def test_old_index_files_copied_back_are_not_trusted(
    filled: Path,
    tmp_path: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    for path in filled.glob("*.idx"):
        shutil.copy2(path, backup / path.name)
    with open_at(filled, fake_embedder) as store:
        store.remove(["/docs/gamma.txt"])
        store.write([make_write("/docs/delta.txt", ["Dolphins sleep with half a brain."])])
        expected = results(store, fake_embedder)
    for path in filled.glob("*.idx"):
        path.unlink()
    for path in backup.iterdir():
        shutil.copy2(path, filled / path.name)
    with open_at(filled, fake_embedder) as store:
        assert results(store, fake_embedder) == expected
        assert_consistent(store)
        assert keyword_ids(store, "dolphins") and not keyword_ids(store, "capybaras")


def test_a_crash_between_the_keyword_commit_and_its_position_is_recovered(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tantivy committed the changes, `keywords.json` still names the position before
    them: opening replays them again, and a chunk added twice is still there once."""
    with open_at(filled, fake_embedder) as store:
        before = keywords.recorded(filled)
        monkeypatch.setattr(KeywordIndex, "_record", die)
        with pytest.raises(KeyboardInterrupt):
            store.write([make_write("/docs/delta.txt", ["Dolphins sleep with half a brain."])])
        monkeypatch.undo()
        store._db.close()  # no clean close: nothing more reaches the disk
        store._db = None  # type: ignore[assignment]
    assert keywords.recorded(filled) == before
    with open_at(filled, fake_embedder) as store:
        assert keywords.recorded(filled) != before
        assert len(keyword_ids(store, "dolphins")) == 1
        assert_consistent(store)


def test_temp_files_left_by_a_crash_are_removed_on_open(
    filled: Path, fake_embedder: FakeEmbedder, assert_consistent: Callable[[SqliteStore], None]
) -> None:
    leftovers = [filled / "vectors-000000000099.idx.tmp", filled / ".keywords-x.idx.abc.tmp"]
    for path in leftovers:
        path.write_bytes(b"half of an index")
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # from a crash an hour ago
    with open_at(filled, fake_embedder) as store:
        assert_consistent(store)
    assert not [p for p in leftovers if p.exists()]


def test_opening_a_store_while_another_saves_its_indexes_breaks_neither(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rename = os.replace

    def open_another_store_then_rename(src: Path, dst: Path) -> None:
        monkeypatch.setattr(vectors.os, "replace", rename)
        open_at(filled, fake_embedder).close()  # e.g. `askdocs search` starting meanwhile
        rename(src, dst)

    with open_at(filled, fake_embedder) as writer:
        writer.write([make_write("/docs/delta.txt", ["Dolphins sleep with half a brain."])])
        monkeypatch.setattr(vectors.os, "replace", open_another_store_then_rename)
        writer.sync()
        assert_consistent(writer)


# -- SqliteStore: a full disk ----------------------------------------------------------------


def no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("files", ["behind", "missing"])
def test_index_files_that_cannot_be_saved_on_a_full_disk_leave_reads_working(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
    files: str,
) -> None:
    """Simulated fault: saving an index file raises ENOSPC, as on a full disk.

    The write that filled the disk was committed; the next `status` or `search` replays the
    log (or rebuilds from SQLite) in memory, cannot save the result, and says so.
    """
    with open_at(filled, fake_embedder) as writer:
        writer.write([make_write("/docs/delta.txt", ["Dolphins sleep with half a brain."])])
        expected = results(writer, fake_embedder)
        monkeypatch.setattr(VectorIndex, "save", no_space)
        apply = KeywordIndex.apply

        def apply_on_a_full_disk(index: KeywordIndex, *args: object) -> None:
            if not index.in_memory:
                no_space()
            apply(index, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(KeywordIndex, "apply", apply_on_a_full_disk)
    # the writer's close could not save its indexes either, and did not fail for it
    if files == "missing":
        for path in filled.glob("*.idx"):
            path.unlink()
        drop_keywords(filled)
    with open_at(filled, fake_embedder) as reader:
        status = reader.status()
        assert (status.in_sync, status.documents) == (True, 4)
        reader.sync()  # as closing it does: this save fails too
        notes = reader.status().notes
        assert len(notes) == (2 if files == "missing" else 1)  # the vectors; the keywords
        for note in notes:
            assert str(filled) in note and "the disk is full" in note and "memory" in note
        assert results(reader, fake_embedder) == expected
        assert_consistent(reader)
    monkeypatch.undo()  # space freed: the next open saves its indexes
    with open_at(filled, fake_embedder) as store:
        assert store.status().notes == ()
    with open_at(filled, fake_embedder) as store:
        assert results(store, fake_embedder) == expected
        assert len(list(filled.glob("*.idx"))) == 1 and keywords.recorded(filled)


def test_sqlite_on_a_full_disk_raises_storage_full_and_loses_nothing(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    """A real SQLITE_FULL ("database or disk is full"): the database may not grow past its
    size (PRAGMA max_page_count), as when the disk under it is full."""
    with open_at(filled, fake_embedder) as store:
        expected = results(store, fake_embedder)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        big = make_write("/docs/big.txt", [f"paragraph {n} " + "words " * 200 for n in range(40)])
        with pytest.raises(StorageFull) as info:
            store.write([big])
        message = str(info.value)
        assert f"the disk holding the store {filled} is full" in message
        assert "Free some space" in message and "ingest resumes" in message
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        # nothing half-written; the store keeps answering, and takes writes again
        assert paths(store) == ["/docs/alpha.txt", "/docs/beta.txt", "/docs/gamma.txt"]
        assert results(store, fake_embedder) == expected
        assert_consistent(store)
        store._db.execute("PRAGMA max_page_count = 1073741823")
        store.write([big])
        assert store.status().documents == 4


# -- SqliteStore: the keyword index shared by processes -----------------------------------


def test_a_search_while_another_writer_holds_the_lock_leaves_out_what_it_deleted(
    filled: Path,
    fake_embedder: FakeEmbedder,
    make_write: Callable[..., DocumentWrite],
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the write lock's holder writes the keyword index. A reader that finds it behind
    the log (a writer died between its SQLite commit and its keyword commit, and another
    writer holds the lock) must not return chunks deleted since, and catches the index up
    once the lock is free."""
    with open_at(filled, fake_embedder) as reader:
        [termites] = keyword_ids(reader, "termites")
        died = open_at(filled, fake_embedder)
        with monkeypatch.context() as behind:
            behind.setattr(KeywordIndex, "apply", lambda *args, **kwargs: None)
            died.remove(["/docs/alpha.txt"])
            died.write([make_write("/docs/delta.txt", ["Dolphins eat termites too."])])
        died._db.close()  # no clean close
        died._db = None  # type: ignore[assignment]
        died._write_lock.close()
        holder = WriteLock(filled)  # another writer, as another process would hold it
        with holder.held("test"):
            found = keyword_ids(reader, "termites")
            assert termites not in found and reader._keywords.seq < reader._head()
        holder.close()
        texts = [r.text for r in reader.records(keyword_ids(reader, "termites")).values()]
        assert texts == ["Dolphins eat termites too."]
        assert reader._keywords.seq == reader._head()
        assert_consistent(reader)


def test_a_second_store_object_sees_a_tag_in_keyword_filters_at_once(
    filled: Path, fake_embedder: FakeEmbedder
) -> None:
    with open_at(filled, fake_embedder) as writer, open_at(filled, fake_embedder) as reader:
        rodents = Filters(tags=(("topic", "rodents"),))
        assert (
            keyword_ids(reader, "capybaras")
            and not reader.search_keyword("capybaras", 10, rodents)[0].size
        )
        writer.tag("topic", {"/docs/gamma.txt": "rodents"})
        assert len(reader.search_keyword("capybaras", 10, rodents)[0]) == 1
        writer.tag("topic", {"/docs/gamma.txt": None})
        assert not reader.search_keyword("capybaras", 10, rodents)[0].size


def test_keyword_files_of_older_versions_are_replaced(
    filled: Path, fake_embedder: FakeEmbedder, assert_consistent: Callable[[SqliteStore], None]
) -> None:
    """A store made before the keyword index moved to tantivy: `keywords-<seq>.idx`, no
    folder. Opening it builds the folder from SQLite and deletes the old file."""
    with open_at(filled, fake_embedder) as store:
        expected = results(store, fake_embedder)
    drop_keywords(filled)
    old = filled / "keywords-000000000006.idx"
    old.write_bytes(b"ASKDOCS-KEYWORD\n" + bytes(200))
    with open_at(filled, fake_embedder) as store:
        assert results(store, fake_embedder) == expected
        assert store.status().notes == ()
        assert_consistent(store)
    assert not old.exists() and keywords.recorded(filled) is not None


def test_status_counts_the_keyword_folder_on_disk(
    filled: Path, fake_embedder: FakeEmbedder
) -> None:
    folder = sum(p.stat().st_size for p in (filled / "keywords").iterdir() if p.is_file())
    top = sum(p.stat().st_size for p in filled.iterdir() if p.is_file())
    with open_at(filled, fake_embedder) as store:
        assert folder > 0 and store.status().bytes_on_disk >= top + folder
