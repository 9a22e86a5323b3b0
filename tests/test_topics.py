"""Topic discovery with the real MiniLM embedder, real UMAP and real HDBSCAN, on notes on
four themes written here; the maps are real files (a PNG, a self-contained HTML page)."""

from __future__ import annotations

import csv
import doctest
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from askdocs.cli import main
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError, MissingDependency
from askdocs.kb import KnowledgeBase
from askdocs.retrieval import Filters
from askdocs.testing import FakeGenerator
from askdocs.topics import (
    TAG,
    TopicOptions,
    Topics,
    cluster,
    ctfidf,
    find_and_save,
    find_topics,
    maps,
    pipeline,
    reduce,
    summary,
)
from askdocs.topics.ctfidf import term_counts, top_terms
from askdocs.topics.maps import save_html, save_png
from askdocs.types import Item
from tests.conftest import MakeKb

THEMES = {
    "astronomy": [
        "The telescope captured a distant galaxy with spiral arms of young stars.",
        "Astronomers measured the orbit of the comet around the sun.",
        "A supernova in a nearby galaxy was seen by observatories worldwide.",
        "The planet's moons were photographed by the space probe during its flyby.",
        "Dark matter shapes how galaxies rotate, according to the new survey of stars.",
        "The rover sent pictures of craters on the surface of Mars.",
        "A black hole at the centre of the galaxy pulls in gas and dust.",
        "Astronauts on the space station watched a meteor shower from orbit.",
        "The eclipse of the moon turned it red for an hour last night.",
        "Jupiter's great red spot is a storm larger than the Earth.",
    ],
    "baking": [
        "Knead the bread dough until smooth, then let it rise for an hour.",
        "Cream the butter and sugar before folding in the flour for the cake.",
        "The sourdough starter needs feeding with flour and water every day.",
        "Bake the croissants until golden and flaky in a hot oven.",
        "Whisk egg whites to stiff peaks for the meringue topping.",
        "Brush the pie crust with beaten egg so it browns in the oven.",
        "Proof the yeast in warm milk before adding it to the flour.",
        "Let the loaf cool on a rack before slicing the bread.",
        "Sift cocoa and flour together for a lighter chocolate sponge cake.",
        "Roll the pastry thin and chill it before baking the tart.",
    ],
    "football": [
        "The striker scored a header in the final minute of the match.",
        "The goalkeeper saved a penalty to keep his team in the cup.",
        "Fans sang in the stadium as the home side won the derby.",
        "The coach changed the formation at half time and the team scored twice.",
        "The referee showed a red card after a late tackle in midfield.",
        "The club signed a young winger before the transfer window closed.",
        "Our team won the league title on the last day of the season.",
        "The captain lifted the trophy after the penalty shootout.",
        "The defender cleared the ball off the line to save the match.",
        "A last-minute goal sent the team through to the cup final.",
    ],
    "gardening": [
        "Prune the roses in late winter to encourage strong new shoots.",
        "Sow tomato seeds indoors and plant the seedlings out after the frost.",
        "Water the vegetable garden early in the morning in hot weather.",
        "Add compost to the soil before planting the flower beds.",
        "Mulch around the shrubs to keep weeds down and the soil moist.",
        "Dig up the potatoes when the plants have flowered and the leaves yellow.",
        "Deadhead the flowers so the plants keep blooming all summer.",
        "Plant tulip bulbs in autumn for flowers in the spring garden.",
        "Protect the lettuce seedlings from slugs with a ring of grit.",
        "Divide the perennials in spring and replant them in the border.",
    ],
}
THEME_OF = [theme for theme, texts in THEMES.items() for _ in texts]


def themed_items() -> list[Item]:
    texts = [t for texts in THEMES.values() for t in texts]
    return [Item(str(i), text, text[:40]) for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def found(embedder: MiniLMEmbedder) -> Topics:
    """The themed notes' topics, seed 0 (UMAP compiles once here, ~10-20 s)."""
    return find_topics(themed_items(), TopicOptions(seed=0), embedder=embedder)


@pytest.mark.parametrize("module", [ctfidf, cluster, maps, pipeline, reduce])
def test_worked_examples_hold(module: object) -> None:
    failed, _ = doctest.testmod(module)  # type: ignore[arg-type]
    assert failed == 0


def test_topics_recover_the_themes(found: Topics) -> None:
    assert 3 <= len(found.topics) <= 5
    assert normalized_mutual_info_score(THEME_OF, found.assignments) >= 0.8
    assert [t.id for t in found.topics] == list(range(len(found.topics)))
    sizes = [t.size for t in found.topics]
    assert sizes == sorted(sizes, reverse=True)
    assert sum(sizes) + found.outliers == len(THEME_OF)
    words = {w for t in found.topics for w in t.keywords}
    assert words & {"galaxy", "flour", "team", "soil", "plant", "match", "stars", "bread"}
    for topic in found.topics:
        members = {found.ids[i] for i in np.flatnonzero(found.assignments == topic.id)}
        assert topic.representatives and set(topic.representatives) <= members
    assert found.coords is not None and found.coords.shape == (len(THEME_OF), 2)


def test_same_seed_same_topics(found: Topics, embedder: MiniLMEmbedder) -> None:
    again = find_topics(themed_items(), TopicOptions(seed=0), embedder=embedder)
    assert again.assignments.tolist() == found.assignments.tolist()
    assert [t.keywords for t in again.topics] == [t.keywords for t in found.topics]


def test_reassign_and_merge(embedder: MiniLMEmbedder) -> None:
    items = themed_items()
    options = TopicOptions(seed=0, min_cluster_size=3, reassign=True, n_topics=2, map=False)
    merged = find_topics(items, options, embedder=embedder)
    assert merged.outliers == 0
    assert len(merged.topics) == 2
    assert sorted(set(merged.assignments.tolist())) == [0, 1]
    assert merged.coords is None


def test_a_giant_group_is_split_into_its_sub_groups() -> None:
    rng = np.random.default_rng(0)  # two close blobs of 40 points, and 20 points far away
    points = np.concatenate([rng.normal(0, 0.3, (40, 2)), rng.normal((1.6, 0), 0.3, (40, 2)),
                             rng.normal((30, 0), 0.3, (20, 2))])  # fmt: skip
    free, _ = cluster.density_groups(points, min_size=10)
    assert sorted(np.bincount(free[free >= 0]).tolist()) == [20, 80]
    capped, _ = cluster.density_groups(points, min_size=10, max_size=50)
    sizes = np.bincount(capped[capped >= 0]).tolist()
    assert len(sizes) == 3 and max(sizes) <= 50


def test_reassign_moves_outliers_to_the_nearest_centroid() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.3]])
    labels = cluster.reassign(vectors, np.array([0, 0, 1, 1, -1]))
    assert labels.tolist() == [0, 0, 1, 1, 0]


def test_stored_vectors_are_used_without_an_embedder(embedder: MiniLMEmbedder) -> None:
    items = themed_items()
    vectors = embedder.embed([i.text for i in items])
    stored = [Item(i.id, i.text, i.title, v) for i, v in zip(items, vectors, strict=True)]
    found = find_topics(stored, TopicOptions(seed=0, map=False))  # no embedder at all
    assert normalized_mutual_info_score(THEME_OF, found.assignments) >= 0.8


def test_too_few_texts_and_bad_options_are_clear_errors(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(ConfigError, match="at least 8 texts, not 3"):
        find_topics(themed_items()[:3], embedder=embedder)
    with pytest.raises(ConfigError, match="reassign_by is one of centroid, probabilities"):
        find_topics(themed_items(), embedder=embedder, reassign_by="nearest")
    with pytest.raises(ConfigError, match="needs the language model"):
        find_topics(themed_items(), embedder=embedder, label_with_llm=True)


def test_exact_neighbours_match_scikit_learn_and_feed_umap(embedder: MiniLMEmbedder) -> None:
    from sklearn.neighbors import NearestNeighbors

    vectors = embedder.embed([i.text for i in themed_items()])
    indices, distances = reduce.nearest(vectors, 6)
    theirs = NearestNeighbors(n_neighbors=6, metric="cosine").fit(vectors).kneighbors(vectors)
    np.testing.assert_allclose(distances, theirs[0], atol=1e-5)
    assert (indices[:, 0] == np.arange(len(vectors))).all()
    assert (np.sort(indices, axis=1) == np.sort(theirs[1], axis=1)).all()
    # UMAP takes them instead of searching (as it does from 4,096 texts up)
    points = reduce.reduce(vectors, dims=5, seed=0, neighbours=6, known=(indices, distances))
    labels, _ = cluster.density_groups(points, min_size=5)
    assert normalized_mutual_info_score(THEME_OF, labels) >= 0.8


def test_a_missing_extra_names_the_pip_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # what `import umap` sees when absent
    with pytest.raises(MissingDependency, match=re.escape("pip install 'askdocs[topics]'")):
        reduce.reduce(np.eye(10, 4), dims=2, seed=0)


def test_ctfidf_keywords_match_a_hand_computed_example() -> None:
    texts = ["Running dogs", "running dogs bark", "Cats sleep", "cats run"]
    counts, terms, surfaces = term_counts(texts, [0, 0, 1, 1], [0, 1])
    assert terms == ["run", "dog", "bark", "cat", "sleep"]
    assert counts.tolist() == [[2, 2, 1, 0, 0], [1, 0, 0, 2, 1]]
    # A = 9 terms / 2 topics = 4.5; idf = log(1 + A / f) with f = 3, 2, 1, 2, 1 over topics;
    # tf = count / terms in the topic (5 and 4).
    idf = np.log([1 + 4.5 / 3, 1 + 4.5 / 2, 1 + 4.5 / 1, 1 + 4.5 / 2, 1 + 4.5 / 1])
    by_hand = np.array([[2 / 5, 2 / 5, 1 / 5, 0, 0], [1 / 4, 0, 0, 2 / 4, 1 / 4]]) * idf
    weights = ctfidf.ctfidf(counts)
    np.testing.assert_allclose(weights, by_hand)
    np.testing.assert_allclose(weights[0, :3], [0.366516, 0.471462, 0.340950], atol=1e-6)
    shown = [
        [surfaces[row][terms[c]] for c in top] for row, top in enumerate(top_terms(weights, 3))
    ]
    # stems shown as the word each came from most often in that topic
    assert shown == [["dogs", "running", "bark"], ["cats", "sleep", "run"]]


def test_reassign_by_probabilities_and_gold_metrics(embedder: MiniLMEmbedder) -> None:
    options = TopicOptions(seed=0, min_cluster_size=3, map=False)
    kept = find_topics(themed_items(), options, embedder=embedder, gold=THEME_OF)
    moved = find_topics(themed_items(), options, embedder=embedder, gold=THEME_OF,
                        reassign=True, reassign_by="probabilities")  # fmt: skip
    assert moved.outliers == 0
    inside = kept.assignments != -1
    assert moved.assignments[inside].tolist() == kept.assignments[inside].tolist()
    m = kept.metrics
    assert m["nmi"] == pytest.approx(normalized_mutual_info_score(THEME_OF, kept.assignments))
    assert m["ari"] == pytest.approx(adjusted_rand_score(THEME_OF, kept.assignments))
    gold_inside = [g for g, keep in zip(THEME_OF, inside, strict=True) if keep]
    assert m["ari_without_outliers"] == pytest.approx(
        adjusted_rand_score(gold_inside, kept.assignments[inside])
    )


def test_llm_labels_come_from_keywords_and_representatives(embedder: MiniLMEmbedder) -> None:
    fake = FakeGenerator(['"The night sky."\nand more'])
    found = find_topics(themed_items(), embedder=embedder, generator=fake, label_with_llm=True,
                        map=False)  # fmt: skip
    assert [t.label for t in found.topics] == ["The night sky"] * len(found.topics)
    assert len(fake.calls) == len(found.topics)
    prompt = fake.calls[0][-1].content
    assert ", ".join(found.topics[0].keywords) in prompt
    text_of = {i.id: i.text for i in themed_items()}
    assert all(text_of[r] in prompt for r in found.topics[0].representatives)


def test_summary_reports_outliers_as_count_and_share(found: Topics) -> None:
    data = summary(found, TopicOptions())
    assert data["format"] == 1
    assert data["outliers"] == found.outliers
    assert data["outlier_share"] == pytest.approx(found.outliers / len(THEME_OF), abs=1e-4)
    assert len(data["points"]) == len(THEME_OF)


def test_png_map_is_a_png(found: Topics, tmp_path: Path) -> None:
    path = save_png(found, tmp_path / "map.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_html_map_is_self_contained_and_escapes_titles(found: Topics, tmp_path: Path) -> None:
    hostile = '</script><img src=x onerror="alert(1)">&amp;'
    titles = [hostile, *found.titles[1:]]
    shown = Topics(found.topics, found.ids, found.assignments, found.coords, titles)
    page = save_html(shown, tmp_path / "map.html").read_text(encoding="utf-8")
    assert page.count("</script>") == 2  # the data block's and the script's own
    assert "<img" not in page and "&amp;" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    data = page.split('id="data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["points"][0][3] == hostile  # the title survives as data
    assert "innerHTML" not in page
    assert "default-src 'none'" in page  # nothing may be fetched, whatever a title holds


def test_cli_over_a_file_with_gold_reports_nmi_and_ari(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["body", "theme"])
        writer.writerows(
            (item.text, theme) for item, theme in zip(themed_items(), THEME_OF, strict=True)
        )
    result = CliRunner().invoke(main, [
        "topics", str(path), "--text-column", "body", "--gold-column", "theme", "--seed", "3",
        "--json", "--html", str(tmp_path / "map.html"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["metrics"]["nmi"] >= 0.7
    assert -1 <= body["metrics"]["ari"] <= 1
    assert len(body["assignments"]) == len(THEME_OF)
    assert (tmp_path / "map.html").is_file()


def test_cli_prints_the_topic_table_and_writes_the_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps({"text": i.text}) + "\n" for i in themed_items()))
    result = CliRunner().invoke(
        main, ["topics", str(path), "--reassign", "--map", str(tmp_path / "map.png")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(r"\d topics over 40 texts; 0 outliers \(0\.0%\)", lines[0])
    assert re.match(r" +0 +\d+  \w+", lines[2])  # id, size, keywords
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(main, ["topics", str(path), "--save"])
    assert result.exit_code == 2 and "give no INPUT" in result.output


def test_topics_saved_into_the_store_filter_searches(
    make_kb: MakeKb, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for theme, texts in THEMES.items():
        for i, text in enumerate(texts):
            (docs / f"{theme}-{i}.txt").write_text(text, encoding="utf-8")
    kb: KnowledgeBase = make_kb(tmp_path / "store", embedder=embedder)
    kb.ingest([docs])
    kb.tag(TAG, {str(next(docs.glob("baking-0.txt"))): "99"})  # from an earlier run
    found = find_and_save(kb, TopicOptions(seed=0))
    tags = kb.tags(TAG)
    assert set(tags) == {d.path for d in kb.documents()}
    assert "99" not in tags.values()
    saved = json.loads(kb.annotation("topics") or "{}")
    assert len(saved["topics"]) == len(found.topics)
    assert {p["path"] for p in saved["points"]} == set(tags)
    first = [p for p, t in tags.items() if t == "0"]
    hits = kb.search("a note", k=50, filters=Filters(tags=((TAG, "0"),)))
    assert hits and {h.path for h in hits} <= set(first)
    kb.close()
    store = str(tmp_path / "store")
    result = CliRunner().invoke(main, ["topics", "--store", store, "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["saved"] and body["documents"] == len(tags)
    with KnowledgeBase.open(kb.settings) as again:
        assert again.tags(TAG) == {p: str(t) for p, t in body["assignments"].items()}
        saved_at = json.loads(again.annotation("topics") or "{}")["created_at"]
    result = CliRunner().invoke(
        main, ["topics", "--store", store, "--path", "*baking*", "--no-save", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert not body["saved"] and body["documents"] == len(THEMES["baking"])
    with KnowledgeBase.open(kb.settings) as again:
        assert json.loads(again.annotation("topics") or "{}")["created_at"] == saved_at
