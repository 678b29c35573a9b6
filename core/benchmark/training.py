"""The detector side of every benchmark: learn from training users, report per benchmark user.

Both benchmarks split real users in two (:func:`core.benchmark.splices.split_users`): the
detector learns its population state and its calibration from one part
(:func:`training_events`, :func:`fit_and_calibrate`), and benchmark users are built from
the other, so nothing is tuned on the users it is scored on. Change points come back per
benchmark user, in the order of the benchmark (:func:`change_points_by_user`).

>>> import numpy as np
>>> from core.detectors.base import ChangePoints
>>> cp = ChangePoints(np.array([0, 2, 2]), np.array([30, 12, 40]), np.ones(3), np.array([49, 31, 59]))
>>> [found.tolist() for found, _ in change_points_by_user(cp, 3)]
[[30], [], [12, 40]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.detectors import make_detector
from core.detectors.base import ChangePoints, Detector
from core.detectors.calibration import Calibration, calibrate
from core.detectors.population import CALIBRATION_SHUFFLES
from core.store import EventArrays


def training_events(events: EventArrays, user_ids: np.ndarray) -> EventArrays:
    """The events of the users in ``user_ids`` only, in CSR layout and the original order."""
    keep_user = np.isin(events.user_ids, user_ids)
    counts = np.diff(events.offsets)
    keep = np.repeat(keep_user, counts)
    offsets = np.concatenate([[0], np.cumsum(counts[keep_user])]).astype(np.int64)
    return EventArrays(
        events.user_ids[keep_user], offsets, events.item_idx[keep], events.ts[keep], events.rating[keep]
    )


@dataclass(frozen=True)
class CalibratedDetector:
    """A detector fitted on training users, with its false-alarm curve on their shuffled
    histories and, when asked for, on their real histories taken as the null."""

    detector: Detector
    calibration: Calibration
    real_null_calibration: Calibration | None = None


def fit_and_calibrate(
    detector: str,
    item_features: np.ndarray,
    training: EventArrays,
    *,
    n_shuffles: int = CALIBRATION_SHUFFLES,
    random_state: int = 0,
    real_null: bool = False,
    null_users: EventArrays | None = None,
) -> CalibratedDetector:
    """Fit ``detector`` on the ``training`` users (``item_features`` row i is item_idx i, of
    the kind the detector reads) and calibrate it on ``n_shuffles`` shuffled copies of their
    histories; ``real_null`` also calibrates on real histories as they are: those of
    ``null_users`` (a planted world's unchanged users) or else of the training users."""
    det = make_detector(detector)
    vectors = item_features[training.item_idx]
    det.fit(vectors, training.offsets, training.rating)
    shuffled = calibrate(det, vectors, training.offsets, n_shuffles=n_shuffles, random_state=random_state)
    null = training if null_users is None else null_users
    real = calibrate(det, item_features[null.item_idx], null.offsets, null="real") if real_null else None
    return CalibratedDetector(det, shuffled, real)


def change_points_by_user(cp: ChangePoints, n_users: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each user position ``0..n_users-1``: its change points' ``(event_index,
    alert_index)``, ascending (``cp`` is sorted by user, then event index)."""
    bounds = np.searchsorted(cp.user, np.arange(n_users + 1))
    return [(cp.event_index[a:b], cp.alert_index[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
