"""Exceptions a user can act on. Expected failures raise these; the CLI prints them plainly."""

from __future__ import annotations


class ShiftError(Exception):
    """Base class of every expected, user-facing error in this package."""


class DataError(ShiftError):
    """Bad input data: names the file, the column and the first bad row where known (row 0:
    the header line)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.file = file
        self.column = column
        self.row = row
        where = []
        if file:
            where.append(file)
        if column:
            where.append(f"column '{column}'")
        if row is not None:
            # Rows count from 1 after the header, so row 0 is the header line itself.
            where.append("header line" if row == 0 else f"row {row}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class DatasetNotFound(ShiftError):
    """A dataset name that has no database under the data folder."""


class DatasetUnreadable(ShiftError):
    """A file where a dataset's database belongs that DuckDB cannot open as one."""


class DatasetExists(ShiftError):
    """A dataset name taken already, where the caller asked not to replace it."""


class UnknownUser(ShiftError):
    """A user id that is not in the dataset."""


class Terminated(BaseException):
    """SIGTERM, raised where Python next runs (as KeyboardInterrupt is for Ctrl-C).

    A BaseException like KeyboardInterrupt, so ``except Exception`` never swallows it and
    every ``finally`` (the importer's temporary-file clean-up) still runs.
    """
