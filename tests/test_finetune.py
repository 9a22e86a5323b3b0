"""Fine-tuning MiniLM for a classifier: the real packaged weights, tuned by real PyTorch on a
few sentences, then run by ONNX Runtime like the packaged ones."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from askdocs.classify import Supervised, classify, fine_tune, steps_for, train
from askdocs.classify.finetune import (
    MIN_STEPS,
    OBJECTIVES,
    PAIR_BATCH,
    PAIRS_UP_TO,
    Encoder,
    _pair_batches,
    _torch,
    expected_shapes,
    objective_for,
)
from askdocs.cli import main
from askdocs.embeddings import MiniLMEmbedder
from askdocs.errors import ConfigError, MissingDependency
from askdocs.models import MINILM_WEIGHTS, verified
from askdocs.types import Item

# Sentiment across topics: what the packaged vectors group by is the topic, not the label.
TRAIN = [
    ("The pasta was delicious and the waiter was charming", "pleased"),
    ("What a wonderful match, the team played beautifully", "pleased"),
    ("The hotel room was spotless and the view was lovely", "pleased"),
    ("This phone is fast and the battery lasts for days", "pleased"),
    ("The concert was a joy from the first note to the last", "pleased"),
    ("My new bike rides smoothly and I love it", "pleased"),
    ("The soup was cold and the waiter was rude", "annoyed"),
    ("A dreadful match, the team played like strangers", "annoyed"),
    ("The hotel room was filthy and the noise kept us awake", "annoyed"),
    ("This phone is sluggish and the battery dies by noon", "annoyed"),
    ("The concert was a mess, the sound was awful", "annoyed"),
    ("My new bike squeaks and the chain keeps falling off", "annoyed"),
]
HELD_OUT = [
    ("The cake was heavenly and the staff were so kind", "pleased"),
    ("Great game, every player gave their best", "pleased"),
    ("The laptop is quick and a pleasure to use", "pleased"),
    ("The bread was stale and the service was slow", "annoyed"),
    ("Terrible game, the players looked bored", "annoyed"),
    ("The laptop crashes every hour and the screen flickers", "annoyed"),
]


def separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine within a label minus mean cosine across labels (pairs of distinct texts)."""
    sims = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    off = ~np.eye(len(labels), dtype=bool)
    return float(sims[same & off].mean() - sims[~same].mean())


@pytest.fixture(scope="module", params=OBJECTIVES)
def tuned(request: pytest.FixtureRequest) -> tuple[Encoder, list[float]]:
    """Tuned with each objective: SetFit's pairs (the default for few examples), classes."""
    texts, labels = zip(*TRAIN, strict=True)
    return fine_tune(list(texts), list(labels), epochs=1, objective=request.param, seed=0)


@pytest.fixture(scope="module")
def tuned_classifier(embedder: MiniLMEmbedder) -> Supervised:
    return train(TRAIN, embedder, fine_tune_epochs=1)


def test_tuning_learns_and_separates_held_out_texts_by_label(
    tuned: tuple[Encoder, list[float]], embedder: MiniLMEmbedder
) -> None:
    encoder, losses = tuned
    assert len(losses) == steps_for(len(TRAIN), 1, "pairs") == MIN_STEPS
    assert steps_for(len(TRAIN), 1, "classes") == MIN_STEPS
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    texts, labels = [t for t, _ in HELD_OUT], [y for _, y in HELD_OUT]
    before = separation(embedder.embed(texts), labels)
    after = separation(encoder.embedder().embed(texts), labels)
    assert after > before + 0.1, (before, after)


def test_few_examples_are_tuned_in_pairs_balanced_like_setfit() -> None:
    assert objective_for(PAIRS_UP_TO) == "pairs" and objective_for(PAIRS_UP_TO + 1) == "classes"
    gold = np.array([0] * 6 + [1] * 5 + [2])  # the last label has one example
    count = 2 * 10 * len(gold)  # two passes
    steps = steps_for(len(gold), 2, "pairs")
    assert steps == max(MIN_STEPS, -(-count // PAIR_BATCH))
    batches = _pair_batches(gold, count, steps, seed=3)
    assert len(batches) == steps and all(b.shape == (PAIR_BATCH, 2) for b in batches)
    pairs = np.concatenate(batches)
    first, second = gold[pairs[:, 0]], gold[pairs[:, 1]]
    assert abs((first == second).mean() - 0.5) < 0.02  # as many same-label pairs as others
    led = np.bincount(pairs[:, 0])  # every example leads about as often as the rest
    assert led.min() >= 0.8 * led.max()
    alone = pairs[pairs[:, 0] == 11]
    assert set(alone[first[pairs[:, 0] == 11] == second[pairs[:, 0] == 11], 1]) == {11}
    again = np.concatenate(_pair_batches(gold, count, steps, seed=3))
    assert np.array_equal(pairs, again)


def test_the_tuned_weights_run_on_onnx_runtime_as_in_pytorch(
    tuned: tuple[Encoder, list[float]],
) -> None:
    encoder, _ = tuned
    assert {k: v.shape for k, v in encoder.tensors.items()} == expected_shapes()
    from safetensors.numpy import load_file

    original = load_file(str(verified(MINILM_WEIGHTS)))
    rounded = {k: original[k].astype(np.float16).astype(np.float32) for k in encoder.tensors}
    changed = [k for k, v in encoder.tensors.items() if not np.array_equal(v, rounded[k])]
    assert len(changed) > len(encoder.tensors) // 2  # tuned, beyond float16's rounding
    torch, load = _torch()
    model = load()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in encoder.tensors.items()})
    model.eval()
    onnx = encoder.embedder()
    for text, _ in HELD_OUT[:3]:
        ids = torch.tensor([onnx.tokenizer.encode(text).ids])
        with torch.no_grad():
            state = model(input_ids=ids).last_hidden_state.mean(1)[0].numpy()
        assert onnx.embed([text])[0] == pytest.approx(state / np.linalg.norm(state), abs=1e-5)


def test_a_tuned_classifier_saves_its_encoder_and_loads_it_checked(
    tuned_classifier: Supervised, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    model = tuned_classifier
    assert model.encoder is not None and model.features == "sentence"
    assert model.cross_validation is None  # its encoder saw every example: no honest folds
    assert model.embedder_id.startswith("fine-tuned-all-MiniLM-L6-v2:")
    texts = [t for t, _ in HELD_OUT]
    first = classify(texts, method="supervised", model=model, embedder=embedder)
    assert [p.label for p in first] == [y for _, y in HELD_OUT]
    # a stored vector is the store's embedder's: the tuned classifier embeds the text again
    stored = [
        Item(str(i), t, vector=np.ones(384, np.float32) / 384**0.5) for i, t in enumerate(texts)
    ]
    assert classify(stored, method="supervised", model=model, embedder=embedder) == first
    model.save(tmp_path / "tuned.json")
    weights = tmp_path / "tuned.encoder.safetensors"
    assert 40e6 < weights.stat().st_size < 50e6  # float16
    saved = json.loads((tmp_path / "tuned.json").read_text())
    assert saved["version"] == 3 and saved["encoder"]["file"] == weights.name
    loaded = Supervised.load(tmp_path / "tuned.json")
    assert loaded.encoder is not None and loaded.encoder.sha256 == model.encoder.sha256
    assert classify(texts, method="supervised", model=loaded, embedder=embedder) == first

    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="SHA-256") as caught:
        Supervised.load(tmp_path / "tuned.json")
    assert "tuned.json" in str(caught.value)
    weights.unlink()
    with pytest.raises(ConfigError, match="No such file"):
        Supervised.load(tmp_path / "tuned.json")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"file": "../elsewhere.safetensors"}, "beside it"),
        ({"file": "tuned.json"}, "beside it"),
        ({"max_tokens": 100000}, "max_tokens"),
        ({"tensors": "extra"}, "not MiniLM's tensors"),
        ({"tensors": "float32"}, "embeddings.LayerNorm.bias is float32"),
        ({"tensors": "garbage"}, "not a safetensors file"),
    ],
)
def test_a_bad_encoder_file_is_refused_by_name(
    tuned_classifier: Supervised, tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    from safetensors.numpy import load, save

    tuned_classifier.save(tmp_path / "tuned.json")
    saved = json.loads((tmp_path / "tuned.json").read_text())
    weights = tmp_path / "tuned.encoder.safetensors"
    altered = change.pop("tensors", None)
    if altered:  # other tensors, under the checksum the file then has
        tensors = load(weights.read_bytes())
        if altered == "garbage":
            tensors = {}
        elif altered == "float32":
            tensors["embeddings.LayerNorm.bias"] = tensors["embeddings.LayerNorm.bias"].astype(
                np.float32
            )
        else:
            tensors["pooler.dense.bias"] = np.zeros(384, np.float16)
        data = save(tensors) if tensors else b"\x00" * 64
        weights.write_bytes(data)
        saved["encoder"]["sha256"] = hashlib.sha256(data).hexdigest()
    saved["encoder"].update(change)
    (tmp_path / "tuned.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=problem):
        Supervised.load(tmp_path / "tuned.json")


def test_without_pytorch_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, embedder: MiniLMEmbedder
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import fails
    with pytest.raises(MissingDependency, match=r"pip install 'askdocs\[finetune\]'"):
        train(TRAIN, embedder, fine_tune_epochs=1)


def test_tuning_needs_two_classes_and_positive_epochs() -> None:
    with pytest.raises(ConfigError, match="two classes"):
        fine_tune(["a", "b"], ["x", "x"])
    with pytest.raises(ConfigError, match="epochs must be positive"):
        fine_tune(["a", "b"], ["x", "y"], epochs=0)


def test_the_command_tunes_saves_and_predicts_again(tmp_path: Path) -> None:
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, rows in ((train_csv, TRAIN), (test_csv, HELD_OUT)):
        lines = ["text,label", *(f'"{t}",{y}' for t, y in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    saved = tmp_path / "clf.json"
    common = ["classify", str(test_csv), "--method", "supervised", "--gold-column", "label"]
    result = CliRunner().invoke(
        main, [*common, "--train", str(train_csv), "--fine-tune", "--epochs", "1",
               "--save", str(saved), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["metrics"]["accuracy"] == 1.0
    assert "cross_validation" not in body
    assert (tmp_path / "clf.encoder.safetensors").is_file()
    again = CliRunner().invoke(main, [*common, "--model", str(saved), "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["predictions"] == body["predictions"]
    zero_shot = ["classify", str(test_csv), "--method", "zero-shot", "--labels", "a,b"]
    wrong = CliRunner().invoke(main, [*zero_shot, "--fine-tune"])
    assert wrong.exit_code == 2 and "--fine-tune needs supervised and --train" in wrong.stderr


# -- zero-shot with self-training ------------------------------------------------------------

THEMES = Path(__file__).parent / "data" / "classify_themes.csv"


def test_surest_takes_each_label_s_widest_margins_in_equal_numbers() -> None:
    from askdocs.classify.selftrain import surest

    scores = np.array(
        [[0.9, 0.1], [0.6, 0.5], [0.8, 0.3], [0.2, 0.7], [0.45, 0.55], [0.1, 0.95], [0.7, 0.65]]
    )
    assert surest(scores, 0.6).tolist() == [0, 2, 3, 5]  # 2 per label: margins .8 .5 / .5 .85
    assert surest(scores, 1.0).tolist() == [0, 1, 2, 3, 4, 5]  # 3 per label: not 6 (.05)


def test_self_training_learns_the_labels_from_unlabelled_texts(
    embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    from askdocs.classify.inputs import read_examples
    from askdocs.classify.selftrain import self_train

    themes = read_examples(THEMES, label_column="label")
    texts, gold = [t for t, _ in themes], [y for _, y in themes]
    heard: list[tuple[str, float]] = []
    model = self_train(
        texts, ["sport", "cooking", "weather"], embedder, rounds=1,
        progress=lambda what, fraction: heard.append((what, fraction)),
    )  # fmt: skip
    stages = [what for what, _ in heard]
    assert model.encoder is not None and model.classes == ("cooking", "sport", "weather")
    assert stages[0] == "embedding the texts" and "tuning on 9 texts" in stages[1]
    assert [fraction for _, fraction in heard] == [0, 1 / 3, 2 / 3]  # 3 stages in one round
    found = classify(texts, method="supervised", model=model, embedder=embedder)
    assert np.mean([p.label == y for p, y in zip(found, gold, strict=True)]) >= 0.9
    with pytest.raises(ConfigError, match="20 texts or more"):
        self_train(texts[:5], ["sport", "cooking"], embedder)
    with pytest.raises(ConfigError, match="local MiniLM embedder, not a remote one"):
        self_train(texts, ["sport", "cooking"], object())  # type: ignore[arg-type]

    rows = tmp_path / "themes.csv"
    rows.write_text(THEMES.read_text(encoding="utf-8"), encoding="utf-8")
    saved = tmp_path / "self.json"
    args = ["classify", str(rows), "--method", "zero-shot", "--labels", "sport,cooking,weather",
            "--gold-column", "label", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--self-train", "--save", str(saved)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] >= 0.9
    assert Supervised.load(saved).encoder is not None
    reused = CliRunner().invoke(
        main, ["classify", str(rows), "--method", "supervised", "--model", str(saved), "--json"]
    )
    assert reused.exit_code == 0, reused.stderr
    assert json.loads(reused.stdout)["predictions"] == json.loads(result.stdout)["predictions"]
    wrong = CliRunner().invoke(main, [*args[:3], "llm", "--labels", "a,b", "--self-train"])
    assert wrong.exit_code == 2 and "--self-train is for zero-shot" in wrong.stderr
