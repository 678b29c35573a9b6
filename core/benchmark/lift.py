"""Measured lift of re-recommendation: does acting on a detected shift predict the future better?

Protocol (spliced users from :mod:`core.benchmark.splices`, real histories A‖B):

- the system sees A's events and the first ``n_visible_after`` events of B; the rest of B is
  held out, and the items in it that the user has not already seen are the relevant items;
- each policy builds a profile from the visible events and recommends ``k`` unseen items:
  (i) ``whole`` history, (ii) ``recent`` last-N events, (iii) ``detected``: the events since
  the last change point the default detector finds in the visible events (the whole history
  when it finds none: the system only acts on detections), (iv) ``true``: the events since the
  true splice, and ``now``: the product policy at the detected change point (post-change
  profile with the past down-weighted);
- on unspliced control users (their last ``control_holdout`` share held out) the same
  comparison gives the cost of acting on false alarms.

Recall@k = hits / relevant; NDCG@k with binary gains and the ideal DCG of
min(k, relevant) hits. Relative differences of mean NDCG between two policies come with a
paired bootstrap confidence interval over users (all three in :mod:`core.metrics`). The
tables are written by :func:`core.benchmark.report.lift_markdown`; the bar they must clear
is the benchmark script's (bench/lift.py), not this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.benchmark.splices import SplicedUser, splice_benchmark, split_users
from core.benchmark.training import change_points_by_user, fit_and_calibrate, training_events
from core.errors import ShiftError
from core.metrics import ndcg_at_k, paired_relative_ci, recall_at_k
from core.recommend import Recommender, policy_weights
from core.store import EventArrays

# Policies compared, in the order of the table; "detected" is policy (iii) above.
POLICIES = ("whole", "recent", "detected", "now", "true")
# Detector hook: (visible item sequences in CSR: item_idx, offsets) -> per user, the change
# points found (indices of the first event after each change), ascending.
Detect = Callable[[np.ndarray, np.ndarray], list[list[int]]]


@dataclass(frozen=True)
class LiftCase:
    """One benchmark user split into what the system sees and what it must predict."""

    user_id: str
    kind: str  # "splice" or "control"
    bin: str
    visible: np.ndarray  # item_idx of the visible events, in order
    relevant: np.ndarray  # held-out items not among the visible ones
    true_change_point: int | None  # index in ``visible`` (None for controls)


def lift_cases(
    users: Sequence[SplicedUser],
    n_visible_after: int = 10,
    control_holdout: float = 0.4,
    min_relevant: int = 5,
) -> list[LiftCase]:
    """Split ``splice`` and ``control`` benchmark users into visible and held-out events.

    Other kinds (multi, gradual, shuffled) are skipped: the lift question is asked on the
    clean single splice and on unspliced real users. Users left with fewer than
    ``min_relevant`` relevant items are dropped.
    """
    cases = []
    for u in users:
        idx = np.asarray(u.item_idx, dtype=np.int64)
        if u.kind == "splice":
            cp = int(u.change_points[0])
            cut, true_cp = cp + n_visible_after, cp
        elif u.kind == "control":
            cut, true_cp = len(idx) - int(round(control_holdout * len(idx))), None
        else:
            continue
        visible, held = idx[:cut], idx[cut:]
        relevant = np.setdiff1d(held, visible)
        if len(relevant) >= min_relevant and len(visible) >= 2:
            cases.append(LiftCase(str(u.user_id), u.kind, u.bin, visible, relevant, true_cp))
    return cases


def policy_profile(case: LiftCase, policy: str, detected: list[int], last_n: int, past_weight: float):
    """Weights over ``case.visible`` for a policy; ``None`` when the policy cannot apply."""
    n = len(case.visible)
    cp = detected[-1] if detected else None
    if policy == "whole":
        return policy_weights(n, None, "whole")
    if policy == "recent":
        return policy_weights(n, None, "recent", last_n=last_n)
    if policy in ("detected", "now"):
        if cp is None:  # no detection: the system keeps its whole-history profile
            return policy_weights(n, None, "whole")
        return policy_weights(n, cp, "after" if policy == "detected" else "now", past_weight)
    if policy == "true":
        return None if case.true_change_point is None else policy_weights(n, case.true_change_point, "after")
    raise ShiftError(f"unknown lift policy {policy!r}")


def score_cases(
    recommender: Recommender,
    cases: list[LiftCase],
    detected: list[list[int]],
    k: int = 10,
    last_n: int = 10,
) -> pd.DataFrame:
    """One row per (case, policy): recall@k, ndcg@k, and the change point acted on."""
    rows = []
    for case, found in zip(cases, detected, strict=True):
        for policy in POLICIES:
            w = policy_profile(case, policy, found, last_n, recommender.past_weight)
            if w is None:
                continue
            top = recommender.recommend(case.visible, w, k=k)
            rows.append(
                {
                    "user_id": case.user_id,
                    "kind": case.kind,
                    "bin": case.bin,
                    "policy": policy,
                    "recall": recall_at_k(top, case.relevant),
                    "ndcg": ndcg_at_k(top, case.relevant),
                    "detected_change_point": found[-1] if found else -1,
                    "true_change_point": -1 if case.true_change_point is None else case.true_change_point,
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LiftReport:
    """Per-case scores and the summary tables of one lift run."""

    scores: pd.DataFrame  # score_cases output
    summary: pd.DataFrame  # kind, policy, users, recall, ndcg, ndcg_vs_whole (+ CI)
    comparisons: pd.DataFrame  # kind, policy, baseline, relative, ci_low, ci_high
    detection: pd.DataFrame  # kind, users, with_detection, median |detected - true|
    params: dict


# (kind, policy, baseline) pairs compared with paired bootstrap intervals.
COMPARISONS = (
    ("splice", "recent", "whole"),
    ("splice", "detected", "whole"),
    ("splice", "detected", "recent"),
    ("splice", "now", "whole"),
    ("splice", "true", "whole"),
    ("splice", "detected", "true"),
    ("control", "recent", "whole"),
    ("control", "detected", "whole"),
    ("control", "now", "whole"),
)


def summarise(
    scores: pd.DataFrame, n_resamples: int = 2000, random_state: int = 0, params=None
) -> LiftReport:
    """Means per (kind, policy), paired bootstrap comparisons and how often the detector acted."""
    summary = (
        scores.groupby(["kind", "policy"], sort=False)
        .agg(users=("user_id", "size"), recall=("recall", "mean"), ndcg=("ndcg", "mean"))
        .reset_index()
    )
    # pivot (not pivot_table): a user id appearing twice is an error, never silently averaged.
    wide = scores.pivot(index=["kind", "user_id"], columns="policy", values="ndcg")
    rows = []
    for kind, policy, baseline in COMPARISONS:
        if kind not in wide.index.get_level_values(0):
            continue
        part = wide.loc[kind]
        if policy not in part or baseline not in part:
            continue
        pair = part[[policy, baseline]].dropna()
        if len(pair) < 2 or pair[baseline].mean() == 0:
            continue
        rel, lo, hi = paired_relative_ci(pair[policy], pair[baseline], n_resamples, random_state)
        rows.append(
            {
                "kind": kind,
                "policy": policy,
                "baseline": baseline,
                "relative": rel,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    # The same comparison restricted to the users the detector flagged: what acting costs or
    # gains where it acts (elsewhere "detected" is the whole-history profile by definition).
    flagged = scores[(scores["policy"] == "detected") & (scores["detected_change_point"] >= 0)]
    for kind in ("splice", "control"):
        ids = flagged.loc[flagged["kind"] == kind, "user_id"]
        if kind not in wide.index.get_level_values(0) or len(ids) < 2:
            continue
        pair = wide.loc[kind].loc[ids, ["detected", "whole"]]
        if pair["whole"].mean() > 0:
            rel, lo, hi = paired_relative_ci(pair["detected"], pair["whole"], n_resamples, random_state)
            rows.append(
                {
                    "kind": f"{kind} (flagged)",
                    "policy": "detected",
                    "baseline": "whole",
                    "relative": rel,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    comparisons = pd.DataFrame(rows, columns=["kind", "policy", "baseline", "relative", "ci_low", "ci_high"])
    det = scores[scores["policy"] == "detected"]
    detection = (
        det.assign(
            found=det["detected_change_point"] >= 0,
            err=np.where(
                (det["detected_change_point"] >= 0) & (det["true_change_point"] >= 0),
                (det["detected_change_point"] - det["true_change_point"]).abs(),
                np.nan,
            ),
        )
        .groupby("kind", sort=False)
        .agg(users=("user_id", "size"), with_detection=("found", "sum"), median_abs_error=("err", "median"))
        .reset_index()
    )
    return LiftReport(scores, summary, comparisons, detection, dict(params or {}))


@dataclass(frozen=True)
class LiftSetup:
    """Everything a lift run needs except the recommender: benchmark cases, the change points
    the detector found in their visible events, and the training events (other users)."""

    cases: list[LiftCase]
    detected: list[list[int]]
    item_vectors: np.ndarray
    training: EventArrays
    params: dict
    item_keys: np.ndarray | None = None  # titles: catalogue duplicates count as one item

    def recommender(self, **params) -> Recommender:
        """A recommender fitted on the training users only (``params`` as for Recommender)."""
        return Recommender(**params).fit(
            self.item_vectors, self.training.item_idx, self.training.offsets, item_keys=self.item_keys
        )

    def evaluate(
        self,
        recommender: Recommender | None = None,
        k: int = 10,
        last_n: int = 10,
        n_resamples: int = 2000,
        random_state: int = 0,
    ) -> LiftReport:
        recommender = recommender or self.recommender()
        scores = score_cases(recommender, self.cases, self.detected, k=k, last_n=last_n)
        params = self.params | {
            "k": k,
            "last_n": last_n,
            "collaborative_weight": recommender.collaborative_weight,
            "n_neighbours": recommender.n_neighbours,
            "past_weight": recommender.past_weight,
        }
        return summarise(scores, n_resamples=n_resamples, random_state=random_state, params=params)


def prepare_lift(
    name: str,
    *,
    n_visible_after: int | None = None,
    n_splices: int = 300,
    n_controls: int = 200,
    detect: Detect | None = None,
    random_state: int = 0,
    item_vectors: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> LiftSetup:
    """Build the benchmark cases of dataset ``name`` and detect change points in them.

    Real users are split in two (:func:`core.benchmark.splices.split_users`, seeded):
    benchmark users are built from the test part only; the recommender's co-occurrence and
    popularity and the detector's fit and calibration
    (:func:`core.benchmark.training.fit_and_calibrate`) come from the other part only, so no
    held-out event leaks into training. ``detect`` defaults to the project's default detector at its
    calibrated threshold; ``n_visible_after`` defaults to that detector's window ``h``: the
    "first few" events after the change are as many as the detector needs to see it.
    """
    from core import store
    from core.detectors import DEFAULT, make_detector

    say = progress or (lambda _msg: None)
    if n_visible_after is None:
        n_visible_after = int(make_detector(DEFAULT).h)
    if item_vectors is None:
        from core.artefacts import item_matrix

        say("loading item embeddings")
        item_vectors = item_matrix(name)
    with store.connect(name) as con:
        events = store.load_event_arrays(con)
        titles = store.load_items(con)["title"].to_numpy()
    train_ids, test_ids = split_users(events.user_ids, random_state=random_state)
    say(f"building {n_splices} splices and {n_controls} controls from {len(test_ids)} test users")
    users = splice_benchmark(
        events,
        item_vectors,
        users=test_ids,
        n_splices=n_splices,
        n_multi=0,
        n_gradual=0,
        n_controls=n_controls,
        n_shuffled=0,
        random_state=random_state,
    )
    cases = lift_cases(users, n_visible_after=n_visible_after)
    if not cases:
        raise ShiftError(f"dataset {name!r} gave no benchmark users with enough held-out events")
    training = training_events(events, train_ids)
    detector_settings = {"detector": "given"}
    if detect is None:
        from core.artefacts import item_features

        say("fitting and calibrating the default detector on the training users")
        kind = make_detector(DEFAULT).features
        features = item_vectors if kind == "embedding" else item_features(name, kind)
        detect, detector_settings = default_detect(features, training, random_state)
    say(f"detecting change points in {len(cases)} visible histories")
    visible_offsets = np.concatenate([[0], np.cumsum([len(c.visible) for c in cases])])
    detected = detect(np.concatenate([c.visible for c in cases]), visible_offsets)
    params = {
        "dataset": name,
        "n_visible_after": n_visible_after,
        "random_state": random_state,
        "n_train_users": training.n_users,
        "n_test_users": len(test_ids),
        **detector_settings,
    }
    return LiftSetup(cases, detected, item_vectors, training, params, titles)


def run_lift(
    name: str,
    *,
    k: int = 10,
    n_visible_after: int | None = None,
    last_n: int = 10,
    n_splices: int = 300,
    n_controls: int = 200,
    collaborative_weight: float | None = None,
    detect: Detect | None = None,
    n_resamples: int = 2000,
    random_state: int = 0,
    item_vectors: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> LiftReport:
    """The lift benchmark on dataset ``name``: :func:`prepare_lift`, then one evaluation
    with the default recommender (or ``collaborative_weight``)."""
    setup = prepare_lift(
        name,
        n_visible_after=n_visible_after,
        n_splices=n_splices,
        n_controls=n_controls,
        detect=detect,
        random_state=random_state,
        item_vectors=item_vectors,
        progress=progress,
    )
    params = {} if collaborative_weight is None else {"collaborative_weight": collaborative_weight}
    return setup.evaluate(
        setup.recommender(**params), k=k, last_n=last_n, n_resamples=n_resamples, random_state=random_state
    )


def default_detect(
    item_features: np.ndarray, training: EventArrays, random_state: int = 0
) -> tuple[Detect, dict]:
    """The project's default detector, fitted and calibrated on the ``training`` users only,
    at its default threshold (the calibration target of false alarms per 1,000 shuffled
    events, as the CLI sets it); returns the hook and its settings."""
    from core.detectors import DEFAULT
    from core.detectors.population import DEFAULT_FALSE_ALARMS

    fitted = fit_and_calibrate(DEFAULT, item_features, training, random_state=random_state)
    threshold = fitted.calibration.threshold_for(DEFAULT_FALSE_ALARMS)

    def detect(item_idx: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
        found = fitted.detector.detect(item_features[item_idx], offsets, [threshold])[0]
        return [sorted(index.tolist()) for index, _ in change_points_by_user(found, len(offsets) - 1)]

    settings = {
        "detector": DEFAULT,
        "threshold": float(threshold),
        "false_alarms_per_1000": DEFAULT_FALSE_ALARMS,
    }
    return detect, settings
