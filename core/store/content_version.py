"""A dataset's version is its content: a digest of every stored row, computed in DuckDB.

Derived artefacts (fits, projections) are keyed by this version, so a re-import of other
data under the same name gets new artefacts, and a re-import of identical data keeps them.
File times are no substitute: a copy or a restore changes them, and two imports within
one clock tick share them.

Each table contributes its row count and an order-independent sum of DuckDB's ``hash()``
of every row (sums, not XOR, so two identical rows do not cancel). DuckDB does not promise
``hash()`` stays the same across its releases; a new release can only change the version,
which costs a rebuild of the artefacts, never a stale one.
"""

from __future__ import annotations

import hashlib

import duckdb

# Fixed table list (identifiers never come from input). Every row is hashed whole.
_TABLES = ("items", "users", "event_rows", "truth_change_points", "user_labels")
_DIGEST_SQL = " UNION ALL ".join(
    f"SELECT '{t}' AS t, count(*) AS n, coalesce(sum(hash(x)::HUGEINT), 0)::VARCHAR AS s FROM {t} x"
    for t in _TABLES
)


def compute_content_version(con: duckdb.DuckDBPyConnection) -> str:
    """Digest (16 hex digits) of every row of the dataset's tables, in any order."""
    rows = con.execute(_DIGEST_SQL).fetchall()
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()[:16]


def content_version(con: duckdb.DuckDBPyConnection) -> str:
    """The version stored at import, or (files imported before the column existed) computed now."""
    has_column = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'datasets' AND column_name = 'content_version'"
        " AND database_name = current_database()"
    ).fetchone()[0]
    if has_column:
        row = con.execute("SELECT content_version FROM datasets LIMIT 1").fetchone()
        if row is not None and row[0]:
            return str(row[0])
    return compute_content_version(con)


def stamp_content_version(con: duckdb.DuckDBPyConnection) -> str:
    """Compute the version of a freshly built database and store it in ``datasets`` (the
    importer's last step before the file is swapped in)."""
    version = compute_content_version(con)
    con.execute("ALTER TABLE datasets ADD COLUMN IF NOT EXISTS content_version VARCHAR")
    con.execute("UPDATE datasets SET content_version = $v", {"v": version})
    return version
