"""askdocs on a real PostgreSQL + pgvector (the pgserver wheel): the same knowledge base as
the embedded store, many processes on one store, and migrations between the two.

The store contract itself runs over both backends in test_store.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from askdocs.kb import KnowledgeBase
from askdocs.migrate import MigrationFailed, checksum, migrate
from askdocs.retrieval import Filters
from askdocs.store import open_store
from askdocs.store.pgschema import SCHEMA_VERSION
from askdocs.testing import FakeEmbedder
from tests.conftest import MakeKb
from tests.test_concurrency import environment, finish, report_of, write_notes

MakeUrl = Callable[[], str]
QUERIES = ["descale the espresso machine", "neap tides at the quarter moons",
           "feeding a sourdough starter with rye", "when is the tax return due"]  # fmt: skip


def _ranked(kb: KnowledgeBase, query: str, mode: str) -> list[tuple[frozenset[str], str]]:
    """Each hit's file names (its path and identical copies: which comes first depends on
    insertion order, which a migration does not keep) and text, best first."""
    return [
        (frozenset(Path(p).name for p in (h.path, *h.also_in)), h.text)
        for h in kb.search(query, k=5, mode=mode)
    ]


@pytest.fixture
def both(make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path) -> tuple[KnowledgeBase, ...]:
    """The sample documents ingested into an embedded store and into PostgreSQL."""
    stores = (make_kb(), make_kb(make_pg_url()))
    for kb in stores:
        report = kb.ingest([docs_dir])
        assert (report.added, report.failed) == (6, [])
    return stores


def test_postgres_answers_searches_as_the_embedded_store_does(
    both: tuple[KnowledgeBase, ...],
) -> None:
    embedded, postgres = both
    for query in QUERIES:
        for mode in ("dense", "keyword", "hybrid"):
            assert _ranked(postgres, query, mode) == _ranked(embedded, query, mode), (query, mode)
        # BM25 over the same tokens with the same statistics: the same scores, but for the
        # embedded store's lengths, which tantivy keeps in one byte each (Lucene's norms)
        mine = [h.score for h in embedded.search(query, k=5, mode="keyword")]
        theirs = [h.score for h in postgres.search(query, k=5, mode="keyword")]
        assert theirs == pytest.approx(mine, rel=0.03)
    only_pdf = Filters(kinds=("pdf",))
    assert {Path(h.path).name for h in postgres.search("tides", filters=only_pdf)} == {"tides.pdf"}
    notes = Filters(path_glob="notes/*")
    assert {Path(h.path).name for h in postgres.search("tax", filters=notes)} == {"taxes.txt"}
    a, b = embedded.status(), postgres.status()
    assert (a.documents, a.chunks, a.kinds) == (b.documents, b.chunks, b.kinds)
    assert b.in_sync and b.location.startswith("postgresql://")


def test_postgres_updates_removes_and_answers_from_the_documents(
    both: tuple[KnowledgeBase, ...], docs_dir: Path
) -> None:
    _, kb = both
    (docs_dir / "espresso.txt").write_text("Espresso\n\nGrind the beans finely.\n")
    report = kb.ingest([docs_dir])
    assert (report.updated, report.unchanged) == (1, 5)
    assert kb.search("limescale citric acid", k=3, mode="keyword") == [] or all(
        "Limescale" not in h.text for h in kb.search("limescale citric acid", k=3)
    )
    assert kb.remove([docs_dir / "notes"]) == 1
    assert [d.path for d in kb.documents()] == sorted(
        str(p) for p in docs_dir.rglob("*") if p.is_file() and p.parent == docs_dir
    )
    answer = kb.ask("What do the tides do at full moon?", extractive=True)
    assert answer.answered and any(c.title == "Tides" for c in answer.citations)
    found = kb.passage(answer.citations[0].chunk_id)
    assert found is not None and found[0].text in found[1]


def test_the_cli_works_on_a_postgresql_store(
    askdocs_exe: str, make_pg_url: MakeUrl, docs_dir: Path
) -> None:
    url = make_pg_url()
    env = environment(Path("unused"))
    env.pop("ASKDOCS_STORE")

    def run(*args: str) -> dict:
        done = subprocess.run([askdocs_exe, *args, "--json"], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert run("ingest", str(docs_dir), "--store", url)["added"] == 6
    hits = run("search", "neap tides", "--store", url)
    assert Path(hits[0]["path"]).name == "tides.pdf"
    env["ASKDOCS_STORE"] = url  # the environment names the store as well
    status = run("status")
    assert (status["documents"], status["in_sync"]) == (6, True)
    moved = run("migrate", "--from", url, "--to", str(docs_dir.parent / "copy"))
    assert (moved["documents"], moved["copied"], moved["skipped"]) == (6, 6, 0)
    again = run("migrate", "--from", url, "--to", str(docs_dir.parent / "copy"))
    assert (again["copied"], again["skipped"], again["checksum"]) == (0, 6, moved["checksum"])


def test_two_ingests_into_one_postgresql_store_neither_repeat_nor_lose_work(
    tmp_path: Path, askdocs_exe: str, make_pg_url: MakeUrl, make_kb: MakeKb
) -> None:
    """As test_concurrency's test for the embedded store: overlapping folders, batches of 4
    chunks so that the two processes' transactions interleave."""
    url = make_pg_url()
    a, b, c = (tmp_path / name for name in "abc")
    for n, folder in enumerate((a, b, c)):
        write_notes(folder, 30 * n, 30)
    env = {**environment(Path("unused")), "ASKDOCS_STORE": url,
           "ASKDOCS_INGEST__BATCH_CHUNKS": "4"}  # fmt: skip
    runs = [
        subprocess.Popen([askdocs_exe, "ingest", *folders, "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for folders in ((str(a), str(b)), (str(b), str(c)))
    ]  # fmt: skip
    reports = [report_of(*finish(run), run) for run in runs]
    assert sum(r["added"] for r in reports) == 90
    assert sum(r["added"] + r["unchanged"] for r in reports) == 120
    assert sum(r["embedded"] for r in reports) == 90  # no note embedded twice
    kb = make_kb(url)
    status = kb.status()
    assert (status.documents, status.contents, status.chunks, status.in_sync) == (90, 90, 90, True)
    for n in (0, 45, 89):  # every note findable by its own word, once
        hits = kb.search(f"item{n}x", k=3, mode="keyword")
        assert [Path(h.path).name for h in hits] == [f"note-{n:03d}.txt"]


def test_a_commit_on_one_server_is_seen_by_the_other_at_once(
    make_kb: MakeKb, make_pg_url: MakeUrl, tmp_path: Path
) -> None:
    url = make_pg_url()
    writer, reader = make_kb(url), make_kb(url)
    assert reader.search("item7x", mode="keyword") == []
    writer.ingest(write_notes(tmp_path / "notes", 7, 1))
    assert [Path(h.path).name for h in reader.search("item7x", mode="keyword")] == ["note-007.txt"]
    assert len(reader.search("harbour gulls", mode="dense")) == 1
    writer.remove([tmp_path / "notes"])
    assert reader.search("item7x", mode="keyword") == []


def test_a_store_moves_to_postgresql_and_back_unchanged(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path, tmp_path: Path
) -> None:
    source = make_kb(tmp_path / "here")
    source.ingest([docs_dir])
    (docs_dir / "copy.txt").write_bytes((docs_dir / "espresso.txt").read_bytes())
    source.ingest([docs_dir])  # a second path to stored content: a link, moved as one
    source.close()
    url = make_pg_url()
    report = migrate(tmp_path / "here", url)
    assert (report.documents, report.copied, report.skipped) == (7, 7, 0)
    back = migrate(url, tmp_path / "back")
    assert back.checksum == report.checksum
    stores = [make_kb(where) for where in (tmp_path / "here", url, tmp_path / "back")]
    for query in QUERIES:
        first = _ranked(stores[0], query, "hybrid")
        assert all(_ranked(kb, query, "hybrid") == first for kb in stores[1:]), query
    assert stores[1].status().contents == 6  # the copy still shares its content


def test_an_interrupted_migration_resumes_and_a_changed_target_is_caught(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path, tmp_path: Path
) -> None:
    make_kb(tmp_path / "here").ingest([docs_dir])
    url = make_pg_url()

    def stop_after_four(done: int, total: int) -> None:
        if done > 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(tmp_path / "here", url, progress=stop_after_four, batch_size=2)
    again = migrate(tmp_path / "here", url)
    assert again.copied + again.skipped == 6 and again.skipped >= 1
    with open_store(url, embedder_id=_embedder(url), dim=384) as target:
        target.remove([str(docs_dir / "chess.docx")])
        assert checksum(target) != again.checksum
    extra = make_kb(tmp_path / "other")
    extra.ingest(write_notes(tmp_path / "notes", 1, 1))
    extra.close()
    with pytest.raises(MigrationFailed, match="documents"):
        migrate(tmp_path / "other", url)  # the target holds other documents


def _embedder(url: str) -> str:
    from askdocs.store import recorded_embedder

    found = recorded_embedder(url)
    assert found is not None
    return found


def test_vectors_survive_the_round_trip_bit_for_bit(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path, tmp_path: Path
) -> None:
    make_kb(tmp_path / "here").ingest([docs_dir])
    url = make_pg_url()
    migrate(tmp_path / "here", url)
    here, there = make_kb(tmp_path / "here"), make_kb(url)
    mine = {w.path: w.embeddings for w in here.store.dump()}
    theirs = {w.path: w.embeddings for w in there.store.dump()}
    assert mine.keys() == theirs.keys()
    assert all(np.array_equal(mine[p], theirs[p]) for p in mine)


def test_the_http_api_serves_a_postgresql_store(
    make_pg_url: MakeUrl, embedder: object, docs_dir: Path
) -> None:
    from fastapi.testclient import TestClient

    from askdocs import config
    from askdocs.server import create_app
    from askdocs.server.jobs import uploads_dir
    from tests.test_server import ZEBRAFISH, wait_for_job

    url = make_pg_url()
    settings = config.load({"store": url}, environ={})
    with TestClient(create_app(settings, embedder=embedder)) as client:  # type: ignore[arg-type]
        assert client.get("/health").status_code == 200
        files = [("files", ("zebrafish.txt", ZEBRAFISH.encode(), "text/plain"))]
        job = wait_for_job(client, client.post("/documents", files=files).json()["job_id"])
        assert job["state"] == "done" and job["report"]["added"] == 1, job
        (saved,) = uploads_dir(settings).glob("*/*")  # in the data directory, not the database
        hits = client.post("/search", json={"query": "zebrafish heart regrows"}).json()["hits"]
        assert hits[0]["path"] == str(saved)
        passage = client.get(f"/passages/{hits[0]['chunk_id']}").json()
        assert "Zebrafish" in passage["context"]["text"]
        assert [d["path"] for d in client.get("/documents").json()["documents"]] == [str(saved)]
        assert client.delete("/documents", params={"path": str(saved)}).json() == {"removed": 1}
        assert not saved.parent.exists()
        assert client.get("/documents").json()["documents"] == []


def test_an_older_schema_is_migrated_and_a_newer_one_refused(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path
) -> None:
    import psycopg

    from askdocs.errors import IndexMismatch

    url = make_pg_url()
    kb = make_kb(url)
    kb.ingest([docs_dir])
    before = [(h.chunk_id, h.score) for h in kb.search("tides moon", mode="keyword")]
    kb.close()
    with psycopg.connect(url, autocommit=True) as conn:  # as schema 1 left it
        conn.execute("DROP TABLE askdocs_postings, askdocs_tags, askdocs_annotations")
        conn.execute("UPDATE askdocs_meta SET value = '1' WHERE key = 'schema_version'")
    kb = make_kb(url)
    assert [(h.chunk_id, h.score) for h in kb.search("tides moon", mode="keyword")] == before
    kb.close()
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SELECT value FROM askdocs_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
        conn.execute("UPDATE askdocs_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IndexMismatch, match="upgrade askdocs"):
        make_kb(url)


def test_a_store_of_schema_2_gains_tags_and_annotations(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    import psycopg

    url = make_pg_url()
    kb = make_kb(url, embedder=fake_embedder)
    kb.ingest([docs_dir])
    kb.close()
    with psycopg.connect(url, autocommit=True) as conn:  # as schema 2 left it
        conn.execute("DROP TABLE askdocs_tags, askdocs_annotations")
        conn.execute("UPDATE askdocs_meta SET value = '2' WHERE key = 'schema_version'")
    kb = make_kb(url, embedder=fake_embedder)
    tides = str(docs_dir / "tides.pdf")
    assert kb.tags("topic") == {} and kb.annotation("topics") is None
    assert kb.tag("topic", {tides: "sea"}) == 1
    kb.annotate("topics", '{"sea": "tides"}')
    only_sea = Filters(tags=(("topic", "sea"),))
    assert {h.path for h in kb.search("moon", mode="keyword", filters=only_sea)} == {tides}
    assert kb.status().tags == {"topic": 1}
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SELECT value FROM askdocs_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)


def test_a_store_of_schema_3_gains_impact_ordered_postings(
    make_kb: MakeKb,
    make_pg_url: MakeUrl,
    docs_dir: Path,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    from askdocs.store import pg_keyword

    url = make_pg_url()
    kb = make_kb(url, embedder=fake_embedder)
    kb.ingest([docs_dir])
    queries = ["tides moon", "espresso machine descale water"]
    before = [[(h.chunk_id, h.score) for h in kb.search(q, mode="keyword")] for q in queries]
    kb.close()
    with psycopg.connect(url, autocommit=True) as conn:  # as schema 3 left the postings
        conn.execute("ALTER TABLE askdocs_postings DROP COLUMN impact")
        conn.execute("DROP INDEX askdocs_postings_chunk")
        conn.execute("CREATE INDEX askdocs_postings_term ON askdocs_postings (term) "
                     "INCLUDE (chunk_id, tf, dl)")  # fmt: skip
        conn.execute("CREATE INDEX askdocs_postings_chunk ON askdocs_postings (chunk_id)")
        conn.execute("UPDATE askdocs_meta SET value = '3' WHERE key = 'schema_version'")
    kb = make_kb(url, embedder=fake_embedder)
    monkeypatch.setattr(pg_keyword, "EXACT_POSTINGS", 0)  # the plan that reads the impacts
    after = [[(h.chunk_id, h.score) for h in kb.search(q, mode="keyword")] for q in queries]
    assert after == before and all(before)
    kb.close()
    with psycopg.connect(url, autocommit=True) as conn:
        chunks, tokens = conn.execute("SELECT chunks, tokens FROM askdocs_stats").fetchone()
        rows = conn.execute("SELECT tf, dl, impact FROM askdocs_postings").fetchall()
        content_index = conn.execute(  # schema 5: a filter's chunk ids from the index alone
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'askdocs_chunks_content'"
        ).fetchone()[0]
        assert content_index.endswith("(content_id) INCLUDE (id)")
        version = conn.execute("SELECT value FROM askdocs_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
    assert rows and all(
        impact == pytest.approx(pg_keyword.impact(tf, dl, tokens / chunks), rel=1e-6)
        for tf, dl, impact in rows
    )


def test_tags_and_annotations_move_with_the_store_both_ways(
    make_kb: MakeKb, make_pg_url: MakeUrl, docs_dir: Path, tmp_path: Path,
    fake_embedder: FakeEmbedder,
) -> None:  # fmt: skip
    source = make_kb(tmp_path / "here", embedder=fake_embedder)
    source.ingest([docs_dir])
    names = {p.name: str(p) for p in docs_dir.rglob("*") if p.is_file()}
    source.tag("topic", {names["tides.pdf"]: "sea", names["espresso.txt"]: "kitchen",
                         names["sourdough.html"]: "kitchen"})  # fmt: skip
    source.tag("label", {names["taxes.txt"]: "paperwork"})
    source.annotate("topics", '{"sea": ["tides"], "kitchen": ["espresso", "sourdough"]}')
    source.close()
    url = make_pg_url()
    there = migrate(tmp_path / "here", url)
    back = migrate(url, tmp_path / "back")
    assert there.checksum == back.checksum
    for where in (url, tmp_path / "back"):
        kb = make_kb(where, embedder=fake_embedder)
        assert kb.tags("topic") == {names["tides.pdf"]: "sea", names["espresso.txt"]: "kitchen",
                                    names["sourdough.html"]: "kitchen"}  # fmt: skip
        assert kb.tags("label") == {names["taxes.txt"]: "paperwork"}
        assert kb.annotation("topics") == '{"sea": ["tides"], "kitchen": ["espresso", "sourdough"]}'
        kitchen = Filters(tags=(("topic", "kitchen"),))
        found = {Path(h.path).name for h in kb.search("water", mode="keyword", filters=kitchen)}
        assert found == {"espresso.txt", "sourdough.html"}
    # A tag changed in the source is copied by the next run; one only the target has is caught.
    with make_kb(url, embedder=fake_embedder) as kb:
        kb.tag("topic", {names["tides.pdf"]: "ocean"})
    again = migrate(url, tmp_path / "back")
    assert (again.copied, again.skipped) == (0, 6) and again.checksum != back.checksum
    with make_kb(tmp_path / "back", embedder=fake_embedder) as kb:
        assert kb.tags("topic")[names["tides.pdf"]] == "ocean"
        kb.tag("extra", {names["chess.docx"]: "games"})
    with pytest.raises(MigrationFailed, match="checksums"):
        migrate(url, tmp_path / "back")
