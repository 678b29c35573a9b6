"""Timestamp columns: how each stored type and text form becomes a UTC ``TIMESTAMP``.

Numbers are unix epochs in one unit per column, detected from their magnitude (a log in
milliseconds read as seconds would land in the year 52,000) or forced by the caller;
text is ISO 8601 or a number. Every timestamp must fall between 1970 and the end of next
year, so a wrong unit or a corrupt value is refused with its row instead of imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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

# Microseconds per unit: DuckDB's make_timestamp takes microseconds.
UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
UNIT_NAMES = {
    "s": "unix seconds",
    "ms": "unix milliseconds",
    "us": "unix microseconds",
    "ns": "unix nanoseconds",
}
EARLIEST = datetime(1970, 1, 1)


def latest_allowed(now: datetime | None = None) -> datetime:
    """The first instant no longer accepted: the start of the year after next."""
    now = now or datetime.now(UTC)
    return datetime(now.year + 2, 1, 1)


def unit_for_magnitude(value: float) -> str:
    """The epoch unit of a typical timestamp value.

    Today is about 1.7e9 seconds after 1970, so each unit lives in its own band of
    magnitudes (seconds stay below 1e11 until the year 5138):

    >>> [unit_for_magnitude(v) for v in (1.6e9, 1.6e12, 1.6e15, 1.6e18, 0.0)]
    ['s', 'ms', 'us', 'ns', 's']
    """
    if value < 1e11:
        return "s"
    if value < 1e14:
        return "ms"
    if value < 1e17:
        return "us"
    return "ns"


@dataclass(frozen=True)
class TimestampReading:
    """How a timestamp column is read: its unit for numbers, and whether its text is numeric."""

    unit: str
    unit_detected: bool
    numeric: bool  # a number type, or text whose sampled values are all numbers
    text: bool  # stored as text

    def describe(self) -> str:
        how = "detected from their magnitude" if self.unit_detected else "as asked"
        if self.numeric:
            return f"{UNIT_NAMES[self.unit]} ({how})"
        if self.text:
            return f"ISO 8601 text (numbers among them as {UNIT_NAMES[self.unit]})"
        return "a timestamp column"


def read_timestamps(
    con, src: TableSource, column: str, dtype: str, unit: str | None = None
) -> TimestampReading:
    """Sample the first 1,000 values of the column to choose the fast parse and the unit."""
    base = dtype.split("(")[0]
    is_number = base in _NUMERIC
    is_text = base == "VARCHAR"
    if not (is_number or is_text):
        return TimestampReading(unit or "s", unit is None, False, False)
    scan, params = scan_sql(src)
    q = quote(column)
    value = f"TRY_CAST({q} AS DOUBLE)"
    n, n_numbers, magnitude = con.execute(
        f"SELECT count(*), count(v), quantile_disc(abs(v), 0.5) FILTER (WHERE isfinite(v)) FROM "
        f"(SELECT {value} AS v FROM {scan} WHERE {q} IS NOT NULL LIMIT 1000)",
        params,
    ).fetchall()[0]
    numeric = is_number or (n > 0 and n_numbers == n)
    if unit is None:
        return TimestampReading(unit_for_magnitude(magnitude or 0.0), True, numeric, is_text)
    return TimestampReading(unit, False, numeric, is_text)


def ts_expr(col: str, dtype: str, reading: TimestampReading) -> str:
    """Parse a timestamp column: an epoch number (number or text) or ISO 8601 text.

    Text goes through the cheapest parse that is right for it first, and through the
    general one (trimmed, epoch number or ISO 8601 with any offset) only where that fails:
    COALESCE evaluates an argument only for rows still NULL. Values that are not finite or
    do not fit a timestamp become NULL, which the validation reports with the row.
    """
    base = dtype.split("(")[0]
    factor = UNITS[reading.unit]

    def epoch(number: str) -> str:
        return f"make_timestamp(TRY_CAST({number} * {factor} AS BIGINT))"

    if base in _NUMERIC:
        return epoch(f"CAST({col} AS DOUBLE)")
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    raw = f"CAST({col} AS VARCHAR)"
    text = f"trim({raw})"

    def unix(x: str) -> str:
        return epoch(f"TRY_CAST({x} AS DOUBLE)")

    def zoned(x: str) -> str:
        return f"CAST(TRY_CAST({x} AS TIMESTAMPTZ) AS TIMESTAMP)"

    # A plain TIMESTAMP cast would silently drop a UTC offset ("…+02:00", "…Z") or a named
    # zone ("… America/New_York", "… UTC"), so it is used only on strings that end in
    # neither (suffix tests, far cheaper than a regex or the time-zone-aware cast). The
    # time-zone-aware cast converts named zones (DuckDB's ICU); an unknown one gives NULL,
    # which the validation refuses with its row.
    has_offset = (
        f"(suffix({raw}, 'Z') OR {raw}[-6] IN ('+', '-') OR {raw}[-5] IN ('+', '-') "
        f"OR {raw}[-3] IN ('+', '-') OR lower({raw}[-1]) BETWEEN 'a' AND 'z')"
    )
    naive = f"CASE WHEN length({raw}) > 10 AND {has_offset} THEN NULL ELSE TRY_CAST({raw} AS TIMESTAMP) END"
    fast = unix(raw) if reading.numeric else naive
    return f"COALESCE({fast}, {unix(text)}, {zoned(text)})"


# The lowest magnitude of each unit's band (unit_for_magnitude) is 1e8 seconds after 1970
# in every unit but seconds: a value of a lower band read in a detected unit lands before it.
BAND_START = datetime(1973, 3, 3, 9, 46, 40)


def odd_unit_floor(reading: TimestampReading) -> datetime:
    """Timestamps before this one came from a value of a smaller unit than the column's
    detected one (``1600000000`` among milliseconds reads as 1970-01-19): refused. A value
    of a larger unit reads beyond the accepted range and is refused there."""
    if reading.numeric and reading.unit_detected and reading.unit != "s":
        return BAND_START
    return EARLIEST


def mixed_unit_timestamp(raw: str | None, value: str, reading: TimestampReading) -> str:
    """Why a number of another magnitude than the rest of its column was refused."""
    try:
        other = UNIT_NAMES[unit_for_magnitude(abs(float(raw)))]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        other = "another unit"
    return (
        f"timestamp {raw!r} looks like {other} among {UNIT_NAMES[reading.unit]} (read as those it is "
        f"{value}); every value of a column must share one unit: fix the row, or give "
        "--timestamp-unit to force one"
    )


def unreadable_timestamp(raw: str | None, reading: TimestampReading) -> str:
    """Why a value that gave no timestamp was refused."""
    if raw is None or raw.strip() == "":
        return "empty timestamp"
    try:
        number = float(raw)
    except ValueError:
        return f"cannot parse {raw!r} as a timestamp (a unix epoch number or ISO 8601)"
    if number != number or number in (float("inf"), float("-inf")):
        return f"timestamp {raw!r} is not a finite number"
    return f"timestamp {raw!r} is out of range as {UNIT_NAMES[reading.unit]}; {_range_rule()}{_unit_hint(reading)}"


def out_of_range_timestamp(raw: str | None, value: str, reading: TimestampReading) -> str:
    """Why a value that gave a timestamp outside 1970 … next year was refused."""
    shown = repr(raw) if raw is not None else "value"
    read_as = f" read as {UNIT_NAMES[reading.unit]}" if _looks_numeric(raw) else ""
    return f"timestamp {shown}{read_as} is {value}; {_range_rule()}{_unit_hint(reading) if read_as else ''}"


def _looks_numeric(raw: str | None) -> bool:
    try:
        float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _range_rule() -> str:
    return f"timestamps must fall between 1970-01-01 and {latest_allowed().year - 1}-12-31"


def _unit_hint(reading: TimestampReading) -> str:
    if reading.unit_detected:
        return f" (the unit, {UNIT_NAMES[reading.unit]}, was detected; give --timestamp-unit to force one)"
    return ""
