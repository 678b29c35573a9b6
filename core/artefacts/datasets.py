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


def shift_free_users(name: str) -> np.ndarray | None:
    """Positions (``user_idx`` order) of the users a dataset's ground truth marks as having no
    change, or None when the dataset has no ground truth (every real log).

    A detector calibrated on real histories counts every alarm on them as false. On a real log
    most users do not change abruptly, so all its users make the null sample; a planted world
    (the synthetic one: 45% of its users shift by construction) would instead calibrate on its
    own planted shifts and flag nothing, so there the null sample is its shift-free users.
    """
    with store.connect(name) as con:
        return store.shift_free_positions(con)
