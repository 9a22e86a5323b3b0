"""Ingest through the library: incremental updates, dedup, removal, bad input, search modes.

Bookkeeping tests use `FakeEmbedder` (they are about what gets stored and re-embedded, not
about the model); the search tests use the real one.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from askdocs.ingest import IngestReport, Progress
from askdocs.kb import KnowledgeBase
from askdocs.readers import read
from askdocs.retrieval import Filters
from askdocs.store.sqlite import SqliteStore
from askdocs.testing import FakeEmbedder

MakeKb = Callable[..., KnowledgeBase]

# Eight paragraphs of ~30 tokens: with chunks of 40 tokens, about one chunk each.
LONG = "Field journal\n\n" + "\n\n".join(
    f"Entry {n}: the {animal} was seen near the {place} at dawn, feeding quietly while the "
    f"rest of the group kept watch from the reeds along the water."
    for n, (animal, place) in enumerate(
        zip(
            ["heron", "otter", "beaver", "kingfisher", "egret", "vole", "stoat", "marten"],
            ["weir", "mill", "ford", "bridge", "lock", "jetty", "sluice", "ferry"],
            strict=True,
        )
    )
)


def counts(report: IngestReport) -> tuple[int, int, int, int]:
    return report.added, report.updated, report.unchanged, report.removed


def paths_of(kb: KnowledgeBase, query: str, **kwargs: object) -> list[str]:
    return [Path(hit.path).name for hit in kb.search(query, k=20, **kwargs)]


@pytest.fixture
def fake() -> FakeEmbedder:
    """A fresh fake per test, so `calls` counts only this test's embedding."""
    return FakeEmbedder()


# -- incremental ingest -------------------------------------------------------------------


def test_a_second_run_finds_everything_unchanged_and_embeds_nothing(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    kb = make_kb(embedder=fake)
    events: list[Progress] = []
    first = kb.ingest([docs_dir], progress=events.append)
    assert counts(first) == (6, 0, 0, 0) and first.failed == []
    assert first.chunks >= 6 and first.embedded == first.chunks
    assert (events[-1].files_done, events[-1].files_total) == (6, 6)
    calls = len(fake.calls)
    second = kb.ingest([docs_dir])
    assert counts(second) == (0, 0, 6, 0)
    assert (second.chunks, second.embedded, len(fake.calls)) == (0, 0, calls)
    # A new mtime with the same bytes: hashed, found equal, not re-chunked.
    os.utime(docs_dir / "espresso.txt", ns=(1_000_000_000, 1_000_000_000))
    third = kb.ingest([docs_dir])
    assert counts(third) == (0, 0, 6, 0) and len(fake.calls) == calls
    state = kb.store.file_state(str(docs_dir / "espresso.txt"))
    assert state is not None and state.mtime_ns == 1_000_000_000


def test_a_changed_file_replaces_its_old_chunks(
    make_kb: MakeKb,
    docs_dir: Path,
    fake: FakeEmbedder,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    kb = make_kb(embedder=fake)
    kb.ingest([docs_dir])
    assert paths_of(kb, "limescale citric", mode="keyword") == ["espresso.txt"]
    (docs_dir / "espresso.txt").write_text(
        "Grinding coffee\n\nA burr grinder gives an even grind; blade grinders chop unevenly.\n"
    )
    report = kb.ingest([docs_dir])
    assert counts(report) == (0, 1, 5, 0)
    assert paths_of(kb, "limescale citric", mode="keyword") == []
    assert paths_of(kb, "burr grinder", mode="keyword") == ["espresso.txt"]
    status = kb.status()
    assert (status.documents, status.contents) == (6, 6)
    assert_consistent(kb.store)


def test_unchanged_paragraphs_keep_their_embeddings(
    make_kb: MakeKb, tmp_path: Path, fake: FakeEmbedder
) -> None:
    folder = tmp_path / "journal"
    folder.mkdir()
    (folder / "journal.txt").write_text(LONG)
    kb = make_kb(embedder=fake, overrides={"chunking.size": 40, "chunking.overlap": 0})
    first = kb.ingest([folder])
    assert first.chunks >= 6 and first.embedded == first.chunks
    (folder / "journal.txt").write_text(LONG.replace("the egret was seen", "the egret was heard"))
    second = kb.ingest([folder])
    assert counts(second) == (0, 1, 0, 0)
    assert second.chunks == first.chunks  # every chunk is stored again for the new content...
    assert 1 <= second.embedded <= 2  # ...but only the edited one needed the model
    assert paths_of(kb, "egret heard", mode="keyword") == ["journal.txt"]


def test_identical_files_are_stored_once(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    (docs_dir / "copies").mkdir()
    shutil.copy(docs_dir / "espresso.txt", docs_dir / "copies" / "espresso-copy.txt")
    kb = make_kb(embedder=fake)
    first = kb.ingest([docs_dir])
    assert counts(first) == (7, 0, 0, 0)
    only_once = first.chunks
    shutil.copy(docs_dir / "espresso.txt", docs_dir / "later-copy.txt")
    second = kb.ingest([docs_dir])
    assert counts(second) == (1, 0, 7, 0) and (second.chunks, second.embedded) == (0, 0)
    status = kb.status()
    assert (status.documents, status.contents, status.chunks) == (8, 6, only_once)
    [hit] = [h for h in kb.search("limescale", mode="keyword") if "espresso" in h.path]
    names = sorted(Path(p).name for p in (hit.path, *hit.also_in))
    assert names == ["espresso-copy.txt", "espresso.txt", "later-copy.txt"]


def test_the_same_bytes_under_another_file_type_are_read_as_that_type(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    (docs_dir / "volcanoes.txt").write_bytes((docs_dir / "volcanoes.md").read_bytes())
    kb = make_kb(embedder=fake)
    report = kb.ingest([docs_dir])
    assert report.added == 7 and report.embedded == report.chunks
    for kind, title in (("md", "Volcanoes"), ("txt", "# Volcanoes")):
        [hit] = kb.search("pumice", mode="keyword", filters=Filters(None, (kind,)))
        assert (Path(hit.path).name, hit.kind, hit.title, hit.also_in) == (
            f"volcanoes.{kind}",
            kind,
            title,
            (),
        )


def test_a_file_is_one_document_however_its_path_is_spelled(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = make_kb(embedder=fake)
    kb.ingest([docs_dir, docs_dir / "notes"])  # overlapping roots: each file once
    monkeypatch.chdir(docs_dir / "notes")
    again = kb.ingest(["../espresso.txt", docs_dir / "notes" / ".." / "volcanoes.md", "."])
    assert counts(again) == (0, 0, 3, 0)
    assert len([d.path for d in kb.documents()]) == 6
    assert kb.remove([docs_dir / "notes" / ".." / "espresso.txt"]) == 1


def test_a_file_moved_and_its_old_name_reused_in_one_run(
    make_kb: MakeKb,
    docs_dir: Path,
    fake: FakeEmbedder,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    kb = make_kb(embedder=fake)
    kb.ingest([docs_dir])
    # a.txt's content moves to b.txt (sorted after it) and a.txt gets new content.
    (docs_dir / "espresso.txt").rename(docs_dir / "espresso2.txt")
    (docs_dir / "espresso.txt").write_text("Milk frothing\n\nSteam the milk to 65 degrees.\n")
    report = kb.ingest([docs_dir])
    assert counts(report) == (1, 1, 5, 0) and report.failed == []
    assert report.embedded == 1  # the moved content kept its chunks and vectors
    assert paths_of(kb, "limescale", mode="keyword") == ["espresso2.txt"]
    assert paths_of(kb, "frothing", mode="keyword") == ["espresso.txt"]
    assert_consistent(kb.store)


def test_remove_forgets_files_and_folders(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    kb = make_kb(embedder=fake)
    kb.ingest([docs_dir])
    assert kb.remove([docs_dir / "notes"]) == 1
    assert kb.remove([docs_dir / "espresso.txt", docs_dir / "never-ingested.txt"]) == 1
    assert kb.remove([docs_dir / "notes"]) == 0
    assert sorted(Path(p).name for p in [d.path for d in kb.documents()]) == [
        "chess.docx",
        "sourdough.html",
        "tides.pdf",
        "volcanoes.md",
    ]
    assert paths_of(kb, "tax return limescale", mode="keyword") == []
    assert (docs_dir / "espresso.txt").exists()  # only the store forgets


def test_prune_forgets_files_gone_from_disk_under_the_given_paths(
    make_kb: MakeKb, docs_dir: Path, tmp_path: Path, fake: FakeEmbedder
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("Gone from disk but outside the pruned folder.")
    kb = make_kb(embedder=fake)
    kb.ingest([docs_dir, elsewhere])
    (docs_dir / "volcanoes.md").unlink()
    (elsewhere / "keep.txt").unlink()
    assert counts(kb.ingest([docs_dir])) == (0, 0, 5, 0)  # without --prune nothing is forgotten
    assert kb.status().documents == 7
    report = kb.ingest([docs_dir], prune=True)
    assert counts(report) == (0, 0, 5, 1)
    assert str(docs_dir / "volcanoes.md") not in [d.path for d in kb.documents()]
    assert str(elsewhere / "keep.txt") in [d.path for d in kb.documents()]


def test_a_changed_chunking_setting_rechunks_every_file(
    make_kb: MakeKb,
    docs_dir: Path,
    tmp_path: Path,
    fake: FakeEmbedder,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    store = tmp_path / "store"
    with make_kb(store, embedder=fake) as kb:
        before = kb.ingest([docs_dir]).chunks
    with make_kb(store, embedder=fake, overrides={"chunking.size": 24}) as kb:
        report = kb.ingest([docs_dir])
        assert counts(report) == (0, 6, 0, 0)
        status = kb.status()
        assert status.chunks == report.chunks > before
        assert (status.documents, status.contents) == (6, 6)  # the old chunking is gone
        assert_consistent(kb.store)
        assert counts(kb.ingest([docs_dir])) == (0, 0, 6, 0)


# -- bad input ----------------------------------------------------------------------------


def make_unreadable(path: Path) -> None:
    path.write_text("secret")
    path.chmod(0)


def make_sparse(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)  # a hole: instant, and takes no disk space


BAD_INPUT: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # name: (file name, how to make it, what the reason must say)
    "corrupt-pdf": (
        "corrupt.pdf",
        lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Cat"),
        "corrupt or not a PDF",
    ),
    "binary-named-txt": ("binary.txt", lambda p: p.write_bytes(bytes(range(256)) * 16), "binary"),
    "empty": ("empty.txt", lambda p: p.write_bytes(b""), "empty"),
    "50-mb": ("huge.txt", lambda p: make_sparse(p, 50_000_000), "50.0 MB, over the 20.0 MB limit"),
    "undecodable": ("latin1.txt", lambda p: p.write_bytes("Café crème".encode("latin-1")), "UTF-8"),
    "unreadable": (
        "locked.txt",
        make_unreadable,
        "permission denied",
    ),
    "missing": ("missing.txt", lambda p: None, "no such file or directory"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_named_with_its_reason_and_the_rest_is_ingested(
    make_kb: MakeKb, docs_dir: Path, tmp_path: Path, fake: FakeEmbedder, case: str
) -> None:
    if case == "unreadable" and os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    name, make, reason = BAD_INPUT[case]
    bad = (tmp_path / "bad") / name
    bad.parent.mkdir()
    make(bad)
    kb = make_kb(embedder=fake)
    report = kb.ingest([docs_dir, bad])
    [failure] = report.failed
    assert failure.path == str(bad)
    assert reason in failure.reason
    assert (report.added, len([d.path for d in kb.documents()])) == (6, 6)
    assert str(bad) not in [d.path for d in kb.documents()]


def test_failures_inside_a_folder_do_not_stop_the_folder(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    (docs_dir / "empty.txt").write_bytes(b"")
    (docs_dir / "notes" / "bad.pdf").write_bytes(b"not a pdf at all")
    kb = make_kb(embedder=fake)
    report = kb.ingest([docs_dir])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons.keys() == {"empty.txt", "bad.pdf"}
    assert reasons["empty.txt"] == "empty: no text"
    assert "corrupt or not a PDF" in reasons["bad.pdf"]
    assert report.added == 6
    # Fixed files are picked up by the next run.
    (docs_dir / "empty.txt").write_text("Now it has words in it.")
    assert counts(kb.ingest([docs_dir])) == (1, 0, 6, 0)


def write_undecodable_name(folder: Path) -> Path:
    """A file whose name is not valid UTF-8 (b"bad\\xff.txt"), made through a bytes path."""
    name = os.path.join(os.fsencode(folder), b"bad\xff.txt")
    try:
        with open(name, "wb") as fh:
            fh.write(b"Words in a file whose name is not UTF-8.")
    except OSError as exc:  # file systems that insist on UTF-8 names (APFS) refuse it
        pytest.skip(f"this file system refuses a non-UTF-8 name: {exc}")
    return Path(os.fsdecode(name))


def test_a_file_name_that_is_not_utf8_is_named_as_failed_and_the_rest_stored(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    write_undecodable_name(docs_dir / "notes")
    kb = make_kb(embedder=fake)
    report = kb.ingest([docs_dir])
    [failure] = report.failed
    assert failure.path == str(docs_dir / "notes") + "/bad\\xff.txt"  # printable, escaped
    assert failure.reason == "the file name is not valid UTF-8; rename the file to ingest it"
    assert (report.added, len([d.path for d in kb.documents()])) == (6, 6)


def test_a_folder_that_cannot_be_listed_is_named_as_failed(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated fault: listing notes/ raises PermissionError, as a mode-000 folder does for
    anyone but root (see the real one below, skipped as root)."""
    locked, scandir = docs_dir / "notes", os.scandir

    def refuse_locked(path: str | Path | int = ".") -> object:
        if not isinstance(path, int) and os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    report = make_kb(embedder=fake).ingest([docs_dir])
    assert [(f.path, f.reason.split(":")[0]) for f in report.failed] == [
        (str(locked), "permission denied")
    ]
    assert report.added == 5


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root from listing the folder",
)
def test_a_mode_000_folder_is_named_as_failed(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    locked = docs_dir / "notes"
    locked.chmod(0)
    try:
        report = make_kb(embedder=fake).ingest([docs_dir])
    finally:
        locked.chmod(0o755)
    [failure] = report.failed
    assert failure.path == str(locked) and "permission denied" in failure.reason
    assert report.added == 5


def test_unsupported_files_in_a_folder_are_listed_as_skipped(
    make_kb: MakeKb, docs_dir: Path, fake: FakeEmbedder
) -> None:
    (docs_dir / "a.xyz").write_text("no reader for this")
    (docs_dir / "notes" / "b.bin").write_bytes(bytes(range(16)))
    (docs_dir / ".hidden.xyz").write_text("hidden files are passed over without a word")
    report = make_kb(embedder=fake).ingest([docs_dir])
    assert report.skipped == [str(docs_dir / "a.xyz"), str(docs_dir / "notes" / "b.bin")]
    assert (report.added, report.failed) == (6, [])


# -- search -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "query", "expected"),
    [
        # No word in common with the document: only meaning can find it.
        ("dense", "cleaning calcium deposits out of a cappuccino maker", "espresso.txt"),
        ("keyword", "pumice Herculaneum", "volcanoes.md"),
        ("hybrid", "when do spring tides happen", "tides.pdf"),
        ("hybrid", "Sicilian Defence", "chess.docx"),
        ("dense", "keeping wild yeast alive for baking bread", "sourdough.html"),
    ],
)
def test_each_search_mode_ranks_the_right_document_first(
    docs_kb: KnowledgeBase, mode: str, query: str, expected: str
) -> None:
    hits = docs_kb.search(query, mode=mode, k=5)
    assert Path(hits[0].path).name == expected, [(h.path, h.score) for h in hits]
    retrievers = {"dense": {"dense"}, "keyword": {"keyword"}, "hybrid": {"dense", "keyword"}}
    assert set(hits[0].scores) == set(hits[0].ranks) == retrievers[mode]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_dense_finds_what_keywords_cannot(docs_kb: KnowledgeBase) -> None:
    query = "cleaning calcium deposits out of a cappuccino maker"
    assert "espresso.txt" not in paths_of(docs_kb, query, mode="keyword")


def test_hits_point_back_into_the_extracted_text(docs_kb: KnowledgeBase) -> None:
    [hit] = docs_kb.search("neap tides quarter moons", mode="keyword", k=1)
    document = read(hit.path)
    assert hit.text == document.text[hit.start : hit.end]
    assert (hit.kind, hit.title, hit.page) == ("pdf", "Tides", 2)
    assert "Neap tides" in hit.text


def test_filters_restrict_every_mode(docs_kb: KnowledgeBase) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        assert set(paths_of(docs_kb, "tax deadline", mode=mode, filters=Filters("*/notes/*"))) == {
            "taxes.txt"
        }
        only_pdf = paths_of(
            docs_kb, "tides and volcanoes", mode=mode, filters=Filters(None, ("pdf",))
        )
        assert set(only_pdf) == {"tides.pdf"}
        mixed = paths_of(docs_kb, "the", mode=mode, filters=Filters("*.md", ("md", "html")))
        assert set(mixed) <= {"volcanoes.md"}
