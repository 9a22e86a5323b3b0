"""Two processes writing to one store: they take turns, and neither loses nor repeats work.

Real processes throughout: `askdocs ingest`, `askdocs remove`. Where the test needs one of
them stopped at a known point, it runs `askdocs ingest` through a small script that pauses
it there (before its batch, or inside it, holding the store's write lock) until the test
says go; the test never waits a set time for anything to happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from askdocs.kb import KnowledgeBase
from askdocs.store.sqlite import SqliteStore

MakeKb = Callable[..., KnowledgeBase]
TIMEOUT = 300  # only against hangs: a normal run takes seconds

PAUSED_INGEST = '''
"""`askdocs ingest ARGS`, paused once at WHERE until SIGNALS/go exists."""
import sys, time
from pathlib import Path

from askdocs import cli, ingest
from askdocs.store.sqlite import SqliteStore

signals, where, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def pause_once(function):
    def paused(*a, **k):
        if not (signals / "paused").exists():
            (signals / "paused").touch()
            deadline = time.monotonic() + 300
            while not (signals / "go").exists():
                if time.monotonic() > deadline:
                    raise SystemExit("the test never said go")
                time.sleep(0.02)
        return function(*a, **k)
    return paused


if where == "before-batch":  # every file read and checked; the batch not begun
    ingest._flush = pause_once(ingest._flush)
elif where == "in-batch":  # the batch embedded, about to be committed
    SqliteStore.write = pause_once(SqliteStore.write)
cli.main(args, prog_name="askdocs")
'''


def environment(store: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ASKDOCS_STORE": str(store),
        "ASKDOCS_EMBEDDING__INT8": "false",  # the float encoder of the `embedder` fixture
    }


def write_notes(folder: Path, first: int, count: int) -> list[Path]:
    """Short, distinct notes (one chunk each): note-<n>.txt mentions only item<n>."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(first, first + count):
        path = folder / f"note-{n:03d}.txt"
        path.write_text(f"Note {n}\n\nAt the harbour we logged item{n}x and {n * 7 % 97} gulls.\n")
        paths.append(path)
    return paths


def askdocs(exe: str, *args: str | Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *map(str, args)],
        env=environment(store),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def start(exe: str, *args: str | Path, store: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [exe, *map(str, args)],
        env=environment(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_paused(
    tmp_path: Path, where: str, *args: str | Path, store: Path
) -> tuple[subprocess.Popen[str], Path]:
    """`askdocs ingest ARGS` stopped at `where`; returns it once it is there, and the folder
    in which to create `go`."""
    signals = tmp_path / f"signals-{where}"
    signals.mkdir()
    script = tmp_path / "paused_ingest.py"
    script.write_text(PAUSED_INGEST)
    process = start(sys.executable, script, signals, where, "ingest", *args, store=store)
    deadline = time.monotonic() + TIMEOUT
    while not (signals / "paused").exists():
        if process.poll() is not None:
            pytest.fail(f"the paused ingest exited with {process.returncode}: {finish(process)}")
        assert time.monotonic() < deadline, "the ingest never reached its pause"
        time.sleep(0.02)
    return process, signals


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=TIMEOUT)
    return out, err


def wait_for_line(process: subprocess.Popen[str], text: str) -> str:
    """Read the process's stderr until a line holds `text`; fail if it ends first."""
    assert process.stderr is not None
    watchdog = threading.Timer(TIMEOUT, process.kill)  # against a hang, not a timing
    watchdog.start()
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if text in line:
                return line
    finally:
        watchdog.cancel()
    out, _ = process.communicate()
    pytest.fail(
        f"exited with {process.returncode} without saying {text!r}:\n{''.join(seen)}\n{out}"
    )


def report_of(out: str, err: str, process: subprocess.Popen[str]) -> dict:
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return json.loads(out)


@pytest.fixture
def linked(tmp_path: Path, askdocs_exe: str) -> tuple[Path, Path, Path]:
    """(store, original, folder): the store holds `original`; `folder` holds 40 new notes
    and copy.txt, the same bytes as `original`, which ingest stores as a link to them."""
    store = tmp_path / "store"
    original = tmp_path / "orig" / "kept.txt"
    original.parent.mkdir()
    original.write_text("Lighthouse log\n\nThe lamp of the lighthouse was lit at dusk.\n")
    folder = tmp_path / "folder"
    write_notes(folder, 0, 40)
    (folder / "copy.txt").write_bytes(original.read_bytes())
    done = askdocs(askdocs_exe, "ingest", original.parent, store=store)
    assert done.returncode == 0, done.stderr
    return store, original, folder


def assert_all_stored(
    kb: KnowledgeBase, folder: Path, assert_consistent: Callable[[SqliteStore], None]
) -> None:
    """Every file of `folder`, and nothing else, stored once and findable."""
    assert sorted([d.path for d in kb.documents()]) == sorted(str(p) for p in folder.iterdir())
    status = kb.status()
    assert (status.documents, status.contents) == (41, 41)
    assert_consistent(kb.store)
    [hit] = kb.search("lamp lighthouse dusk", mode="keyword", k=1)
    assert Path(hit.path).name == "copy.txt"


def test_a_remove_while_an_ingest_prepares_its_batch_loses_nothing(
    tmp_path: Path,
    askdocs_exe: str,
    linked: tuple[Path, Path, Path],
    make_kb: MakeKb,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    """The ingest read copy.txt as a link to stored content; a remove then deleted that
    content. The ingest used to fail its whole batch (ValueError); it must chunk and embed
    copy.txt after all."""
    store, original, folder = linked
    ingest, signals = start_paused(tmp_path, "before-batch", folder, "--json", store=store)
    removed = askdocs(askdocs_exe, "remove", original, "--json", store=store)
    assert (removed.returncode, removed.stdout.strip()) == (0, '{\n  "removed": 1\n}')
    (signals / "go").touch()
    report = report_of(*finish(ingest), ingest)
    assert (report["added"], report["failed"]) == (41, [])
    assert_all_stored(make_kb(store), folder, assert_consistent)


def test_a_remove_waits_for_the_ingest_batch_in_flight(
    tmp_path: Path,
    askdocs_exe: str,
    linked: tuple[Path, Path, Path],
    make_kb: MakeKb,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    """The ingest holds the store for its batch (copy.txt linked to kept.txt's content):
    the remove waits, says for whom, then removes kept.txt and leaves copy.txt's content."""
    store, original, folder = linked
    ingest, signals = start_paused(tmp_path, "in-batch", folder, "--json", store=store)
    remove = start(askdocs_exe, "remove", original, "--json", store=store)
    line = wait_for_line(remove, "waiting for another ingest on this store")
    assert f"{store}: waiting for another ingest on this store (pid {ingest.pid})" in line
    (signals / "go").touch()
    report = report_of(*finish(ingest), ingest)
    assert (report["added"], report["embedded"], report["failed"]) == (41, 40, [])
    assert report_of(*finish(remove), remove) == {"removed": 1}
    assert_all_stored(make_kb(store), folder, assert_consistent)


def test_a_second_ingest_waits_and_neither_repeats_nor_miscounts_work(
    tmp_path: Path,
    askdocs_exe: str,
    make_kb: MakeKb,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    """Overlapping folders: the first holds the store for its batch; the second, which has
    read the same files meanwhile, waits, then finds them stored and adds only its own."""
    store = tmp_path / "store"
    a, b, c = (tmp_path / name for name in "abc")
    for n, folder in enumerate((a, b, c)):
        write_notes(folder, 15 * n, 15)
    first, signals = start_paused(tmp_path, "in-batch", a, b, "--json", store=store)
    second = start(askdocs_exe, "ingest", b, c, "--json", store=store)
    wait_for_line(second, f"waiting for another ingest on this store (pid {first.pid})")
    (signals / "go").touch()
    one, two = report_of(*finish(first), first), report_of(*finish(second), second)
    assert (one["added"], one["embedded"]) == (30, 30)
    assert (two["added"], two["unchanged"], two["embedded"]) == (15, 15, 15)
    kb = make_kb(store)
    status = kb.status()
    assert (status.documents, status.contents, status.chunks) == (45, 45, 45)
    assert_consistent(kb.store)


def test_two_ingests_at_once_add_and_embed_each_file_once(
    tmp_path: Path,
    askdocs_exe: str,
    make_kb: MakeKb,
    assert_consistent: Callable[[SqliteStore], None],
) -> None:
    """Two free-running ingests of overlapping folders, in batches of 4 chunks so their
    batches interleave: whatever the interleaving, the reports add up to the store."""
    store = tmp_path / "store"
    a, b, c = (tmp_path / name for name in "abc")
    for n, folder in enumerate((a, b, c)):
        write_notes(folder, 30 * n, 30)
    env = {**environment(store), "ASKDOCS_INGEST__BATCH_CHUNKS": "4"}
    runs = [
        subprocess.Popen(
            [askdocs_exe, "ingest", *folders, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folders in ((str(a), str(b)), (str(b), str(c)))
    ]
    reports = [report_of(*finish(run), run) for run in runs]
    assert sum(r["added"] for r in reports) == 90
    assert sum(r["added"] + r["unchanged"] for r in reports) == 120
    assert sum(r["embedded"] for r in reports) == 90  # no note embedded twice
    assert all(r["failed"] == [] and r["updated"] == 0 for r in reports)
    kb = make_kb(store)
    status = kb.status()
    assert (status.documents, status.contents, status.chunks) == (90, 90, 90)
    assert_consistent(kb.store)
