"""Reading the input files into staging tables, checking every row on the way.

The first bad row of each kind is reported with its file, column and row number (counted
from 1 after the header, as a spreadsheet shows it).
"""

from __future__ import annotations

import duckdb

from core.errors import DataError
from core.store.file_checks import check_distinct_columns, read_error
from core.store.import_options import ImportOptions, ImportReport, Progress
from core.store.table_source import TableSource, quote, scan_sql
from core.store.timestamps import (
    EARLIEST,
    latest_allowed,
    mixed_unit_timestamp,
    odd_unit_floor,
    out_of_range_timestamp,
    read_timestamps,
    ts_expr,
    unreadable_timestamp,
)

EVENT_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "event_type")
ITEM_COLUMNS = ("item_id", "title", "genres", "description")
REQUIRED = {"events": ("user_id", "item_id", "timestamp"), "items": ("item_id", "title")}


def describe(con: duckdb.DuckDBPyConnection, src: TableSource) -> dict[str, str]:
    """The file's columns and their types, as the import will read them."""
    scan, params = scan_sql(src)
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan}", params).fetchall()
    except duckdb.Error as err:
        raise read_error(src, err) from None
    return {r[0]: r[1] for r in rows if r[0] != "file_row_number"}


def _require_columns(src: TableSource, found: dict[str, str], table: str) -> None:
    for canonical in REQUIRED[table]:
        name = src.column(canonical)
        if name not in found:
            hint = ""
            if len(found) == 1:
                only = next(iter(found))
                for delim in (";", "\t", "|", ","):
                    if delim != src.delimiter and delim in only:
                        hint = f"; the file looks {delim!r}-delimited (pass that delimiter)"
                        break
            raise DataError(f"missing; found: {', '.join(found)}{hint}", file=src.label, column=name)
    columns = EVENT_COLUMNS if table == "events" else (*ITEM_COLUMNS, "text")
    check_distinct_columns(src, [src.column(c) for c in columns])


def _refuse_nested(con, src: TableSource, found: dict[str, str], canonical: tuple[str, ...]) -> None:
    """Refuse a list, struct or map where one value per row is read: cast to text, a list of
    ids would become the id '[1, 2]'."""
    for name in (src.column(c) for c in canonical):
        dtype = found.get(name, "VARCHAR")
        if dtype.endswith("]") or dtype.startswith(("STRUCT", "MAP", "UNION")):
            scan, params = scan_sql(src)
            row = con.execute(
                f"SELECT min(src_row) FROM (SELECT {quote(name)} AS v, {_row_expr(src)} AS src_row "
                f"FROM {scan}) WHERE v IS NOT NULL",
                params,
            ).fetchall()[0][0]
            raise DataError(
                f"holds {dtype} values, not one value per row; store a single id (text or integer) "
                "in each row",
                file=src.label,
                column=name,
                row=row,
            )


def _id_expr(col: str, dtype: str) -> str:
    # Text ids are trimmed (CSV cells often carry spaces); typed ids are taken as stored.
    return f"trim({col})" if dtype == "VARCHAR" else f"CAST({col} AS VARCHAR)"


def _row_expr(src: TableSource) -> str:
    # Rows are counted from 1 after the header, as a spreadsheet would show them.
    return "file_row_number + 1" if src.kind == "parquet" else "row_number() OVER ()"


def _first_bad(con, table: str, where: str, what: str = "src_row") -> tuple | None:
    # fetchall, not fetchone: DuckDB 2 refuses new work while a result is half-read.
    rows = con.execute(f"SELECT {what} FROM {table} WHERE {where} ORDER BY src_row LIMIT 1").fetchall()
    return rows[0] if rows else None


def _raw_value(con, src: TableSource, column: str, row: int) -> str:
    scan, params = scan_sql(src)
    value = con.execute(
        f"SELECT CAST({quote(column)} AS VARCHAR) FROM "
        f"(SELECT *, {_row_expr(src)} AS src_row FROM {scan}) WHERE src_row = ?",
        [*params, row],
    ).fetchall()
    return value[0][0] if value else None


def stage_items(con, src: TableSource, opts: ImportOptions) -> None:
    found = describe(con, src)
    _require_columns(src, found, "items")
    _refuse_nested(con, src, found, ("item_id", "title"))
    scan, params = scan_sql(src)

    def opt(canonical: str) -> str:
        name = src.column(canonical)
        return f"CAST({quote(name)} AS VARCHAR)" if name in found else "NULL::VARCHAR"

    try:
        con.execute(
            f"""
            CREATE TEMP TABLE staged_items AS
            SELECT {_row_expr(src)} AS src_row,
                   trim(CAST({quote(src.column("item_id"))} AS VARCHAR)) AS item_id,
                   trim(CAST({quote(src.column("title"))} AS VARCHAR)) AS title,
                   {opt("genres")} AS genres,
                   {opt("description")} AS description,
                   {opt("text")} AS text
            FROM {scan}
            """,
            params,
        )
    except duckdb.Error as err:
        raise read_error(src, err) from None
    n = con.execute("SELECT count(*) FROM staged_items").fetchall()[0][0]
    if n == 0:
        raise DataError("has a header but no rows", file=src.label)
    bad = _first_bad(con, "staged_items", "item_id IS NULL OR item_id = ''")
    if bad:
        raise DataError("empty item id", file=src.label, column=src.column("item_id"), row=bad[0])
    bad = _first_bad(con, "staged_items", "title IS NULL OR title = ''")
    if bad:
        raise DataError("empty title", file=src.label, column=src.column("title"), row=bad[0])
    dup = con.execute(
        "SELECT item_id, list_sort(list(src_row)) FROM staged_items GROUP BY item_id "
        "HAVING count(*) > 1 ORDER BY min(src_row) LIMIT 1"
    ).fetchall()
    if dup:
        dup = dup[0]
        rows = dup[1]
        raise DataError(
            f"item id {dup[0]!r} appears again (first at row {rows[0]})",
            file=src.label,
            column=src.column("item_id"),
            row=rows[1],
        )
    con.execute(
        """
        CREATE TABLE items AS
        SELECT (row_number() OVER (ORDER BY src_row) - 1)::INTEGER AS item_idx,
               item_id, title,
               list_filter(list_transform(string_split(coalesce(genres, ''), $sep), lambda g: trim(g)),
                           lambda g: g <> '') AS categories,
               description,
               coalesce(text, title
                   || CASE WHEN coalesce(genres, '') <> ''
                           THEN '. ' || array_to_string(list_filter(list_transform(
                                string_split(genres, $sep), lambda g: trim(g)), lambda g: g <> ''), ', ')
                           ELSE '' END
                   || CASE WHEN coalesce(description, '') <> '' THEN '. ' || description ELSE '' END
               ) AS text
        FROM staged_items ORDER BY src_row
        """,
        {"sep": opts.genre_separator},
    )


def stage_events(
    con, src: TableSource, opts: ImportOptions, report: ImportReport, progress: Progress
) -> None:
    found = describe(con, src)
    _require_columns(src, found, "events")
    _refuse_nested(con, src, found, ("user_id", "item_id"))
    scan, params = scan_sql(src)
    q = {c: quote(src.column(c)) for c in EVENT_COLUMNS}
    has_rating = src.column("rating") in found
    has_type = src.column("event_type") in found
    rating = f"TRY_CAST({q['rating']} AS DOUBLE)" if has_rating else "NULL::DOUBLE"
    rating_bad = (
        f"({q['rating']} IS NOT NULL AND trim(CAST({q['rating']} AS VARCHAR)) <> '' "
        f"AND coalesce(NOT isfinite(TRY_CAST({q['rating']} AS DOUBLE)), true))"
        if has_rating
        else "false"
    )
    ts_type = found[src.column("timestamp")]
    reading = read_timestamps(con, src, src.column("timestamp"), ts_type, opts.timestamp_unit)
    report.timestamps = reading.describe()
    report.timestamp_unit = reading.unit if reading.numeric or reading.text else None
    progress("reading events")
    try:
        con.execute(
            f"""
            CREATE TEMP TABLE staged_events AS
            SELECT {_row_expr(src)} AS src_row,
                   {_id_expr(q["user_id"], found[src.column("user_id")])} AS user_id,
                   {_id_expr(q["item_id"], found[src.column("item_id")])} AS item_id,
                   {ts_expr(q["timestamp"], ts_type, reading)} AS ts,
                   {rating} AS rating, {rating_bad} AS rating_bad,
                   {f"CAST({q['event_type']} AS VARCHAR)" if has_type else "NULL::VARCHAR"} AS event_type
            FROM {scan}
            """,
            params,
        )
    except duckdb.Error as err:
        raise read_error(src, err) from None
    progress("validating events")
    n, bad_user, bad_item, bad_ts, early_late, bad_rating, odd_unit = con.execute(
        """
        SELECT count(*),
               min(src_row) FILTER (WHERE user_id IS NULL OR user_id = ''),
               min(src_row) FILTER (WHERE item_id IS NULL OR item_id = ''),
               min(src_row) FILTER (WHERE ts IS NULL OR NOT isfinite(ts)),
               arg_min([src_row::VARCHAR, ts::VARCHAR], src_row) FILTER (WHERE isfinite(ts) AND (ts < $earliest OR ts >= $latest)),
               min(src_row) FILTER (WHERE rating_bad),
               arg_min([src_row::VARCHAR, ts::VARCHAR], src_row) FILTER (WHERE ts >= $earliest AND ts < $floor)
        FROM staged_events
        """,
        {"earliest": EARLIEST, "latest": latest_allowed(), "floor": odd_unit_floor(reading)},
    ).fetchall()[0]
    if n == 0:
        raise DataError("has a header but no rows", file=src.label)
    if bad_user is not None:
        raise DataError("empty user id", file=src.label, column=src.column("user_id"), row=bad_user)
    if bad_item is not None:
        raise DataError("empty item id", file=src.label, column=src.column("item_id"), row=bad_item)
    # The first bad timestamp of either kind (unreadable, or outside 1970 … next year).
    late_row = int(early_late[0]) if early_late else None
    if bad_ts is not None and (late_row is None or bad_ts < late_row):
        raw = _raw_value(con, src, src.column("timestamp"), bad_ts)
        what = unreadable_timestamp(raw, reading)
        raise DataError(what, file=src.label, column=src.column("timestamp"), row=bad_ts)
    if late_row is not None:
        raw = _raw_value(con, src, src.column("timestamp"), late_row)
        what = out_of_range_timestamp(raw, early_late[1], reading)
        raise DataError(what, file=src.label, column=src.column("timestamp"), row=late_row)
    if odd_unit is not None:
        row = int(odd_unit[0])
        raw = _raw_value(con, src, src.column("timestamp"), row)
        what = mixed_unit_timestamp(raw, odd_unit[1], reading)
        raise DataError(what, file=src.label, column=src.column("timestamp"), row=row)
    if bad_rating is not None:
        raw = _raw_value(con, src, src.column("rating"), bad_rating)
        what = (
            f"rating {raw!r} is not a finite number"
            if _is_number(raw)
            else f"cannot parse {raw!r} as a number"
        )
        raise DataError(what, file=src.label, column=src.column("rating"), row=bad_rating)

    unknown = con.execute(
        "SELECT count(*), min(src_row), arg_min(item_id, src_row) FROM staged_events e "
        "WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = e.item_id)"
    ).fetchall()[0]
    if unknown[0]:
        if not opts.drop_unknown_items:
            raise DataError(
                f"item {unknown[2]!r} is not in the items file ({unknown[0]:,} events name "
                "unknown items; pass --drop-unknown-items to drop them)",
                file=src.label,
                column=src.column("item_id"),
                row=unknown[1],
            )
        con.execute(
            "DELETE FROM staged_events e WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = e.item_id)"
        )
        report.dropped_unknown_items = unknown[0]


def _is_number(raw: str | None) -> bool:
    try:
        float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
