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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.detectors.peaks import candidate_peaks
from core.errors import DataError
from core.user_events import UserEvents


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


@dataclass(frozen=True)
class DetectorResult:
    """What a fitted detector found in a population: the public, read-only result.

    ``scores`` (N,) is the per-event score signal (NaN where undefined), ``offsets`` the
    population's CSR offsets and ``candidates`` every peak of the signal: the change points
    of a peak-picking detector at any threshold are the candidates scoring at least that
    much. Detectors whose change points depend on the threshold in other ways (a
    segmentation penalty, an online reset) carry ``rerun``, which recomputes them.
    """

    scores: np.ndarray
    offsets: np.ndarray
    candidates: ChangePoints
    rerun: Callable[[float], ChangePoints] | None = None

    def at(self, threshold: float) -> ChangePoints:
        """Change points at ``threshold``."""
        if self.rerun is not None:
            return self.rerun(float(threshold))
        return self.candidates.where(self.candidates.score >= threshold)

    def knowing(self, threshold: float, found: ChangePoints) -> DetectorResult:
        """This result, answering ``threshold`` with ``found`` (what its rerun gave there, stored
        with the fit) instead of rerunning every user: a threshold-dependent detector's first
        view at its default is then a read, not a rerun of the population."""
        if self.rerun is None:
            return self
        rerun, known = self.rerun, float(threshold)

        def at(t: float) -> ChangePoints:
            return found if t == known else rerun(t)

        return replace(self, rerun=at)

    @classmethod
    def concat(cls, parts: Sequence[DetectorResult]) -> DetectorResult:
        """One result of consecutive user chunks scored separately (peak-picking detectors)."""
        offsets = [np.asarray([0], np.int64)]
        users, n = 0, 0
        cands = []
        for p in parts:
            offsets.append(p.offsets[1:] + n)
            c = p.candidates
            cands.append(ChangePoints(c.user + users, c.event_index, c.score, c.alert_index))
            users += len(p.offsets) - 1
            n += int(p.offsets[-1])
        merged = (
            ChangePoints(
                *(
                    np.concatenate([getattr(c, f) for c in cands])
                    for f in ("user", "event_index", "score", "alert_index")
                )
            )
            if cands
            else ChangePoints.empty()
        )
        scores = np.concatenate([p.scores for p in parts]) if parts else np.empty(0)
        return cls(scores, np.concatenate(offsets), merged)


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


class Detector:
    """Base class. Subclasses implement :meth:`score_signal` (and may learn population state
    in :meth:`_fit_population`); ``h`` is the window length and the peak-suppression window.
    """

    name = "detector"
    features = "embedding"  # which per-event vectors it reads: "embedding" or "genres"
    online = False
    peak_based = True  # change points = peaks of scores_ filtered by the threshold
    # score() of a user chunk is exact with the fitted state and result.at() needs no rerun,
    # so a log too large for memory is fitted on a user sample and scored chunk by chunk
    # (peak-picking detectors, and the segmentation trees that record every node at fit).
    chunkable = False
    null = "shuffled"  # the calibration's null histories: "shuffled" or "real" (core.detectors.real_null)
    tentative: str | None = None  # a detector whose last-event alerts complement this one's
    h = 20

    @property
    def min_events(self) -> int:
        """The fewest events a user needs to get a score: a window of ``h`` either side."""
        return 2 * self.h

    def user_states(self, offsets: np.ndarray) -> list[str]:
        """Per user: "scored", or "too short: N events, needs M" (a user is never silently
        left out)."""
        m = self.min_events
        return [
            "scored" if n >= m else f"too short: {n} events, needs {m}" for n in np.diff(offsets).tolist()
        ]

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
        self.result_ = self._with_rerun(self.score(vectors, offsets))
        return self

    def score(self, vectors: np.ndarray, offsets: np.ndarray) -> DetectorResult:
        """Scores and candidate peaks of a population with the fitted state (changes nothing)."""
        scores = self.score_signal(vectors, offsets)
        return DetectorResult(scores, np.asarray(offsets, np.int64), self._candidates(scores, offsets))

    # Read-only views of the result (no setter: nothing outside fit() may write them).
    @property
    def scores_(self) -> np.ndarray:
        return self._result().scores

    @property
    def candidates_(self) -> ChangePoints:
        return self._result().candidates

    def _result(self) -> DetectorResult:
        if not hasattr(self, "result_"):
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        return self.result_

    def export_state(self) -> dict[str, np.ndarray]:
        """Learned state as plain arrays, enough to rerun a user (stored without pickle).

        Peak-picking detectors need none: their candidates answer every threshold.
        """
        return {}

    def restore(self, state: dict[str, np.ndarray], result: DetectorResult) -> Detector:
        """Put back a stored fit (:meth:`export_state` and the population's result); returns self.

        The restored detector answers any threshold on that population; a peak-picking one
        stores no learned state, so scoring *other* populations (``detect``) needs a fresh fit.
        """
        self.offsets_ = np.asarray(result.offsets, np.int64)
        self.n_events_ = int(self.offsets_[-1])
        self._import_state(state)
        self.result_ = self._with_rerun(result)
        return self

    def _import_state(self, state: dict[str, np.ndarray]) -> None:
        """Set the learned attributes :meth:`export_state` wrote (KeyError or ValueError when
        they are missing or do not fit the population); none by default."""

    def _with_rerun(self, result: DetectorResult) -> DetectorResult:
        """The result a threshold reads: threshold-dependent detectors attach their rerun."""
        return result

    def _candidates(self, scores: np.ndarray, offsets: np.ndarray) -> ChangePoints:
        peaks = candidate_peaks(scores, offsets, self.h)
        ev = UserEvents(offsets)
        user, index = ev.event_user, ev.index_in_user
        return ChangePoints(user[peaks], index[peaks], scores[peaks], index[peaks] + self.h - 1)

    def predict(self, threshold: float) -> ChangePoints:
        """Change points of the fitted population whose score reaches ``threshold``."""
        return self._result().at(threshold)

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
