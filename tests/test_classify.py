"""askdocs.classify with the real MiniLM embedder, real scikit-learn and the small packaged LLM.

The data is tests/data/classify_themes.csv: 36 short sentences on sport, cooking and the
weather. The metrics are checked against scikit-learn's, the calibration against known
answers, and the language model only for staying within the labels (a 135M model's
accuracy is not the point).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from askdocs.classify import (
    Supervised,
    calibration_error,
    classify,
    features_of,
    fit_temperature,
    llm_classify,
    pick_examples,
    report,
    train,
    vectors_of,
    zero_shot,
)
from askdocs.classify.calibration import softmax
from askdocs.classify.inputs import MAX_ROW_CHARS, parse_labels, read_examples, read_rows
from askdocs.classify.llm import grammar
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError, MissingDependency
from askdocs.generation import Generator
from askdocs.types import Item
from tests.conftest import free_port, llama_worker, stop_process, wait_until_up

THEMES = Path(__file__).parent / "data" / "classify_themes.csv"
LABELS = ["sport", "cooking", "weather"]
FIXTURE_MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def themes() -> list[tuple[str, str]]:
    return read_examples(THEMES, label_column="label")


@pytest.fixture(scope="module")
def theme_vectors(themes: list[tuple[str, str]], embedder: MiniLMEmbedder) -> np.ndarray:
    return embedder.embed([text for text, _ in themes])


# -- metrics and calibration -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    gold = [str(x) for x in rng.choice(names[:3], 60)]  # "d" is only ever predicted
    predicted = [g if rng.random() < 0.6 else str(rng.choice(names)) for g in gold]
    found = report(gold, predicted, names)
    assert found.accuracy == pytest.approx(accuracy_score(gold, predicted), abs=1e-4)
    assert found.macro_f1 == pytest.approx(f1_score(gold, predicted, average="macro"), abs=1e-4)
    per_class = {"zero_division": 0, "average": None, "labels": names}
    for ours, theirs in [
        ([c.precision for c in found.classes], precision_score(gold, predicted, **per_class)),
        ([c.recall for c in found.classes], recall_score(gold, predicted, **per_class)),
        ([c.f1 for c in found.classes], f1_score(gold, predicted, **per_class)),
    ]:
        assert ours == pytest.approx(list(theirs), abs=1e-4)
    assert [c.support for c in found.classes] == [gold.count(n) for n in names]
    assert found.confusion == confusion_matrix(gold, predicted, labels=names).tolist()


def test_report_counts_none_as_wrong_in_its_own_column() -> None:
    found = report(["a", "b", "b"], ["a", None, "b"], ["a", "b"])
    assert found.accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert found.none == 1
    assert found.confusion == [[1, 0, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="not in the label set"):
        report(["a"], ["z"], ["a", "b"])


def test_calibration_error_by_hand() -> None:
    # bin (0.8, 0.9]: 2 texts, 1 right, mean score 0.9 -> 0.4; bin (0.5, 0.6]: 2 of 2 at 0.6
    assert calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True]) == 0.4
    assert calibration_error([1.0, 1.0, 0.5, 0.5], [True, True, True, False]) == 0.0
    assert calibration_error([], []) == 0.0


@pytest.mark.parametrize("true_temperature", [0.05, 1.0])
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at(
    true_temperature: float,
) -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(0, 1, (4000, 3)) * true_temperature  # logits at temperature 1
    p = softmax(scores, true_temperature)
    gold = [int(rng.choice(3, p=row)) for row in p]
    found = fit_temperature(scores, gold)
    assert found == pytest.approx(true_temperature, rel=0.15)
    calibrated = softmax(scores, found)
    right = calibrated.argmax(axis=1) == np.array(gold)
    assert calibration_error(calibrated.max(axis=1).tolist(), right.tolist()) < 0.03


# -- zero-shot -------------------------------------------------------------------------------


def test_zero_shot_finds_themes_with_calibrated_scores(
    themes: list[tuple[str, str]], theme_vectors: np.ndarray, embedder: MiniLMEmbedder
) -> None:
    found = zero_shot(theme_vectors, LABELS, embedder)
    assert report([g for _, g in themes], [p.label for p in found], LABELS).accuracy >= 0.9
    for p in found:
        assert p.label is not None and p.score == max(p.scores.values())
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-3)
    cut = float(np.median([p.score for p in found]))
    strict = zero_shot(theme_vectors, LABELS, embedder, min_score=cut)
    for loose, held in zip(found, strict, strict=True):  # under the cut: "none of these"
        assert held.label == (loose.label if loose.score >= cut else None)
    assert any(p.label is None for p in strict)
    described = zero_shot(
        theme_vectors,
        LABELS,
        embedder,
        ids=[str(i) for i in range(36)],
        descriptions=["a sports match", "a recipe", "a weather forecast"],
    )
    assert {p.label for p in described} == set(LABELS)


def test_classify_uses_stored_vectors_without_embedding(
    themes: list[tuple[str, str]], theme_vectors: np.ndarray, embedder: MiniLMEmbedder
) -> None:
    items = [Item(f"doc{i}", "(never embedded)", vector=theme_vectors[i]) for i in (0, 12, 24)]
    assert np.array_equal(vectors_of(items, embedder), theme_vectors[[0, 12, 24]])
    found = classify(items, method="zero-shot", labels=LABELS, embedder=embedder)
    assert [(p.id, p.label) for p in found] == [
        ("doc0", "sport"),
        ("doc12", "cooking"),
        ("doc24", "weather"),
    ]
    plain = classify([themes[0][0]], method="zero-shot", labels=LABELS, embedder=embedder)
    assert plain[0].id == "0" and plain[0].label == "sport"


# -- supervised ------------------------------------------------------------------------------


def test_supervised_cross_validates_calibrates_saves_and_loads(
    themes: list[tuple[str, str]],
    theme_vectors: np.ndarray,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> None:
    model = Supervised.fit(theme_vectors, [g for _, g in themes], embedder_id=embedder.id)
    assert model.classes == ("cooking", "sport", "weather")
    assert model.cross_validation is not None  # 12 per class: few, so cross-validated
    assert model.cross_validation.accuracy >= 0.9
    assert sum(c.support for c in model.cross_validation.classes) == 36
    assert model.temperature < 1.0  # a few clear examples: sharpened, not left at 1
    new = ["The sprinter broke the world record", "Slice the potatoes thinly and fry them"]
    first = classify(new, method="supervised", model=model, embedder=embedder)
    assert [p.label for p in first] == ["sport", "cooking"]
    model.save(tmp_path / "clf.json")
    loaded = Supervised.load(tmp_path / "clf.json")
    assert classify(new, method="supervised", model=loaded, embedder=embedder) == first
    saved = json.loads((tmp_path / "clf.json").read_text())
    assert saved["format"] == "askdocs-classifier" and saved["version"] == 3
    assert saved["embedder"] == embedder.id and saved["features"] == "sentence"
    with pytest.raises(ConfigError, match="trained on vectors of"):
        loaded.predict(theme_vectors[:1], embedder_id="another-model")
    with pytest.raises(ConfigError, match="384 dims"):
        loaded.predict(np.zeros((1, 10)), embedder_id=embedder.id)


def test_the_default_classifier_reads_layer_vectors_and_keeps_reading_them(
    themes: list[tuple[str, str]], embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    texts = [text for text, _ in themes]
    layers = embedder.layer_vectors(texts[:3])
    assert layers.shape == (3, 7 * 384)
    assert np.linalg.norm(layers.reshape(3, 7, 384), axis=2) == pytest.approx(1.0, abs=1e-5)
    assert layers[:, -384:] == pytest.approx(embedder.embed(texts[:3]), abs=1e-6)  # the last
    assert not np.allclose(layers[:, :384], layers[:, -384:], atol=0.1)  # the first differs
    ticks: list[int] = []
    model = train(themes, embedder, progress=ticks.append)
    assert model.features == "layers" and model.coef.shape == (3, 7 * 384)
    assert sum(ticks) == len(themes)
    assert model.cross_validation is not None and model.cross_validation.accuracy >= 0.9
    new = ["The sprinter broke the world record", "Slice the potatoes thinly and fry them"]
    first = classify(new, method="supervised", model=model, embedder=embedder)
    assert [p.label for p in first] == ["sport", "cooking"]
    model.save(tmp_path / "layers.json")
    loaded = Supervised.load(tmp_path / "layers.json")
    assert loaded.features == "layers"
    assert classify(new, method="supervised", model=loaded, embedder=embedder) == first
    with pytest.raises(ConfigError, match="2688 dims"):  # sentence vectors for a layer model
        loaded.predict(embedder.embed(new), embedder_id=embedder.id)
    sentence_only = SentenceOnly(embedder)
    with pytest.raises(ConfigError, match="layer vectors, which the embedder"):
        features_of([Item("a", new[0])], sentence_only, "layers")  # type: ignore[arg-type]
    assert train(themes, sentence_only).features == "sentence"  # type: ignore[arg-type]
    assert train(themes[:24], embedder, features="sentence").coef.shape == (1, 384)


class SentenceOnly:
    """A fake: the real MiniLM seen through the sentence vectors alone, as a remote embedder
    gives them (a real remote one needs a server)."""

    def __init__(self, embedder: MiniLMEmbedder) -> None:
        self.id, self.dim, self.embed = embedder.id, embedder.dim, embedder.embed


def test_a_version_1_classifier_file_reads_sentence_vectors(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    path = tmp_path / "v1.json"
    saved = {"format": "askdocs-classifier", "version": 1, "embedder": embedder.id,
             "classes": ["a", "b"], "coef": [[0.0] * 384], "intercept": [0.5]}  # fmt: skip
    path.write_text(json.dumps(saved))
    model = Supervised.load(path)
    assert model.features == "sentence" and model.coef.shape == (1, 384)
    found = classify(["anything"], method="supervised", model=model, embedder=embedder)
    assert found[0].label == "b"  # intercept 0.5 for the second class, no weights


def test_weights_are_scikit_learns_and_many_examples_skip_cross_validation(
    themes: list[tuple[str, str]], theme_vectors: np.ndarray
) -> None:
    from sklearn.linear_model import LogisticRegression

    two = [y for _, y in themes[:24]]  # sport and cooking
    model = Supervised.fit(theme_vectors[:24], two, embedder_id="e")
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(theme_vectors[:24], two)
    assert model.classes == tuple(reference.classes_)
    assert model.logits(theme_vectors)[:, 1] == pytest.approx(
        reference.decision_function(theme_vectors), abs=1e-6
    )
    assert model.probabilities(theme_vectors) == pytest.approx(
        softmax(model.logits(theme_vectors), model.temperature)
    )
    many = np.repeat(theme_vectors, 140, axis=0)  # 5,040 examples
    fitted = Supervised.fit(many, [y for _, y in themes for _ in range(140)], embedder_id="e")
    assert fitted.cross_validation is None and fitted.temperature == 1.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json at all", "cannot load a classifier"),
        ('{"format": "something-else"}', "not an askdocs classifier"),
        ('{"format": "askdocs-classifier", "version": 99}', "format version 99"),
        (
            '{"format": "askdocs-classifier", "version": 2, "embedder": "e", "features": "x", '
            '"classes": ["a", "b"], "coef": [[1, 2]], "intercept": [0]}',
            "unknown features 'x'",
        ),
        (
            '{"format": "askdocs-classifier", "version": 1, "embedder": "e", '
            '"classes": ["a", "b"], "coef": [[1, 2], [3, 4]], "intercept": [0]}',
            "do not match",
        ),
        (
            '{"format": "askdocs-classifier", "version": 1, "embedder": "e", '
            '"classes": ["a", "b"], "coef": [[NaN, 2]], "intercept": [0]}',
            "finite",
        ),
        (
            '{"format": "askdocs-classifier", "version": 1, "embedder": "e", '
            '"classes": ["a", "a"], "coef": [[1, 2]], "intercept": [0]}',
            "two or more different",
        ),
    ],
)
def test_a_bad_classifier_file_is_refused_by_name(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as caught:
        Supervised.load(path)
    assert str(path) in str(caught.value)
    with pytest.raises(ConfigError, match="No such file"):
        Supervised.load(tmp_path / "missing.json")


def test_one_class_of_examples_is_an_error(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(ConfigError, match="one class only"):
        classify(["x"], method="supervised", examples=[("a", "sport")] * 3, embedder=embedder)


def test_without_scikit_learn_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, theme_vectors: np.ndarray
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import fails
    with pytest.raises(MissingDependency, match=r"pip install 'askdocs\[classify\]'"):
        Supervised.fit(theme_vectors[:4], ["a", "a", "b", "b"], embedder_id="e")


# -- the language model ----------------------------------------------------------------------


def test_grammar_quotes_labels_and_examples_take_turns() -> None:
    assert grammar(["yes", 'a "b"\\c']) == 'root ::= "yes" | "a \\"b\\"\\\\c"'
    pairs = [("s1", "s"), ("s2", "s"), ("s3", "s"), ("c1", "c"), ("w1", "w"), ("c2", "c")]
    assert pick_examples(pairs, 2) == [
        ("s1", "s"),
        ("c1", "c"),
        ("w1", "w"),
        ("s2", "s"),
        ("c2", "c"),
    ]
    assert pick_examples(pairs, 0) == []


@pytest.fixture(scope="module")
def smol() -> Iterator[Generator]:
    """The small packaged model in a worker process: a native crash fails one test only."""
    generator = llama_worker(FIXTURE_MODEL, n_ctx=1024, n_batch=256, n_threads=1)
    yield generator
    generator.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generator]:
    """The same model behind llama-cpp-python's OpenAI-compatible server."""
    import subprocess

    pytest.importorskip("sse_starlette", reason="llama-cpp-python[server] is not installed")
    from askdocs.generation.packaged import resolve_model
    from askdocs.generation.remote import OpenAIGenerator

    port = free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(resolve_model(FIXTURE_MODEL)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "1",
        "--n_ctx",
        "1024",
        "--n_batch",
        "256",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models", process, log=log)
        generator = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", context_length=1024)
        yield generator
        generator.close()
    finally:
        stop_process(process, timeout=10)


@pytest.mark.parametrize("backend", ["smol", "served"])
def test_llm_answers_only_with_labels(
    backend: str, request: pytest.FixtureRequest, themes: list[tuple[str, str]]
) -> None:
    generator: Generator = request.getfixturevalue(backend)
    texts = [text for text, _ in themes[1::6]]
    labels = ["sport", "cooking", "the weather"]  # a label of two words, too
    examples = pick_examples([(t, "the weather" if g == "weather" else g) for t, g in themes], 1)
    for shown in ((), examples):
        found = llm_classify(generator, texts, labels, examples=shown)
        assert [p.id for p in found] == [str(i) for i in range(len(texts))]
        assert all(p.label in labels and p.score == 1.0 for p in found), found


def test_llm_refuses_examples_outside_the_labels(smol: Generator) -> None:
    with pytest.raises(ValueError, match="not among the labels"):
        llm_classify(smol, ["x"], ["a", "b"], examples=[("y", "c")])
    with pytest.raises(ConfigError, match="the examples' labels c are not labels"):
        classify(["x"], method="llm", labels=["a", "b"], examples=[("y", "c")], generator=smol)


# -- inputs ----------------------------------------------------------------------------------


def test_inputs_name_the_file_and_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "a.csv"
    good.write_text("body,label\nhello,x\n")
    assert read_rows(good, text_columns=("body",), gold_column="label")[0].gold == "x"
    problems = {
        "text,label\n": r"h\.csv: no rows",
        "body,label\nhello,x\n": r"c\.csv: no column 'text'; the columns are body, label",
        "text\n" + "a" * (MAX_ROW_CHARS + 1) + "\n": r"d\.csv: row 1 holds over 100,000",
        "text\n" + "a" * 1_000_001 + "\n": r"e\.csv: line 2 is over 1,000,000 bytes",
        'text\n"never closed\n' + "x\n" * 140_000: r"f\.csv: line \d+: not CSV: field larger",
    }
    for n, (content, problem) in enumerate(problems.items()):
        path = tmp_path / f"{'hcdef'[n]}.csv"
        path.write_text(content)
        with pytest.raises(ConfigError, match=problem):
            read_rows(path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\nfine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.csv: line 3 is not UTF-8 text"):
        read_rows(latin)
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"text": "a", "y": "b"}\n[1]\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl: line 2 is not a JSON object"):
        read_rows(lines)
    with pytest.raises(ConfigError, match=r"give a \.csv"):
        read_rows(tmp_path / "notes.xlsx")
    with pytest.raises(ConfigError, match=r"nowhere\.csv: cannot read"):
        read_rows(tmp_path / "nowhere.csv")


def test_examples_need_two_classes(tmp_path: Path) -> None:
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "a", "y": "pos"}\n{"text": "b", "y": "pos"}\n{"text": "c"}\n')
    with pytest.raises(ConfigError, match=r"one\.jsonl: the column 'y' holds one class only"):
        read_examples(one, label_column="y")
    with pytest.raises(ConfigError, match=r"one\.jsonl: no column 'label'"):
        read_examples(one, label_column="label")
    assert read_examples(THEMES, text_columns=("sentence", "text"), label_column="label")


def test_stdin_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"first text\n\nsecond text\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert [(r.id, r.text) for r in read_rows("-")] == [("1", "first text"), ("3", "second text")]


def test_labels_from_a_string_or_a_file(tmp_path: Path) -> None:
    assert parse_labels('sport, "food, drink"') == (
        ["sport", "food, drink"],
        ["sport", "food, drink"],
    )
    path = tmp_path / "labels.txt"
    path.write_text("# labels\npos: a positive review\nneg\n")
    assert parse_labels(None, path) == (["pos", "neg"], ["a positive review", "neg"])
    with pytest.raises(ConfigError, match="'a' twice"):
        parse_labels("a,b,a")
