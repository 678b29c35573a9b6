"""Lift of re-recommendation: the visible/held-out split, policies, summary, quality bar, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from bench.lift import quality_bar
from core import store
from core.benchmark.lift import LiftCase, lift_cases, policy_profile, run_lift, score_cases, summarise
from core.benchmark.report import lift_markdown
from core.benchmark.splices import SplicedUser
from core.detectors import DEFAULT
from core.errors import ShiftError
from core.recommend import Recommender


def user(kind: str, item_idx, change_points=(), number: int = 0) -> SplicedUser:
    idx = np.asarray(item_idx, dtype=np.int32)
    return SplicedUser(
        f"{kind}-{number}",
        idx,
        np.full(len(idx), 4.0, np.float32),
        list(change_points),
        kind,
        kind,
        ("a",),
        (len(idx),),
    )


def test_lift_cases_hold_out_the_events_after_the_first_few_of_the_new_interest():
    splice = user("splice", list(range(30)) + list(range(100, 140)), [30])
    control = user("control", list(range(200, 250)))
    repeat = user(
        "splice", list(range(30)) + [0, 1, 2, 3] + list(range(100, 106)) + [0, 1, 2, 300, 301], [30]
    )
    cases = lift_cases(
        [splice, control, user("shuffled", range(60)), repeat], n_visible_after=10, min_relevant=3
    )
    assert [c.kind for c in cases] == ["splice", "control"]  # shuffled skipped; `repeat` has 2 relevant
    s, c = cases
    assert len(s.visible) == 40 and s.true_change_point == 30
    assert s.relevant.tolist() == list(range(110, 140))
    # Controls: the last 40% held out, no true change point.
    assert (
        len(c.visible) == 30 and c.relevant.tolist() == list(range(230, 250)) and c.true_change_point is None
    )
    # Items seen in the visible part are never relevant.
    assert lift_cases([repeat], n_visible_after=10, min_relevant=2)[0].relevant.tolist() == [300, 301]


def test_policy_profiles():
    case = LiftCase("u", "splice", "easy", np.arange(40), np.array([99]), 30)
    assert policy_profile(case, "whole", [], 10, 0.25).tolist() == [1 / 40] * 40
    assert policy_profile(case, "recent", [], 10, 0.25).tolist() == [0] * 30 + [0.1] * 10
    # No detection: the system keeps the whole-history profile.
    assert policy_profile(case, "detected", [], 10, 0.25).tolist() == [1 / 40] * 40
    # With detections it acts on the latest.
    w = policy_profile(case, "detected", [12, 25], 10, 0.25)
    assert (w[:25] == 0).all() and w[25:] == pytest.approx(np.full(15, 1 / 15))
    assert policy_profile(case, "true", [], 10, 0.25)[30:] == pytest.approx(np.full(10, 0.1))
    now = policy_profile(case, "now", [30], 10, 0.25)
    assert now[:30].sum() == pytest.approx(0.2) and now[30:].sum() == pytest.approx(0.8)
    control = LiftCase("c", "control", "control", np.arange(40), np.array([99]), None)
    assert policy_profile(control, "true", [], 10, 0.25) is None
    with pytest.raises(ShiftError, match="unknown lift policy"):
        policy_profile(case, "oracle", [], 10, 0.25)


def _synthetic_cases(catalogue):
    """Horror -> Sci-Fi splices (20 + 25 events) and single-category Comedy controls."""
    items, vectors, category = catalogue()
    rng = np.random.default_rng(5)
    users = []
    for i in range(12):
        horror = rng.choice(np.flatnonzero(category == 0), 20, replace=False)
        scifi = rng.choice(np.flatnonzero(category == 1), 25, replace=False)
        users.append(user("splice", np.concatenate([horror, scifi]), [20], number=i))
        users.append(user("control", rng.choice(np.flatnonzero(category == 2), 30, replace=False), number=i))
    return vectors, category, lift_cases(users, n_visible_after=10)


def test_post_change_profiles_beat_the_whole_history_on_a_planted_shift(catalogue, background_events):
    vectors, category, cases = _synthetic_cases(catalogue)
    item_idx, offsets = background_events(category)
    rec = Recommender().fit(vectors, item_idx, offsets)
    # A detector that finds the splice two events late on splices and a false alarm at 15 on controls.
    detected = [[c.true_change_point + 2] if c.kind == "splice" else [15] for c in cases]
    scores = score_cases(rec, cases, detected, k=10, last_n=10)
    report = summarise(scores, n_resamples=300)
    ndcg = report.summary.set_index(["kind", "policy"])["ndcg"]
    # The whole history is 2/3 Horror: its list is mostly Horror (none of it relevant). A
    # list of unseen Sci-Fi items holds 15 relevant among 20 candidates (NDCG about 0.75).
    assert ndcg["splice", "whole"] < 0.2
    assert ndcg["splice", "detected"] > 0.5 and ndcg["splice", "true"] > 0.5
    assert set(report.summary["policy"]) == {"whole", "recent", "detected", "now", "true"}
    checks = quality_bar(report)
    assert checks["splice: detected beats whole on NDCG@k by >= 30% (relative)"]
    # A control user's interest never changed, so a false alarm leaves it in the same category.
    assert checks["control: acting on detections costs <= 2% NDCG@k"]
    det = report.detection.set_index("kind")
    assert det.loc["splice", "median_abs_error"] == 2.0 and det.loc["control", "with_detection"] == 12
    assert "| splice | detected |" in lift_markdown(report)
    flagged = report.comparisons.set_index("kind").loc["control (flagged)"]
    assert flagged["relative"] >= -0.02 and flagged["baseline"] == "whole"


def test_run_lift_end_to_end_on_a_synthetic_dataset(data_dir):
    from core.ingest import ingest_synthetic

    ingest_synthetic("synthetic", 160, random_state=0)
    with store.connect("synthetic") as con:
        items = store.load_items(con)
    names = sorted({c for cats in items["categories"] for c in cats})
    rng = np.random.default_rng(0)
    centroids = np.linalg.qr(rng.normal(size=(32, 32)))[0][: len(names)]
    first = [names.index(cats[0]) for cats in items["categories"]]
    vectors = (centroids[first] + rng.normal(scale=0.3, size=(len(items), 32))).astype(np.float32)
    report = run_lift(
        "synthetic", item_vectors=vectors, n_splices=30, n_controls=20, n_visible_after=20, n_resamples=200
    )
    assert report.params["detector"] == DEFAULT and report.params["n_visible_after"] == 20
    ndcg = report.summary.set_index(["kind", "policy"])["ndcg"]
    assert ndcg["splice", "true"] > ndcg["splice", "whole"]
    # Clean synthetic categories: the default detector finds most splices.
    det = report.detection.set_index("kind")
    assert det.loc["splice", "with_detection"] >= det.loc["splice", "users"] / 2
    counts = report.summary.set_index(["kind", "policy"])["users"]
    assert counts["splice", "whole"] == counts["splice", "detected"] > 0
    assert set(quality_bar(report)) == {
        "splice: detected beats whole on NDCG@k by >= 30% (relative)",
        "splice: detected is not worse than recent on NDCG@k",
        "control: acting on detections costs <= 2% NDCG@k",
    }


def test_decay_and_the_products_now_policy():
    case = LiftCase("u", "splice", "easy", np.arange(40), np.array([99]), 30)
    decay = policy_profile(case, "decay", [], 10, 0.25, half_life=5.0)
    assert decay[-1] == pytest.approx(2 * decay[-6]) and decay.sum() == pytest.approx(1)
    # "now" acts on the latest detection, its past segment starting at the one before.
    now = policy_profile(case, "now", [12, 30], 10, 0.25, half_life=5.0)
    assert now[:12].sum() == 0 and now[12:30].sum() == pytest.approx(0.2) and now[39] > now[30]
    # Without a detection it is the static policy it falls back to.
    assert policy_profile(case, "now", [], 10, 0.25, 5.0, static="recent").tolist() == [0] * 30 + [0.1] * 10
    assert policy_profile(case, "now", [], 10, 0.25, 5.0).tolist() == pytest.approx(decay)


def test_tuning_uses_validation_users_and_after_lists_follow_the_shift(catalogue, background_events):
    from core.benchmark.lift import LiftSetup, after_shares, fair_comparisons, tune_on_validation
    from core.explain import ShiftExplainer

    vectors, category, cases = _synthetic_cases(catalogue)
    item_idx, offsets = background_events(category)
    rec = Recommender().fit(vectors, item_idx, offsets)
    detected = [[c.true_change_point] if c.kind == "splice" else [] for c in cases]
    validation = LiftSetup(cases, detected, vectors, None, {})
    choice, grid = tune_on_validation(
        validation, rec, last_ns=(5, 10), half_lives=(2, 50), past_weights=(0.0, 1.0)
    )
    assert set(grid["policy"]) == {"recent", "decay", "now"} and len(grid) == 2 + 2 + 2 * 2
    # On Horror -> Sci-Fi splices the past only hurts: the shortest memory wins everywhere.
    assert (choice["half_life"], choice["past_weight"], choice["now_half_life"]) == (2.0, 0.0, 2.0)
    assert choice["best_static"] in ("recent", "decay")
    assert (rec.past_weight, rec.half_life) == (0.25, None)  # left as they were
    assert ("splice", "now", "decay") in fair_comparisons("decay")
    assert ("control", "true", "decay") not in fair_comparisons("decay")
    items, _, _ = catalogue()
    shares = after_shares(rec, ShiftExplainer().fit(items, vectors), cases, detected)
    assert set(shares["at"]) == {"true", "detected"} and len(shares) == 24
    # Sci-Fi rose; what the users went on to consume is all Sci-Fi, and so is the After list.
    assert (shares["consumed_share"] == 1.0).all() and (shares["list_share"] == 1.0).all()
    assert (shares["after_segment_share"] == 1.0).all()


def test_validation_and_test_users_split_the_benchmark_half(data_dir):
    from core.benchmark.lift import prepare_lift_splits
    from core.ingest import ingest_synthetic

    ingest_synthetic("synthetic", 160, random_state=0)
    with store.connect("synthetic") as con:
        n_items = len(store.load_items(con))
    vectors = np.random.default_rng(0).normal(size=(n_items, 8)).astype(np.float32)

    def nothing(item_idx, offsets):
        return [[] for _ in range(len(offsets) - 1)]

    kwargs = {"item_vectors": vectors, "detect": nothing, "n_visible_after": 10}
    validation, test = prepare_lift_splits(
        "synthetic", n_splices=20, n_controls=10, n_validation_splices=12, n_validation_controls=6, **kwargs
    )
    whole = run_lift("synthetic", n_splices=20, n_controls=10, n_resamples=10, **kwargs)
    assert validation.params["n_test_users"] + test.params["n_test_users"] == whole.params["n_test_users"]
    assert validation.training is test.training and validation.cases and test.cases
    assert len(validation.cases) < len(test.cases)
