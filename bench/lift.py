"""Recommendation lift on a real dataset: does acting on a detected shift predict the future?

Runs core.benchmark.lift (spliced real users, events after the first few of the new interest held out;
whole-history, last-N, post-change at the detected and at the true change point, and the
"now" policy; Recall@10 / NDCG@10 with paired bootstrap CIs; cost on unspliced controls),
checks the result against the quality bar below, then the sensitivity rows (last-N = 20,
content only, more visible events), then the latency of one user's lists and explanation
with the item matrix cached.

``--fair`` runs the fair protocol instead (issue "segment by segment"): validation and test
users drawn from disjoint real users; last-N, the decay half-life and the "now" policy's past
weight chosen on the validation users only; whole / last-N / decay / detected / now / true on
the test users with paired bootstrap intervals against the best static policy; implicit's
ALS and item-kNN as reference recommenders; the After list's share in the rising categories
against the share in what the users went on to consume; on datasets with a population fit,
the same share for the 25 most shifted users; the latency of one user's three lists.

``--validate`` instead sweeps the recommender's collaborative weight and neighbour count on a
validation benchmark drawn with another seed (means only): how the defaults were chosen.

Usage: python -m bench.lift [--dataset movielens-100k] [--seed 0] [--validate | --fair]
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


# The fair protocol's bars: the product's shift-aware policy ("now") against the best static
# policy chosen on validation users, and the After list against what users consumed.
SHIFT_AWARE_BAR = (
    "splice: now is not worse than the best static policy beyond its 95% interval",
    "control: now costs <= 1% NDCG@k against the best static policy",
)
AFTER_SHARE_BAR = 0.9  # After-list share in rising categories / share in what users consumed


def shift_aware_bar(report, best_static: str) -> dict[str, bool]:
    """Each line of the fair protocol's bar and whether ``report`` clears it; also whether
    "now" is better than the best static policy beyond its interval (needed on one log)."""
    comp = report.comparisons.set_index(["kind", "policy", "baseline"])
    splice = (
        comp.loc[("splice", "now", best_static)] if ("splice", "now", best_static) in comp.index else None
    )
    control = (
        comp.loc[("control", "now", best_static)] if ("control", "now", best_static) in comp.index else None
    )
    return {
        SHIFT_AWARE_BAR[0]: splice is not None and bool(splice.ci_high >= 0),
        SHIFT_AWARE_BAR[1]: control is not None and bool(control.relative >= -0.01),
        "splice: now better than the best static policy (needed on one log)": splice is not None
        and bool(splice.ci_low > 0),
    }


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


def fair(args) -> None:
    """The fair lift protocol on one log; prints Markdown for bench/RESULTS.md."""
    import pandas as pd

    from core import store
    from core.benchmark.lift import (
        ALL_POLICIES,
        after_shares,
        fair_comparisons,
        prepare_lift_splits,
        reference_scores,
        score_cases,
        summarise,
        tune_on_validation,
    )
    from core.benchmark.reference import fit_reference
    from core.benchmark.report import lift_markdown, percent
    from core.explain import ShiftExplainer
    from core.metrics import ndcg_at_k

    started = time.perf_counter()
    validation, test = prepare_lift_splits(
        args.dataset,
        n_splices=args.splices,
        n_controls=args.controls,
        n_validation_splices=args.validation_splices,
        n_validation_controls=args.validation_controls,
        random_state=args.seed,
        progress=say,
    )
    say(f"validation: {len(validation.cases)} cases, test: {len(test.cases)} cases")
    choice, grid = tune_on_validation(
        validation, test.recommender(), collaborative_weights=(0.25, 1.0, 4.0, 1000.0)
    )
    rec = test.recommender(collaborative_weight=choice["collaborative_weight"])
    rec.past_weight, rec.half_life = choice["past_weight"], choice["now_half_life"]
    best = choice["best_static"]
    print(f"\n### {args.dataset}: fair lift protocol (seed {args.seed})\n")
    print(f"setup: {test.params}")
    print(f"validation users: {len(validation.cases)} cases; test users: {len(test.cases)} cases")
    print("\nChosen on validation users (mean NDCG@10 of splices and controls, equally weighted):\n")
    print("| collaborative weight | policy | setting | value | validation NDCG@10 |\n|---|---|---|---|---|")
    for r in grid.itertuples():
        print(f"| {r.collaborative_weight:g} | {r.policy} | {r.setting} | {r.value:g} | {r.ndcg:.4f} |")
    print(f"\nchoice: {choice}")

    # Reference recommenders, their one setting chosen on the validation users too.
    say("fitting the reference recommenders")
    n_items = len(test.item_vectors)
    references = {}
    for kind, options in (
        ("als", [{"factors": f} for f in (32, 64, 128)]),
        ("itemknn", [{"neighbours": 100}]),
    ):
        best_ref, best_ndcg = None, -1.0
        for option in options:
            ref = fit_reference(kind, test.training, n_items, random_state=args.seed, **option)
            val = np.mean([ndcg_at_k(ref(c.visible, 10), c.relevant) for c in validation.cases])
            say(f"reference {kind} {option}: validation NDCG@10 {val:.4f}")
            if val > best_ndcg:
                best_ref, best_ndcg, best_option = ref, val, option
        references[f"{kind} (implicit {best_option})"] = best_ref

    scores = score_cases(
        rec,
        test.cases,
        test.detected,
        last_n=choice["last_n"],
        half_life=choice["half_life"],
        policies=ALL_POLICIES,
        static=best,
    )
    # "decay" and, inside "now", recency use the chosen half-life; without a detection "now"
    # is the best static policy, so it can only differ where the detector acts.
    ref_scores = pd.concat(
        [reference_scores(ref, test.cases, policy=name) for name, ref in references.items()]
    )
    report = summarise(
        pd.concat([scores, ref_scores], ignore_index=True),
        n_resamples=args.resamples,
        random_state=args.seed,
        params=test.params | choice,
        comparisons=fair_comparisons(best),
    )
    print(f"\nTest users (best static policy on validation: {best}):\n")
    print(lift_markdown(report))
    print("\nShift-aware bar:")
    for label, ok in shift_aware_bar(report, best).items():
        print(f"- {label}: {'PASS' if ok else 'FAIL'}")

    say("After-list shares")
    with store.connect(args.dataset) as con:
        items = store.load_items(con)
    explainer = ShiftExplainer().fit(items, test.item_vectors)
    shares = after_shares(rec, explainer, test.cases, test.detected)
    print(
        f"\nAfter list vs what spliced test users consumed after the change (rising "
        f"{explainer.category_source_}; k = 10):\n"
    )
    print(
        "| at | users | after-segment share | consumed share | After list (ranked) | After list "
        "(follows the shift) | ratio to consumed | NDCG@10 ranked | NDCG@10 follows |\n|---|---|---|---|---|---|---|---|---|"
    )
    for at, part in shares.groupby("at", sort=False):
        m = part.mean(numeric_only=True)
        print(
            f"| {at} | {len(part)} | {m.after_segment_share:.3f} | {m.consumed_share:.3f} | {m.raw_share:.3f} | "
            f"{m.list_share:.3f} | {m.list_share / m.consumed_share:.2f} | {m.raw_ndcg:.4f} | {m.list_ndcg:.4f} |"
        )
    true_part = shares[shares["at"] == "true"].mean(numeric_only=True)
    ratio = true_part.list_share / true_part.consumed_share
    print(
        f"\nAfter-share bar (spliced, true change): {ratio:.2f} of consumed "
        f"({'PASS' if ratio >= AFTER_SHARE_BAR else 'FAIL'}, bar {AFTER_SHARE_BAR:.0%}); following the shift "
        f"changes NDCG@10 of the After list by {percent(true_part.list_ndcg / true_part.raw_ndcg - 1)}"
    )
    if not args.skip_shifted:
        most_shifted(args, rec, explainer, items)
    print(f"\nfair lift wall time: {time.perf_counter() - started:.0f} s")


def most_shifted(args, rec, explainer, items) -> None:
    """The After-list share for the dashboard's 25 most shifted users (their top-scored
    change, bounded by their other change points), with a recommender fitted on everyone."""
    from core import artefacts
    from core.detectors.population import change_points
    from core.recommend import recommend_around_change

    say("fitting the population detector for the most shifted users")
    fit = artefacts.fitted_detector(args.dataset)
    full = artefacts.recommender(args.dataset, artefacts.item_matrix(args.dataset))
    full.collaborative_weight, full.past_weight, full.half_life = (
        rec.collaborative_weight,
        rec.past_weight,
        rec.half_life,
    )
    cps = change_points(fit)
    top = cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id").head(25)
    ev = fit.events
    position = {u: i for i, u in enumerate(ev.user_ids)}
    rows = []
    for r in top.itertuples():
        history = ev.item_idx[ev.user_slice(position[r.user_id])].astype(np.int64)
        points = cps.loc[cps["user_id"] == r.user_id, "event_index"].tolist()
        for follow in (False, True):
            res = recommend_around_change(
                full, explainer, items, r.user_id, history, points, r.event_index, follow_shift=follow
            )
            rows.append((follow, res.rising_share.get("after", np.nan), res.consumed_rising_share))
    rows = np.array(rows, dtype=np.float64)
    print("\nThe 25 most shifted users (whole log; share in the after segment = what they consumed):\n")
    print("| After list | share in rising | consumed share | ratio |\n|---|---|---|---|")
    for follow, label in ((0.0, "ranked"), (1.0, "follows the shift")):
        part = rows[rows[:, 0] == follow]
        listed, consumed = np.nanmean(part[:, 1]), np.nanmean(part[:, 2])
        print(f"| {label} | {listed:.3f} | {consumed:.3f} | {listed / consumed:.2f} |")


def latency(args) -> None:
    from core import artefacts
    from core.artefacts import item_matrix, recommender
    from core.explain import ShiftExplainer
    from core.recommend import recommend_around_change

    vectors = item_matrix(args.dataset)
    start = time.perf_counter()
    rec = recommender(args.dataset, vectors)
    fit_s = time.perf_counter() - start
    items, events = artefacts.items(args.dataset), artefacts.events(args.dataset)
    start = time.perf_counter()
    explainer = ShiftExplainer().fit(items, vectors)
    explain_fit_s = time.perf_counter() - start
    times, cpu = [], []
    # A seeded sample of users on big logs (every user by default).
    users = np.arange(events.n_users)
    if args.latency_users and args.latency_users < events.n_users:
        users = np.sort(np.random.default_rng(0).choice(events.n_users, args.latency_users, replace=False))
    for k in users:
        history = events.item_idx[events.user_slice(k)].astype(np.int64)
        cp = len(history) // 2
        start, start_cpu = time.perf_counter(), time.process_time()
        # Explanation and the three lists of the segments around the change, as the pages ask.
        recommend_around_change(rec, explainer, items, events.user_ids[k], history, [cp], cp, k=10)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ms, cpu_ms = np.array(times) * 1000, np.array(cpu) * 1000
    print(
        f"\nlatency on {args.dataset}: Recommender.fit {fit_s:.2f} s (co-occurrence nnz "
        f"{rec.cooccurrence_.nnz:,}), ShiftExplainer.fit {explain_fit_s:.2f} s; one user's "
        f"before/after/now top-10 tables + explanation, {len(ms)} users (change point at "
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
    parser.add_argument("--fair", action="store_true", help="the fair protocol (validation-tuned baselines)")
    parser.add_argument("--validation-splices", type=int, default=200)
    parser.add_argument("--validation-controls", type=int, default=100)
    parser.add_argument("--latency-users", type=int, default=0, help="sample this many users (0: all)")
    parser.add_argument("--skip-shifted", action="store_true", help="--fair without the most shifted users")
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
    if args.fair:
        fair(args)
        if not args.skip_latency:
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
