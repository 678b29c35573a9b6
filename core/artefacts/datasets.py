"""A dataset's content version, and its rows as the arrays and frames the core computes on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import store

# In-process memo of versions by file identity: a re-import renames a new file over the old
# one, which changes the inode (and the mtime), so a stale entry is never hit.
_VERSIONS: dict[tuple, str] = {}


def dataset_version(name: str) -> str:
    """The dataset's content version (stored at import; computed for older files)."""
    path = store.dataset_path(name)
    try:
        st = path.stat()
    except FileNotFoundError:
        store.connect(name).close()  # raises DatasetNotFound with the ingest hint
        raise
    key = (str(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _VERSIONS:
        with store.connect(name) as con:
            _VERSIONS[key] = store.content_version(con)
    return _VERSIONS[key]


def events(name: str) -> store.EventArrays:
    """Every event of the dataset in CSR layout."""
    with store.connect(name) as con:
        return store.load_event_arrays(con)


def items(name: str) -> pd.DataFrame:
    """The catalogue in ``item_idx`` order."""
    with store.connect(name) as con:
        return store.load_items(con)


def item_titles(name: str) -> np.ndarray:
    return items(name)["title"].to_numpy()
