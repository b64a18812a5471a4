from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index import IndexParams, VectorIndex


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("threshold,kind", [(1000, "exact"), (10, "hnsw")])
def test_kind_is_chosen_by_size(threshold: int, kind: str) -> None:
    rng = np.random.default_rng(0)
    params = IndexParams(approximate_threshold=threshold)
    index = VectorIndex.build(np.arange(200), _unit(rng, 200), params, 16)
    assert index.kind == kind


@pytest.mark.parametrize("threshold", [1000, 10])
def test_add_remove_save_load_round_trip(tmp_path: Path, threshold: int) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 300)
    ids = np.arange(1000, 1300)
    index = VectorIndex.build(ids, vectors, IndexParams(approximate_threshold=threshold), 16)

    scores, found = index.search(vectors[:5], 1)
    assert list(found[:, 0]) == list(ids[:5])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)

    assert index.remove(np.array([1000, 1001, 99999])) == 2
    _, found = index.search(vectors[:2], 3)
    assert 1000 not in found and 1001 not in found
    assert len(index) == 298

    extra = _unit(rng, 1)
    index.add(np.array([5000]), extra)
    _, found = index.search(extra, 1)
    assert found[0, 0] == 5000

    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == index.kind
    assert loaded.ids() == index.ids()
    _, again = loaded.search(vectors[2:6], 1)
    assert list(again[:, 0]) == list(ids[2:6])
    _, removed = loaded.search(vectors[:1], 5)
    assert 1000 not in removed


def test_repeated_ids_are_refused() -> None:
    rng = np.random.default_rng(2)
    index = VectorIndex.build(np.arange(3), _unit(rng, 3), IndexParams(), 16)
    with pytest.raises(ValueError, match="already indexed"):
        index.add(np.array([2]), _unit(rng, 1))
    with pytest.raises(ValueError, match="shape"):
        index.add(np.array([7]), np.ones((1, 8), dtype=np.float32))


def test_empty_index_and_short_results() -> None:
    index = VectorIndex(16, "exact", IndexParams())
    scores, ids = index.search(np.ones((2, 16), dtype=np.float32), 3)
    assert ids.shape == (2, 3) and (ids == -1).all() and np.isneginf(scores).all()
    rng = np.random.default_rng(3)
    index.add(np.array([1, 2]), _unit(rng, 2))
    _, ids = index.search(_unit(rng, 1), 5)
    assert sorted(ids[0, :2]) == [1, 2] and (ids[0, 2:] == -1).all()


def test_hnsw_recall_matches_exact() -> None:
    rng = np.random.default_rng(4)
    vectors = _unit(rng, 3000, 32)
    ids = np.arange(3000)
    queries = _unit(rng, 100, 32)
    exact = VectorIndex.build(ids, vectors, IndexParams(approximate_threshold=10**6), 32)
    approx = VectorIndex.build(ids, vectors, IndexParams(approximate_threshold=10), 32)
    _, truth = exact.search(queries, 1)
    _, got = approx.search(queries, 1)
    assert approx.kind == "hnsw"
    assert (truth[:, 0] == got[:, 0]).mean() >= 0.95
