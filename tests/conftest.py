"""Shared fixtures: the real embedder (loaded once), knowledge bases in tmp_path, a doc folder.

Every test runs with the user's askdocs environment hidden: no `ASKDOCS_*` variables and
XDG data/config directories in a temporary folder, so neither a developer's config nor their
stores can change a result, and no test writes to the real per-user data directory.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docx
import pytest
from fpdf import FPDF

from askdocs import config
from askdocs.config import Settings
from askdocs.embeddings import Embedder, MiniLMEmbedder
from askdocs.kb import KnowledgeBase
from askdocs.store import DocumentWrite
from askdocs.store.sqlite import DATABASE, SqliteStore
from askdocs.testing import FakeEmbedder
from askdocs.types import Chunk, Document, Page

MakeSettings = Callable[..., Settings]
MakeKb = Callable[..., KnowledgeBase]

# One distinctive topic per file. Tests search for these by keyword and by meaning.
ESPRESSO = """\
Descaling an espresso machine

Limescale builds up inside the boiler when the water is hard. Dissolve citric acid in warm
water, pour the solution into the reservoir and run it through the steam wand and the group
head. Rinse twice with fresh water before brewing again.
"""
VOLCANOES = """\
# Volcanoes

Magma rises through cracks in the crust. When the pressure of dissolved gases grows too
high the volcano erupts, throwing lava, ash and pumice into the sky.

## Famous eruptions

Vesuvius buried Pompeii and Herculaneum in the year 79.
"""
SOURDOUGH = """\
<!doctype html><html><head><title>Feeding a sourdough starter</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact</a></nav>
<article><h1>Feeding a sourdough starter</h1>
<p>Discard half of the starter, then mix in equal weights of rye flour and lukewarm water.
Leave the jar loosely covered; the wild yeast should double it within eight hours.</p>
</article><footer>Copyright the bakery</footer></body></html>
"""
TIDES_PAGES = (
    "Ocean tides\nThe gravity of the Moon pulls on the oceans and raises two bulges of water, "
    "one facing the Moon and one on the far side of the Earth.",
    "Spring tides come at full moon and new moon, when the Sun and the Moon line up. "
    "Neap tides come at the quarter moons, when they pull at right angles.",
)
CHESS = (
    "Chess openings",
    "The Sicilian Defence answers the king's pawn with a pawn to c5, fighting for the centre "
    "from the side. White often replies with the knight to f3.",
)
TAXES = """\
Filing a tax return

Self-employed workers must submit their return and pay the income tax owed by the end of
January. Keep receipts for every deductible expense for six years.
"""


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("ASKDOCS_"):
            monkeypatch.delenv(name)
    user = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_DATA_HOME", str(user / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user / "config"))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real PostgreSQL 16 with pgvector for the session, from the pgserver wheel (starts in
    about a second). Where the wheel cannot start, the tests that need it are skipped with
    the reason (shown in the summary: `-rs` is on)."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))
    try:
        import pgserver
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need the pgserver wheel: {exc}")
    try:
        server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    except Exception as exc:  # any failure to start on this platform
        pytest.skip(f"pgserver cannot start PostgreSQL here: {type(exc).__name__}: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def make_pg_url(postgres: Any) -> Callable[[], str]:
    """`make_pg_url()`: the URL of a new, empty database on the session's server."""
    import uuid

    import psycopg

    admin = postgres.get_uri()

    def make() -> str:
        name = f"askdocs_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return admin.replace("/postgres?", f"/{name}?", 1)

    return make


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real packaged MiniLM, loaded once for the whole test session."""
    return MiniLMEmbedder(threads=2)


@pytest.fixture(scope="session")
def askdocs_exe() -> str:
    """The `askdocs` command installed next to this Python, for real subprocess runs."""
    beside = Path(sys.executable).with_name("askdocs")
    found = str(beside) if beside.is_file() else shutil.which("askdocs")
    if found is None:
        pytest.fail("the askdocs command is not installed: pip install -e .")
    return found


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedder:
    """A model-free embedder, for tests about storage and bookkeeping rather than meaning."""
    return FakeEmbedder()


PIPELINE = "test-pipeline"  # what `make_write` documents were chunked with


@pytest.fixture
def make_write(fake_embedder: FakeEmbedder) -> Callable[..., DocumentWrite]:
    """`make_write(path, paragraphs, *, kind="txt", title="")`: one chunk per paragraph.

    A pdf gets one page per paragraph. The content hash covers kind, title and text, so the
    same paragraphs under another path are the same content.
    """

    def make(
        path: str, paragraphs: list[str], *, kind: str = "txt", title: str = ""
    ) -> DocumentWrite:
        text = "\n\n".join(paragraphs)
        chunks, pages, start = [], [], 0
        for ord_, paragraph in enumerate(paragraphs):
            end = start + len(paragraph)
            page = ord_ + 1 if kind == "pdf" else None
            chunks.append(Chunk(ord_, paragraph, start, end, len(paragraph.split()), page, title))
            if page:
                pages.append(Page(page, start, end))
            start = end + 2
        document = Document(path, text, title or Path(path).stem, kind, tuple(pages))
        content = f"{kind}\0{title}\0{text}".encode()
        return DocumentWrite(
            path=path,
            size=len(content),
            mtime_ns=1_000,
            content_hash=hashlib.sha256(content).hexdigest(),
            pipeline=PIPELINE,
            document=document,
            chunks=chunks,
            embeddings=fake_embedder.embed(paragraphs),
            text_hashes=[hashlib.sha256(p.encode()).digest() for p in paragraphs],
        )

    return make


@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    """`make_settings(store=None, overrides)`: settings from defaults only, store in tmp_path."""

    def make(store: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
        where = store if store is not None else tmp_path / "store"
        return config.load({"store": str(where), **(overrides or {})}, environ={})

    return make


@pytest.fixture
def make_kb(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Iterator[MakeKb]:
    """`make_kb(store=None, *, embedder=None, overrides=None)`: an open KnowledgeBase.

    The embedder defaults to the real session one; pass `fake_embedder` where the test is not
    about the model. Every knowledge base made here is closed when the test ends.
    """
    opened: list[KnowledgeBase] = []

    def make(
        store: Path | None = None,
        *,
        embedder: Embedder | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> KnowledgeBase:
        chosen = embedder if embedder is not None else request.getfixturevalue("embedder")
        kb = KnowledgeBase.open(make_settings(store, overrides), embedder=chosen)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()


def sqlite_chunk_ids(directory: Path) -> list[int]:
    """Chunk ids in a store's SQLite file, read through a separate read-only connection."""
    db = sqlite3.connect(f"file:{directory / DATABASE}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT id FROM chunks ORDER BY id")]
    finally:
        db.close()


@pytest.fixture
def assert_consistent() -> Callable[[SqliteStore], None]:
    """`assert_consistent(store)`: in sync, and both derived indexes hold SQLite's chunk ids."""

    def check(store: SqliteStore) -> None:
        status = store.status()
        assert status.in_sync, status.problems
        chunk_ids = sqlite_chunk_ids(store.directory)
        assert status.chunks == len(chunk_ids)
        assert store._vectors.ids().tolist() == chunk_ids, "vector index ids differ from SQLite"
        keyword_ids = store._keywords.index.ids().tolist()
        assert keyword_ids == chunk_ids, "keyword index ids differ from SQLite"

    return check


def write_pdf(path: Path, pages: tuple[str, ...], *, title: str | None = None) -> Path:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path, heading: str, *paragraphs: str) -> Path:
    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


@functools.cache
def _binary_docs() -> dict[str, bytes]:
    """The PDF and DOCX samples, made once: writing them takes longer than copying."""
    with tempfile.TemporaryDirectory() as folder:
        pdf = write_pdf(Path(folder) / "tides.pdf", TIDES_PAGES, title="Tides")
        docx_file = write_docx(Path(folder) / "chess.docx", *CHESS)
        return {"tides.pdf": pdf.read_bytes(), "chess.docx": docx_file.read_bytes()}


def write_docs(root: Path) -> Path:
    """Six small documents, one topic each, in every supported format; one in a subfolder.

    espresso.txt, volcanoes.md, sourdough.html, tides.pdf (2 pages), chess.docx,
    notes/taxes.txt.
    """
    (root / "notes").mkdir(parents=True)
    (root / "espresso.txt").write_text(ESPRESSO, encoding="utf-8")
    (root / "volcanoes.md").write_text(VOLCANOES, encoding="utf-8")
    (root / "sourdough.html").write_text(SOURDOUGH, encoding="utf-8")
    (root / "tides.pdf").write_bytes(_binary_docs()["tides.pdf"])
    (root / "chess.docx").write_bytes(_binary_docs()["chess.docx"])
    (root / "notes" / "taxes.txt").write_text(TAXES, encoding="utf-8")
    return root


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """A fresh copy of the sample documents (see `write_docs`), free to change."""
    return write_docs(tmp_path / "docs")


DOCS_STORE_SETTINGS = {"chunking.size": 60}  # small chunks: each PDF page gets its own


@pytest.fixture(scope="session")
def docs_store(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> Path:
    """A store holding the sample documents, ingested once per session. Do not change it.

    Its documents are in `docs_store.parent / "docs"`; it was built with
    `DOCS_STORE_SETTINGS`.
    """
    root = tmp_path_factory.mktemp("docs_store")
    docs = write_docs(root / "docs")
    settings = config.load({"store": str(root / "store"), **DOCS_STORE_SETTINGS}, environ={})
    with KnowledgeBase.open(settings, embedder=embedder) as kb:
        report = kb.ingest([docs])
    assert (report.added, report.failed) == (6, []), report
    return root / "store"


@pytest.fixture
def docs_kb(docs_store: Path, make_kb: MakeKb) -> KnowledgeBase:
    """`docs_store` opened with the real embedder and the settings it was built with."""
    return make_kb(docs_store, overrides=DOCS_STORE_SETTINGS)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate a server a test started; kill it if it does not exit within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], *, log: Path | None = None, timeout: float = 90
) -> None:
    """Poll `url` until it answers 200; fail the test (with the server's log) if the process
    exits or `timeout` seconds pass first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:] if log else ""


def llama_worker(model: str, **params: Any) -> Any:
    """A packaged GGUF model in a worker process (`WorkerGenerator`): a native crash of
    llama.cpp fails the test that ran it with RuntimeCrash, never the whole test run."""
    import functools

    from askdocs.generation.llama import LlamaGenerator
    from askdocs.generation.worker import WorkerGenerator

    return WorkerGenerator(functools.partial(LlamaGenerator, model, **params))
