"""Isolation forest (scikit-learn) over the window changes Δf of the whole population.

Δf vectors (PCA-reduced for speed) of all users train one forest; a Δf that is easy to
isolate is an unusual change. The score is the forest's anomaly score, −score_samples
(about 0.5 for ordinary points, approaching 1 for anomalies). Localisation is coarse:
the score saturates for every large Δf, so a peak may land anywhere in the window around
the change (the benchmark reports its location error).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> stable = rng.normal(size=(1200, 4))  # 20 users of 60 events with no change
>>> x = np.vstack([stable, rng.normal(size=(60, 4)) + [5, 0, 0, 0], rng.normal(size=(60, 4))])
>>> offsets = np.append(np.arange(0, 1201, 60), 1320)
>>> cp = IsolationForestShift(h=10, n_components=2, random_state=0).fit(x, offsets).predict(0.7)
>>> cp.user, cp.event_index
(array([20]), array([60]))
"""

from __future__ import annotations

import numpy as np

from core.detectors.base import Detector
from core.detectors.windows import window_delta
from core.errors import DataError


class IsolationForestShift(Detector):
    name = "isolation_forest"

    def __init__(
        self, h: int = 20, n_components: int = 16, max_train: int = 50_000, random_state: int = 0
    ) -> None:
        self.h = h
        self.n_components = n_components
        self.max_train = max_train
        self.random_state = random_state

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        from sklearn.decomposition import PCA
        from sklearn.ensemble import IsolationForest

        delta = window_delta(vectors, offsets, self.h)
        delta = delta[~np.isnan(delta[:, 0])]
        if len(delta) < 2:
            raise DataError(f"{self.name}: no user has the {2 * self.h} events two windows need")
        rng = np.random.default_rng(self.random_state)
        if len(delta) > self.max_train:
            delta = delta[rng.choice(len(delta), self.max_train, replace=False)]
        k = min(self.n_components, delta.shape[1], len(delta))
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(delta)
        self.forest_ = IsolationForest(n_estimators=200, random_state=self.random_state).fit(
            self.pca_.transform(delta)
        )

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        delta = window_delta(vectors, offsets, self.h)
        ok = ~np.isnan(delta[:, 0])
        score = np.full(len(delta), np.nan)
        if ok.any():
            score[ok] = -self.forest_.score_samples(self.pca_.transform(delta[ok]))
        return score
