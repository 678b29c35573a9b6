"""The UMAP item map: deterministic, stored with its item matrix, never served stale."""

import numpy as np
import pytest

from core import artefacts, ingest, projection
from core.errors import DataError
from core.store import TableSource


@pytest.fixture
def toy(data_dir, write_file) -> str:
    """A dataset to store maps under (the map itself is fitted on the vectors given)."""
    events = write_file("e.csv", "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\n")
    items = write_file("i.csv", "item_id,title\na,Alien\nb,Heat\n")
    ingest.ingest_files("toy", TableSource(events), TableSource(items))
    return "toy"


def _two_clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(30, 8)) + np.r_[6.0, np.zeros(7)]
    b = rng.normal(size=(30, 8)) - np.r_[6.0, np.zeros(7)]
    return np.vstack([a, b]).astype(np.float32)


@pytest.mark.slow  # a real UMAP fit: about 36 s
def test_fit_is_deterministic_separates_clusters_and_round_trips(toy):
    vectors = _two_clusters()
    first = artefacts.build_projection(toy, vectors, random_state=7, n_neighbors=10)
    second = projection.ItemProjection(n_neighbors=10, random_state=7).fit(vectors).embedding_
    assert first.shape == (60, 2)
    np.testing.assert_array_equal(first, second)
    # Every point is nearer its own cluster's centre than the other's.
    ca, cb = first[:30].mean(0), first[30:].mean(0)
    own = np.r_[np.linalg.norm(first[:30] - ca, axis=1), np.linalg.norm(first[30:] - cb, axis=1)]
    other = np.r_[np.linalg.norm(first[:30] - cb, axis=1), np.linalg.norm(first[30:] - ca, axis=1)]
    assert (own < other).all()
    np.testing.assert_array_equal(artefacts.cached_projection(toy, vectors), first)
    assert artefacts.stored_params(toy, vectors) == [10, 0.1, 7]
    # Another item matrix (re-encoded catalogue) must not be paired with this map.
    assert artefacts.cached_projection(toy, vectors[::-1].copy()) is None


def test_cached_projection_is_none_when_never_computed(toy):
    assert artefacts.cached_projection(toy, _two_clusters()) is None


def test_place_puts_vectors_near_their_own_items():
    items = _two_clusters()
    coords = np.r_[np.zeros((30, 2)), np.full((30, 2), 10.0)].astype(np.float32)
    placed = projection.place(items[[0, 45]], items, coords, k=5)
    np.testing.assert_allclose(placed, [[0.0, 0.0], [10.0, 10.0]])


def test_fit_rejects_bad_matrices():
    with pytest.raises(DataError, match="at least 4"):
        projection.ItemProjection().fit(np.zeros((2, 3)))
    bad = _two_clusters()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        projection.ItemProjection().fit(bad)
