"""Detector benchmark: ``python -m bench.detectors [NAME ...]`` (default: movielens-100k).

Runs ``core.evaluation.run_evaluation`` (splices of real users, calibration on a separate
part of the users, every detector at its calibrated default and at the oracle threshold,
next to never-fire, fire-every-k and the genre-histogram baseline) and writes
``bench/results/detectors-<NAME>.{md,json}`` and ``pr_curves-<NAME>.csv``. The table goes
into the "Detectors" section of bench/RESULTS.md by hand, with the machine notes.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from core.evaluation import run_evaluation, write_evaluation

OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detectors")
    parser.add_argument("names", nargs="*", default=["movielens-100k"])
    parser.add_argument("--detectors", help="comma-separated subset (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    detectors = args.detectors.split(",") if args.detectors else None
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
        print(f"## {name}  ({seconds:.0f} s)\n\n{result.markdown()}\n\nmeta: {result.meta}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
