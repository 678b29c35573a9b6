"""Read queries over a dataset's database. Every value is bound, never formatted in."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd

from core.errors import UnknownUser
from core.user_events import UserEvents


@dataclass(frozen=True, eq=False)
class EventArrays:
    """Events of a set of users in CSR layout: user ``k`` owns rows ``offsets[k]:offsets[k+1]``.

    Rows are in event order (``seq``) within each user; users are in ``user_idx`` order.
    """

    user_ids: np.ndarray  # (U,) str
    offsets: np.ndarray  # (U+1,) int64
    item_idx: np.ndarray  # (N,) int32, row of the item in the item matrix
    ts: np.ndarray  # (N,) datetime64[us]
    rating: np.ndarray  # (N,) float32, NaN where the log has no rating

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @cached_property
    def users(self) -> UserEvents:
        """Which user each event belongs to, and each user's rows and position by id."""
        return UserEvents(self.offsets, self.user_ids)

    def user_slice(self, k: int) -> slice:
        return self.users.user_slice(k)


def dataset_info(con: duckdb.DuckDBPyConnection) -> dict:
    row = con.execute("SELECT * FROM datasets LIMIT 1").fetchdf()
    return row.iloc[0].to_dict() if len(row) else {}


def load_items(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The catalogue in ``item_idx`` order (row i of the item matrix is item_idx i)."""
    return con.execute(
        "SELECT item_idx, item_id, title, categories, description, text FROM items ORDER BY item_idx"
    ).fetchdf()


def load_users(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "SELECT user_idx, user_id, n_events, first_ts, last_ts FROM users ORDER BY user_idx"
    ).fetchdf()


def user_exists(con: duckdb.DuckDBPyConnection, user_id: str) -> bool:
    return con.execute("SELECT 1 FROM users WHERE user_id = $u", {"u": str(user_id)}).fetchall() != []


def load_user_events(con: duckdb.DuckDBPyConnection, user_id: str) -> pd.DataFrame:
    """One user's events in order, joined with item titles and categories."""
    df = con.execute(
        """
        SELECT e.seq, e.ts, e.item_idx, i.item_id, i.title, i.categories, e.rating, e.event_type
        FROM event_rows e JOIN items i USING (item_idx)
        WHERE e.user_idx = (SELECT user_idx FROM users WHERE user_id = $u)
        ORDER BY e.seq
        """,
        {"u": str(user_id)},
    ).fetchdf()
    if df.empty and not user_exists(con, user_id):
        raise UnknownUser(f"user {user_id!r} is not in this dataset")
    return df


def load_user_items(con: duckdb.DuckDBPyConnection, user_id: str) -> np.ndarray:
    """One user's item indices in event order (int64): what explanations and lists need, without
    the titles and categories of :func:`load_user_events` (a fifth of its time)."""
    got = con.execute(
        "SELECT e.item_idx FROM event_rows e "
        "WHERE e.user_idx = (SELECT user_idx FROM users WHERE user_id = $u) ORDER BY e.seq",
        {"u": str(user_id)},
    ).fetchnumpy()["item_idx"]
    if len(got) == 0 and not user_exists(con, user_id):
        raise UnknownUser(f"user {user_id!r} is not in this dataset")
    items = np.array(got, np.int64)
    items.flags.writeable = False  # the dashboard shares one copy between its viewers
    return items


def load_event_arrays(
    con: duckdb.DuckDBPyConnection, user_idx_range: tuple[int, int] | None = None
) -> EventArrays:
    """Events as numpy arrays in CSR layout, for all users or ``user_idx`` in [lo, hi).

    Streaming callers pass consecutive ranges so that no more than one chunk of a
    large log is in memory at once.
    """
    lo, hi = user_idx_range if user_idx_range else (0, 2**31 - 1)
    users = con.execute(
        "SELECT user_id, n_events FROM users WHERE user_idx >= $lo AND user_idx < $hi ORDER BY user_idx",
        {"lo": lo, "hi": hi},
    ).fetchnumpy()
    ev = con.execute(
        "SELECT item_idx, ts, rating FROM event_rows WHERE user_idx >= $lo AND user_idx < $hi "
        "ORDER BY user_idx, seq",
        {"lo": lo, "hi": hi},
    ).fetchnumpy()
    counts = np.asarray(users["n_events"], dtype=np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rating = ev["rating"]
    rating = (
        np.ma.filled(rating.astype(np.float32), np.nan)
        if np.ma.isMaskedArray(rating)
        else rating.astype(np.float32)
    )
    return EventArrays(
        user_ids=np.asarray(users["user_id"], dtype=object).astype(str),
        offsets=offsets,
        item_idx=np.asarray(ev["item_idx"], dtype=np.int32),
        ts=np.asarray(ev["ts"]).astype("datetime64[us]"),
        rating=rating,
    )


def load_ground_truth(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Planted change points (synthetic data): user_id, event_index, width, from/to category."""
    return con.execute(
        "SELECT user_id, event_index, width, from_category, to_category "
        "FROM truth_change_points ORDER BY user_id, event_index"
    ).fetchdf()


def load_user_labels(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("SELECT user_id, kind FROM user_labels ORDER BY user_id").fetchdf()


def category_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per category over the whole log (an item counts once per category it has)."""
    return con.execute(
        """
        SELECT c.category, count(*) AS n_events
        FROM event_rows e JOIN (SELECT item_idx, unnest(categories) AS category FROM items) c
             USING (item_idx)
        GROUP BY c.category ORDER BY n_events DESC, c.category
        """
    ).fetchdf()
