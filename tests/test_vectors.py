"""Vector indexes: one contract for exact, HNSW and the switching VectorIndex; files; recall."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from askdocs.vectors import ExactIndex, HnswIndex, HnswParams, VectorIndex

DIM = 32
N = 300

Index = ExactIndex | HnswIndex | VectorIndex
IMPLEMENTATIONS: dict[str, Callable[[int], Index]] = {
    "exact": ExactIndex,
    "hnsw": lambda dim: HnswIndex(dim, HnswParams()),
    # Starts exact and becomes HNSW once it holds 50 vectors.
    "switching": lambda dim: VectorIndex(dim, HnswParams(threshold=50)),
}


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make_index(request: pytest.FixtureRequest) -> Callable[[], Index]:
    return lambda: IMPLEMENTATIONS[request.param](DIM)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """Ids 1000, 1003, ... (not positions, so mixing the two up shows) and their vectors."""
    return np.arange(1000, 1000 + 3 * N, 3, dtype=np.int64), unit_vectors(N)


@pytest.fixture
def index(make_index: Callable[[], Index], data: tuple[np.ndarray, np.ndarray]) -> Index:
    built = make_index()
    ids, vectors = data
    built.add(ids[:100], vectors[:100])  # two adds: growth and appends both work
    built.add(ids[100:], vectors[100:])
    return built


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vectors @ query), kind="stable")[:k]]


# -- contract ------------------------------------------------------------------------------


def test_search_returns_int64_ids_and_float32_scores_best_first(
    index: Index, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = data
    found, scores = index.search(vectors[5], 10)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    assert found.shape == scores.shape == (10,)
    assert np.all(np.diff(scores) <= 1e-6)
    assert len(index) == N
    np.testing.assert_array_equal(index.ids(), ids)


def test_each_stored_vector_finds_itself_first(
    index: Index, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = data
    for row in range(0, N, 23):
        found, scores = index.search(vectors[row], 1)
        assert found.tolist() == [ids[row]]
        assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_k_beyond_size_zero_and_empty_index(make_index: Callable[[], Index]) -> None:
    empty = make_index()
    assert len(empty) == 0
    assert [len(a) for a in empty.search(unit_vectors(1)[0], 5)] == [0, 0]
    small = make_index()
    small.add([7, 8, 9], unit_vectors(3))
    assert sorted(small.search(unit_vectors(1, seed=1)[0], 10)[0].tolist()) == [7, 8, 9]
    assert [len(a) for a in small.search(unit_vectors(1)[0], 0)] == [0, 0]


def test_deleted_ids_are_never_returned(index: Index, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = data
    doomed = ids[:40]
    index.delete(doomed.tolist())
    index.delete([ids[0], 999_999])  # already gone, never present: both ignored
    assert len(index) == N - 40
    np.testing.assert_array_equal(index.ids(), ids[40:])
    for row in range(40):
        found, _ = index.search(vectors[row], 20)
        assert not set(found.tolist()) & set(doomed.tolist())
    assert index.search(vectors[50], 1)[0].tolist() == [ids[50]]


def test_an_id_added_again_after_delete_has_only_its_new_vector(
    index: Index, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = data
    old, new = vectors[3], unit_vectors(1, seed=99)[0]
    index.delete([ids[3]])
    index.add([ids[3]], new[None, :])
    assert len(index) == N
    np.testing.assert_array_equal(index.ids(), ids)
    found, scores = index.search(new, 1)
    assert found.tolist() == [ids[3]] and scores[0] == pytest.approx(1.0, abs=1e-5)
    found, scores = index.search(old, N)
    hits = dict(zip(found.tolist(), scores.tolist(), strict=True))
    assert hits.get(int(ids[3]), float(old @ new)) == pytest.approx(float(old @ new), abs=1e-5)


def test_allowed_restricts_results_to_those_ids(
    index: Index, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = data
    rows = np.sort(np.random.default_rng(5).choice(N, size=120, replace=False))
    allowed = ids[rows]
    query = unit_vectors(1, seed=7)[0]
    found, _ = index.search(query, 10, allowed=allowed)
    assert len(found) == 10 and set(found.tolist()) <= set(allowed.tolist())
    expected = exact_top(vectors[rows], allowed, query, 10)
    assert len(set(found.tolist()) & set(expected.tolist())) >= 9
    # A stored vector that is allowed still finds itself first.
    assert index.search(vectors[rows[0]], 1, allowed=allowed)[0].tolist() == [allowed[0]]


def test_a_narrow_filter_scores_exactly(index: Index, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = data
    allowed = ids[[10, 200, 250]]
    index.delete([ids[250]])  # a deleted id in the filter stays deleted
    query = unit_vectors(1, seed=3)[0]
    found, scores = index.search(query, 5, allowed=allowed)
    exact = {int(ids[row]): float(vectors[row] @ query) for row in (10, 200)}
    assert found.tolist() == sorted(exact, key=lambda i: -exact[i])
    np.testing.assert_allclose(scores, [exact[i] for i in found.tolist()], atol=1e-5)
    assert [len(a) for a in index.search(query, 5, allowed=np.zeros(0, np.int64))] == [0, 0]


# -- VectorIndex: switching, files ---------------------------------------------------------


def test_vector_index_moves_to_hnsw_at_the_threshold_and_back_after_deletes() -> None:
    vectors = unit_vectors(120)
    index = VectorIndex(DIM, HnswParams(threshold=100))
    index.add(np.arange(99), vectors[:99])
    assert index.kind == "exact"
    index.add(np.arange(99, 120), vectors[99:])
    assert index.kind == "hnsw"
    index.delete(range(60))  # half deleted: rebuilt, and below the threshold: exact again
    assert index.kind == "exact" and len(index) == 60
    np.testing.assert_array_equal(index.ids(), np.arange(60, 120))
    assert index.search(vectors[70], 1)[0].tolist() == [70]


@pytest.mark.parametrize("threshold", [10_000, 50], ids=["exact", "hnsw"])
def test_save_and_load_round_trip(tmp_path: Path, threshold: int) -> None:
    vectors = unit_vectors(N)
    index = VectorIndex(DIM, HnswParams(threshold=threshold))
    index.add(np.arange(N), vectors)
    index.delete([3, 4])  # HNSW keeps these as tombstones: they must survive the file
    index.save(tmp_path / "v.idx")
    loaded = VectorIndex.load(tmp_path / "v.idx")
    assert (loaded.kind, loaded.dim, len(loaded)) == (index.kind, DIM, N - 2)
    assert loaded.params == index.params
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for row in (0, 3, 4, 150):
        for a, b in zip(loaded.search(vectors[row], 5), index.search(vectors[row], 5), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of a saved exact index and of a saved HNSW index."""
    folder = tmp_path_factory.mktemp("saved")
    files = {}
    for kind, threshold in (("exact", 10_000), ("hnsw", 50)):
        index = VectorIndex(DIM, HnswParams(threshold=threshold))
        index.add(np.arange(N), unit_vectors(N))
        index.save(folder / kind)
        files[kind] = (folder / kind).read_bytes()
    return files


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[: len(data) - 1000], id="truncated-tail"),
        pytest.param(lambda data: data[:100], id="truncated-header"),
        pytest.param(lambda data: b"PK\x03\x04" + bytes(range(256)) * 8, id="garbage"),
    ],
)
def test_a_damaged_file_raises_value_error(
    tmp_path: Path, saved_files: dict[str, bytes], kind: str, damage: Callable[[bytes], bytes]
) -> None:
    (tmp_path / "v.idx").write_bytes(damage(saved_files[kind]))
    with pytest.raises(ValueError, match=r"v\.idx"):
        VectorIndex.load(tmp_path / "v.idx")


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize("where", [0.5, 0.9], ids=["middle", "near-the-end"])
def test_a_flipped_bit_anywhere_raises_value_error(
    tmp_path: Path, saved_files: dict[str, bytes], kind: str, where: float
) -> None:
    """A bit flipped inside the vectors or the graph, not only in a header, is caught."""
    data = bytearray(saved_files[kind])
    data[int(len(data) * where)] ^= 0x04
    (tmp_path / "v.idx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"v\.idx.*checksum mismatch"):
        VectorIndex.load(tmp_path / "v.idx")


def test_a_file_saved_with_another_tag_raises_value_error(tmp_path: Path) -> None:
    index = VectorIndex(DIM)
    index.add(np.arange(N), unit_vectors(N))
    index.save(tmp_path / "v.idx", tag="store-a@12")
    assert len(VectorIndex.load(tmp_path / "v.idx", tag="store-a@12")) == N
    assert len(VectorIndex.load(tmp_path / "v.idx")) == N  # no tag asked for: not checked
    for other in ("store-b@12", "store-a@13"):
        with pytest.raises(ValueError, match=rf"saved for 'store-a@12', not '{other}'"):
            VectorIndex.load(tmp_path / "v.idx", tag=other)


def test_a_foreign_npy_file_raises_value_error(tmp_path: Path) -> None:
    np.save(tmp_path / "other.npy", np.arange(10))
    with pytest.raises(ValueError, match=r"other\.npy"):
        VectorIndex.load(tmp_path / "other.npy")
    with pytest.raises(ValueError, match=r"missing\.idx"):
        VectorIndex.load(tmp_path / "missing.idx")


# -- quality -------------------------------------------------------------------------------


def test_hnsw_recall_against_exact_search() -> None:
    n, dim, k = 3000, 64, 10
    ids = np.arange(n, dtype=np.int64) * 2
    vectors, queries = unit_vectors(n, dim, seed=11), unit_vectors(30, dim, seed=12)
    hnsw, exact = HnswIndex(dim, HnswParams()), ExactIndex(dim)
    hnsw.add(ids, vectors)
    exact.add(ids, vectors)
    allowed = ids[::2]  # broad enough to go through the graph, not the exact fallback
    for kwargs in ({}, {"allowed": allowed}):
        found = 0
        for query in queries:
            expected = set(exact.search(query, k, **kwargs)[0].tolist())
            found += len(expected & set(hnsw.search(query, k, **kwargs)[0].tolist()))
        assert found / (k * len(queries)) >= 0.9, f"recall {found / (k * len(queries))}"


def test_hnsw_defaults_are_the_settings() -> None:
    from askdocs.config import IndexSettings

    s = IndexSettings()
    assert HnswParams() == HnswParams(
        s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.hnsw_threshold
    )
