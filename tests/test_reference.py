"""The reference recommenders (implicit ALS and item-kNN) answer from a visible history."""

from __future__ import annotations

import numpy as np
import pytest

from core.benchmark.reference import fit_reference
from core.errors import ShiftError
from core.store import EventArrays


def _two_communities():
    """Users 0-39 watch items 0-9, users 40-79 items 10-19 (6 of them each)."""
    rng = np.random.default_rng(0)
    rows = [rng.choice(np.arange(10) + 10 * (u >= 40), 6, replace=False) for u in range(80)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    item_idx = np.concatenate(rows)
    return EventArrays(
        np.array([f"u{u}" for u in range(80)]),
        offsets,
        item_idx,
        np.zeros(len(item_idx)),
        np.ones(len(item_idx)),
    )


@pytest.mark.parametrize("kind", ["als", "itemknn"])
def test_reference_recommends_unseen_items_of_the_users_community(kind):
    pytest.importorskip("implicit")
    recommend = fit_reference(kind, _two_communities(), n_items=20, factors=4, iterations=10)
    top = recommend(np.array([10, 11, 12]), 5)
    assert len(top) == 5 and not set(top) & {10, 11, 12}
    assert (top >= 10).sum() >= 4  # from the community of what the user saw
    with pytest.raises(ShiftError, match="unknown reference recommender"):
        fit_reference("svd", _two_communities(), n_items=20)
