"""Threshold <-> false alarms per 1,000 events, from shuffled (shift-free) histories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.detectors import make_detector
from core.detectors.calibration import Calibration, calibrate, shuffle_within_users
from core.errors import ShiftError


@pytest.fixture(scope="module")
def stable_population():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(30, 6))
    vectors = np.vstack([c + rng.normal(size=(80, 6)) for c in centres])
    return vectors, np.arange(0, 30 * 80 + 1, 80)


def test_shuffle_keeps_each_users_events():
    offsets = np.array([0, 3, 3, 7])
    order = shuffle_within_users(offsets, 0)
    assert sorted(order[:3]) == [0, 1, 2] and sorted(order[3:]) == [3, 4, 5, 6]
    assert not np.array_equal(shuffle_within_users(np.array([0, 50]), 1), np.arange(50))


@pytest.mark.parametrize("name", ["two_window", "page_hinkley"])
def test_false_alarms_never_increase_with_the_threshold(stable_population, name):
    vectors, offsets = stable_population
    det = make_detector(name).fit(vectors, offsets)
    cal = calibrate(det, vectors, offsets, n_shuffles=2, random_state=0)
    assert np.all(np.diff(cal.thresholds) > 0)
    assert np.all(np.diff(cal.false_alarms) <= 0)
    assert cal.false_alarms[0] > 0 and cal.false_alarms[-1] == 0
    rates = [cal.false_alarms_at(t) for t in np.linspace(cal.thresholds[0], cal.thresholds[-1], 50)]
    assert rates == sorted(rates, reverse=True)


def test_exact_calibration_counts_null_alarms(stable_population):
    vectors, offsets = stable_population
    det = make_detector("two_window").fit(vectors, offsets)
    cal = calibrate(det, vectors, offsets, n_shuffles=1, random_state=5)
    # recount by hand on the same shuffle
    null = vectors[shuffle_within_users(offsets, np.random.default_rng(5))]
    scores = det.null_alarm_scores(null, offsets)
    for rate in (0.5, 2.0, 5.0):
        t = cal.threshold_for(rate)
        alarms = int((scores >= t).sum())
        assert 1000 * alarms / len(vectors) <= rate
        assert cal.false_alarms_at(t) == pytest.approx(1000 * alarms / len(vectors))
        i = int(np.searchsorted(cal.thresholds, t))
        assert i == 0 or cal.false_alarms[i - 1] > rate  # the lowest threshold meeting the rate


def test_threshold_for_and_false_alarms_at_round_trip():
    cal = Calibration("d", np.array([1.0, 2.0, 3.0, 4.0]), np.array([8.0, 3.0, 1.0, 0.0]), 4000)
    assert cal.threshold_for(1.0) == 3.0
    assert cal.threshold_for(2.5) == 3.0
    assert cal.threshold_for(100.0) == 1.0
    assert cal.false_alarms_at(0.5) == 8.0 and cal.false_alarms_at(3.5) == 1.0
    with pytest.raises(ShiftError, match=">= 0"):
        cal.threshold_for(-1)


def test_calibration_round_trips_through_json():
    # the stored results' summary.json holds the calibration this way (core.artefacts.results)
    cal = Calibration("d", np.array([1.0, 2.0]), np.array([3.0, 0.0]), 10)
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back.detector == "d" and back.n_null_events == 10
    assert np.array_equal(back.thresholds, cal.thresholds) and np.array_equal(
        back.false_alarms, cal.false_alarms
    )


def test_default_threshold_meets_its_rate_on_fresh_null_histories(stable_population):
    # calibrated on one set of shuffles, checked on others: the rate must carry over
    vectors, offsets = stable_population
    det = make_detector("two_window").fit(vectors, offsets)
    t = calibrate(det, vectors, offsets, n_shuffles=3, random_state=0).threshold_for(5.0)
    fresh = np.concatenate(
        [det.null_alarm_scores(vectors[shuffle_within_users(offsets, s)], offsets) for s in (101, 102, 103)]
    )
    assert 1000 * (fresh >= t).sum() / (3 * len(vectors)) <= 10.0
