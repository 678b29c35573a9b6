"""A 2-D map of the item embeddings (UMAP), and placement of other vectors on it.

UMAP costs tens of seconds in a fresh process (numba compiles its kernels), so it is a
set-up step (``python -m core project NAME``), never part of a page request; the stored
map and its staleness checks are in :mod:`core.artefacts.maps`. This module only computes.

Users' interest vectors (means of their item vectors) are not items, so they have no UMAP
coordinates; :meth:`ItemProjection.place` puts them at the similarity-weighted mean of
their nearest items' coordinates, which is how umap-learn itself initialises
``transform`` — without its numba kernels, so it stays cheap enough for a page.
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError, ShiftError


class ItemProjection:
    """UMAP of item vectors to 2-D (cosine metric), plus placement of other vectors on the map.

    Parameters are umap-learn's; ``random_state`` makes the map identical across runs.
    (Fitting is exercised in tests/test_projection.py: numba's compile time is too slow for
    a doctest.)
    """

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int = 42) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state

    def fit(self, item_vectors: np.ndarray) -> ItemProjection:
        import umap  # heavy import (numba); only the set-up step pays for it

        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) < 4:
            raise DataError(f"a projection needs at least 4 item vectors; got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise DataError("item vectors contain NaN or infinite values")
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(self.n_neighbors, len(vectors) - 1),
            min_dist=self.min_dist,
            metric="cosine",
            random_state=self.random_state,
            n_jobs=1,  # a fixed random_state makes umap-learn single-threaded anyway; say so to silence it
        )
        self.embedding_ = reducer.fit_transform(vectors).astype(np.float32)
        self.item_vectors_ = _normalise(vectors)
        return self

    def place(self, vectors: np.ndarray, k: int = 15) -> np.ndarray:
        """Map coordinates of arbitrary vectors: weighted mean of their ``k`` most similar items."""
        if not hasattr(self, "embedding_"):
            raise ShiftError("ItemProjection is not fitted; call fit(item_vectors) first")
        return place(vectors, self.item_vectors_, self.embedding_, k)


def place(vectors: np.ndarray, item_vectors: np.ndarray, item_coords: np.ndarray, k: int = 15) -> np.ndarray:
    """Coordinates for ``vectors`` on a map of ``item_vectors`` (see the module docstring).

    A vector halfway between items 0 and 1 lands halfway between their coordinates:

    >>> items = np.eye(3, dtype=np.float32)
    >>> coords = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]], dtype=np.float32)
    >>> place(np.array([[1.0, 1.0, 0.0]]), items, coords, k=2).tolist()
    [[1.0, 0.0]]
    """
    query = _normalise(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    items = _normalise(np.asarray(item_vectors, dtype=np.float32))
    k = max(1, min(k, len(items)))
    sim = query @ items.T
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    weights = np.take_along_axis(sim, nearest, axis=1).clip(min=1e-6)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkc->nc", weights, item_coords[nearest]).astype(np.float32)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def segment_means(
    item_vectors: np.ndarray, history: np.ndarray, change_point: int, h: int = 20
) -> np.ndarray:
    """Interest vectors of the ``h`` events before and after a change point, shape (2, d).

    >>> vecs = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> segment_means(vecs, np.array([0, 0, 0, 1, 1]), 3, h=2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    history = np.asarray(history, dtype=np.int64)
    cp = int(change_point)
    if not 0 < cp < len(history):
        raise ShiftError(f"change point {cp} must leave events on both sides (1 … {len(history) - 1})")
    before = history[max(0, cp - h) : cp]
    after = history[cp : cp + h]
    return np.vstack([item_vectors[before].mean(axis=0), item_vectors[after].mean(axis=0)])


def shift_endpoints(
    results, item_vectors: np.ndarray, item_coords: np.ndarray, threshold: float, limit: int, h: int = 20
):
    """(change points, before (n, 2), after (n, 2)): the strongest change point of up to
    ``limit`` users of ``results`` (a :class:`core.results.DetectionResults`) at ``threshold``,
    and the user's interest in the ``h`` events before and after it placed on the map. Only
    those events are read (``results.windows``), whatever the size of the dataset."""
    strongest = results.strongest(threshold, limit)
    cp = strongest["event_index"].to_numpy(np.int64)
    k, seq, item = results.windows(strongest["user_id"].tolist(), cp, h, h)
    if len(strongest) == 0:
        return strongest, np.empty((0, 2)), np.empty((0, 2))
    bounds = np.searchsorted(k, np.arange(len(strongest) + 1))
    means = [
        segment_means(item_vectors, item[a:b], int(c - seq[a]) if b > a else int(c), h)
        for a, b, c in zip(bounds[:-1], bounds[1:], cp)
    ]
    placed = place(np.vstack(means), item_vectors, item_coords)
    return strongest, placed[0::2], placed[1::2]
