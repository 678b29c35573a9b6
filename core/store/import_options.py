"""What the caller asks of an import, and what the import reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[str], None]


@dataclass
class ImportOptions:
    drop_unknown_items: bool = False
    drop_duplicates: bool = False
    genre_separator: str = "|"
    timestamp_unit: str | None = None  # "s", "ms", "us" or "ns"; None: detected from the values
    # False: the name must be free when the import is swapped in; the check and the swap are
    # one step (a link that fails if the name exists), so two uploads under one new name
    # cannot both succeed.
    replace_existing: bool = True


@dataclass
class ImportReport:
    n_users: int
    n_items: int
    n_events: int
    dropped_unknown_items: int = 0
    dropped_duplicates: int = 0
    timestamps: str = ""  # how the timestamps were read, e.g. "unix milliseconds (detected …)"
    timestamp_unit: str | None = None
