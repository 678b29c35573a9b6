"""Ground-truth users built from real ones: splices, multi-splices, gradual ramps, controls.

Real logs carry no label saying "the interest shifted here", so the benchmark makes its
own: the first ``a`` events of a real user A followed by the first ``b`` events of a real
user B whose profile differs. The splice index is the true change point (the index of the
first event after the change, the project-wide convention). Kinds:

- ``splice``: A‖B, in difficulty bins by the profile distance of the two segments
  (``easy``, ``medium`` and a ``hard`` bin of fairly similar users);
- ``multi``: A‖B‖C, two change points;
- ``gradual``: A, then B's items mixed in with rising probability over ``width`` events,
  then B; the truth is the middle of the ramp;
- ``control``: an unspliced real history (any alarm on it is a false alarm);
- ``shuffled``: a real history in random order (no shift by construction).

Everything is drawn from ``random_state``; the same arguments give the same users. The
detector benchmark (:mod:`core.benchmark.detection`) and the lift benchmark
(:mod:`core.benchmark.lift`) read the fields documented on :class:`SplicedUser`.

>>> import numpy as np
>>> from core.store import EventArrays
>>> rng = np.random.default_rng(0)
>>> items = np.vstack([rng.normal(size=(20, 8)) + 3 * np.eye(8)[g % 4] for g in range(4)])
>>> items = (items / np.linalg.norm(items, axis=1, keepdims=True)).astype(np.float32)
>>> # 12 users, 40 events each, every user sticking to one of 4 item groups
>>> idx = np.concatenate([rng.integers(0, 20, 40) * 4 + u % 4 for u in range(12)])
>>> events = EventArrays(np.array([str(u) for u in range(12)]), np.arange(13) * 40,
...                      idx.astype(np.int32), np.zeros(480, "datetime64[us]"),
...                      np.full(480, 4.0, np.float32))
>>> users = splice_benchmark(events, items, n_splices=6, n_multi=2, n_gradual=2,
...                          n_controls=3, n_shuffled=3, random_state=0)
>>> [u.kind for u in users].count("splice"), users[0].change_points == [len(users[0].item_idx) - users[0].segments[1]]
(6, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ShiftError
from core.store import EventArrays
from core.user_split import split_users  # noqa: F401  (the splice benchmark's users)

BINS = ("easy", "medium", "hard")
# Percentiles of the segment-pair profile distance that bound each bin. Pairs below the
# 10th percentile are near-duplicates of taste; no detector could (or should) split them.
BIN_PERCENTILES = {"easy": (67, 100), "medium": (33, 67), "hard": (10, 33)}


@dataclass(frozen=True)
class SplicedUser:
    """One benchmark user.

    ``item_idx``/``rating`` are its events in order; ``change_points`` the index of the first
    event after each true change (empty for controls); ``sources`` the real user ids its
    segments come from, in order; ``segments`` the length taken from each source (for
    ``gradual``, the A prefix, the ramp and the B part); ``width`` the ramp width (0 when
    abrupt); ``distance`` the cosine distance between the source segments' mean profiles.
    """

    user_id: str
    item_idx: np.ndarray
    rating: np.ndarray
    change_points: list[int]
    kind: str
    bin: str
    sources: tuple[str, ...]
    segments: tuple[int, ...]
    width: int = 0
    distance: float = float("nan")

    @property
    def n_events(self) -> int:
        return len(self.item_idx)


def _profile(item_vectors: np.ndarray, center: np.ndarray, idx: np.ndarray) -> np.ndarray:
    v = (item_vectors[idx] - center).mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


class _Builder:
    """Holds the source histories and the generator while the users are drawn."""

    def __init__(
        self,
        events: EventArrays,
        item_vectors: np.ndarray,
        users: np.ndarray,
        min_segment: int,
        max_segment: int,
        rng: np.random.Generator,
    ) -> None:
        keep = np.isin(events.user_ids, users)
        self.ev, self.rng = events, rng
        self.min_segment, self.max_segment = min_segment, max_segment
        self.k = np.flatnonzero(keep & (np.diff(events.offsets) >= min_segment))
        if len(self.k) < 3:
            raise ShiftError(
                f"the benchmark needs at least 3 users with {min_segment}+ events; found {len(self.k)}"
            )
        self.items = item_vectors
        # Centre on the catalogue mean: the shared text template ("Title (1995). Genre")
        # otherwise dominates every profile and squeezes all distances together.
        self.center = item_vectors.mean(axis=0)

    def history(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.ev.user_slice(k)
        return self.ev.item_idx[s], self.ev.rating[s]

    def length(self, k: int) -> int:
        n = int(self.ev.offsets[k + 1] - self.ev.offsets[k])
        hi = min(n, self.max_segment)
        return int(self.rng.integers(self.min_segment, hi + 1))

    def distance(self, a_idx: np.ndarray, b_idx: np.ndarray) -> float:
        pa, pb = _profile(self.items, self.center, a_idx), _profile(self.items, self.center, b_idx)
        return float(1.0 - pa @ pb)

    def candidate_pair(self) -> tuple[int, int, int, int, float]:
        a, b = self.rng.choice(self.k, size=2, replace=False)
        la, lb = self.length(a), self.length(b)
        d = self.distance(self.history(a)[0][:la], self.history(b)[0][:lb])
        return int(a), int(b), la, lb, d


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int32),
        np.concatenate([p[1] for p in parts]).astype(np.float32),
    )


def _splices(bld: _Builder, n: int, n_candidates: int) -> list[SplicedUser]:
    pairs = [bld.candidate_pair() for _ in range(n_candidates)]
    dist = np.array([p[4] for p in pairs])
    out: list[SplicedUser] = []
    per_bin = [n // 3 + (i < n % 3) for i in range(3)]
    for name, want in zip(BINS, per_bin, strict=True):
        lo, hi = np.percentile(dist, BIN_PERCENTILES[name])
        pool = [p for p, d in zip(pairs, dist, strict=True) if lo <= d <= hi]
        for j in bld.rng.permutation(len(pool))[:want]:
            a, b, la, lb, d = pool[j]
            (ia, ra), (ib, rb) = bld.history(a), bld.history(b)
            idx, rat = _concat([(ia[:la], ra[:la]), (ib[:lb], rb[:lb])])
            out.append(
                SplicedUser(
                    f"splice-{name}-{len(out):04d}",
                    idx,
                    rat,
                    [la],
                    "splice",
                    name,
                    (bld.ev.user_ids[a], bld.ev.user_ids[b]),
                    (la, lb),
                    0,
                    d,
                )
            )
    return out


def _medium_lower_bound(bld: _Builder, n_candidates: int) -> float:
    dist = np.array([bld.candidate_pair()[4] for _ in range(n_candidates)])
    return float(np.percentile(dist, BIN_PERCENTILES["medium"][0]))


def _multi(bld: _Builder, n: int, min_distance: float) -> list[SplicedUser]:
    out: list[SplicedUser] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        ks = bld.rng.choice(bld.k, size=3, replace=False)
        lens = [bld.length(k) for k in ks]
        hist = [bld.history(k) for k in ks]
        segs = [(h[0][:m], h[1][:m]) for h, m in zip(hist, lens, strict=True)]
        d = [bld.distance(segs[i][0], segs[i + 1][0]) for i in range(2)]
        if min(d) < min_distance:  # each change must be a real change of taste
            continue
        idx, rat = _concat(segs)
        out.append(
            SplicedUser(
                f"multi-{len(out):04d}",
                idx,
                rat,
                [lens[0], lens[0] + lens[1]],
                "multi",
                "multi",
                tuple(bld.ev.user_ids[k] for k in ks),
                tuple(lens),
                0,
                min(d),
            )
        )
    return out


def _gradual(bld: _Builder, n: int, widths: tuple[int, ...], min_distance: float) -> list[SplicedUser]:
    out: list[SplicedUser] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        a, b, la, lb, d = bld.candidate_pair()
        w = int(bld.rng.choice(widths))
        (ia, ra), (ib, rb) = bld.history(a), bld.history(b)
        na, nb = len(ia), len(ib)
        if d < min_distance or na < la + w or nb < lb:
            continue
        # Over the ramp, event j comes from B with probability (j + 0.5) / w; A and B keep
        # their own order, so the ramp consumes the next events of each history.
        from_b = bld.rng.random(w) < (np.arange(w) + 0.5) / w
        n_b_ramp = int(from_b.sum())
        if lb + n_b_ramp > nb:
            continue
        ramp_idx, ramp_rat = np.empty(w, np.int32), np.empty(w, np.float32)
        ramp_idx[from_b], ramp_rat[from_b] = ib[:n_b_ramp], rb[:n_b_ramp]
        n_a_ramp = w - n_b_ramp
        ramp_idx[~from_b], ramp_rat[~from_b] = ia[la : la + n_a_ramp], ra[la : la + n_a_ramp]
        idx, rat = _concat(
            [
                (ia[:la], ra[:la]),
                (ramp_idx, ramp_rat),
                (ib[n_b_ramp : n_b_ramp + lb], rb[n_b_ramp : n_b_ramp + lb]),
            ]
        )
        out.append(
            SplicedUser(
                f"gradual-{len(out):04d}",
                idx,
                rat,
                [la + w // 2],
                "gradual",
                "gradual",
                (bld.ev.user_ids[a], bld.ev.user_ids[b]),
                (la, w, lb),
                w,
                d,
            )
        )
    return out


def _controls(bld: _Builder, n: int, shuffled: bool) -> list[SplicedUser]:
    out: list[SplicedUser] = []
    for k in bld.rng.choice(bld.k, size=min(n, len(bld.k)), replace=False):
        idx, rat = bld.history(int(k))
        kind = "shuffled" if shuffled else "control"
        if shuffled:
            order = bld.rng.permutation(len(idx))
            idx, rat = idx[order], rat[order]
        out.append(
            SplicedUser(
                f"{kind}-{len(out):04d}",
                idx.astype(np.int32),
                rat.astype(np.float32),
                [],
                kind,
                kind,
                (bld.ev.user_ids[int(k)],),
                (len(idx),),
            )
        )
    return out


def splice_benchmark(
    events: EventArrays,
    item_vectors: np.ndarray,
    *,
    users: np.ndarray | None = None,
    n_splices: int = 300,
    n_multi: int = 60,
    n_gradual: int = 60,
    n_controls: int = 200,
    n_shuffled: int = 100,
    min_segment: int = 20,
    max_segment: int = 80,
    ramp_widths: tuple[int, ...] = (10, 20),
    n_candidates: int = 3000,
    random_state: int = 0,
) -> list[SplicedUser]:
    """Build the benchmark users from real histories, drawing only from ``users``.

    ``events`` holds the real histories (CSR) and ``item_vectors`` the item matrix that
    defines profile distance (row i = item_idx i). ``users`` restricts the sources (e.g.
    the test part of :func:`split_users`); every segment is ``min_segment`` to
    ``max_segment`` events long, taken from the start of its source history. Splices are
    spread evenly over the three difficulty bins; multi-splices and ramps only join
    segments at least as far apart as the ``medium`` bin's lower bound.
    """
    if min_segment < 2 or max_segment < min_segment:
        raise ShiftError(f"need 2 <= min_segment <= max_segment, got {min_segment}, {max_segment}")
    pool = events.user_ids if users is None else np.asarray(users).astype(str)
    rng = np.random.default_rng(random_state)
    bld = _Builder(events, np.asarray(item_vectors, np.float32), pool, min_segment, max_segment, rng)
    min_distance = _medium_lower_bound(bld, max(n_candidates // 3, 100))
    return (
        _splices(bld, n_splices, n_candidates)
        + _multi(bld, n_multi, min_distance)
        + _gradual(bld, n_gradual, ramp_widths, min_distance)
        + _controls(bld, n_controls, shuffled=False)
        + _controls(bld, n_shuffled, shuffled=True)
    )


def to_event_arrays(users: list[SplicedUser]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Benchmark users in CSR layout: ``(user_ids, offsets, item_idx, rating)``."""
    lengths = np.array([u.n_events for u in users], dtype=np.int64)
    offsets = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    item_idx = np.concatenate([u.item_idx for u in users]) if users else np.empty(0, np.int32)
    rating = np.concatenate([u.rating for u in users]) if users else np.empty(0, np.float32)
    return np.array([u.user_id for u in users]), offsets, item_idx.astype(np.int32), rating
