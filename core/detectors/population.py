"""Detectors over a whole population: fit and calibrate, then read change points cheaply.

- :func:`fit_population` fits a detector on every user of a population (a dataset's events
  and item features, as arrays) and calibrates it; :mod:`core.artefacts` stores the result
  and is the only caller that loads datasets;
- :func:`change_points` -> DataFrame ``user_id, event_index, timestamp, score, detector,
  alert_index`` of every user at a threshold (default: the calibrated one);
- :func:`user_signal` -> one user's per-event score signal and change points, in
  milliseconds once the fit exists (a slider can call it on every move);
- :func:`threshold_for_false_alarms` / :func:`false_alarms_for_threshold` convert between a
  threshold and expected false alarms per 1,000 events;
- ``DEFAULT`` and :func:`detector_names` (from :mod:`core.detectors`).

``timestamp`` is the time of the first event after the change (ISO 8601 in the CSV).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import limits, store
from core.detectors import DEFAULT, make_detector
from core.detectors.base import ChangePoints, Detector, DetectorResult
from core.detectors.calibration import Calibration, calibrate
from core.detectors.real_null import RealCalibration
from core.errors import ShiftError, UnknownUser
from core.trajectory import Trajectories

DEFAULT_FALSE_ALARMS = 1.0  # per 1,000 events, on the calibration's null histories (real or shuffled)
CALIBRATION_SHUFFLES = 2
# Events scored at once. Small chunks are faster, not only lighter: a chunk's float64
# features and window arrays (~15 KB per event at 384 dimensions) then stay in cache and
# reuse freed memory instead of faulting in fresh pages. Scoring 1M events of the synthetic
# world on the 2-core box: 38.5 s in chunks of 300,000 events, 21.5 s at 50,000, 15.7 s at
# 20,000. Results do not depend on it (every score depends on one user only).
SCORE_CHUNK_EVENTS = 20_000
# A real-history calibration needs a null sample large enough to measure ~1 false alarm per
# 1,000 events on its setting half (and a second half to check it): with fewer users or events
# the curve would be a handful of alarms, so such a log (a small upload, a test world) is
# calibrated on shuffled histories instead, and every text says so (a lower bound).
MIN_REAL_NULL_USERS = 200
MIN_REAL_NULL_EVENTS = 20_000


@dataclass(frozen=True)
class PopulationFit:
    """A detector fitted on every user of a dataset, with its calibration and its result."""

    dataset: str
    detector: Detector
    events: store.EventArrays
    items: np.ndarray  # the item feature matrix the detector read
    calibration: Calibration | RealCalibration  # .null says which: "shuffled" or "real"
    result: DetectorResult  # scores and candidates of every user (the whole log)

    @property
    def default_threshold(self) -> float:
        return stated_threshold(self.calibration.threshold_for(DEFAULT_FALSE_ALARMS))

    def user_position(self, user_id: str) -> int:
        try:
            return self.events.users.position(user_id)
        except UnknownUser:
            raise UnknownUser(f"user {user_id!r} is not in dataset {self.dataset!r}") from None


def stated_threshold(threshold: float) -> float:
    """A calibrated threshold as the product states it: rounded *up* to three significant
    digits (1.3432 -> 1.35), so the CLI, the links and the dashboard's slider use one and the
    same value, and its false-alarm rate is at most the one asked for (rates fall as it rises)."""
    t = float(threshold)
    if not np.isfinite(t) or t <= 0:
        return t
    quantum = 10.0 ** (math.floor(math.log10(t)) - 2)
    return float(f"{math.ceil(t / quantum - 1e-9) * quantum:.3g}")


def _sample_users(
    events: store.EventArrays, max_events: int, random_state: int = 0, with_users: bool = False
):
    """Rows and offsets of a seeded sample of whole users totalling <= max_events (and the
    sampled users' positions, ascending, when ``with_users``)."""
    counts = np.diff(events.offsets)
    order = np.random.default_rng(random_state).permutation(len(counts))
    keep = np.sort(order[np.cumsum(counts[order]) <= max_events]) if len(counts) else order
    if len(keep) == 0:  # one user alone is over the limit: take the first user anyway
        keep = order[:1]
    rows = np.concatenate([np.arange(events.offsets[k], events.offsets[k + 1]) for k in keep])
    offsets = np.concatenate([[0], np.cumsum(counts[keep])])
    return (rows, offsets, keep) if with_users else (rows, offsets)


def score_users(
    det: Detector,
    offsets: np.ndarray,
    item_idx: np.ndarray,
    items: np.ndarray,
    max_events: int = SCORE_CHUNK_EVENTS,
) -> DetectorResult:
    """The fitted detector's result over a CSR population (``offsets``, one ``item_idx`` per
    event), scored one chunk of at most ``max_events`` events at a time.

    Every engine (this process, a process pool, Ray workers) scores users through this one
    function, so they agree up to the floating-point order of each chunk's sums.
    """
    from core.trajectory import chunk_ranges

    offsets = np.asarray(offsets, np.int64)
    parts = []
    for lo, hi in chunk_ranges(np.diff(offsets), max_events):
        a, b = int(offsets[lo]), int(offsets[hi])
        parts.append(det.score(items[item_idx[a:b]].astype(np.float64), offsets[lo : hi + 1] - a))
    return DetectorResult.concat(parts)


# Scores every user of a population with a fitted detector: (detector, events, item features,
# dataset name) -> result. The engines of core.runner provide them (a process pool, Ray).
Scorer = Callable[[Detector, store.EventArrays, np.ndarray, str], DetectorResult]


def real_null_is_large_enough(offsets: np.ndarray, null_users: np.ndarray | None = None) -> bool:
    """Whether the real users of ``null_users`` (default all) can set a real-history calibration."""
    counts = np.diff(offsets) if null_users is None else np.diff(offsets)[null_users]
    return len(counts) >= MIN_REAL_NULL_USERS and int(counts.sum()) >= MIN_REAL_NULL_EVENTS


def fit_population(
    events: store.EventArrays,
    items: np.ndarray,
    detector: str | Detector = DEFAULT,
    dataset: str = "",
    scorer: Scorer | None = None,
    null_users: np.ndarray | None = None,
) -> PopulationFit:
    """Fit ``detector`` on every user of ``events`` (item features ``items``) and calibrate it.

    Logs over ``core.limits.MAX_EVENTS_IN_MEMORY`` events: the detector is fitted and calibrated on a
    seeded sample of whole users, then scores every user chunk by chunk (detectors whose
    ``chunkable`` result is exact per user; the others keep per-event state of the whole log
    and refuse with a clear error there). The calibration is on shuffled histories, or on the
    real ones for detectors whose ``null`` is ``"real"``. ``dataset`` names the data in messages.
    ``scorer`` (peak-picking or chunkable detectors) scores every user after fitting and
    calibrating here, e.g. on a process pool or a Ray cluster; the fit and calibration stay
    the same. ``null_users`` (positions) are the users a real-history calibration may count
    every alarm of as false (default: all; :func:`core.artefacts.datasets.shift_free_users`
    gives a planted world's shift-free users).
    """
    det = make_detector(detector) if isinstance(detector, str) else detector
    # Every detector reads the users' trajectories f_1 … f_t: each event's item features, in
    # event order (the seed's F_u; core.trajectory)
    trajectories = Trajectories.from_events(events, items)
    big = int(events.offsets[-1]) > limits.MAX_EVENTS_IN_MEMORY
    if big and not (det.peak_based or det.chunkable):
        raise ShiftError(
            f"detector {det.name!r} keeps per-event state of the whole log and {dataset!r} has "
            f"{int(events.offsets[-1]):,} events (limit {limits.MAX_EVENTS_IN_MEMORY:,}); use a peak-picking "
            f"detector such as 'two_window', or 'best_split' (scored in user chunks)"
        )
    if big:
        rows, offsets, sampled = _sample_users(events, limits.MAX_EVENTS_IN_MEMORY, with_users=True)
        vectors, ratings = trajectories.item_vectors[trajectories.item_idx[rows]], events.rating[rows]
        if null_users is not None:  # positions within the sample
            null_users = np.flatnonzero(np.isin(sampled, null_users))
    else:
        vectors, offsets, ratings = trajectories.vectors(), events.offsets, events.rating
    if scorer is not None and not (det.peak_based or det.chunkable):
        raise ShiftError(
            f"detector {det.name!r} keeps per-event state of the whole log, so its users cannot be "
            "scored apart; run it with the local engine"
        )
    if det.null == "real" and real_null_is_large_enough(offsets, null_users):
        det.fit(vectors, offsets, ratings, null_users=null_users)
        cal = det.real_calibration(vectors, offsets, users=null_users)
        if null_users is not None:
            cal = dataclasses.replace(cal, sample="shift-free")
    else:
        if det.null == "real" and null_users is not None:
            # a planted world too small for a real calibration: its unchanged users still make
            # the known null of the share beyond drift (core.detectors.empirical_null.fit_known)
            det.fit(vectors, offsets, ratings, null_users=null_users)
        else:
            det.fit(vectors, offsets, ratings)
        n_shuffles = CALIBRATION_SHUFFLES
        if det.null == "real":
            # Too few real users to set the rate on: shuffled copies of them, enough of them for
            # ~MIN_REAL_NULL_EVENTS null events, so that 1 per 1,000 is measured and not guessed.
            n_shuffles = max(n_shuffles, -(-MIN_REAL_NULL_EVENTS // max(int(offsets[-1]), 1)))
        cal = calibrate(det, vectors, offsets, n_shuffles=n_shuffles, random_state=0)
    if scorer is not None:
        result = scorer(det, events, items, dataset)
    elif big:
        result = score_users(det, events.offsets, events.item_idx, items)
    else:
        result = det.result_
    return PopulationFit(dataset, det, events, items, cal, result)


def _frame(
    fit: PopulationFit, cp: ChangePoints, users: np.ndarray | None = None, kind: str = "located"
) -> pd.DataFrame:
    ev = fit.events
    user_pos = cp.user if users is None else users[cp.user]
    rows = ev.offsets[user_pos] + cp.event_index
    return pd.DataFrame(
        {
            "user_id": ev.user_ids[user_pos],
            "event_index": cp.event_index.astype(np.int64),
            "timestamp": pd.to_datetime(ev.ts[rows]) if len(rows) else pd.to_datetime([]),
            "score": cp.score.astype(np.float64),
            "detector": fit.detector.name,
            "alert_index": cp.alert_index.astype(np.int64),
            "kind": kind,
        }
    )


def change_points(fit: PopulationFit, threshold: float | None = None) -> pd.DataFrame:
    """Every user's change points at ``threshold`` (None: the calibrated default)."""
    thr = fit.default_threshold if threshold is None else float(threshold)
    return _frame(fit, fit.result.at(thr))


@dataclass(frozen=True)
class UserSignal:
    """One user's per-event score (NaN where undefined) and change points at ``threshold``."""

    user_id: str
    threshold: float
    score: np.ndarray
    change_points: pd.DataFrame


def user_signal(fit: PopulationFit, user_id: str, threshold: float | None = None) -> UserSignal:
    """Score signal and change points of one user; only this user's events are touched."""
    k = fit.user_position(user_id)
    thr = fit.default_threshold if threshold is None else float(threshold)
    s = fit.events.user_slice(k)
    det = fit.detector
    if det.peak_based:
        cand = fit.result.candidates
        cp = cand.where((cand.user == k) & (cand.score >= thr))
        frame = _frame(fit, cp)
    else:  # segmentation and online detectors: rerun on this user alone
        vectors = fit.items[fit.events.item_idx[s]]
        cp = det.detect(vectors, np.array([0, s.stop - s.start]), [thr])[0]
        frame = _frame(fit, cp, users=np.array([k]))
    return UserSignal(str(user_id), thr, np.asarray(fit.result.scores[s]), frame.reset_index(drop=True))


def threshold_for_false_alarms(fit: PopulationFit, false_alarms_per_1000: float) -> float:
    """The threshold expected to give at most this many false alarms per 1,000 events (as
    stated: three significant digits, rounded up)."""
    return stated_threshold(fit.calibration.threshold_for(false_alarms_per_1000))


def false_alarms_for_threshold(fit: PopulationFit, threshold: float) -> float:
    """Expected false alarms per 1,000 events at ``threshold``."""
    return fit.calibration.false_alarms_at(threshold)


def tentative_alerts(fit: PopulationFit, threshold: float | None = None) -> pd.DataFrame:
    """Alerts at each user's last event of a last-event detector (``recent_shift``), the frame
    of :func:`change_points` with ``kind`` "tentative": ``event_index`` is the tentative change
    (its first event), ``alert_index`` the user's last event. None: its calibrated default."""
    thr = fit.default_threshold if threshold is None else float(threshold)
    return _frame(fit, fit.result.at(thr), kind="tentative")


@dataclass(frozen=True)
class FalseAlarmRates:
    """What a threshold costs in false alarms, in the units the product states.

    ``per_1000``: false alarms per 1,000 events; ``users``: the share of users flagged at
    least once (real calibration only, else None); ``null``: "real" (measured on held-aside
    real histories of the dataset) or "shuffled" (on shuffled, shift-free histories);
    ``check_*``: the same rates on the second held-aside half, which did not set the curve.
    """

    threshold: float
    per_1000: float
    users: float | None
    null: str
    check_per_1000: float | None = None
    check_users: float | None = None
    sample: str = "all"  # real null: "all" users, or the ground truth's "shift-free" ones
    # Why a detector meant for a real-history calibration was calibrated on shuffled histories.
    fallback: str = ""

    @property
    def source(self) -> str:
        """What the rate was measured on, in words."""
        if self.null != "real":
            return "shuffled histories"
        if self.sample == "shift-free":
            return "held-aside real histories of the users the ground truth marks as unchanged"
        return "held-aside real histories"

    def summary(self) -> str:
        """ "~1.01 false alarms per 1,000 events, 8.0% of users, measured on held-aside real
        histories; check sample: 1.26 per 1,000, 9.1% of users"."""
        if self.null != "real":
            text = f"~{self.per_1000:.3g} false alarms per 1,000 events on shuffled histories"
            return f"{text} ({self.fallback})" if self.fallback else text
        text = f"~{self.per_1000:.3g} false alarms per 1,000 events, {self.users:.1%} of users, measured on {self.source}"
        if self.check_per_1000 is not None:
            text += f"; check sample: {self.check_per_1000:.3g} per 1,000, {self.check_users:.1%} of users"
        return text


def false_alarm_rates(fit: PopulationFit, threshold: float | None = None) -> FalseAlarmRates:
    """The calibrated false-alarm rates at ``threshold`` (None: the calibrated default)."""
    thr = fit.default_threshold if threshold is None else float(threshold)
    return calibrated_rates(fit.calibration, fit.detector, thr)


def calibrated_rates(cal: Calibration | RealCalibration, detector: Detector, thr: float) -> FalseAlarmRates:
    """The rates of calibration ``cal`` of ``detector`` at threshold ``thr`` (a fit's or a
    stored one's: core.results reads both through this)."""
    if not isinstance(cal, RealCalibration):
        fallback = (
            f"too few users for a calibration on real histories: it needs {MIN_REAL_NULL_USERS} users and "
            f"{MIN_REAL_NULL_EVENTS:,} events; real false alarms run higher"
            if detector.null == "real"
            else ""
        )
        return FalseAlarmRates(thr, cal.false_alarms_at(thr), None, cal.null, fallback=fallback)
    per, users = cal.rates_at(thr)
    check = cal.checked_rates_at(thr) if cal.check else (None, None)
    return FalseAlarmRates(thr, per, users, cal.null, *check, sample=cal.sample)


def user_states(
    fit: PopulationFit, located: pd.DataFrame, tentative: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per user of the dataset: ``user_id, n_events, state, tentative, change_points``.

    ``state`` is "scored" or "too short: 12 events, needs 24" (the detector's minimum), so a
    user without change points is never ambiguous; ``tentative`` whether the user has a
    tentative recent alert in ``tentative``; ``change_points`` the located ones in ``located``.
    """
    ev = fit.events
    ids = pd.Index(ev.user_ids.astype(str))
    flagged = set() if tentative is None else set(tentative["user_id"].astype(str))
    counts = located["user_id"].astype(str).value_counts()
    return pd.DataFrame(
        {
            "user_id": ids,
            "n_events": np.diff(ev.offsets).astype(np.int64),
            "state": fit.detector.user_states(ev.offsets),
            "tentative": ids.isin(flagged),
            "change_points": counts.reindex(ids, fill_value=0).to_numpy(np.int64),
        }
    )


# --- how many users shifted beyond everyday drift (issue 19; core.detectors.empirical_null) ---


@dataclass(frozen=True)
class ShiftShare:
    """The share of scored users beyond everyday drift (pi1) from the empirical null, with its
    95% bootstrap interval; ``null`` "empirical" (fitted to the bulk of this log's users),
    "reference" (the bulk moved; the null stored with the product), "shuffled" (the bulk moved;
    the log's own histories with their events shuffled) or "known" (a planted world: the users
    its ground truth marks as unchanged), ``why`` says which."""

    share: float
    low: float
    high: float
    n_scored: int
    null: str
    fitted_share: float  # the bulk fit's own pi1, also when it was set aside
    null_z: tuple[float, ...] = ()  # a known null's sorted scores (its tail); () for a normal null

    @property
    def users(self) -> float:
        return self.share * self.n_scored

    @property
    def users_interval(self) -> tuple[float, float]:
        return self.low * self.n_scored, self.high * self.n_scored

    @property
    def bulk_moving(self) -> bool:
        return self.null in ("reference", "shuffled")

    def threshold_for_fdr(self, root_scores: np.ndarray, fdr: float) -> float:
        """The lowest threshold flagging users of whom at most ``fdr`` are expected to be chance,
        from every user's root score (a fit's :func:`root_scores`, or stored results' highest
        score per user); as stated: three significant digits, rounded up."""
        from core.detectors.empirical_null import fdr_threshold

        return stated_threshold(fdr_threshold(root_scores, self.share, fdr, self._null_z))

    @property
    def _null_z(self) -> np.ndarray | None:
        return np.asarray(self.null_z, np.float64) if self.null_z else None

    def expected_chance(self, threshold: float) -> float:
        """Expected users reaching ``threshold`` (a root score, N(0, 1) under the null) by
        everyday drift; over the users flagged at it, the false discovery rate."""
        from core.detectors.empirical_null import null_tail

        return float((1.0 - self.share) * self.n_scored * null_tail(threshold, self._null_z))

    @property
    def why(self) -> str:
        from core.detectors.empirical_null import BULK_MOVING_SHARE, SOURCES

        if self.bulk_moving:
            return (
                f"the bulk of this log is moving: a fit to its centre puts {self.fitted_share:.0%} of users "
                f"beyond everyday drift (>= {BULK_MOVING_SHARE:.0%}), so its centre cannot stand for "
                f"everyday drift; {SOURCES[self.null]} is used instead"
            )
        return SOURCES[self.null]

    def summary(self) -> str:
        """ "about 31 users [18-45] of 843 scored changed beyond everyday drift (null: ...)"."""
        lo, hi = self.users_interval
        return (
            f"about {self.users:.0f} users [{lo:.0f}-{hi:.0f}] of {self.n_scored:,} scored changed beyond "
            f"everyday drift (null: {self.why})"
        )


def empirical_null(fit: PopulationFit):
    """The fit's :class:`~core.detectors.empirical_null.EmpiricalNull`, or None (a detector or
    a log without one: too few users, or ``empirical_null=False``)."""
    return getattr(fit.detector, "empirical_", None)


def shift_share(fit: PopulationFit, roots: np.ndarray | None = None) -> ShiftShare | None:
    """How many users shifted beyond everyday drift, with an interval (None without a null).
    The share is the null's; it is of every scored user of the log, also when the detector was
    fitted on a sample of them (a log over the memory limit). ``roots``: the fit's
    :func:`root_scores` when the caller has them already."""
    null = empirical_null(fit)
    if null is None:
        return None
    known = () if null.known_z is None else tuple(float(v) for v in null.known_z)
    n_scored = int(np.isfinite(root_scores(fit) if roots is None else roots).sum())
    return ShiftShare(null.pi1_, *null.pi1_interval_, n_scored, null.source_, null.fitted_pi1_, known)


def root_scores(fit: PopulationFit) -> np.ndarray:
    """Every user's root-split score (NaN: too short to score): a user's highest node, since a
    node's score is the smallest along its path from the root."""
    cand = fit.result.candidates
    best = np.full(fit.events.n_users, -np.inf)
    np.maximum.at(best, cand.user, cand.score)
    return np.where(np.isfinite(best), best, np.nan)


def user_probabilities(fit: PopulationFit) -> pd.DataFrame:
    """``user_id, root_score, probability``: the probability that each user's shift is real
    (1 - local fdr under the empirical null); NaN for users too short to score, or a fit
    without an empirical null."""
    root = root_scores(fit)
    null = empirical_null(fit)
    prob = np.full(len(root), np.nan)
    if null is not None:
        ok = np.isfinite(root)
        prob[ok] = null.probability(root[ok])
    return pd.DataFrame({"user_id": fit.events.user_ids.astype(str), "root_score": root, "probability": prob})


@dataclass(frozen=True)
class FlaggedChance:
    """At a threshold: users flagged, how many of them everyday drift explains (expected), and
    the false discovery rate (their expected share)."""

    threshold: float
    flagged: int
    expected_chance: float
    fdr: float

    def summary(self) -> str:
        return f"at this threshold {self.flagged:,} users are flagged, of whom about {self.expected_chance:.0f} may be chance (FDR {self.fdr:.0%})"


def flagged_chance(fit: PopulationFit, threshold: float | None = None) -> FlaggedChance | None:
    """:class:`FlaggedChance` at ``threshold`` (None: the default); None without an empirical null."""
    roots = root_scores(fit)
    share = shift_share(fit, roots)
    if share is None:
        return None
    thr = fit.default_threshold if threshold is None else float(threshold)
    # every scored user of the log (the null may have been fitted on a sample of them)
    flagged = int((roots >= thr).sum())
    expected = share.expected_chance(thr)
    return FlaggedChance(thr, flagged, expected, min(expected / max(flagged, 1), 1.0))


def threshold_for_fdr(fit: PopulationFit, fdr: float) -> float:
    """The lowest threshold that flags users with at most ``fdr`` of them chance (as stated:
    three significant digits, rounded up); ShiftError without an empirical null."""
    roots = root_scores(fit)
    share = shift_share(fit, roots)
    if share is None:
        raise ShiftError(
            f"{fit.detector.name} on {fit.dataset!r} has no empirical null (a detector without one, or "
            "too few scored users): set the threshold as a score or a false-alarm rate instead"
        )
    return share.threshold_for_fdr(roots, fdr)
