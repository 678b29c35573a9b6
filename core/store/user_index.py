"""Lookup of one user's position (``user_idx``) from their id, for single-user fetches."""

from __future__ import annotations

import duckdb

from core.errors import UnknownUser


def user_index(con: duckdb.DuckDBPyConnection, user_id: str) -> int:
    """``user_idx`` of ``user_id``; raises UnknownUser when the dataset has no such user."""
    row = con.execute("SELECT user_idx FROM users WHERE user_id = $u", {"u": str(user_id)}).fetchone()
    if row is None:
        raise UnknownUser(f"user {user_id!r} is not in this dataset")
    return int(row[0])
