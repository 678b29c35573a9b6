"""Two-window quantities shared by the window detectors, built on core.trajectory.

For event t of a user with T events: the *before* window is events [t-h, t) and the
*after* window events [t, t+h); both exist only when h <= t and t + h <= T (otherwise NaN),
so a score at t is evidence that event t is the first event after a change.
"""

from __future__ import annotations

import numpy as np

from core.trajectory import recent_mean, two_window_delta
from core.user_events import UserEvents


def valid_rows(offsets: np.ndarray, h: int) -> np.ndarray:
    """Events whose before and after windows both fit in their user's history."""
    ev = UserEvents(offsets)
    user, index = ev.event_user, ev.index_in_user
    return (index >= h) & (index + h <= np.diff(offsets)[user])


def window_delta(vectors: np.ndarray, offsets: np.ndarray, h: int) -> np.ndarray:
    """mean(after) - mean(before) per event (N, d), NaN rows where a window is missing."""
    delta = np.asarray(two_window_delta(vectors, offsets, h), dtype=np.float64)
    delta[~valid_rows(offsets, h)] = np.nan
    return delta


def window_means(vectors: np.ndarray, offsets: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) window means per event, NaN rows where a window is missing."""
    n = int(offsets[-1])
    recent = np.asarray(recent_mean(vectors, offsets, h), dtype=np.float64)
    ok = valid_rows(offsets, h)
    rows = np.flatnonzero(ok)
    before = np.full((n, vectors.shape[1]), np.nan)
    after = np.full((n, vectors.shape[1]), np.nan)
    before[rows] = recent[rows - 1]  # mean of events t-h .. t-1
    after[rows] = recent[rows + h - 1]  # mean of events t .. t+h-1
    return before, after


def user_variance(vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each event's user's total variance (mean squared distance of its events to their mean)."""
    counts = np.diff(offsets)
    user = UserEvents(offsets).event_user
    nonempty = counts > 0
    sums = np.zeros((len(counts), vectors.shape[1]))
    sums[nonempty] = np.add.reduceat(vectors, offsets[:-1][nonempty], axis=0)
    means = sums / np.maximum(counts, 1)[:, None]
    sq = ((vectors - means[user]) ** 2).sum(axis=1)
    var = np.zeros(len(counts))
    var[nonempty] = np.add.reduceat(sq, offsets[:-1][nonempty]) / counts[nonempty]
    return var[user]
