"""Where datasets live on disk, and connections to them.

One DuckDB file per dataset, ``<data_dir>/<name>.duckdb``, plus a folder of derived
artefacts beside it, ``<name>.cache/`` (embeddings, projections, calibrations), so that
writers of derived data never need a read-write connection to a database the app reads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from core.errors import DatasetNotFound, DatasetUnreadable, ShiftError

# One line of letters, digits, '.', '_' and '-', starting with a letter or digit (so never a
# hidden file nor an option), checked with fullmatch: "$" would let a trailing newline in.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_REPO_ROOT = Path(__file__).resolve().parents[2]
_CATALOG = "dataset"  # the attached file's name inside a reader's in-memory database

# Tables besides the three the importer creates with CREATE TABLE AS:
#   items(item_idx, item_id, title, categories VARCHAR[], description, text)
#   users(user_idx, user_id, n_events, first_ts, last_ts)
#   event_rows(user_idx, seq, item_idx, ts, rating, event_type): integer keys only, stored in
#       per-user order (sorting with the id strings made imports ~1.7x slower)
# and the view ``events`` over them (EVENTS_VIEW below), for anyone querying the file directly.
# The importer's last step adds ``datasets.content_version`` (core/store/content_version.py).
SCHEMA = """
CREATE TABLE datasets (
    name VARCHAR, source VARCHAR, created TIMESTAMP,
    n_users BIGINT, n_items BIGINT, n_events BIGINT,
    has_ground_truth BOOLEAN, notes VARCHAR
);
CREATE TABLE truth_change_points (
    user_id VARCHAR, event_index INTEGER, width INTEGER,
    from_category VARCHAR, to_category VARCHAR
);
CREATE TABLE user_labels (user_id VARCHAR, kind VARCHAR);
"""

# Events with their ids, as pipelines and notebooks expect them; the package itself reads
# event_rows, which needs no join.
EVENTS_VIEW = """
CREATE VIEW events AS
SELECT e.user_idx, u.user_id, e.seq, e.item_idx, i.item_id, e.ts, e.rating, e.event_type
FROM event_rows e JOIN users u USING (user_idx) JOIN items i USING (item_idx)
"""


def data_dir() -> Path:
    """The folder holding every dataset: ``$SHIFT_DATA_DIR`` or the repository's ``data/``."""
    path = _data_dir_setting()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ShiftError(f"the data folder {path} is a file, not a folder; {_DATA_DIR_HINT}") from None
    except OSError as err:
        raise ShiftError(
            f"the data folder {path} cannot be made: {err.strerror or err}; {_DATA_DIR_HINT}"
        ) from None
    if not path.is_dir():  # a dangling link, a path through a file
        raise ShiftError(f"the data folder {path} is not a folder; {_DATA_DIR_HINT}")
    return path


_DATA_DIR_HINT = "set SHIFT_DATA_DIR to a folder you can write (or unset it for the repository's data/)"


def _data_dir_setting() -> Path:
    return Path(os.environ.get("SHIFT_DATA_DIR", _REPO_ROOT / "data"))


def store_owned(path: str | os.PathLike) -> str | None:
    """Why writing ``path`` would destroy a dataset or a cache (None: it would not).

    Exports (``detect --out``, ``evaluate --out``) must never land on a dataset's database
    (its ``.duckdb``, WAL or import temporary file) nor inside a dataset's ``.cache/``:
    checked on the resolved path (symbolic links followed) and, for a file that exists, by
    identity (a hard link to a database is the database).
    """
    folder = _data_dir_setting()
    try:
        folder, resolved = folder.resolve(), Path(path).resolve()
    except (OSError, RuntimeError):  # a symbolic-link loop: the writer will report it
        return None
    try:
        parts = resolved.relative_to(folder).parts
    except ValueError:
        linked = [db for db in folder.glob("*.duckdb") if resolved.is_file() and _same_file(resolved, db)]
        return f"{path} is the database of dataset {linked[0].stem!r} (a link to it)" if linked else None
    if not parts:
        return f"{path} is the data folder itself"
    top = parts[0]
    if top.endswith(".cache"):
        return f"{path} is inside {folder / top}, the derived files of dataset {top[: -len('.cache')]!r}"
    if ".duckdb" in top:
        return f"{path} is a dataset database (or its journal) in the data folder {folder}"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_name(name: str) -> str:
    """Dataset names become file names, so only a safe alphabet is accepted."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ShiftError(
            f"dataset name {name!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return name


def dataset_path(name: str) -> Path:
    return data_dir() / f"{check_name(name)}.duckdb"


def cache_dir(name: str) -> Path:
    """Folder of derived artefacts of a dataset, created on first use."""
    path = data_dir() / f"{check_name(name)}.cache"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ShiftError(
            f"{path} is a file, but it is where the derived files of {name!r} belong (a folder); "
            "move it away and they are rebuilt"
        ) from None
    return path


def dataset_exists(name: str) -> bool:
    return dataset_path(name).exists()


def connect(name: str, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a dataset's database; readers get read-only connections (many may coexist).

    A reader always sees the file that is at the path *now*. ``duckdb.connect(path)`` would
    not: DuckDB keeps one database instance per path in a process while any connection to
    it is open and hands that instance out again, so after a re-import (the importer
    renames a new file over the old one) a reader would be served the replaced file. A
    read-only connection is therefore a fresh in-memory database that ATTACHes the file
    READ_ONLY and makes it the default catalog (``USE``); each ATTACH opens the file anew.
    A cursor of it starts in the in-memory catalog again: take one with :func:`cursor`.
    """
    path = dataset_path(name)
    if not path.exists():
        raise DatasetNotFound(
            f"no dataset named {name!r} under {data_dir()}; create it with: python -m core ingest {name} …"
        )
    try:
        if not read_only:
            con = duckdb.connect(str(path))
        else:
            con = duckdb.connect(":memory:")
            con.execute(f"ATTACH $path AS {_CATALOG} (READ_ONLY)", {"path": str(path)})
            con.execute(f"USE {_CATALOG}")
    except (duckdb.IOException, duckdb.InvalidInputException, duckdb.SerializationException) as err:
        # Another program's file, a truncated one, a folder named like a dataset.
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatasetUnreadable(
            f"{path} is not a readable dataset database ({detail}); re-import it with "
            f"python -m core ingest {name} …, or move the file away"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of a :func:`connect` connection (one per thread), reading the same dataset."""
    cur = con.cursor()
    if cur.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = $c", {"c": _CATALOG}
    ).fetchone()[0]:
        cur.execute(f"USE {_CATALOG}")
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def list_dataset_names() -> list[str]:
    return sorted(p.stem for p in data_dir().glob("*.duckdb") if _NAME.fullmatch(p.stem))
