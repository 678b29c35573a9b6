"""Results of a detector fitted in memory on every user (a :class:`PopulationFit`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pandas as pd

from core.detectors import population
from core.detectors.population import PopulationFit, UserSignal
from core.results.base import DetectionResults, ScoredUsers

SIGNALS_KEPT = 256  # users' signals a results object remembers (the most recently asked)


class FittedResults(DetectionResults):
    """``fit``'s results; ``companion`` loads the results of the detector of its tentative
    recent-shift alerts (``recent_shift`` for ``best_split``), when it has one."""

    def __init__(self, fit: PopulationFit, companion: Callable[[], DetectionResults] | None = None) -> None:
        self.fit = fit
        self.dataset = fit.dataset
        self.detector = fit.detector
        self._companion = companion
        # One user's signal at one threshold, remembered: a dashboard run asks for it twice
        # (the timeline's change points, and the user's state), each a rerun of a segmentation
        # detector on the user, and every viewer of a server asks again at each ε move
        # (bench/load.py, issue 22). The dashboard shares one results object per dataset.
        self._signals: OrderedDict[tuple[str, float | None], UserSignal] = OrderedDict()
        self._signals_lock = threading.Lock()

    @property
    def calibration(self):
        return self.fit.calibration

    @property
    def default_threshold(self) -> float:
        return self.fit.default_threshold

    def change_points(self, threshold: float | None = None) -> pd.DataFrame:
        return population.change_points(self.fit, threshold)

    def candidates(self) -> pd.DataFrame:
        cand = self.fit.result.candidates
        return pd.DataFrame(
            {
                "user_id": self.fit.events.user_ids[cand.user],
                "event_index": cand.event_index.astype(np.int64),
                "alert_index": cand.alert_index.astype(np.int64),
                "score": cand.score.astype(np.float64),
            }
        )

    def user_signal(self, user_id: str, threshold: float | None = None) -> UserSignal:
        """Shared with every caller (the score is read-only): copy the frame to change it."""
        key = (str(user_id), None if threshold is None else float(threshold))
        with self._signals_lock:
            if key in self._signals:
                self._signals.move_to_end(key)
                return self._signals[key]
        signal = population.user_signal(self.fit, str(user_id), threshold)
        signal.score.flags.writeable = False
        with self._signals_lock:
            self._signals[key] = signal
            while len(self._signals) > SIGNALS_KEPT:
                self._signals.popitem(last=False)
        return signal

    def scored_users(self) -> ScoredUsers:
        offsets = np.asarray(self.fit.result.offsets, dtype=np.int64)
        counts = np.diff(offsets)
        finite = np.isfinite(np.asarray(self.fit.result.scores, dtype=np.float64)).astype(np.int64)
        per_user = np.add.reduceat(finite, offsets[:-1]) if len(finite) else np.zeros(len(counts), np.int64)
        per_user[counts == 0] = 0  # reduceat repeats a value for an empty slice
        scorable = per_user > 0
        return ScoredUsers(
            n_users=len(counts),
            n_scorable=int(scorable.sum()),
            min_events=int(counts[scorable].min()) if scorable.any() else 0,
            scored_events=int(counts[scorable].sum()),
        )

    def user_ranking(self) -> pd.DataFrame:
        cand = self.fit.result.candidates
        if len(cand) == 0:
            return pd.DataFrame({"user_id": pd.Series(dtype=str), "max_score": pd.Series(dtype=float)})
        best = pd.DataFrame({"user": cand.user, "score": cand.score}).groupby("user")["score"].max()
        best = best.sort_values(ascending=False, kind="stable")
        return pd.DataFrame(
            {"user_id": self.fit.events.user_ids[best.index.to_numpy()], "max_score": best.to_numpy()}
        )

    def top_score(self) -> float:
        cand = self.fit.result.candidates
        return float(np.nanmax(cand.score)) if len(cand) else 0.0

    def user_states(self, located: pd.DataFrame, tentative: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per user: ``user_id, n_events, state, tentative, change_points`` (``detect --users``)."""
        return population.user_states(self.fit, located, tentative)

    def windows(self, user_ids, centres, before: int, after: int):
        ev = self.fit.events
        pos = np.array([ev.users.position(str(u)) for u in user_ids], dtype=np.int64)
        centres = np.asarray(centres, dtype=np.int64)
        counts = np.diff(ev.offsets)[pos] if len(pos) else np.empty(0, np.int64)
        start = np.clip(centres - int(before), 0, None)
        end = np.minimum(centres + int(after), counts)
        lengths = np.maximum(end - start, 0)
        k = np.repeat(np.arange(len(pos)), lengths)
        first = np.repeat(np.cumsum(lengths) - lengths, lengths)
        seq = np.arange(int(lengths.sum())) - first + np.repeat(start, lengths)
        rows = ev.offsets[pos][k] + seq
        return k.astype(np.int64), seq.astype(np.int64), ev.item_idx[rows].astype(np.int64)

    def shift_share(self):
        return population.shift_share(self.fit)

    def feature_choice(self):
        return getattr(self.fit.detector, "choice_", None)

    def user_probabilities(self) -> pd.DataFrame | None:
        return (
            population.user_probabilities(self.fit)
            if population.empirical_null(self.fit) is not None
            else None
        )

    def flagged_chance(self, threshold: float | None = None):
        return population.flagged_chance(self.fit, threshold)

    def threshold_for_fdr(self, fdr: float) -> float:
        return population.threshold_for_fdr(self.fit, fdr)
