"""Recommendation lift on a real dataset: does acting on a detected shift predict the future?

Runs core.benchmark.lift (spliced real users, events after the first few of the new interest held out;
whole-history, last-N, post-change at the detected and at the true change point, and the
"now" policy; Recall@10 / NDCG@10 with paired bootstrap CIs; cost on unspliced controls),
checks the result against the quality bar below, then the sensitivity rows (last-N = 20,
content only, more visible events), then the latency of one user's lists and explanation
with the item matrix cached.

``--validate`` instead sweeps the recommender's collaborative weight and neighbour count on a
validation benchmark drawn with another seed (means only): how the defaults were chosen.

Usage: python -m bench.lift [--dataset movielens-100k] [--seed 0] [--validate]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

# The bar re-recommendation must clear, as (label, (users, policy, baseline), lowest relative
# NDCG@k difference): on splices, acting on the detection must beat the whole history clearly
# and never lose to the last-N profile; on unspliced controls, acting on false alarms must
# cost next to nothing.
QUALITY_BAR = (
    ("splice: detected beats whole on NDCG@k by >= 30% (relative)", ("splice", "detected", "whole"), 0.30),
    ("splice: detected is not worse than recent on NDCG@k", ("splice", "detected", "recent"), 0.0),
    ("control: acting on detections costs <= 2% NDCG@k", ("control", "detected", "whole"), -0.02),
)


def quality_bar(report) -> dict[str, bool]:
    """Each line of the quality bar and whether ``report`` (a LiftReport) clears it; a
    comparison the report could not make (too few users) fails."""
    relative = report.comparisons.set_index(["kind", "policy", "baseline"])["relative"]
    return {label: bool(relative.get(key, np.nan) >= lowest) for label, key, lowest in QUALITY_BAR}


def quality_bar_markdown(report) -> str:
    return "\n".join(
        ["Quality bar:"]
        + [f"- {label}: {'PASS' if ok else 'FAIL'}" for label, ok in quality_bar(report).items()]
    )


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def means_row(report) -> str:
    m = report.summary.set_index(["kind", "policy"])["ndcg"]
    return " | ".join(
        f"{m.get((k, p), float('nan')):.4f}" for k in ("splice", "control") for p in _POLICIES[k]
    )


_POLICIES = {
    "splice": ("whole", "recent", "detected", "now", "true"),
    "control": ("whole", "recent", "detected"),
}


def validate(args) -> None:
    from core.benchmark.lift import prepare_lift

    setup = prepare_lift(
        args.dataset, n_splices=args.splices, n_controls=args.controls, random_state=args.seed, progress=say
    )
    print(f"validation benchmark: seed {args.seed}, {setup.params}")
    head = " | ".join(f"{k} {p}" for k in ("splice", "control") for p in _POLICIES[k])
    print(f"\n| collaborative weight | neighbours | last N | {head} |")
    print("|---|---|---|" + "---|" * sum(len(v) for v in _POLICIES.values()))
    for neighbours in (100, None):
        for weight in (0.0, 0.5, 1.0, 2.0, 4.0, 1000.0):
            rec = setup.recommender(collaborative_weight=weight, n_neighbours=neighbours)
            for last_n in (10, 20):
                report = setup.evaluate(rec, last_n=last_n, n_resamples=2)  # means only
                print(f"| {weight:g} | {neighbours or 'all'} | {last_n} | {means_row(report)} |", flush=True)


def latency(args) -> None:
    from core import artefacts
    from core.artefacts import item_matrix, recommender
    from core.explain import ShiftExplainer
    from core.recommend import recommend_for_user

    vectors = item_matrix(args.dataset)
    start = time.perf_counter()
    rec = recommender(args.dataset, vectors)
    fit_s = time.perf_counter() - start
    items, events = artefacts.items(args.dataset), artefacts.events(args.dataset)
    start = time.perf_counter()
    explainer = ShiftExplainer().fit(items, vectors)
    explain_fit_s = time.perf_counter() - start
    times, cpu = [], []
    for k in range(events.n_users):
        history = events.item_idx[events.user_slice(k)].astype(np.int64)
        cp = len(history) // 2
        start, start_cpu = time.perf_counter(), time.process_time()
        recommend_for_user(rec, items, events.user_ids[k], history, cp, k=10)
        explainer.explain(history, cp)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ms, cpu_ms = np.array(times) * 1000, np.array(cpu) * 1000
    print(
        f"\nlatency on {args.dataset}: Recommender.fit {fit_s:.2f} s (co-occurrence nnz "
        f"{rec.cooccurrence_.nnz:,}), ShiftExplainer.fit {explain_fit_s:.2f} s; one user's "
        f"before/after/now top-10 tables + explanation, all {len(ms)} users (change point at "
        f"the middle): median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
        f"max {ms.max():.1f} ms wall; CPU time of this process (leaves out waiting for a core on "
        f"a busy machine): median {np.median(cpu_ms):.1f} ms, p95 {np.percentile(cpu_ms, 95):.1f} ms, "
        f"max {cpu_ms.max():.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lift", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--seed", type=int, default=None, help="default 0 (1 with --validate)")
    parser.add_argument("--splices", type=int, default=300)
    parser.add_argument("--controls", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--validate", action="store_true", help="sweep the recommender settings instead")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}")
    if args.validate:
        args.seed = 1 if args.seed is None else args.seed
        validate(args)
        return 0
    args.seed = 0 if args.seed is None else args.seed
    if args.latency_only:
        latency(args)
        return 0

    from core.benchmark.lift import prepare_lift
    from core.benchmark.report import lift_markdown

    started = time.perf_counter()
    setup = prepare_lift(
        args.dataset, n_splices=args.splices, n_controls=args.controls, random_state=args.seed, progress=say
    )
    main_report = setup.evaluate(n_resamples=args.resamples, random_state=args.seed)
    print(f"\n### Main: {main_report.params}\n")
    print(f"{lift_markdown(main_report)}\n\n{quality_bar_markdown(main_report)}")
    print("\n### Sensitivity (NDCG@10 means)\n")
    head = " | ".join(f"{k} {p}" for k in ("splice", "control") for p in _POLICIES[k])
    print(f"| variant | {head} |")
    print("|---|" + "---|" * sum(len(v) for v in _POLICIES.values()))
    print(f"| main (last N = 10) | {means_row(main_report)} |")
    variants = [
        ("last N = 20", setup.evaluate(last_n=20, n_resamples=2)),
        (
            "content only (collaborative weight 0)",
            setup.evaluate(setup.recommender(collaborative_weight=0.0), n_resamples=2),
        ),
        (
            "collaborative only (weight 1000)",
            setup.evaluate(setup.recommender(collaborative_weight=1000.0), n_resamples=2),
        ),
    ]
    for label, report in variants:
        print(f"| {label} | {means_row(report)} |", flush=True)
    more = prepare_lift(
        args.dataset,
        n_visible_after=30,
        n_splices=args.splices,
        n_controls=args.controls,
        random_state=args.seed,
        progress=say,
    )
    more_report = more.evaluate(n_resamples=args.resamples, random_state=args.seed)
    print(f"| 30 events visible after the splice ({len(more.cases)} cases) | {means_row(more_report)} |")
    comp = more_report.comparisons.set_index(["kind", "policy", "baseline"])
    for key in (
        ("splice", "detected", "whole"),
        ("splice", "detected", "recent"),
        ("control", "detected", "whole"),
    ):
        if key in comp.index:
            c = comp.loc[key]
            print(
                f"  30 visible: {' vs '.join(key[1:])} ({key[0]}): {c.relative:+.1%} "
                f"[{c.ci_low:+.1%}, {c.ci_high:+.1%}]"
            )
    print(f"\nlift benchmark wall time: {time.perf_counter() - started:.0f} s")
    if not args.skip_latency:
        latency(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
