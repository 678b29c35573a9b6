"""Item matrices: the encoder's vectors (cached by core.embeddings) and the features a
detector reads, chosen in one place."""

from __future__ import annotations

import numpy as np

from core import embeddings
from core.artefacts.datasets import items
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
    when given, else the cached/encoded matrix) or genre histograms of the items' categories.

    The one place that decides which features a detector reads (``Detector.features``).
    """
    if kind == "embedding":
        vectors = item_matrix(name) if item_vectors is None else item_vectors
        return np.asarray(vectors, dtype=np.float32)
    if kind == "genres":
        return genre_matrix(items(name))
    raise DataError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")
