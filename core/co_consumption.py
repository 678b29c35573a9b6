"""Item co-consumption factors: what the log's own users say about which items go together.

The language model reads an item's text; it cannot know that two recipes with unrelated names
are cooked by the same people. A user who hands the account to someone else, or whose
interests move to another part of the catalogue, changes *which items go together* as much as
what their texts say, and on some logs more: on Food.com splices of two users' histories were
found 2x more often at the same real false-alarm rate when the detector also read these
factors (bench/RESULTS.md, issue 19, third round). Which logs they help is not assumed: the
default detector's feature choice (:mod:`core.detectors.feature_choice`) tries the setting
with and without them on splices of the log's own calibration users.

The factors are a truncated SVD of the log's user x item matrix (each user's row weighted
1/sqrt(its distinct items), then each item's column by 1/sqrt(its weighted users), so that
neither heavy users nor blockbusters fill the factors), the first singular direction
(popularity: every user's row leans on popular items) dropped, each item's vector scaled to
unit length. An item no user consumed gets zeros. scikit-learn's ``randomized_svd`` does the decomposition; the
weighting is the few lines here.

>>> import numpy as np
>>> item_idx = np.array([0, 1, 0, 1, 2, 3, 2, 3, 0, 1])
>>> offsets = np.array([0, 2, 4, 6, 8, 10])
>>> f = item_factors(item_idx, offsets, n_items=5, k=1)
>>> f.shape, bool(np.allclose(f[4], 0))
((5, 1), True)
>>> bool(np.sign(f[0, 0]) == np.sign(f[1, 0]) != np.sign(f[2, 0]))
True
"""

from __future__ import annotations

import numpy as np

CO_FACTORS = 16  # columns of the co-consumption block
MAX_USERS = 200_000  # a seeded sample of whole users past this (item factors settle long before)


def item_factors(
    item_idx: np.ndarray, offsets: np.ndarray, n_items: int, k: int = CO_FACTORS, random_state: int = 0
) -> np.ndarray:
    """(n_items, k) float32 unit vectors (zeros for items no user consumed) from the users'
    histories in CSR layout (``item_idx`` per event, ``offsets`` per user)."""
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    item_idx = np.asarray(item_idx, np.int64)
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    users = np.arange(len(counts))
    if len(users) > MAX_USERS:
        users = np.sort(np.random.default_rng(random_state).choice(users, MAX_USERS, replace=False))
    out = np.zeros((n_items, k), np.float32)
    if not len(users) or not int(counts[users].sum()) or k < 1:
        return out
    rows = np.repeat(np.arange(len(users)), counts[users])
    cols = (
        np.concatenate([item_idx[offsets[u] : offsets[u + 1]] for u in users])
        if len(users) < len(counts)
        else item_idx
    )
    x = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(users), n_items))
    x.data[:] = 1.0  # a repeat of an item is the same co-consumption
    x = sp.diags(1.0 / np.sqrt(np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0))) @ x
    item_w = np.asarray(x.sum(axis=0)).ravel()  # an item's users, each counted 1/sqrt(its items)
    x = x @ sp.diags(1.0 / np.sqrt(np.maximum(item_w, 1e-9)))
    n = min(k + 1, min(x.shape) - 1)
    if n < 2:
        return out
    _, s, vt = randomized_svd(x, n, random_state=random_state)
    v = (vt[1:].T * s[1:]).astype(np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(norms > 1e-12, v / np.maximum(norms, 1e-12), 0.0)
    out[:, : v.shape[1]] = v
    return out


def with_co(
    item_vectors: np.ndarray, item_idx: np.ndarray, offsets: np.ndarray, k: int = CO_FACTORS
) -> np.ndarray:
    """The item matrix with the log's co-consumption factors appended as its last ``k``
    columns (what a detector with ``n_co = k`` reads)."""
    item_vectors = np.asarray(item_vectors, np.float32)
    return np.hstack([item_vectors, item_factors(item_idx, offsets, len(item_vectors), k)])


def item_codes(vectors: np.ndarray, random_state: int = 0) -> tuple[np.ndarray, int]:
    """(each row's item code, number of distinct items) of per-event vectors: rows are told
    apart by a fixed random projection of the whole row, so two events share a code only when
    every column agrees (the same item)."""
    vectors = np.asarray(vectors)
    if not len(vectors):
        return np.zeros(0, np.int64), 0
    key = vectors.astype(np.float64) @ np.random.default_rng(random_state).normal(size=vectors.shape[1])
    _, codes = np.unique(key, return_inverse=True)
    codes = codes.ravel().astype(np.int64)
    return codes, int(codes.max()) + 1
