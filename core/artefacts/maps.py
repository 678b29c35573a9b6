"""The stored UMAP map of a dataset's items (``python -m core project NAME`` builds it).

One ``projection.npz`` per dataset, with a manifest of the dataset's content version, the
UMAP settings, the fingerprint of the item matrix it was fitted on and the code version:
a re-encoded catalogue or a re-import makes the stored map stale, and :func:`cached_projection`
then returns ``None`` instead of a wrong map (fitting is a set-up step, never a page request).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import core.projection
from core import store
from core.artefacts.datasets import dataset_version
from core.artefacts.fits import fingerprint
from core.derived_files import UNREADABLE, Manifest, check_matrix, code_version, load_npz, save_npz
from core.projection import ItemProjection

KIND = "projection"
FILE_NAME = "projection.npz"


def projection_path(name: str) -> Path:
    return store.cache_dir(name) / FILE_NAME


def _manifest(name: str, item_vectors: np.ndarray, params: dict) -> Manifest:
    # The installed umap-learn's version, read from its metadata: the value umap.__version__
    # holds, without importing umap (its numba compilation took 1.9 s of the first Projection
    # page of a dashboard process, only to check the stored map).
    from importlib.metadata import version

    return Manifest(
        KIND,
        dataset_version(name),
        {**params, "features": fingerprint(item_vectors), "umap": version("umap-learn")},
        code_version(core.projection, sys.modules[__name__]),
    )


def _stored(name: str, item_vectors: np.ndarray) -> tuple[dict, np.ndarray] | None:
    """(settings, coordinates) of the stored map if it was made from this exact item matrix
    by this code on this version of the dataset; None when absent, stale or unreadable."""
    path = projection_path(name)
    try:
        manifest, arrays = load_npz(path)
        stored = json.loads(manifest)
        coords = arrays["embedding"].astype(np.float32)
        check_matrix(coords, str(path), rows=len(item_vectors), cols=2)
    except UNREADABLE:
        return None
    want = json.loads(_manifest(name, item_vectors, {}).to_json())
    same = all(stored.get(k) == want[k] for k in ("kind", "dataset_version", "code_version"))
    params = stored.get("params", {})
    if not same or any(params.get(k) != want["params"][k] for k in ("features", "umap")):
        return None
    return params, coords


def cached_projection(name: str, item_vectors: np.ndarray) -> np.ndarray | None:
    """The stored map of this exact item matrix, or ``None`` (never fits)."""
    found = _stored(name, item_vectors)
    return None if found is None else found[1]


def stored_params(name: str, item_vectors: np.ndarray) -> list[float] | None:
    """[n_neighbors, min_dist, random_state] of the valid stored map, or None."""
    found = _stored(name, item_vectors)
    if found is None:
        return None
    return [found[0][k] for k in ("n_neighbors", "min_dist", "random_state")]


def store_projection(name: str, proj: ItemProjection, item_vectors: np.ndarray) -> Path:
    """Write a fitted map with its manifest (atomically)."""
    params = {"n_neighbors": proj.n_neighbors, "min_dist": proj.min_dist, "random_state": proj.random_state}
    return save_npz(
        projection_path(name), _manifest(name, item_vectors, params), {"embedding": proj.embedding_}
    )


def build_projection(
    name: str, item_vectors: np.ndarray, random_state: int = 42, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """Fit the map of the dataset's items and store it (the set-up step; tens of seconds)."""
    proj = ItemProjection(n_neighbors=n_neighbors, min_dist=min_dist, random_state=random_state).fit(
        item_vectors
    )
    store_projection(name, proj, item_vectors)
    return proj.embedding_
