"""Reference recommenders from a well-kept library (``implicit``), for context in the lift tables.

Our lists come from a content + item-kNN score built for explanation and speed; the lift
tables print the absolute NDCG@10 of a standard collaborative recommender on the same
cases next to them, so a reader can tell whether ours is a reasonable recommender at all.
Both are fitted on the training users only and answer a benchmark user from the visible
history alone (ALS solves that user's factors on the spot; item-kNN sums neighbours).

``implicit`` is a development requirement (requirements-dev.txt), imported only here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from core.errors import ShiftError
from core.store import EventArrays

Reference = Callable[[np.ndarray, int], np.ndarray]


def _user_items(training: EventArrays, n_items: int) -> sp.csr_matrix:
    users = np.repeat(np.arange(training.n_users), np.diff(training.offsets))
    x = sp.csr_matrix(
        (np.ones(len(training.item_idx), dtype=np.float32), (users, training.item_idx)),
        shape=(training.n_users, n_items),
    )
    x.data[:] = 1.0  # binary: a re-watch counts once, as in our co-occurrence
    return x


def fit_reference(
    kind: str, training: EventArrays, n_items: int, random_state: int = 0, **params
) -> Reference:
    """``kind``: ``"als"`` (implicit's AlternatingLeastSquares) or ``"itemknn"`` (its
    CosineRecommender). Returns ``recommend(visible_item_idx, k) -> top k unseen items``."""
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender
    from threadpoolctl import threadpool_limits

    x = _user_items(training, n_items)
    limit = threadpool_limits(1)  # implicit warns (and slows) under multi-threaded BLAS
    if kind == "als":
        model = AlternatingLeastSquares(
            factors=params.get("factors", 64),
            regularization=params.get("regularization", 0.05),
            alpha=params.get("alpha", 2.0),
            iterations=params.get("iterations", 15),
            random_state=random_state,
            num_threads=1,  # the benchmark box is shared; one thread keeps timings honest
        )
    elif kind == "itemknn":
        model = CosineRecommender(K=params.get("neighbours", 100), num_threads=1)
    else:
        limit.restore_original_limits()
        raise ShiftError(f"unknown reference recommender {kind!r}; use 'als' or 'itemknn'")
    with warnings.catch_warnings():
        # item-kNN transposes our CSR input itself and then warns that it got COO; the
        # conversion is implicit's own and costs milliseconds.
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(x, show_progress=False)
    limit.restore_original_limits()

    def recommend(visible: np.ndarray, k: int) -> np.ndarray:
        seen = np.unique(visible).astype(np.int32)  # implicit's kernels take int32 indices
        row = sp.csr_matrix(
            (np.ones(len(seen), dtype=np.float32), seen, np.array([0, len(seen)], dtype=np.int32)),
            shape=(1, n_items),
        )
        with threadpool_limits(1):
            ids, _ = model.recommend(0, row, N=k, filter_already_liked_items=True, recalculate_user=True)
        return np.asarray(ids, dtype=np.int64)

    return recommend
