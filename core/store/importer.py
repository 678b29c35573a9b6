"""Validated, atomic import of behaviour logs into a dataset database.

The import is built in a temporary file beside the target and swapped in with
``os.replace`` only when every check has passed, so a failed or interrupted import
leaves the previous database exactly as it was.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from core.errors import DataError
from core.store.connection import EVENTS_VIEW, SCHEMA
from core.store.content_version import stamp_content_version

EVENT_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "event_type")
ITEM_COLUMNS = ("item_id", "title", "genres", "description")
REQUIRED = {"events": ("user_id", "item_id", "timestamp"), "items": ("item_id", "title")}

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


@dataclass
class TableSource:
    """A CSV or Parquet file and how its columns map onto the canonical ones.

    ``columns`` maps canonical names (``user_id``, ``timestamp``, …) to the file's own
    names; unmapped canonical names are looked up under their own name.
    """

    path: Path
    columns: dict[str, str] = field(default_factory=dict)
    format: str | None = None  # "csv" | "parquet"; from the suffix when None
    delimiter: str = ","
    header: bool = True
    names: list[str] | None = None  # column names for header-less files
    encoding: str = "utf-8"
    display_name: str | None = None  # how errors name the file (uploads keep their name)

    @property
    def label(self) -> str:
        return self.display_name or Path(self.path).name

    @property
    def kind(self) -> str:
        if self.format:
            return self.format
        suffixes = "".join(Path(self.path).suffixes).lower()
        return "parquet" if ".parquet" in suffixes or suffixes.endswith(".pq") else "csv"

    def column(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


@dataclass
class ImportOptions:
    drop_unknown_items: bool = False
    drop_duplicates: bool = False
    genre_separator: str = "|"


@dataclass
class ImportReport:
    n_users: int
    n_items: int
    n_events: int
    dropped_unknown_items: int = 0
    dropped_duplicates: int = 0


Progress = Callable[[str], None]


def _quote(identifier: str) -> str:
    """Quote a column name read from the file header (never a value)."""
    return '"' + identifier.replace('"', '""') + '"'


def _scan_sql(src: TableSource) -> tuple[str, list]:
    """A table-function call reading the file, with its parameters bound."""
    if src.kind == "parquet":
        return "read_parquet(?, file_row_number = true)", [str(src.path)]
    options = "delim = ?, header = ?, all_varchar = true, encoding = ?, quote = '\"', strict_mode = true"
    params: list = [str(src.path), src.delimiter, src.header, src.encoding]
    if src.names:
        options += ", names = ?"
        params.append(list(src.names))
    return f"read_csv(?, {options})", params


def _check_file(src: TableSource) -> None:
    path = Path(src.path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=src.label)
    if src.kind == "csv" and src.encoding.lower().replace("-", "") == "utf8":
        _check_utf8(src)


def _check_utf8(src: TableSource) -> None:
    # DuckDB reports bad bytes by buffer offset; users need the row, so find it here.
    # Decoding 16 MiB blocks keeps this at memory speed; the line is counted only on failure.
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = 0
    with open(src.path, "rb") as fh:
        while True:
            block = fh.read(1 << 24)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                _raise_not_utf8(src, consumed + err.start - len(decoder.getstate()[0]))
            if not block:
                return
            consumed += len(block)


def _raise_not_utf8(src: TableSource, offset: int) -> None:
    with open(src.path, "rb") as fh:
        head = fh.read(offset + 1)
    line_no = head.count(b"\n", 0, offset) + 1
    row = line_no - 1 if src.header else line_no
    raise DataError(
        f"is not UTF-8 (byte {head[offset]:#04x} at line {line_no}); "
        "re-save it as UTF-8 or give its encoding",
        file=src.label,
        row=row,
    ) from None


def _describe(con: duckdb.DuckDBPyConnection, src: TableSource) -> dict[str, str]:
    scan, params = _scan_sql(src)
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan}", params).fetchall()
    except duckdb.Error as err:
        raise DataError(f"cannot be read as {src.kind.upper()}: {_first_line(err)}", file=src.label) from None
    return {r[0]: r[1] for r in rows if r[0] != "file_row_number"}


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


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


def _ts_expr(col: str, dtype: str, text_is_numeric: bool = False) -> str:
    """Parse a timestamp column: unix seconds (number or text) or ISO 8601 text.

    Text goes through the cheapest parse that is right for it first, and through the
    general one (trimmed, unix seconds or ISO 8601 with any offset) only where that fails:
    COALESCE evaluates an argument only for rows still NULL. ``text_is_numeric`` says which
    kind the column's first values are (``_text_is_numeric``).
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


def _text_is_numeric(con, src: TableSource, column: str) -> bool:
    """Whether the first non-empty values of a text column read as numbers (unix seconds)."""
    scan, params = _scan_sql(src)
    q = _quote(column)
    sample = con.execute(
        f"SELECT count(*), count(TRY_CAST({q} AS DOUBLE)) FROM "
        f"(SELECT {q} FROM {scan} WHERE {q} IS NOT NULL LIMIT 1000)",
        params,
    ).fetchall()[0]
    return sample[0] > 0 and sample[1] == sample[0]


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
    scan, params = _scan_sql(src)
    value = con.execute(
        f"SELECT CAST({_quote(column)} AS VARCHAR) FROM "
        f"(SELECT *, {_row_expr(src)} AS src_row FROM {scan}) WHERE src_row = ?",
        [*params, row],
    ).fetchall()
    return value[0][0] if value else None


def _stage_items(con, src: TableSource, opts: ImportOptions) -> None:
    found = _describe(con, src)
    _require_columns(src, found, "items")
    scan, params = _scan_sql(src)

    def opt(canonical: str) -> str:
        name = src.column(canonical)
        return f"CAST({_quote(name)} AS VARCHAR)" if name in found else "NULL::VARCHAR"

    con.execute(
        f"""
        CREATE TEMP TABLE staged_items AS
        SELECT {_row_expr(src)} AS src_row,
               trim(CAST({_quote(src.column("item_id"))} AS VARCHAR)) AS item_id,
               trim(CAST({_quote(src.column("title"))} AS VARCHAR)) AS title,
               {opt("genres")} AS genres,
               {opt("description")} AS description,
               {opt("text")} AS text
        FROM {scan}
        """,
        params,
    )
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


def _stage_events(
    con, src: TableSource, opts: ImportOptions, report: ImportReport, progress: Progress
) -> None:
    found = _describe(con, src)
    _require_columns(src, found, "events")
    scan, params = _scan_sql(src)
    q = {c: _quote(src.column(c)) for c in EVENT_COLUMNS}
    has_rating = src.column("rating") in found
    has_type = src.column("event_type") in found
    rating = f"TRY_CAST({q['rating']} AS DOUBLE)" if has_rating else "NULL::DOUBLE"
    rating_bad = (
        f"({q['rating']} IS NOT NULL AND trim(CAST({q['rating']} AS VARCHAR)) <> '' "
        f"AND TRY_CAST({q['rating']} AS DOUBLE) IS NULL)"
        if has_rating
        else "false"
    )
    ts_type = found[src.column("timestamp")]
    ts_numeric = ts_type == "VARCHAR" and _text_is_numeric(con, src, src.column("timestamp"))
    progress("reading events")
    con.execute(
        f"""
        CREATE TEMP TABLE staged_events AS
        SELECT {_row_expr(src)} AS src_row,
               {_id_expr(q["user_id"], found[src.column("user_id")])} AS user_id,
               {_id_expr(q["item_id"], found[src.column("item_id")])} AS item_id,
               {_ts_expr(q["timestamp"], ts_type, ts_numeric)} AS ts,
               {rating} AS rating, {rating_bad} AS rating_bad,
               {f"CAST({q['event_type']} AS VARCHAR)" if has_type else "NULL::VARCHAR"} AS event_type
        FROM {scan}
        """,
        params,
    )
    progress("validating events")
    n, bad_user, bad_item, bad_ts, bad_rating = con.execute(
        """
        SELECT count(*),
               min(src_row) FILTER (WHERE user_id IS NULL OR user_id = ''),
               min(src_row) FILTER (WHERE item_id IS NULL OR item_id = ''),
               min(src_row) FILTER (WHERE ts IS NULL),
               min(src_row) FILTER (WHERE rating_bad)
        FROM staged_events
        """
    ).fetchall()[0]
    if n == 0:
        raise DataError("has a header but no rows", file=src.label)
    if bad_user is not None:
        raise DataError("empty user id", file=src.label, column=src.column("user_id"), row=bad_user)
    if bad_item is not None:
        raise DataError("empty item id", file=src.label, column=src.column("item_id"), row=bad_item)
    if bad_ts is not None:
        raw = _raw_value(con, src, src.column("timestamp"), bad_ts)
        what = (
            "empty timestamp"
            if raw in (None, "")
            else (f"cannot parse {raw!r} as a timestamp (unix seconds or ISO 8601)")
        )
        raise DataError(what, file=src.label, column=src.column("timestamp"), row=bad_ts)
    if bad_rating is not None:
        raw = _raw_value(con, src, src.column("rating"), bad_rating)
        raise DataError(
            f"cannot parse {raw!r} as a number", file=src.label, column=src.column("rating"), row=bad_rating
        )

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

    progress("ordering events per user")
    _build_events(con)
    if _duplicates(con, src, opts, report):
        con.execute("DROP TABLE event_rows; DROP TABLE users")
        _build_events(con)
    con.execute("ALTER TABLE event_rows DROP COLUMN tie")
    con.execute(EVENTS_VIEW)
    report.n_events = con.execute("SELECT count(*) FROM event_rows").fetchall()[0][0]
    report.n_users = con.execute("SELECT count(*) FROM users").fetchall()[0][0]


def _build_events(con) -> None:
    """The users table, and the event_rows table in per-user order plus a ``tie`` flag (same timestamp as the
    user's previous event) that the duplicate check reads and then drops."""
    # Event order: time, then the order of the file (MovieLens has many equal timestamps).
    # Events keep only integer keys (the users and items tables map them back to ids):
    # carrying the id strings through this sort made the whole import ~1.7x slower. The
    # window emits each user's rows together and in order; readers still ORDER BY.
    con.execute(
        """
        CREATE TABLE users AS
        SELECT (row_number() OVER (ORDER BY TRY_CAST(user_id AS BIGINT) NULLS LAST, user_id) - 1)::INTEGER
                   AS user_idx,
               user_id, count(*)::INTEGER AS n_events, min(ts) AS first_ts, max(ts) AS last_ts
        FROM staged_events GROUP BY user_id
        """
    )
    con.execute(
        """
        CREATE TABLE event_rows AS
        SELECT u.user_idx,
               (row_number() OVER w - 1)::INTEGER AS seq,
               i.item_idx, e.ts, e.rating, e.event_type,
               coalesce(lag(e.ts) OVER w = e.ts, false) AS tie
        FROM staged_events e JOIN users u USING (user_id) JOIN items i USING (item_id)
        WINDOW w AS (PARTITION BY u.user_idx ORDER BY e.ts, e.src_row)
        """
    )


def _duplicates(con, src: TableSource, opts: ImportOptions, report: ImportReport) -> bool:
    """Find events with the same user, item and timestamp; raise, or drop all but the first
    of each (then True: the event tables must be rebuilt).

    Duplicates can only sit among a user's events that share a timestamp, which the
    ordering window already flagged (``tie``); only those are grouped exactly. Logs with
    distinct timestamps per user skip the grouping altogether.
    """
    if not con.execute("SELECT count(*) FROM event_rows WHERE tie").fetchall()[0][0]:
        return False
    dups = con.execute(
        """
        WITH tied AS (SELECT DISTINCT u.user_id, e.ts FROM event_rows e JOIN users u USING (user_idx)
                      WHERE e.tie)
        SELECT count(*), sum(n - 1), min(second_row), arg_min(first_row, second_row)
        FROM (SELECT count(*) AS n, min(src_row) AS first_row,
                     list_sort(list(src_row))[2] AS second_row
              FROM staged_events JOIN tied USING (user_id, ts)
              GROUP BY user_id, item_id, ts HAVING count(*) > 1)
        """
    ).fetchall()[0]
    if not dups[0]:
        return False
    if not opts.drop_duplicates:
        raise DataError(
            f"duplicate event: same user, item and timestamp as row {dups[3]} "
            f"({int(dups[1]):,} duplicates in all; pass --drop-duplicates to keep the first of each)",
            file=src.label,
            column=src.column("timestamp"),
            row=dups[2],
        )
    con.execute(
        "DELETE FROM staged_events WHERE src_row IN (SELECT src_row FROM (SELECT src_row, "
        "row_number() OVER (PARTITION BY user_id, item_id, ts ORDER BY src_row) AS k "
        "FROM staged_events) WHERE k > 1)"
    )
    report.dropped_duplicates = int(dups[1])
    return True


def build_dataset(
    target: Path,
    name: str,
    source: str,
    events: TableSource,
    items: TableSource,
    options: ImportOptions | None = None,
    ground_truth: pd.DataFrame | None = None,
    user_labels: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate ``events`` and ``items`` and write them to ``target`` atomically."""
    options = options or ImportOptions()
    progress = progress or (lambda _msg: None)
    _check_file(items)
    _check_file(events)
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    report = ImportReport(0, 0, 0)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # callers show their own progress
            con.execute(SCHEMA)
            progress("reading items")
            _stage_items(con, items, options)
            _stage_events(con, events, options, report, progress)
            report.n_items = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
            if ground_truth is not None:
                con.register("gt_df", ground_truth)
                con.execute(
                    "INSERT INTO truth_change_points SELECT user_id::VARCHAR, event_index, "
                    "width, from_category, to_category FROM gt_df"
                )
                con.unregister("gt_df")
            if user_labels is not None:
                con.register("labels_df", user_labels)
                con.execute("INSERT INTO user_labels SELECT user_id::VARCHAR, kind FROM labels_df")
                con.unregister("labels_df")
            con.execute(
                "INSERT INTO datasets VALUES ($name, $source, $created, $u, $i, $e, $gt, $notes)",
                {
                    "name": name,
                    "source": source,
                    "created": datetime.now(UTC).replace(tzinfo=None),
                    "u": report.n_users,
                    "i": report.n_items,
                    "e": report.n_events,
                    "gt": ground_truth is not None and len(ground_truth) > 0,
                    "notes": _notes(report),
                },
            )
            con.execute("DROP TABLE IF EXISTS staged_events; DROP TABLE IF EXISTS staged_items")
            stamp_content_version(con)  # the dataset's version is its content (core.artefacts)
            con.execute("CHECKPOINT")
        except duckdb.Error as err:
            raise DataError(f"import failed: {_first_line(err)}", file=events.label) from None
        finally:
            con.close()
        progress("swapping in the new database")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return report


def _notes(report: ImportReport) -> str:
    notes = []
    if report.dropped_unknown_items:
        notes.append(f"dropped {report.dropped_unknown_items} events of unknown items")
    if report.dropped_duplicates:
        notes.append(f"dropped {report.dropped_duplicates} duplicate events")
    return "; ".join(notes)
