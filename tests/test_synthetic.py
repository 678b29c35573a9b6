"""The synthetic world: determinism, the kinds of users, and ground truth that is true."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import ingest, store, synthetic
from core.errors import ShiftError


def _category(events: pd.DataFrame, per_cat: int) -> np.ndarray:
    return np.array(synthetic.CATEGORIES)[(events["item_id"].astype(int).to_numpy() - 1) // per_cat]


def test_same_seed_same_world_other_seed_other_world():
    a = synthetic.generate_chunk(0, 60, 40, 24, random_state=7)
    b = synthetic.generate_chunk(0, 60, 40, 24, random_state=7)
    c = synthetic.generate_chunk(0, 60, 40, 24, random_state=8)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0]["item_id"].equals(c[0]["item_id"])
    pd.testing.assert_frame_equal(synthetic.make_catalogue(24, 3), synthetic.make_catalogue(24, 3))


def test_catalogue_is_readable_and_unique():
    items = synthetic.make_catalogue(120)
    assert len(items) == 120 * len(synthetic.CATEGORIES)
    assert items["title"].is_unique
    assert items["item_id"].tolist()[:2] == ["1", "2"]
    assert set(items["genres"]) == set(synthetic.CATEGORIES)
    with pytest.raises(ShiftError, match="at most"):
        synthetic.make_catalogue(100_000)


def test_every_kind_present_and_truth_matches_the_events():
    events, truth, labels = synthetic.generate_chunk(0, 400, 50, 120, random_state=0)
    assert set(labels["kind"]) == {"stable", "abrupt", "gradual", "multi", "repeated"}
    kinds = labels.set_index("user_id")["kind"]
    assert set(kinds[truth["user_id"]]) == {"abrupt", "gradual", "repeated"}
    assert (truth.groupby("user_id").size()[kinds[kinds == "repeated"].index] >= 2).all()
    cats = _category(events, 120)
    events = events.assign(category=cats, t=events.groupby("user_id").cumcount())
    for row in truth[truth["width"] == 1].itertuples():
        user = events[events["user_id"] == row.user_id]
        nxt = truth[(truth.user_id == row.user_id) & (truth.event_index > row.event_index)].event_index
        end = int(nxt.min()) if len(nxt) else len(user)
        prev = truth[(truth.user_id == row.user_id) & (truth.event_index < row.event_index)].event_index
        start = int(prev.max()) if len(prev) else 0
        before = user[(user.t >= start) & (user.t < row.event_index)]
        after = user[(user.t >= row.event_index) & (user.t < end)]
        # Off-interest noise is 12%: the planted interests must dominate their segments.
        assert (before.category == row.from_category).mean() > 0.6
        assert (after.category == row.to_category).mean() > 0.6
        assert 10 <= row.event_index <= len(user) - 10


def test_multi_interest_users_alternate_between_two_interests():
    events, truth, labels = synthetic.generate_chunk(0, 200, 60, 120, random_state=1)
    multi = labels[labels.kind == "multi"].user_id
    events = events.assign(category=_category(events, 120))
    for uid in multi:
        counts = events[events.user_id == uid].category.value_counts()
        assert counts.iloc[:2].sum() / counts.sum() > 0.75
        assert counts.iloc[1] / counts.iloc[:2].sum() > 0.2
    assert not set(multi) & set(truth.user_id)


def test_timestamps_increase_within_each_user():
    events, _, _ = synthetic.generate_chunk(0, 50, 40, 24)
    assert (
        events.groupby("user_id")["timestamp"]
        .apply(lambda s: s.diff().dropna().dt.total_seconds().min() >= 1)
        .all()
    )


def test_written_in_chunks_and_ingested_with_truth(data_dir):
    seen = []
    report = ingest.ingest_synthetic(
        "w", "tiny", random_state=0, on_chunk=lambda d, t: seen.append((d, t)), chunk_users=15
    )
    assert seen == [(15, 40), (30, 40), (40, 40)]
    con = store.connect("w")
    assert report.n_users == 40 and store.dataset_info(con)["has_ground_truth"]
    truth = store.load_ground_truth(con)
    assert len(truth) > 5
    assert set(store.load_user_labels(con)["kind"]) == {"stable", "abrupt", "gradual", "multi", "repeated"}
    # Event order in the store equals generation order (timestamps strictly increase).
    user = truth.iloc[0].user_id
    ev = store.load_user_events(con, user)
    assert ev["ts"].is_monotonic_increasing and ev["seq"].tolist() == list(range(len(ev)))


def test_parse_size():
    assert synthetic.parse_size("huge") == (1_000_000, 50, 120)
    assert synthetic.parse_size("250") == (250, 50, 120)
    with pytest.raises(ShiftError, match="unknown synthetic size"):
        synthetic.parse_size("enormous")


# Digests of every generated frame (events, truth, labels per chunk, then the catalogue) taken
# before the word lists moved to core/synthetic_vocabulary.json: the same seed must keep
# giving the same world, byte for byte.
WORLD_DIGESTS = {
    "tiny": "3b0ee80217e0352026a74736f839cba9e399dadff1ccfff5f375e6ed9a84fc9b",
    "small": "5eceb499248491b8d6f5610dcd352b6ec761c33dbaae0839b72d8db5a5b79e3e",
}


@pytest.mark.parametrize("size", sorted(WORLD_DIGESTS))
def test_same_seed_gives_the_same_world_as_before(size):
    digest = hashlib.sha256()
    chunks = [frame for chunk in synthetic.iter_world(size, 0) for frame in chunk]
    for frame in [*chunks, synthetic.make_catalogue(synthetic.parse_size(size)[2], 0)]:
        digest.update(frame.to_csv(index=False).encode())
    assert digest.hexdigest() == WORLD_DIGESTS[size]


def test_vocabulary_is_a_data_file_inside_the_package():
    assert synthetic.VOCABULARY_FILE.parent == Path(synthetic.__file__).parent
    assert tuple(synthetic.vocabulary()) == synthetic.CATEGORIES
    assert len(synthetic.CATEGORIES) == 12 and synthetic.CATEGORIES[0] == "Home Goods"
