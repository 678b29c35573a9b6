"""Events in per-user order with integer keys, and the duplicate check that rides on that order."""

from __future__ import annotations

from core.errors import DataError
from core.store.connection import EVENTS_VIEW
from core.store.import_options import ImportOptions, ImportReport, Progress
from core.store.table_source import TableSource


def build_events(con) -> None:
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


def find_duplicates(con, src: TableSource, opts: ImportOptions, report: ImportReport) -> bool:
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


def order_events(
    con, src: TableSource, opts: ImportOptions, report: ImportReport, progress: Progress
) -> None:
    """Build ``users`` and ``event_rows`` from the validated ``staged_events``, and the ``events`` view."""
    progress("ordering events per user")
    build_events(con)
    if find_duplicates(con, src, opts, report):
        con.execute("DROP TABLE event_rows; DROP TABLE users")
        build_events(con)
    con.execute("ALTER TABLE event_rows DROP COLUMN tie")
    con.execute(EVENTS_VIEW)
    report.n_events = con.execute("SELECT count(*) FROM event_rows").fetchall()[0][0]
    report.n_users = con.execute("SELECT count(*) FROM users").fetchall()[0][0]
