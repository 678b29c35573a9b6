"""``python -m core recommend NAME --user ID``: before/after/now lists and what changed.

The change is explained, and the lists built, from its neighbouring segments: from the
previous change point the detector found to the next one. ``--format json`` prints the
same as one JSON object (lists, explanation shares, segment bounds).
"""

from __future__ import annotations

import argparse
import json
import sys

from core.commands import arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="a user's recommendations before and after an interest shift, and what changed",
        description="Print what the recommender would suggest from the user's history before the "
        "change point, since it, and now (post-shift interest with the past down-weighted), with "
        "the categories that rose and fell. Without --change-point, the user's latest change "
        "point found by the detector (default: the default detector) at its calibrated threshold is used.",
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
    p.add_argument(
        "--neighbours",
        choices=("detected", "none"),
        default=None,
        help="what bounds the segments around the change: the detector's other change points "
        "(default without --change-point) or none, the whole history on either side (default "
        "with --change-point)",
    )
    p.add_argument(
        "--detector",
        type=arguments.detector_name,
        help="the detector whose change points are used (default: the default detector)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    arguments.add_model_option(p)
    p.set_defaults(func=run)


def detected_change_points(
    name: str, user_id: str, required: bool = False, detector: str | None = None, item_vectors=None
) -> tuple[list[int], str]:
    """All the user's change points from ``detector`` (None: the default) at its calibrated
    threshold (ascending) and a description of the latest; with ``required``, none is an error."""
    from core import artefacts
    from core.detectors import DEFAULT
    from core.detectors.population import DEFAULT_FALSE_ALARMS, user_signal
    from core.errors import ShiftError

    fit = artefacts.fitted_detector(name, detector or DEFAULT, item_vectors)
    signal = user_signal(fit, user_id)
    if signal.change_points.empty:
        if not required:
            return [], ""
        raise ShiftError(
            f"user {user_id!r} has no change point at the default threshold of detector "
            f"{fit.detector.name!r} ({signal.threshold:.3g}, about {DEFAULT_FALSE_ALARMS:g} false "
            "alarm per 1,000 events); pass --change-point IDX to choose one"
        )
    last = signal.change_points.iloc[-1]
    points = sorted(int(i) for i in signal.change_points["event_index"])
    return points, f"{fit.detector.name} (score {last['score']:.3g}, threshold {signal.threshold:.3g})"


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from core import artefacts, store
    from core.errors import ShiftError
    from core.explain import ShiftExplainer
    from core.recommend import POLICIES, recommend_around_change

    if args.k < 1:
        raise ShiftError(f"--k must be at least 1; got {args.k}")
    with store.connect(args.name) as con:
        events = store.load_user_events(con, args.user)  # UnknownUser for a wrong id
        items = store.load_items(con)
    history = events["item_idx"].to_numpy(dtype=np.int64)
    vectors = None  # the default matrix: read after the change point is known, as before
    if args.model is not None:
        vectors = artefacts.item_matrix(
            args.name, artefacts.encoder_for(args.name, args.model), _encoding_progress
        )
    neighbours = args.neighbours or ("none" if args.change_point is not None else "detected")
    change_points: list[int] = []
    if args.change_point is None or neighbours == "detected":
        print(f"finding the change points with detector {args.detector or 'default'} …", file=sys.stderr)
        change_points, source = detected_change_points(
            args.name, args.user, args.change_point is None, args.detector, vectors
        )
    if args.change_point is None:
        change_point = change_points[-1]
    else:
        change_point, source = args.change_point, "given"
        if not 0 < change_point < len(history):
            raise ShiftError(
                f"change point {change_point} is outside the user's history: it must leave events "
                f"on both sides (1 … {len(history) - 1})"
            )
    if vectors is None:
        vectors = artefacts.item_matrix(args.name, progress=_encoding_progress)
    recommender = artefacts.recommender(args.name, vectors)
    explainer = ShiftExplainer().fit(items, vectors)
    start = time.perf_counter()
    result = recommend_around_change(
        recommender, explainer, items, args.user, history, change_points, change_point, args.k, source
    )
    explanation = result.explanation
    elapsed = time.perf_counter() - start
    if args.format == "json":
        print(
            json.dumps(_as_json(args.name, result, len(history), change_points), indent=2, ensure_ascii=False)
        )
        return 0

    bounds = ""
    if (result.segment_start, result.segment_end) != (0, len(history)):
        bounds = f"; segments {result.segment_start}-{change_point - 1} and {change_point}-{result.segment_end - 1}"
    print(f"user {args.user}: {len(history)} events; change point at event {change_point} ({source}){bounds}")
    print(f"what changed: {explanation.summary}")
    shown = explanation.categories[explanation.categories["change"].abs() >= explainer.min_change]
    if not shown.empty:
        print(f"\n  {'category':<28}{'before':>16}{'after':>16}")
        for r in shown.itertuples():
            before = f"{r.count_before} ({r.share_before:.0%})"
            after = f"{r.count_after} ({r.share_after:.0%})"
            print(f"  {r.category[:27]:<28}{before:>16}{after:>16}")
    for label, table in (
        (
            f"typical before (events {result.segment_start}-{change_point - 1})",
            explanation.representative_before,
        ),
        (f"typical after (events {change_point}-{result.segment_end - 1})", explanation.representative_after),
    ):
        print(f"\n{label}: " + "; ".join(table["title"]))
    for policy in POLICIES:
        share = result.rising_share.get(policy, float("nan"))
        rising = f" ({share:.0%} in rising categories)" if share == share else ""
        print(f"\n{policy} — {_POLICY_TEXT[policy]}{rising}:")
        for r in result.lists[policy].itertuples():
            print(f"  {r.rank:>2}. {r.title}  [{r.categories}]")
    if result.consumed_rising_share == result.consumed_rising_share:
        print(
            f"\n(after the change the user consumed {result.consumed_rising_share:.0%} in rising categories)"
        )
    print(f"\n(lists and explanation computed in {elapsed * 1000:.1f} ms)", file=sys.stderr)
    return 0


def _as_json(name: str, result, n_events: int, change_points: list[int]) -> dict:
    """The lists, the explanation's shares and the segment bounds as plain JSON values."""
    from core.explain import segment_bounds

    ex = result.explanation

    def records(frame) -> list[dict]:
        return json.loads(frame.to_json(orient="records", force_ascii=False))

    def number(x: float) -> float | None:
        return None if x != x else float(x)  # NaN (nothing rose) is null in JSON

    return {
        "dataset": name,
        "user_id": result.user_id,
        "n_events": n_events,
        "change_point": result.change_point,
        "change_point_source": result.change_point_source,
        "change_points": [int(c) for c in change_points],
        "segments": [{"start": a, "end": b} for a, b in segment_bounds(n_events, change_points)],
        "before_segment": {"start": result.segment_start, "end": result.change_point},
        "after_segment": {"start": result.change_point, "end": result.segment_end},
        "explanation": {
            "summary": ex.summary,
            "category_source": ex.category_source,
            "n_before": ex.n_before,
            "n_after": ex.n_after,
            "categories": records(ex.categories),
            "rising_categories": list(ex.rising_categories),
            "representative_before": records(ex.representative_before),
            "representative_after": records(ex.representative_after),
        },
        "lists": {policy: records(table) for policy, table in result.lists.items()},
        "rising_share": {policy: number(v) for policy, v in result.rising_share.items()},
        "consumed_rising_share": number(result.consumed_rising_share),
    }


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
