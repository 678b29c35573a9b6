"""A CSV or Parquet file to import, and the SQL that reads it.

Every read of an input file goes through ``scan_sql`` so that paths and options are bound
parameters and each format is read the same way by every step of the import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
