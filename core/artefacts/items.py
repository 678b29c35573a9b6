"""Item matrices: the encoder's vectors (cached by core.embeddings) and the features a
detector reads, chosen in one place; the log's item co-consumption factors, stored per
dataset version (``co_consumption.npz``, rebuilt when the events or the code change)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import core.co_consumption
from core import embeddings, store
from core.artefacts.datasets import dataset_version, events, items
from core.derived_files import Manifest, check_matrix, code_version, load_npz, load_or_build, save_npz
from core.detectors.features import FEATURE_KINDS, genre_matrix
from core.encoder import Encoder, Progress
from core.errors import DataError


def item_matrix(name: str, encoder: Encoder | None = None, progress: Progress | None = None) -> np.ndarray:
    """(n_items, d) float32, row i = item_idx i; encodes only item texts not yet cached."""
    return embeddings.item_matrix(name, encoder, progress)


def encode_items(name: str, encoder: Encoder | None = None, progress: Progress | None = None):
    """Encode the item texts the cache lacks; returns ``core.embeddings.ItemEncoding`` (counts
    of cached and encoded texts, for the encode command)."""
    return embeddings.encode_items(name, encoder, progress)


def cached_item_matrix(name: str, model_id: str | None = None) -> np.ndarray | None:
    """The item matrix if every item text is cached, else None; never loads a model."""
    return embeddings.cached_item_matrix(name, model_id)


def item_features(name: str, kind: str, item_vectors: np.ndarray | None = None) -> np.ndarray:
    """The item feature matrix of ``kind`` (row i = item_idx i): the embeddings (``item_vectors``
    when given, else the cached/encoded matrix), the same with the log's co-consumption
    factors as the last columns, or genre histograms of the items' categories.

    The one place that decides which features a detector reads (``Detector.features``).
    """
    if kind == "embedding":
        vectors = item_matrix(name) if item_vectors is None else item_vectors
        return np.asarray(vectors, dtype=np.float32)
    if kind == "embedding+co":
        vectors = item_features(name, "embedding", item_vectors)
        return np.hstack([vectors, co_factors(name, len(vectors))])
    if kind == "genres":
        return genre_matrix(items(name))
    raise DataError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")


CO_FILE = "co_consumption.npz"


def co_factors(name: str, n_items: int) -> np.ndarray:
    """(n_items, CO_FACTORS) float32: the dataset's item co-consumption factors
    (:func:`core.co_consumption.item_factors` over every user's events), from disk when they
    were made from this version of the dataset by this code, else computed and stored."""
    k = core.co_consumption.CO_FACTORS
    path = store.cache_dir(name) / CO_FILE
    manifest = Manifest(
        "co_consumption",
        dataset_version(name),
        {"k": k, "max_users": core.co_consumption.MAX_USERS, "n_items": n_items},
        code_version(core.co_consumption, sys.modules[__name__]),
    )

    def read(p: Path) -> tuple[str, np.ndarray]:
        stored, arrays = load_npz(p)
        check_matrix(arrays["factors"], str(p), rows=n_items, cols=k)
        return stored, arrays["factors"]

    def build() -> np.ndarray:
        ev = events(name)
        return core.co_consumption.item_factors(ev.item_idx, ev.offsets, n_items, k)

    return load_or_build(path, manifest, read, build, lambda p, f, m: save_npz(p, m, {"factors": f}))
