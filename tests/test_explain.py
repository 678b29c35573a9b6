"""What changed: category shares with counts, representative items, clusters without categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError, ShiftError
from core.explain import ShiftExplainer


def test_planted_shift_from_horror_to_scifi_is_explained_with_counts(catalogue, shifted_history):
    items, vectors, category = catalogue()
    history, cp = shifted_history(category)
    ex = ShiftExplainer().fit(items, vectors).explain(history, cp)
    assert (ex.n_before, ex.n_after, ex.category_source) == (20, 15, "categories")
    table = ex.categories.set_index("category")
    assert table.loc["Horror", ["count_before", "count_after"]].tolist() == [20, 0]
    assert table.loc["Sci-Fi", ["count_before", "count_after"]].tolist() == [0, 15]
    assert table.loc["Sci-Fi", "change"] == pytest.approx(1.0)
    # Categories never seen by the user are left out.
    assert set(table.index) == {"Horror", "Sci-Fi"}
    assert ex.rose["category"].tolist() == ["Sci-Fi"]
    assert ex.fell["category"].tolist() == ["Horror"]
    assert ex.summary == "Horror 100% → 0%, Sci-Fi 0% → 100%"


def test_summary_lists_the_two_biggest_falls_then_rises_and_skips_small_changes():
    titles = ["h", "s", "c", "d", "w"]
    cats = [["Horror"], ["Sci-Fi"], ["Comedy"], ["Drama"], ["Western"]]
    items = pd.DataFrame({"title": titles, "categories": cats})
    # Before (20): Horror 9, Comedy 6, Drama 4, Western 1.  After (10): Sci-Fi 6, Comedy 1, Drama 2, Western 1.
    before = [0] * 9 + [2] * 6 + [3] * 4 + [4]
    after = [1] * 6 + [2] + [3] * 2 + [4]
    ex = ShiftExplainer().fit(items, np.eye(5)).explain(np.array(before + after), len(before))
    # Western 5% -> 10% is a rise of 5 points, exactly the threshold; Drama falls 20% -> 20%: no change.
    assert ex.summary == "Horror 45% → 0%, Comedy 30% → 10%, Sci-Fi 0% → 60%, Western 5% → 10%"
    assert ex.categories["category"].tolist() == ["Sci-Fi", "Western", "Drama", "Comedy", "Horror"]
    quiet = ShiftExplainer().fit(items, np.eye(5)).explain(np.array([0, 1, 0, 1]), 2)
    assert quiet.summary == "no category share changed by 5% or more"


def test_multi_genre_items_count_once_per_genre():
    items = pd.DataFrame({"title": ["a", "b"], "categories": [["Action", "Sci-Fi"], ["Drama"]]})
    ex = ShiftExplainer().fit(items, np.eye(2)).explain(np.array([1, 1, 0, 0, 1]), 2)
    table = ex.categories.set_index("category")
    assert table.loc["Action", "count_after"] == 2 and table.loc["Sci-Fi", "count_after"] == 2
    assert table.loc["Drama", "share_after"] == pytest.approx(1 / 3)


def test_representative_items_are_nearest_to_the_segment_mean():
    # Items 0-2 spread around axis x, item 1 sits on it; items 3-5 around y, item 4 on it.
    vectors = np.array([[1, 0.4], [1, 0], [1, -0.3], [0.5, 1], [0, 1], [-0.4, 1]], dtype=np.float32)
    items = pd.DataFrame({"title": list("abcdef"), "categories": [["x"]] * 3 + [["y"]] * 3})
    ex = ShiftExplainer(n_representative=2).fit(items, vectors).explain(np.array([0, 1, 2, 3, 4, 5]), 3)
    assert ex.representative_before["item_idx"].tolist()[0] == 1
    assert ex.representative_after["item_idx"].tolist()[0] == 4
    assert set(ex.representative_before["item_idx"]) <= {0, 1, 2}
    assert len(ex.representative_after) == 2
    assert ex.representative_after["similarity"].is_monotonic_decreasing


def test_without_categories_clusters_of_embeddings_are_named_by_central_titles(catalogue, shifted_history):
    items, vectors, category = catalogue(noise=0.1)
    bare = items.assign(categories=[[] for _ in range(len(items))])
    history, cp = shifted_history(category)
    explainer = ShiftExplainer(n_clusters=4, random_state=0).fit(bare, vectors)
    assert explainer.category_source_ == "clusters"
    # Well-separated categories come back as the clusters, each named after two of its titles.
    for c in range(4):
        members = explainer.cluster_labels_[category == c]
        assert len(set(members)) == 1
        name = explainer.cluster_names_[members[0]]
        assert name.count(" / ") == 1 and all(
            p.startswith(f"{items.title[category == c].iloc[0].split()[0]} ") for p in name.split(" / ")
        )
    ex = explainer.explain(history, cp)
    assert ex.category_source == "clusters"
    horror_cluster = explainer.cluster_names_[explainer.cluster_labels_[0]]
    assert ex.fell["category"].tolist() == [horror_cluster]
    assert ex.summary.startswith(f"{horror_cluster} 100% → 0%")
    again = ShiftExplainer(n_clusters=4, random_state=0).fit(bare, vectors)
    assert again.cluster_names_ == explainer.cluster_names_


def test_bad_input_gives_clear_errors(catalogue):
    items, vectors, category = catalogue()
    explainer = ShiftExplainer().fit(items, vectors)
    with pytest.raises(ShiftError, match="both sides"):
        explainer.explain(np.array([0, 1, 2]), 3)
    with pytest.raises(ShiftError, match="both sides"):
        explainer.explain(np.array([0, 1, 2]), 0)
    with pytest.raises(ShiftError, match="not fitted"):
        ShiftExplainer().explain(np.array([0, 1]), 1)
    with pytest.raises(DataError, match="120 items"):
        ShiftExplainer().fit(items, vectors[:-1])
    with pytest.raises(DataError, match="no categories"):
        ShiftExplainer(source="categories").fit(items.assign(categories=[[]] * len(items)), vectors)


def test_representative_items_never_repeat_a_title():
    vectors = np.array([[1, 0], [1, 0], [0.9, 0.3], [0, 1]], dtype=np.float32)
    items = pd.DataFrame({"title": ["Twin", "Twin", "Other", "Far"], "categories": [["x"]] * 3 + [["y"]]})
    ex = ShiftExplainer(n_representative=3).fit(items, vectors).explain(np.array([0, 1, 2, 3]), 3)
    assert ex.representative_before["title"].tolist() == ["Twin", "Other"]
    assert ex.representative_before["item_idx"].tolist() == [0, 2]


def _three_segment_user():
    """Comedy/Drama, then Thriller, then Children's: change points at events 12 and 22."""
    genres = ["Comedy", "Drama", "Thriller", "Children's"]
    items = pd.DataFrame(
        {
            "title": [f"{g} {i}" for g in genres for i in range(10)],
            "categories": [[g] for g in genres for _ in range(10)],
        }
    )
    comedy, drama, thriller, children = (np.arange(10) + 10 * g for g in range(4))
    history = np.concatenate(
        [
            comedy[:8], drama[:4],  # events 0-11: Comedy 8, Drama 4
            thriller[:7], comedy[8:10], comedy[:1],  # events 12-21: Thriller 7, Comedy 3
            children[:6], comedy[1:2], thriller[7:8],  # events 22-29: Children's 6, Comedy 1, Thriller 1
        ]
    )  # fmt: skip
    return items, history


def test_each_change_is_explained_by_its_neighbouring_segments_not_the_whole_history():
    items, history = _three_segment_user()
    explainer = ShiftExplainer().fit(items, np.eye(len(items), dtype=np.float32))
    shifts = explainer.explain_changes(history, [22, 12])
    assert shifts.segments[["start", "end", "n_events"]].values.tolist() == [
        [0, 12, 12],
        [12, 22, 10],
        [22, 30, 8],
    ]
    assert shifts.change_points == [12, 22]
    second = shifts.at(22)
    assert (second.segment_start, second.change_point, second.segment_end) == (12, 22, 30)
    assert (second.n_before, second.n_after) == (10, 8)
    table = second.categories.set_index("category")
    assert table.loc["Thriller", ["share_before", "share_after"]].tolist() == pytest.approx([0.7, 0.125])
    assert table.loc["Comedy", ["share_before", "share_after"]].tolist() == pytest.approx([0.3, 0.125])
    assert table.loc["Children's", ["share_before", "share_after"]].tolist() == pytest.approx([0.0, 0.75])
    assert "Drama" not in table.index  # Drama lives two segments back
    assert second.summary == "Thriller 70% → 12%, Comedy 30% → 12%, Children's 0% → 75%"
    assert second.rising_categories == ("Children's",)
    assert second.after_rising_share == pytest.approx(0.75)
    # Everything before against everything after tells another story: Comedy, not Thriller, leads.
    whole = explainer.explain(history, 22)
    assert whole.summary == "Comedy 50% → 12%, Thriller 32% → 12%, Children's 0% → 75%"
    first = shifts.at(12)
    assert (first.segment_start, first.segment_end) == (0, 22)
    first_table = first.categories.set_index("category")
    assert first_table.loc["Comedy", ["share_before", "share_after"]].tolist() == pytest.approx([8 / 12, 0.3])
    assert first_table.loc["Thriller", "share_after"] == pytest.approx(0.7)
    assert first.rising_categories == ("Thriller",)
    assert set(first.representative_after["item_idx"]) <= set(history[12:22])


def test_segment_bounds_drop_repeats_and_points_that_leave_a_side_empty():
    from core.explain import neighbouring_segments, segment_bounds

    assert segment_bounds(5, []) == [(0, 5)]
    assert segment_bounds(5, [5, 0, 2, 2]) == [(0, 2), (2, 5)]
    assert neighbouring_segments(30, [12, 22], 12) == (0, 22)
    assert neighbouring_segments(30, [12, 22], 15) == (12, 22)
    with pytest.raises(ShiftError, match="both sides"):
        neighbouring_segments(30, [12], 30)
    items, history = _three_segment_user()
    explainer = ShiftExplainer().fit(items, np.eye(len(items), dtype=np.float32))
    with pytest.raises(ShiftError, match="segment bounds"):
        explainer.explain(history, 12, start=12)
    assert explainer.explain_changes(history, []).explanations == []


def test_share_in_categories_counts_items_with_any_of_them():
    items, history = _three_segment_user()
    explainer = ShiftExplainer().fit(items, np.eye(len(items), dtype=np.float32))
    assert explainer.share_in(np.array([30, 31, 0, 20]), ["Children's", "Thriller"]) == 0.75
    assert np.isnan(explainer.share_in(np.array([30]), []))
    assert explainer.items_in(["Drama"]).sum() == 10
