"""Per-user feature trajectories: item vectors in event order and interest vectors built on them.

All users are processed at once in CSR layout: ``vectors`` (N, d) holds every event's item
vector, user ``k`` owning rows ``offsets[k]:offsets[k+1]``. Window means are computed for
tiles of 64 consecutive events at a time, each tile one small matrix product of window
weights with the tile's span of rows (``_window_means``), so the core math has no per-user
Python loop and no N x d prefix-sum array. Positions ``t`` are 0-based within a user.

* ``two_window_delta``: row t = mean(x[t:t+h]) - mean(x[t-h:t]), the change Δf of the
  method; a change point at t means event t is the first event after the change.
* ``recent_mean``: row t = mean of the last h events up to and including t.
* ``ewma``: exponentially weighted mean with a half-life in events.

Each takes optional per-event ``weights``; a weighted mean is sum(w x) / sum(|w|), so a
negative weight (``rating_weights``: a rating below the user's mean) pulls a window away
from that item. Large logs are streamed in user chunks (``chunk_ranges``;
``core.artefacts.iter_trajectories`` loads them), so memory is bounded by a chunk, never by
N x d of the whole log. This module only computes: ``core.artefacts`` loads the events
and the item matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ShiftError, UnknownUser
from core.user_events import UserEvents

if TYPE_CHECKING:
    from core.store import EventArrays


def _check(vectors: np.ndarray, offsets: np.ndarray, weights: np.ndarray | None) -> tuple:
    vectors = np.asarray(vectors)
    offsets = np.asarray(offsets)
    if vectors.ndim != 2:
        raise ShiftError(f"vectors must be 2-D (events, dim), got shape {vectors.shape}")
    if offsets.ndim != 1 or len(offsets) < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise ShiftError("offsets must be a 1-D integer array of length n_users + 1")
    if offsets[0] != 0 or offsets[-1] != len(vectors) or (np.diff(offsets) < 0).any():
        raise ShiftError(
            f"offsets must rise from 0 to the number of events ({len(vectors)}); "
            f"got {offsets[0]} … {offsets[-1]}"
        )
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(vectors),):
            raise ShiftError(f"weights must have shape ({len(vectors)},), got {weights.shape}")
    return vectors, offsets.astype(np.int64), weights


def _check_window(h: int) -> int:
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
        raise ShiftError(f"window h must be a positive integer, got {h!r}")
    return int(h)


_TILE = 64


def _window_means(
    vectors: np.ndarray, weights: np.ndarray | None, rows: np.ndarray, windows: list[tuple]
) -> np.ndarray:
    """For each of ``rows`` (ascending): sum over windows of coef · weighted mean of x[lo:hi].

    ``windows`` holds (lo, hi, coef) with lo/hi arrays aligned to ``rows``. Rows are taken in
    tiles of 64 consecutive events; each tile's window means are one small matrix product,
    W (rows × span) @ x[span], where W carries w_j / sum|w| inside each window. That is
    BLAS speed with no long prefix sums: a cumulative sum over all N rows (the textbook
    route) was 5x slower on the dev machine, where numpy's cumsum along axis 0 and the
    N·d·8 bytes of a float64 prefix array are memory-bound. Rows whose window carries no
    weight are NaN.
    """
    n, d = vectors.shape
    dtype = np.result_type(vectors.dtype, np.float32)
    out = np.empty((len(rows), d), dtype=np.float32)
    edges = np.searchsorted(rows, np.arange(0, n + _TILE, _TILE))
    for i, j in zip(edges[:-1], edges[1:], strict=True):
        if i == j:
            continue
        spans = [(lo[i:j], hi[i:j], coef) for lo, hi, coef in windows]
        a = min(int(lo.min()) for lo, _, _ in spans)
        b = max(int(hi.max()) for _, hi, _ in spans)
        cols = np.arange(a, b)
        matrix = np.zeros((j - i, b - a), dtype=dtype)
        empty = np.zeros(j - i, dtype=bool)
        for lo, hi, coef in spans:
            inside = (cols >= lo[:, None]) & (cols < hi[:, None])
            if weights is None:
                part, total = inside.astype(dtype), (hi - lo).astype(dtype)
            else:
                part = inside * weights[a:b].astype(dtype)
                total = np.abs(part).sum(axis=1)
            empty |= total <= 0
            matrix += part * (coef / np.where(total > 0, total, 1))[:, None]
        block = matrix @ vectors[a:b].astype(dtype, copy=False)
        block[empty] = np.nan
        out[i:j] = block
    return out


def two_window_delta(
    vectors: np.ndarray, offsets: np.ndarray, h: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Δf per event (N, d) float32: mean(x[t:t+h]) - mean(x[t-h:t]); NaN where t<h or t+h>T.

    >>> x = np.array([[0.0], [0.0], [1.0], [1.0], [5.0]])
    >>> two_window_delta(x, np.array([0, 4, 5]), 2)[:, 0]
    array([nan, nan,  1., nan, nan], dtype=float32)
    """
    vectors, offsets, weights = _check(vectors, offsets, weights)
    h = _check_window(h)
    ev = UserEvents(offsets)
    start, end = ev.start, ev.end
    g = np.arange(len(vectors), dtype=np.int64)
    rows = g[(g - h >= start) & (g + h <= end)]
    out = np.full(vectors.shape, np.nan, dtype=np.float32)
    if len(rows):
        out[rows] = _window_means(vectors, weights, rows, [(rows, rows + h, 1.0), (rows - h, rows, -1.0)])
    return out


def recent_mean(
    vectors: np.ndarray, offsets: np.ndarray, h: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Mean of events max(0, t-h+1) … t of the same user (N, d) float32.

    The first h-1 events of a user average what there is so far (no NaN), so the interest
    vector exists from the first event on.

    >>> x = np.array([[1.0], [3.0], [5.0], [7.0]])
    >>> recent_mean(x, np.array([0, 3, 4]), 2)[:, 0]
    array([1., 2., 4., 7.], dtype=float32)
    """
    vectors, offsets, weights = _check(vectors, offsets, weights)
    h = _check_window(h)
    start = UserEvents(offsets).start
    g = np.arange(len(vectors), dtype=np.int64)
    if not len(g):
        return np.empty(vectors.shape, dtype=np.float32)
    return _window_means(vectors, weights, g, [(np.maximum(start, g - h + 1), g + 1, 1.0)])


def ewma(
    vectors: np.ndarray, offsets: np.ndarray, halflife: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Exponentially weighted mean per event (N, d) float32, restarting at each user.

    Row t = sum_i λ^(t-i) w_i x_i / sum_i λ^(t-i) |w_i| over the user's events i <= t, with
    λ = 2^(-1/halflife): an event's weight halves every ``halflife`` events (the same as
    pandas' ``ewm(halflife=…, adjust=True).mean()`` per user).

    >>> x = np.array([[0.0], [1.0], [4.0]])
    >>> ewma(x, np.array([0, 2, 3]), 1.0)[:, 0].round(4)
    array([0.    , 0.6667, 4.    ], dtype=float32)
    """
    vectors, offsets, weights = _check(vectors, offsets, weights)
    if not np.isfinite(halflife) or halflife <= 0:
        raise ShiftError(f"halflife must be a positive number of events, got {halflife!r}")
    lam = 2.0 ** (-1.0 / float(halflife))
    n, d = vectors.shape
    w = np.ones(n) if weights is None else weights
    user = UserEvents(offsets).event_user
    # Numerator sum_i λ^(t-i) w_i x_i and denominator sum_i λ^(t-i) |w_i| ride together as
    # d+1 columns. Block by block (32 rows), both are one product with the lower-triangular
    # decay matrix, masked where rows belong to different users (the sum restarts at each
    # user), plus the decayed last row of the previous block when it is the same user.
    # scipy.signal.lfilter does the recursion too, but along axis 0 of (N, 384) it ran
    # about 7x slower on the dev machine and cannot restart per user.
    k = np.arange(_EWMA_BLOCK)
    lower = np.where(k[:, None] >= k[None, :], lam ** np.maximum(k[:, None] - k[None, :], 0), 0.0)
    carry_decay = lam ** (k + 1.0)
    out = np.empty((n, d), dtype=np.float32)
    carry, carry_user = np.zeros(d + 1), -1
    for i in range(0, n, _EWMA_BLOCK):
        rows = slice(i, i + _EWMA_BLOCK)
        seg = user[rows]
        m = len(seg)
        stacked = np.empty((m, d + 1))
        stacked[:, :d] = vectors[rows] * w[rows, None]
        stacked[:, d] = np.abs(w[rows])
        res = (lower[:m, :m] * (seg[:, None] == seg[None, :])) @ stacked
        res += np.where(seg == carry_user, carry_decay[:m], 0.0)[:, None] * carry
        carry, carry_user = res[-1], seg[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            block = res[:, :d] / res[:, d:]
        block[res[:, d] <= 1e-12] = np.nan
        out[rows] = block
    return out


_EWMA_BLOCK = 32


def rating_weights(rating: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """+1 for an event rated at or above its user's mean rating (or unrated), -1 below it.

    Signs rather than centred ratings: a user who rates everything 4 still has evidence
    (all +1), and no window can sum to zero weight.

    >>> rating_weights(np.array([5.0, 1.0, 3.0, np.nan, 2.0]), np.array([0, 3, 5]))
    array([ 1., -1.,  1.,  1.,  1.])
    """
    rating = np.asarray(rating, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    known = ~np.isnan(rating)
    sums = np.concatenate([[0.0], np.cumsum(np.where(known, rating, 0.0))])
    counts = np.concatenate([[0], np.cumsum(known)])
    n = (counts[offsets[1:]] - counts[offsets[:-1]]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[offsets[1:]] - sums[offsets[:-1]]) / n
    user_mean = np.repeat(mean, np.diff(offsets))
    # A tolerance, so a constant rater's ratings are not "below" their own float mean.
    below = known & (rating < user_mean - 1e-9)
    return np.where(below, -1.0, 1.0)


@dataclass(frozen=True, eq=False)
class Trajectories:
    """Events of a set of users (CSR, as ``core.store.EventArrays``) plus the item matrix.

    Event vectors are gathered on demand (``vectors()``), so a chunk holds item ids, not
    N x d floats, until a computation asks for them.
    """

    user_ids: np.ndarray  # (U,) str
    offsets: np.ndarray  # (U+1,) int64
    item_idx: np.ndarray  # (N,) int32
    ts: np.ndarray  # (N,) datetime64[us]
    rating: np.ndarray  # (N,) float32, NaN where unrated
    item_vectors: np.ndarray  # (n_items, d) float, row i = item_idx i

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def users(self) -> UserEvents:
        return UserEvents(self.offsets, self.user_ids)

    def user_slice(self, k: int) -> slice:
        return self.users.user_slice(k)

    def index_of(self, user_id: str) -> int:
        try:
            return self.users.position(user_id)
        except UnknownUser:
            raise UnknownUser(f"user {user_id!r} is not in these trajectories") from None

    @classmethod
    def from_events(cls, events: EventArrays, item_vectors: np.ndarray) -> Trajectories:
        """Trajectories of ``events`` over the item matrix (checked to cover every item)."""
        # kept in the dtype given (an embedding matrix is float32; a detector's features may be
        # float64, and a cast would change its scores)
        item_vectors = np.asarray(item_vectors)
        if not np.issubdtype(item_vectors.dtype, np.floating):
            item_vectors = item_vectors.astype(np.float32)
        if len(events.item_idx) and int(events.item_idx.max()) >= len(item_vectors):
            raise ShiftError(
                f"item matrix has {len(item_vectors)} rows but events name item_idx "
                f"{int(events.item_idx.max())}; re-encode the dataset (python -m core encode NAME)"
            )
        return cls(events.user_ids, events.offsets, events.item_idx, events.ts, events.rating, item_vectors)

    @classmethod
    def of_history(cls, item_idx: np.ndarray, item_vectors: np.ndarray) -> Trajectories:
        """One user's trajectory (U = 1) from the item indices of their history, in order."""
        item_idx = np.asarray(item_idx, dtype=np.int64)
        n = len(item_idx)
        return cls(
            np.array(["user"], dtype=object),
            np.array([0, n], dtype=np.int64),
            item_idx,
            np.zeros(n, "datetime64[us]"),
            np.full(n, np.nan, np.float32),
            np.asarray(item_vectors, dtype=np.float32),
        )

    def vectors(self) -> np.ndarray:
        """Every event's item vector (N, d), in event order."""
        return self.item_vectors[self.item_idx]

    def user_vectors(self, k: int) -> np.ndarray:
        """User k's item vectors (T_k, d), in event order."""
        return self.item_vectors[self.item_idx[self.user_slice(k)]]

    def weights(self, rating_weighted: bool = False) -> np.ndarray | None:
        return rating_weights(self.rating, self.offsets) if rating_weighted else None

    def delta(self, h: int, rating_weighted: bool = False) -> np.ndarray:
        return two_window_delta(self.vectors(), self.offsets, h, self.weights(rating_weighted))

    def recent(self, h: int, rating_weighted: bool = False) -> np.ndarray:
        return recent_mean(self.vectors(), self.offsets, h, self.weights(rating_weighted))

    def smoothed(self, halflife: float, rating_weighted: bool = False) -> np.ndarray:
        return ewma(self.vectors(), self.offsets, halflife, self.weights(rating_weighted))


def chunk_ranges(n_events: np.ndarray, max_events: int) -> list[tuple[int, int]]:
    """Consecutive user_idx ranges holding at most ``max_events`` events each.

    A single user with more events than that gets a range of their own.

    >>> chunk_ranges(np.array([3, 3, 3, 10, 1]), 6)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    """
    if max_events < 1:
        raise ShiftError(f"max_events must be positive, got {max_events}")
    ranges, lo, total = [], 0, 0
    for k, n in enumerate(np.asarray(n_events, dtype=np.int64)):
        # A loop over users, but only over one integer each: it sizes chunks, no vector math.
        if k > lo and total + n > max_events:
            ranges.append((lo, k))
            lo, total = k, 0
        total += int(n)
    if lo < len(n_events):
        ranges.append((lo, len(n_events)))
    return ranges
