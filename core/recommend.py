"""Re-recommendation around a change point: the before, after and now lists of one user.

A policy turns a user's event sequence into per-event weights (a profile of the history
before the change, of the history since, or of both with the past down-weighted); the
:class:`Recommender` scores every item against that weighted profile in the item embedding
space (cosine) and, with a measured weight, by item-item co-occurrence (an item-kNN
collaborative signal), then ranks the items the user has not seen. Popularity breaks ties,
then ``item_idx``, so lists are deterministic.

The recommender holds the item matrix, the co-occurrence matrix and the popularity counts;
it is built once per dataset (``fit``) and then answers any user in a few milliseconds, so
the dashboard can keep one in ``st.cache_resource``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.errors import DataError, ShiftError
from core.explain import ShiftExplainer, ShiftExplanation, neighbouring_segments

if TYPE_CHECKING:
    from core.store import EventArrays

POLICIES = ("before", "after", "now")
# Weight of the collaborative score next to the cosine score (both about 0-1). Chosen on a
# validation splice benchmark drawn with another seed than the reported one
# (python -m bench.lift --validate): on MovieLens-100K content alone gives NDCG@10 about 0.02-0.05,
# co-occurrence lifts every profile to about 0.2-0.35, and weights 1-4 form a plateau; 1 keeps
# the content score a real part of the ranking (bench/RESULTS.md, "Recommendation lift").
# The fair protocol (python -m bench.lift --fair) chooses it per log on validation users:
# 4 on MovieLens-100K, 0.25 on Food.com; the product default stays 1 until a per-dataset
# setting exists.
DEFAULT_COLLABORATIVE_WEIGHT = 1.0
# Co-occurrence neighbours kept per item. Pruning is standard item-kNN practice and keeps a
# query to a few thousand sparse entries (on MovieLens-100K the full matrix is 70% dense,
# which made one query ~70 ms); bench/lift.py measures the effect on quality.
DEFAULT_NEIGHBOURS = 100
# Share of the "now" profile that the pre-change segment keeps: old interests are
# down-weighted, not erased.
DEFAULT_PAST_WEIGHT = 0.25
# Recency half-life (in events) inside the "now" profile; None weighs a segment's events
# equally.
DEFAULT_HALF_LIFE: float | None = None


def policy_weights(
    n_events: int,
    change_point: int | None,
    policy: str,
    past_weight: float = DEFAULT_PAST_WEIGHT,
    last_n: int = 10,
    *,
    start: int = 0,
    end: int | None = None,
    half_life: float | None = None,
) -> np.ndarray:
    """Per-event weights (summing to 1) of a profile policy over a sequence of ``n_events``.

    ``change_point`` is the index of the first event after the change; ``start`` and ``end``
    bound the segments around it (the previous and next change points, see
    :func:`core.explain.neighbouring_segments`; by default the whole history). Policies:
    ``before`` (events ``[start, cp)``), ``after`` (``[cp, end)``), ``now`` (both segments,
    the one before scaled to ``past_weight`` of the one after, and each event discounted by
    ``half_life`` events of recency when given), ``whole`` (all events), ``recent`` (the last
    ``last_n`` events) and ``decay`` (all events, weight halving every ``half_life`` events
    back).

    >>> policy_weights(5, 2, "now", past_weight=0.25).round(3).tolist()
    [0.1, 0.1, 0.267, 0.267, 0.267]
    >>> policy_weights(4, None, "decay", half_life=1).round(3).tolist()
    [0.067, 0.133, 0.267, 0.533]
    """
    if n_events < 1:
        raise ShiftError("the user has no events to build a profile from")
    w = np.zeros(n_events, dtype=np.float64)
    if policy == "whole":
        w[:] = 1.0
    elif policy == "recent":
        w[-max(1, int(last_n)) :] = 1.0
    elif policy == "decay":
        w[:] = _recency(n_events, n_events, half_life)
    elif policy in POLICIES:
        cp = _check_change_point(n_events, change_point)
        end = n_events if end is None else int(end)
        if not 0 <= start < cp < end <= n_events:
            raise ShiftError(
                f"segment bounds {start} … {cp} … {end} must satisfy 0 <= start < change point "
                f"< end <= {n_events} (the number of events)"
            )
        if policy == "before":
            w[start:cp] = 1.0
        elif policy == "after":
            w[cp:end] = 1.0
        else:
            # Segments mixed in fixed proportion, so a long past cannot outvote a short
            # present however many events it has; recency shapes the weights within them.
            recency = _recency(end, n_events, half_life)
            w[start:cp] = past_weight * recency[start:cp] / recency[start:cp].sum()
            w[cp:end] = recency[cp:end] / recency[cp:end].sum()
    else:
        raise ShiftError(
            f"unknown policy {policy!r}; choose one of {', '.join((*POLICIES, 'whole', 'recent', 'decay'))}"
        )
    return w / w.sum()


def _recency(end: int, n_events: int, half_life: float | None) -> np.ndarray:
    """Weight of each event: 1 at ``end - 1``, halving every ``half_life`` events back."""
    age = (end - 1 - np.arange(n_events)).astype(np.float64)
    if half_life is None:
        return np.ones(n_events)
    if half_life <= 0:
        raise ShiftError(f"half_life must be positive; got {half_life}")
    return np.exp2(-np.maximum(age, 0.0) / float(half_life))


def _check_change_point(n_events: int, change_point: int | None) -> int:
    if change_point is None:
        raise ShiftError("this policy needs a change point, and the user has none")
    cp = int(change_point)
    if not 0 < cp < n_events:
        raise ShiftError(
            f"change point {cp} is outside the user's history: it must leave events on both "
            f"sides (1 … {n_events - 1})"
        )
    return cp


class Recommender:
    """Top-K items for a weighted profile of a user's history.

    Parameters
    ----------
    collaborative_weight : weight of the co-occurrence score (scaled to [0, 1] per query)
        added to the cosine score; 0 gives a pure content recommender.
    past_weight : share kept by the pre-change segment in the ``now`` policy.
    n_neighbours : co-occurrence neighbours kept per item (item-kNN); None keeps them all.
    half_life : recency half-life (events) inside the ``now`` profile; None: no discount.

    Items 0-2 point along one axis and 3-5 along the other. A user who saw 0 and 1, then
    4 and 5, is recommended item 2 first before the change and item 3 first after it (seen
    items never come back):

    >>> rng = np.random.default_rng(0)
    >>> vectors = np.repeat(np.eye(2), 3, axis=0) + rng.normal(scale=0.1, size=(6, 2))
    >>> rec = Recommender(collaborative_weight=0.0).fit(vectors)
    >>> lists = rec.policy_lists(np.array([0, 1, 4, 5]), change_point=2, k=2)
    >>> lists["before"].tolist(), lists["after"].tolist()
    ([2, 3], [3, 2])
    """

    def __init__(
        self,
        collaborative_weight: float = DEFAULT_COLLABORATIVE_WEIGHT,
        past_weight: float = DEFAULT_PAST_WEIGHT,
        n_neighbours: int | None = DEFAULT_NEIGHBOURS,
        half_life: float | None = DEFAULT_HALF_LIFE,
    ) -> None:
        self.collaborative_weight = collaborative_weight
        self.past_weight = past_weight
        self.n_neighbours = n_neighbours
        self.half_life = half_life

    def fit(
        self,
        item_vectors: np.ndarray,
        item_idx: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
        item_keys: np.ndarray | None = None,
    ) -> Recommender:
        """Store the normalised item matrix and learn co-occurrence and popularity.

        ``item_idx`` and ``offsets`` are training events in CSR layout (as in
        :class:`core.store.EventArrays`); without them only the content score is used.
        ``item_keys`` (e.g. titles) marks catalogue duplicates: items sharing a key count as
        one item (MovieLens-100K lists some films twice under two ids).
        """
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise DataError(
                f"item vectors must be a non-empty (n_items, d) matrix; got shape {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise DataError("item vectors contain NaN or infinite values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.item_vectors_ = vectors / np.where(norms > 0, norms, 1.0)
        self.n_items_ = len(vectors)
        self.popularity_ = np.zeros(self.n_items_, dtype=np.int64)
        self.cooccurrence_ = None
        self.item_key_codes_ = None
        self.duplicate_items_ = np.empty(0, dtype=np.int64)
        if item_keys is not None:
            if len(item_keys) != self.n_items_:
                raise DataError(f"{len(item_keys)} item keys for {self.n_items_} items")
            codes = pd.factorize(pd.Series(item_keys, dtype=object))[0]
            # Only items whose key is shared need any work at query time (18 on MovieLens).
            self.duplicate_items_ = np.flatnonzero(np.bincount(codes)[codes] > 1)
            self.item_key_codes_ = codes if len(self.duplicate_items_) else None
        if item_idx is not None:
            self._fit_events(np.asarray(item_idx), np.asarray(offsets))
        return self

    def _fit_events(self, item_idx: np.ndarray, offsets: np.ndarray) -> None:
        if len(item_idx) and (item_idx.min() < 0 or item_idx.max() >= self.n_items_):
            raise DataError(
                f"event item indices must lie in [0, {self.n_items_}); the item "
                "matrix and the events come from different catalogues"
            )
        users = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        # Binary user x item matrix; X^T X counts users who saw both items, and dividing by
        # sqrt(n_i n_j) gives the cosine similarity of item-kNN collaborative filtering.
        x = sp.csr_matrix(
            (np.ones(len(item_idx), dtype=np.float32), (users, item_idx)),
            shape=(len(offsets) - 1, self.n_items_),
        )
        x.data[:] = 1.0  # csr_matrix sums duplicates; a re-watch still counts once
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel().astype(np.int64)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        inv = 1.0 / np.sqrt(np.maximum(self.popularity_, 1)).astype(np.float32)
        sim = (sp.diags(inv) @ co @ sp.diags(inv)).tocsr().astype(np.float32)
        self.cooccurrence_ = _keep_top_per_row(sim, self.n_neighbours)

    def scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Score of every item for the profile ``sum_t weights[t] * history[t]``."""
        self._check_fitted()
        history = np.asarray(history, dtype=np.int64)
        if len(history) == 0:
            raise ShiftError("cannot build a profile from an empty history")
        if history.min() < 0 or history.max() >= self.n_items_:
            raise DataError(
                f"history item indices must lie in [0, {self.n_items_}); got {history.min()} … {history.max()}"
            )
        w = (
            np.full(len(history), 1.0 / len(history))
            if weights is None
            else np.asarray(weights, dtype=np.float64)
        )
        profile = np.einsum("i,ij->j", w.astype(np.float32), self.item_vectors_[history])
        norm = np.linalg.norm(profile)
        score = _matvec(self.item_vectors_, profile / norm if norm > 0 else profile)
        if self.cooccurrence_ is not None and self.collaborative_weight:
            # Only the rows of the items in the history matter: slice them, then one
            # sparse product (a few hundred rows of at most n_neighbours entries each).
            rows, inverse = np.unique(history, return_inverse=True)
            row_weight = np.bincount(inverse, weights=w).astype(np.float32)
            collab = np.asarray(row_weight @ self.cooccurrence_[rows]).ravel()
            top = collab.max()
            if top > 0:
                score = score + self.collaborative_weight * collab / top
        return score.astype(np.float64)

    def recommend(
        self,
        history: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = 10,
        exclude: np.ndarray | None = None,
    ) -> np.ndarray:
        """Item indices of the top ``k`` items, never one in ``exclude`` (default: ``history``)."""
        score = self.scores(history, weights)
        return self.rank(score, history if exclude is None else exclude, k)

    def rank(self, score: np.ndarray, exclude: np.ndarray, k: int = 10) -> np.ndarray:
        """Top ``k`` of ``score`` leaving out ``exclude``; ties by popularity, then item_idx."""
        if k < 1:
            raise ShiftError(f"k must be at least 1; got {k}")
        self._check_fitted()
        score = np.array(score, dtype=np.float64)
        seen = np.asarray(exclude, dtype=np.int64)
        score[seen] = -np.inf
        codes, dup = self.item_key_codes_, self.duplicate_items_
        if codes is not None:  # a duplicate of a seen item counts as seen
            score[dup[np.isin(codes[dup], codes[seen])]] = -np.inf
        # lexsort: last key first, so score desc, then popularity desc, then item_idx asc.
        order = np.lexsort((np.arange(self.n_items_), -self.popularity_, -score))
        order = order[np.isfinite(score[order])]
        if codes is not None:  # one entry per key, its best-ranked item; at most len(dup) drop out
            head = order[: k + len(dup)]
            _, first = np.unique(codes[head], return_index=True)
            order = head[np.sort(first)]
        return order[:k]

    def policy_weights(
        self, n_events: int, change_point: int, policy: str, start: int = 0, end: int | None = None
    ) -> np.ndarray:
        """:func:`policy_weights` with this recommender's past weight and half-life."""
        return policy_weights(
            n_events, change_point, policy, self.past_weight, start=start, end=end, half_life=self.half_life
        )

    def policy_lists(
        self, history: np.ndarray, change_point: int, k: int = 10, start: int = 0, end: int | None = None
    ) -> dict[str, np.ndarray]:
        """The ``before``, ``after`` and ``now`` lists of the segments ``[start, change_point)``
        and ``[change_point, end)``; none contains an item of ``history``."""
        history = np.asarray(history, dtype=np.int64)
        return {
            policy: self.recommend(
                history, self.policy_weights(len(history), change_point, policy, start, end), k=k
            )
            for policy in POLICIES
        }

    def follow_shift(
        self, score: np.ndarray, exclude: np.ndarray, rising: np.ndarray, target_share: float, k: int = 10
    ) -> np.ndarray:
        """Top ``k`` of ``score`` with at least ``ceil(target_share * k)`` items where ``rising``
        (a boolean mask over items) is True, or as many as there are.

        Item-kNN scores lean towards the items the old segment co-occurs with, so a list built
        from the after segment can miss the categories that rose (user 620 of MovieLens-100K:
        Children's 2% -> 73%, none of ten After items). Like calibrated recommendations
        (Steck, RecSys 2018), the list is made to carry the after segment's mix: the
        lowest-scored other items give way to the best-scored rising ones, and the list keeps
        score order. bench/lift.py measures what this costs in NDCG@10.
        """
        top = self.rank(score, exclude, k)
        rising = np.asarray(rising, dtype=bool)
        need = min(len(top), int(np.ceil(target_share * len(top) - 1e-9))) if np.isfinite(target_share) else 0
        missing = need - int(rising[top].sum())
        if missing <= 0:
            return top
        only_rising = np.where(rising, np.asarray(score, dtype=np.float64), -np.inf)
        extra = self.rank(only_rising, np.concatenate([np.asarray(exclude, dtype=np.int64), top]), missing)
        others = top[~rising[top]]
        keep = np.setdiff1d(top, others[len(others) - len(extra) :]) if len(extra) else top
        merged = np.concatenate([keep, extra])
        # The same order as rank(): score desc, then popularity desc, then item_idx.
        return merged[np.lexsort((merged, -self.popularity_[merged], -np.asarray(score)[merged]))]

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_vectors_"):
            raise ShiftError("Recommender is not fitted; call fit(item_vectors, ...) first")


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector``, single-threaded for catalogues up to a few million cells.

    Multi-threaded BLAS spin-waits when the cores are busy (the dashboard's other sessions,
    the encoder): measured 3-17 ms per MovieLens-sized product against 0.4 ms for einsum's
    plain loop. Big catalogues still go to BLAS, where threads pay off.
    """
    if matrix.size <= 20_000_000:
        return np.einsum("ij,j->i", matrix, vector)
    return matrix @ vector


def _keep_top_per_row(matrix: sp.csr_matrix, k: int | None) -> sp.csr_matrix:
    """The ``k`` largest entries of each row (ties: lower column first); None keeps all."""
    if k is None:
        return matrix
    matrix = matrix.tocsr()
    matrix.sort_indices()
    indptr, data = matrix.indptr, matrix.data
    # Per row longer than k: the k-th largest value by partition (linear), every entry above
    # it, and of the entries equal to it the lowest columns (columns ascend within a row), as
    # a stable sort of -value would keep. One lexsort of every entry by (row, -value, column)
    # took 0.5 s of the dashboard's first Recommendations page on MovieLens-100K's 2 M
    # co-occurrences, a stable argsort per row 0.1 s.
    keep = np.ones(len(data), dtype=bool)
    for r in np.flatnonzero(np.diff(indptr) > k):
        lo, hi = indptr[r], indptr[r + 1]
        row = data[lo:hi]
        kth = np.partition(row, len(row) - k)[len(row) - k]
        mine = row > kth
        mine[np.flatnonzero(row == kth)[: k - int(mine.sum())]] = True
        keep[lo:hi] = mine
    row = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
    return sp.csr_matrix((data[keep], (row[keep], matrix.indices[keep])), shape=matrix.shape)


@dataclass(frozen=True)
class UserRecommendations:
    """One user's lists around one change point, as tables with titles."""

    user_id: str
    change_point: int
    change_point_source: str  # "given" or the detector's name
    lists: dict[str, pd.DataFrame]  # policy -> rank, item_idx, item_id, title, categories, score
    # The segments the lists were built from: [segment_start, change_point) and
    # [change_point, segment_end).
    segment_start: int = 0
    segment_end: int = -1
    # Share of each list's items in the rising categories (NaN when none rose or not asked),
    # and the same share among the events the user consumed after the change.
    rising_share: dict[str, float] = field(default_factory=dict)
    consumed_rising_share: float = float("nan")
    explanation: ShiftExplanation | None = None


def recommendation_table(
    items: pd.DataFrame, item_idx: np.ndarray, scores: np.ndarray | None = None
) -> pd.DataFrame:
    """A list as a table: rank, item_idx, item_id, title, categories (and score when given)."""
    rows = items.iloc[np.asarray(item_idx, dtype=np.int64)]
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "item_idx": rows["item_idx"].to_numpy(),
            "item_id": rows["item_id"].to_numpy(),
            "title": rows["title"].to_numpy(),
            "categories": [", ".join(c) if c is not None else "" for c in rows["categories"]],
        }
    )
    if scores is not None:
        table["score"] = np.asarray(scores)[np.asarray(item_idx, dtype=np.int64)]
    return table


def fit_recommender(
    item_vectors: np.ndarray, events: EventArrays, item_keys: np.ndarray | None = None, **params
) -> Recommender:
    """A recommender over a whole population (``core.artefacts.recommender`` loads a dataset's)."""
    return Recommender(**params).fit(item_vectors, events.item_idx, events.offsets, item_keys=item_keys)


def recommend_for_user(
    recommender: Recommender,
    items: pd.DataFrame,
    user_id: str,
    history: np.ndarray,
    change_point: int,
    k: int = 10,
    change_point_source: str = "given",
    *,
    start: int = 0,
    end: int | None = None,
    rising: np.ndarray | None = None,
    target_share: float = float("nan"),
) -> UserRecommendations:
    """Before/after/now tables for a user whose history (item indices, in order) is given.

    The lists come from the segments ``[start, change_point)`` and ``[change_point, end)``.
    With ``rising`` (a boolean mask over items: in a category that rose), each list's share
    of rising items is measured and the After list is made to hold at least
    ``target_share`` of them (:meth:`Recommender.follow_shift`).
    """
    history = np.asarray(history, dtype=np.int64)
    end = len(history) if end is None else int(end)
    lists, shares = {}, {}
    for policy in POLICIES:
        w = recommender.policy_weights(len(history), change_point, policy, start, end)
        score = recommender.scores(history, w)
        if policy == "after" and rising is not None:
            top = recommender.follow_shift(score, history, rising, target_share, k=k)
        else:
            top = recommender.rank(score, history, k=k)
        lists[policy] = recommendation_table(items, top, score)
        if rising is not None and len(top):
            shares[policy] = float(np.asarray(rising)[top].mean())
    return UserRecommendations(
        str(user_id), int(change_point), change_point_source, lists, int(start), end, shares, target_share
    )


def recommend_around_change(
    recommender: Recommender,
    explainer: ShiftExplainer,
    items: pd.DataFrame,
    user_id: str,
    history: np.ndarray,
    change_points: list[int] | np.ndarray,
    change_point: int | None = None,
    k: int = 10,
    change_point_source: str = "given",
    follow_shift: bool = True,
) -> UserRecommendations:
    """Explanation and Before/After/Now lists of one change, from the same segments.

    ``change_points`` are all the user's change points; ``change_point`` the one to act on
    (default: the latest; it need not be among them). The segment before it starts at the
    previous change point and the one after it ends at the next; the explanation compares
    them, and the After list follows the categories (or clusters) that rose unless
    ``follow_shift`` is False. The dashboard and the CLI call this one function.
    """
    history = np.asarray(history, dtype=np.int64)
    if change_point is None:
        inside = [int(c) for c in change_points if 0 < int(c) < len(history)]
        if not inside:
            raise ShiftError(f"user {user_id!r} has no change point inside their {len(history)} events")
        change_point = max(inside)
    start, end = neighbouring_segments(len(history), change_points, change_point)
    explanation = explainer.explain(history, change_point, start, end)
    rising = explainer.items_in(explanation.rising_categories)
    result = recommend_for_user(
        recommender,
        items,
        user_id,
        history,
        change_point,
        k,
        change_point_source,
        start=start,
        end=end,
        rising=rising,
        target_share=explanation.after_rising_share if follow_shift else float("nan"),
    )
    return dataclasses.replace(
        result, consumed_rising_share=explanation.after_rising_share, explanation=explanation
    )
