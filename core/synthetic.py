"""A seeded synthetic world: a readable catalogue and users with planted interest shifts.

Users come in five kinds, cycling through a fixed pattern so that any 20 consecutive users
contain every kind:

- ``stable``: one interest throughout;
- ``abrupt``: interest A, then B from a planted change point on;
- ``gradual``: A, then B mixed in with rising probability over ``width`` events (the truth
  is the middle of the ramp);
- ``multi``: alternates between two interests in short sessions, never shifting — a
  detector must stay silent on them;
- ``repeated``: two or three abrupt shifts.

Every event keeps a 12% chance of an off-interest item, ratings are higher for on-interest
items, and gaps between events are exponential. Users are generated in chunks, each from
its own seeded generator, and written to Parquet as they are made, so a million users never
sit in memory at once and any chunk can be regenerated alone.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import ShiftError

# (users, mean events per user, items per category)
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (40, 40, 24),
    "small": (1_000, 60, 120),
    "medium": (10_000, 50, 120),
    "large": (100_000, 50, 120),
    "huge": (1_000_000, 50, 120),
}
KIND_PATTERN = (
    "stable",
    "abrupt",
    "multi",
    "stable",
    "gradual",
    "abrupt",
    "stable",
    "repeated",
    "multi",
    "abrupt",
    "stable",
    "stable",
    "abrupt",
    "gradual",
    "multi",
    "stable",
    "repeated",
    "abrupt",
    "stable",
    "stable",
)
NOISE = 0.12
RAMP_WIDTH = 10
MARGIN = 10  # planted change points stay this many events away from either end
CHUNK_USERS = 20_000
MAX_USERS = 10_000_000  # ten times "huge": about 500M events, past what one machine imports in minutes
START = np.datetime64("2024-01-01T00:00:00", "s")

VOCABULARY_FILE = Path(__file__).with_name("synthetic_vocabulary.json")


@functools.cache
def vocabulary() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per category, the title parts whose combinations are its item titles (in file order)."""
    with open(VOCABULARY_FILE, encoding="utf-8") as fh:
        categories = json.load(fh)["categories"]
    return {category: tuple(tuple(part) for part in parts) for category, parts in categories.items()}


def __getattr__(name: str):
    # CATEGORIES reads the vocabulary file on first use, not at import.
    if name == "CATEGORIES":
        return tuple(vocabulary())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class WorldFiles:
    items: Path
    events: Path
    truth: Path
    labels: Path
    n_users: int
    n_events: int


def parse_size(size: str | int) -> tuple[int, int, int]:
    """A named size (tiny…huge) or a number of users (50 events each, 120 items per category)."""
    if isinstance(size, int) or str(size).isdigit():
        n = int(size)
        if n < 1:
            raise ShiftError("the synthetic world needs at least one user")
        if n > MAX_USERS:
            raise ShiftError(f"the synthetic world has at most {MAX_USERS:,} users (about 50 events each)")
        return n, 50, 120
    if size not in SIZES:
        raise ShiftError(f"unknown synthetic size {size!r}: use one of {', '.join(SIZES)} or a user count")
    return SIZES[size]


def make_catalogue(items_per_category: int, random_state: int = 0) -> pd.DataFrame:
    """Items with readable, unique titles; item ids are 1…N, category blocks contiguous."""
    rng = np.random.default_rng([random_state, 0])
    rows = []
    for category, parts in vocabulary().items():
        combos = [" ".join(c) for c in itertools.product(*parts)]
        if len(combos) < items_per_category:
            raise ShiftError(f"at most {len(combos)} items per category are available")
        for title in rng.choice(combos, size=items_per_category, replace=False):
            rows.append((str(len(rows) + 1), str(title), category))
    return pd.DataFrame(rows, columns=["item_id", "title", "genres"])


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    before = np.repeat(total[starts] - values[starts], counts)
    return total - before


def generate_chunk(
    first_user: int, n_users: int, mean_events: int, items_per_category: int, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Events, planted change points and kinds of users ``first_user … first_user+n_users-1``.

    Deterministic in (first_user, random_state) alone, so chunks are independent.
    """
    rng = np.random.default_rng([random_state, 1, first_user])
    categories = tuple(vocabulary())
    n_cat = len(categories)
    users = np.arange(first_user, first_user + n_users)
    kinds = np.array(KIND_PATTERN)[users % len(KIND_PATTERN)]
    lo, hi = max(2 * MARGIN + 4, int(mean_events * 0.6)), max(2 * MARGIN + 5, int(mean_events * 1.4))
    counts = rng.integers(lo, hi + 1, size=n_users)
    n_shifts = np.where(kinds == "repeated", rng.integers(2, 4, n_users), 1)
    # Repeated shifters get segments of at least 15 events, so each shift is observable.
    counts = np.where(kinds == "repeated", np.maximum(counts, (n_shifts + 1) * 15), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = int(counts.sum())
    user_of = np.repeat(np.arange(n_users), counts)
    t = np.arange(n) - starts[user_of]

    # Interests A→B→C→D: consecutive draws are always different categories.
    interests = np.empty((n_users, 4), dtype=np.int64)
    interests[:, 0] = rng.integers(0, n_cat, n_users)
    for j in range(1, 4):
        interests[:, j] = (interests[:, j - 1] + rng.integers(1, n_cat, n_users)) % n_cat

    # Planted change points, kept MARGIN events from the ends (and from each other).
    span = counts - 2 * MARGIN
    cp1 = MARGIN + (span * rng.uniform(0.25, 0.75, n_users)).astype(np.int64)
    seg = counts // (n_shifts + 1)
    jitter = np.maximum(seg // 5, 1)
    rep = np.stack([(j + 1) * seg + rng.integers(-jitter, jitter + 1) for j in range(3)], axis=1)

    u = user_of
    phase = np.zeros(n, dtype=np.int64)
    kind_e = kinds[u]
    phase[(kind_e == "abrupt") & (t >= cp1[u])] = 1
    ramp = kind_e == "gradual"
    p_new = np.clip((t - cp1[u] + 1) / (RAMP_WIDTH + 1), 0, 1)
    phase[ramp & (rng.random(n) < p_new)] = 1
    multi = kind_e == "multi"
    # Sessions of 1-5 events alternating between two interests: no lasting shift.
    breaks = (rng.random(n) < 0.35).astype(np.int64)
    breaks[starts] = 0
    phase[multi] = _segment_cumsum(breaks, starts, counts)[multi] % 2
    repeated = kind_e == "repeated"
    k = np.zeros(n, dtype=np.int64)
    for j in range(3):
        k += (j < n_shifts[u]) & (t >= rep[u, j])
    phase[repeated] = k[repeated]

    category = interests[u, phase]
    on_interest = rng.random(n) >= NOISE
    category = np.where(on_interest, category, rng.integers(0, n_cat, n))
    # Popular items get most events (a Zipf-like curve within each category).
    weights = 1.0 / (np.arange(items_per_category) + 3.0) ** 0.9
    cdf = np.cumsum(weights) / weights.sum()
    rank = np.minimum(np.searchsorted(cdf, rng.random(n)), items_per_category - 1)
    item_id = category * items_per_category + rank + 1
    liked = rng.choice([3.0, 4.0, 5.0], size=n, p=[0.15, 0.45, 0.40])
    disliked = rng.choice([1.0, 2.0, 3.0], size=n, p=[0.3, 0.45, 0.25])
    rating = np.where(on_interest, liked, disliked)
    # At least a second apart: a user never has two events with the same timestamp.
    gaps = 1 + rng.exponential(1.5 * 86_400, n).astype(np.int64)
    gaps[starts] = rng.integers(0, 180 * 86_400, n_users)
    ts = START + _segment_cumsum(gaps, starts, counts).astype("timedelta64[s]")

    events = pd.DataFrame(
        {
            "user_id": (users[u] + 1).astype(str),
            "item_id": item_id.astype(str),
            "timestamp": ts,
            "rating": rating,
        }
    )
    truth = []
    names = np.array(categories)
    for i in np.flatnonzero(np.isin(kinds, ("abrupt", "gradual", "repeated"))):
        uid = str(users[i] + 1)
        if kinds[i] == "abrupt":
            truth.append((uid, int(cp1[i]), 1, names[interests[i, 0]], names[interests[i, 1]]))
        elif kinds[i] == "gradual":
            truth.append(
                (
                    uid,
                    int(cp1[i]) + RAMP_WIDTH // 2,
                    RAMP_WIDTH,
                    names[interests[i, 0]],
                    names[interests[i, 1]],
                )
            )
        else:
            for j in range(n_shifts[i]):
                truth.append((uid, int(rep[i, j]), 1, names[interests[i, j]], names[interests[i, j + 1]]))
    truth_df = pd.DataFrame(
        truth, columns=["user_id", "event_index", "width", "from_category", "to_category"]
    )
    labels = pd.DataFrame({"user_id": (users + 1).astype(str), "kind": kinds})
    return events, truth_df, labels


def iter_world(
    size: str | int, random_state: int = 0, chunk_users: int = CHUNK_USERS
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    n_users, mean_events, per_cat = parse_size(size)
    for first in range(0, n_users, chunk_users):
        yield generate_chunk(first, min(chunk_users, n_users - first), mean_events, per_cat, random_state)


def write_world(
    size: str | int,
    folder: Path,
    random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
    chunk_users: int = CHUNK_USERS,
) -> WorldFiles:
    """Generate the world into Parquet files in ``folder``, one chunk of users at a time."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_users, _, per_cat = parse_size(size)
    make_catalogue(per_cat, random_state).to_parquet(folder / "items.parquet", index=False)
    paths = {k: folder / f"{k}.parquet" for k in ("events", "truth", "labels")}
    writers: dict[str, pq.ParquetWriter] = {}
    n_events = done = 0
    try:
        for chunk in iter_world(size, random_state, chunk_users):
            for key, frame in zip(("events", "truth", "labels"), chunk):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if key not in writers:
                    writers[key] = pq.ParquetWriter(paths[key], table.schema)
                writers[key].write_table(table)
            n_events += len(chunk[0])
            done += len(chunk[2])
            if progress:
                progress(done, n_users)
    finally:
        for writer in writers.values():
            writer.close()
    return WorldFiles(
        folder / "items.parquet", paths["events"], paths["truth"], paths["labels"], n_users, n_events
    )
