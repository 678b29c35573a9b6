"""``python -m core recommend NAME --user ID``: before/after/now lists and what changed."""

from __future__ import annotations

import argparse
import sys

from core.commands import arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="a user's recommendations before and after an interest shift, and what changed",
        description="Print what the recommender would suggest from the user's history before the "
        "change point, since it, and now (post-shift interest with the past down-weighted), with "
        "the categories that rose and fell. Without --change-point, the user's latest change "
        "point found by the default detector at its calibrated threshold is used.",
    )
    p.add_argument("name", help="dataset name (see: python -m core datasets)")
    p.add_argument("--user", required=True, help="user id")
    # --k keeps type=int: run() checks its range with a message (and exit code) tests pin.
    p.add_argument("--k", type=int, default=10, help="list length (default 10)")
    p.add_argument(
        "--change-point",
        type=arguments.non_negative_int,
        metavar="IDX",
        help="index of the first event after the change (default: the detector's latest)",
    )
    p.set_defaults(func=run)


def latest_change_point(name: str, user_id: str) -> tuple[int, str]:
    """The user's latest change point from the default detector at its calibrated threshold."""
    from core import artefacts
    from core.detectors.population import DEFAULT_FALSE_ALARMS, user_signal
    from core.errors import ShiftError

    fit = artefacts.fitted_detector(name)
    signal = user_signal(fit, user_id)
    if signal.change_points.empty:
        raise ShiftError(
            f"user {user_id!r} has no change point at the default threshold of detector "
            f"{fit.detector.name!r} ({signal.threshold:.3g}, about {DEFAULT_FALSE_ALARMS:g} false "
            "alarm per 1,000 events); pass --change-point IDX to choose one"
        )
    last = signal.change_points.iloc[-1]
    return int(
        last["event_index"]
    ), f"{fit.detector.name} (score {last['score']:.3g}, threshold {signal.threshold:.3g})"


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from core import artefacts, store
    from core.errors import ShiftError
    from core.explain import ShiftExplainer
    from core.recommend import POLICIES, recommend_for_user

    if args.k < 1:
        raise ShiftError(f"--k must be at least 1; got {args.k}")
    with store.connect(args.name) as con:
        events = store.load_user_events(con, args.user)  # UnknownUser for a wrong id
        items = store.load_items(con)
    history = events["item_idx"].to_numpy(dtype=np.int64)
    if args.change_point is None:
        print("finding the change point with the default detector …", file=sys.stderr)
        change_point, source = latest_change_point(args.name, args.user)
    else:
        change_point, source = args.change_point, "given"
    vectors = artefacts.item_matrix(args.name, progress=_encoding_progress)
    recommender = artefacts.recommender(args.name, vectors)
    explainer = ShiftExplainer().fit(items, vectors)
    start = time.perf_counter()
    result = recommend_for_user(recommender, items, args.user, history, change_point, args.k, source)
    explanation = explainer.explain(history, change_point)
    elapsed = time.perf_counter() - start

    print(f"user {args.user}: {len(history)} events; change point at event {change_point} ({source})")
    print(f"what changed: {explanation.summary}")
    shown = explanation.categories[explanation.categories["change"].abs() >= explainer.min_change]
    if not shown.empty:
        print(f"\n  {'category':<28}{'before':>16}{'after':>16}")
        for r in shown.itertuples():
            before = f"{r.count_before} ({r.share_before:.0%})"
            after = f"{r.count_after} ({r.share_after:.0%})"
            print(f"  {r.category[:27]:<28}{before:>16}{after:>16}")
    for label, table in (
        (f"typical before (events 0-{change_point - 1})", explanation.representative_before),
        (f"typical after (events {change_point}-{len(history) - 1})", explanation.representative_after),
    ):
        print(f"\n{label}: " + "; ".join(table["title"]))
    for policy in POLICIES:
        print(f"\n{policy} — {_POLICY_TEXT[policy]}:")
        for r in result.lists[policy].itertuples():
            print(f"  {r.rank:>2}. {r.title}  [{r.categories}]")
    print(f"\n(lists and explanation computed in {elapsed * 1000:.1f} ms)", file=sys.stderr)
    return 0


def _encoding_progress(done: int, total: int) -> None:
    if total:  # only when some item texts are not cached yet
        print(
            f"\rencoding item texts: {done:,}/{total:,}", end="\n" if done == total else "", file=sys.stderr
        )


_POLICY_TEXT = {
    "before": "from the history before the change",
    "after": "from the history since the change",
    "now": "post-shift interest, older interests down-weighted",
}
