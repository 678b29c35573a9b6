"""Item feature kinds the detectors read: the language-model embeddings of the item texts
(``embedding``), the same with the log's item co-consumption factors appended as the last
columns (``embedding+co``, :mod:`core.co_consumption`; the default detector decides per log
whether to read them), or genre histograms (the baseline without a language model).
``core.artefacts.item_features`` builds the matrix of a dataset for a kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import DataError

FEATURE_KINDS = ("embedding", "embedding+co", "genres")


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
