"""POST /classify and the topics routes over HTTP, with the real embedder and a real store.

Classification runs on the sample store (6 documents) and on texts in the request; topics
need more documents than that, so they run on a store of short notes on four themes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from askdocs.embeddings import MiniLMEmbedder
from tests.test_server import MakeClient, client, clients, make_client

__all__ = ["client", "make_client"]  # fixtures used here

REVIEWS = {
    "I loved this film, a warm and funny story": "positive",
    "Wonderful acting and a moving ending": "positive",
    "A delight from start to finish": "positive",
    "Brilliant, I would watch it again tomorrow": "positive",
    "Dull, slow and far too long": "negative",
    "The plot made no sense and the actors were wooden": "negative",
    "A boring mess I want my money back": "negative",
    "Awful dialogue and a predictable ending": "negative",
}


def test_zero_shot_labels_texts_and_scores_them_against_gold(client: TestClient) -> None:
    texts = ["The striker scored in the final minute", "Simmer the onions in butter"]
    response = client.post(
        "/classify",
        json={
            "method": "zero-shot",
            "labels": ["sport", "cooking"],
            "texts": texts,
            "gold": ["sport", "cooking"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["id"] for p in body["predictions"]] == ["0", "1"]
    assert [p["label"] for p in body["predictions"]] == ["sport", "cooking"]
    assert all(0.5 < p["score"] <= 1 for p in body["predictions"])
    assert body["metrics"]["accuracy"] == 1.0
    assert body["metrics"]["macro_f1"] == 1.0


def test_supervised_learns_from_examples_in_the_request(client: TestClient) -> None:
    examples = [{"text": t, "label": label} for t, label in REVIEWS.items()]
    response = client.post(
        "/classify",
        json={
            "method": "supervised",
            "examples": examples,
            "texts": ["An enchanting, funny film", "Tedious and badly acted"],
        },
    )
    assert response.status_code == 200, response.text
    labels = [p["label"] for p in response.json()["predictions"]]
    assert labels == ["positive", "negative"]


def test_labels_written_back_to_stored_documents_filter_searches(client: TestClient) -> None:
    response = client.post(
        "/classify",
        json={
            "method": "zero-shot",
            "labels": ["cooking and food", "the sea and the coast"],
            "from_store": {"unit": "document"},
            "write_tag": "subject",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    stored = {d["path"] for d in client.get("/documents").json()["documents"]}
    assert {p["id"] for p in body["predictions"]} == stored
    assert body["tagged"] == len(stored)
    by_name = {Path(p["id"]).name: p["label"] for p in body["predictions"]}
    assert by_name["espresso.txt"] == "cooking and food"
    assert by_name["tides.pdf"] == "the sea and the coast"
    hits = client.post(
        "/search",
        json={"query": "water", "filters": {"tags": {"subject": "the sea and the coast"}}},
    ).json()["hits"]
    sea = {p["id"] for p in body["predictions"] if p["label"] == "the sea and the coast"}
    assert hits and {h["path"] for h in hits} <= sea


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"method": "zero-shot", "labels": ["a", "b"]}, "either texts or from_store"),
        (
            {"method": "zero-shot", "labels": ["a"], "texts": ["x"], "from_store": {}},
            "either texts or from_store",
        ),
        (
            {"method": "zero-shot", "labels": ["a", "b"], "texts": ["x"], "write_tag": "t"},
            "write_tag needs from_store",
        ),
        (
            {"method": "zero-shot", "labels": ["a", "b"], "texts": ["x"], "gold": ["a", "b"]},
            "one label per text",
        ),
        ({"method": "guess", "labels": ["a"], "texts": ["x"]}, "method"),
    ],
)
def test_bad_requests_are_422_naming_the_problem(
    client: TestClient, body: dict[str, Any], problem: str
) -> None:
    response = client.post("/classify", json=body)
    assert response.status_code == 422
    assert problem in response.json()["error"]


def test_zero_shot_without_labels_is_a_400_naming_them(client: TestClient) -> None:
    response = client.post("/classify", json={"method": "zero-shot", "texts": ["x"]})
    assert response.status_code == 400
    assert "label" in response.json()["error"]


# -- topics ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def themed_client(
    tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder
) -> Iterator[TestClient]:
    from tests.test_topics import THEMES  # the themed notes the topic tests cluster

    root = tmp_path_factory.mktemp("themed")
    docs = root / "docs"
    docs.mkdir()
    for theme, texts in THEMES.items():
        for i, text in enumerate(texts):
            (docs / f"{theme}-{i:02d}.txt").write_text(text, encoding="utf-8")
    make: MakeClient
    for make in clients(root / "store", embedder):
        client = make()
        client.app.state.askdocs.kb.ingest([docs])
        yield client


def wait_for(client: TestClient, task_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/tasks/{task_id}").json()
        if task["state"] in ("done", "failed"):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} still {task['state']} after {timeout} s")


def test_topics_run_in_the_background_and_are_saved_for_search(themed_client: TestClient) -> None:
    client = themed_client
    assert client.get("/topics").status_code == 404  # none found yet
    accepted = client.post("/topics", json={"seed": 7})
    assert accepted.status_code == 202, accepted.text
    task = wait_for(client, accepted.json()["task_id"])
    assert task["state"] == "done", task["error"]
    assert task["fraction"] == 1.0
    saved = client.get("/topics").json()
    assert 3 <= len(saved["topics"]) <= 6
    assert saved["documents"] == len(saved["points"])
    for topic in saved["topics"]:
        assert topic["keywords"] and topic["size"] > 0
    first = saved["topics"][0]["id"]
    members = {p["path"] for p in saved["points"] if p["topic"] == first}
    hits = client.post(
        "/search", json={"query": "a note", "k": 50, "filters": {"tags": {"topic": str(first)}}}
    ).json()["hits"]
    assert hits and {h["path"] for h in hits} <= members


def test_a_second_topics_run_while_one_runs_is_refused(themed_client: TestClient) -> None:
    first = themed_client.post("/topics", json={"seed": 1})
    second = themed_client.post("/topics", json={"seed": 2})
    assert first.status_code == 202
    assert second.status_code == 409
    assert "already" in second.json()["error"]
    wait_for(themed_client, first.json()["task_id"])


def test_unknown_task_is_404(client: TestClient) -> None:
    response = client.get("/tasks/nope")
    assert response.status_code == 404
    assert response.json()["type"] == "NotFound"


def test_topics_options_reach_the_run(themed_client: TestClient) -> None:
    body = {"seed": 0, "n_topics": 2, "reassign": True, "reassign_by": "probabilities"}
    accepted = themed_client.post("/topics", json=body)
    assert accepted.status_code == 202, accepted.text
    assert wait_for(themed_client, accepted.json()["task_id"])["state"] == "done"
    saved = themed_client.get("/topics").json()
    assert len(saved["topics"]) == 2
    assert saved["outliers"] == 0
    assert all(p["topic"] >= 0 for p in saved["points"])
    bad = themed_client.post("/topics", json={"reassign_by": "guess"})
    assert bad.status_code == 422


# -- tuning MiniLM first, in the background (askdocs[finetune], real PyTorch) ----------------


def test_self_training_runs_in_the_background_and_tags_the_documents(
    themed_client: TestClient,
) -> None:
    from tests.test_topics import THEMES

    body = {
        "method": "zero-shot", "self_train": True, "labels": list(THEMES),
        "from_store": {"unit": "document"}, "write_tag": "theme",
    }  # fmt: skip
    accepted = themed_client.post("/classify", json=body)
    assert accepted.status_code == 202, accepted.text
    busy = themed_client.post("/classify", json=body)
    assert busy.status_code == 409 and "already" in busy.json()["error"]
    task = wait_for(themed_client, accepted.json()["task_id"], timeout=600)
    assert task["state"] == "done", task["error"]
    assert task["kind"] == "classify" and task["fraction"] == 1.0
    predictions = task["result"]["predictions"]
    assert len(predictions) == 40 and task["result"]["tagged"] == 40
    right = sum(Path(p["id"]).name.split("-")[0] == p["label"] for p in predictions)
    assert right >= 36, predictions
    hits = themed_client.post(
        "/search", json={"query": "a note", "k": 50, "filters": {"tags": {"theme": "baking"}}}
    ).json()["hits"]
    baking = {p["id"] for p in predictions if p["label"] == "baking"}
    assert hits and {h["path"] for h in hits} <= baking


def test_fine_tuning_runs_in_the_background_and_scores_against_gold(client: TestClient) -> None:
    examples = [{"text": t, "label": label} for t, label in REVIEWS.items()]
    texts = ["An enchanting, funny film", "Tedious and badly acted"]
    body = {"method": "supervised", "fine_tune": True, "examples": examples, "texts": texts,
            "gold": ["positive", "negative"]}  # fmt: skip
    accepted = client.post("/classify", json=body)
    assert accepted.status_code == 202, accepted.text
    task = wait_for(client, accepted.json()["task_id"], timeout=600)
    assert task["state"] == "done", task["error"]
    assert [p["label"] for p in task["result"]["predictions"]] == ["positive", "negative"]
    assert task["result"]["metrics"]["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"method": "supervised", "self_train": True, "texts": ["x"]}, 422, "self_train"),
        ({"method": "supervised", "fine_tune": True, "texts": ["x"]}, 422, "fine_tune"),
        ({"method": "llm", "fine_tune": True, "labels": ["a", "b"], "texts": ["x"]}, 422,
         "fine_tune"),
        ({"method": "zero-shot", "self_train": True, "labels": ["a", "b"], "texts": ["x"] * 5},
         400, "20 texts or more"),
        ({"method": "zero-shot", "self_train": True, "texts": ["x"] * 30}, 400, "two labels"),
        ({"method": "supervised", "fine_tune": True, "texts": ["x"],
          "examples": [{"text": "a", "label": "y"}, {"text": "b", "label": "y"}]}, 400,
         "two classes"),
    ],
)  # fmt: skip
def test_tuning_requests_are_checked_before_any_task_starts(
    client: TestClient, body: dict[str, Any], status: int, problem: str
) -> None:
    response = client.post("/classify", json=body)
    assert response.status_code == status, response.text
    assert problem in response.json()["error"]


def test_tuning_without_pytorch_is_a_503_naming_the_extra(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    body = {"method": "zero-shot", "self_train": True, "labels": ["a", "b"], "texts": ["x"] * 30}
    response = client.post("/classify", json=body)
    assert response.status_code == 503
    assert "pip install 'askdocs[finetune]'" in response.json()["error"]
