"""A linear interest model r ≈ wᵀf + b fitted on ratings across the
population, and a shift wherever the window change of the features moves the predicted
interest: score |wᵀ(f_after − f_before)| (the document's |r_u − r_{u_h}| > ε).

w comes from scikit-learn's RidgeCV. Ratings are centred per user first (``center_users``)
so that w learns taste (which items a user likes more than their own average) rather than
how generous a rater is. A single direction misses shifts orthogonal to w; the full-vector
two-window rule exists for those.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.vstack([rng.normal(size=(40, 4)) + [2, 0, 0, 0], rng.normal(size=(40, 4)) - [2, 0, 0, 0]])
>>> r = x[:, 0] + 0.1 * rng.normal(size=80)  # ratings follow the first feature
>>> LinearInterestRule(h=10, center_users=False).fit(x, np.array([0, 80]), r).predict(2.0).event_index
array([40])
"""

from __future__ import annotations

import numpy as np

from core.detectors.base import Detector
from core.detectors.windows import window_delta
from core.errors import DataError
from core.user_events import UserEvents


class LinearInterestRule(Detector):
    name = "linear"

    def __init__(
        self, h: int = 20, center_users: bool = True, max_train: int = 20_000, random_state: int = 0
    ) -> None:
        self.h = h
        self.center_users = center_users
        self.max_train = max_train
        self.random_state = random_state

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        from sklearn.linear_model import RidgeCV

        if ratings is None or not np.any(np.isfinite(ratings)):
            raise DataError(f"{self.name}: the linear interest model needs ratings, and this log has none")
        r = np.asarray(ratings, dtype=np.float64)
        if len(r) != len(vectors):
            raise DataError(f"{self.name}: {len(r)} ratings for {len(vectors)} events")
        if self.center_users:
            user = UserEvents(offsets).event_user
            ok = np.isfinite(r)
            sums = np.bincount(user[ok], r[ok], minlength=len(offsets) - 1)
            counts = np.bincount(user[ok], minlength=len(offsets) - 1)
            r = r - (sums / np.maximum(counts, 1))[user]
        rows = np.flatnonzero(np.isfinite(r))
        if len(rows) > self.max_train:
            # RidgeCV's leave-one-out path costs O(n d^2) beyond BLAS; 20,000 ratings pin down
            # a 384-d w as well as 100,000 do, in a fraction of the time.
            rows = np.random.default_rng(self.random_state).choice(rows, self.max_train, replace=False)
        model = RidgeCV(alphas=np.logspace(-2, 3, 11)).fit(vectors[rows], r[rows])
        self.w_ = model.coef_.astype(np.float64)
        self.b_ = float(model.intercept_)

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return np.abs(window_delta(vectors, offsets, self.h) @ self.w_)
