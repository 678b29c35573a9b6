"""A CSV or Parquet file to import, and the SQL that reads it.

Every read of an input file goes through ``scan_sql`` so that paths and options are bound
parameters and each format is read the same way by every step of the import.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.errors import DataError


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


def quote(identifier: str) -> str:
    """Quote a column name read from the file header (never a value)."""
    return '"' + identifier.replace('"', '""') + '"'


def first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


def scan_sql(src: TableSource) -> tuple[str, list]:
    """A table-function call reading the file, with its parameters bound.

    DuckDB treats ``*``, ``?`` and ``[`` in a path as a pattern even when bound, so
    ``check_file`` refuses such paths before any scan is built.
    """
    if src.kind == "parquet":
        return "read_parquet(?, file_row_number = true)", [str(src.path)]
    # skip = 0: the sniffer would otherwise take a later line as the header when an early row
    # is ragged, silently dropping the rows above it.
    options = (
        "delim = ?, header = ?, all_varchar = true, encoding = ?, quote = '\"', strict_mode = true, skip = 0"
    )
    params: list = [str(src.path), src.delimiter, src.header, src.encoding]
    if src.names:
        options += ", names = ?"
        params.append(list(src.names))
    return f"read_csv(?, {options})", params


def describe(con: duckdb.DuckDBPyConnection, src: TableSource) -> dict[str, str]:
    """The file's columns and their types, as the import will read them."""
    scan, params = scan_sql(src)
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan}", params).fetchall()
    except duckdb.Error as err:
        raise read_error(src, err) from None
    return {r[0]: r[1] for r in rows if r[0] != "file_row_number"}


def read_error(src: TableSource, err: duckdb.Error) -> DataError:
    """A reader error as a message naming the file and, where it can be found, the row.

    DuckDB reports a ragged CSV as "Error when sniffing file" or by a line number that
    counts the header, so the first row with the wrong number of fields is looked up here.
    """
    if isinstance(err, duckdb.InterruptException):
        raise KeyboardInterrupt
    if src.kind == "csv":
        ragged = first_ragged_row(src)
        if ragged is not None:
            row, n_fields, expected = ragged
            return DataError(
                f"has {n_fields} fields where the header has {expected} (a ragged row; "
                "quote fields that contain the delimiter)",
                file=src.label,
                row=row,
            )
        line = re.search(r"CSV Error on Line: (\d+)", str(err))
        if line:
            row = int(line.group(1)) - (1 if src.header else 0)
            return DataError(f"cannot be read as CSV: {_csv_problem(err)}", file=src.label, row=row)
    return DataError(f"cannot be read as {src.kind.upper()}: {first_line(err)}", file=src.label)


def _csv_problem(err: Exception) -> str:
    # The line after "Original Line: …" says what was wrong ("Expected Number of Columns …").
    lines = str(err).strip().splitlines()
    useful = [ln for ln in lines[1:4] if not ln.startswith("Original Line")]
    return useful[0] if useful else lines[0]


def first_ragged_row(src: TableSource) -> tuple[int, int, int] | None:
    """(row, fields, expected fields) of the first CSV row whose field count differs, or None.

    Python's csv reader runs only after DuckDB has refused a file, so its speed does not
    matter; it follows the same quoting rules (double quotes, quoted newlines).
    """
    if len(src.delimiter) != 1:
        return None  # Python's csv reader takes one-character delimiters only
    expected = len(src.names) if src.names and not src.header else None
    try:
        with open(src.path, encoding=src.encoding, newline="", errors="replace") as fh:
            rows = csv.reader(fh, delimiter=src.delimiter, quotechar='"', strict=False)
            row = 0
            for fields in rows:
                if not fields:
                    continue  # blank lines are skipped by DuckDB too
                if expected is None:
                    expected = len(fields)
                    if src.header:
                        continue
                row += 1
                if len(fields) != expected:
                    return row, len(fields), expected
    except (csv.Error, OSError):
        return None
    return None
