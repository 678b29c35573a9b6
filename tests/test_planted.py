"""Scoring against a planted truth: the threshold sweep is score_detections at every threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.benchmark.planted import score_detections, threshold_grid, threshold_sweep


def test_the_sweep_equals_scoring_each_threshold_alone():
    rng = np.random.default_rng(3)
    users = [str(u) for u in range(60)]
    kinds = rng.choice(["abrupt", "gradual", "stable", "multi"], size=len(users))
    labels = pd.DataFrame({"user_id": users, "kind": kinds})
    truth = pd.DataFrame(
        [(u, int(rng.integers(20, 60))) for u, k in zip(users, kinds) if k in ("abrupt", "gradual")],
        columns=["user_id", "event_index"],
    )
    n = 400
    found = pd.DataFrame(
        {
            "user_id": rng.choice(users + ["not-labelled"], size=n),
            "event_index": rng.integers(0, 80, n),
            "score": rng.gamma(2.0, 1.0, n),
        }
    )
    found["alert_index"] = found["event_index"] + 19
    lengths = pd.Series({u: 80 for u in users})
    grid = threshold_grid(found["score"].to_numpy(), n=25)
    swept = threshold_sweep(truth, labels, found, lengths, grid, margin=5)
    for row, t in zip(swept.itertuples(), grid):
        alone = score_detections(truth, labels, found[found["score"] >= t], lengths, margin=5)
        assert (row.precision, row.recall, row.f1, row.false_alarms_per_1000) == (
            alone["precision"],
            alone["recall"],
            alone["f1"],
            alone["false_alarms_per_1000"],
        )
    assert swept["recall"].iloc[0] > swept["recall"].iloc[-1]  # the sweep is not flat
