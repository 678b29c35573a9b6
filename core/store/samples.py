"""Reads of part of a big dataset: a few users' events around given points, a seeded sample of
whole users, the users a ground truth marks as unchanged. Every value is bound; the wanted
users travel as a registered frame, never as SQL text."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd


def _registered(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, query: str, params: dict | None = None):
    # A view name of our own (not data), one per call, dropped after.
    view = f"_wanted_{id(frame):x}"
    con.register(view, frame)
    try:
        return con.execute(query.replace("$view", view), params or {}).fetchnumpy()
    finally:
        con.unregister(view)


def event_windows(
    con: duckdb.DuckDBPyConnection, user_ids, centres, before: int, after: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item indices of the events ``[centre - before, centre + after)`` of each given user:
    ``(k, seq, item_idx)`` arrays, ``k`` the position in ``user_ids``, sorted by ``(k, seq)``."""
    wanted = pd.DataFrame(
        {
            "k": np.arange(len(user_ids), dtype=np.int64),
            "user_id": pd.Series(user_ids, dtype=str).to_numpy(),
            "centre": np.asarray(centres, dtype=np.int64),
        }
    )
    got = _registered(
        con,
        wanted,
        """
        SELECT w.k, e.seq, e.item_idx
        FROM $view w JOIN users u ON u.user_id = w.user_id
             JOIN event_rows e ON e.user_idx = u.user_idx
                              AND e.seq >= w.centre - $before AND e.seq < w.centre + $after
        ORDER BY w.k, e.seq
        """,
        {"before": int(before), "after": int(after)},
    )
    return (
        np.asarray(got["k"], np.int64),
        np.asarray(got["seq"], np.int64),
        np.asarray(got["item_idx"], np.int64),
    )


def sample_users(
    con: duckdb.DuckDBPyConnection, max_events: int, random_state: int = 0
) -> tuple[np.ndarray, int]:
    """(``user_idx`` of whole users drawn at random, seeded, until ``max_events`` events (every
    user when the dataset has no more), ascending; the number of users in the dataset)."""
    users = con.execute("SELECT user_idx, n_events FROM users ORDER BY user_idx").fetchnumpy()
    idx, counts = np.asarray(users["user_idx"], np.int64), np.asarray(users["n_events"], np.int64)
    if counts.sum() > max_events:
        order = np.random.default_rng(random_state).permutation(len(idx))
        keep = order[: max(1, int(np.searchsorted(np.cumsum(counts[order]), max_events, side="right")))]
        idx = np.sort(idx[keep])
    return idx, len(counts)


def user_histories(con: duckdb.DuckDBPyConnection, user_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item_idx, offsets): the whole histories of the given users in CSR layout, in order."""
    got = _registered(
        con,
        pd.DataFrame({"user_idx": np.asarray(user_idx, np.int64)}),
        "SELECT e.user_idx, e.item_idx FROM event_rows e JOIN $view w USING (user_idx) ORDER BY e.user_idx, e.seq",
    )
    user = np.asarray(got["user_idx"], np.int64)
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.empty(0, np.int64)
    return np.asarray(got["item_idx"], np.int64), np.r_[starts, len(user)].astype(np.int64)


def shift_free_positions(con: duckdb.DuckDBPyConnection) -> np.ndarray | None:
    """Positions (``user_idx`` order) of the users without a planted change point, or None when
    the dataset has no ground truth."""
    if not con.execute("SELECT count(*) FROM truth_change_points").fetchone()[0]:
        return None
    rows = con.execute(
        "SELECT pos FROM (SELECT user_id, row_number() OVER (ORDER BY user_idx) - 1 AS pos FROM users) "
        "WHERE user_id NOT IN (SELECT user_id FROM truth_change_points) ORDER BY pos"
    ).fetchnumpy()
    return np.asarray(rows["pos"], np.int64)
