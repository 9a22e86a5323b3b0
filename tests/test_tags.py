"""Document tags as the user meets them: through `KnowledgeBase`, the CLI's `--tag` and the
HTTP API's `filters.tags`. The store contract for tags is in test_store.py.
"""

from __future__ import annotations

import doctest
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from askdocs.cli import main
from askdocs.embeddings import MiniLMEmbedder
from askdocs.kb import KnowledgeBase
from askdocs.retrieval import Filters
from askdocs.store import tags as store_tags
from askdocs.testing import FakeEmbedder
from tests.conftest import DOCS_STORE_SETTINGS, MakeKb

KITCHEN = {"espresso.txt", "sourdough.html"}


def tag_kitchen(kb: KnowledgeBase) -> None:
    """topic=kitchen on espresso.txt and sourdough.html, topic=sea on tides.pdf."""
    by_name = {Path(d.path).name: d.path for d in kb.documents()}
    topics = {by_name[n]: "kitchen" for n in KITCHEN} | {by_name["tides.pdf"]: "sea"}
    assert kb.tag("topic", topics) == 3


@pytest.fixture
def tagged_store(docs_store: Path, tmp_path: Path, make_kb: MakeKb) -> Path:
    """A private copy of the sample store, tagged by `tag_kitchen`."""
    store = Path(shutil.copytree(docs_store, tmp_path / "store"))
    kb = make_kb(store, overrides=DOCS_STORE_SETTINGS)
    tag_kitchen(kb)
    kb.close()
    return store


def names(paths: Any) -> set[str]:
    return {Path(p).name for p in paths}


# -- KnowledgeBase ---------------------------------------------------------------------------


def test_collection_and_search_keep_to_the_tagged_documents(
    make_kb: MakeKb, docs_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    kb = make_kb(embedder=fake_embedder)
    kb.ingest([docs_dir])
    tag_kitchen(kb)
    kitchen = Filters(tags=(("topic", "kitchen"),))
    assert names(item.id for item in kb.collection(kitchen)) == KITCHEN
    chunks = kb.collection(kitchen, unit="chunk")
    assert chunks and names(item.id.split("#")[0] for item in chunks) == KITCHEN
    assert names(i.id for i in kb.collection(Filters(kinds=("pdf",), tags=kitchen.tags))) == set()
    assert len(kb.collection()) == 6
    for mode in ("dense", "keyword", "hybrid"):
        assert names(h.path for h in kb.search("water", mode=mode, filters=kitchen)) == KITCHEN


def test_an_edited_file_keeps_its_tags_and_a_pruned_one_loses_them(
    make_kb: MakeKb, docs_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    kb = make_kb(embedder=fake_embedder)
    kb.ingest([docs_dir])
    tag_kitchen(kb)
    (docs_dir / "espresso.txt").write_text("Espresso\n\nGrind the beans finely.\n")
    (docs_dir / "sourdough.html").unlink()
    report = kb.ingest([docs_dir], prune=True)
    assert (report.updated, report.removed) == (1, 1)
    assert names(kb.tags("topic")) == {"espresso.txt", "tides.pdf"}
    kitchen = Filters(tags=(("topic", "kitchen"),))
    [hit] = kb.search("grind the beans", mode="keyword", filters=kitchen)
    assert "Grind" in hit.text
    kb.annotate("topics", json.dumps({"kitchen": ["espresso"]}))
    assert json.loads(kb.annotation("topics") or "") == {"kitchen": ["espresso"]}
    kb.annotate("topics", None)
    assert kb.annotation("topics") is None


# -- CLI -------------------------------------------------------------------------------------


def cli(*args: str | Path, code: int = 0) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_search_and_ask_take_tag_filters(tagged_store: Path) -> None:
    def found(*options: str) -> set[str]:
        out = cli("search", "water and the moon", "--json", "--store", tagged_store, *options)
        return names(h["path"] for h in json.loads(out.stdout))

    assert found("--tag", "topic=kitchen") == KITCHEN
    assert found("--tag", "topic=sea") == {"tides.pdf"}
    assert found("--tag", "topic=kitchen", "--type", "html") == {"sourdough.html"}
    assert found("--tag", "topic=kitchen", "--tag", "topic=sea") == set()
    assert found("--tag", "topic=kitchen=yes") == set()  # the value is all after the first =
    question = "When do spring tides come?"
    asked = cli("ask", question, "--extractive", "--json", "--store", tagged_store,
                "--tag", "topic=kitchen")  # fmt: skip
    answer = json.loads(asked.stdout)
    shown = names(c["path"] for c in answer["citations"] + answer["passages"])
    assert shown and shown <= KITCHEN
    unfiltered = json.loads(cli("ask", question, "--extractive", "--json", "--store",
                                tagged_store).stdout)  # fmt: skip
    assert "tides.pdf" in names(c["path"] for c in unfiltered["citations"])
    status = json.loads(cli("status", "--json", "--store", tagged_store).stdout)
    assert status["tags"] == {"topic": 3} and status["annotations"] == []
    assert "tags       topic (3 documents)" in cli("status", "--store", tagged_store).stdout


@pytest.mark.parametrize("given", ["topic", "=kitchen", ""])
def test_a_malformed_tag_option_is_a_usage_error(tagged_store: Path, given: str) -> None:
    for command in ("search", "ask"):
        result = cli(command, "tides", "--store", tagged_store, "--tag", given, code=2)
        assert "KEY=VALUE" in result.output and "--tag" in result.output


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def client(tagged_store: Path, embedder: MiniLMEmbedder) -> Iterator[Any]:
    from tests.test_server import clients

    making = clients(tagged_store, embedder)
    yield next(making)()
    next(making, None)


def test_http_search_and_ask_filter_by_tags(client: Any) -> None:
    def found(tags: dict[str, str], **filters: Any) -> set[str]:
        body = {"query": "water and the moon", "filters": {"tags": tags, **filters}}
        response = client.post("/search", json=body)
        assert response.status_code == 200, response.text
        return names(h["path"] for h in response.json()["hits"])

    assert found({"topic": "kitchen"}) == KITCHEN
    assert found({"topic": "kitchen"}, kinds=["txt"]) == {"espresso.txt"}
    assert found({"topic": "nothing"}) == set()
    assert len(found({})) > 3  # no tag asked
    body = {"question": "When do spring tides come?", "extractive": True,
            "filters": {"tags": {"topic": "kitchen"}}}  # fmt: skip
    answer = client.post("/ask", json=body).json()
    shown = names(c["path"] for c in answer["citations"] + answer["passages"])
    assert shown and shown <= KITCHEN


@pytest.mark.parametrize(
    "tags",
    [
        {"topic": 3},
        {"": "x"},
        {"k" * 101: "x"},
        {"topic": "v" * 501},
        {f"key{n}": "x" for n in range(21)},
        ["topic", "kitchen"],
    ],
)
def test_bad_tag_filters_are_422(client: Any, tags: Any) -> None:
    body = {"query": "water", "filters": {"tags": tags}}
    assert client.post("/search", json=body).status_code == 422


def test_docstring_examples() -> None:
    assert doctest.testmod(store_tags).failed == 0
