"""Re-recommendation on a synthetic catalogue: four categories of items in four directions."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors import DEFAULT
from core.errors import ShiftError
from core.recommend import (
    POLICIES,
    Recommender,
    policy_weights,
    recommend_for_user,
    recommendation_table,
)


@pytest.fixture
def world(catalogue, background_events):
    items, vectors, category = catalogue()
    item_idx, offsets = background_events(category)
    return items, vectors, category, item_idx, offsets


@pytest.mark.parametrize("collaborative_weight", [0.0, 0.5])
def test_after_is_dominated_by_the_new_category_and_before_by_the_old(
    world, collaborative_weight, shifted_history
):
    items, vectors, category, item_idx, offsets = world
    rec = Recommender(collaborative_weight=collaborative_weight).fit(vectors, item_idx, offsets)
    history, cp = shifted_history(category)
    lists = rec.policy_lists(history, cp, k=10)
    assert set(lists) == set(POLICIES)
    assert (category[lists["before"]] == 0).sum() == 10
    assert (category[lists["after"]] == 1).sum() == 10
    # "now" follows the new interest ...
    assert (category[lists["now"]] == 1).sum() >= 8


def test_now_down_weights_the_old_interest_without_erasing_it(world, shifted_history):
    items, vectors, category, item_idx, offsets = world
    rec = Recommender(collaborative_weight=0.0).fit(vectors, item_idx, offsets)
    history, cp = shifted_history(category)
    unrelated = category == 2
    old = category == 0

    def margin(policy: str) -> float:
        score = rec.scores(history, policy_weights(len(history), cp, policy))
        return score[old].mean() - score[unrelated].mean()

    # After the change the old interest counts for nothing; "now" still prefers it to an
    # unrelated category, though less than the new one.
    assert abs(margin("after")) < 0.1
    assert margin("now") > 0.15
    score_now = rec.scores(history, policy_weights(len(history), cp, "now"))
    assert score_now[category == 1].mean() > score_now[old].mean()


@pytest.mark.parametrize("collaborative_weight", [0.0, 0.5])
def test_seen_items_are_never_recommended(world, collaborative_weight, shifted_history):
    items, vectors, category, item_idx, offsets = world
    rec = Recommender(collaborative_weight=collaborative_weight).fit(vectors, item_idx, offsets)
    history, cp = shifted_history(category)
    n_unseen = len(items) - len(np.unique(history))
    for policy, top in rec.policy_lists(history, cp, k=len(items)).items():
        assert not set(top) & set(history), policy
        # Asking for every item returns exactly the unseen ones, each once.
        assert len(top) == n_unseen and len(set(top)) == n_unseen


def test_ties_break_by_popularity_then_item_index():
    # Items 1-4 share one vector, so their cosine scores tie exactly.
    vectors = np.array([[1, -1], [0, 1], [0, 1], [0, 1], [0, 1], [1, 1]], dtype=np.float32)
    # Popularity: item 3 by three users, item 2 by two, items 1 and 4 by nobody.
    item_idx = np.array([3, 2, 3, 2, 3])
    offsets = np.array([0, 2, 4, 5])
    rec = Recommender(collaborative_weight=0.0).fit(vectors, item_idx, offsets)
    top = rec.recommend(np.array([5]), k=5)
    assert top.tolist() == [3, 2, 1, 4, 0]
    # Same call, same answer, and a fresh fit gives the same answer too.
    assert rec.recommend(np.array([5]), k=5).tolist() == top.tolist()
    again = Recommender(collaborative_weight=0.0).fit(vectors, item_idx, offsets)
    assert again.recommend(np.array([5]), k=5).tolist() == top.tolist()


def test_collaborative_signal_follows_co_occurrence():
    # By content item 1 is nearest to item 0, but every user who saw item 0 also saw item 2.
    vectors = np.array([[1, 0, 0, 0], [0.3, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    item_idx = np.array([0, 2, 0, 2, 1, 3])
    offsets = np.array([0, 2, 4, 6])
    content = Recommender(collaborative_weight=0.0).fit(vectors, item_idx, offsets)
    blended = Recommender(collaborative_weight=0.5).fit(vectors, item_idx, offsets)
    assert content.recommend(np.array([0]), k=3).tolist() == [1, 2, 3]
    assert blended.recommend(np.array([0]), k=3).tolist() == [2, 1, 3]


def test_policy_weights_reject_a_missing_or_out_of_range_change_point():
    with pytest.raises(ShiftError, match="needs a change point"):
        policy_weights(10, None, "after")
    with pytest.raises(ShiftError, match="outside the user's history"):
        policy_weights(10, 10, "before")
    with pytest.raises(ShiftError, match="outside the user's history"):
        policy_weights(10, 0, "now")
    with pytest.raises(ShiftError, match="unknown policy"):
        policy_weights(10, 5, "sideways")
    assert policy_weights(10, None, "recent", last_n=4).tolist() == [0] * 6 + [0.25] * 4


def test_unfitted_and_bad_input_give_clear_errors(world):
    items, vectors, category, item_idx, offsets = world
    with pytest.raises(ShiftError, match="not fitted"):
        Recommender().recommend(np.array([0]))
    with pytest.raises(ShiftError, match="item vectors"):
        Recommender().fit(np.zeros((0, 4)))
    with pytest.raises(ShiftError, match="different catalogues"):
        Recommender().fit(vectors, np.array([0, len(vectors)]), np.array([0, 2]))
    with pytest.raises(ShiftError, match=r"history item indices must lie in \[0, 120\)"):
        Recommender().fit(vectors).recommend(np.array([0, 120]))
    with pytest.raises(ShiftError, match="empty history"):
        Recommender().fit(vectors).recommend(np.array([], dtype=np.int64))
    with pytest.raises(ShiftError, match="k must be at least 1"):
        Recommender().fit(vectors).recommend(np.array([0]), k=0)


def test_recommend_for_user_gives_titled_tables(world, shifted_history):
    items, vectors, category, item_idx, offsets = world
    rec = Recommender().fit(vectors, item_idx, offsets)
    history, cp = shifted_history(category)
    result = recommend_for_user(rec, items, "u1", history, cp, k=5)
    assert set(result.lists) == set(POLICIES)
    after = result.lists["after"]
    assert after["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (after["categories"] == "Sci-Fi").all()
    assert after["title"].str.startswith("Sci-Fi film").all()
    assert after["score"].is_monotonic_decreasing
    table = recommendation_table(items, np.array([2, 0]))
    assert table["item_id"].tolist() == ["i2", "i0"] and "score" not in table


def test_co_occurrence_keeps_the_strongest_neighbours_of_each_item():
    vectors = np.eye(4, dtype=np.float32)
    # Item 0 is seen with item 2 by two users and with item 3 by one.
    item_idx = np.array([0, 2, 0, 2, 0, 3])
    offsets = np.array([0, 2, 4, 6])
    full = Recommender(n_neighbours=None).fit(vectors, item_idx, offsets)
    pruned = Recommender(n_neighbours=1).fit(vectors, item_idx, offsets)
    assert full.cooccurrence_[0].indices.tolist() == [2, 3]
    assert full.cooccurrence_[0].data.tolist() == pytest.approx([2 / np.sqrt(3 * 2), 1 / np.sqrt(3 * 1)])
    assert pruned.cooccurrence_[0].indices.tolist() == [2]
    assert pruned.cooccurrence_[3].indices.tolist() == [0]
    assert full.popularity_.tolist() == [3, 0, 2, 1]


@pytest.mark.parametrize("k", [1, 3, 7, 50])
def test_keeping_the_top_k_of_each_row_matches_a_full_sort_with_ties_by_column(k):
    import scipy.sparse as sp

    from core.recommend import _keep_top_per_row

    rng = np.random.default_rng(0)
    # Values on a coarse grid: many ties, which go to the lower column.
    dense = rng.integers(0, 5, size=(40, 60)).astype(np.float32) * (rng.random((40, 60)) < 0.5)
    dense[3] = 0  # an empty row
    kept = _keep_top_per_row(sp.csr_matrix(dense), k).toarray()
    for row, got in zip(dense, kept):
        stored = np.flatnonzero(row)
        top = sorted(stored, key=lambda c: (-row[c], c))[:k]
        expected = np.zeros_like(row)
        expected[top] = row[top]
        assert np.array_equal(got, expected)


@pytest.fixture
def shifts_world(world_dir, monkeypatch, stub_matrix):
    """The hand-made ``shifts`` log with the stub item matrix standing in for the encoder."""
    from core import embeddings, store

    monkeypatch.setenv("SHIFT_DATA_DIR", str(world_dir))
    with store.connect("shifts") as con:
        matrix = stub_matrix(store.load_items(con))
    monkeypatch.setattr(embeddings, "item_matrix", lambda name, encoder=None, progress=None: matrix.copy())
    return world_dir


def test_cli_finds_the_change_point_and_prints_the_lists_and_what_changed(shifts_world, capsys):
    from core.cli import main

    # u1: 40 Horror events, then 40 Sports events.
    # The default detector's latest change point of u1 is the planted one.
    assert main(["recommend", "shifts", "--user", "u1", "--k", "5"]) == 0
    assert f"user u1: 80 events; change point at event 40 ({DEFAULT} (score " in capsys.readouterr().out
    # two_window finds it alone (no other change point bounds the segment before it).
    assert main(["recommend", "shifts", "--user", "u1", "--k", "5", "--detector", "two_window"]) == 0
    out = capsys.readouterr().out
    assert "user u1: 80 events; change point at event 40 (two_window" in out
    assert "what changed: Horror 100% → 0%, Sports 0% → 100%" in out
    # Every Horror and Sports title of this 12-per-genre catalogue is already seen by u1, so
    # the lists hold other genres (category dominance is tested above); seen items never appear.
    from core import store

    with store.connect("shifts") as con:
        seen = set(store.load_user_events(con, "u1")["title"])
    listed = [
        line.split(". ", 1)[1].split("  [")[0]
        for line in out.splitlines()
        if line[:4].strip().rstrip(".").isdigit()
    ]
    assert len(listed) == 15 and not set(listed) & seen
    assert (
        "typical before (events 0-39): Horror title" in out
        and "typical after (events 40-79): Sports title" in out
    )


def test_cli_takes_a_given_change_point(shifts_world, capsys):
    from core.cli import main

    assert main(["recommend", "shifts", "--user", "u3", "--change-point", "60", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "change point at event 60 (given)" in out
    assert "what changed: Horror 50% → 0%, Sci-Fi 50% → 0%, Cooking 0% → 50%, Sports 0% → 50%" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "nobody"], "error: user 'nobody' is not in this dataset"),
        (["--user", "u0"], "error: user 'u0' has no change point at the default threshold"),
        (["--user", "u1", "--change-point", "80"], "error: change point 80 is outside the user's history"),
        (["--user", "u1", "--k", "0"], "error: --k must be at least 1"),
    ],
)
def test_cli_errors_are_clear(shifts_world, capsys, argv, message):
    from core.cli import main

    assert main(["recommend", "shifts", *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(message)


def test_catalogue_duplicates_count_as_one_item():
    # Items 1 and 2 are one film under two ids, and so are 3 and 4.
    vectors = np.array([[1, 0], [0.9, 0.1], [0.9, 0.1], [0.8, 0.2], [0.8, 0.2], [0, 1]], dtype=np.float32)
    keys = np.array(["a", "b", "b", "c", "c", "d"], dtype=object)
    rec = Recommender(collaborative_weight=0.0).fit(vectors, item_keys=keys)
    assert Recommender(collaborative_weight=0.0).fit(vectors).recommend(np.array([0]), k=5).tolist() == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert rec.recommend(np.array([0]), k=5).tolist() == [1, 3, 5]
    # Seeing one copy hides the other.
    assert rec.recommend(np.array([0, 2]), k=5).tolist() == [3, 5]
    with pytest.raises(ShiftError, match="3 item keys for 6 items"):
        Recommender().fit(vectors, item_keys=keys[:3])


def test_cli_json_holds_the_lists_the_explanation_shares_and_the_segment_bounds(shifts_world, capsys):
    import json

    from core.cli import main

    # u3 moves Horror -> Sci-Fi -> Cooking -> Sports in 30-event blocks.
    # two_window: its change points on u3 are exactly the planted ones (the segments under test)
    assert (
        main(
            [
                "recommend",
                "shifts",
                "--user",
                "u3",
                "--format",
                "json",
                "--k",
                "3",
                "--detector",
                "two_window",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["change_point"], out["change_points"]) == (90, [30, 60, 90])
    assert out["segments"] == [{"start": a, "end": a + 30} for a in (0, 30, 60, 90)]
    assert out["before_segment"] == {"start": 60, "end": 90}
    assert out["after_segment"] == {"start": 90, "end": 120}
    # Compared with its neighbours only: Cooking -> Sports, not "Horror, Sci-Fi, Cooking -> Sports".
    assert out["explanation"]["summary"] == "Cooking 100% → 0%, Sports 0% → 100%"
    assert out["explanation"]["rising_categories"] == ["Sports"]
    shares = {r["category"]: (r["share_before"], r["share_after"]) for r in out["explanation"]["categories"]}
    assert shares == {"Sports": (0.0, 1.0), "Cooking": (1.0, 0.0)}
    assert out["consumed_rising_share"] == 1.0
    # u3 has seen every Sports title of the 12-per-genre catalogue: no list can hold one.
    assert out["rising_share"] == {"before": 0.0, "after": 0.0, "now": 0.0}
    assert [len(out["lists"][p]) for p in ("before", "after", "now")] == [3, 3, 3]
    assert set(out["lists"]["after"][0]) == {"rank", "item_idx", "item_id", "title", "categories", "score"}
    assert out["explanation"]["representative_after"][0]["title"].startswith("Sports title")


def test_cli_bounds_a_given_change_point_by_the_detected_ones_when_asked(shifts_world, capsys):
    from core.cli import main

    assert (
        main(
            [
                *("recommend", "shifts", "--user", "u3", "--change-point", "60"),
                *("--neighbours", "detected", "--detector", "two_window"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "change point at event 60 (given); segments 30-59 and 60-89" in out
    assert "what changed: Sci-Fi 100% → 0%, Cooking 0% → 100%" in out
    assert "typical before (events 30-59): Sci-Fi title" in out


def test_follow_shift_swaps_the_lowest_other_items_for_the_best_rising_ones():
    rec = Recommender(collaborative_weight=0.0).fit(np.eye(6, dtype=np.float32))
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    rising = np.array([False, False, False, True, False, True])
    assert rec.follow_shift(score, np.array([], dtype=np.int64), rising, 0.5, k=4).tolist() == [0, 1, 3, 5]
    # Already enough rising items, or nothing rose (NaN target): the plain ranking.
    assert rec.follow_shift(score, np.array([0]), rising, 0.2, k=4).tolist() == [1, 2, 3, 4]
    assert rec.follow_shift(score, np.array([0]), rising, float("nan"), k=4).tolist() == [1, 2, 3, 4]
    # Fewer rising items than asked for: as many as there are.
    assert rec.follow_shift(score, np.array([3]), rising, 1.0, k=3).tolist() == [0, 1, 5]


def test_segment_bounded_policies_and_recency_decay():
    w = policy_weights(10, 6, "before", start=3, end=8)
    assert np.flatnonzero(w).tolist() == [3, 4, 5] and w.sum() == pytest.approx(1)
    assert np.flatnonzero(policy_weights(10, 6, "after", start=3, end=8)).tolist() == [6, 7]
    now = policy_weights(10, 6, "now", past_weight=0.5, start=3, end=8)
    assert now[3:6].sum() == pytest.approx(now[6:8].sum() / 2) and now[:3].sum() == now[8:].sum() == 0
    decayed = policy_weights(10, 6, "now", past_weight=0.5, start=3, end=8, half_life=1.0)
    assert decayed[7] == pytest.approx(2 * decayed[6]) and decayed[5] == pytest.approx(2 * decayed[4])
    assert decayed[3:6].sum() == pytest.approx(decayed[6:8].sum() / 2)
    assert policy_weights(3, None, "decay", half_life=2.0).tolist() == pytest.approx(
        np.array([0.5, 2**-0.5, 1.0]) / (0.5 + 2**-0.5 + 1.0)
    )
    with pytest.raises(ShiftError, match="segment bounds"):
        policy_weights(10, 6, "after", start=6)
    with pytest.raises(ShiftError, match="half_life must be positive"):
        policy_weights(3, None, "decay", half_life=0)


def test_after_list_follows_the_rising_category_when_co_occurrence_pulls_back(catalogue):
    from core.explain import ShiftExplainer
    from core.recommend import recommend_around_change

    items, vectors, category = catalogue()
    rng = np.random.default_rng(3)
    # Horror (events 0-19) -> Sci-Fi (20-34) -> Comedy (35-44); training users who watched
    # Comedy mostly watched Sci-Fi too, so item-kNN from the Comedy segment leans to Sci-Fi.
    horror, scifi, comedy = (np.flatnonzero(category == c) for c in range(3))
    history = np.concatenate([horror[:20], scifi[:15], comedy[:10]])
    rows = [np.concatenate([rng.choice(scifi, 10, replace=False), rng.choice(comedy, 2)]) for _ in range(60)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    rec = Recommender(collaborative_weight=1000.0).fit(vectors, np.concatenate(rows), offsets)
    explainer = ShiftExplainer().fit(items, vectors)
    plain = recommend_around_change(rec, explainer, items, "u", history, [20, 35], follow_shift=False)
    result = recommend_around_change(rec, explainer, items, "u", history, [20, 35])
    assert (result.segment_start, result.change_point, result.segment_end) == (20, 35, 45)
    assert result.explanation.summary == "Sci-Fi 100% → 0%, Comedy 0% → 100%"
    assert result.consumed_rising_share == 1.0
    assert plain.rising_share["after"] < 0.5  # co-occurrence drags the list back to Sci-Fi
    assert result.rising_share["after"] == 1.0
    assert (result.lists["after"]["categories"] == "Comedy").all()
    assert result.lists["after"]["score"].is_monotonic_decreasing
    assert result.lists["before"].equals(plain.lists["before"])
