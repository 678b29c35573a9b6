"""Results read from what ``python -m core detect`` stored for a big dataset: nothing is
fitted, and no reader holds the whole log (:mod:`core.artefacts.results` owns the files)."""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from core.artefacts import results as files
from core.detectors import make_detector
from core.detectors.population import UserSignal
from core.results.base import DetectionResults, ScoredUsers


class StoredResults(DetectionResults):
    """The stored results of ``detector`` on dataset ``name`` (NotPrecomputed, with the command
    to run, when they are missing or out of date)."""

    def __init__(self, name: str, detector: str) -> None:
        self.dataset = name
        self.detector = make_detector(detector)  # its settings only: nothing is fitted here
        companion = getattr(self.detector, "tentative", None)
        self._companion = (lambda: StoredResults(name, companion)) if companion else None

    @cached_property
    def _summary(self) -> files.StoredSummary:
        return files.population_summary(self.dataset, self.detector.name)

    @property
    def calibration(self):
        return self._summary.calibration

    @property
    def default_threshold(self) -> float:
        return self._summary.default_threshold

    def change_points(self, threshold: float | None = None) -> pd.DataFrame:
        return files.stored_change_points(self.dataset, self.detector.name, threshold)

    def candidates(self) -> pd.DataFrame:
        stored = files.stored_change_points(self.dataset, self.detector.name, -math.inf)
        return stored[["user_id", "event_index", "alert_index", "score"]]

    def user_signal(self, user_id: str, threshold: float | None = None) -> UserSignal:
        return files.stored_user_signal(self.dataset, str(user_id), self.detector.name, threshold)

    def scored_users(self) -> ScoredUsers:
        return files.scored_users(self.dataset, self.detector.name)

    def user_ranking(self) -> pd.DataFrame:
        best = files.user_table(self.dataset, self.detector.name).dropna(subset=["max_score"])
        best = best.sort_values("max_score", ascending=False, kind="stable")
        return best[["user_id", "max_score"]].reset_index(drop=True)

    def top_score(self) -> float:
        edges = self._summary.score_histogram[1]
        return float(edges.max()) if len(edges) else 0.0

    def windows(self, user_ids, centres, before: int, after: int):
        return files.event_windows(self.dataset, list(user_ids), np.asarray(centres), before, after)

    # The empirical null's answers from what ``detect`` stored: the share beyond drift in
    # summary.json, each user's probability and highest (root) score in users.parquet.

    @cached_property
    def _share(self):
        return files.stored_shift_share(self.dataset, self.detector.name)

    def shift_share(self):
        return self._share

    @cached_property
    def _choice(self):
        # read once per results object, as the share: the Overview asks at every run, and each
        # read checks the stored files against the item features (the whole item matrix)
        return files.stored_feature_choice(self.dataset, self.detector.name)

    def feature_choice(self):
        return self._choice

    def user_probabilities(self) -> pd.DataFrame | None:
        if self._share is None:
            return None
        users = files.user_table(self.dataset, self.detector.name)
        return pd.DataFrame(
            {
                "user_id": users["user_id"].astype(str),
                "root_score": users["max_score"],
                "probability": users["probability"],
            }
        )

    @cached_property
    def _root_scores(self) -> np.ndarray:
        # read once per results object: the sidebar asks for the FDR at every ε move, and a big
        # dataset's users.parquet has a row per user
        scores = files.user_table(self.dataset, self.detector.name)["max_score"].to_numpy(np.float64)
        return scores[np.isfinite(scores)]

    def flagged_chance(self, threshold: float | None = None):
        from core.detectors.population import FlaggedChance

        if self._share is None:
            return None
        thr = self.default_threshold if threshold is None else float(threshold)
        flagged = int((self._root_scores >= thr).sum())
        expected = self._share.expected_chance(thr)  # as a fit's EmpiricalNull.fdr counts it
        return FlaggedChance(thr, flagged, expected, min(expected / max(flagged, 1), 1.0))

    def threshold_for_fdr(self, fdr: float) -> float:
        if self._share is None:
            return super().threshold_for_fdr(fdr)
        return self._share.threshold_for_fdr(self._root_scores, float(fdr))
