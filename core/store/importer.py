"""The build step of an import: validated tables written to a dataset database atomically.

The import is built in a temporary file beside the target and swapped in with
``os.replace`` only when every check has passed, so a failed or interrupted import
leaves the previous database exactly as it was.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from core.errors import DataError, DatasetExists, ShiftError
from core.store.connection import SCHEMA
from core.store.content_version import stamp_content_version
from core.store.event_order import order_events
from core.store.file_checks import check_file
from core.store.import_options import ImportOptions, ImportReport, Progress
from core.store.table_source import TableSource, first_line
from core.store.temp_files import import_temp_path, sweep_stale_temp_files
from core.store.timestamps import UNITS
from core.store.validation import stage_events, stage_items

__all__ = ["ImportOptions", "ImportReport", "Progress", "TableSource", "build_dataset"]


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
    check_options(options, events, items)
    check_file(items)
    check_file(events)
    target = Path(target)
    sweep_stale_temp_files(target.parent)
    tmp = import_temp_path(target)
    tmp.unlink(missing_ok=True)
    report = ImportReport(0, 0, 0)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # callers show their own progress
            con.execute(SCHEMA)
            progress("reading items")
            stage_items(con, items, options)
            stage_events(con, events, options, report, progress)
            order_events(con, events, options, report, progress)
            if report.n_events == 0:
                raise DataError(_nothing_left(report, name), file=events.label)
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
        except duckdb.InterruptException:
            raise KeyboardInterrupt from None
        except RuntimeError as err:
            # DuckDB ends a running query on a signal with "Query interrupted"; the signal's
            # own handler (KeyboardInterrupt, or the CLI's SIGTERM one) usually fires first.
            if "interrupted" in str(err).lower():
                raise KeyboardInterrupt from None
            raise
        except duckdb.Error as err:
            raise DataError(f"import failed: {first_line(err)}", file=events.label) from None
        finally:
            con.close()
        progress("swapping in the new database")
        _swap_in(tmp, target, name, options.replace_existing)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return report


def _swap_in(tmp: Path, target: Path, name: str, replace: bool) -> None:
    if replace:
        os.replace(tmp, target)  # atomic: readers see the old database or the new one
        return
    try:
        os.link(tmp, target)  # create-if-absent: fails when the name exists, in one step
    except FileExistsError:
        raise DatasetExists(
            f"a dataset named {name!r} was created a moment ago (by another upload or import); "
            "choose another name, or replace that dataset"
        ) from None


def _nothing_left(report: ImportReport, name: str) -> str:
    why = []
    if report.dropped_unknown_items:
        why.append(f"{report.dropped_unknown_items:,} events of items not in the items file")
    if report.dropped_duplicates:
        why.append(f"{report.dropped_duplicates:,} duplicate events")
    dropped = f"every event was dropped ({'; '.join(why)})" if why else "no events are left"
    return f"{dropped}, which would leave {name!r} empty; nothing was imported (the items file's ids may not match)"


def check_options(options: ImportOptions, *sources: TableSource) -> None:
    """Refuse options that would silently give wrong data (an empty separator splits every character)."""
    if not options.genre_separator:
        raise ShiftError("the genre separator must not be empty (the default is '|')")
    if options.timestamp_unit is not None and options.timestamp_unit not in UNITS:
        raise ShiftError(f"unknown timestamp unit {options.timestamp_unit!r}: use one of {', '.join(UNITS)}")
    for src in sources:
        if not src.delimiter:
            raise ShiftError(f"{src.label}: the delimiter must not be empty (the default is ',')")


def _notes(report: ImportReport) -> str:
    notes = []
    if report.dropped_unknown_items:
        notes.append(f"dropped {report.dropped_unknown_items} events of unknown items")
    if report.dropped_duplicates:
        notes.append(f"dropped {report.dropped_duplicates} duplicate events")
    return "; ".join(notes)
