"""`kill -9` during ingest leaves a store that opens consistent, and re-running ingest finishes.

A real `askdocs ingest` subprocess (real model, small commit batches) is killed once some of
its batches are committed: first while filling a new store, then while updating a store
whose index files were saved by a completed run (so reopening replays the change log).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from askdocs.kb import KnowledgeBase
from askdocs.store.keyword_sync import KeywordSync
from askdocs.store.sqlite import DATABASE, SqliteStore

MakeKb = Callable[..., KnowledgeBase]
N_FILES = 150
N_NEW = 60  # added before the second run
TOPICS = ["harbour", "glacier", "orchard", "lighthouse", "meadow", "quarry", "vineyard", "canyon"]


def write_note(folder: Path, n: int, *, version: str = "first") -> None:
    """A short, distinct note: about 25 tokens, so re-running ingest embeds quickly."""
    topic = TOPICS[n % len(TOPICS)]
    (folder / f"note-{n:03d}.txt").write_text(
        f"Note {n}\n\nAt the {topic} we logged item{n}x{version} and {n * 7 % 97} birds.\n"
    )


def committed_documents(store: Path) -> int:
    """Documents committed so far, read without disturbing the writer (read-only, no lock)."""
    try:
        db = sqlite3.connect(f"file:{store / DATABASE}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return 0
    try:
        return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy for a moment
        return 0
    finally:
        db.close()


def kill_during_ingest(askdocs: str, folder: Path, store: Path, *, once_committed: int) -> int:
    """Run `askdocs ingest`, SIGKILL it once `once_committed` documents are committed.

    Returns the number committed at the kill; fails if the run ended before it was killed.
    """
    env = {
        **os.environ,
        "ASKDOCS_STORE": str(store),
        "ASKDOCS_INGEST__BATCH_CHUNKS": "8",
        "ASKDOCS_EMBEDDING__INT8": "false",  # the float encoder of the `embedder` fixture
    }
    process = subprocess.Popen(
        [askdocs, "ingest", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while committed_documents(store) < once_committed:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "ingest committed too little in 90 s"
            time.sleep(0.01)
        assert process.poll() is None, "ingest finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    return committed_documents(store)


def count_rows(store: Path, sql: str) -> int:
    db = sqlite3.connect(f"file:{store / DATABASE}?mode=ro", uri=True)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def assert_recovered(
    kb: KnowledgeBase, committed: int, assert_consistent: Callable[[SqliteStore], None]
) -> None:
    """The store opened after a kill agrees with itself and answers searches."""
    assert_consistent(kb.store)
    assert kb.status().documents == committed
    assert kb.search("birds at the glacier", mode="hybrid", k=3)


def assert_rerun_completes(
    kb: KnowledgeBase, folder: Path, total: int, assert_consistent: Callable[[SqliteStore], None]
) -> None:
    """Ingesting again stores every file once, and nothing twice."""
    before = kb.status().documents
    report = kb.ingest([folder])
    assert report.failed == []
    assert report.added == total - before
    assert report.added + report.updated + report.unchanged == total
    status = kb.status()
    assert (status.documents, status.contents) == (total, total)
    assert_consistent(kb.store)
    store = kb.store.directory
    duplicate_paths = (
        "SELECT COUNT(*) FROM (SELECT 1 FROM documents GROUP BY path HAVING COUNT(*) > 1)"
    )
    assert count_rows(store, duplicate_paths) == 0
    assert (
        count_rows(store, "SELECT COUNT(*) - COUNT(DISTINCT content_id || ':' || ord) FROM chunks")
        == 0
    )
    orphans = "SELECT COUNT(*) FROM contents WHERE id NOT IN (SELECT content_id FROM documents)"
    assert count_rows(store, orphans) == 0


def keyword_paths(kb: KnowledgeBase, query: str) -> list[str]:
    return [Path(hit.path).name for hit in kb.search(query, mode="keyword", k=3)]


def test_kill_9_while_filling_then_while_updating_a_store(
    tmp_path: Path,
    askdocs_exe: str,
    make_kb: MakeKb,
    assert_consistent: Callable[[SqliteStore], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, store = tmp_path / "notes", tmp_path / "store"
    folder.mkdir()
    for n in range(N_FILES):
        write_note(folder, n)

    # 1. Killed while filling a new store: reopening replays the log onto empty indexes.
    committed = kill_during_ingest(askdocs_exe, folder, store, once_committed=24)
    assert 24 <= committed < N_FILES
    kb = make_kb(store)
    assert_recovered(kb, committed, assert_consistent)
    assert keyword_paths(kb, "item3xfirst") == ["note-003.txt"]
    assert_rerun_completes(kb, folder, N_FILES, assert_consistent)
    kb.close()

    # 2. Killed while updating a store whose index files a completed run saved.
    for n in range(0, 20, 2):
        write_note(folder, n, version="second")
    for n in range(N_FILES, N_FILES + N_NEW):
        write_note(folder, n)
    committed = kill_during_ingest(askdocs_exe, folder, store, once_committed=N_FILES + 16)
    assert N_FILES + 16 <= committed < N_FILES + N_NEW
    with monkeypatch.context() as patch:
        # The saved indexes plus the log must be enough: no rebuild from scratch.
        patch.setattr(SqliteStore, "_rebuild_vectors", no_rebuild)
        patch.setattr(KeywordSync, "rebuild", no_rebuild)
        kb = make_kb(store)
        assert_recovered(kb, committed, assert_consistent)
    # The changed files come first in the folder, so their new versions were committed.
    assert keyword_paths(kb, "item0xsecond") == ["note-000.txt"]
    assert keyword_paths(kb, "item0xfirst") == []
    assert_rerun_completes(kb, folder, N_FILES + N_NEW, assert_consistent)
    assert keyword_paths(kb, "item18xsecond item18xfirst") == ["note-018.txt"]
    assert keyword_paths(kb, "item18xfirst") == []


def no_rebuild(self: object) -> None:
    raise AssertionError("rebuilt the indexes from scratch instead of replaying the log")
