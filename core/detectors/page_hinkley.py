"""Online detection: "when would we have known?" — Page-Hinkley on a scalar shift signal.

:class:`PageHinkley` is a river-style streaming detector: ``update(x)`` returns self, the
result is read from ``drift_detected``, and it resets itself on the update after firing.
It accumulates ``x - running_mean - delta`` and fires when the sum rises more than
``threshold`` above its running minimum; the event after that minimum is its estimate of
where the change began. Written here (about 20 lines) rather than taken from river so the
change-point estimate is exposed and one more dependency is avoided.

:class:`OnlinePageHinkley` runs it over every user in event order on the cosine distance
of each event to the user's recent profile (mean of the previous ``memory`` events,
centred on the population mean): after a change, new events sit far from the old profile.
Each change point carries ``alert_index``, the event at which the alarm fired.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.normal(0.0, 0.1, 60), rng.normal(1.0, 0.1, 40)])
>>> ph = PageHinkley(threshold=2.0, delta=0.05)
>>> [i for i, v in enumerate(x) if ph.update(v).drift_detected], ph.change_index
([62], 60)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from core.detectors.base import ChangePoints, Detector, DetectorResult, check_population
from core.trajectory import recent_mean
from core.user_events import UserEvents


class PageHinkley:
    def __init__(self, threshold: float = 5.0, delta: float = 0.05, min_instances: int = 5) -> None:
        self.threshold = threshold
        self.delta = delta
        self.min_instances = min_instances
        self._reset()
        self.change_index = -1  # updates seen before the change began, at the last alarm
        self._seen = 0

    def _reset(self) -> None:
        self._n, self._mean, self._sum, self._min, self._argmin = 0, 0.0, 0.0, 0.0, 0
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def statistic(self) -> float:
        return self._sum - self._min

    def update(self, x: float) -> PageHinkley:
        if self._drift:
            self._reset()
        self._seen += 1
        self._n += 1
        self._mean += (x - self._mean) / self._n
        self._sum += x - self._mean - self.delta
        if self._sum < self._min:
            self._min, self._argmin = self._sum, self._n
        if self._n >= self.min_instances and self._sum - self._min > self.threshold:
            self._drift = True
            self.change_index = self._seen - self._n + self._argmin
        return self


class OnlinePageHinkley(Detector):
    name = "page_hinkley"
    peak_based = False
    online = True

    def __init__(self, memory: int = 20, delta: float = 0.05, min_instances: int = 10) -> None:
        self.memory = memory
        self.delta = delta
        self.min_instances = min_instances

    @property
    def h(self) -> int:
        return self.memory

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        self.center_ = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1])

    def distance_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Cosine distance of each event to the mean of the user's previous ``memory`` events."""
        c = vectors - self.center_
        index = UserEvents(offsets).index_in_user
        past = index >= self.memory
        before = np.full_like(c, np.nan)
        rows = np.flatnonzero(past)
        before[rows] = np.asarray(recent_mean(c, offsets, self.memory))[rows - 1]
        norms = np.linalg.norm(before, axis=1) * np.linalg.norm(c, axis=1)
        d = 1.0 - (before * c).sum(1) / np.maximum(norms, 1e-12)
        d[~past] = np.nan
        return d

    def _run(self, d: np.ndarray, offsets: np.ndarray, threshold: float, stat: np.ndarray | None = None):
        rows = []
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            ph = PageHinkley(threshold, self.delta, self.min_instances)
            for i in range(lo + self.memory, hi):
                ph.update(float(d[i]))
                if stat is not None:
                    stat[i] = ph.statistic
                if ph.drift_detected:
                    rows.append((k, self.memory + ph.change_index, ph.statistic, i - lo))
        return rows

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The Page-Hinkley statistic at each event, never reset (for timelines)."""
        stat = np.full(len(vectors), np.nan)
        self._run(self.distance_signal(vectors, offsets), offsets, np.inf, stat)
        return stat

    def fit(
        self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None = None
    ) -> OnlinePageHinkley:
        super().fit(vectors, offsets, ratings)
        self.distance_ = self.distance_signal(check_population(vectors, offsets)[0], self.offsets_)
        return self

    @staticmethod
    def _points(rows: list) -> ChangePoints:
        if not rows:
            return ChangePoints.empty()
        a = np.array(rows, dtype=np.float64)
        return ChangePoints(
            a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3].astype(np.int64)
        )

    def _with_rerun(self, result: DetectorResult) -> DetectorResult:
        return replace(result, rerun=self._run_fitted)

    def _run_fitted(self, threshold: float) -> ChangePoints:
        return self._points(self._run(self.distance_, self.offsets_, threshold))

    def export_state(self) -> dict[str, np.ndarray]:
        """The population mean and the population's distance signal (``distance_``)."""
        return {"center": self.center_, "distance": self.distance_}

    def _import_state(self, state: dict[str, np.ndarray]) -> None:
        self.center_, self.distance_ = state["center"], state["distance"]
        if self.distance_.shape != (self.n_events_,) or not np.isfinite(self.center_).all():
            raise ValueError(f"{self.name}: stored state does not match the population")

    def detect(
        self, vectors: np.ndarray, offsets: np.ndarray, thresholds: Sequence[float]
    ) -> list[ChangePoints]:
        vectors, offsets = check_population(vectors, offsets)
        d = self.distance_signal(vectors, offsets)
        return [self._points(self._run(d, offsets, t)) for t in thresholds]

    def null_alarm_scores(self, vectors: np.ndarray, offsets: np.ndarray) -> None:
        return None  # resets after each alarm make the alarms depend on the threshold

    def threshold_grid(self) -> np.ndarray:
        return np.geomspace(0.05, 20.0, 30)
