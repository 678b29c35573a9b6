"""RecentShift: a change in the newest events is marked tentatively at its exact index."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors.recent_shift import RecentShift, calibrate_recent, upcrossings
from core.errors import ShiftError


def population(n_users: int = 300, seed: int = 0, d: int = 6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 120, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return rng.normal(size=(int(offsets[-1]), d)), offsets


def with_recent_change(v, o, before: int, after: int, shift: float = 3.0):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(before + after, v.shape[1]))
    x[before:, 0] += shift
    return np.vstack([v, x]), np.append(o, o[-1] + before + after)


@pytest.mark.parametrize("after", [4, 6, 8])
def test_recent_change_marked_at_its_exact_index(after):
    v, o = with_recent_change(*population(), before=40, after=after)
    det = RecentShift(n_components=6, detrend="none").fit(v, o)
    cal = calibrate_recent(det, v[: o[-2]], o[:-1], check_fraction=0.0)
    cp = det.predict(cal.threshold_for(1.0))
    me = len(o) - 2
    assert cp.event_index[cp.user == me].tolist() == [40]
    assert cp.alert_index[cp.user == me].tolist() == [40 + after - 1]


def test_calibrated_stream_rate_reproduces_on_fresh_users():
    v, o = population(1500, seed=1)
    det = RecentShift(n_components=6).fit(v, o)
    cal = calibrate_recent(det, v, o, check_fraction=0.5, random_state=0)
    thr = cal.threshold_for(1.0)
    stated = cal.rates_at(thr)[0]
    fv, fo = population(1500, seed=2)
    stat, _ = det.statistic(fv, fo)
    measured = 1000.0 * upcrossings(stat, fo, np.array([thr]))[0] / fo[-1]
    assert abs(measured - stated) <= 0.3 * stated
    assert abs(cal.checked_rates_at(thr)[0] - stated) <= 0.3 * stated


def test_upcrossings_count_new_alerts_per_user_stream():
    stat = np.array([np.nan, 1.0, 3.0, 4.0, 1.0, 5.0, 6.0, 0.5])
    offsets = np.array([0, 5, 8])  # user 0: nan 1 3 4 1; user 1: 5 6 0.5
    # threshold 2: user 0 crosses at 3.0; user 1 starts above (a new stream counts as a
    # crossing from below)
    assert upcrossings(stat, offsets, np.array([2.0, 4.5, 10.0])).tolist() == [2, 1, 0]


def test_users_too_short_to_watch_have_no_candidate():
    v, o = population(50, seed=3)
    o = np.append(o, o[-1] + 9)
    v = np.vstack([v, np.zeros((9, 6))])
    det = RecentShift(min_reference=8, min_recent=3).fit(v, o)
    assert det.min_events == 11
    assert len(o) - 2 not in det.candidates_.user.tolist()


def test_bad_window_raises():
    v, o = population(10)
    with pytest.raises(ShiftError, match="min_recent"):
        RecentShift(window=2, min_recent=3).fit(v, o)


def test_exported_state_restores_the_same_alerts():
    v, o = with_recent_change(*population(), before=60, after=5)
    det = RecentShift(n_components=6).fit(v, o)
    back = RecentShift(n_components=6).restore(det.export_state(), det.result_)
    a, b = det.detect(v, o, [6.0])[0], back.detect(v, o, [6.0])[0]
    np.testing.assert_array_equal(a.user, b.user)
    np.testing.assert_allclose(a.score, b.score)
