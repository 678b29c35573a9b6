"""The one interface every reader of detection results goes through.

A dataset's results come from one of two places: a detector fitted in memory on every user
(:mod:`core.results.fitted`), or the files ``python -m core detect`` stored for a big
dataset (:mod:`core.results.stored`). Both answer the same questions through
:class:`DetectionResults`; the primitives differ, and everything built on them (the headline,
the slider's scale, rates, a user's state, what flagged users left and joined) is written
once here, so the CLI, the Python API and the dashboard cannot disagree.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.artefacts.results import ScoredUsers
from core.detectors.base import Detector
from core.detectors.calibration import Calibration
from core.detectors.peaks import unmarked_peaks
from core.detectors.population import (
    DEFAULT_FALSE_ALARMS,
    FalseAlarmRates,
    UserSignal,
    calibrated_rates,
    stated_threshold,
)
from core.detectors.real_null import RealCalibration
from core.errors import ShiftError

_COMPANION_LOCK = threading.Lock()


# Positions of the ε control: enough that a step moves the flagged count by a few users on
# a log of a thousand, few enough that the control is one drag.
GRID_POSITIONS = 200


@dataclass(frozen=True)
class ThresholdScale:
    """The ε control of a detector: its range, the calibrated default ε, and the ε values it
    moves over (``grid``: ascending, ``low``, ``default`` and ``high`` among them). Every value
    has three significant digits, as ε is printed and written into links."""

    low: float
    high: float
    default: float
    grid: tuple[float, ...] = ()


def as_stated(value: float) -> float:
    """ε to three significant digits (how pages print it and links carry it)."""
    return float(f"{float(value):.3g}")


def _just_above(value: float) -> float:
    """The smallest number of three significant digits above ``value`` (> 0)."""
    quantum = 10.0 ** (math.floor(math.log10(value)) - 2)
    above = as_stated(math.floor(value / quantum + 1) * quantum)
    return above if above > value else as_stated(above + quantum)


def threshold_grid(
    maxima, low: float, high: float, default: float, positions: int = GRID_POSITIONS
) -> tuple[float, ...]:
    """The ε values of the control, spread over the users' strongest scores (``maxima``) so
    that each step flags about as many users more or fewer as the next: a linear control from 0
    to the top score spent most of its length where nobody is flagged (0-15 on the synthetic
    world, with every flag change below 11 and half of them below 2.6).

    The users' strongest scores inside the range, with ``low`` and ``high``, are the anchors;
    ``positions`` values are taken evenly over their ranks, interpolating between neighbours
    (the quantiles of the scores on a log of many users; a few values between each user's and
    the next on a log of a few)."""
    scores = np.asarray(maxima, dtype=float)
    scores = scores[np.isfinite(scores) & (scores > low) & (scores < high)]
    anchors = np.unique(np.concatenate([[low], scores, [high]]))
    ranks = np.linspace(0, len(anchors) - 1, max(int(positions), 2))
    values = np.interp(ranks, np.arange(len(anchors)), anchors)
    grid = {as_stated(v) for v in values} | {low, high, default}
    return tuple(sorted(v for v in grid if low <= v <= high))


@dataclass(frozen=True)
class PopulationSummary:
    """The headline of a dataset at a threshold: who shifted, out of whom, and how many of
    those flags chance alone would give."""

    n_users: int
    n_scorable: int  # users long enough for the detector to score any event
    min_events: int  # the shortest history the detector scored (0: none scored)
    n_shifted: int  # users with at least one located change point
    n_change_points: int
    false_alarms_per_1000: float  # the calibration at this threshold, per 1,000 events
    scored_events: int  # events of scorable users (the base of the rate)
    expected_false: float  # flags expected by chance among the users the null stands for
    n_recent: int | None  # users with a tentative recent shift and no located one (None: no companion)
    calibration_source: str  # what the rate was measured on, in words
    rates_text: str = ""  # both units and the check sample, as the CLI prints them
    # Why a detector meant for real-history calibration was calibrated on shuffled ones ("": it was not)
    calibration_fallback: str = ""
    # real null only: "all" (the dataset's own users: the flagged count and the expected false
    # one are then the same measurement) or "shift-free" (a ground truth's unchanged users)
    calibration_sample: str = ""
    n_null_users: int = 0  # users the expected false count applies to
    # The empirical null's answers (None: the detector has none): users beyond everyday drift
    # with an interval (core.detectors.population.ShiftShare), and at this threshold the users
    # flagged, how many of them may be chance and the false discovery rate (FlaggedChance).
    beyond_drift: object | None = None
    chance: object | None = None


@dataclass(frozen=True)
class UserState:
    """What the detector can and cannot say about one user."""

    n_events: int
    scored: tuple[int, int] | None  # first and last scored event index; None: too short
    min_events: int  # the shortest history the detector scored in this dataset
    suppressed: pd.DataFrame  # event_index, score, reason: peaks at or above ε left unmarked
    recent: int | None  # event index of a tentative recent-shift alert (None: none)

    @property
    def too_short(self) -> bool:
        return self.scored is None


class DetectionResults(ABC):
    """One detector's results on one dataset, whatever produced them.

    ``dataset`` is the dataset's name and ``detector`` the detector (its settings: ``h``,
    ``min_size``, ``online``, ``tentative`` …; fitted state only for fitted results).
    """

    dataset: str
    detector: Detector

    # ----------------------------------------------------------------- primitives

    @property
    @abstractmethod
    def calibration(self) -> Calibration | RealCalibration:
        """Threshold <-> false-alarm curve (``.null`` says which histories it was measured on)."""

    @property
    @abstractmethod
    def default_threshold(self) -> float:
        """The calibrated default ε, as stated (three significant digits)."""

    @abstractmethod
    def change_points(self, threshold: float | None = None) -> pd.DataFrame:
        """Every user's change points at ``threshold`` (None: the default): ``user_id,
        event_index, timestamp, score, detector, alert_index, kind``."""

    @abstractmethod
    def candidates(self) -> pd.DataFrame:
        """Every candidate change point: ``user_id, event_index, alert_index, score``."""

    @abstractmethod
    def user_signal(self, user_id: str, threshold: float | None = None) -> UserSignal:
        """One user's per-event score and change points; only this user is read."""

    @abstractmethod
    def scored_users(self) -> ScoredUsers:
        """Counts of scorable users and their events."""

    @abstractmethod
    def user_ranking(self) -> pd.DataFrame:
        """``user_id, max_score``: users by their strongest candidate, highest first."""

    @abstractmethod
    def top_score(self) -> float:
        """The highest candidate score (0 when there is none): the top of the slider."""

    def companion(self) -> DetectionResults | None:
        """The results of the detector of this one's tentative recent-shift alerts (None: it
        has none), loaded once."""
        loader = getattr(self, "_companion", None)
        if loader is None or not getattr(self.detector, "tentative", None):
            return None
        with _COMPANION_LOCK:  # one load even when several sessions ask at once
            if "_companion_results" not in self.__dict__:
                self.__dict__["_companion_results"] = loader()
        return self.__dict__["_companion_results"]

    def tentative_alerts(self, false_alarms: float | None = None) -> pd.DataFrame | None:
        """The recent-shift companion's alerts at its calibrated default, or at the threshold
        of ``false_alarms`` per 1,000 events (frame of :meth:`change_points` with kind
        "tentative"), or None when the detector has none."""
        companion = self.companion()
        if companion is None:
            return None
        threshold = None if false_alarms is None else companion.threshold_for(false_alarms)
        frame = companion.change_points(threshold).copy()
        frame["kind"] = "tentative"
        return frame

    @abstractmethod
    def windows(
        self, user_ids, centres, before: int, after: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item indices of the events ``[centre - before, centre + after)`` of each user:
        ``(k, seq, item_idx)``, ``k`` the position in ``user_ids``, sorted by ``(k, seq)``."""

    # ----------------------------------------------------------------- built on them

    @property
    def is_online(self) -> bool:
        return bool(getattr(self.detector, "online", False))

    def rates(self, threshold: float | None = None) -> FalseAlarmRates:
        """Both false-alarm units at ``threshold`` (None: the default), with the check sample."""
        thr = self.default_threshold if threshold is None else float(threshold)
        return calibrated_rates(self.calibration, self.detector, thr)

    def false_alarms_at(self, threshold: float) -> float:
        """Expected false alarms per 1,000 events at ``threshold``."""
        return self.calibration.false_alarms_at(float(threshold))

    def threshold_for(self, false_alarms_per_1000: float) -> float:
        """The threshold expected to give at most this many false alarms per 1,000 events, as
        stated (three significant digits, rounded up; ShiftError when none does)."""
        return stated_threshold(self.calibration.threshold_for(float(false_alarms_per_1000)))

    def calibration_source(self) -> str:
        """What the false-alarm rate was measured on, in words."""
        cal = self.calibration
        if getattr(cal, "null", "shuffled") == "real":
            if getattr(cal, "sample", "all") == "shift-free":
                return (
                    "held-aside real histories of the users this dataset's ground truth marks as unchanged "
                    "(every alarm there counted as false)"
                )
            return "held-aside real histories of this dataset (every alarm there counted as false)"
        return "the same histories shuffled (no shift by construction)"

    def scale(self) -> ThresholdScale:
        """The ε control: 0 to just above the highest score (where nobody is flagged), the
        calibrated default, and the values between, spread over the users' strongest scores
        (:func:`threshold_grid`)."""
        finite = self.calibration.thresholds[np.isfinite(self.calibration.thresholds)]
        top = float(max(self.top_score(), finite.max() if len(finite) else 0.0, 1e-6))
        high = _just_above(top)
        try:
            default = min(self.threshold_for(DEFAULT_FALSE_ALARMS), high)
        except ShiftError:
            default = high
        if not np.isfinite(default):
            # No null history was long enough for the detector's windows: nothing to calibrate.
            default = high
        default = as_stated(default)
        grid = threshold_grid(self.user_ranking()["max_score"].to_numpy(), 0.0, high, default)
        return ThresholdScale(0.0, high, default, grid)

    # ----------------------------------------------------------------- beyond everyday drift
    # The empirical null of the default detector (core.detectors.empirical_null): how many users
    # shifted beyond everyday drift, how sure we are of each, ε as a false discovery rate. None
    # for detectors (or logs) without one; the pages then say what they can without it.

    def shift_share(self):
        """core.detectors.population.ShiftShare (π₁ with its interval, the null used), or None."""
        return None

    def user_probabilities(self) -> pd.DataFrame | None:
        """``user_id, root_score, probability`` (that the user's shift is real), or None."""
        return None

    def flagged_chance(self, threshold: float | None = None):
        """core.detectors.population.FlaggedChance at ``threshold``: flagged, expected chance, FDR."""
        return None

    def threshold_for_fdr(self, fdr: float) -> float:
        """The lowest threshold flagging users of whom at most ``fdr`` are chance (as stated)."""
        raise ShiftError(
            f"{self.detector.name} on {self.dataset!r} has no empirical null: set the threshold as a "
            "score or a false-alarm rate instead"
        )

    def recent_only(self, threshold: float | None = None) -> pd.DataFrame | None:
        """Tentative alerts of users with no located change point at ``threshold``: recent
        shifts counted once (None: the detector has no companion)."""
        alerts = self.tentative_alerts()
        if alerts is None:
            return None
        located = set(self.change_points(threshold)["user_id"].astype(str))
        return alerts[~alerts["user_id"].astype(str).isin(located)].reset_index(drop=True)

    def summary(self, threshold: float | None = None) -> PopulationSummary:
        """The headline numbers at ``threshold`` (None: the default)."""
        thr = self.default_threshold if threshold is None else float(threshold)
        scored = self.scored_users()
        cps = self.change_points(thr)
        rates = self.rates(thr)
        sample = rates.sample if rates.null == "real" else ""
        if rates.users is not None and sample == "shift-free":
            # The rate was measured on the users a ground truth marks as unchanged: it applies
            # to those users only, never to the ones that really shifted.
            n_null = self.n_shift_free()
            expected = rates.users * n_null
        elif rates.users is not None:
            n_null = scored.n_users
            expected = rates.users * n_null
        else:
            # An upper bound from the per-event rate: each false alarm flags at most one user.
            n_null = scored.n_scorable
            expected = rates.per_1000 * scored.scored_events / 1000.0
        recent = self.recent_only(thr)
        return PopulationSummary(
            n_users=scored.n_users,
            n_scorable=scored.n_scorable,
            min_events=scored.min_events,
            n_shifted=int(cps["user_id"].nunique()),
            n_change_points=len(cps),
            false_alarms_per_1000=rates.per_1000,
            scored_events=scored.scored_events,
            expected_false=float(expected),
            n_recent=None if recent is None else int(recent["user_id"].nunique()),
            calibration_source=self.calibration_source(),
            rates_text=rates.summary(),
            calibration_fallback=rates.fallback,
            calibration_sample=sample,
            n_null_users=int(n_null),
            beyond_drift=self.shift_share(),
            chance=self.flagged_chance(thr),
        )

    def n_shift_free(self) -> int:
        """Users the dataset's ground truth marks as unchanged (0: no ground truth)."""
        from core.artefacts.datasets import shift_free_users

        free = shift_free_users(self.dataset)
        return 0 if free is None else len(free)

    def user_state(self, user_id: str, threshold: float) -> UserState:
        """One user's scored range, why peaks at or above ``threshold`` are not change
        points, and a tentative recent-shift alert."""
        signal = self.user_signal(str(user_id), threshold)
        scores = np.asarray(signal.score, dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(scores))
        alerts = self.tentative_alerts()
        mine = alerts[alerts["user_id"].astype(str) == str(user_id)] if alerts is not None else None
        return UserState(
            n_events=len(scores),
            scored=(int(finite[0]), int(finite[-1])) if len(finite) else None,
            min_events=self.scored_users().min_events,
            suppressed=unmarked_peaks(scores, signal.change_points["event_index"], threshold, self.detector),
            recent=int(mine["event_index"].iloc[-1]) if mine is not None and len(mine) else None,
        )

    def strongest(self, threshold: float | None = None, limit: int | None = None) -> pd.DataFrame:
        """Each flagged user's strongest change point at ``threshold``, strongest first."""
        cps = self.change_points(threshold)
        top = cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id")
        return top if limit is None else top.head(int(limit))
