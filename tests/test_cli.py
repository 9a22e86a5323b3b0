"""The `askdocs` command, through click's CliRunner and as a real subprocess.

In-process runs reuse the session's embedder (patched in where the knowledge base would load
its own); subprocess runs load the packaged model themselves, as a user's shell would.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from askdocs import config
from askdocs.cli import main
from askdocs.kb import KnowledgeBase
from askdocs.readers import read
from askdocs.store import schema
from askdocs.store.keywords import KeywordIndex
from askdocs.vectors import VectorIndex

Run = Callable[..., Result]
linux_only = pytest.mark.skipif(
    sys.platform != "linux",
    reason="checks the XDG data directory layout platformdirs uses on Linux",
)


@pytest.fixture
def run() -> Run:
    """`run(*args, code=0)`: invoke the CLI in-process and check its exit code."""

    def invoke(*args: str | Path, code: int = 0) -> Result:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == code, (result.output, result.stderr, result.exception)
        return result

    return invoke


def search_json(run: Run, store: Path, query: str, *options: str) -> list[dict]:
    return json.loads(run("search", query, "--json", "--store", store, *options).stdout)


def subprocess_env(**changes: str | None) -> dict[str, str]:
    """The test's (already isolated) environment with some variables set or removed."""
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def askdocs(exe: str, *args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )


# -- search output ------------------------------------------------------------------------


def test_search_json_carries_everything_needed_to_cite(run: Run, docs_store: Path) -> None:
    hits = search_json(run, docs_store, "neap tides at the quarter moons", "-k", "3")
    assert 1 <= len(hits) <= 3
    top = hits[0]
    assert Path(top["path"]).name == "tides.pdf"
    assert top["page"] == 2 and top["kind"] == "pdf" and top["title"] == "Tides"
    assert top["text"] == read(top["path"]).text[top["start"] : top["end"]]
    assert set(top["scores"]) == set(top["ranks"]) == {"dense", "keyword"}
    assert top["ranks"]["keyword"] == 1 and top["scores"]["keyword"] > 0
    assert -1.0 <= top["scores"]["dense"] <= 1.0
    assert top["score"] == pytest.approx(1 / 61 + 1 / (60 + top["ranks"]["dense"]))  # RRF, k=60
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert {"chunk_id", "heading", "also_in"} <= set(top)


@pytest.mark.parametrize(
    ("mode", "query", "expected"),
    [
        ("dense", "cleaning calcium deposits out of a cappuccino maker", "espresso.txt"),
        ("keyword", "pumice Herculaneum", "volcanoes.md"),
        ("hybrid", "Sicilian Defence", "chess.docx"),
    ],
)
def test_search_modes(run: Run, docs_store: Path, mode: str, query: str, expected: str) -> None:
    hits = search_json(run, docs_store, query, "--mode", mode)
    assert Path(hits[0]["path"]).name == expected
    assert set(hits[0]["scores"]) == ({"dense", "keyword"} if mode == "hybrid" else {mode})


def test_convex_fusion_scores_lie_between_zero_and_one(run: Run, docs_store: Path) -> None:
    hits = search_json(run, docs_store, "Sicilian Defence", "--fusion", "convex")
    assert Path(hits[0]["path"]).name == "chess.docx"
    assert all(0.0 <= h["score"] <= 1.0 for h in hits)


def test_search_filters_by_path_and_type(run: Run, docs_store: Path) -> None:
    def names(*options: str) -> set[str]:
        return {Path(h["path"]).name for h in search_json(run, docs_store, "tides", *options)}

    assert names("--path", "*/notes/*") == {"taxes.txt"}
    assert names("--type", "pdf") == {"tides.pdf"}
    assert names("--type", "md", "--type", "html") == {"volcanoes.md", "sourdough.html"}
    assert names("--path", "*.docx", "--type", "pdf") == set()


def test_search_prints_readable_results(run: Run, docs_store: Path) -> None:
    out = run("search", "pumice", "--store", docs_store, "-k", "2").stdout
    first = out.splitlines()[0]
    assert first.startswith("1. Volcanoes — ") and "volcanoes.md" in first and "score" in first
    assert "pumice" in out
    assert run("search", "   ", "--store", docs_store).stdout.strip() == "no results"


# -- ingest, remove, status ---------------------------------------------------------------


def test_ingest_remove_prune_and_status(run: Run, docs_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = run("ingest", docs_dir, "--store", store).stdout
    assert out.startswith("added 6, updated 0, unchanged 0, removed 0, failed 0;")
    report = json.loads(run("ingest", docs_dir, "--store", store, "--json").stdout)
    assert (report["added"], report["unchanged"], report["embedded"], report["failed"]) == (
        0,
        6,
        0,
        [],
    )
    status = run("status", "--store", store).stdout
    assert f"store      {store}" in status
    assert "documents  6 (1 docx, 1 html, 1 md, 1 pdf, 2 txt)" in status
    assert "embedder   all-MiniLM-L6-v2:" in status and "(dim 384)" in status
    assert "in sync    yes" in status
    assert "on disk    " in status and " MB" in status

    assert run("remove", docs_dir / "notes", "--store", store).stdout.strip() == (
        "removed 1 document(s)"
    )
    (docs_dir / "volcanoes.md").unlink()
    out = run("ingest", docs_dir, "--prune", "--store", store).stdout
    # notes/taxes.txt is still on disk, so ingesting its folder brings it back.
    assert out.startswith("added 1, updated 0, unchanged 4, removed 1, failed 0;")
    assert json.loads(
        run("remove", docs_dir / "nothing.txt", "--store", store, "--json").stdout
    ) == {"removed": 0}
    state = json.loads(run("status", "--store", store, "--json").stdout)
    assert (state["documents"], state["in_sync"], state["problems"]) == (5, True, [])
    assert state["kinds"] == {"docx": 1, "html": 1, "pdf": 1, "txt": 2}
    assert state["bytes_on_disk"] > 0 and state["location"] == str(store)


def test_ingest_reports_failures_and_exits_1(run: Run, docs_dir: Path, tmp_path: Path) -> None:
    (docs_dir / "empty.txt").write_bytes(b"")
    result = run("ingest", docs_dir, tmp_path / "missing.md", "--store", tmp_path / "s", code=1)
    assert "added 6," in result.stdout and "failed 2;" in result.stdout
    assert f"failed: {docs_dir / 'empty.txt'}: empty: no text" in result.stderr
    assert f"failed: {tmp_path / 'missing.md'}: no such file or directory" in result.stderr
    report = json.loads(run("ingest", docs_dir, "--store", tmp_path / "s", "--json", code=1).stdout)
    assert report["failed"] == [{"path": str(docs_dir / "empty.txt"), "reason": "empty: no text"}]


def test_ingest_lists_skipped_files_and_names_an_undecodable_file_name(
    run: Run, docs_dir: Path, tmp_path: Path
) -> None:
    (docs_dir / "a.xyz").write_text("no reader for this")
    (docs_dir / "notes" / "b.bin").write_bytes(bytes(range(16)))
    with open(os.path.join(os.fsencode(docs_dir), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"A file whose name is not UTF-8.")
    store = tmp_path / "store"
    result = run("ingest", docs_dir, "--store", store, code=1)
    assert result.stdout.startswith("added 6, updated 0, unchanged 0, removed 0, failed 1;")
    assert "skipped 2 unsupported: a.xyz, b.bin" in result.stdout
    assert (
        f"failed: {docs_dir}/bad\\xff.txt: the file name is not valid UTF-8; rename the file"
        in result.stderr
    )
    report = json.loads(run("ingest", docs_dir, "--store", store, "--json", code=1).stdout)
    assert report["skipped"] == [str(docs_dir / "a.xyz"), str(docs_dir / "notes" / "b.bin")]
    assert report["unchanged"] == 6
    assert [f["path"] for f in report["failed"]] == [f"{docs_dir}/bad\\xff.txt"]


def no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_is_said_and_status_and_search_keep_working(
    run: Run, docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated full disk: the database may not grow (a real SQLITE_FULL, through
    PRAGMA max_page_count) and saving an index file raises ENOSPC."""
    store = tmp_path / "store"
    run("ingest", docs_dir, "--store", store)
    connect = schema.connect

    def connect_on_a_full_disk(directory: Path) -> sqlite3.Connection:
        db = connect(directory)
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        return db

    with monkeypatch.context() as full_disk:
        full_disk.setattr(schema, "connect", connect_on_a_full_disk)
        full_disk.setattr(VectorIndex, "save", no_space)
        full_disk.setattr(KeywordIndex, "apply", no_space)
        (docs_dir / "long.txt").write_text(
            "Long notes\n\n" + "\n\n".join(f"Paragraph {n} " + "words " * 150 for n in range(40))
        )
        result = run("ingest", docs_dir, "--store", store, code=1)
        assert isinstance(result.exception, SystemExit)  # a message, not a traceback
        assert f"Error: the disk holding the store {store} is full" in result.stderr
        assert "Free some space on that disk" in result.stderr
        for path in store.glob("*.idx"):  # e.g. lost: they must be rebuilt, and cannot be saved
            path.unlink()
        status = run("status", "--store", store).stdout
        assert "documents  6 " in status and "in sync    yes" in status
        assert f"note       could not save the index files in {store}: the disk is full" in status
        found = search_json(run, store, "limescale citric acid", "--mode", "keyword")
        assert Path(found[0]["path"]).name == "espresso.txt"
    # space freed: the interrupted ingest resumes
    assert run("ingest", docs_dir, "--store", store).stdout.startswith("added 1, updated 0,")


def test_commands_on_a_missing_store_fail_cleanly(run: Run, tmp_path: Path) -> None:
    for args in (["status"], ["search", "anything"], ["remove", "x.txt"]):
        result = run(*args, "--store", tmp_path / "nowhere", code=1)
        assert f"Error: no askdocs store at {tmp_path / 'nowhere'}" in result.stderr
        assert "run `askdocs ingest` first" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_store_built_with_another_embedder_names_the_fix(
    run: Run, docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("ingest", docs_dir / "espresso.txt", "--store", tmp_path / "s")
    monkeypatch.setenv("ASKDOCS_EMBEDDING__MAX_TOKENS", "128")
    result = run("search", "descale", "--store", tmp_path / "s", code=1)
    assert "was built with embedder all-MiniLM-L6-v2:" in result.stderr
    assert "ingest into a new --store" in result.stderr


# -- where the store lives ----------------------------------------------------------------


def stored_names(run: Run, *store: str | Path) -> set[str]:
    hits = json.loads(run("search", "the", "--mode", "dense", "--json", *store).stdout)
    return {Path(h["path"]).name for h in hits}


@linux_only
def test_store_location_precedence(
    run: Run, docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = Path(os.environ["XDG_DATA_HOME"]) / "askdocs" / "stores"
    run("ingest", docs_dir / "espresso.txt")  # no flag, no variable: the default named store
    assert stored_names(run) == {"espresso.txt"}
    assert (data_dir / "default").is_dir()

    monkeypatch.setenv("ASKDOCS_STORE", str(tmp_path / "from-env"))
    run("ingest", docs_dir / "volcanoes.md")
    assert stored_names(run) == {"volcanoes.md"}
    assert (tmp_path / "from-env").is_dir()

    run("ingest", docs_dir / "chess.docx", "--store", tmp_path / "from-flag")  # flag beats env
    assert stored_names(run, "--store", tmp_path / "from-flag") == {"chess.docx"}
    assert stored_names(run) == {"volcanoes.md"}
    monkeypatch.delenv("ASKDOCS_STORE")
    assert stored_names(run) == {"espresso.txt"}


@linux_only
def test_named_stores_coexist_in_the_data_dir(run: Run, docs_dir: Path) -> None:
    run("ingest", docs_dir / "espresso.txt", "--store", "kitchen")
    run("ingest", docs_dir / "volcanoes.md", docs_dir / "tides.pdf", "--store", "science")
    assert stored_names(run, "--store", "kitchen") == {"espresso.txt"}
    assert stored_names(run, "--store", "science") == {"volcanoes.md", "tides.pdf"}
    stores = Path(os.environ["XDG_DATA_HOME"]) / "askdocs" / "stores"
    assert sorted(p.name for p in stores.iterdir()) == ["kitchen", "science"]
    science = json.loads(run("status", "--store", "science", "--json").stdout)
    assert (science["location"], science["documents"]) == (str(stores / "science"), 2)


# -- real subprocesses --------------------------------------------------------------------


def test_real_run_ingests_good_files_names_bad_ones_and_exits_1(
    askdocs_exe: str, docs_dir: Path, tmp_path: Path
) -> None:
    bad = docs_dir / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (bad / "empty.md").write_bytes(b"")
    with (bad / "huge.txt").open("wb") as fh:
        fh.truncate(50_000_000)
    (bad / "latin1.txt").write_bytes("Café crème".encode("latin-1"))
    with open(os.path.join(os.fsencode(bad), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"A file whose name is not UTF-8.")
    (bad / "a.xyz").write_text("no reader for this")
    expected = {
        "corrupt.pdf": "corrupt or not a PDF",
        "binary.txt": "looks like a binary file",
        "empty.md": "empty: no text",
        "huge.txt": "50.0 MB, over the 20.0 MB limit",
        "latin1.txt": "not valid UTF-8",
        "missing.txt": "no such file or directory",
        "bad\\xff.txt": "the file name is not valid UTF-8",
    }
    if os.geteuid() != 0:  # root reads a chmod 000 file anyway
        (bad / "locked.txt").write_text("secret")
        (bad / "locked.txt").chmod(0)
        expected["locked.txt"] = "permission denied"
    store = tmp_path / "store"
    env = subprocess_env(ASKDOCS_STORE=str(store))
    done = askdocs(askdocs_exe, "ingest", docs_dir, bad / "missing.txt", env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("added 6, updated 0, unchanged 0, removed 0, ")
    assert f"failed {len(expected)};" in done.stdout
    assert "skipped 1 unsupported: a.xyz" in done.stdout
    failures = {
        Path(line.split(": ", 2)[1]).name: line.split(": ", 2)[2]
        for line in done.stderr.splitlines()
        if line.startswith("failed: ")
    }
    assert failures.keys() == expected.keys(), done.stderr
    for name, reason in expected.items():
        assert reason in failures[name], (name, failures[name])
    assert "Traceback" not in done.stderr
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal
    with KnowledgeBase.open(config.load({"store": str(store)}, environ={})) as kb:
        status = kb.status()
        assert (status.documents, status.in_sync) == (6, True)
        assert not any(name in p for p in [d.path for d in kb.documents()] for name in expected)


@pytest.fixture
def tiny_store(make_kb: Callable[..., object], docs_dir: Path) -> Callable[[Path], Path]:
    """`tiny_store(directory)`: a store at `directory` holding espresso.txt."""

    def make(directory: Path) -> Path:
        kb = make_kb(directory)
        kb.ingest([docs_dir / "espresso.txt"])
        kb.close()
        return directory

    return make


@linux_only
def test_real_runs_find_the_default_store_in_the_user_data_dir(
    askdocs_exe: str, tmp_path: Path, tiny_store: Callable[[Path], Path]
) -> None:
    xdg = tiny_store(tmp_path / "xdg" / "askdocs" / "stores" / "default")
    home = tiny_store(tmp_path / "home" / ".local" / "share" / "askdocs" / "stores" / "default")
    named = tiny_store(tmp_path / "xdg" / "askdocs" / "stores" / "papers")
    env = subprocess_env(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    cases = [
        (env, [], xdg),  # $XDG_DATA_HOME/askdocs
        (subprocess_env(**{**env, "XDG_DATA_HOME": None}), [], home),  # ~/.local/share/askdocs
        ({**env, "ASKDOCS_STORE": str(home)}, ["--store", "papers"], named),  # a name: data dir
    ]
    for case_env, options, expected in cases:
        done = askdocs(askdocs_exe, "status", "--json", *options, env=case_env)
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        assert (status["location"], status["documents"]) == (str(expected), 1), options
