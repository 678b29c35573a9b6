"""Two-window rule on the full feature vector: how far the mean of the next h events lies
from the mean of the previous h events.

``metric="l2"`` scores ||Δf||; with ``standardize`` it is divided by the noise level a
window difference has for that user, sqrt(2 var_u / h) (var_u = the user's total variance
of event vectors), so scores are comparable between focused and eclectic users and one
threshold serves the population. ``metric="cosine"`` scores the cosine distance of the
two window means after centring on the population mean (the shared text template makes
raw embeddings nearly parallel).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = np.eye(8)[0], np.eye(8)[1]
>>> x = np.vstack([a + 0.3 * rng.normal(size=(40, 8)), b + 0.3 * rng.normal(size=(40, 8))])
>>> det = TwoWindow(h=10).fit(x, np.array([0, 80]))
>>> det.predict(threshold=2.0).event_index
array([40])
"""

from __future__ import annotations

import numpy as np

from core.detectors.base import Detector
from core.detectors.windows import user_variance, window_delta, window_means
from core.errors import ShiftError

METRICS = ("l2", "cosine")


class TwoWindow(Detector):
    name = "two_window"

    def __init__(self, h: int = 20, metric: str = "l2", standardize: bool = True) -> None:
        self.h = h
        self.metric = metric
        self.standardize = standardize

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        if self.metric not in METRICS:
            raise ShiftError(f"{self.name}: metric must be one of {METRICS}, got {self.metric!r}")
        self.center_ = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1])

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            before, after = window_means(vectors - self.center_, offsets, self.h)
            norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
            return 1.0 - (before * after).sum(axis=1) / np.maximum(norms, 1e-12)
        score = np.linalg.norm(window_delta(vectors, offsets, self.h), axis=1)
        if self.standardize:
            noise = np.sqrt(2.0 * user_variance(vectors, offsets) / self.h)
            score = score / np.maximum(noise, 1e-12)
        return score


class GenreHistogram(TwoWindow):
    """The same rule on genre histograms (each item's categories, weights summing to 1):
    the baseline that uses no language model."""

    name = "genre_histogram"
    features = "genres"
