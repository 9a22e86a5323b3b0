"""The vector index files of a store directory: their names, saving one, leftovers.

`vectors-<seq>.idx` holds every change of the store's log up to `<seq>`. It is written to a
temp file and renamed, so a crash leaves the old or the new file, never half of one, and it
carries a tag (the store's identity and `<seq>`) and checksums: a damaged file, or one
copied in from another store or position, fails to load and the store rebuilds its vector
index from SQLite. (The keyword index is tantivy's folder, `store.keywords`; the
`keywords-<seq>.idx` files of older versions are deleted.)
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from askdocs.vectors import VectorIndex

STEM, _OLD_STEMS = "vectors", ("keywords",)
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


def newest(directory: Path, head: int) -> int | None:
    """The newest position with a vector file saved, not past the log's `head`."""
    usable = [seq for seq in saved(directory, STEM) if seq <= head]
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


def save(directory: Path, seq: int, vectors: VectorIndex, *, tag: str) -> None:
    """Save the vector index at position `seq`, replacing a file there: it may be the
    damaged one a rebuild replaces (another process's save of the same position is
    equivalent)."""
    vectors.save(path_of(directory, STEM, seq), tag=tag)


def prune(directory: Path, seq: int, head: int) -> None:
    """Delete the files the one at `seq` supersedes.

    Files of a newer position, saved by another process meanwhile, stay; files past the
    log's `head` cannot be from this store's history (a database restored from a backup).
    """
    for old_seq, old in saved(directory, STEM).items():
        if old_seq < seq or old_seq > head:
            old.unlink(missing_ok=True)


def remove_old_kinds(directory: Path) -> None:
    """Delete the index files of older askdocs versions (`keywords-<seq>.idx`)."""
    for stem in _OLD_STEMS:
        for old in saved(directory, stem).values():
            with contextlib.suppress(OSError):
                old.unlink()
