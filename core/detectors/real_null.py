"""Thresholds calibrated on the dataset's own real, unshuffled histories, in two units.

Real users drift together (sign-up back-fill, onboarding, seasons), so shuffled histories
understate real false alarms several times over. Here the null is real: a held-aside
sample of the dataset's users, scored as they are, at their real lengths; every alarm on
them counts as false. The rate comes in two units: false alarms per 1,000 events, and the
share of users flagged (what "how many of the flagged users are false" means to a PM).

:func:`calibrate_real` splits the held-aside users in two seeded halves: the first sets
the curve (threshold -> rates), the second checks it, so the stated rate is confronted
with one measured on users that did not set it (:attr:`RealCalibration.check`).

>>> import numpy as np
>>> cal = RealCalibration("demo", np.array([1.0, 2.0, 3.0]), np.array([4.0, 2.0, 0.0]),
...                       np.array([0.5, 0.2, 0.0]), 2000, 40)
>>> cal.threshold_for(2.0), cal.threshold_for(0.25, unit="users"), cal.rates_at(2.5)
(2.0, 2.0, (2.0, 0.2))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from core.detectors.base import ChangePoints, Detector, check_population
from core.errors import ShiftError

UNITS = ("per_1000", "users")


@dataclass(frozen=True)
class RealCalibration:
    """``per_1000[i]`` / ``users_flagged[i]``: false alarms per 1,000 events and the share of
    users with at least one alarm, on real held-aside histories, at ``thresholds[i]``
    (ascending; both rates non-increasing). ``check`` holds the rates measured at the same
    thresholds on the second held-aside sample (empty when there was none)."""

    detector: str
    thresholds: np.ndarray
    per_1000: np.ndarray
    users_flagged: np.ndarray
    n_events: int
    n_users: int
    check: dict = field(default_factory=dict)
    # Which real users made the null sample: "all" of them (a real log), or "shift-free"
    # (the users a planted world's ground truth marks as unchanged; fit_population).
    sample: str = "all"
    # What the null histories were: the product's texts say "measured on held-aside real
    # histories" for this one, and "on shuffled histories" for core.detectors.calibration.Calibration.
    null: ClassVar[str] = "real"

    # The interface of core.detectors.calibration.Calibration (per 1,000 events), so a PopulationFit,
    # the CLI and the dashboard read either calibration the same way.
    @property
    def false_alarms(self) -> np.ndarray:
        return self.per_1000

    @property
    def n_null_events(self) -> int:
        return self.n_events

    def false_alarms_at(self, threshold: float) -> float:
        """False alarms per 1,000 real held-aside events at ``threshold``."""
        return self.rates_at(threshold)[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for an ``.npz`` (no pickle); :meth:`from_arrays` reads them back."""
        arrays = {
            "thresholds": self.thresholds,
            "per_1000": self.per_1000,
            "users_flagged": self.users_flagged,
            "n_events": np.asarray(self.n_events),
            "n_users": np.asarray(self.n_users),
            "sample": np.asarray(self.sample),
        }
        arrays.update({f"check.{k}": np.asarray(v) for k, v in self.check.items()})
        return arrays

    @classmethod
    def from_arrays(cls, detector: str, a: dict[str, np.ndarray]) -> RealCalibration:
        """The calibration :meth:`to_arrays` wrote (ValueError when the curves do not fit)."""
        check = {}
        for k, v in a.items():
            if k.startswith("check."):
                key = k.removeprefix("check.")
                check[key] = np.asarray(v, float) if v.ndim else int(v)
        cal = cls(
            detector,
            np.asarray(a["thresholds"], float),
            np.asarray(a["per_1000"], float),
            np.asarray(a["users_flagged"], float),
            int(a["n_events"]),
            int(a["n_users"]),
            check,
            str(a["sample"]) if "sample" in a else "all",
        )
        curves = [
            cal.per_1000,
            cal.users_flagged,
            *(check.get(k) for k in ("per_1000", "users_flagged") if check),
        ]
        if any(c.shape != cal.thresholds.shape or not np.isfinite(c).all() for c in curves):
            raise ValueError(f"{detector}: stored real calibration is inconsistent")
        if np.isnan(cal.thresholds).any():
            raise ValueError(f"{detector}: stored real calibration has NaN thresholds")
        return cal

    def _index(self, threshold: float) -> int:
        return max(int(np.searchsorted(self.thresholds, threshold, side="right")) - 1, 0)

    def rates_at(self, threshold: float) -> tuple[float, float]:
        """(false alarms per 1,000 events, share of users flagged) at ``threshold``."""
        i = self._index(threshold)
        return float(self.per_1000[i]), float(self.users_flagged[i])

    def checked_rates_at(self, threshold: float) -> tuple[float, float]:
        """The same two rates measured on the second held-aside sample."""
        if not self.check:
            raise ShiftError(f"{self.detector}: this calibration has no check sample")
        i = self._index(threshold)
        return float(self.check["per_1000"][i]), float(self.check["users_flagged"][i])

    def threshold_for(self, rate: float, unit: str = "per_1000") -> float:
        """The lowest threshold whose real false-alarm rate is at most ``rate`` in ``unit``."""
        if unit not in UNITS:
            raise ShiftError(f"unit must be one of {UNITS}, got {unit!r}")
        if rate < 0:
            raise ShiftError(f"a false-alarm rate must be >= 0, got {rate}")
        curve = self.per_1000 if unit == "per_1000" else self.users_flagged
        ok = np.flatnonzero(curve <= rate)
        if len(ok) == 0:
            raise ShiftError(
                f"{self.detector}: no threshold reaches {rate} ({unit}); lowest is {curve.min():.3g}"
            )
        return float(self.thresholds[ok[0]])

    def to_dict(self) -> dict:
        return {
            "detector": self.detector,
            "thresholds": self.thresholds.tolist(),
            "per_1000": self.per_1000.tolist(),
            "users_flagged": self.users_flagged.tolist(),
            "n_events": self.n_events,
            "n_users": self.n_users,
            "check": {k: np.asarray(v).tolist() if np.ndim(v) else v for k, v in self.check.items()},
            "sample": self.sample,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RealCalibration:
        check = {k: np.asarray(v) if isinstance(v, list) else v for k, v in d.get("check", {}).items()}
        return cls(
            d["detector"],
            np.asarray(d["thresholds"], float),
            np.asarray(d["per_1000"], float),
            np.asarray(d["users_flagged"], float),
            int(d["n_events"]),
            int(d["n_users"]),
            check,
            d.get("sample", "all"),
        )


def alarm_rates(
    cp: ChangePoints, n_users: int, n_events: int, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-1,000-event and share-of-users false-alarm rates at each threshold, when an
    alarm fires at t exactly when its score >= t (``cp`` holds every candidate)."""
    s = np.sort(cp.score)
    n_alarms = len(s) - np.searchsorted(s, thresholds, side="left")
    # A user is flagged at t when its best alarm reaches t.
    best = np.full(n_users, -np.inf)
    np.maximum.at(best, cp.user, cp.score)
    b = np.sort(best)
    n_flagged = n_users - np.searchsorted(b, thresholds, side="left")
    return 1000.0 * n_alarms / max(n_events, 1), n_flagged / max(n_users, 1)


def is_exact(detector: Detector) -> bool:
    """Whether an alarm of ``detector`` fires at t exactly when its score >= t (peak-picking
    detectors and the best-split tree); the others are calibrated on a threshold grid."""
    return bool(getattr(detector, "exact_threshold", detector.peak_based))


def _grid_rates(detector: Detector, vectors: np.ndarray, offsets: np.ndarray, thresholds: np.ndarray):
    n_users, n_events = len(offsets) - 1, int(offsets[-1])
    found = detector.detect(vectors, offsets, thresholds)
    per = np.array([1000.0 * len(cp) / max(n_events, 1) for cp in found])
    share = np.array([len(np.unique(cp.user)) / max(n_users, 1) for cp in found])
    # monotone despite search noise (a segmentation is not nested across penalties)
    return np.minimum.accumulate(per), np.minimum.accumulate(share)


def _sample_users(offsets: np.ndarray, users: np.ndarray, vectors: np.ndarray):
    counts = np.diff(offsets)[users]
    rows = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in users]) if len(users) else []
    return vectors[np.asarray(rows, np.int64)], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _fitted_candidates(detector: Detector, users: np.ndarray) -> tuple[ChangePoints, np.ndarray]:
    """The fitted population's candidates of ``users`` (renumbered 0..), and their offsets:
    calibrating on the users the detector was fitted on costs no second pass."""
    cand = detector.candidates_
    keep = np.isin(cand.user, users)
    renumber = np.full(len(detector.offsets_) - 1, -1, np.int64)
    renumber[users] = np.arange(len(users))
    cp = ChangePoints(
        renumber[cand.user[keep]], cand.event_index[keep], cand.score[keep], cand.alert_index[keep]
    )
    counts = np.diff(detector.offsets_)[users]
    return cp, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _curve(detector: Detector, vectors, offsets: np.ndarray, thresholds=None, cp: ChangePoints | None = None):
    if cp is None and not is_exact(detector):
        if thresholds is None:
            thresholds = np.sort(np.asarray(detector.threshold_grid(), float))
        return (thresholds, *_grid_rates(detector, vectors, offsets, thresholds))
    if cp is None:
        cp = detector.detect(vectors, offsets, [-np.inf])[0]
    if thresholds is None:
        s = np.unique(cp.score[np.isfinite(cp.score)])
        thresholds = np.append(s, np.nextafter(s[-1], np.inf)) if len(s) else np.array([0.0])
    per, share = alarm_rates(cp, len(offsets) - 1, int(offsets[-1]), thresholds)
    return thresholds, per, share


def calibrate_real(
    detector: Detector,
    vectors: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    users: Sequence[int] | None = None,
    check_fraction: float = 0.5,
    random_state: int = 0,
) -> RealCalibration:
    """Real-history calibration of a *fitted* detector on the population ``vectors``/``offsets``.

    ``users`` (positions) are the held-aside real users (default: all); a seeded
    ``check_fraction`` of them is kept apart to check the stated rate (0: no check).
    Without ``vectors``, the users are those of the fitted population and an exact
    detector's fitted candidates are reused (no second pass over the data).
    """
    if vectors is None:
        if not (is_exact(detector) and hasattr(detector, "result_")):
            raise ShiftError(f"{detector.name}: pass the population to calibrate on (vectors, offsets)")
        return _calibrate_fitted(detector, users, check_fraction, random_state)
    vectors, offsets = check_population(vectors, offsets)
    pool = np.arange(len(offsets) - 1) if users is None else np.asarray(users, np.int64)
    if not 0 <= check_fraction < 1:
        raise ShiftError(f"check_fraction must be in [0, 1), got {check_fraction}")
    setting, checking = calibration_halves(pool, check_fraction, random_state)
    v, o = _sample_users(offsets, setting, vectors)
    if int(o[-1]) == 0:
        raise ShiftError(f"{detector.name}: cannot calibrate on an empty sample of users")
    thresholds, per, share = _curve(detector, v, o)
    check = {}
    if len(checking):
        cv, co = _sample_users(offsets, checking, vectors)
        _, cper, cshare = _curve(detector, cv, co, thresholds)
        check = {"per_1000": cper, "users_flagged": cshare, "n_events": int(co[-1]), "n_users": len(checking)}
    return RealCalibration(detector.name, thresholds, per, share, int(o[-1]), len(setting), check)


def calibration_halves(
    pool: np.ndarray, check_fraction: float = 0.5, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The users (positions) that set the rate and those kept apart to check it: a seeded
    ``check_fraction`` of ``pool`` checks. The feature choice (core.detectors.feature_choice)
    looks at the setting half only, so the check stays untouched."""
    order = np.random.default_rng(random_state).permutation(np.asarray(pool, np.int64))
    n_check = int(round(len(order) * check_fraction))
    return np.sort(order[n_check:]), np.sort(order[:n_check])


def _calibrate_fitted(detector: Detector, users, check_fraction: float, random_state: int) -> RealCalibration:
    if not 0 <= check_fraction < 1:
        raise ShiftError(f"check_fraction must be in [0, 1), got {check_fraction}")
    pool = np.arange(len(detector.offsets_) - 1) if users is None else np.asarray(users, np.int64)
    setting, checking = calibration_halves(pool, check_fraction, random_state)
    cp, o = _fitted_candidates(detector, setting)
    if int(o[-1]) == 0:
        raise ShiftError(f"{detector.name}: cannot calibrate on an empty sample of users")
    thresholds, per, share = _curve(detector, None, o, cp=cp)
    check = {}
    if len(checking):
        ccp, co = _fitted_candidates(detector, checking)
        _, cper, cshare = _curve(detector, None, co, thresholds, cp=ccp)
        check = {"per_1000": cper, "users_flagged": cshare, "n_events": int(co[-1]), "n_users": len(checking)}
    return RealCalibration(detector.name, thresholds, per, share, int(o[-1]), len(setting), check)
