"""The keyword index on tantivy (`askdocs.store.keywords`), on its own: BM25 over the
Analyzer's terms, the filter fields, replaying changes, and damaged files."""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from askdocs.store import Filters
from askdocs.store.keywords import IndexedChunk, KeywordIndex, Position, path_regex, recorded
from askdocs.text import BM25_B, BM25_K1, Analyzer

TEXTS = [
    "The cat sat on the mat.",
    "Dogs chase cats in the garden.",
    "A garden of roses and tulips.",
    "Cats and dogs, dogs and cats.",
]


def chunk(
    i: int,
    text: str,
    *,
    kind: str = "txt",
    paths: tuple[str, ...] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> IndexedChunk:
    return IndexedChunk(i, text, kind, paths or (f"/docs/{i}.{kind}",), tuple(tags))


@pytest.fixture(params=["disk", "memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> KeywordIndex:
    made = KeywordIndex(tmp_path if request.param == "disk" else None, Analyzer())
    made.apply((), [chunk(i + 1, t) for i, t in enumerate(TEXTS)], Position("s", 4, "spec"))
    return made


def test_bm25_over_the_analyzers_terms(index: KeywordIndex) -> None:
    ids, scores = index.search("cat", 10)
    assert sorted(ids.tolist()) == [1, 2, 4]  # "cats" stems to "cat"
    assert scores.dtype == np.float32 and list(scores) == sorted(scores, reverse=True)
    # BM25 with tantivy's constants, computed by hand for chunk 1 ("cat sat mat": 3 terms)
    n, df = 4, 3
    lengths = [len(Analyzer().tokens(t)) for t in TEXTS]
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[0] / np.mean(lengths))
    expected = idf * (BM25_K1 + 1) / (1 + norm)
    assert scores[ids.tolist().index(1)] == pytest.approx(expected, rel=0.02)  # lengths in 1 byte
    assert index.search("the and of", 10)[0].size == 0  # stop words only
    assert index.search("cat", 0)[0].size == 0


def test_applying_a_change_twice_changes_nothing(index: KeywordIndex) -> None:
    """A crash between the commit and the position replays changes: an added chunk replaces
    any copy of itself, a deleted one stays deleted."""
    before = index.search("garden", 10)
    index.apply([4], [chunk(2, TEXTS[1]), chunk(3, TEXTS[2])], None)
    index.apply([4], [chunk(2, TEXTS[1]), chunk(3, TEXTS[2])], None)
    assert index.ids().tolist() == [1, 2, 3]
    ids, _ = index.search("garden", 10)
    assert ids.tolist() == before[0].tolist()
    index.apply([], [chunk(3, "Only roses now.")], None)
    assert index.search("tulips", 10)[0].size == 0 and index.search("roses", 10)[0].tolist() == [3]


def test_position_is_recorded_next_to_the_folder(tmp_path: Path) -> None:
    made = KeywordIndex(tmp_path, Analyzer())
    assert made.position() is None and recorded(tmp_path) is None
    made.apply((), [chunk(1, "x")], Position("store-a", 7, "spec"))
    assert recorded(tmp_path) == Position("store-a", 7, "spec")
    made.apply((), [chunk(2, "y")], None)  # between the batches of a replay: unchanged
    assert KeywordIndex(tmp_path, Analyzer()).position() == Position("store-a", 7, "spec")


def test_filters_on_kind_tags_and_paths(tmp_path: Path) -> None:
    made = KeywordIndex(tmp_path, Analyzer())
    made.apply(
        (),
        [
            chunk(1, "red apples", kind="md", paths=("/notes/a.md",), tags=[("topic", "fruit")]),
            chunk(2, "red cars", paths=("/cars/b.txt", "/notes/b.txt")),
            chunk(3, "red roses", kind="pdf", paths=("/garden/c.pdf",), tags=[("topic", "x\x1fy")]),
        ],
        None,
    )

    def found(filters: Filters) -> list[int]:
        return sorted(made.search("red", 10, filters)[0].tolist())

    assert found(Filters()) == [1, 2, 3]
    assert found(Filters(kinds=("md", "pdf"))) == [1, 3]
    assert found(Filters(path_glob="notes/*")) == [1, 2]  # either of chunk 2's paths
    assert found(Filters(tags=(("topic", "fruit"),))) == [1]
    assert found(Filters(tags=(("topic", "x\x1fy"),))) == [3]
    assert found(Filters(path_glob="*.txt", kinds=("txt",))) == [2]
    # a filter changes which chunks pass, never their scores
    unfiltered = dict(zip(*(a.tolist() for a in made.search("red", 10)), strict=True))
    ids, scores = made.search("red", 10, Filters(kinds=("pdf",)))
    assert scores.tolist() == [unfiltered[i] for i in ids.tolist()]


PATHS = [
    "/docs/notes/a.md", "/docs/notes/b.txt", "/docs/x.pdf", "/a b/c.d.txt", "/d/[x].txt",
    "/d/é/ü.md", "/d/line\nbreak.txt", "/d/a+b(c)|d$.txt", "relative/z.md", "/d/*star*.txt",
    "/d/?.txt", "/d/back\\slash.txt", "/d/{x,y}.md", "/d/.hidden", "/d/^caret~.txt",
]  # fmt: skip
GLOBS = [
    "*", "*.md", "/docs/*", "*/notes/*", "/d/[x].txt", "/d/[xy]*", "/d/[!x]*", "/d/[^x]*",
    "*é*", "*\nbreak*", "/d/a+b(c)|d$.txt", "/d/?.txt", "/d/\\*", "*{x,y}*", "*.hidden",
    "/d/^caret~.txt", "/a b/*.txt", "relative/?.md", "/d/[", "/d/[]x]*", "*[*", "/docs/*/a.md",
]  # fmt: skip


def test_a_path_glob_admits_every_path_sqlite_would(tmp_path: Path) -> None:
    """The regular expression may admit more (the store checks hits against SQLite's GLOB),
    never less; here against fnmatch, which reads globs as SQLite does but for `[^...]`."""
    made = KeywordIndex(tmp_path, Analyzer())
    made.apply((), [chunk(i, "word", paths=(p,)) for i, p in enumerate(PATHS, 1)], None)
    for glob in GLOBS:
        got = {PATHS[i - 1] for i in made.search("word", 100, Filters(path_glob=glob))[0]}
        wanted = {p for p in PATHS if fnmatch.fnmatchcase(p, Filters(path_glob=glob).glob() or "")}
        assert wanted <= got, (glob, wanted - got)
        if "[" not in glob:  # without bracket classes the expression is exact
            assert got == wanted, (glob, got - wanted)


def test_path_regex_escapes_every_character_it_does_not_mean() -> None:
    for a, b in itertools.product("+()|$^.\\{}~&-#", repeat=2):
        assert path_regex(f"/{a}{b}") == f"(?s)/\\x{{{ord(a):x}}}\\x{{{ord(b):x}}}"


@pytest.mark.parametrize("file", ["largest", "meta"])
def test_a_damaged_file_is_refused_before_tantivy_reads_it(tmp_path: Path, file: str) -> None:
    made = KeywordIndex(tmp_path, Analyzer())
    made.apply((), [chunk(i, f"text number {i}") for i in range(1, 300)], None)
    folder = tmp_path / "keywords"
    del made
    if file == "meta":
        target = folder / "meta.json"
        target.write_text(target.read_text()[:-20])
    else:
        target = max(folder.glob("*.*"), key=lambda p: p.stat().st_size)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x5A
        target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="keyword index"):
        KeywordIndex(tmp_path, Analyzer())
