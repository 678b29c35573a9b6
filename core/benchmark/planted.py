"""Planted ground truth (synthetic worlds): its users as benchmark users, and scoring against it.

The detector benchmark (:mod:`core.benchmark.detection`) adds a dataset's planted users to
its spliced test users (:func:`planted_users`). The Evaluation page asks a narrower, live
question: at the ε on screen, how do this dataset's detections compare with its planted
change points (:func:`score_detections`), and how would they at every threshold
(:func:`threshold_sweep`)? Both use the metrics of :mod:`core.metrics`, so they speak the
benchmark's precision, recall and delay.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core import store
from core.benchmark.splices import SplicedUser
from core.metrics import MatchCounts, false_alarms_per_1000

SILENT_KINDS = ("stable", "multi")  # user labels whose histories must raise no alarm


def score_detections(
    truth: pd.DataFrame,
    labels: pd.DataFrame,
    detections: pd.DataFrame,
    events_per_user: pd.Series,
    margin: int = 10,
) -> dict:
    """Precision/recall/F1 of ``detections`` against ``truth`` within ±``margin`` events.

    ``truth``: user_id, event_index; ``labels``: user_id, kind (only labelled users are
    scored); ``detections``: user_id, event_index, alert_index; ``events_per_user``:
    n_events indexed by user_id. Returns tp/fp/fn, precision, recall, f1, the alert
    delays of matched detections (alert − true index) and false alarms per 1,000 events
    of users that must stay silent (stable and multi-interest users).

    >>> truth = pd.DataFrame({"user_id": ["a"], "event_index": [20]})
    >>> labels = pd.DataFrame({"user_id": ["a", "b"], "kind": ["abrupt", "stable"]})
    >>> found = pd.DataFrame({"user_id": ["a", "b"], "event_index": [22, 5], "alert_index": [41, 24]})
    >>> r = score_detections(truth, labels, found, pd.Series({"a": 40, "b": 50}))
    >>> r["tp"], r["fp"], r["fn"], r["delays"], r["false_alarms_per_1000"]
    (1, 1, 0, [21], 20.0)
    """
    kinds = dict(zip(labels["user_id"].astype(str), labels["kind"], strict=True))
    true_of = truth.groupby(truth["user_id"].astype(str))["event_index"].apply(list).to_dict()
    det = detections.assign(user_id=detections["user_id"].astype(str))
    found_of = {u: g for u, g in det.groupby("user_id")}
    counts = MatchCounts()
    silent_alarms = silent_events = 0
    for user, kind in kinds.items():
        group = found_of.get(user)
        pred = [] if group is None else group["event_index"].astype(int).tolist()
        alert = [] if group is None else group["alert_index"].astype(int).tolist()
        counts.add([int(t) for t in true_of.get(user, [])], pred, alert, margin)
        if kind in SILENT_KINDS:
            silent_alarms += len(pred)
            silent_events += int(events_per_user.get(user, 0))
    precision, recall, f1 = counts.precision_recall_f1()
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "delays": counts.alert_delays,
        "false_alarms_per_1000": false_alarms_per_1000(silent_alarms, silent_events),
    }


def threshold_sweep(
    truth: pd.DataFrame,
    labels: pd.DataFrame,
    detections: pd.DataFrame,
    events_per_user: pd.Series,
    thresholds: Sequence[float],
    margin: int = 10,
) -> pd.DataFrame:
    """:func:`score_detections` at each threshold, for peak detectors whose change points at
    threshold t are exactly the candidates (``detections`` with a ``score``) scoring >= t.

    The users' truths and candidates are grouped once, not once per threshold (60 thresholds
    over 1,000 users took 7-12 s on the Evaluation page's first visit, grouping each time).

    >>> truth = pd.DataFrame({"user_id": ["a"], "event_index": [20]})
    >>> labels = pd.DataFrame({"user_id": ["a", "b"], "kind": ["abrupt", "stable"]})
    >>> found = pd.DataFrame({"user_id": ["a", "b"], "event_index": [22, 5], "alert_index": [41, 24],
    ...                       "score": [2.0, 1.0]})
    >>> threshold_sweep(truth, labels, found, pd.Series({"a": 40, "b": 50}), [0.5, 1.5])[["f1", "false_alarms_per_1000"]].values.tolist()
    [[0.6666666666666666, 20.0], [1.0, 0.0]]
    """
    kinds = dict(zip(labels["user_id"].astype(str), labels["kind"], strict=True))
    true_of = truth.groupby(truth["user_id"].astype(str))["event_index"].apply(list).to_dict()
    det = detections.assign(user_id=detections["user_id"].astype(str))
    found_of = {
        u: (
            g["event_index"].to_numpy(np.int64),
            g["alert_index"].to_numpy(np.int64),
            g["score"].to_numpy(float),
        )
        for u, g in det.groupby("user_id")
        if u in kinds
    }
    silent_events = sum(int(events_per_user.get(u, 0)) for u, k in kinds.items() if k in SILENT_KINDS)
    missed_alone = sum(len(true_of.get(u, [])) for u in kinds if u not in found_of)
    rows = []
    for t in thresholds:
        counts = MatchCounts(fn=missed_alone)
        silent_alarms = 0
        for user, (pred, alert, score) in found_of.items():
            keep = score >= t
            counts.add([int(x) for x in true_of.get(user, [])], pred[keep], alert[keep], margin)
            if kinds[user] in SILENT_KINDS:
                silent_alarms += int(keep.sum())
        precision, recall, f1 = counts.precision_recall_f1()
        rows.append(
            {
                "threshold": float(t),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "false_alarms_per_1000": false_alarms_per_1000(silent_alarms, silent_events),
            }
        )
    return pd.DataFrame(rows)


def threshold_grid(scores: np.ndarray, n: int = 60) -> np.ndarray:
    """Thresholds at quantiles of the candidate scores (where the curve can change)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return np.array([0.0])
    return np.unique(np.quantile(s, np.linspace(0.0, 1.0, n)))


def planted_users(name: str, events: store.EventArrays, users: np.ndarray) -> list[SplicedUser]:
    """The dataset's own users with planted truth among ``users``, as benchmark users: kind
    ``planted`` (shifted), ``stable`` or ``multi-interest`` (both must stay silent)."""
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
