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
