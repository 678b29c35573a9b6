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
# Added after the columns above (never renamed or removed: scripts read them): the probability
# that the user's shift is real, 1 - local fdr under the empirical null (empty without one).
PROBABILITY = "probability"


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
    p.add_argument(
        "--detector", type=arguments.detector_name, help="detector name (default: the benchmark's default)"
    )
    level = p.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=arguments.finite_float, help="score threshold of the detector")
    level.add_argument(
        "--false-alarms",
        type=arguments.positive_float,
        metavar="R",
        help="threshold giving R expected false alarms per 1,000 events (default 1); with best_split "
        "it also sets the tentative alerts' rate",
    )
    level.add_argument(
        "--fdr",
        type=arguments.positive_float,
        metavar="Q",
        help="flag users so that at most a share Q of the flagged are expected to be chance (a false "
        "discovery rate, e.g. 0.1), from the empirical null of the log's users (best_split)",
    )
    p.add_argument("--out", type=arguments.output_file, help="CSV file to write (default: standard output)")
    p.add_argument(
        "--users",
        type=arguments.output_file,
        metavar="FILE",
        help="also write one CSV row per user: user_id, n_events, state ('scored' or 'too short: "
        "12 events, needs 24'), tentative (a tentative recent alert), change_points, probability",
    )
    p.add_argument(
        "--summary-json",
        type=arguments.output_file,
        metavar="FILE",
        help="also write one JSON object: the threshold, both false-alarm rates, the FDR, the estimated "
        "users beyond everyday drift with its interval, the null used and why, the feature setting, "
        "counts of scored and too-short users",
    )
    arguments.add_model_option(p)
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


def _item_vectors(name: str, model: str | None):
    """The item matrix of ``--model`` (None: the default one, read by the fit itself)."""
    from core import artefacts

    return None if model is None else artefacts.item_matrix(name, artefacts.encoder_for(name, model))


def _require_events(name: str) -> None:
    """Refuse a dataset without events (imports refuse to make one; a file from before could be)."""
    from core import store
    from core.errors import ShiftError

    with store.connect(name) as con:
        if not store.dataset_info(con).get("n_events"):
            raise ShiftError(
                f"dataset {name!r} has no events, so there is nothing to detect (it was imported "
                f"before empty imports were refused); import it again: python -m core ingest {name} "
                "--events FILE --items FILE"
            )


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from core import results, runner
    from core.detectors import DEFAULT, make_detector
    from core.errors import ShiftError
    from core.runner.ray_session import shutdown_ray

    arguments.distinct_outputs(out=args.out, users=args.users, summary_json=args.summary_json)
    name = args.detector or DEFAULT
    make_detector(name)  # unknown names fail before any data is loaded
    if args.engine == "ray" and args.workers > 1:
        raise ShiftError("--workers is for the local engine; Ray uses every CPU of its cluster")
    if args.address and args.engine != "ray":
        raise ShiftError("--address names a Ray cluster: add --engine ray")
    _require_events(args.name)
    # The same on-disk fit the dashboard reads: a rerun (or the dashboard after it) skips
    # fitting and calibrating, whichever engine built it. Its per-user scores, change points
    # and summaries are stored for the dashboard, which reads them instead of fitting on big
    # datasets (core.results).
    scorer = runner.scorer(args.engine, args.workers, args.address)
    try:
        fitted = results.fit_results(args.name, name, _item_vectors(args.name, args.model), scorer=scorer)
    finally:
        shutdown_ray()
    if args.threshold is not None:
        threshold = args.threshold
    elif args.false_alarms is not None:
        threshold = fitted.threshold_for(args.false_alarms)
    elif args.fdr is not None:
        if not 0 < args.fdr < 1:
            raise ShiftError(f"--fdr is a share of the flagged users, between 0 and 1; got {args.fdr}")
        threshold = fitted.threshold_for_fdr(args.fdr)
    else:
        threshold = fitted.default_threshold
    located = fitted.change_points(threshold)
    # --threshold is a score of the located detector, not of the companion: its default rate then
    tentative = fitted.tentative_alerts(args.false_alarms)
    tentative_text = ""
    if tentative is not None:
        recent = fitted.companion()
        r_threshold = (
            recent.default_threshold if args.false_alarms is None else recent.threshold_for(args.false_alarms)
        )
        tentative_text = (
            f"; {len(tentative):,} tentative recent alerts ({recent.detector.name}, threshold "
            f"{r_threshold:.4g}, ~{recent.false_alarms_at(r_threshold):.3g} new alerts per "
            f"1,000 events)"
        )
    frame = pd.concat([located, tentative], ignore_index=True) if tentative is not None else located
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    probabilities = fitted.user_probabilities()  # None: a detector without an empirical null
    probability = (
        probabilities.set_index("user_id")["probability"]
        if probabilities is not None
        else pd.Series(dtype=float)
    )
    frame[PROBABILITY] = frame["user_id"].astype(str).map(probability)
    dest = _write(frame[[*COLUMNS, PROBABILITY]], args.out)
    if args.users:
        states = fitted.user_states(located, tentative)
        states[PROBABILITY] = states["user_id"].astype(str).map(probability)
        _write(states, args.users)
    share = fitted.shift_share()
    chance = fitted.flagged_chance(threshold)
    if args.summary_json:
        _write_json(detection_summary(fitted, threshold, located, share, chance), args.summary_json)
    print(
        f"{len(located):,} change points of {located.user_id.nunique():,} users "
        f"({name}, threshold {threshold:.4g}, {fitted.rates(threshold).summary()})"
        f"{tentative_text} -> {dest}",
        file=sys.stderr,
    )
    if share is not None:
        print(f"{share.summary()}; {chance.summary()}", file=sys.stderr)
    choice = fitted.feature_choice()
    if choice is not None:
        print(f"item features: {choice.describe()}", file=sys.stderr)
    return 0


def _choice_json(choice) -> dict | None:
    """How the log chose its feature setting (None: the detector has no choice to make)."""
    if choice is None:
        return None
    return {
        "chosen_components": choice.chosen,
        "chosen_co_consumption": choice.chosen_co,
        "by": "calibration splices" if not choice.why else "default",
        "why_default": choice.why or None,
        "candidates": list(choice.candidates),
        "candidates_with_co_consumption": list(choice.co or [False] * len(choice.candidates)),
        "chosen_user_discriminant": choice.chosen_disc,
        "candidates_user_discriminant": list(choice.disc or [False] * len(choice.candidates)),
        "f1_at_10_on_calibration_splices": [None if f != f else round(f, 4) for f in choice.f1],
        "calibration_users": choice.users,
        "spliced_users_per_draw": choice.splices,
        "in_words": choice.describe(),
    }


def detection_summary(fitted, threshold: float, located, share, chance) -> dict:
    """The ``--summary-json`` object (plain JSON types only)."""
    rates = fitted.rates(threshold)
    states = fitted.user_states(located)
    scored = int((states["state"] == "scored").sum())
    det = fitted.detector
    out = {
        "dataset": fitted.dataset,
        "detector": det.name,
        "threshold": float(threshold),
        "false_alarms_per_1000_events": rates.per_1000,
        "users_flagged_share_on_null": rates.users,
        "false_alarm_source": rates.source,
        "check_false_alarms_per_1000_events": rates.check_per_1000,
        "users_flagged": int(located["user_id"].nunique()),
        "change_points": int(len(located)),
        "users_scored": scored,
        "users_too_short": int(len(states) - scored),
        "feature_setting": {
            k: getattr(det, k)
            for k in ("n_components", "n_categories", "n_co", "use_co", "discriminant", "min_size", "detrend")
            if hasattr(det, k)
        },
        "feature_choice": _choice_json(fitted.feature_choice()),
        "null": "shuffled" if rates.null != "real" else "real",
        "null_why": rates.source,
    }
    if share is not None:
        low, high = share.users_interval
        out |= {
            "null": share.null,
            "null_why": share.why,
            "bulk_moving": share.bulk_moving,
            "users_beyond_drift": share.users,
            "users_beyond_drift_interval": [low, high],
            "share_beyond_drift": share.share,
            "share_beyond_drift_interval": [share.low, share.high],
            "fdr": chance.fdr,
            "expected_chance_among_flagged": chance.expected_chance,
        }
    return out


def _write_json(obj: dict, path: Path) -> None:
    import json

    from core.errors import ShiftError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=1, default=float) + "\n", encoding="utf-8")
    except OSError as err:
        raise ShiftError(f"cannot write {path}: {err.strerror or err}") from None
