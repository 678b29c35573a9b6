"""``python -m core evaluate NAME``: the ground-truth benchmark of every detector.

Writes ``results.md``, ``results.json`` and ``pr_curves.csv`` under
``<data>/<NAME>.cache/evaluation/`` (or ``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import sys

from core.commands import arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="benchmark the detectors on spliced real users",
        description="Build ground-truth users from real ones (splices, multi-splices, ramps, controls), "
        "calibrate every detector on a separate part of the users and report precision, recall, F1, "
        "location error, alert delay and false alarms, at the default and the oracle threshold.",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--detectors", type=arguments.name_list, help="comma-separated detector names (default: all)"
    )
    p.add_argument(
        "--false-alarms",
        type=arguments.positive_float,
        default=1.0,
        metavar="R",
        help="calibration target: false alarms per 1,000 shuffled events (default 1)",
    )
    p.add_argument("--seed", type=arguments.seed, default=0, help="random_state of the split and the splices")
    p.add_argument(
        "--out", type=arguments.output_folder, help="results folder (default: the dataset's cache folder)"
    )
    p.add_argument(
        "--lift",
        action="store_true",
        help="also measure recommendation lift (core.benchmark.lift: the default detector's post-change profile "
        "against whole-history and last-N profiles on spliced users, cost on controls; writes lift.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import store
    from core.benchmark.detection import run_evaluation
    from core.benchmark.report import evaluation_markdown, write_evaluation
    from core.detectors import make_detector

    names = args.detectors  # None: every detector
    for n in names or []:
        make_detector(n)
    result = run_evaluation(
        args.name,
        names,
        target=args.false_alarms,
        random_state=args.seed,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    paths = write_evaluation(result, args.out or store.cache_dir(args.name) / "evaluation")
    print(evaluation_markdown(result))
    print(f"results: {paths['markdown']}, {paths['json']}, {paths['curves']}", file=sys.stderr)
    if args.lift:
        from core.benchmark.lift import run_lift
        from core.benchmark.report import lift_markdown

        lift = run_lift(args.name, random_state=args.seed, progress=lambda msg: print(msg, file=sys.stderr))
        lift_path = paths["markdown"].with_name("lift.md")
        lift_path.write_text(lift_markdown(lift) + "\n", encoding="utf-8")
        print(f"\n## Recommendation lift ({lift.params})\n\n{lift_markdown(lift)}")
        print(f"lift: {lift_path}", file=sys.stderr)
    return 0
