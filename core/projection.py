"""A 2-D map of the item embeddings (UMAP), fitted once per dataset and item matrix.

UMAP costs tens of seconds in a fresh process (numba compiles its kernels), so it is a
set-up step (``python -m core project NAME``), never part of a page request. The map is
stored under the dataset's cache folder with a fingerprint of the item matrix it was fitted
on: a re-encoded catalogue (another model, new items) makes the stored map stale, and
:func:`cached_projection` then returns ``None`` instead of a wrong map.

Users' interest vectors (means of their item vectors) are not items, so they have no UMAP
coordinates; :meth:`ItemProjection.place` puts them at the similarity-weighted mean of
their nearest items' coordinates, which is how umap-learn itself initialises
``transform`` — without its numba kernels, so it stays cheap enough for a page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from core import store
from core.errors import DataError, ShiftError

FILE_NAME = "projection.npz"


def fingerprint(item_vectors: np.ndarray) -> str:
    """Identifies an item matrix (shape and contents) so a map is never paired with another."""
    vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
    digest = hashlib.sha1(vectors.tobytes()).hexdigest()[:16]
    return f"{vectors.shape[0]}x{vectors.shape[1]}:{digest}"


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
        self.fingerprint_ = fingerprint(vectors)
        return self

    def place(self, vectors: np.ndarray, k: int = 15) -> np.ndarray:
        """Map coordinates of arbitrary vectors: weighted mean of their ``k`` most similar items."""
        if not hasattr(self, "embedding_"):
            raise ShiftError("ItemProjection is not fitted; call fit(item_vectors) first")
        return place(vectors, self.item_vectors_, self.embedding_, k)

    def save(self, path: Path) -> Path:
        np.savez(
            path,
            embedding=self.embedding_,
            fingerprint=np.array(self.fingerprint_),
            params=np.array([self.n_neighbors, self.min_dist, self.random_state], dtype=np.float64),
        )
        return Path(path)


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


def projection_path(name: str) -> Path:
    return store.cache_dir(name) / FILE_NAME


def compute_projection(
    name: str,
    item_vectors: np.ndarray | None = None,
    random_state: int = 42,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> np.ndarray:
    """Fit the map of a dataset's items and store it (the set-up step; may encode items)."""
    if item_vectors is None:
        from core.embeddings import item_matrix

        item_vectors = item_matrix(name)
    proj = ItemProjection(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state)
    proj.fit(item_vectors)
    path = projection_path(name)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    proj.save(tmp)
    tmp.replace(path)  # readers never see a half-written map
    return proj.embedding_


def stored_params(name: str) -> list[float] | None:
    """[n_neighbors, min_dist, random_state] of the stored map, or None."""
    path = projection_path(name)
    if not path.exists():
        return None
    with np.load(path) as stored:
        return stored["params"].tolist()


def cached_projection(name: str, item_vectors: np.ndarray) -> np.ndarray | None:
    """The stored map of this exact item matrix, or ``None`` (never fits)."""
    path = projection_path(name)
    if not path.exists():
        return None
    with np.load(path) as stored:
        if str(stored["fingerprint"]) != fingerprint(item_vectors):
            return None
        return stored["embedding"].astype(np.float32)


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
