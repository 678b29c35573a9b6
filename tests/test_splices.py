"""Ground-truth benchmark users built from real histories."""

from __future__ import annotations

import numpy as np
import pytest

from core.benchmark.splices import splice_benchmark, split_users, to_event_arrays
from core.errors import ShiftError
from core.store import EventArrays

N_USERS, N_EVENTS, N_GROUPS, PER_GROUP, D = 40, 90, 4, 25, 8


@pytest.fixture(scope="module")
def world():
    """40 users of 90 events; user u only consumes items of group u % 4."""
    rng = np.random.default_rng(0)
    items = np.vstack([np.eye(D)[g] + 0.2 * rng.normal(size=(PER_GROUP, D)) for g in range(N_GROUPS)])
    items = (items / np.linalg.norm(items, axis=1, keepdims=True)).astype(np.float32)
    idx = np.concatenate(
        [(u % N_GROUPS) * PER_GROUP + rng.integers(0, PER_GROUP, N_EVENTS) for u in range(N_USERS)]
    )
    ids = np.array([f"u{u:02d}" for u in range(N_USERS)])
    events = EventArrays(
        ids,
        np.arange(N_USERS + 1) * N_EVENTS,
        idx.astype(np.int32),
        np.zeros(len(idx), "datetime64[us]"),
        np.arange(len(idx), dtype=np.float32),
    )
    return events, items


def _bench(world, **kw):
    events, items = world
    args = {
        "n_splices": 30,
        "n_multi": 6,
        "n_gradual": 6,
        "n_controls": 5,
        "n_shuffled": 5,
        "n_candidates": 300,
        "random_state": 1,
    }
    return splice_benchmark(events, items, **(args | kw))


def _history(world, uid):
    events, _ = world
    k = int(np.flatnonzero(events.user_ids == uid)[0])
    return events.item_idx[events.user_slice(k)], events.rating[events.user_slice(k)]


def test_a_splice_is_a_prefix_of_a_followed_by_a_prefix_of_b(world):
    for u in [u for u in _bench(world) if u.kind == "splice"]:
        (a, ra), (b, rb) = _history(world, u.sources[0]), _history(world, u.sources[1])
        la, lb = u.segments
        assert u.change_points == [la] and u.n_events == la + lb
        assert np.array_equal(u.item_idx, np.concatenate([a[:la], b[:lb]]))
        assert np.array_equal(u.rating, np.concatenate([ra[:la], rb[:lb]]))  # ratings travel along
        assert 20 <= la <= 80 and 20 <= lb <= 80 and u.sources[0] != u.sources[1]


def test_bins_are_ordered_by_profile_distance(world):
    users = _bench(world)
    counts = {b: sum(u.bin == b for u in users if u.kind == "splice") for b in ("easy", "medium", "hard")}
    assert counts == {"easy": 10, "medium": 10, "hard": 10}
    mean = {b: np.mean([u.distance for u in users if u.bin == b]) for b in counts}
    assert mean["easy"] > mean["medium"] > mean["hard"]


def test_multi_splices_and_ramps(world):
    users = _bench(world)
    multi = [u for u in users if u.kind == "multi"]
    assert len(multi) == 6
    for u in multi:
        assert u.change_points == [u.segments[0], u.segments[0] + u.segments[1]] and len(set(u.sources)) == 3
    for u in [u for u in users if u.kind == "gradual"]:
        la, w, lb = u.segments
        assert u.change_points == [la + w // 2] and u.width == w and u.n_events == la + w + lb
        a, _ = _history(world, u.sources[0])
        assert np.array_equal(u.item_idx[:la], a[:la])
        # B's items dominate after the ramp: every event there is of B's group
        b_group = int(u.sources[1][1:]) % N_GROUPS
        assert np.all(u.item_idx[la + w :] // PER_GROUP == b_group)


def test_controls_have_no_change_and_shuffles_keep_the_items(world):
    for u in [u for u in _bench(world) if u.kind in ("control", "shuffled")]:
        assert u.change_points == []
        a, _ = _history(world, u.sources[0])
        if u.kind == "control":
            assert np.array_equal(u.item_idx, a)
        else:
            assert sorted(u.item_idx) == sorted(a) and not np.array_equal(u.item_idx, a)


def test_seeded_and_restricted_to_the_given_users(world):
    one, two = _bench(world), _bench(world)
    assert [u.user_id for u in one] == [u.user_id for u in two]
    assert all(np.array_equal(a.item_idx, b.item_idx) for a, b in zip(one, two, strict=True))
    events, _ = world
    cal, test = split_users(events.user_ids, 0.5, random_state=0)
    assert len(np.intersect1d(cal, test)) == 0 and len(cal) + len(test) == N_USERS
    used = {s for u in _bench(world, users=test) for s in u.sources}
    assert used <= set(test)


def test_csr_layout_and_errors(world):
    users = _bench(world)
    ids, offsets, item_idx, rating = to_event_arrays(users)
    assert offsets[-1] == len(item_idx) == sum(u.n_events for u in users)
    assert np.array_equal(item_idx[offsets[3] : offsets[4]], users[3].item_idx)
    events, items = world
    with pytest.raises(ShiftError, match="at least 3 users"):
        splice_benchmark(events, items, users=events.user_ids[:2])
    with pytest.raises(ShiftError, match="calibration_fraction"):
        split_users(events.user_ids, 1.5)
