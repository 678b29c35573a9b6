"""Metrics against hand-computed cases: change-point matching, P/R/F1, delays, Recall/NDCG@k, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics import (
    MatchCounts,
    false_alarms_per_1000,
    match_change_points,
    median,
    ndcg_at_k,
    paired_relative_ci,
    precision_recall_f1,
    recall_at_k,
)


def test_matching_is_one_to_one_within_the_margin():
    assert match_change_points([50], [48, 52], margin=5) == [(50, 48)]  # one truth, one match
    assert match_change_points([10, 20], [15], margin=5) == [(10, 15)]  # one prediction, one truth
    assert match_change_points([10, 20], [15, 16], margin=5) == [(10, 15), (20, 16)]
    assert match_change_points([10], [15], margin=5) == [(10, 15)]  # the margin is inclusive
    assert match_change_points([10], [16], margin=5) == []
    assert match_change_points([], [3], margin=5) == [] and match_change_points([3], [], margin=5) == []


def test_precision_recall_f1_by_hand():
    assert precision_recall_f1(3, 1, 2) == pytest.approx((0.75, 0.6, 2 * 0.75 * 0.6 / 1.35))
    assert precision_recall_f1(0, 0, 4) == (1.0, 0.0, 0.0)  # never firing: no recall
    assert precision_recall_f1(0, 5, 0) == (0.0, 1.0, 0.0)


def test_match_counts_add_up_over_users_with_errors_and_delays():
    counts = MatchCounts()
    counts.add([50], [53, 90], [60, 95], margin=10)  # a hit (error 3, delay 10) and a false alarm
    counts.add([40], [62], [70], margin=10)  # a miss and a false alarm
    counts.add([40, 80], [41, 88], [45, 100], margin=10)  # two hits
    assert (counts.tp, counts.fp, counts.fn) == (3, 2, 1)
    assert counts.location_errors == [3, 1, 8] and counts.alert_delays == [10, 5, 20]
    assert counts.precision_recall_f1() == precision_recall_f1(3, 2, 1)
    assert median(counts.alert_delays) == 10.0 and np.isnan(median([]))


def test_false_alarm_rate():
    assert false_alarms_per_1000(2, 200) == 10.0 and np.isnan(false_alarms_per_1000(0, 0))


def test_recall_and_ndcg_at_k():
    relevant = np.array([5, 6, 7])
    assert recall_at_k(np.array([5, 6, 7]), relevant) == 1.0
    assert ndcg_at_k(np.array([5, 6, 7]), relevant) == pytest.approx(1.0)
    assert (
        recall_at_k(np.array([1, 2, 3]), relevant) == 0.0 and ndcg_at_k(np.array([1, 2, 3]), relevant) == 0.0
    )
    # One hit at rank 2 of 2, three relevant: DCG 1/log2(3), ideal DCG 1 + 1/log2(3).
    assert ndcg_at_k(np.array([1, 6]), relevant) == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert recall_at_k(np.array([1, 6]), relevant) == pytest.approx(1 / 3)


def test_paired_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 0.5, size=200)
    assert paired_relative_ci(2 * b, b) == pytest.approx((1.0, 1.0, 1.0))
    a = b * rng.uniform(1.0, 1.6, size=200)
    rel, lo, hi = paired_relative_ci(a, b, n_resamples=500, random_state=3)
    assert lo < rel < hi and 0.2 < rel < 0.4
    assert paired_relative_ci(a, b, n_resamples=500, random_state=3) == (rel, lo, hi)


def test_identical_paired_scores_differ_by_exactly_zero():
    from core.metrics import paired_relative_ci

    same = np.array([0.0, 0.0, 0.0, 0.5, 0.0])
    assert paired_relative_ci(same, same.copy(), n_resamples=50) == (0.0, 0.0, 0.0)
