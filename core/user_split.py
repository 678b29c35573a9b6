"""Which real users a step may learn from: a seeded split into calibration and test users.

Defaults are chosen, and models (a fine-tuned encoder) trained, on calibration users only; the
benchmark scores on the test users. One function, below every stage that needs it.

>>> import numpy as np
>>> cal, test = split_users(np.array(["a", "b", "c", "d"]), 0.5, random_state=0)
>>> sorted(cal.tolist() + test.tolist()), len(cal), set(cal) & set(test)
(['a', 'b', 'c', 'd'], 2, set())
"""

from __future__ import annotations

import numpy as np

from core.errors import ShiftError


def split_users(
    user_ids: np.ndarray, calibration_fraction: float = 0.5, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split real user ids into a calibration part and a test part, disjoint and seeded."""
    if not 0 < calibration_fraction < 1:
        raise ShiftError(f"calibration_fraction must be in (0, 1), got {calibration_fraction}")
    ids = np.asarray(user_ids).astype(str)
    order = np.random.default_rng(random_state).permutation(len(ids))
    n_cal = int(round(len(ids) * calibration_fraction))
    return np.sort(ids[order[:n_cal]]), np.sort(ids[order[n_cal:]])
