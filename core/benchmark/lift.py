"""Measured lift of re-recommendation: does acting on a detected shift predict the future better?

Protocol (spliced users from :mod:`core.benchmark.splices`, real histories A‖B):

- the system sees A's events and the first ``n_visible_after`` events of B; the rest of B is
  held out, and the items in it that the user has not already seen are the relevant items;
- each policy builds a profile from the visible events and recommends ``k`` unseen items:
  (i) ``whole`` history, (ii) ``recent`` last-N events, (iii) ``detected``: the events since
  the last change point the default detector finds in the visible events (the whole history
  when it finds none: the system only acts on detections), (iv) ``true``: the events since the
  true splice, and ``now``: the product policy at the detected change point (post-change
  profile with the past down-weighted, recency-discounted within when a half-life is given;
  the recency-decayed profile when nothing was detected), and ``decay``: every visible event,
  weight halving every ``half_life`` events back;
- on unspliced control users (their last ``control_holdout`` share held out) the same
  comparison gives the cost of acting on false alarms.

Static settings (N, half-life) and the product's blending weight are chosen on validation
users (:func:`prepare_lift_splits`: benchmark users drawn from other real users than the
test ones) and only then applied to the test users (:func:`tune_on_validation`).

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
# The fair protocol adds the recency-decayed static profile.
ALL_POLICIES = ("whole", "recent", "decay", "detected", "now", "true")
# Static policies the product's shift-aware "now" must not lose to.
STATIC_POLICIES = ("recent", "decay")
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


def policy_profile(
    case: LiftCase,
    policy: str,
    detected: list[int],
    last_n: int,
    past_weight: float,
    half_life: float | None = None,
    static: str | None = None,
):
    """Weights over ``case.visible`` for a policy; ``None`` when the policy cannot apply.

    ``static`` is the policy "now" falls back to when nothing was detected (default: the
    decayed profile with ``half_life``, or the whole history without one)."""
    n = len(case.visible)
    cp = detected[-1] if detected else None
    if policy == "whole":
        return policy_weights(n, None, "whole")
    if policy == "recent":
        return policy_weights(n, None, "recent", last_n=last_n)
    if policy == "decay":
        return policy_weights(n, None, "decay", half_life=half_life or float(n))
    if policy == "detected":
        if cp is None:  # no detection: the system keeps its whole-history profile
            return policy_weights(n, None, "whole")
        return policy_weights(n, cp, "after")
    if policy == "now":
        if cp is None:  # no detection: the product's static profile
            if static is not None:
                return policy_profile(case, static, [], last_n, past_weight, half_life)
            return (
                policy_weights(n, None, "decay", half_life=half_life)
                if half_life
                else policy_weights(n, None, "whole")
            )
        # The segment before the latest change starts at the detection before it.
        start = max([c for c in detected if c < cp], default=0)
        return policy_weights(n, cp, "now", past_weight, start=start, half_life=half_life)
    if policy == "true":
        return None if case.true_change_point is None else policy_weights(n, case.true_change_point, "after")
    raise ShiftError(f"unknown lift policy {policy!r}")


def score_cases(
    recommender: Recommender,
    cases: list[LiftCase],
    detected: list[list[int]],
    k: int = 10,
    last_n: int = 10,
    half_life: float | None = None,
    policies: Sequence[str] = POLICIES,
    static: str | None = None,
) -> pd.DataFrame:
    """One row per (case, policy): recall@k, ndcg@k, and the change point acted on.

    ``half_life`` is the decay policy's; inside the "now" profile recency uses the
    recommender's ``half_life`` (when it has none, ``half_life``); ``static`` is what "now"
    does without a detection (see :func:`policy_profile`), with ``last_n`` or ``half_life``."""
    now_half_life = half_life if recommender.half_life is None else recommender.half_life
    rows = []
    for case, found in zip(cases, detected, strict=True):
        for policy in policies:
            if policy == "now" and not found and static is not None:
                w = policy_profile(case, static, [], last_n, recommender.past_weight, half_life)
            else:
                w = policy_profile(
                    case,
                    policy,
                    found,
                    last_n,
                    recommender.past_weight,
                    now_half_life if policy == "now" else half_life,
                    static,
                )
            if w is None:
                continue
            top = recommender.recommend(case.visible, w, k=k)
            rows.append(_score_row(case, policy, top, found[-1] if found else -1))
    return pd.DataFrame(rows)


def _score_row(case: LiftCase, policy: str, top: np.ndarray, detected_change_point: int) -> dict:
    """One row of :func:`score_cases`: how a policy's top items did on one case."""
    return {
        "user_id": case.user_id,
        "kind": case.kind,
        "bin": case.bin,
        "policy": policy,
        "recall": recall_at_k(top, case.relevant),
        "ndcg": ndcg_at_k(top, case.relevant),
        "detected_change_point": detected_change_point,
        "true_change_point": -1 if case.true_change_point is None else case.true_change_point,
    }


def reference_scores(
    reference, cases: list[LiftCase], k: int = 10, policy: str = "reference"
) -> pd.DataFrame:
    """The rows of :func:`score_cases` for a reference recommender: ``reference(visible, k)``
    gives the top ``k`` unseen items of a whole visible history."""
    return pd.DataFrame([_score_row(case, policy, reference(case.visible, k), -1) for case in cases])


def after_shares(
    recommender: Recommender,
    explainer,
    cases: list[LiftCase],
    detected: list[list[int]],
    k: int = 10,
) -> pd.DataFrame:
    """Does the After list follow the shift? One row per (spliced case, change point acted on).

    At the true and at the latest detected change point, the rising categories (or clusters)
    come from the visible segments on either side (:meth:`core.explain.ShiftExplainer.explain`);
    ``consumed_share`` is the share of the held-out relevant items (what the user went on to
    consume) in them, ``raw_share`` the After list's share as the recommender ranks it and
    ``list_share`` after :meth:`Recommender.follow_shift`; NDCG@k of both lists shows what
    following costs.
    """
    rows = []
    for case, found in zip(cases, detected, strict=True):
        if case.kind != "splice":
            continue
        points = [("true", case.true_change_point)] + ([("detected", found[-1])] if found else [])
        for at, cp in points:
            start = max([c for c in found if c < cp], default=0) if at == "detected" else 0
            ex = explainer.explain(case.visible, cp, start)
            if not ex.rising_categories:
                continue
            rising = explainer.items_in(ex.rising_categories)
            score = recommender.scores(
                case.visible, policy_weights(len(case.visible), cp, "after", start=start)
            )
            raw = recommender.rank(score, case.visible, k)
            followed = recommender.follow_shift(score, case.visible, rising, ex.after_rising_share, k)
            rows.append(
                {
                    "user_id": case.user_id,
                    "at": at,
                    "after_segment_share": ex.after_rising_share,
                    "consumed_share": float(rising[case.relevant].mean()),
                    "raw_share": float(rising[raw].mean()),
                    "list_share": float(rising[followed].mean()),
                    "raw_ndcg": ndcg_at_k(raw, case.relevant),
                    "list_ndcg": ndcg_at_k(followed, case.relevant),
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


def fair_comparisons(best_static: str) -> tuple[tuple[str, str, str], ...]:
    """The fair protocol's pairs: every policy against the best static one (chosen on
    validation users), and the static ones against the whole history."""
    return tuple(
        (kind, policy, baseline)
        for kind in ("splice", "control")
        for policy, baseline in (
            ("recent", "whole"),
            ("decay", "whole"),
            ("now", "whole"),
            ("detected", best_static),
            ("now", best_static),
            ("true", best_static),
        )
        if not (kind == "control" and policy == "true")
    )


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
    scores: pd.DataFrame,
    n_resamples: int = 2000,
    random_state: int = 0,
    params=None,
    comparisons: Sequence[tuple[str, str, str]] = COMPARISONS,
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
    for kind, policy, baseline in comparisons:
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
    return _prepare(
        name, n_visible_after, [(n_splices, n_controls)], detect, random_state, item_vectors, progress
    )[0]


def prepare_lift_splits(
    name: str,
    *,
    n_visible_after: int | None = None,
    n_splices: int = 300,
    n_controls: int = 200,
    n_validation_splices: int = 200,
    n_validation_controls: int = 100,
    detect: Detect | None = None,
    random_state: int = 0,
    item_vectors: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[LiftSetup, LiftSetup]:
    """Validation and test setups of the fair protocol: as :func:`prepare_lift`, but the
    benchmark half of the real users is split again (seeded) into validation users, on which
    settings are chosen, and test users, on which they are reported. Training users (the
    recommender's co-occurrence, the detector's fit and calibration) are shared by both."""
    validation, test = _prepare(
        name,
        n_visible_after,
        [(n_validation_splices, n_validation_controls), (n_splices, n_controls)],
        detect,
        random_state,
        item_vectors,
        progress,
    )
    return validation, test


def _prepare(name, n_visible_after, sizes, detect, random_state, item_vectors, progress) -> list[LiftSetup]:
    """One setup per (n_splices, n_controls) in ``sizes``, each from its own disjoint share of
    the benchmark users (one share: all of them)."""
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
    shares = [test_ids]
    if len(sizes) == 2:  # validation users, then test users
        shares = list(split_users(test_ids, random_state=random_state + 1))
    training = training_events(events, train_ids)
    detector_settings = {"detector": "given"}
    if detect is None:
        from core.artefacts import item_features

        say("fitting and calibrating the default detector on the training users")
        kind = make_detector(DEFAULT).features
        # the viewer's vectors (and the log's co-consumption factors, when the default reads them)
        features = item_features(name, kind, item_vectors)
        detect, detector_settings = default_detect(features, training, random_state)
    setups = []
    for part, (ids, (n_splices, n_controls)) in enumerate(zip(shares, sizes, strict=True)):
        say(f"building {n_splices} splices and {n_controls} controls from {len(ids)} benchmark users")
        users = splice_benchmark(
            events,
            item_vectors,
            users=ids,
            n_splices=n_splices,
            n_multi=0,
            n_gradual=0,
            n_controls=n_controls,
            n_shuffled=0,
            random_state=random_state + part,
        )
        cases = lift_cases(users, n_visible_after=n_visible_after)
        if not cases:
            raise ShiftError(f"dataset {name!r} gave no benchmark users with enough held-out events")
        say(f"detecting change points in {len(cases)} visible histories")
        visible_offsets = np.concatenate([[0], np.cumsum([len(c.visible) for c in cases])])
        detected = detect(np.concatenate([c.visible for c in cases]), visible_offsets)
        params = {
            "dataset": name,
            "n_visible_after": n_visible_after,
            "random_state": random_state,
            "n_train_users": training.n_users,
            "n_test_users": len(ids),
            **detector_settings,
        }
        setups.append(LiftSetup(cases, detected, item_vectors, training, params, titles))
    return setups


def tune_on_validation(
    validation: LiftSetup,
    recommender: Recommender,
    last_ns: Sequence[int] = (5, 10, 20, 40),
    half_lives: Sequence[float] = (2, 5, 10, 20, 40),
    past_weights: Sequence[float] = (0.0, 0.1, 0.25, 0.5),
    collaborative_weights: Sequence[float] = (),
    k: int = 10,
) -> tuple[dict, pd.DataFrame]:
    """Choose the settings by mean NDCG@k on the validation users only (splices and controls
    weigh the same: a setting must not buy splice gains with control losses).

    First the recommender's collaborative weight (when ``collaborative_weights`` are given:
    the one whose best static policy scores best; it then serves every policy) with last-N
    and the decay half-life, then the "now" policy's past weight and recency half-life.
    Returns the choice and the grid with its means; ``recommender`` is left as it was.
    """
    rows = []

    def mean_ndcg(rec: Recommender, policy: str, **kwargs) -> float:
        scores = score_cases(rec, validation.cases, validation.detected, k=k, policies=(policy,), **kwargs)
        return float(scores.groupby("kind")["ndcg"].mean().mean())

    candidates = {recommender.collaborative_weight: recommender}
    for weight in collaborative_weights:
        if weight not in candidates:
            candidates[weight] = validation.recommender(
                collaborative_weight=weight, n_neighbours=recommender.n_neighbours
            )
    for weight, rec in candidates.items():
        for setting, policy, values in (("last_n", "recent", last_ns), ("half_life", "decay", half_lives)):
            for value in values:
                ndcg = mean_ndcg(rec, policy, **{setting: value})
                rows.append(
                    {
                        "policy": policy,
                        "setting": setting,
                        "value": value,
                        "ndcg": ndcg,
                        "collaborative_weight": weight,
                    }
                )
    grid = pd.DataFrame(rows)
    best_row = grid.loc[grid["ndcg"].idxmax()]
    weight, best_static = float(best_row["collaborative_weight"]), str(best_row["policy"])
    at_weight = grid[grid["collaborative_weight"] == weight]
    best = at_weight.loc[at_weight.groupby("policy")["ndcg"].idxmax()].set_index("policy")["value"]
    half_life = float(best["decay"])
    rec = candidates[weight]
    original = rec.past_weight, rec.half_life
    for w in past_weights:
        rec.past_weight = w
        for h in half_lives:
            rec.half_life = h
            ndcg = mean_ndcg(rec, "now", half_life=half_life, last_n=int(best["recent"]), static=best_static)
            rows.append(
                {
                    "policy": "now",
                    "setting": f"past_weight {w:g}, half_life",
                    "value": h,
                    "ndcg": ndcg,
                    "collaborative_weight": weight,
                    "past_weight": w,
                }
            )
    rec.past_weight, rec.half_life = original
    grid = pd.DataFrame(rows)
    now_best = grid[grid["policy"] == "now"].sort_values("ndcg", ascending=False, kind="stable").iloc[0]
    choice = {
        "collaborative_weight": weight,
        "last_n": int(best["recent"]),
        "half_life": half_life,
        "past_weight": float(now_best["past_weight"]),
        "now_half_life": float(now_best["value"]),
        "best_static": best_static,
    }
    return choice, grid


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
