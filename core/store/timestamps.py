"""Timestamp columns: how each stored type and text form becomes a UTC ``TIMESTAMP``."""

from __future__ import annotations

from core.store.table_source import TableSource, quote, scan_sql

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


def ts_expr(col: str, dtype: str, text_is_numeric: bool = False) -> str:
    """Parse a timestamp column: unix seconds (number or text) or ISO 8601 text.

    Text goes through the cheapest parse that is right for it first, and through the
    general one (trimmed, unix seconds or ISO 8601 with any offset) only where that fails:
    COALESCE evaluates an argument only for rows still NULL. ``text_is_numeric`` says which
    kind the column's first values are (``text_is_numeric``).
    """
    base = dtype.split("(")[0]
    if base in _NUMERIC:
        return f"make_timestamp(CAST(CAST({col} AS DOUBLE) * 1000000 AS BIGINT))"
    if base.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"CAST({col} AS TIMESTAMP)"
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    raw = f"CAST({col} AS VARCHAR)"
    text = f"trim({raw})"

    def unix(x: str) -> str:
        return f"make_timestamp(CAST(TRY_CAST({x} AS DOUBLE) * 1000000 AS BIGINT))"

    def zoned(x: str) -> str:
        return f"CAST(TRY_CAST({x} AS TIMESTAMPTZ) AS TIMESTAMP)"

    # A plain TIMESTAMP cast would silently drop a UTC offset ("…+02:00", "…Z"), so it is
    # used only on strings that end in none (a suffix test, far cheaper than a regex or
    # the time-zone-aware cast).
    has_offset = (
        f"(suffix({raw}, 'Z') OR {raw}[-6] IN ('+', '-') OR {raw}[-5] IN ('+', '-') "
        f"OR {raw}[-3] IN ('+', '-'))"
    )
    naive = f"CASE WHEN length({raw}) > 10 AND {has_offset} THEN NULL ELSE TRY_CAST({raw} AS TIMESTAMP) END"
    fast = unix(raw) if text_is_numeric else naive
    return f"COALESCE({fast}, {unix(text)}, {zoned(text)})"


def text_is_numeric(con, src: TableSource, column: str) -> bool:
    """Whether the first non-empty values of a text column read as numbers (unix seconds)."""
    scan, params = scan_sql(src)
    q = quote(column)
    sample = con.execute(
        f"SELECT count(*), count(TRY_CAST({q} AS DOUBLE)) FROM "
        f"(SELECT {q} FROM {scan} WHERE {q} IS NOT NULL LIMIT 1000)",
        params,
    ).fetchall()[0]
    return sample[0] > 0 and sample[1] == sample[0]
