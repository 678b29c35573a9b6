"""Recent-shift alert: an online CUSUM watching each user's newest events.

The offline best split needs ``min_size`` events on each side of a change, so a change in
the last few events cannot be located by it. This detector watches the newest events as
they arrive: at every event t it compares the mean of the last w events (w = ``min_recent``
.. ``window``) with the mean of everything before them, on the same block-standardised,
detrended features as :class:`~core.detectors.best_split.BestSplit`:

    S_t = max_w  w·n0/(w+n0) · ||mean(x[t-w+1..t]) - mean(x[..t-w])||² / s²,

the generalised-likelihood-ratio form of CUSUM for a mean change of unknown size and
direction (Lorden; Siegmund & Venkatraman), with s² the user's per-event variance before
the window, shrunk toward the population's. An alert is raised when S_t crosses the
threshold; its argmax w marks the *tentative* change at t - w + 1. The product reads the
statistic at each user's last event: an alert there is a tentative recent change.

Its calibration is its own and real: :func:`calibrate_recent` counts, on real held-aside
histories scored event by event as a stream, how often the statistic crosses a threshold
upwards (a new alert) per 1,000 events, and the share of users alerted at their last event.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.vstack([rng.normal(size=(40, 4)), rng.normal(size=(6, 4)) + [3, 0, 0, 0]])
>>> det = RecentShift(n_components=4, detrend="none").fit(x, np.array([0, 46]))
>>> det.predict(threshold=6.0).event_index
array([40])
"""

from __future__ import annotations

import numpy as np

from core.detectors.base import ChangePoints, Detector, DetectorResult, check_population
from core.detectors.real_null import RealCalibration
from core.detectors.shift_features import ShiftFeatures, event_index
from core.errors import ShiftError

PRIOR_EVENTS = 10  # weight of the population variance in each user's shrunk variance


def recent_statistic(
    z: np.ndarray, offsets: np.ndarray, window: int, min_recent: int, min_reference: int, pop_var: float
) -> tuple[np.ndarray, np.ndarray]:
    """(S_t, argmax w) at every event of a CSR population; NaN / 0 where undefined."""
    n = len(z)
    cum = np.vstack([np.zeros(z.shape[1]), np.cumsum(z, axis=0)])
    cum_sq = np.concatenate([[0.0], np.cumsum((z**2).sum(axis=1))])
    start = np.repeat(offsets[:-1], np.diff(offsets))
    t = event_index(offsets)
    rows = np.arange(n)
    best, arg = np.full(n, np.nan), np.zeros(n, np.int64)
    for w in range(min_recent, window + 1):
        n0 = t + 1 - w
        ok = n0 >= min_reference
        r, s = rows[ok], start[ok]
        m0 = n0[ok].astype(np.float64)
        ref = cum[r + 1 - w] - cum[s]
        recent = cum[r + 1] - cum[r + 1 - w]
        diff = recent / w - ref / m0[:, None]
        ref_var = (cum_sq[r + 1 - w] - cum_sq[s] - (ref**2).sum(1) / m0) / m0
        var = (m0 * ref_var + PRIOR_EVENTS * pop_var) / (m0 + PRIOR_EVENTS)
        stat = w * m0 / (w + m0) * (diff**2).sum(1) / np.maximum(var, 1e-12)
        cur = best[r]
        better = ~(stat <= cur)  # NaN-safe: a first value always wins
        best[r[better]], arg[r[better]] = stat[better], w
    return best, arg


class RecentShift(Detector):
    """Tentative change within the last ``window`` events, read at each user's last event."""

    name = "recent_shift"
    peak_based = False
    exact_threshold = True  # one candidate per user; it fires at t exactly when score >= t
    online = True
    chunkable = True  # the statistic at an event depends only on that user's earlier events
    null = "real"

    def __init__(
        self,
        n_components: int = 8,
        n_categories: int = 0,
        detrend: str = "index",
        window: int = 8,
        min_recent: int = 3,
        min_reference: int = 8,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.n_categories = n_categories
        self.detrend = detrend
        self.window = window
        self.min_recent = min_recent
        self.min_reference = min_reference
        self.random_state = random_state

    @property
    def h(self) -> int:
        return self.window

    @property
    def min_events(self) -> int:
        """The fewest events a user needs before the alert can watch it."""
        return self.min_reference + self.min_recent

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        if not 1 <= self.min_recent <= self.window or self.min_reference < 2:
            raise ShiftError(
                f"{self.name}: need 1 <= min_recent <= window and min_reference >= 2, got "
                f"{self.min_recent}, {self.window}, {self.min_reference}"
            )
        self.features_ = ShiftFeatures(
            self.n_components, self.n_categories, self.detrend, random_state=self.random_state
        ).fit(vectors, offsets)
        z = self.features_.transform(vectors, offsets)
        self.pop_var_ = float(z.var(axis=0).sum()) if len(z) else 1.0

    def real_calibration(
        self, vectors: np.ndarray, offsets: np.ndarray, users: np.ndarray | None = None
    ) -> RealCalibration:
        """New alerts per 1,000 events of these real histories streamed (half set, half check);
        ``users``: the null sample (positions; default every user)."""
        return calibrate_recent(self, vectors, offsets, users=users)

    def statistic(self, vectors: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """S_t and its argmax window at every event of another population (fitted state)."""
        z = self.features_.transform(vectors, offsets)
        return recent_statistic(z, offsets, self.window, self.min_recent, self.min_reference, self.pop_var_)

    def fit(
        self,
        vectors: np.ndarray,
        offsets: np.ndarray,
        ratings: np.ndarray | None = None,
        null_users: np.ndarray | None = None,  # nothing here depends on the null sample
    ) -> RecentShift:
        vectors, offsets = check_population(vectors, offsets)
        self._fit_population(vectors, offsets, ratings)
        self.offsets_, self.n_events_ = offsets, int(offsets[-1])
        stat, arg = self.statistic(vectors, offsets)
        self.result_ = DetectorResult(stat, offsets, self._last_event(stat, arg, offsets))
        return self

    def score(self, vectors: np.ndarray, offsets: np.ndarray) -> DetectorResult:
        """Statistic and last-event alerts of another population (fitted state; exact per user)."""
        vectors, offsets = check_population(vectors, offsets)
        stat, arg = self.statistic(vectors, offsets)
        return DetectorResult(stat, offsets, self._last_event(stat, arg, offsets))

    def export_state(self) -> dict[str, np.ndarray]:
        return {**self.features_.export_state(), "pop_var": np.asarray(self.pop_var_, np.float64)}

    def _import_state(self, state: dict[str, np.ndarray]) -> None:
        self.features_ = ShiftFeatures(
            self.n_components, self.n_categories, self.detrend, random_state=self.random_state
        ).restore(state)
        self.pop_var_ = float(state["pop_var"])

    @staticmethod
    def _last_event(stat: np.ndarray, arg: np.ndarray, offsets: np.ndarray) -> ChangePoints:
        counts = np.diff(offsets)
        users = np.flatnonzero(counts > 0)
        last = offsets[users + 1] - 1
        ok = np.isfinite(stat[last])
        users, last = users[ok], last[ok]
        n = counts[users]
        return ChangePoints(users, n - arg[last], stat[last], n - 1)

    def detect(self, vectors: np.ndarray, offsets: np.ndarray, thresholds) -> list[ChangePoints]:
        vectors, offsets = check_population(vectors, offsets)
        cand = self._last_event(*self.statistic(vectors, offsets), offsets)
        return [cand.where(cand.score >= t) for t in thresholds]

    def null_alarm_scores(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return self.detect(vectors, offsets, [-np.inf])[0].score


def upcrossings(stat: np.ndarray, offsets: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Number of new alerts (S_t crossing each threshold upwards) over a population stream."""
    prev = np.concatenate([[np.nan], stat[:-1]])
    prev[offsets[:-1][np.diff(offsets) > 0]] = np.nan  # a user's stream starts below
    prev = np.where(np.isfinite(prev), prev, -np.inf)
    cur = np.where(np.isfinite(stat), stat, -np.inf)
    # crossing t: t in (prev, cur]; only rising steps can contain a threshold, and for those
    # hi < t implies lo < t, so the count is #(lo < t) - #(hi < t)
    up = prev < cur
    lo, hi = np.sort(prev[up]), np.sort(cur[up])
    return np.searchsorted(lo, thresholds, side="left") - np.searchsorted(hi, thresholds, side="left")


def calibrate_recent(
    detector: RecentShift,
    vectors: np.ndarray,
    offsets: np.ndarray,
    users: np.ndarray | None = None,
    check_fraction: float = 0.5,
    random_state: int = 0,
) -> RealCalibration:
    """Real-history calibration of a fitted :class:`RecentShift`: new alerts per 1,000 events
    of held-aside real histories streamed event by event, and the share of those users
    alerted at their last event; a seeded ``check_fraction`` of the users checks it."""
    from core.detectors.real_null import _sample_users

    vectors, offsets = check_population(vectors, offsets)
    pool = np.arange(len(offsets) - 1) if users is None else np.asarray(users, np.int64)
    order = np.random.default_rng(random_state).permutation(pool)
    n_check = int(round(len(order) * check_fraction))
    parts = [np.sort(order[n_check:]), np.sort(order[:n_check])]
    curves, thresholds = [], None
    for part in parts:
        if len(part) == 0:
            continue
        v, o = _sample_users(offsets, part, vectors)
        stat, arg = detector.statistic(v, o)
        if thresholds is None:
            s = np.unique(stat[np.isfinite(stat)])
            thresholds = np.append(s, np.nextafter(s[-1], np.inf)) if len(s) else np.array([0.0])
        last = RecentShift._last_event(stat, arg, o).score
        per = 1000.0 * upcrossings(stat, o, thresholds) / max(int(o[-1]), 1)
        share = (len(last) - np.searchsorted(np.sort(last), thresholds, side="left")) / len(part)
        curves.append((per, share, int(o[-1]), len(part)))
    if not curves:
        raise ShiftError(f"{detector.name}: cannot calibrate on an empty sample of users")
    per, share, n_ev, n_us = curves[0]
    check = {}
    if len(curves) > 1:
        cper, cshare, cn_ev, cn_us = curves[1]
        check = {"per_1000": cper, "users_flagged": cshare, "n_events": cn_ev, "n_users": cn_us}
    # up-crossings are not monotone in the threshold in general; a stated rate must be an
    # upper bound, so take the running maximum from the top
    per = np.maximum.accumulate(per[::-1])[::-1]
    return RealCalibration(detector.name, thresholds, per, share, n_ev, n_us, check)
