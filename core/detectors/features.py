"""Item feature matrices the detectors read, by kind: the language-model embeddings of the
item texts, or genre histograms (the baseline without a language model)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import store
from core.errors import DataError

FEATURE_KINDS = ("embedding", "genres")


def genre_matrix(items: pd.DataFrame) -> np.ndarray:
    """(n_items, n_genres) float32 in ``item_idx`` order; each item's categories share
    weight 1 (an item without categories is all zeros)."""
    cats = [list(c) if c is not None else [] for c in items["categories"]]
    names = sorted({c for row in cats for c in row})
    if not names:
        raise DataError("items have no categories, so the genre-histogram baseline cannot run")
    col = {c: j for j, c in enumerate(names)}
    out = np.zeros((len(items), len(names)), dtype=np.float32)
    for i, row in enumerate(cats):
        for c in row:
            out[i, col[c]] = 1.0 / len(row)
    return out


def item_features(name: str, kind: str) -> np.ndarray:
    """Item matrix of dataset ``name`` for feature ``kind`` (row i = item_idx i)."""
    if kind == "embedding":
        from core.embeddings import item_matrix

        return np.asarray(item_matrix(name), dtype=np.float32)
    if kind == "genres":
        with store.connect(name) as con:
            return genre_matrix(store.load_items(con))
    raise DataError(f"unknown feature kind {kind!r}; choose one of {FEATURE_KINDS}")
