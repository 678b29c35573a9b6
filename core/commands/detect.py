"""``python -m core detect NAME``: every user's change points as CSV.

One row per change point: ``user_id,timestamp,score,event_index,detector,alert_index``,
where ``timestamp`` is the time of the first event after the change (ISO 8601) and
``event_index`` its index in the user's history. Without options: the default detector
at its calibrated default (1 expected false alarm per 1,000 events).
"""

from __future__ import annotations

import argparse
import sys

from core.commands import arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "detect",
        help="export every user's interest-shift change points as CSV",
        description="Detect interest shifts of every user of a dataset and write one CSV row per "
        "change point (user_id, timestamp, score, event_index, detector, alert_index).",
    )
    p.add_argument("name", help="dataset name (see: python -m core datasets)")
    p.add_argument("--detector", default=None, help="detector name (default: the benchmark's default)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=arguments.finite_float, help="score threshold of the detector")
    level.add_argument(
        "--false-alarms",
        type=arguments.positive_float,
        metavar="R",
        help="threshold giving R expected false alarms per 1,000 events (default 1)",
    )
    p.add_argument("--out", type=arguments.output_file, help="CSV file to write (default: standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import artefacts
    from core.detectors import DEFAULT, make_detector
    from core.detectors.population import change_points, threshold_for_false_alarms
    from core.errors import ShiftError

    name = args.detector or DEFAULT
    make_detector(name)  # unknown names fail before any data is loaded
    # The same on-disk fit the dashboard reads: a rerun (or the dashboard after it) skips
    # fitting and calibrating.
    fit = artefacts.fitted_detector(args.name, name)
    if args.threshold is not None:
        threshold = args.threshold
    elif args.false_alarms is not None:
        threshold = threshold_for_false_alarms(fit, args.false_alarms)
    else:
        threshold = fit.default_threshold
    frame = change_points(fit, threshold)
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    cols = ["user_id", "timestamp", "score", "event_index", "detector", "alert_index"]
    if args.out:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            frame[cols].to_csv(args.out, index=False)
        except OSError as err:  # checked at parse time, but the disk may fill or change since
            raise ShiftError(f"cannot write {args.out}: {err.strerror or err}") from None
        dest = str(args.out)
    else:
        frame[cols].to_csv(sys.stdout, index=False)
        dest = "stdout"
    print(
        f"{len(frame):,} change points of {frame.user_id.nunique():,} users "
        f"({name}, threshold {threshold:.4g}, ~{fit.calibration.false_alarms_at(threshold):.3g} false "
        f"alarms per 1,000 events) -> {dest}",
        file=sys.stderr,
    )
    return 0
