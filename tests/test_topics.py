"""Topic discovery with the real MiniLM embedder, real UMAP and real HDBSCAN, on notes on
four themes written here; the maps are real files (a PNG, a self-contained HTML page)."""

from __future__ import annotations

import csv
import doctest
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import normalized_mutual_info_score

from askdocs.cli import main
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError
from askdocs.kb import KnowledgeBase
from askdocs.retrieval import Filters
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
)
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


@pytest.mark.parametrize("module", [ctfidf, cluster, maps, pipeline])
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


def test_too_few_texts_is_a_clear_error(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(ConfigError, match="at least 8 texts, not 3"):
        find_topics(themed_items()[:3], embedder=embedder)


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
    result = CliRunner().invoke(
        main, ["topics", "--store", str(tmp_path / "store"), "--no-save", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["documents"] == len(tags)
