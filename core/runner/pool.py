"""Score a population's users on a process pool: several cores of one machine.

Users are cut into consecutive chunks (whole users, ``TASK_EVENTS`` events each) and each
worker scores its chunks with :func:`core.detectors.population.score_users`. Workers are
forked after the detector, the events and the item features are set up, so they read them
copy-on-write instead of receiving copies; only chunk bounds go to a worker and only that
chunk's result (scores and candidate peaks) comes back.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from core import store
from core.detectors.base import Detector, DetectorResult
from core.detectors.population import score_users
from core.trajectory import chunk_ranges

# Events per task: large enough that scheduling costs nothing next to scoring, small enough
# that chunks balance across workers.
TASK_EVENTS = 2_000_000

# What the forked workers read (set in the parent just before the pool starts).
_shared: dict = {}


def _score_range(lo: int, hi: int) -> DetectorResult:
    det, offsets, item_idx, items = (_shared[k] for k in ("det", "offsets", "item_idx", "items"))
    a, b = int(offsets[lo]), int(offsets[hi])
    return score_users(det, offsets[lo : hi + 1] - a, item_idx[a:b], items)


class PoolScorer:
    """Scores users on ``workers`` forked processes (a :data:`core.detectors.population.Scorer`)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __call__(
        self, det: Detector, events: store.EventArrays, items: np.ndarray, dataset: str = ""
    ) -> DetectorResult:
        offsets = np.asarray(events.offsets, np.int64)
        ranges = chunk_ranges(np.diff(offsets), TASK_EVENTS)
        _shared.update(det=det, offsets=offsets, item_idx=events.item_idx, items=items)
        try:
            # fork: the children share the parent's arrays; spawn would copy them per worker.
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
                parts = list(pool.map(_score_range, *zip(*ranges, strict=True))) if ranges else []
        finally:
            _shared.clear()
        return DetectorResult.concat(parts)
