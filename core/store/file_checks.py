"""Checks on an input file: before DuckDB reads it (there, a plain file, not empty, UTF-8) and
after DuckDB refused it (which row is ragged).

DuckDB's own errors for these cases are buffer offsets, "Error when sniffing file" or a
traceback; these name the file and, where it can be found, the row.
"""

from __future__ import annotations

import codecs
import csv
import errno
import os
import re
import stat
from pathlib import Path

import duckdb

from core.errors import DataError
from core.store.table_source import TableSource, first_line

# Compressed files start with these bytes (gzip, zstd, bzip2, xz, zip); read as text they would
# be "not UTF-8 (byte 0x8b)", which hides the cause.
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zX": "xz",
    b"PK\x03\x04": "zip",
}

# DuckDB expands these in a path even when the path is a bound parameter.
GLOB_CHARACTERS = "*?["


def check_file(src: TableSource) -> None:
    """Raise a ``DataError`` naming the file unless it can be imported as given."""
    path = Path(src.path)
    name = str(path)
    if any(c in name for c in GLOB_CHARACTERS):
        raise DataError(
            "file names with '*', '?' or '[' are not read (paths are taken literally, never as "
            "patterns); rename the file",
            file=name,
        )
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError("is a symbolic link to a missing file", file=name) from None
        raise DataError("file not found", file=name) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError("is a symbolic link loop", file=name) from None
        raise DataError(f"cannot be read: {err.strerror}", file=name) from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError("is a folder, not a file (give the CSV or Parquet file inside it)", file=name)
    if not stat.S_ISREG(info.st_mode):
        raise DataError("is not a regular file", file=name)
    if not os.access(path, os.R_OK):
        raise DataError("cannot be read: permission denied", file=name)
    if info.st_size == 0:
        raise DataError("the file is empty", file=src.label)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    for start, kind in _COMPRESSED.items():
        if magic.startswith(start):
            raise DataError(
                f"is {kind}-compressed; decompress it first and import the file inside", file=src.label
            )
    if src.kind == "csv" and src.encoding.lower().replace("-", "") == "utf8":
        check_utf8(src)


def check_utf8(src: TableSource) -> None:
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


def check_distinct_columns(src: TableSource, used: list[str]) -> None:
    """Refuse a header that names a column the import reads twice.

    DuckDB renames the second copy (``user_id_1``, matching names case-insensitively) and the
    import would silently read the first, so the file's own header is read here.
    """
    names = _header_names(src)
    for wanted in used:
        at = [i for i, name in enumerate(names) if name.strip().lower() == wanted.lower()]
        if len(at) > 1:
            spelled = ", ".join(f"{names[i]!r} (column {i + 1})" for i in at)
            raise DataError(
                f"named {len(at)} times among the file's columns: {spelled}; rename or remove all but one",
                file=src.label,
                column=wanted,
            )


def _header_names(src: TableSource) -> list[str]:
    if src.kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(src.path).names
    if not src.header:
        return list(src.names or [])
    encoding = "utf-8-sig" if src.encoding.lower().replace("-", "") == "utf8" else src.encoding
    with open(src.path, encoding=encoding, newline="", errors="replace") as fh:
        if len(src.delimiter) != 1:  # Python's csv reader takes one-character delimiters only
            return next((line.rstrip("\r\n").split(src.delimiter) for line in fh if line.strip()), [])
        return next((fields for fields in csv.reader(fh, delimiter=src.delimiter) if fields), [])


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
