"""Every quality metric of the project, in one place.

- change points: one-to-one matching within ±M events (:func:`match_change_points`),
  counts, precision/recall/F1, location errors and alert delays accumulated over users
  (:class:`MatchCounts`), false alarms per 1,000 events;
- recommendations: Recall@k and NDCG@k with binary relevance;
- comparisons: the relative difference of two paired means with a paired bootstrap
  interval (users resampled).

The detector benchmark, the planted-truth scoring of the Evaluation page and the lift
benchmark all score through these functions, so the three speak the same precision,
recall and delay.

>>> match_change_points([10, 50], [12, 49, 80], margin=5)
[(10, 12), (50, 49)]
>>> precision_recall_f1(tp=2, fp=1, fn=0)
(0.6666666666666666, 1.0, 0.8)
>>> counts = MatchCounts().add([20], [22, 70], [41, 89], margin=10)
>>> counts.tp, counts.fp, counts.fn, counts.location_errors, counts.alert_delays
(1, 1, 0, [2], [21])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def match_change_points(true: Sequence[int], pred: Sequence[int], margin: int) -> list[tuple[int, int]]:
    """One-to-one matching of true and predicted change points within ±``margin`` events.

    Greedy in time order, which is maximal when every tolerance window has the same width.
    """
    t, p = sorted(int(x) for x in true), sorted(int(x) for x in pred)
    pairs, j = [], 0
    for x in t:
        while j < len(p) and p[j] < x - margin:
            j += 1
        if j < len(p) and p[j] <= x + margin:
            pairs.append((x, p[j]))
            j += 1
    return pairs


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; precision is 1 when nothing was predicted (no wrong alarm)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values (a detector that matched nothing has no delay)."""
    return float(np.median(values)) if len(values) else float("nan")


def false_alarms_per_1000(alarms: int, events: int) -> float:
    """Alarms per 1,000 events; NaN when there were no events to raise them on."""
    return 1000.0 * alarms / events if events else float("nan")


@dataclass
class MatchCounts:
    """Matching totals over users: true/false positives, misses, and for each matched pair
    its location error (|detected - true|) and alert delay (alert event - true change)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    location_errors: list[int] = field(default_factory=list)
    alert_delays: list[int] = field(default_factory=list)

    def add(self, true: Sequence[int], pred: Sequence[int], alert: Sequence[int], margin: int) -> MatchCounts:
        """Add one user's true change points and detections (``alert[i]`` belongs to
        ``pred[i]``); returns self."""
        pred = [int(x) for x in pred]
        alert_of = dict(zip(pred, (int(a) for a in alert), strict=True))
        pairs = match_change_points(true, pred, margin)
        self.tp += len(pairs)
        self.fp += len(pred) - len(pairs)
        self.fn += len(true) - len(pairs)
        self.location_errors += [abs(p - t) for t, p in pairs]
        self.alert_delays += [alert_of[p] - t for t, p in pairs]
        return self

    def precision_recall_f1(self) -> tuple[float, float, float]:
        return precision_recall_f1(self.tp, self.fp, self.fn)


def recall_at_k(top: np.ndarray, relevant: np.ndarray) -> float:
    """Share of the relevant items found in ``top``.

    >>> recall_at_k(np.array([3, 1, 7]), np.array([1, 2, 3, 4]))
    0.5
    """
    return float(np.isin(top, relevant).sum() / len(relevant))


def ndcg_at_k(top: np.ndarray, relevant: np.ndarray) -> float:
    """Normalised discounted cumulative gain of ``top`` with binary relevance; the ideal DCG
    is that of min(len(top), len(relevant)) hits.

    >>> round(ndcg_at_k(np.array([9, 1]), np.array([1])), 4)
    0.6309
    """
    gains = np.isin(top, relevant) / np.log2(np.arange(2, len(top) + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(len(top), len(relevant)) + 2))).sum()
    return float(gains.sum() / ideal)


def paired_relative_ci(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 2000, random_state: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """mean(a)/mean(b) - 1 and its paired bootstrap percentile interval (users resampled)."""
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b) and b.mean() > 0:
        # Identical per-user scores (e.g. a policy that falls back to its baseline): every
        # resample differs by exactly 0, where the bootstrap would report NaN (0/0 resamples).
        return 0.0, 0.0, 0.0

    def relative(x, y, axis=-1):
        return x.mean(axis=axis) / y.mean(axis=axis) - 1.0

    # A resample whose baseline mean is 0 gives an infinite ratio; that is the honest answer
    # (the interval reaches infinity), so numpy's warnings about it are silenced.
    with np.errstate(divide="ignore", invalid="ignore"):
        res = bootstrap(
            (a, b),
            relative,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(random_state),
        )
    return float(relative(a, b)), float(res.confidence_interval.low), float(res.confidence_interval.high)
