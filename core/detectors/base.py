"""The detector interface: fit once over a population, then a cheap ``predict(threshold)``.

Modelled on ruptures (``fit`` does the expensive work, ``predict`` is cheap enough for a
slider) and scikit-learn (constructors store arguments only; learned state ends in ``_``).
Input is a population in CSR layout: ``vectors`` (N, d), one feature vector per event in
event order, and ``offsets`` (U+1,), user ``k`` owning rows ``offsets[k]:offsets[k+1]``.

Most detectors turn a per-event score signal into change points by peak picking (a peak
is the largest score within ``window`` events either side), so a threshold only filters a
fixed set of peaks. Detectors whose output depends on the threshold in other ways (a
segmentation penalty, an online detector that resets) override :meth:`detect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.detectors.peaks import candidate_peaks
from core.errors import DataError


@dataclass(frozen=True)
class ChangePoints:
    """Change points of a population: parallel arrays, sorted by (user, event_index).

    ``user`` is the user's position in the population, ``event_index`` the index of the
    first event after the change within that user's history, ``alert_index`` the event at
    which the detector could first have known (the after-window filled, or an online alarm).
    """

    user: np.ndarray
    event_index: np.ndarray
    score: np.ndarray
    alert_index: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def empty(cls) -> ChangePoints:
        z = np.empty(0, np.int64)
        return cls(z, z, np.empty(0), z)

    def where(self, mask: np.ndarray) -> ChangePoints:
        return ChangePoints(self.user[mask], self.event_index[mask], self.score[mask], self.alert_index[mask])


def check_population(vectors: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a CSR population; return float arrays ready for the detectors."""
    vectors = np.asarray(vectors, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if vectors.ndim != 2:
        raise DataError(f"vectors must be a 2-D array (events x dimensions), got shape {vectors.shape}")
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(vectors):
        raise DataError(f"offsets must start at 0 and end at the number of events ({len(vectors)})")
    if np.any(np.diff(offsets) < 0):
        raise DataError("offsets must be non-decreasing")
    if not np.all(np.isfinite(vectors)):
        raise DataError("vectors contain NaN or infinite values")
    return vectors, offsets


def positions(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every event, its user's position and its index within that user's history."""
    counts = np.diff(offsets)
    user = np.repeat(np.arange(len(counts)), counts)
    return user, np.arange(int(offsets[-1])) - offsets[user]


class Detector:
    """Base class. Subclasses implement :meth:`score_signal` (and may learn population state
    in :meth:`_fit_population`); ``h`` is the window length and the peak-suppression window.
    """

    name = "detector"
    features = "embedding"  # which per-event vectors it reads: "embedding" or "genres"
    online = False
    peak_based = True  # change points = peaks of scores_ filtered by the threshold
    h = 20

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        """Learn population-level state (a model, a projection); none by default."""

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Per-event score (N,), NaN where undefined; larger means more likely a change."""
        raise NotImplementedError

    def fit(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None = None) -> Detector:
        """Learn population state from this population, then score it; returns self."""
        vectors, offsets = check_population(vectors, offsets)
        if self.h < 1:
            raise DataError(f"{self.name}: window h must be >= 1, got {self.h}")
        self._fit_population(vectors, offsets, ratings)
        self.offsets_ = offsets
        self.n_events_ = int(offsets[-1])
        self.scores_ = self.score_signal(vectors, offsets)
        self.candidates_ = self._candidates(self.scores_, offsets)
        return self

    def _candidates(self, scores: np.ndarray, offsets: np.ndarray) -> ChangePoints:
        peaks = candidate_peaks(scores, offsets, self.h)
        user, index = positions(offsets)
        return ChangePoints(user[peaks], index[peaks], scores[peaks], index[peaks] + self.h - 1)

    def predict(self, threshold: float) -> ChangePoints:
        """Change points of the fitted population whose score reaches ``threshold``."""
        if not hasattr(self, "candidates_"):
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        return self.candidates_.where(self.candidates_.score >= threshold)

    def detect(
        self, vectors: np.ndarray, offsets: np.ndarray, thresholds: Sequence[float]
    ) -> list[ChangePoints]:
        """Change points of another population (the fitted state is reused) at each threshold."""
        vectors, offsets = check_population(vectors, offsets)
        cand = self._candidates(self.score_signal(vectors, offsets), offsets)
        return [cand.where(cand.score >= t) for t in thresholds]

    def null_alarm_scores(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray | None:
        """Scores of every candidate alarm on a null population: the alarm fires at threshold
        t exactly when its score >= t. None for detectors where that does not hold."""
        vectors, offsets = check_population(vectors, offsets)
        return self._candidates(self.score_signal(vectors, offsets), offsets).score

    def threshold_grid(self) -> np.ndarray:
        """Thresholds the evaluation sweeps for precision-recall curves (from the fitted scores)."""
        s = self.candidates_.score
        if len(s) == 0:
            return np.array([0.0])
        return np.unique(np.quantile(s, np.linspace(0.0, 1.0, 81)))
