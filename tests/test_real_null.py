"""Real-history calibration: the stated rate reproduces on fresh users; both units."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors import make_detector
from core.detectors.best_split import BestSplit
from core.detectors.real_null import RealCalibration, alarm_rates, calibrate_real
from core.errors import ShiftError


def drifting_population(n_users: int, seed: int, d: int = 6):
    """Users whose mean wanders slowly (a real-looking null: no planted change, some drift)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 160, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    parts = []
    for n in lengths:
        walk = np.cumsum(rng.normal(scale=0.05, size=(n, d)), axis=0)
        parts.append(rng.normal(size=(n, d)) + walk + rng.normal(size=d))
    return np.vstack(parts), offsets


def test_stated_rate_reproduces_on_a_fresh_seeded_population():
    v, o = drifting_population(1200, seed=0)
    det = BestSplit(n_components=6, min_size=8).fit(v, o)
    cal = calibrate_real(det, v, o, check_fraction=0.5, random_state=0)
    thr = cal.threshold_for(1.0)
    stated, _ = cal.rates_at(thr)
    assert 0.9 <= stated <= 1.0
    fresh_v, fresh_o = drifting_population(1200, seed=1)
    cp = det.detect(fresh_v, fresh_o, [thr])[0]
    measured = 1000.0 * len(cp) / fresh_o[-1]
    assert abs(measured - stated) <= 0.3 * stated  # the bar: within +-30%
    checked, _ = cal.checked_rates_at(thr)
    assert abs(checked - stated) <= 0.3 * stated


def test_two_units_and_their_thresholds():
    v, o = drifting_population(400, seed=2)
    det = BestSplit(min_size=8).fit(v, o)
    cal = calibrate_real(det, v, o, check_fraction=0.0)
    assert cal.check == {}
    thr = cal.threshold_for(0.05, unit="users")
    per, share = cal.rates_at(thr)
    assert share <= 0.05
    cp = det.detect(v, o, [thr])[0]
    # no check sample: the setting sample is every user, so the rates are the population's
    assert share == pytest.approx(len(np.unique(cp.user)) / (len(o) - 1))
    assert per == pytest.approx(1000.0 * len(cp) / o[-1])
    assert np.all(np.diff(cal.per_1000) <= 0) and np.all(np.diff(cal.users_flagged) <= 0)


def test_peak_based_detectors_calibrate_exactly_too():
    v, o = drifting_population(200, seed=3)
    det = make_detector("two_window").fit(v, o)
    cal = calibrate_real(det, v, o, check_fraction=0.0)
    thr = cal.threshold_for(2.0)
    cp = det.detect(v, o, [thr])[0]
    assert cal.rates_at(thr)[0] == pytest.approx(1000.0 * len(cp) / o[-1])


def test_round_trip_and_errors():
    cal = RealCalibration(
        "demo", np.array([1.0, 2.0]), np.array([3.0, 0.0]), np.array([0.4, 0.0]), 1000, 10, {}
    )
    assert RealCalibration.from_dict(cal.to_dict()).threshold_for(0.0) == 2.0
    with pytest.raises(ShiftError, match="unit"):
        cal.threshold_for(1.0, unit="percent")
    with pytest.raises(ShiftError, match="check sample"):
        cal.checked_rates_at(1.0)


def test_alarm_rates_counts_users_once():
    from core.detectors.base import ChangePoints

    cp = ChangePoints(
        np.array([0, 0, 1]), np.array([5, 9, 4]), np.array([3.0, 1.0, 2.0]), np.array([9, 9, 9])
    )
    per, share = alarm_rates(cp, n_users=4, n_events=1000, thresholds=np.array([0.5, 1.5, 2.5, 3.5]))
    assert per.tolist() == [3.0, 2.0, 1.0, 0.0]
    assert share.tolist() == [0.5, 0.5, 0.25, 0.0]


def test_calibrating_the_fitted_population_reuses_its_candidates():
    v, o = drifting_population(300, seed=4)
    det = BestSplit(min_size=8).fit(v, o)
    again = calibrate_real(det, v, o, random_state=3)
    reused = calibrate_real(det, random_state=3)
    np.testing.assert_allclose(reused.thresholds, again.thresholds)
    np.testing.assert_allclose(reused.per_1000, again.per_1000)
    np.testing.assert_allclose(reused.check["users_flagged"], again.check["users_flagged"])
