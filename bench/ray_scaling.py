"""Wall time of each stage of `detect` vs the number of Ray workers, for the cost model.

For one dataset, times: loading the events on the driver, fitting + calibrating (on at most
MAX_EVENTS_IN_MEMORY events, a constant), exporting the partitions (once per dataset
version), scoring users on Ray with 1, 2, … CPUs (a local Ray started per count), gathering
the results, and, for reference, scoring in this process and on a process pool. Checks that
every engine finds the local engine's change points.

Usage: python -m bench.ray_scaling NAME [--cpus 1,2] [--detector two_window]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from core import artefacts, store
from core.detectors import DEFAULT, make_detector
from core.detectors.population import _sample_users, score_users
from core.limits import MAX_EVENTS_IN_MEMORY
from core.runner import ray_detect
from core.runner.pool import PoolScorer

REPO = Path(__file__).resolve().parents[1]


class _Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def __call__(self, label: str, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        self.rows.append((label, time.perf_counter() - t))
        print(f"{label:<48} {self.rows[-1][1]:8.1f} s", flush=True)
        return out


def main() -> None:
    import ray

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("--cpus", default="1,2")
    p.add_argument("--detector", default=DEFAULT)
    args = p.parse_args()
    timer = _Timer()
    ev = timer("load events (driver)", artefacts.events, args.name)
    feats = artefacts.item_features(args.name, make_detector(args.detector).features)
    n = int(ev.offsets[-1])
    print(f"{args.name}: {n:,} events, {ev.n_users:,} users", flush=True)
    det = make_detector(args.detector)

    def fit():
        from core.detectors.calibration import calibrate
        from core.detectors.population import CALIBRATION_SHUFFLES

        if n > MAX_EVENTS_IN_MEMORY:
            rows, offsets = _sample_users(ev, MAX_EVENTS_IN_MEMORY)
            vectors = feats[ev.item_idx[rows]]
        else:
            vectors, offsets = feats[ev.item_idx], ev.offsets
        det.fit(vectors, offsets)
        return calibrate(det, vectors, offsets, n_shuffles=CALIBRATION_SHUFFLES, random_state=0)

    timer("fit + calibrate (driver, <= 300k events)", fit)
    local = timer("score, this process (local engine)", score_users, det, ev.offsets, ev.item_idx, feats)
    pooled = timer("score, process pool of 2", PoolScorer(2), det, ev, feats, args.name)
    assert np.array_equal(pooled.candidates.event_index, local.candidates.event_index)
    for cpus in [int(c) for c in args.cpus.split(",")]:
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
        )
        try:
            parts = ray_detect.partition_count(n, cpus)
            shutil.rmtree(store.cache_dir(args.name) / "partitions", ignore_errors=True)
            timer(f"export {parts} partitions (driver, once)", ray_detect.export_once, args.name, parts)
            scorer = ray_detect.RayScorer()
            on_ray = timer(f"score on Ray, {cpus} CPU(s), export cached", scorer, det, ev, feats, args.name)
            print("   stages:", {k: round(v, 1) for k, v in scorer.timings_.items()}, flush=True)
            assert np.array_equal(on_ray.candidates.user, local.candidates.user)
            assert np.array_equal(on_ray.candidates.event_index, local.candidates.event_index)
            # float32 window sums tiled by chunk: ~1e-9 relative differences on a few events
            np.testing.assert_allclose(on_ray.scores, local.scores, rtol=1e-6, equal_nan=True)
        finally:
            ray.shutdown()
    print("same change points on every engine", flush=True)


if __name__ == "__main__":
    main()
