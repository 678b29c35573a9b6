"""Trajectory math against a naive per-user loop, edge cases, and loading from a real store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import ingest, store
from core.artefacts import iter_trajectories, user_trajectory
from core.artefacts import trajectories as load_trajectories
from core.errors import ShiftError, UnknownUser
from core.store import TableSource
from core.trajectory import (
    chunk_ranges,
    ewma,
    rating_weights,
    recent_mean,
    two_window_delta,
)

# Users with 0, 1, fewer events than the window, exactly 2h, and long histories.
COUNTS = [0, 1, 3, 7, 0, 8, 25, 2, 40]


def _world(seed: int = 0, d: int = 5):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(COUNTS)]).astype(np.int64)
    vectors = rng.normal(size=(offsets[-1], d)).astype(np.float32)
    return vectors, offsets, rng


def _naive_weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    mass = np.abs(w).sum()
    return (w[:, None] * x).sum(0) / mass if mass > 0 else np.full(x.shape[1], np.nan)


def _naive_delta(vectors, offsets, h, weights=None):
    out = np.full(vectors.shape, np.nan)
    w_all = np.ones(len(vectors)) if weights is None else weights
    for k in range(len(offsets) - 1):
        s, e = offsets[k], offsets[k + 1]
        x, w = vectors[s:e].astype(np.float64), w_all[s:e]
        for t in range(len(x)):
            if t >= h and t + h <= len(x):
                out[s + t] = _naive_weighted_mean(x[t : t + h], w[t : t + h]) - _naive_weighted_mean(
                    x[t - h : t], w[t - h : t]
                )
    return out


def _naive_recent(vectors, offsets, h, weights=None):
    out = np.full(vectors.shape, np.nan)
    w_all = np.ones(len(vectors)) if weights is None else weights
    for k in range(len(offsets) - 1):
        s, e = offsets[k], offsets[k + 1]
        for t in range(e - s):
            lo = max(0, t - h + 1)
            out[s + t] = _naive_weighted_mean(
                vectors[s + lo : s + t + 1].astype(np.float64), w_all[s + lo : s + t + 1]
            )
    return out


@pytest.mark.parametrize("h", [1, 2, 4])
def test_two_window_delta_equals_naive_loop(h):
    vectors, offsets, _ = _world()
    got = two_window_delta(vectors, offsets, h)
    want = _naive_delta(vectors, offsets, h)
    assert got.shape == vectors.shape and got.dtype == np.float32
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-5, equal_nan=True)
    # Exactly the rows with both windows inside the user are defined.
    assert (~np.isnan(got[:, 0])).sum() == sum(max(0, c - 2 * h + 1) for c in COUNTS)


def test_two_window_delta_with_signed_rating_weights_equals_naive_loop():
    vectors, offsets, rng = _world(1)
    ratings = rng.integers(1, 6, size=len(vectors)).astype(np.float32)
    w = rating_weights(ratings, offsets)
    assert set(np.unique(w)) == {-1.0, 1.0}
    np.testing.assert_allclose(
        two_window_delta(vectors, offsets, 3, w),
        _naive_delta(vectors, offsets, 3, w),
        atol=1e-5,
        equal_nan=True,
    )


def test_delta_points_at_first_event_after_a_planted_change():
    # 12 events at +1 then 12 at -1 in one dimension: the change point is event 12.
    x = np.concatenate([np.ones(12), -np.ones(12)])[:, None]
    delta = two_window_delta(x, np.array([0, 24]), 4)[:, 0]
    assert int(np.nanargmax(np.abs(delta))) == 12
    assert delta[12] == pytest.approx(-2.0)


@pytest.mark.parametrize("h", [1, 3, 6])
def test_recent_mean_equals_naive_loop(h):
    vectors, offsets, rng = _world(2)
    np.testing.assert_allclose(
        recent_mean(vectors, offsets, h), _naive_recent(vectors, offsets, h), atol=1e-5
    )
    w = rng.uniform(0.1, 2.0, size=len(vectors))
    np.testing.assert_allclose(
        recent_mean(vectors, offsets, h, w), _naive_recent(vectors, offsets, h, w), atol=1e-5
    )


@pytest.mark.parametrize("halflife", [0.5, 3.0, 50.0])
def test_ewma_equals_pandas_per_user(halflife):
    vectors, offsets, _ = _world(3)
    got = ewma(vectors, offsets, halflife)
    want = np.full(vectors.shape, np.nan)
    for k in range(len(offsets) - 1):
        s, e = offsets[k], offsets[k + 1]
        if e > s:
            want[s:e] = pd.DataFrame(vectors[s:e].astype(np.float64)).ewm(halflife=halflife).mean().to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_weighted_ewma_equals_naive_loop():
    vectors, offsets, rng = _world(4)
    w = np.where(rng.random(len(vectors)) < 0.3, -1.0, 1.0)
    lam = 2.0 ** (-1.0 / 4.0)
    want = np.empty(vectors.shape)
    for k in range(len(offsets) - 1):
        s, e = offsets[k], offsets[k + 1]
        for t in range(e - s):
            decay = lam ** np.arange(t, -1, -1)
            want[s + t] = (decay[:, None] * w[s : s + t + 1, None] * vectors[s : s + t + 1]).sum(0) / (
                decay * np.abs(w[s : s + t + 1])
            ).sum()
    np.testing.assert_allclose(ewma(vectors, offsets, 4.0, w), want, atol=1e-5)


def test_long_chunk_stays_exact():
    # 20,000 events in one user: float64 prefix sums keep windows far from the start exact.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20_000, 3)).astype(np.float32) + 100.0
    got = two_window_delta(x, np.array([0, 20_000]), 5)[19_000]
    want = x[19_000:19_005].astype(np.float64).mean(0) - x[18_995:19_000].astype(np.float64).mean(0)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_users_with_no_events_or_fewer_than_the_window():
    x = np.ones((3, 2), dtype=np.float32)
    offsets = np.array([0, 0, 1, 1, 3])  # users with 0, 1, 0 and 2 events
    assert np.isnan(two_window_delta(x, offsets, 5)).all()
    np.testing.assert_array_equal(recent_mean(x, offsets, 5), x)
    np.testing.assert_array_equal(ewma(x, offsets, 2.0), x)
    empty = np.empty((0, 4), dtype=np.float32)
    for out in (
        two_window_delta(empty, np.array([0, 0]), 2),
        recent_mean(empty, np.array([0]), 2),
        ewma(empty, np.array([0, 0, 0]), 2.0),
    ):
        assert out.shape == (0, 4)


def test_rating_weights_mark_below_the_users_mean_as_negative():
    rating = np.array([4, 4, 4, 5, 1, np.nan, 3], dtype=np.float32)
    w = rating_weights(rating, np.array([0, 3, 3, 7]))
    # user 1 rates all 4 (no negatives); user 3's mean is 3: 1 is below, NaN counts as +1.
    assert w.tolist() == [1, 1, 1, 1, -1, 1, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: two_window_delta(np.ones((3, 2)), np.array([0, 2]), 2), "offsets must rise"),
        (lambda: two_window_delta(np.ones((3, 2)), np.array([0, 3]), 0), "positive integer"),
        (lambda: recent_mean(np.ones(3), np.array([0, 3]), 2), "2-D"),
        (lambda: ewma(np.ones((3, 2)), np.array([0, 3]), -1.0), "halflife"),
        (
            lambda: two_window_delta(np.ones((3, 2)), np.array([0, 3]), 1, np.ones(2)),
            "weights must have shape",
        ),
        (lambda: recent_mean(np.ones((3, 2)), np.array([0.0, 3.0]), 2), "integer"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ShiftError, match=message):
        call()


def test_chunk_ranges_bound_events_per_chunk():
    counts = np.array([5, 1, 1, 9, 0, 2, 2, 2])
    ranges = chunk_ranges(counts, 4)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    for lo, hi in ranges:
        assert counts[lo:hi].sum() <= 4 or hi - lo == 1  # a lone oversize user is allowed


# --------------------------------------------------------------------------- from the store
ITEMS = "item_id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(4))
EVENTS = "user_id,item_id,timestamp,rating\n" + "".join(
    f"{u},i{k},{1_600_000_000 + 60 * t},{r}\n"
    for u, seq in (("7", [0, 1, 2, 3, 2]), ("3", [3]), ("12", [1, 1, 0]))
    for t, (k, r) in enumerate(zip(seq, [5, 1, 4, 2, 3], strict=False))
)
ITEM_VECTORS = np.eye(4, dtype=np.float32)


@pytest.fixture
def tiny(data_dir, write_file):
    ingest.ingest_files(
        "tiny", TableSource(write_file("e.csv", EVENTS)), TableSource(write_file("i.csv", ITEMS))
    )
    return "tiny"


def test_load_trajectories_gathers_item_vectors_in_event_order(tiny):
    tr = load_trajectories(tiny, item_vectors=ITEM_VECTORS)
    assert tr.user_ids.tolist() == ["3", "7", "12"]  # numeric ids in numeric order
    assert tr.offsets.tolist() == [0, 1, 6, 9]
    k = tr.index_of("7")
    np.testing.assert_array_equal(tr.user_vectors(k), ITEM_VECTORS[[0, 1, 2, 3, 2]])
    np.testing.assert_array_equal(tr.vectors(), ITEM_VECTORS[tr.item_idx])
    assert tr.rating[tr.user_slice(k)].tolist() == [5, 1, 4, 2, 3]
    np.testing.assert_allclose(tr.delta(2)[tr.offsets[k] + 2], [-0.5, -0.5, 0.5, 0.5])


def test_user_trajectory_and_chunks_match_the_full_load(tiny):
    full = load_trajectories(tiny, item_vectors=ITEM_VECTORS)
    one = user_trajectory(tiny, "12", item_vectors=ITEM_VECTORS)
    assert one.n_users == 1 and one.user_ids.tolist() == ["12"]
    np.testing.assert_array_equal(one.user_vectors(0), full.user_vectors(full.index_of("12")))
    chunks = list(iter_trajectories(tiny, max_events=5, item_vectors=ITEM_VECTORS))
    assert [c.user_ids.tolist() for c in chunks] == [["3"], ["7"], ["12"]]
    np.testing.assert_array_equal(np.concatenate([c.item_idx for c in chunks]), full.item_idx)
    with pytest.raises(UnknownUser, match="'99'"):
        user_trajectory(tiny, "99", item_vectors=ITEM_VECTORS)
    con = store.connect(tiny)  # a caller's own read-only connection is used and left open
    again = user_trajectory(tiny, "7", item_vectors=ITEM_VECTORS, con=con)
    assert again.item_idx.tolist() == full.item_idx[full.user_slice(full.index_of("7"))].tolist()
    assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 3
    con.close()


def test_item_matrix_too_small_for_the_events_is_a_clear_error(tiny):
    with pytest.raises(ShiftError, match="re-encode"):
        load_trajectories(tiny, item_vectors=np.eye(2, dtype=np.float32))
