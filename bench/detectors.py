"""Detector benchmark: ``python -m bench.detectors [NAME ...]`` (default: movielens-100k).

Runs :func:`core.benchmark.detection.run_evaluation` (splices of real users, calibration on
a separate part of the users, every detector at its calibrated default and at the oracle
threshold, next to never-fire, fire-every-k and the genre-histogram baseline) and writes
``bench/results/<NAME>/results.md``, ``results.json`` and ``pr_curves.csv`` (the Evaluation
page shows them for a dataset that has no evaluation of its own). The table goes into the
"Detectors" section of bench/RESULTS.md by hand, with the machine notes.

``--timing`` instead times each detector's fit on every user, one prediction of the whole
population, and one user's signal (the slider's cost); it writes nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from core.benchmark.detection import run_evaluation
from core.benchmark.report import evaluation_markdown, write_evaluation

OUT = Path(__file__).resolve().parent / "results"


def timings(name: str, detectors: list[str]) -> str:
    """Seconds to fit each detector on every user of ``name``, to predict the whole population
    at one threshold, and to get one user's signal and change points (the slider's cost)."""
    import numpy as np

    from core import artefacts
    from core.artefacts import item_features
    from core.detectors import detector_names, make_detector
    from core.detectors.calibration import Calibration
    from core.detectors.population import PopulationFit, user_signal

    events = artefacts.events(name)
    lines = [
        "| detector | fit (s) | predict all users (s) | one user's signal + change points (ms) |",
        "|---|---|---|---|",
    ]
    for det_name in detectors or detector_names():
        det = make_detector(det_name)
        items = item_features(name, det.features)
        t0 = time.perf_counter()
        det.fit(items[events.item_idx], events.offsets, events.rating)
        t1 = time.perf_counter()
        grid = det.threshold_grid()
        det.predict(float(grid[len(grid) // 2]))
        t2 = time.perf_counter()
        fake = Calibration(det_name, np.array([float(grid[len(grid) // 2])]), np.array([0.0]), 1)
        fit = PopulationFit(name, det, events, items, fake, det.result_)
        user = events.user_ids[int(np.argmax(np.diff(events.offsets)))]  # the longest history
        t3 = time.perf_counter()
        user_signal(fit, user)
        t4 = time.perf_counter()
        lines.append(f"| {det_name} | {t1 - t0:.2f} | {t2 - t1:.2f} | {1000 * (t4 - t3):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detectors")
    parser.add_argument("names", nargs="*", default=["movielens-100k"])
    parser.add_argument("--detectors", help="comma-separated subset (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", action="store_true", help="only time fit/predict on every user")
    args = parser.parse_args(argv)
    detectors = args.detectors.split(",") if args.detectors else None
    if args.timing:
        for name in args.names:
            print(f"## {name}: timings\n\n{timings(name, detectors)}\n")
        return 0
    for name in args.names:
        start = time.perf_counter()
        result = run_evaluation(
            name, detectors, random_state=args.seed, progress=lambda m: print(m, file=sys.stderr, flush=True)
        )
        seconds = time.perf_counter() - start
        result.meta |= {
            "seconds": round(seconds, 1),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        }
        folder = OUT / name
        write_evaluation(result, folder)
        print(f"## {name}  ({seconds:.0f} s)\n\n{evaluation_markdown(result)}\n\nmeta: {result.meta}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
