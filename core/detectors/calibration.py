"""Thresholds in units a person understands: expected false alarms per 1,000 events.

A user's history in random order has no interest shift by construction, so every alarm a
detector raises on shuffled histories is a false alarm. Shuffling the histories of a
population (``n_shuffles`` times, seeded) and counting alarms at each threshold gives the
curve threshold -> false alarms per 1,000 events, non-increasing in the threshold. For
peak-picking detectors the curve is exact (an alarm fires at threshold t exactly when its
score >= t); for the others it is measured on the detector's threshold grid.

>>> import numpy as np
>>> cal = Calibration("demo", np.array([1.0, 2.0, 3.0]), np.array([4.0, 2.0, 0.5]), 2000)
>>> cal.threshold_for(2.0), cal.false_alarms_at(2.5)
(2.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.detectors.base import Detector, check_population
from core.errors import ShiftError


@dataclass(frozen=True)
class Calibration:
    """``false_alarms[i]`` is the null false-alarm rate (per 1,000 events) at ``thresholds[i]``;
    thresholds ascend and rates never increase."""

    detector: str
    thresholds: np.ndarray
    false_alarms: np.ndarray
    n_null_events: int
    null: ClassVar[str] = "shuffled"  # what the null histories were (core.detectors.real_null: "real")

    def false_alarms_at(self, threshold: float) -> float:
        """Expected false alarms per 1,000 events at ``threshold`` (an upper bound between
        the measured thresholds)."""
        i = int(np.searchsorted(self.thresholds, threshold, side="right")) - 1
        if i < 0:
            return float(self.false_alarms[0]) if len(self.false_alarms) else 0.0
        return float(self.false_alarms[i])

    def threshold_for(self, false_alarms: float) -> float:
        """The lowest measured threshold whose false-alarm rate is at most ``false_alarms``."""
        if false_alarms < 0:
            raise ShiftError(f"a false-alarm rate must be >= 0, got {false_alarms}")
        ok = np.flatnonzero(self.false_alarms <= false_alarms)
        if len(ok) == 0:
            raise ShiftError(
                f"{self.detector}: no calibrated threshold reaches {false_alarms} false alarms per "
                f"1,000 events; the lowest measured rate is {self.false_alarms.min():.3g}"
            )
        return float(self.thresholds[ok[0]])

    def to_dict(self) -> dict:
        return {
            "detector": self.detector,
            "thresholds": self.thresholds.tolist(),
            "false_alarms": self.false_alarms.tolist(),
            "n_null_events": self.n_null_events,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(
            d["detector"],
            np.asarray(d["thresholds"], float),
            np.asarray(d["false_alarms"], float),
            int(d["n_null_events"]),
        )


def shuffle_within_users(offsets: np.ndarray, random_state: int | np.random.Generator = 0) -> np.ndarray:
    """A permutation of event rows that shuffles each user's events among themselves."""
    rng = np.random.default_rng(random_state)
    counts = np.diff(offsets)
    user = np.repeat(np.arange(len(counts)), counts)
    return np.lexsort((rng.random(int(offsets[-1])), user))


def _exact(name: str, scores: np.ndarray, n_events: int) -> Calibration:
    s = np.sort(scores[np.isfinite(scores)])
    if len(s) == 0:
        return Calibration(name, np.array([-np.inf]), np.array([0.0]), n_events)
    thresholds = np.unique(s)
    # alarms at threshold t: scores >= t
    n_alarms = len(s) - np.searchsorted(s, thresholds, side="left")
    thresholds = np.append(thresholds, np.nextafter(s[-1], np.inf))
    rates = np.append(1000.0 * n_alarms / n_events, 0.0)
    return Calibration(name, thresholds, rates, n_events)


def calibrate(
    detector: Detector,
    vectors: np.ndarray,
    offsets: np.ndarray,
    n_shuffles: int = 2,
    random_state: int = 0,
    null: str = "shuffled",
) -> Calibration:
    """Curve threshold -> false alarms per 1,000 events of a *fitted* detector, measured on
    ``n_shuffles`` shuffled copies of the population ``vectors``/``offsets``.

    ``null="real"`` instead treats the histories as they are as shift-free: stricter on data
    whose real histories drift on their own (every such drift then counts as a false alarm).
    """
    vectors, offsets = check_population(vectors, offsets)
    if n_shuffles < 1:
        raise ShiftError(f"n_shuffles must be >= 1, got {n_shuffles}")
    if null not in ("shuffled", "real"):
        raise ShiftError(f"null must be 'shuffled' or 'real', got {null!r}")
    rng = np.random.default_rng(random_state)
    if null == "real":
        nulls = [vectors]
    else:
        nulls = [vectors[shuffle_within_users(offsets, rng)] for _ in range(n_shuffles)]
    n_events = len(nulls) * int(offsets[-1])
    if n_events == 0:
        raise ShiftError(f"{detector.name}: cannot calibrate on an empty population")
    exact = [detector.null_alarm_scores(v, offsets) for v in nulls]
    if all(s is not None for s in exact):
        return _exact(detector.name, np.concatenate(exact), n_events)
    grid = np.sort(np.asarray(detector.threshold_grid(), float))
    counts = np.zeros(len(grid))
    for v in nulls:
        counts += np.array([len(cp) for cp in detector.detect(v, offsets, grid)])
    rates = np.minimum.accumulate(1000.0 * counts / n_events)  # monotone despite search noise
    return Calibration(detector.name, grid, rates, n_events)
