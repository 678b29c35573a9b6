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
import pandas as pd
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


def unmarked_peaks(scores: np.ndarray, marked, threshold: float, detector) -> pd.DataFrame:
    """Local maxima of one user's ``scores`` at or above ``threshold`` that are not among the
    ``marked`` change points, with the reason in words: a peak-picking detector keeps one peak
    per ``h`` events (the suppression of :func:`candidate_peaks`), a segmentation or an online
    detector decides on its own terms.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> det = SimpleNamespace(h=2, peak_based=True)
    >>> unmarked_peaks(np.array([0, 3, 1, 2.5, 0]), [1], 2.0, det)[["event_index", "score"]].values.tolist()
    [[3.0, 2.5]]
    """
    s = np.where(np.isfinite(scores), scores, -np.inf)
    if len(s) < 3:
        return pd.DataFrame({"event_index": [], "score": [], "reason": []})
    left = np.concatenate([[-np.inf], s[:-1]])
    right = np.concatenate([s[1:], [-np.inf]])
    marked = {int(m) for m in marked}
    local = np.flatnonzero((s >= threshold) & (s > left) & (s >= right) & np.isfinite(s))
    rows = []
    h = int(getattr(detector, "h", 1))
    for i in local:
        if int(i) in marked:
            continue
        if getattr(detector, "peak_based", True):
            lo, hi = max(0, i - h), min(len(s), i + h + 1)
            j = lo + int(np.argmax(s[lo:hi]))
            reason = (
                f"within {h} events of a stronger score at event {j} ({s[j]:.3g}): "
                f"one change point per {h} events (minimum distance)"
            )
        elif getattr(detector, "online", False):
            reason = "the online detector had already raised an alarm in this stretch"
        else:
            size = int(getattr(detector, "min_size", h))
            reason = f"not chosen by the segmentation (segments are at least {size} events long)"
        rows.append((int(i), float(scores[i]), reason))
    return pd.DataFrame(rows, columns=["event_index", "score", "reason"])
