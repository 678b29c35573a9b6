"""Whether a log's timestamps are consumption dates or the order of one sign-up session.

MovieLens users entered most of their ratings in one sitting (timestamps back-filled), so a
date axis there says nothing about when tastes changed. This is read from the timestamps
themselves, never from the dataset's name: a user is back-filled when at least half of their
events carry one calendar day; a log is, when most of its users are.

>>> import numpy as np
>>> day = np.datetime64("2020-01-01T10:00")
>>> one_sitting = day + np.arange(10).astype("timedelta64[m]")
>>> spread = day + np.arange(10).astype("timedelta64[D]")
>>> busiest_day_share(one_sitting), busiest_day_share(spread)
(1.0, 0.1)
>>> backfilled_share(np.array([0, 10, 20]), np.concatenate([one_sitting, spread]))
0.5
"""

from __future__ import annotations

import numpy as np

# A user with at least this share of events on one calendar day entered them in one sitting.
ONE_SITTING = 0.5
# A log whose share of such users is at least this has back-filled dates.
BACKFILLED_LOG = 0.5


def busiest_day_share(ts: np.ndarray) -> float:
    """The share of ``ts`` (datetime64) that falls on its busiest calendar day (0 if empty)."""
    days = np.asarray(ts, dtype="datetime64[D]")
    if len(days) == 0:
        return 0.0
    return float(np.unique(days, return_counts=True)[1].max() / len(days))


def backfilled_share(offsets: np.ndarray, ts: np.ndarray) -> float:
    """The share of users (CSR ``offsets`` over ``ts``) with at least :data:`ONE_SITTING` of
    their events on one day."""
    n = len(offsets) - 1
    if n <= 0:
        return 0.0
    hits = sum(busiest_day_share(ts[offsets[k] : offsets[k + 1]]) >= ONE_SITTING for k in range(n))
    return hits / n
