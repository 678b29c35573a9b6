"""The ground-truth benchmark: every detector on spliced real users, at its calibrated
default and at its oracle threshold, next to dumb baselines.

Protocol (``run_evaluation``):

1. Real users are split into a calibration part and a test part (``split_users``).
2. Each detector learns its population state (ridge model, forest, projections) from the
   calibration users' real histories, and its default threshold from shuffled copies of
   them (``core.calibration``): the threshold giving ``target`` false alarms per 1,000
   events. Nothing is tuned on test users. A second, stricter default treats the calibration
   users' real (unshuffled) histories as the null: real logs drift on their own.
3. Benchmark users are built from the test users only (``core.splice``): splices in three
   difficulty bins, multi-splices, gradual ramps, unspliced controls and shuffled
   histories; for datasets with planted truth (``synthetic``), the test users' own planted
   shifts and the multi-interest users that must stay silent are added.
4. Metrics: precision, recall and F1 with one-to-one matching within ±M events (M = 5, 10),
   median location error, median alert delay (alert event − true change), false alarms
   per 1,000 events on controls and on shuffled histories, precision-recall curves over the
   threshold. The oracle row uses the test-optimal threshold and is labelled as such.
5. The same protocol on benchmark users built from the *calibration* part gives the
   ``selection`` F1 used to choose the default detector (never the test numbers).

>>> match_change_points([10, 50], [12, 49, 80], margin=5)
[(10, 12), (50, 49)]
>>> precision_recall_f1(tp=2, fp=1, fn=0)
(0.6666666666666666, 1.0, 0.8)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import store
from core.artefacts import item_features
from core.calibration import calibrate
from core.detectors import make_detector
from core.detectors.base import ChangePoints
from core.splice import SplicedUser, splice_benchmark, split_users, to_event_arrays

MARGINS = (5, 10)
POSITIVE_KINDS = ("splice", "multi", "gradual", "planted")
EVERY_K = (10, 15, 20, 30, 40, 60, 80)


def match_change_points(true: Sequence[int], pred: Sequence[int], margin: int) -> list[tuple[int, int]]:
    """One-to-one matching of true and predicted change points within ±``margin`` events.

    Greedy in time order, which is maximal when every tolerance window has the same width.
    """
    t, p = sorted(int(x) for x in true), sorted(int(x) for x in pred)
    pairs, j = [], 0
    for x in t:
        while j < len(p) and p[j] < x - margin:
            j += 1
        if j < len(p) and p[j] <= x + margin:
            pairs.append((x, p[j]))
            j += 1
    return pairs


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; precision is 1 when nothing was predicted (no wrong alarm)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class Benchmark:
    """Benchmark users and, per feature kind, their event vectors in CSR layout."""

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


def _per_user(cp: ChangePoints, n_users: int) -> list[tuple[np.ndarray, np.ndarray]]:
    bounds = np.searchsorted(cp.user, np.arange(n_users + 1))
    return [(cp.event_index[a:b], cp.alert_index[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _group_scores(bench: Benchmark, found: list, mask: np.ndarray, margin: int) -> dict:
    tp = fp = fn = 0
    errors, delays = [], []
    for k in np.flatnonzero(mask):
        pred, alert = found[k]
        pairs = match_change_points(bench.users[k].change_points, pred, margin)
        tp, fp, fn = (
            tp + len(pairs),
            fp + len(pred) - len(pairs),
            fn + len(bench.users[k].change_points) - len(pairs),
        )
        alert_of = dict(zip(pred.tolist(), alert.tolist(), strict=True))
        errors += [abs(p - t) for t, p in pairs]
        delays += [alert_of[p] - t for t, p in pairs]
    p, r, f = precision_recall_f1(tp, fp, fn)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": p,
        "recall": r,
        "f1": f,
        "location_error": float(np.median(errors)) if errors else float("nan"),
        "alert_delay": float(np.median(delays)) if delays else float("nan"),
    }


def metrics(bench: Benchmark, cp: ChangePoints) -> dict:
    """One row of metrics for a set of change points over the benchmark users."""
    found = _per_user(cp, len(bench.users))
    splice = bench.kinds == "splice"
    row: dict = {}
    for m in MARGINS:
        s = _group_scores(bench, found, splice, m)
        row |= {f"P@{m}": s["precision"], f"R@{m}": s["recall"], f"F1@{m}": s["f1"]}
        if m == 10:
            row["location_error"] = s["location_error"]
    for b in ("easy", "medium", "hard"):
        row[f"F1@10 {b}"] = _group_scores(bench, found, splice & (bench.bins == b), 10)["f1"]
    for kind in ("multi", "gradual", "planted"):
        if np.any(bench.kinds == kind):
            row[f"F1@10 {kind}"] = _group_scores(bench, found, bench.kinds == kind, 10)["f1"]
    positive = np.isin(bench.kinds, POSITIVE_KINDS)
    row["alert_delay"] = _group_scores(bench, found, positive, 10)["alert_delay"]
    for kind in ("control", "shuffled", "stable", "multi-interest"):
        mask = bench.kinds == kind
        if mask.any():
            alarms = sum(len(found[k][0]) for k in np.flatnonzero(mask))
            row[f"FA/1000 {kind}"] = 1000.0 * alarms / max(bench.events_of(mask), 1)
    return row


def _every_k(bench: Benchmark, k: int) -> ChangePoints:
    rows = [(u, t) for u, n in enumerate(np.diff(bench.offsets)) for t in range(k, int(n), k)]
    if not rows:
        return ChangePoints.empty()
    a = np.array(rows, dtype=np.int64)
    return ChangePoints(a[:, 0], a[:, 1], np.ones(len(a)), a[:, 1])


def _planted_users(name: str, events: store.EventArrays, users: np.ndarray) -> list[SplicedUser]:
    """The dataset's own users with planted truth (synthetic data), as benchmark users."""
    with store.connect(name) as con:
        labels = store.load_user_labels(con)
        truth = store.load_ground_truth(con)
    if labels.empty:
        return []
    kind_of = dict(zip(labels.user_id.astype(str), labels.kind, strict=True))
    cps = truth.groupby(truth.user_id.astype(str)).event_index.apply(list).to_dict()
    out = []
    for k, uid in enumerate(events.user_ids):
        if uid not in users or uid not in kind_of:
            continue
        s = events.user_slice(k)
        label = kind_of[uid]
        kind = {"stable": "stable", "multi": "multi-interest"}.get(label, "planted")
        out.append(
            SplicedUser(
                f"planted-{uid}",
                events.item_idx[s],
                events.rating[s],
                [int(c) for c in cps.get(uid, [])],
                kind,
                label,
                (uid,),
                (s.stop - s.start,),
            )
        )
    return out


def _subset(events: store.EventArrays, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = np.flatnonzero(np.isin(events.user_ids, users))
    counts = np.diff(events.offsets)[keep]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = np.concatenate([np.arange(events.offsets[k], events.offsets[k + 1]) for k in keep])
    return offsets, events.item_idx[rows], events.rating[rows]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table; numbers to 3 significant digits, missing values blank."""

    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


@dataclass
class Evaluation:
    table: pd.DataFrame
    curves: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def markdown(self) -> str:
        cols = [
            "detector",
            "setting",
            "threshold",
            "F1@10",
            "P@10",
            "R@10",
            "F1@5",
            "F1@10 easy",
            "F1@10 medium",
            "F1@10 hard",
            "F1@10 multi",
            "F1@10 gradual",
            "F1@10 planted",
            "location_error",
            "alert_delay",
            "FA/1000 control",
            "FA/1000 shuffled",
            "FA/1000 stable",
            "FA/1000 multi-interest",
            "selection F1@10",
            "selection FA/1000 control",
            "seconds",
        ]
        t = self.table[[c for c in cols if c in self.table.columns]].copy()
        t = t.rename(
            columns={
                "location_error": "loc err",
                "alert_delay": "delay",
                "selection F1@10": "sel F1@10",
                "selection FA/1000 control": "sel FA ctrl",
            }
        )
        return markdown_table(t)


def run_evaluation(
    name: str,
    detectors: Sequence[str] | None = None,
    target: float = 1.0,
    random_state: int = 0,
    n_shuffles: int = 2,
    sizes: dict | None = None,
    progress=None,
) -> Evaluation:
    """Run the benchmark on dataset ``name`` (see the module docstring) and return its tables."""
    from core.detectors import DETECTORS

    say = progress or (lambda _msg: None)
    names = list(detectors or DETECTORS)
    with store.connect(name) as con:
        events = store.load_event_arrays(con)
        has_truth = bool(len(store.load_user_labels(con)))
    embedding = item_features(name, "embedding")
    cal_users, test_users = split_users(events.user_ids, 0.5, random_state)
    sources_cal, sources_test = cal_users, test_users
    if has_truth:  # splice only users without planted shifts of their own
        with store.connect(name) as con:
            labels = store.load_user_labels(con)
        stable = labels.user_id[labels.kind == "stable"].astype(str).to_numpy()
        sources_cal, sources_test = np.intersect1d(cal_users, stable), np.intersect1d(test_users, stable)
    sizes = sizes or {}
    test = Benchmark.of(
        splice_benchmark(events, embedding, users=sources_test, random_state=random_state + 1, **sizes)
        + (_planted_users(name, events, test_users) if has_truth else [])
    )
    select = Benchmark.of(
        splice_benchmark(events, embedding, users=sources_cal, random_state=random_state + 2, **sizes)
    )
    cal_offsets, cal_items, cal_ratings = _subset(events, cal_users)
    say(
        f"{len(test.users)} test benchmark users, {len(select.users)} selection users, "
        f"{len(cal_users)} calibration users"
    )

    rows, curves = [], []
    feats: dict[str, np.ndarray] = {"embedding": embedding}
    for det_name in names:
        t0 = time.perf_counter()
        det = make_detector(det_name)
        if det.features not in feats:
            feats[det.features] = item_features(name, det.features)
        items = feats[det.features]
        det.fit(items[cal_items], cal_offsets, cal_ratings)
        cal = calibrate(det, items[cal_items], cal_offsets, n_shuffles=n_shuffles, random_state=random_state)
        default = cal.threshold_for(target)
        real_cal = calibrate(det, items[cal_items], cal_offsets, null="real")
        strict = real_cal.threshold_for(target)
        grid = np.unique(np.append(det.threshold_grid(), [default, strict]))
        found = det.detect(items[test.item_idx], test.offsets, grid)
        sweep = [metrics(test, cp) for cp in found]
        chosen = int(np.searchsorted(grid, default))
        sel = metrics(select, det.detect(items[select.item_idx], select.offsets, [default])[0])
        seconds = time.perf_counter() - t0
        oracle = int(np.argmax([m["F1@10"] for m in sweep]))
        base = {"detector": det_name, "target FA/1000": target, "seconds": seconds}
        rows.append(
            base
            | {
                "setting": "default",
                "threshold": default,
                "null FA/1000": cal.false_alarms_at(default),
                "selection F1@10": sel["F1@10"],
                "selection FA/1000 control": sel["FA/1000 control"],
            }
            | sweep[chosen]
        )
        rows.append(
            base
            | {
                "setting": "default, real null",
                "threshold": strict,
                "null FA/1000": cal.false_alarms_at(strict),
            }
            | sweep[int(np.searchsorted(grid, strict))]
        )
        rows.append(
            base
            | {
                "setting": "oracle",
                "threshold": grid[oracle],
                "null FA/1000": cal.false_alarms_at(grid[oracle]),
            }
            | sweep[oracle]
        )
        curves += [
            {"detector": det_name, "threshold": g, "null FA/1000": cal.false_alarms_at(g)} | m
            for g, m in zip(grid, sweep, strict=True)
        ]
        say(
            f"{det_name}: F1@10 {sweep[chosen]['F1@10']:.3f} at default, {sweep[oracle]['F1@10']:.3f} oracle "
            f"({seconds:.1f} s)"
        )
    rows.append({"detector": "never_fire", "setting": "default"} | metrics(test, ChangePoints.empty()))
    every = [metrics(test, _every_k(test, k)) for k in EVERY_K]
    rows.append({"detector": "every_20", "setting": "default"} | every[EVERY_K.index(20)])
    best = int(np.argmax([m["F1@10"] for m in every]))
    rows.append({"detector": f"every_{EVERY_K[best]}", "setting": "oracle"} | every[best])
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


def write_evaluation(result: Evaluation, folder: Path) -> dict[str, Path]:
    """Write results.md (table), results.json (table + meta) and pr_curves.csv into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "results.md",
        "json": folder / "results.json",
        "curves": folder / "pr_curves.csv",
    }
    paths["markdown"].write_text(result.markdown() + "\n", encoding="utf-8")
    payload = {"meta": result.meta, "rows": json.loads(result.table.to_json(orient="records"))}
    paths["json"].write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    result.curves.to_csv(paths["curves"], index=False)
    return paths
