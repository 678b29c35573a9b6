"""The dashboard's one bridge to ``core``: every cache, and the selection shared by pages.

Caching at the edge, by kind:

- ``st.cache_resource`` (one shared object per process, never mutated): read-only DuckDB
  connections, the item matrix, fitted recommenders/explainers/detectors, and the big
  trajectory arrays (tens of MB: ``st.cache_data`` would copy them on every rerun);
- ``st.cache_data`` (a copy per call): query results, one user's frames, projections.

Every cached function takes the dataset's ``version`` (the database file's mtime), so a
re-imported dataset is re-read instead of served stale. Pages never encode text and never
fit UMAP: both are set-up steps (``python -m core embed``/``project``); a page that lacks
them says which command makes them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from core import store
from core.errors import DatasetNotFound, ShiftError

DEFAULT_DATASET = "movielens-100k"


# --------------------------------------------------------------------------- store


def version(name: str) -> int:
    """Changes whenever the dataset's database file is replaced (a re-import)."""
    try:
        return store.dataset_path(name).stat().st_mtime_ns
    except FileNotFoundError:
        raise DatasetNotFound(f"no dataset named {name!r} under {store.data_dir()}") from None


@st.cache_resource(show_spinner=False, max_entries=16)
def _database(name: str, version: int) -> duckdb.DuckDBPyConnection:
    return store.connect(name, read_only=True)


def _cursor(name: str) -> duckdb.DuckDBPyConnection:
    # A DuckDB connection is not safe across threads (one per browser session); a cursor
    # is a cheap, separate connection to the same read-only database.
    return _database(name, version(name)).cursor()


@st.cache_data(show_spinner=False, ttl=10)
def dataset_names() -> list[str]:
    return store.list_dataset_names()


@st.cache_data(show_spinner=False, max_entries=16)
def _info(name: str, version: int) -> dict:
    with _cursor(name) as con:
        return store.dataset_info(con)


def info(name: str) -> dict:
    return _info(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _items(name: str, version: int) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_items(con)


def items(name: str) -> pd.DataFrame:
    """The catalogue in item_idx order."""
    return _items(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _users(name: str, version: int) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_users(con)


def users(name: str) -> pd.DataFrame:
    return _users(name, version(name))


@st.cache_data(show_spinner=False, max_entries=256)
def _user_events(name: str, version: int, user_id: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_user_events(con, user_id)


def user_events(name: str, user_id: str) -> pd.DataFrame:
    """One user's events in order with title and categories (raises UnknownUser)."""
    return _user_events(name, version(name), str(user_id))


@st.cache_data(show_spinner=False, max_entries=8)
def _ground_truth(name: str, version: int) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_ground_truth(con)


def ground_truth(name: str) -> pd.DataFrame:
    return _ground_truth(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _user_labels(name: str, version: int) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_user_labels(con)


def user_labels(name: str) -> pd.DataFrame:
    return _user_labels(name, version(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _category_counts(name: str, version: int) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.category_counts(con)


def category_counts(name: str) -> pd.DataFrame:
    return _category_counts(name, version(name))


@st.cache_resource(show_spinner=False, max_entries=4)
def _event_arrays(name: str, version: int) -> store.EventArrays:
    with _cursor(name) as con:
        return store.load_event_arrays(con)


def event_arrays(name: str) -> store.EventArrays:
    """All events in CSR layout (shared; never mutate)."""
    return _event_arrays(name, version(name))


def import_uploads(name: str, events_file, items_file, delimiter: str = ",") -> store.ImportReport:
    """Run uploaded files through the same validated, atomic importer as the CLI."""
    from core.ingest import ingest_files

    store.check_name(name)
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for upload in (events_file, items_file):
            # The upload's own name is used only as a label in error messages; the file on
            # disk gets a fixed name with the upload's suffix so parquet/csv is recognised.
            suffix = ".parquet" if upload.name.lower().endswith((".parquet", ".pq")) else ".csv"
            path = Path(tmp) / f"{len(sources)}{suffix}"
            path.write_bytes(upload.getvalue())
            sources.append(store.TableSource(path, delimiter=delimiter, display_name=upload.name))
        report = ingest_files(name, sources[0], sources[1])
    dataset_names.clear()
    return report


# --------------------------------------------------------------------------- shared selection


def _remember(key: str) -> None:
    # Widget state is dropped when a page without that widget runs, so the choice is
    # copied into a plain session key that survives page switches.
    st.session_state[key] = st.session_state[f"_widget_{key}"]


def choose_dataset() -> str | None:
    """The dataset chooser in the sidebar; the choice is shared by every page."""
    names = dataset_names()
    if not names:
        st.warning(
            f"No datasets under `{store.data_dir()}`. Create the default one with "
            "`python -m core ingest movielens-100k`, or upload files on the Overview page."
        )
        return None
    state = st.session_state
    if "dataset" not in state:
        wanted = st.query_params.get("dataset")
        state["dataset"] = wanted if wanted in names else (DEFAULT_DATASET if DEFAULT_DATASET in names else names[0])
    if state["dataset"] not in names:
        state["dataset"] = names[0]
    state["_widget_dataset"] = state["dataset"]
    name = st.sidebar.selectbox(
        "Dataset", names, key="_widget_dataset", on_change=_remember, args=("dataset",),
        help="Built-in MovieLens-100K, the synthetic world, or any imported dataset.",
    )
    st.query_params["dataset"] = name
    return name


def choose_user(name: str, ranked: list[str] | None = None) -> str:
    """User picker (type to search by id); ``ranked`` adds a "next most shifted user" button."""
    ids = users(name)["user_id"].tolist()
    state = st.session_state
    key = f"user:{name}"
    if key not in state:
        wanted = st.query_params.get("user")
        state[key] = wanted if wanted in ids else (ranked[0] if ranked else ids[0])
    if state[key] not in ids:
        state[key] = ids[0]
    if ranked:
        def next_shifted() -> None:
            current = state[key]
            pos = ranked.index(current) + 1 if current in ranked else 0
            state[key] = ranked[pos % len(ranked)]

        st.sidebar.button("Next most shifted user", on_click=next_shifted, icon=":material/skip_next:")
    state["_widget_" + key] = state[key]
    user = st.sidebar.selectbox(
        "User", ids, key="_widget_" + key, on_change=_remember, args=(key,),
        help="Type to search by user id.",
    )
    st.query_params["user"] = user
    return user


def set_user(name: str, user_id: str) -> None:
    """Select a user for every page (used by tables that link to the timeline)."""
    st.session_state[f"user:{name}"] = str(user_id)


def show_error(err: ShiftError) -> None:
    st.error(str(err), icon=":material/error:")


def as_int_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)
