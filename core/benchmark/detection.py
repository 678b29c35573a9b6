"""The detector benchmark: every detector on spliced real users, at its calibrated default
and at its oracle threshold, next to dumb baselines (never fire, fire every k events, and
the genre-histogram detector, which uses no language model).

Protocol (``run_evaluation``):

1. Real users are split into a calibration part and a test part (:func:`~core.benchmark.splices.split_users`).
2. Each detector learns its population state (ridge model, forest, projections) from the
   calibration users' real histories, and its default threshold from shuffled copies of
   them (:func:`~core.benchmark.training.fit_and_calibrate`): the threshold giving ``target`` false alarms per 1,000
   events. Nothing is tuned on test users. A second, stricter default treats the calibration
   users' real (unshuffled) histories as the null: real logs drift on their own. Detectors
   the product calibrates on real histories (``null == "real"``: best_split) take that one as
   their "default" row, and the shuffled one as "default, shuffled null".
3. Benchmark users are built from the test users only (:mod:`core.benchmark.splices`): splices in three
   difficulty bins, multi-splices, gradual ramps, unspliced controls and shuffled
   histories; for datasets with planted truth (``synthetic``), the test users' own planted
   shifts and the multi-interest users that must stay silent are added
   (:func:`~core.benchmark.planted.planted_users`).
4. Metrics (:mod:`core.metrics`): precision, recall and F1 with one-to-one matching within ±M events (M = 5, 10),
   median location error, median alert delay (alert event − true change), false alarms
   per 1,000 events on controls and on shuffled histories, precision-recall curves over the
   threshold. The oracle row uses the test-optimal threshold and is labelled as such.
5. The same protocol on benchmark users built from the *calibration* part gives the
   ``selection`` F1 used to choose the default detector (never the test numbers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import store
from core.artefacts import item_features
from core.artefacts.datasets import shift_free_users
from core.benchmark.planted import planted_users
from core.benchmark.splices import BINS, SplicedUser, splice_benchmark, split_users, to_event_arrays
from core.benchmark.training import change_points_by_user, fit_and_calibrate, training_events
from core.detectors.base import ChangePoints
from core.detectors.population import stated_threshold
from core.metrics import MatchCounts, false_alarms_per_1000, median

MARGINS = (5, 10)
POSITIVE_KINDS = ("splice", "multi", "gradual", "planted")
FALSE_ALARM_KINDS = ("control", "shuffled", "stable", "multi-interest")  # no true change: any alarm is false
EVERY_K = (10, 15, 20, 30, 40, 60, 80)


@dataclass
class Benchmark:
    """Benchmark users and their events in CSR layout."""

    users: list[SplicedUser]
    offsets: np.ndarray
    item_idx: np.ndarray
    kinds: np.ndarray
    bins: np.ndarray

    @classmethod
    def of(cls, users: list[SplicedUser]) -> Benchmark:
        _, offsets, item_idx, _ = to_event_arrays(users)
        return cls(
            users, offsets, item_idx, np.array([u.kind for u in users]), np.array([u.bin for u in users])
        )

    def events_of(self, mask: np.ndarray) -> int:
        return int(np.diff(self.offsets)[mask].sum())


def _match(bench: Benchmark, found: list, mask: np.ndarray, margin: int) -> MatchCounts:
    counts = MatchCounts()
    for k in np.flatnonzero(mask):
        pred, alert = found[k]
        counts.add(bench.users[k].change_points, pred, alert, margin)
    return counts


def score_change_points(bench: Benchmark, cp: ChangePoints) -> dict:
    """One row of metrics for a set of change points over the benchmark users."""
    found = change_points_by_user(cp, len(bench.users))
    splice = bench.kinds == "splice"
    row: dict = {}
    for m in MARGINS:
        s = _match(bench, found, splice, m)
        p, r, f = s.precision_recall_f1()
        row |= {f"P@{m}": p, f"R@{m}": r, f"F1@{m}": f}
        if m == 10:
            row["location_error"] = median(s.location_errors)
    for b in BINS:
        row[f"F1@10 {b}"] = _match(bench, found, splice & (bench.bins == b), 10).precision_recall_f1()[2]
    for kind in ("multi", "gradual", "planted"):
        if np.any(bench.kinds == kind):
            row[f"F1@10 {kind}"] = _match(bench, found, bench.kinds == kind, 10).precision_recall_f1()[2]
    positive = np.isin(bench.kinds, POSITIVE_KINDS)
    row["alert_delay"] = median(_match(bench, found, positive, 10).alert_delays)
    for kind in FALSE_ALARM_KINDS:
        mask = bench.kinds == kind
        if mask.any():
            alarms = sum(len(found[k][0]) for k in np.flatnonzero(mask))
            row[f"FA/1000 {kind}"] = false_alarms_per_1000(alarms, bench.events_of(mask))
    return row


def fire_every_k(bench: Benchmark, k: int) -> ChangePoints:
    """The periodic baseline: an alarm every ``k`` events of every benchmark user."""
    rows = [(u, t) for u, n in enumerate(np.diff(bench.offsets)) for t in range(k, int(n), k)]
    if not rows:
        return ChangePoints.empty()
    a = np.array(rows, dtype=np.int64)
    return ChangePoints(a[:, 0], a[:, 1], np.ones(len(a)), a[:, 1])


def baseline_rows(bench: Benchmark) -> list[dict]:
    """Never fire; fire every 20 events; fire every k at the test-optimal k (labelled oracle)."""
    rows = [
        {"detector": "never_fire", "setting": "default"} | score_change_points(bench, ChangePoints.empty())
    ]
    every = [score_change_points(bench, fire_every_k(bench, k)) for k in EVERY_K]
    rows.append({"detector": "every_20", "setting": "default"} | every[EVERY_K.index(20)])
    best = int(np.argmax([m["F1@10"] for m in every]))
    rows.append({"detector": f"every_{EVERY_K[best]}", "setting": "oracle"} | every[best])
    return rows


@dataclass
class Evaluation:
    """The benchmark's table (one row per detector and setting), its precision-recall
    curves over the threshold, and what was run (``meta``)."""

    table: pd.DataFrame
    curves: pd.DataFrame
    meta: dict = field(default_factory=dict)


def _detector_rows(
    det_name: str,
    features: np.ndarray,
    calibration_users: store.EventArrays,
    test: Benchmark,
    select: Benchmark,
    target: float,
    n_shuffles: int,
    random_state: int,
    null_users: store.EventArrays | None = None,
) -> tuple[list[dict], list[dict]]:
    """The default, real-null default and oracle rows of one detector, and its curve
    (``null_users``: the real null's users when not the calibration users themselves)."""
    t0 = time.perf_counter()
    fitted = fit_and_calibrate(
        det_name,
        features,
        calibration_users,
        n_shuffles=n_shuffles,
        random_state=random_state,
        real_null=True,
        null_users=null_users,
    )
    det, cal = fitted.detector, fitted.calibration
    # thresholds as the product states them (three significant digits, rounded up)
    default = stated_threshold(cal.threshold_for(target))
    strict = stated_threshold(fitted.real_null_calibration.threshold_for(target))
    # The product calibrates real-null detectors (best_split) on real histories: their
    # "default" row is that threshold, and the shuffled one is the alternative row.
    real_default = det.null == "real"
    if real_default:
        cal = fitted.real_null_calibration
        default, strict = strict, default
    grid = np.unique(np.append(det.threshold_grid(), [default, strict]))
    found = det.detect(features[test.item_idx], test.offsets, grid)
    sweep = [score_change_points(test, cp) for cp in found]
    chosen = int(np.searchsorted(grid, default))
    sel = score_change_points(select, det.detect(features[select.item_idx], select.offsets, [default])[0])
    seconds = time.perf_counter() - t0
    oracle = int(np.argmax([m["F1@10"] for m in sweep]))
    base = {"detector": det_name, "target FA/1000": target, "seconds": seconds}
    rows = [
        base
        | {
            "setting": "default",
            "threshold": default,
            "null FA/1000": cal.false_alarms_at(default),
            "selection F1@10": sel["F1@10"],
            "selection FA/1000 control": sel["FA/1000 control"],
        }
        | sweep[chosen],
        base
        | {
            "setting": "default, shuffled null" if real_default else "default, real null",
            "threshold": strict,
            "null FA/1000": (fitted.calibration if real_default else cal).false_alarms_at(strict),
        }
        | sweep[int(np.searchsorted(grid, strict))],
        base
        | {"setting": "oracle", "threshold": grid[oracle], "null FA/1000": cal.false_alarms_at(grid[oracle])}
        | sweep[oracle],
    ]
    curve = [
        {"detector": det_name, "threshold": g, "null FA/1000": cal.false_alarms_at(g)} | m
        for g, m in zip(grid, sweep, strict=True)
    ]
    return rows, curve


def run_evaluation(
    name: str,
    detectors: Sequence[str] | None = None,
    target: float = 1.0,
    random_state: int = 0,
    n_shuffles: int = 2,
    sizes: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Run the benchmark on dataset ``name`` (see the module docstring) and return its tables."""
    from core.detectors import DETECTORS, make_detector

    say = progress or (lambda _msg: None)
    names = list(detectors or DETECTORS)
    with store.connect(name) as con:
        events = store.load_event_arrays(con)
        labels = store.load_user_labels(con)
    has_truth = bool(len(labels))
    embedding = item_features(name, "embedding")
    cal_users, test_users = split_users(events.user_ids, 0.5, random_state)
    sources_cal, sources_test = cal_users, test_users
    if has_truth:  # splice only users without planted shifts of their own
        stable = labels.user_id[labels.kind == "stable"].astype(str).to_numpy()
        sources_cal, sources_test = np.intersect1d(cal_users, stable), np.intersect1d(test_users, stable)
    sizes = sizes or {}
    test = Benchmark.of(
        splice_benchmark(events, embedding, users=sources_test, random_state=random_state + 1, **sizes)
        + (planted_users(name, events, test_users) if has_truth else [])
    )
    select = Benchmark.of(
        splice_benchmark(events, embedding, users=sources_cal, random_state=random_state + 2, **sizes)
    )
    calibration_users = training_events(events, cal_users)
    # A planted world's real null is its calibration users without a planted change, as in
    # the product (core.artefacts.datasets.shift_free_users).
    unchanged = shift_free_users(name)  # the product's own rule (None: no ground truth)
    null_users = (
        None
        if unchanged is None
        else training_events(events, np.intersect1d(cal_users, events.user_ids[unchanged]))
    )
    say(
        f"{len(test.users)} test benchmark users, {len(select.users)} selection users, "
        f"{len(cal_users)} calibration users"
    )

    rows, curves = [], []
    feats: dict[str, np.ndarray] = {"embedding": embedding}
    for det_name in names:
        kind = make_detector(det_name).features
        if kind not in feats:
            feats[kind] = item_features(name, kind)
        det_rows, curve = _detector_rows(
            det_name,
            feats[kind],
            calibration_users,
            test,
            select,
            target,
            n_shuffles,
            random_state,
            null_users,
        )
        rows += det_rows
        curves += curve
        default, oracle = det_rows[0], det_rows[2]
        say(
            f"{det_name}: F1@10 {default['F1@10']:.3f} at default, {oracle['F1@10']:.3f} oracle "
            f"({default['seconds']:.1f} s)"
        )
    rows += baseline_rows(test)
    meta = {
        "dataset": name,
        "target_false_alarms_per_1000": target,
        "random_state": random_state,
        "n_calibration_users": len(cal_users),
        "n_test_users": len(test_users),
        "test_benchmark": pd.Series(test.kinds).value_counts().to_dict(),
        "test_events": {k: test.events_of(test.kinds == k) for k in np.unique(test.kinds)},
        "margins": list(MARGINS),
    }
    return Evaluation(pd.DataFrame(rows), pd.DataFrame(curves), meta)
