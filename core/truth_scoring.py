"""Scoring one set of detections against a dataset's own planted truth (synthetic worlds).

The benchmark (:mod:`core.evaluation`) fits detectors on calibration users and scores
spliced test users; this module answers the dashboard's narrower, live question: at the ε
on screen, how do this dataset's detections compare with its planted change points? It
reuses the benchmark's one-to-one matching so both speak the same precision and recall.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.evaluation import match_change_points, precision_recall_f1

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
    tp = fp = fn = 0
    delays: list[int] = []
    silent_alarms = silent_events = 0
    for user, kind in kinds.items():
        group = found_of.get(user)
        pred = [] if group is None else group["event_index"].astype(int).tolist()
        alert = {} if group is None else dict(zip(pred, group["alert_index"].astype(int), strict=True))
        true = [int(t) for t in true_of.get(user, [])]
        pairs = match_change_points(true, pred, margin)
        tp, fp, fn = tp + len(pairs), fp + len(pred) - len(pairs), fn + len(true) - len(pairs)
        delays += [alert[p] - t for t, p in pairs]
        if kind in SILENT_KINDS:
            silent_alarms += len(pred)
            silent_events += int(events_per_user.get(user, 0))
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "delays": delays,
        "false_alarms_per_1000": 1000.0 * silent_alarms / silent_events if silent_events else float("nan"),
    }


def sweep(
    truth: pd.DataFrame,
    labels: pd.DataFrame,
    detections: pd.DataFrame,
    events_per_user: pd.Series,
    thresholds: Sequence[float],
    margin: int = 10,
) -> pd.DataFrame:
    """:func:`score_detections` at each threshold, for peak detectors whose change points at
    threshold t are exactly the candidates (``detections`` with a ``score``) scoring >= t."""
    rows = []
    for t in thresholds:
        r = score_detections(truth, labels, detections[detections["score"] >= t], events_per_user, margin)
        rows.append(
            {
                "threshold": float(t),
                "precision": r["precision"],
                "recall": r["recall"],
                "f1": r["f1"],
                "false_alarms_per_1000": r["false_alarms_per_1000"],
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
