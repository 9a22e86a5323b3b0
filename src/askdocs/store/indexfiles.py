"""The derived index files of a store directory: their names, saving a pair, leftovers.

`vectors-<seq>.idx` and `keywords-<seq>.idx` hold every change of the store's log up to
`<seq>`. Each is written to a temp file and renamed, so a crash leaves the old or the new
file, never half of one, and each carries a tag (the store's identity and `<seq>`) and
checksums: a damaged file, or one copied in from another store or position, fails to load
and the store rebuilds its indexes from SQLite.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from askdocs.keyword import KeywordIndex
from askdocs.vectors import VectorIndex

STEMS = ("vectors", "keywords")
_STALE_TMP_SECONDS = 900


def saved(directory: Path, stem: str) -> dict[int, Path]:
    """The saved files of one kind by position: {12: .../vectors-000000000012.idx}."""
    found = {}
    for path in directory.glob(f"{stem}-*.idx"):
        try:
            found[int(path.stem.split("-")[1])] = path
        except (IndexError, ValueError):
            continue
    return found


def newest_pair(directory: Path, head: int) -> int | None:
    """The newest position with both files saved and not past the log's `head` (a crash
    between the two saves leaves one newer file alone)."""
    common = set(saved(directory, "vectors")) & set(saved(directory, "keywords"))
    usable = [seq for seq in common if seq <= head]
    return max(usable) if usable else None


def path_of(directory: Path, stem: str, seq: int) -> Path:
    return directory / f"{stem}-{seq:012d}.idx"


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files a crash left mid-save; a recent one may be another process's save
    in progress, so only old ones go."""
    for tmp in directory.glob("*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink()


def save_pair(
    directory: Path, seq: int, vectors: VectorIndex, keywords: KeywordIndex, *, tag: str
) -> None:
    """Save both indexes at position `seq`, replacing files there: they may be the damaged
    ones a rebuild replaces (another process's save of the same position is equivalent)."""
    vectors.save(path_of(directory, "vectors", seq), tag=tag)
    keywords.save(path_of(directory, "keywords", seq), tag=tag)


def prune(directory: Path, seq: int, head: int) -> None:
    """Delete the files the pair at `seq` supersedes.

    Files of a newer position, saved by another process meanwhile, stay; files past the
    log's `head` cannot be from this store's history (a database restored from a backup).
    """
    for stem in STEMS:
        for old_seq, old in saved(directory, stem).items():
            if old_seq < seq or old_seq > head:
                old.unlink(missing_ok=True)
