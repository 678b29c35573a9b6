"""Checks on an input file before DuckDB reads it: is it there, a plain file, not empty, UTF-8.

DuckDB's own errors for these cases are buffer offsets or a traceback; these name the file
and, for bad bytes, the row.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

from core.errors import DataError
from core.store.table_source import TableSource

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
