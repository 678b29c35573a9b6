"""Inputs built from a dataset on request, not stored: the recommender and trajectories.

Both are cheap to rebuild from the store and the item matrix (seconds at most), so they
are not files; callers that keep them (the dashboard's resource cache) key them by
:func:`core.artefacts.dataset_version`.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np

from core import store
from core.artefacts.datasets import events, item_titles
from core.artefacts.items import item_matrix
from core.artefacts.results import UserSample, needs_precomputed, sampled_histories
from core.recommend import Recommender, fit_recommender
from core.trajectory import Trajectories, chunk_ranges


def recommender(name: str, item_vectors: np.ndarray | None = None, **params) -> Recommender:
    """The recommender fitted on every user of ``name`` (item matrix: given, or the cached one)."""
    vectors = item_matrix(name) if item_vectors is None else item_vectors
    return fit_recommender(vectors, events(name), item_keys=item_titles(name), **params)


def population_histories(name: str, con: duckdb.DuckDBPyConnection, load_all) -> UserSample:
    """Whole histories to learn the population's co-consumption from: every user's
    (``load_all()``, the caller's event arrays) for a dataset that fits in memory, else a seeded
    sample of whole users (:func:`core.artefacts.results.sampled_histories`: 16 bytes an event,
    and minutes at 50M events, for the whole log)."""
    if needs_precomputed(name):
        return sampled_histories(name, con=con)
    events = load_all()
    return UserSample(events.item_idx, events.offsets, events.n_users, events.n_users)


def _vectors(name: str, item_vectors: np.ndarray | None) -> np.ndarray:
    return item_matrix(name) if item_vectors is None else np.asarray(item_vectors, dtype=np.float32)


def trajectories(
    name: str, user_idx_range: tuple[int, int] | None = None, item_vectors: np.ndarray | None = None
) -> Trajectories:
    """Trajectories of all users, or of ``user_idx`` in [lo, hi).

    ``item_vectors`` defaults to the dataset's item matrix (cached; encodes what is missing).
    """
    vectors = _vectors(name, item_vectors)
    with store.connect(name) as con:
        ev = store.load_event_arrays(con, user_idx_range)
    return Trajectories.from_events(ev, vectors)


def iter_trajectories(
    name: str, max_events: int = 250_000, item_vectors: np.ndarray | None = None
) -> Iterator[Trajectories]:
    """Trajectories of every user, streamed in chunks of at most ``max_events`` events.

    At 384 dimensions a chunk of 250,000 events is 384 MB as float32 vectors, whatever the
    size of the log.
    """
    vectors = _vectors(name, item_vectors)
    with store.connect(name) as con:
        users = store.load_users(con)
        for lo, hi in chunk_ranges(users["n_events"].to_numpy(), max_events):
            yield Trajectories.from_events(store.load_event_arrays(con, (lo, hi)), vectors)


def user_trajectory(
    name: str,
    user_id: str,
    item_vectors: np.ndarray | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Trajectories:
    """One user's trajectory (U = 1), fetched by an indexed lookup of that user alone.

    Opening a DuckDB file costs more than the two queries, so a caller that keeps a
    read-only connection (the dashboard) passes it as ``con``.
    """
    vectors = _vectors(name, item_vectors)
    own = con is None
    con = store.connect(name) if own else con
    try:
        k = store.user_index(con, user_id)
        ev = store.load_event_arrays(con, (k, k + 1))
    finally:
        if own:
            con.close()
    return Trajectories.from_events(ev, vectors)
