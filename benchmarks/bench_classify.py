"""Classification on rotten tomatoes (sentiment) and AG News (topic): askdocs.classify's three
methods, their quality, calibration and speed.

    python benchmarks/bench_classify.py --prompt-threads 1   # the table (~75 min on 2 cores)
    python benchmarks/bench_classify.py --llm-texts 0 --fine-tune-seeds -1  # ~1 min
    python benchmarks/bench_classify.py --llm-texts 0 --self-train          # ~90 min

Data (`--data`, default ../shared/data beside the repository):
- rotten tomatoes (`rotten_tomatoes_mr/rt-polarity.pos|.neg`, 10,662 snippets): shuffled with
  numpy's default_rng(13) and cut into train 8,530 / validation 1,066 / test 1,066, the sizes
  of the usual split.
- AG News (`ag_news_test/test.csv`, 7,600 articles, text = title + ". " + description): shuffled
  with default_rng(13) into train 4,600 / validation 1,000 / test 2,000.
Everything chosen (the zero-shot temperature and label wording, the regularisation C) is chosen
on the validation part, or by 5-fold cross-validation on the training part (the classifier's
layer features: all seven hidden states' means, against the last two, three or four, max
pooling and token-only means); the test part is only scored.

Rows: zero-shot with the label names, with the zero-shot anchor's labels on rotten tomatoes
("A positive review" / "A negative review": its recipe on our embedder, the fair comparison
for its F1 0.78 with all-mpnet-base-v2), and with descriptions (the best of a few wordings on
validation); logistic regression on the whole training part and on 8-64 examples per class (5
draws each, mean ± sd), each on layer vectors (the default) and on sentence vectors; the LLM
(`generation.model`, the default Qwen2.5-Coder-1.5B, in its worker process, greedy, held to the
labels by a grammar) on the first `--llm-texts` test texts, without examples and with `--shots`
per class from the training part; logistic regression over MiniLM fine-tuned on the
examples (all of them, and 8-64 per class, `--fine-tune-seeds` draws; -1 leaves them out, they
take ~40 min); with `--self-train`, zero-shot with self-training (the training texts as the
unlabelled pool, ~7 min a data set). ECE: expected calibration error of the scores (10 equal-width
bins) on the test part. ms/1k: milliseconds per 1,000 texts, embedding included (measured once
on 500 test texts) for the embedding methods. Embeddings are cached under
~/.cache/askdocs-bench/classify/, keyed by the embedder and a hash of the texts (embedding all
18,262 texts the first time takes about 2 minutes for each kind of features).
`--prompt-threads 1`: on a machine whose other core is busy, llama.cpp's prompt evaluation
on both cores stalls now and then (6-12 s for a 40-token prompt instead of 0.5 s); one
thread is slower on an idle machine (about 1 s a text against 0.6) but steady.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cpu import cpu_name

from askdocs import config
from askdocs.classify import (
    EPOCHS,
    Prediction,
    Supervised,
    calibration_error,
    classify,
    features_of,
    fit_temperature,
    llm_classify,
    pick_examples,
    report,
    steps_for,
    train,
    zero_shot,
)
from askdocs.classify.finetune import objective_for
from askdocs.classify.zeroshot import TEMPERATURE, similarities
from askdocs.embeddings import Embedder, load_embedder
from askdocs.generation import Generator
from askdocs.types import Item

DATA = Path(__file__).resolve().parents[1] / "../shared/data"
CACHE = Path.home() / ".cache/askdocs-bench/classify"
SEED = 13
NAMES = {"layers": "layer vectors", "sentence": "sentence vectors"}  # features.py's kinds
FINE_TUNE_SIZES = ("all", "8", "16", "32", "64")


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Dataset:
    name: str
    labels: list[str]
    train: Split
    validation: Split
    test: Split
    # label wordings tried on validation; the first is the label names themselves
    wordings: list[list[str]]
    # the zero-shot anchor's own labels, scored as they are (no choice on validation)
    anchor_wording: list[str] | None = None


def _split(name: str, rows: list[tuple[str, str]], sizes: tuple[int, int, int]) -> list[Split]:
    order = np.random.default_rng(SEED).permutation(len(rows))
    assert sum(sizes) == len(rows), (name, len(rows))
    parts, start = [], 0
    for size in sizes:
        chosen = [rows[i] for i in order[start : start + size]]
        parts.append(Split([t for t, _ in chosen], [g for _, g in chosen]))
        start += size
    return parts


def rotten_tomatoes(data: Path) -> Dataset:
    rows = []
    for suffix, label in (("pos", "positive"), ("neg", "negative")):
        path = data / "rotten_tomatoes_mr" / f"rt-polarity.{suffix}"
        rows += [(line.strip(), label) for line in path.read_text(encoding="utf-8").splitlines()]
    train, validation, test = _split("rotten tomatoes", rows, (8530, 1066, 1066))
    wordings = [
        ["positive", "negative"],
        ["a positive movie review", "a negative movie review"],
        ["a good movie", "a bad movie"],
        ["a great film, I loved it", "a terrible film, I hated it"],
        ["the critic liked the film", "the critic disliked the film"],
    ]
    # Alammar & Grootendorst, "Hands-On Large Language Models" (2024), ch. 4: F1 0.78 with
    # all-mpnet-base-v2, a larger embedder than ours
    anchor = ["A positive review", "A negative review"]
    labels = ["positive", "negative"]
    return Dataset("rotten tomatoes", labels, train, validation, test, wordings, anchor)


def ag_news(data: Path) -> Dataset:
    folder = data / "ag_news_test"
    names = (folder / "classes.txt").read_text(encoding="utf-8").split()
    rows = []
    with (folder / "test.csv").open(encoding="utf-8", newline="") as f:
        for index, title, description in csv.reader(f):
            text = f"{title}. {description}".replace("\\n", " ").replace("\\", " ")
            rows.append((text, names[int(index) - 1]))
    train, validation, test = _split("AG News", rows, (4600, 1000, 2000))
    wordings = [
        names,
        ["World news", "Sports news", "Business news", "Science and technology news"],
        [
            "news about world politics",
            "news about sports",
            "news about business and the economy",
            "news about science and technology",
        ],
        [
            "international news about politics, governments and conflicts",
            "sports news about games, teams and players",
            "business news about companies, markets and the economy",
            "technology news about computers, the internet, science and space",
        ],
    ]
    return Dataset("AG News", names, train, validation, test, wordings)


def embedded(embedder: Embedder, texts: Sequence[str], what: str, kind: str) -> np.ndarray:
    """The texts' `kind` features (features.py), from the cache when these texts were
    embedded by this embedder."""
    key = [embedder.id, *texts] if kind == "sentence" else [embedder.id, kind, *texts]
    digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:20]
    path = CACHE / f"{what}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    started = time.perf_counter()
    parts = []
    for start in range(0, len(texts), 256):
        batch = [Item(str(i), t) for i, t in enumerate(texts[start : start + 256])]
        parts.append(features_of(batch, embedder, kind))
        print(
            f"\r  embedding {what}: {min(start + 256, len(texts))}/{len(texts)}",
            end="",
            file=sys.stderr,
        )
    print(f" ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    out = np.concatenate(parts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


@dataclass(frozen=True)
class Vectors:
    """One kind of features (features.py) of each part."""

    kind: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Row:
    data: str
    method: str
    accuracy: str
    macro_f1: str
    ece: str = "—"
    ms: str = "—"  # per 1,000 texts
    note: str = ""


def scored(
    gold: Sequence[str], found: Sequence[Prediction], labels: Sequence[str]
) -> tuple[float, float, float]:
    """(accuracy, macro-F1, expected calibration error) of predictions against gold."""
    result = report(gold, [p.label for p in found], labels)
    right = [p.label == g for p, g in zip(found, gold, strict=True)]
    return result.accuracy, result.macro_f1, calibration_error([p.score for p in found], right)


def row(ds: Dataset, method: str, scores: tuple[float, ...], ms: float | None, note: str) -> Row:
    ece = f"{scores[2]:.3f}" if len(scores) > 2 else "—"
    cost = f"{ms:,.0f}" if ms is not None else "—"
    return Row(ds.name, method, f"{scores[0]:.3f}", f"{scores[1]:.3f}", ece, cost, note)


def timed(work: Callable[[], list[Prediction]], texts: int) -> tuple[list[Prediction], float]:
    """The predictions and the milliseconds per 1,000 texts they took."""
    started = time.perf_counter()
    found = work()
    return found, (time.perf_counter() - started) * 1e6 / texts


def embed_cost(embedder: Embedder, texts: Sequence[str], kind: str) -> float:
    """Milliseconds to embed 1,000 of `texts` (the first 500, never from the cache), the
    model already loaded."""
    sample = [Item(str(i), t) for i, t in enumerate(texts[:500])]
    features_of(sample[:1], embedder, kind)
    started = time.perf_counter()
    features_of(sample, embedder, kind)
    return (time.perf_counter() - started) * 1e6 / len(sample)


def best_wording(ds: Dataset, v: Vectors, embedder: Embedder) -> list[str]:
    """The label descriptions (not the bare names) with the best zero-shot macro-F1 on
    validation."""

    def validation_f1(wording: list[str]) -> float:
        nearest = similarities(v.validation, wording, embedder).argmax(axis=1)
        return report(ds.validation.labels, [ds.labels[j] for j in nearest], ds.labels).macro_f1

    return max(ds.wordings[1:], key=validation_f1)


def zero_shot_rows(ds: Dataset, v: Vectors, embedder: Embedder, embed_ms: float) -> list[Row]:
    """Label names, the anchor's labels (if the data set has an anchor), then the description
    wording best on validation; each at the default temperature, with the ECE also at the
    temperature fitted on validation."""
    best = best_wording(ds, v, embedder)
    gold = [ds.labels.index(g) for g in ds.validation.labels]
    rows = []
    tried = [("label names", ds.wordings[0]), ("descriptions", best)]
    if ds.anchor_wording:
        tried.insert(1, ("the anchor's labels", ds.anchor_wording))
    for what, wording in tried:
        fitted = fit_temperature(similarities(v.validation, wording, embedder), gold)
        found, ms = timed(
            lambda w=wording: zero_shot(v.test, ds.labels, embedder, descriptions=w), len(v.test)
        )
        refit = zero_shot(v.test, ds.labels, embedder, descriptions=wording, temperature=fitted)
        note = (
            f"T={TEMPERATURE}; with T={fitted} fitted on validation, ECE "
            f"{scored(ds.test.labels, refit, ds.labels)[2]:.3f}"
        )
        if what != "label names":
            note = f"{' / '.join(wording)}; {note}"
        scores = scored(ds.test.labels, found, ds.labels)
        rows.append(row(ds, f"zero-shot, {what}", scores, embed_ms + ms, note))
    return rows


def self_trained_rows(ds: Dataset, v: Vectors, embedder: Embedder) -> list[Row]:
    """Zero-shot with self-training (selftrain.py's settings): the label descriptions best on
    validation, the training part's texts as the unlabelled pool (their labels unused)."""
    from askdocs.classify.selftrain import ROUNDS, SHARE, self_train

    best = best_wording(ds, v, embedder)
    started = time.perf_counter()
    model = self_train(
        ds.train.texts, ds.labels, embedder, descriptions=best,
        progress=lambda what, _: print(f"  {ds.name}, self-training: {what}", file=sys.stderr),
    )  # fmt: skip
    fit_s = time.perf_counter() - started
    found = classify(ds.test.texts, method="supervised", model=model, embedder=embedder)
    note = (
        f"{ROUNDS} rounds on the surest {SHARE:.0%} of {len(ds.train.texts):,} unlabelled "
        f"texts, {fit_s:.0f} s"
    )
    return [row(ds, "zero-shot, self-trained", scored(ds.test.labels, found, ds.labels),
                None, note)]  # fmt: skip


def supervised_rows(
    ds: Dataset, vs: Sequence[Vectors], embedder_id: str, embed_ms: dict[str, float]
) -> list[Row]:
    """Logistic regression on the whole training part, on each kind of features; then, for
    reference, with words."""
    rows = []
    for v in vs:
        started = time.perf_counter()
        model = Supervised.fit(v.train, ds.train.labels, embedder_id=embedder_id, features=v.kind)
        fit_s = time.perf_counter() - started
        found, ms = timed(lambda m=model, v=v: m.predict(v.test, embedder_id=embedder_id),
                          len(v.test))  # fmt: skip
        note = f"{len(ds.train.texts):,} examples, fitted in {fit_s:.1f} s"
        scores = scored(ds.test.labels, found, ds.labels)
        method = f"supervised, {NAMES[v.kind]}" + (" (default)" if v.kind == "layers" else "")
        rows.append(row(ds, method, scores, embed_ms[v.kind] + ms, note))
    sentence = next(v for v in vs if v.kind == "sentence")
    note = "TF-IDF 1-2-grams beside the sentence vector, scikit-learn: not in askdocs"
    words = words_and_embeddings(ds, sentence)
    rows.append(row(ds, "(reference) words + embeddings", words, None, note))
    return rows


def words_and_embeddings(ds: Dataset, v: Vectors) -> tuple[float, float]:
    """Logistic regression on TF-IDF word 1-2-grams beside the embedding (weighted 0.5; C=3
    and the weight chosen on validation): what the words hold that MiniLM's vector does not."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    train = hstack([words.fit_transform(ds.train.texts), csr_matrix(v.train * 0.5)]).tocsr()
    test = hstack([words.transform(ds.test.texts), csr_matrix(v.test * 0.5)]).tocsr()
    model = LogisticRegression(C=3.0, max_iter=3000).fit(train, ds.train.labels)
    result = report(ds.test.labels, list(model.predict(test)), ds.labels)
    return result.accuracy, result.macro_f1


def few_shot_rows(ds: Dataset, vs: Sequence[Vectors], embedder_id: str, seeds: int) -> list[Row]:
    """`n` examples per class drawn from the training part, `seeds` draws: mean ± sd, for
    each kind of features (the same draws)."""
    gold = np.array(ds.train.labels)
    rows = []
    for v in vs:
        for n in (8, 16, 32, 64):
            runs, cv = [], []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                chosen = np.concatenate(
                    [rng.choice(np.flatnonzero(gold == c), n, replace=False) for c in ds.labels]
                )
                model = Supervised.fit(
                    v.train[chosen], list(gold[chosen]), embedder_id=embedder_id, features=v.kind
                )
                found = model.predict(v.test, embedder_id=embedder_id)
                runs.append(scored(ds.test.labels, found, ds.labels))
                cv.append(model.cross_validation.macro_f1 if model.cross_validation else np.nan)
            a, f, e = (np.array([r[i] for r in runs]) for i in range(3))
            rows.append(
                Row(
                    ds.name,
                    f"supervised, {NAMES[v.kind]}, {n} per class",
                    f"{a.mean():.3f} ± {a.std():.3f}",
                    f"{f.mean():.3f} ± {f.std():.3f}",
                    f"{e.mean():.3f}",
                    note=f"{seeds} draws; cross-validated macro-F1 {np.nanmean(cv):.3f}",
                )
            )
    return rows


def fine_tuned_rows(
    ds: Dataset, embedder: Embedder, seeds: int, sizes: Sequence[str] = FINE_TUNE_SIZES
) -> list[Row]:
    """Logistic regression over MiniLM tuned on the examples first (`train(...,
    fine_tune_epochs=EPOCHS)`, finetune.py's settings, none chosen on this data's test part):
    `sizes`, "all" the training part and 8-64 examples per class (`seeds` draws)."""
    pairs = list(zip(ds.train.texts, ds.train.labels, strict=True))
    rows = []

    def scored_model(examples: list[tuple[str, str]], seed: int) -> tuple[Any, float, tuple]:
        started = time.perf_counter()
        model = train(examples, embedder, fine_tune_epochs=EPOCHS, seed=seed)
        fit_s = time.perf_counter() - started
        found = classify(ds.test.texts, method="supervised", model=model, embedder=embedder)
        return model, fit_s, scored(ds.test.labels, found, ds.labels)

    if "all" in sizes:
        model, fit_s, scores = scored_model(pairs, 0)
        validation = classify(
            ds.validation.texts, method="supervised", model=model, embedder=embedder
        )
        on_validation = report(ds.validation.labels, [p.label for p in validation], ds.labels)
        ms = embed_cost(model.encoder.embedder(), ds.test.texts, "sentence")
        note = (
            f"{len(pairs):,} examples, {objective_for(len(pairs))}, {EPOCHS} epochs "
            f"({steps_for(len(pairs))} updates), tuned and fitted in {fit_s:.0f} s; "
            f"validation macro-F1 {on_validation.macro_f1:.3f}"
        )
        rows.append(row(ds, "supervised, fine-tuned MiniLM", scores, ms, note))
    gold = np.array(ds.train.labels)
    for n in [int(size) for size in sizes if size != "all"] if seeds else ():
        runs, fits = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = np.concatenate(
                [rng.choice(np.flatnonzero(gold == c), n, replace=False) for c in ds.labels]
            )
            _, fit_s, scores = scored_model([pairs[i] for i in chosen], seed)
            runs.append(scores)
            fits.append(fit_s)
        a, f, e = (np.array([r[i] for r in runs]) for i in range(3))
        rows.append(
            Row(
                ds.name,
                f"supervised, fine-tuned MiniLM, {n} per class",
                f"{a.mean():.3f} ± {a.std():.3f}",
                f"{f.mean():.3f} ± {f.std():.3f}",
                f"{e.mean():.3f}",
                note=f"{seeds} draws; {objective_for(n * len(ds.labels))}, "
                f"{steps_for(n * len(ds.labels))} updates, tuned and fitted in "
                f"{np.mean(fits):.0f} s",
            )
        )
    return rows


def llm_rows(ds: Dataset, v: Vectors, generator: Generator, texts: int, shots: int) -> list[Row]:
    """The language model on the first `texts` test texts, without and with `shots`
    examples per class; the note gives logistic regression's macro-F1 on the same texts."""
    gold = ds.test.labels[:texts]
    model = Supervised.fit(v.train, ds.train.labels, embedder_id="", features=v.kind)
    baseline = report(
        gold, [p.label for p in model.predict(v.test[:texts], embedder_id="")], ds.labels
    )
    pairs = list(zip(ds.train.texts, ds.train.labels, strict=True))
    rows = []
    for n in (0, shots):
        progress = Counter(len(gold), f"{ds.name}, llm, {n} per class")
        found, ms = timed(
            lambda n=n, progress=progress: llm_classify(
                generator,
                ds.test.texts[:texts],
                ds.labels,
                examples=pick_examples(pairs, n),
                progress=progress,
            ),
            len(gold),
        )
        result = report(gold, [p.label for p in found], ds.labels)
        note = f"{len(gold)} test texts (supervised on them: macro-F1 {baseline.macro_f1:.3f})"
        what = f"{n} examples per class" if n else "no examples"
        rows.append(row(ds, f"llm, {what}", (result.accuracy, result.macro_f1), ms, note))
    return rows


class Counter:
    """Progress on stderr: call it with the texts just done."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.done, self.started = total, what, 0, time.perf_counter()

    def __call__(self, n: int) -> None:
        self.done += n
        rate = (time.perf_counter() - self.started) / self.done
        print(
            f"\r  {self.what}: {self.done}/{self.total} ({rate:.2f} s/text)",
            end="\n" if self.done == self.total else "",
            file=sys.stderr,
        )


def table(rows: list[Row]) -> str:
    lines = [
        "| data | method | accuracy | macro-F1 | ECE | ms / 1k texts | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.data} | {r.method} | {r.accuracy} | {r.macro_f1} | {r.ece} | {r.ms} | {r.note} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sets", default="rt,ag", help="rt (rotten tomatoes), ag (AG News)")
    parser.add_argument("--seeds", type=int, default=5, help="draws per few-shot size")
    parser.add_argument(
        "--fine-tune-seeds", type=int, default=3,
        help="draws per few-shot size with fine-tuning; -1: no fine-tuning rows",
    )  # fmt: skip
    parser.add_argument(
        "--fine-tune-sizes", default=",".join(FINE_TUNE_SIZES),
        help="fine-tuned rows: 'all' the training part, and examples per class",
    )  # fmt: skip
    parser.add_argument(
        "--self-train", action="store_true", help="add zero-shot with self-training (~20 min)"
    )
    parser.add_argument("--llm-texts", type=int, default=200, help="test texts; 0: no LLM")
    parser.add_argument("--shots", type=int, default=4, help="LLM examples per class")
    parser.add_argument(
        "--prompt-threads", type=int, default=None, help="LLM n_threads_batch (default: config)"
    )
    args = parser.parse_args()
    settings = config.Settings()
    embedder = load_embedder(settings.embedding)
    generator = None
    if args.llm_texts:
        from askdocs.generation import open_generator

        threads = args.prompt_threads
        if threads is not None:
            settings = dataclasses.replace(
                settings,
                generation=dataclasses.replace(settings.generation, n_threads_batch=threads),
            )
        generator = open_generator(settings.generation)
    loaders = {"rt": rotten_tomatoes, "ag": ag_news}
    rows: list[Row] = []
    try:
        for key in args.sets.split(","):
            ds = loaders[key](args.data)
            slug = ds.name.replace(" ", "_")
            parts = ("train", "validation", "test")
            vs = [
                Vectors(kind, *(embedded(embedder, getattr(ds, p).texts, f"{slug}-{p}", kind)
                                for p in parts))
                for kind in ("layers", "sentence")
            ]  # fmt: skip
            embed_ms = {v.kind: embed_cost(embedder, ds.test.texts, v.kind) for v in vs}
            rows += zero_shot_rows(ds, vs[1], embedder, embed_ms["sentence"])
            if args.self_train:
                rows += self_trained_rows(ds, vs[1], embedder)
            rows += supervised_rows(ds, vs, embedder.id, embed_ms)
            rows += few_shot_rows(ds, vs, embedder.id, args.seeds)
            if args.fine_tune_seeds >= 0:
                sizes = args.fine_tune_sizes.split(",")
                rows += fine_tuned_rows(ds, embedder, args.fine_tune_seeds, sizes)
            if generator is not None:
                rows += llm_rows(ds, vs[0], generator, args.llm_texts, args.shots)
    finally:
        if generator is not None:
            generator.close()
    g = settings.generation
    llm = f"; LLM {g.model}, prompt threads {g.n_threads_batch or 'all'}" if generator else ""
    print(f"CPU: {cpu_name()}; embedder {embedder.id}{llm}")
    print(f"command: python benchmarks/bench_classify.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
