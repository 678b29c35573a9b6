"""Z-score of the two-window shift signal against the user's own history.

The signal is ||Δf|| (two windows of h events); each user's scores are standardised by
that user's median and median absolute deviation (robust: the change itself is a few
large values and must not inflate the spread). A score of 4 means "four robust standard
deviations above what is usual for this user".

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.vstack([rng.normal(size=(60, 4)) + [5, 0, 0, 0], rng.normal(size=(60, 4))])
>>> ZScore(h=10).fit(x, np.array([0, 120])).predict(4.0).event_index
array([60])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.detectors.base import Detector
from core.detectors.windows import window_delta
from core.user_events import UserEvents


class ZScore(Detector):
    name = "zscore"

    def __init__(self, h: int = 20) -> None:
        self.h = h

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        s = np.linalg.norm(window_delta(vectors, offsets, self.h), axis=1)
        user = UserEvents(offsets).event_user
        by_user = pd.Series(s).groupby(user)
        median = by_user.transform("median").to_numpy()
        mad = pd.Series(np.abs(s - median)).groupby(user).transform("median").to_numpy()
        # 1.4826 * MAD estimates the standard deviation of normal noise.
        return (s - median) / np.maximum(1.4826 * mad, 1e-12)
