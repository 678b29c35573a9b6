"""``python -m core detect NAME``: every user's change points as CSV.

One row per change point: ``user_id,timestamp,score,event_index,detector,alert_index,kind``,
where ``timestamp`` is the time of the first event after the change (ISO 8601),
``event_index`` its index in the user's history and ``kind`` either ``located`` (a change
point of the chosen detector) or ``tentative`` (``best_split`` runs only: a recent change
in the user's last few events, too recent to be located, raised by ``recent_shift`` at the
user's last event, which is its ``alert_index``). Without options: the default detector at
its calibrated default (1 expected false alarm per 1,000 events). ``--users FILE`` writes
one row per user with its state ("scored" or "too short: 12 events, needs 24").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.commands import arguments

COLUMNS = ["user_id", "timestamp", "score", "event_index", "detector", "alert_index", "kind"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "detect",
        help="export every user's interest-shift change points as CSV",
        description="Detect interest shifts of every user of a dataset and write one CSV row per "
        "change point (user_id, timestamp, score, event_index, detector, alert_index, kind). "
        "kind is 'located' for a change point, or 'tentative' for a change within a user's "
        "last few events, too recent to be located: with detector best_split, recent_shift's "
        "alert at the user's last event (event_index = the tentative change, alert_index = "
        "the last event). Rates are false alarms per 1,000 events, measured on held-aside real "
        "histories of the dataset for best_split and recent_shift, on shuffled histories for "
        "the other detectors.",
    )
    p.add_argument("name", help="dataset name (see: python -m core datasets)")
    p.add_argument("--detector", default=None, help="detector name (default: the benchmark's default)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=arguments.finite_float, help="score threshold of the detector")
    level.add_argument(
        "--false-alarms",
        type=arguments.positive_float,
        metavar="R",
        help="threshold giving R expected false alarms per 1,000 events (default 1); with best_split "
        "it also sets the tentative alerts' rate",
    )
    p.add_argument("--out", type=arguments.output_file, help="CSV file to write (default: standard output)")
    p.add_argument(
        "--users",
        type=arguments.output_file,
        metavar="FILE",
        help="also write one CSV row per user: user_id, n_events, state ('scored' or 'too short: "
        "12 events, needs 24'), tentative (a tentative recent alert), change_points",
    )
    arguments.add_engine_options(p, workers=True)
    p.set_defaults(func=run)


def _write(frame, path: Path | None) -> str:
    from core.errors import ShiftError
    from core.spreadsheet import neutralise_formulas

    frame = neutralise_formulas(frame)  # ids from the log must not run as spreadsheet formulas
    if path is None:
        frame.to_csv(sys.stdout, index=False)
        return "stdout"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    except OSError as err:  # checked at parse time, but the disk may fill or change since
        raise ShiftError(f"cannot write {path}: {err.strerror or err}") from None
    return str(path)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from core import artefacts, runner
    from core.detectors import DEFAULT, make_detector
    from core.detectors.population import (
        change_points,
        false_alarm_rates,
        tentative_alerts,
        threshold_for_false_alarms,
        user_states,
    )
    from core.errors import ShiftError
    from core.runner.ray_session import shutdown_ray

    arguments.distinct_outputs(out=args.out, users=args.users)
    name = args.detector or DEFAULT
    make_detector(name)  # unknown names fail before any data is loaded
    if args.engine == "ray" and args.workers > 1:
        raise ShiftError("--workers is for the local engine; Ray uses every CPU of its cluster")
    if args.address and args.engine != "ray":
        raise ShiftError("--address names a Ray cluster: add --engine ray")
    # The same on-disk fit the dashboard reads: a rerun (or the dashboard after it) skips
    # fitting and calibrating, whichever engine built it.
    scorer = runner.scorer(args.engine, args.workers, args.address)
    try:
        fit = artefacts.fitted_detector(args.name, name, scorer=scorer)
        recent = None
        if fit.detector.tentative:  # the companion detector of tentative alerts, same engine
            companion = make_detector(fit.detector.tentative)
            apart = companion.peak_based or companion.chunkable
            recent = artefacts.fitted_detector(args.name, companion.name, scorer=scorer if apart else None)
    finally:
        shutdown_ray()
    # Per-user scores, change points and population summaries for the dashboard, which reads
    # them instead of fitting on big datasets (core.artefacts.results).
    artefacts.ensure_results(fit)
    if recent is not None:  # the companion's alerts: the dashboard's tentative recent shifts
        artefacts.ensure_results(recent)
    if args.threshold is not None:
        threshold = args.threshold
    elif args.false_alarms is not None:
        threshold = threshold_for_false_alarms(fit, args.false_alarms)
    else:
        threshold = fit.default_threshold
    located = change_points(fit, threshold)
    tentative, tentative_text = None, ""
    if recent is not None:
        # --threshold is a score of the located detector, not of this one: its default rate then
        rate = args.false_alarms
        r_threshold = recent.default_threshold if rate is None else threshold_for_false_alarms(recent, rate)
        tentative = tentative_alerts(recent, r_threshold)
        tentative_text = (
            f"; {len(tentative):,} tentative recent alerts ({recent.detector.name}, threshold "
            f"{r_threshold:.4g}, ~{recent.calibration.false_alarms_at(r_threshold):.3g} new alerts per "
            f"1,000 events)"
        )
    frame = pd.concat([located, tentative], ignore_index=True) if tentative is not None else located
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    dest = _write(frame[COLUMNS], args.out)
    if args.users:
        _write(user_states(fit, located, tentative), args.users)
    print(
        f"{len(located):,} change points of {located.user_id.nunique():,} users "
        f"({name}, threshold {threshold:.4g}, {false_alarm_rates(fit, threshold).summary()})"
        f"{tentative_text} -> {dest}",
        file=sys.stderr,
    )
    return 0
