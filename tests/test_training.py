"""The benchmarks' detector side: training users' events, fit-and-calibrate, per-user change points."""

from __future__ import annotations

import numpy as np

from core.benchmark.training import change_points_by_user, fit_and_calibrate, training_events
from core.detectors import make_detector
from core.detectors.calibration import calibrate
from core.store import EventArrays


def _events() -> tuple[EventArrays, np.ndarray]:
    """Six users of 60 events; user u switches item group at event 30 when u is odd."""
    rng = np.random.default_rng(0)
    items = np.vstack([np.eye(4)[g] + 0.1 * rng.normal(size=(10, 4)) for g in range(4)]).astype(np.float32)
    idx = []
    for u in range(6):
        first, second = u % 4, (u + 1) % 4 if u % 2 else u % 4
        idx += [first * 10 + rng.integers(0, 10, 30), second * 10 + rng.integers(0, 10, 30)]
    n = 6 * 60
    events = EventArrays(
        np.array([f"u{u}" for u in range(6)]),
        np.arange(7) * 60,
        np.concatenate(idx).astype(np.int32),
        np.arange(n).astype("datetime64[us]"),
        np.arange(n, dtype=np.float32),
    )
    return events, items


def test_training_events_keep_only_the_given_users_in_order():
    events, _ = _events()
    part = training_events(events, np.array(["u4", "u1"]))
    assert part.user_ids.tolist() == ["u1", "u4"] and part.offsets.tolist() == [0, 60, 120]
    assert np.array_equal(part.item_idx[60:], events.item_idx[240:300])
    assert np.array_equal(part.rating[:60], events.rating[60:120])
    assert np.array_equal(part.ts[60:], events.ts[240:300])


def test_fit_and_calibrate_is_fit_then_calibrate_on_the_training_users():
    events, items = _events()
    training = training_events(events, events.user_ids[:4])
    fitted = fit_and_calibrate("zscore", items, training, n_shuffles=2, random_state=3, real_null=True)
    manual = make_detector("zscore").fit(items[training.item_idx], training.offsets, training.rating)
    expected = calibrate(manual, items[training.item_idx], training.offsets, n_shuffles=2, random_state=3)
    assert np.array_equal(fitted.detector.scores_, manual.scores_, equal_nan=True)
    assert np.array_equal(fitted.calibration.thresholds, expected.thresholds)
    assert np.array_equal(fitted.calibration.false_alarms, expected.false_alarms)
    real = calibrate(manual, items[training.item_idx], training.offsets, null="real")
    assert np.array_equal(fitted.real_null_calibration.false_alarms, real.false_alarms)
    assert fit_and_calibrate("zscore", items, training).real_null_calibration is None


def test_change_points_by_user_covers_every_user():
    events, items = _events()
    det = make_detector("zscore").fit(items[events.item_idx], events.offsets)
    cp = det.predict(float(np.median(det.candidates_.score)))
    found = change_points_by_user(cp, events.n_users)
    assert len(found) == events.n_users
    assert sum(len(index) for index, _ in found) == len(cp)
    for k, (index, alert) in enumerate(found):
        assert np.array_equal(index, cp.event_index[cp.user == k])
        assert np.array_equal(alert, cp.alert_index[cp.user == k])
