"""What changed at a change point: category shares before and after, and typical items.

A change is explained by its neighbouring segments: the one before it starts at the previous
change point (or the first event) and the one after it ends at the next change point (or the
last event). Comparing everything before with everything after would mix in the user's other
shifts: a Thriller -> Children's change sandwiched between two others can read as
"Comedy -> Children's" across the whole history.

The share of a category in a segment is the fraction of the segment's events whose item
carries it (an item with several genres counts once for each, so shares need not sum to 1).
Datasets without categories get named clusters instead: k-means over the item embeddings
(fixed ``random_state``), each cluster named after its most central titles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.errors import DataError, ShiftError


@dataclass(frozen=True)
class ShiftExplanation:
    """The explanation of one change point in one user's history."""

    change_point: int
    n_before: int
    n_after: int
    # category, count_before, count_after, share_before, share_after, change (share points);
    # sorted by change, the biggest rise first and the biggest fall last.
    categories: pd.DataFrame
    representative_before: pd.DataFrame  # item_idx, title, similarity to the segment mean
    representative_after: pd.DataFrame
    summary: str  # e.g. "Horror 45% → 5%, Sci-Fi 10% → 60%"
    category_source: str  # "categories" or "clusters"
    # The two segments compared: events [segment_start, change_point) and
    # [change_point, segment_end) of the history.
    segment_start: int = 0
    segment_end: int = -1
    # Categories whose share rose by at least the explainer's min_change, biggest rise first,
    # and the share of the after-segment's events whose item carries one of them (what the
    # user actually consumed after the change; NaN when no category rose).
    rising_categories: tuple[str, ...] = field(default_factory=tuple)
    after_rising_share: float = float("nan")

    @property
    def rose(self) -> pd.DataFrame:
        return self.categories[self.categories["change"] > 0]

    @property
    def fell(self) -> pd.DataFrame:
        fell = self.categories[self.categories["change"] < 0]
        return fell.sort_values(["change", "category"], ignore_index=True)


@dataclass(frozen=True)
class UserShifts:
    """A user's history cut at its change points, and what changed at each of them."""

    segments: pd.DataFrame  # segment, start, end (exclusive), n_events; in history order
    explanations: list[ShiftExplanation]  # one per change point, in history order

    @property
    def change_points(self) -> list[int]:
        return [e.change_point for e in self.explanations]

    def at(self, change_point: int) -> ShiftExplanation:
        """The explanation of the change at ``change_point``."""
        for e in self.explanations:
            if e.change_point == int(change_point):
                return e
        raise ShiftError(f"{change_point} is not one of the change points {self.change_points}")


def segment_bounds(n_events: int, change_points: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each segment of a history of ``n_events`` cut at ``change_points``.

    Points outside ``1 … n_events - 1`` (which would leave a side empty) and repeats are dropped.

    >>> segment_bounds(10, [7, 3, 3, 0])
    [(0, 3), (3, 7), (7, 10)]
    """
    cuts = sorted({int(c) for c in change_points if 0 < int(c) < n_events})
    edges = [0, *cuts, int(n_events)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def neighbouring_segments(n_events: int, change_points: Sequence[int], change_point: int) -> tuple[int, int]:
    """``(start, end)`` around ``change_point``: the previous change point (or 0) and the next
    one (or ``n_events``); ``change_point`` need not be one of ``change_points``.

    >>> neighbouring_segments(10, [3, 7], 7)
    (3, 10)
    """
    cp = int(change_point)
    if not 0 < cp < n_events:
        raise ShiftError(f"change point {cp} must leave events on both sides (1 … {n_events - 1})")
    cuts = [int(c) for c in change_points if 0 < int(c) < n_events]
    return max([c for c in cuts if c < cp], default=0), min(
        [c for c in cuts if c > cp], default=int(n_events)
    )


class ShiftExplainer:
    """Explains change points; fit once per dataset, then ``explain`` any user cheaply.

    Parameters
    ----------
    source : ``"auto"`` (the items' categories when any item has one, else clusters),
        ``"categories"`` or ``"clusters"``.
    n_clusters : k-means clusters for datasets without categories.
    n_representative : items listed per segment.
    min_change : share change (0-1) a category needs to appear in the summary.

    >>> items = pd.DataFrame({"title": ["Alien", "Psycho", "Heat", "Up"],
    ...                       "categories": [["Horror"], ["Horror"], ["Crime"], ["Family"]]})
    >>> vectors = np.eye(4, dtype=np.float32)
    >>> ex = ShiftExplainer().fit(items, vectors).explain(np.array([0, 1, 0, 3, 3, 2]), 3)
    >>> ex.summary
    'Horror 100% → 0%, Family 0% → 67%, Crime 0% → 33%'
    """

    def __init__(
        self,
        source: str = "auto",
        n_clusters: int = 12,
        n_representative: int = 3,
        min_change: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.source = source
        self.n_clusters = n_clusters
        self.n_representative = n_representative
        self.min_change = min_change
        self.random_state = random_state

    def fit(self, items: pd.DataFrame, item_vectors: np.ndarray) -> ShiftExplainer:
        """``items`` in ``item_idx`` order (title, categories); ``item_vectors`` row i = item i."""
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(items):
            raise DataError(f"item vectors have shape {vectors.shape} but there are {len(items)} items")
        if self.source not in ("auto", "categories", "clusters"):
            raise ShiftError(f"unknown category source {self.source!r}; use auto, categories or clusters")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.item_vectors_ = vectors / np.where(norms > 0, norms, 1.0)
        self.titles_ = items["title"].astype(str).to_numpy()
        raw = items["categories"] if "categories" in items else pd.Series([None] * len(items))
        item_categories = [list(c) if c is not None else [] for c in raw]
        has_any = any(item_categories)
        if self.source == "categories" and not has_any:
            raise DataError("the items have no categories; use source='clusters'")
        self.category_source_ = (
            "categories" if self.source == "categories" or (self.source == "auto" and has_any) else "clusters"
        )
        if self.category_source_ == "clusters":
            item_categories = self._cluster_names()
        self.category_names_ = np.array(sorted({c for cats in item_categories for c in cats}), dtype=object)
        column = {c: j for j, c in enumerate(self.category_names_)}
        rows = np.repeat(np.arange(len(item_categories)), [len(c) for c in item_categories])
        cols = [column[c] for cats in item_categories for c in cats]
        # Item x category indicator: a segment's category counts are one sparse product.
        self.indicator_ = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float64), (rows, cols)),
            shape=(len(item_categories), len(self.category_names_)),
        )
        return self

    def _cluster_names(self) -> list[list[str]]:
        from sklearn.cluster import KMeans

        n_clusters = max(1, min(self.n_clusters, len(self.item_vectors_)))
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=self.random_state).fit(self.item_vectors_)
        self.cluster_labels_ = km.labels_
        names = []
        for c in range(n_clusters):
            members = np.flatnonzero(km.labels_ == c)
            dist = np.linalg.norm(self.item_vectors_[members] - km.cluster_centers_[c], axis=1)
            central = members[np.lexsort((members, dist))[:2]]
            names.append(" / ".join(self.titles_[central]))
        self.cluster_names_ = names
        return [[names[label]] for label in km.labels_]

    def explain(
        self, history: np.ndarray, change_point: int, start: int = 0, end: int | None = None
    ) -> ShiftExplanation:
        """Explain the change at ``change_point`` (index of the first event after it) by the
        events ``[start, change_point)`` against ``[change_point, end)``; the defaults compare
        the whole history. :meth:`explain_changes` passes the neighbouring change points."""
        self._check_fitted()
        history = np.asarray(history, dtype=np.int64)
        cp = int(change_point)
        end = len(history) if end is None else int(end)
        if not 0 < cp < len(history):
            raise ShiftError(f"change point {cp} must leave events on both sides (1 … {len(history) - 1})")
        if not 0 <= start < cp < end <= len(history):
            raise ShiftError(
                f"segment bounds {start} … {cp} … {end} must satisfy 0 <= start < change point < end "
                f"<= {len(history)} (the number of events)"
            )
        before, after = history[start:cp], history[cp:end]
        counts_before = self._category_counts(before)
        counts_after = self._category_counts(after)
        share_before, share_after = counts_before / len(before), counts_after / len(after)
        change = share_after - share_before
        # Seen categories, biggest rise first; names are sorted, so the index breaks ties
        # alphabetically. Plain numpy here: pandas filtering cost more than everything else.
        seen = np.flatnonzero((counts_before > 0) | (counts_after > 0))
        order = seen[np.lexsort((seen, -change[seen]))]
        table = pd.DataFrame(
            {
                "category": self.category_names_[order],
                "count_before": counts_before[order].astype(np.int64),
                "count_after": counts_after[order].astype(np.int64),
                "share_before": share_before[order],
                "share_after": share_after[order],
                "change": change[order],
            }
        )
        falls = seen[np.lexsort((seen, change[seen]))]  # biggest fall first, ties alphabetical
        fell = [j for j in falls if change[j] <= -self.min_change][:2]
        rose = [j for j in order if change[j] >= self.min_change][:2]
        if fell or rose:
            summary = ", ".join(
                f"{self.category_names_[j]} {share_before[j]:.0%} → {share_after[j]:.0%}" for j in fell + rose
            )
        else:
            summary = f"no category share changed by {self.min_change:.0%} or more"
        rising = tuple(self.category_names_[j] for j in order if change[j] >= self.min_change)
        return ShiftExplanation(
            change_point=cp,
            n_before=len(before),
            n_after=len(after),
            categories=table,
            representative_before=self._representative(before),
            representative_after=self._representative(after),
            summary=summary,
            category_source=self.category_source_,
            segment_start=int(start),
            segment_end=end,
            rising_categories=rising,
            after_rising_share=self.share_in(after, rising),
        )

    def explain_changes(self, history: np.ndarray, change_points: Sequence[int]) -> UserShifts:
        """The user's segments and one explanation per change point, each by its neighbours.

        ``change_points`` are indices of first events after a change, in any order; repeats
        and points that leave no event on one side are dropped.
        """
        history = np.asarray(history, dtype=np.int64)
        bounds = segment_bounds(len(history), change_points)
        segments = pd.DataFrame(
            {
                "segment": np.arange(len(bounds), dtype=np.int64),
                "start": np.array([b[0] for b in bounds], dtype=np.int64),
                "end": np.array([b[1] for b in bounds], dtype=np.int64),
            }
        )
        segments["n_events"] = segments["end"] - segments["start"]
        explanations = [
            self.explain(history, before_end, before_start, after_end)
            for (before_start, before_end), (_, after_end) in zip(bounds, bounds[1:], strict=False)
        ]
        return UserShifts(segments, explanations)

    def items_in(self, categories: Sequence[str]) -> np.ndarray:
        """Boolean mask over items: True where the item carries one of ``categories``."""
        self._check_fitted()
        wanted = np.isin(self.category_names_, np.asarray(list(categories), dtype=object))
        return np.asarray(self.indicator_[:, np.flatnonzero(wanted)].sum(axis=1)).ravel() > 0

    def share_in(self, item_idx: np.ndarray, categories: Sequence[str]) -> float:
        """Share of ``item_idx`` (events or a list; repeats count) carrying one of
        ``categories``; NaN when either is empty."""
        item_idx = np.asarray(item_idx, dtype=np.int64)
        if len(item_idx) == 0 or len(categories) == 0:
            return float("nan")
        return float(self.items_in(categories)[item_idx].mean())

    def _check_fitted(self) -> None:
        if not hasattr(self, "indicator_"):
            raise ShiftError("ShiftExplainer is not fitted; call fit(items, item_vectors) first")

    def _category_counts(self, segment: np.ndarray) -> np.ndarray:
        per_item = np.bincount(segment, minlength=self.indicator_.shape[0]).astype(np.float64)
        return np.asarray(self.indicator_.T @ per_item).ravel()

    def _representative(self, segment: np.ndarray) -> pd.DataFrame:
        distinct = np.unique(segment)
        mean = self.item_vectors_[segment].mean(axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        similarity = self.item_vectors_[distinct] @ mean
        order = np.lexsort((distinct, -similarity))
        # Catalogue duplicates (one film under two ids) would show the same title twice.
        _, first = np.unique(self.titles_[distinct[order]], return_index=True)
        order = order[np.sort(first)][: self.n_representative]
        return pd.DataFrame(
            {
                "item_idx": distinct[order],
                "title": self.titles_[distinct[order]],
                "similarity": similarity[order].astype(np.float64),
            }
        )
