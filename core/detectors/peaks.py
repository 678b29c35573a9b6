"""Peak picking: a per-event score signal becomes change points by non-maximum suppression.

An event is a peak when its score is the largest within ``window`` events on either side
(same user only; the first of equal maxima wins) and not NaN. Peaks do not depend on the
threshold, so a threshold only filters them: ``predict(threshold)`` is a comparison, and
the false-alarm rate of a threshold is a count over the null peaks (see calibration).

>>> import numpy as np
>>> scores = np.array([0, 1, 3, 1, 0, 2, 5, 2, np.nan, 4, 0.5])
>>> offsets = np.array([0, 8, 11])
>>> candidate_peaks(scores, offsets, window=2)
array([2, 6, 9])
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _padded(scores: np.ndarray, offsets: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores with ``window`` -inf cells between (and around) users, and each event's position."""
    n_users = len(offsets) - 1
    counts = np.diff(offsets)
    starts = np.asarray(offsets[:-1]) + window * (np.arange(n_users) + 1)
    pos = np.repeat(starts - offsets[:-1], counts) + np.arange(int(offsets[-1]))
    padded = np.full(int(offsets[-1]) + window * (n_users + 1), -np.inf)
    clean = np.where(np.isnan(scores), -np.inf, scores)
    padded[pos] = clean
    return padded, pos


def candidate_peaks(scores: np.ndarray, offsets: np.ndarray, window: int) -> np.ndarray:
    """Flat indices of the local maxima of ``scores`` within ±``window`` events of each user."""
    scores = np.asarray(scores, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(scores) == 0:
        return np.empty(0, dtype=np.int64)
    padded, pos = _padded(scores, offsets, window)
    wins = sliding_window_view(padded, window)  # wins[i] = padded[i : i + window]
    left = wins[pos - window].max(axis=1)  # the window events before
    right = wins[pos + 1].max(axis=1)  # the window events after
    value = padded[pos]
    is_peak = np.isfinite(value) & (value > left) & (value >= right)
    return np.flatnonzero(is_peak)
