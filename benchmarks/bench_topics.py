"""Topic discovery: `askdocs topics` against the gold classes of AG News, next to k-means and
BERTopic on the same embeddings, and over SciFact's 5,183 stored abstracts.

    python benchmarks/bench_topics.py          # the markdown table (~10 min on 2 cores)

(a) AG News (`ag_news_test/test.csv` under `--data`, default ../shared/data beside the
repository; 7,600 articles, 4 balanced classes; text = title + ". " + description). The texts
are embedded once by the configured embedder and cached under ~/.cache/askdocs-bench/topics/
(keyed by the embedder and a hash of the texts); every method clusters those same vectors.
NMI and ARI are over every text, the outliers counting as one more cluster; "kept" repeats
them over the texts given a topic. Wall time is the clustering alone, embedding excluded.
- askdocs: `find_topics` (exact cosine neighbours, UMAP 5-D, HDBSCAN, c-TF-IDF keywords)
  with its defaults, with the outliers reassigned (by centroid, by HDBSCAN membership), and
  merged down to 4 topics (`n_topics=4`), outliers kept or reassigned;
- k-means, k = 4 (scikit-learn, 10 starts) on the 384-D vectors;
- BERTopic (`--bertopic-python`, a virtualenv of its own: `python -m venv
  ~/.cache/askdocs-bench/bertopic-venv`, then its pip: `install torch==2.13.0` (the CPU
  wheel) and `install bertopic`), given the vectors as a .npy file, run as a subprocess:
  HDBSCAN min_cluster_size 10 (its default), askdocs' min_cluster_size, and that merged
  down to 4 (`nr_topics=4`); UMAP seeded, as in askdocs, so it runs on one thread too.
(b) SciFact: `find_and_save(..., save=False)` over the store at `--scifact-store` (opened
read-only in effect: nothing is saved), its 5,183 documents' stored vectors; wall time by
stage, topics, outlier share; the PNG and HTML maps go to ~/.cache/askdocs-bench/topics/.

The first UMAP fit in a process compiles umap-learn's numba kernels: measured once on 200
random points and reported; every timed run comes after it (BERTopic's after a fit on 4,200
points, as its UMAP searches neighbours with pynndescent, whose kernels compile too).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from cpu import cpu_name

from askdocs import config
from askdocs.embeddings import load_embedder
from askdocs.kb import KnowledgeBase
from askdocs.topics import TopicOptions, default_size, find_and_save, find_topics
from askdocs.topics.cluster import agreement
from askdocs.topics.maps import save_html, save_png
from askdocs.topics.reduce import reduce
from askdocs.types import Item

DATA = Path(__file__).resolve().parents[1] / "../shared/data"
CACHE = Path.home() / ".cache/askdocs-bench/topics"
VENV_PYTHON = Path.home() / ".cache/askdocs-bench/bertopic-venv/bin/python"
SCIFACT = Path.home() / ".local/share/askdocs/stores/eval-scifact-int8"

BERTOPIC = """
import json, sys, time
import numpy as np
from bertopic import BERTopic
from umap import UMAP
from hdbscan import HDBSCAN

vectors, texts, out, seed, configs = sys.argv[1:6]
embeddings = np.load(vectors)
docs = json.loads(open(texts, encoding="utf-8").read())
# numba compiling UMAP's and pynndescent's kernels (past 4,096 points), left out of the timing
UMAP(n_components=5, random_state=int(seed)).fit(embeddings[:4200])
runs = []
for config in json.loads(configs):
    started = time.perf_counter()
    model = BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                        low_memory=False, random_state=int(seed)),
        hdbscan_model=HDBSCAN(min_cluster_size=config["min_cluster_size"], metric="euclidean",
                              cluster_selection_method="eom", prediction_data=True),
        nr_topics=config.get("nr_topics"),
    )
    topics, _ = model.fit_transform(docs, embeddings)
    runs.append({**config, "labels": [int(t) for t in topics],
                 "seconds": time.perf_counter() - started})
json.dump(runs, open(out, "w"))
"""


def ag_news(data: Path) -> tuple[list[str], list[str]]:
    folder = data / "ag_news_test"
    names = (folder / "classes.txt").read_text(encoding="utf-8").split()
    texts, gold = [], []
    with (folder / "test.csv").open(encoding="utf-8", newline="") as f:
        for index, title, description in csv.reader(f):
            texts.append(f"{title}. {description}".replace("\\n", " ").replace("\\", " "))
            gold.append(names[int(index) - 1])
    return texts, gold


def embedded(texts: list[str]) -> tuple[np.ndarray, Path, float]:
    """(vectors, their .npy file, seconds spent embedding now: 0 when cached)."""
    embedder = load_embedder(config.load({}).embedding)
    digest = hashlib.sha256("\x00".join([embedder.id, *texts]).encode()).hexdigest()[:20]
    path = CACHE / f"ag_news-{digest}.npy"
    if path.is_file():
        return np.load(path), path, 0.0
    started = time.perf_counter()
    out = np.zeros((len(texts), embedder.dim), np.float32)
    for start in range(0, len(texts), 256):
        out[start : start + 256] = embedder.embed(texts[start : start + 256], truncate=True)
        print(f"\r  embedding AG News: {min(start + 256, len(texts))}/{len(texts)}",
              end="", file=sys.stderr)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f" ({seconds:.0f} s)", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out, path, seconds


def row(name: str, labels: list[int], gold: list[str], seconds: float) -> str:
    m = agreement(labels, gold)
    topics = len(set(labels) - {-1})
    share = 100 * sum(t == -1 for t in labels) / len(labels)
    return (f"| {name} | {topics} | {share:.1f}% | {m['nmi']:.3f} | {m['ari']:.3f} | "
            f"{m['nmi_without_outliers']:.3f} | {m['ari_without_outliers']:.3f} | "
            f"{seconds:.1f} |")  # fmt: skip


def askdocs_rows(vectors: np.ndarray, texts: list[str], gold: list[str], seed: int) -> list[str]:
    items = [Item(str(i), t, "", v) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    runs = [
        ("askdocs topics", {}),
        ("askdocs topics --reassign", {"reassign": True}),
        (
            "askdocs topics --reassign --reassign-by probabilities",
            {"reassign": True, "reassign_by": "probabilities"},
        ),
        ("askdocs topics --topics 4", {"n_topics": 4}),
        ("askdocs topics --topics 4 --reassign", {"n_topics": 4, "reassign": True}),
    ]
    out = []
    for name, changes in runs:
        print(f"  {name}", file=sys.stderr)
        started = time.perf_counter()
        found = find_topics(items, TopicOptions(seed=seed, map=False, **changes))
        out.append(row(name, found.assignments.tolist(), gold, time.perf_counter() - started))
    return out


def kmeans_row(vectors: np.ndarray, gold: list[str], seed: int) -> str:
    from sklearn.cluster import KMeans

    started = time.perf_counter()
    labels = KMeans(n_clusters=4, n_init=10, random_state=seed).fit_predict(vectors)
    return row("k-means, k = 4", labels.tolist(), gold, time.perf_counter() - started)


def bertopic_rows(
    python: Path, vectors_file: Path, texts: list[str], gold: list[str], seed: int
) -> list[str]:
    if not python.is_file():
        return [f"| BERTopic: not installed at {python} (see this script's docstring) |"]
    ours = default_size(len(texts))
    configs = [{"min_cluster_size": 10}, {"min_cluster_size": ours},
               {"min_cluster_size": ours, "nr_topics": 4}]  # fmt: skip
    script, docs, out = CACHE / "run_bertopic.py", CACHE / "ag_news.json", CACHE / "bertopic.json"
    script.write_text(BERTOPIC, encoding="utf-8")
    docs.write_text(json.dumps(texts), encoding="utf-8")
    print("  BERTopic (its own virtualenv)", file=sys.stderr)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [str(python), str(script), str(vectors_file), str(docs), str(out), str(seed),
         json.dumps(configs)], env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        return [f"| BERTopic failed: {done.stderr.strip().splitlines()[-1:]} |"]
    version = subprocess.run([str(python), "-c", "import bertopic; print(bertopic.__version__)"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    rows = []
    for r in json.loads(out.read_text()):
        merged = f", nr_topics {r['nr_topics']}" if r.get("nr_topics") else ""
        name = f"BERTopic {version}, min_cluster_size {r['min_cluster_size']}{merged}"
        rows.append(row(name, r["labels"], gold, r["seconds"]))
    return rows


def scifact(store: Path, seed: int) -> list[str]:
    marks: list[tuple[str, float]] = []

    def mark(stage: str, fraction: float) -> None:
        marks.append((stage, time.perf_counter()))

    settings = config.load({"store": str(store)})
    started = time.perf_counter()
    with KnowledgeBase.open(settings, create=False) as kb:
        before = kb.annotation("topics"), kb.tags("topic")
        found = find_and_save(kb, TopicOptions(seed=seed), save=False, progress=mark)
        assert (kb.annotation("topics"), kb.tags("topic")) == before, "the store was changed"
    total = time.perf_counter() - started
    png = save_png(found, CACHE / "scifact-map.png", title="SciFact: 5,183 abstracts by topic")
    html = save_html(found, CACHE / "scifact-map.html", title="SciFact abstracts by topic")
    stages: dict[str, float] = {}
    for (stage, at), (_, end) in itertools.pairwise(marks):
        stages[stage] = stages.get(stage, 0.0) + end - at
    first = marks[0][1] if marks else started
    timing = ", ".join(f"{s} {t:.1f}" for s, t in stages.items() if t >= 0.05)
    largest = ", ".join(f"{t.id}: {' '.join(t.keywords[:4])} ({t.size})" for t in found.topics[:5])
    return [
        "| store | documents | topics | outliers | wall s | of which (s) |",
        "|---|---|---|---|---|---|",
        f"| {store.name} | {len(found.ids)} | {len(found.topics)} | "
        f"{found.outliers} ({100 * found.outlier_share:.1f}%) | {total:.1f} | "
        f"reading the store {first - started:.1f}, {timing} |",
        "",
        f"Largest topics: {largest}.",
        f"Maps: {png} and {html}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scifact-store", type=Path, default=SCIFACT)
    parser.add_argument("--bertopic-python", type=Path, default=VENV_PYTHON)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reduce(np.random.default_rng(0).normal(size=(200, 384)), dims=5, seed=0)
    jit = time.perf_counter() - started
    texts, gold = ag_news(args.data)
    vectors, vectors_file, embedding = embedded(texts)
    lines = [
        f"# Topics — {cpu_name()}, {os.cpu_count()} cores",
        "",
        f"First UMAP fit in a process (numba compiling umap-learn's kernels): {jit:.1f} s, "
        "before the timed runs.",
        "",
        f"## AG News: {len(texts):,} articles, 4 classes, the same MiniLM vectors for every "
        "method" + (f" (embedded in {embedding:.0f} s)" if embedding else " (cached)"),
        "",
        "| method | topics | outliers | NMI | ARI | NMI kept | ARI kept | wall s |",
        "|---|---|---|---|---|---|---|---|",
        *askdocs_rows(vectors, texts, gold, args.seed),
        kmeans_row(vectors, gold, args.seed),
        *bertopic_rows(args.bertopic_python, vectors_file, texts, gold, args.seed),
        "",
        "## SciFact: topics of the stored abstracts (stored vectors, the 2-D map included)",
        "",
        *scifact(args.scifact_store, args.seed),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
