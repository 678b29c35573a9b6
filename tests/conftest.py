"""Shared fixtures: an isolated data folder per test, small files written on the spot, and a
four-category catalogue for the recommender tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# A four-category catalogue and histories over it, shared by the recommender, explanation
# and lift tests. Fixtures hand out the builder functions, since tests call them with
# their own parameters.
N_PER_CATEGORY = 30
FOUR_CATEGORIES = ("Horror", "Sci-Fi", "Comedy", "Drama")


def _catalogue(
    random_state: int = 0, dim: int = 16, noise: float = 0.25
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Items of category c are its centroid plus noise; returns items, vectors, category per item."""
    rng = np.random.default_rng(random_state)
    centroids = np.linalg.qr(rng.normal(size=(dim, dim)))[0][: len(FOUR_CATEGORIES)]
    category = np.repeat(np.arange(len(FOUR_CATEGORIES)), N_PER_CATEGORY)
    vectors = centroids[category] + rng.normal(scale=noise, size=(len(category), dim))
    items = pd.DataFrame(
        {
            "item_idx": np.arange(len(category)),
            "item_id": [f"i{i}" for i in range(len(category))],
            "title": [f"{FOUR_CATEGORIES[c]} film {i}" for i, c in enumerate(category)],
            "categories": [[FOUR_CATEGORIES[c]] for c in category],
        }
    )
    return items, vectors.astype(np.float32), category


def _shifted_history(category: np.ndarray, random_state: int = 1) -> tuple[np.ndarray, int]:
    """20 Horror items, then 15 Sci-Fi items: the change point is event 20."""
    rng = np.random.default_rng(random_state)
    horror = rng.choice(np.flatnonzero(category == 0), 20, replace=False)
    scifi = rng.choice(np.flatnonzero(category == 1), 15, replace=False)
    return np.concatenate([horror, scifi]), 20


def _background_events(category: np.ndarray, n_users: int = 60, random_state: int = 2):
    """Single-category users, so co-occurrence agrees with the categories."""
    rng = np.random.default_rng(random_state)
    rows = [
        rng.choice(np.flatnonzero(category == u % len(FOUR_CATEGORIES)), 12, replace=False)
        for u in range(n_users)
    ]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return np.concatenate(rows), offsets


@pytest.fixture
def catalogue():
    """``catalogue(random_state=0, dim=16, noise=0.25)`` -> items, vectors, category per item."""
    return _catalogue


@pytest.fixture
def shifted_history():
    """``shifted_history(category)`` -> 20 Horror then 15 Sci-Fi items, and the change point 20."""
    return _shifted_history


@pytest.fixture
def background_events():
    """``background_events(category)`` -> item_idx, offsets of single-category users."""
    return _background_events


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty data folder: datasets made in a test never touch the real data/."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("SHIFT_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def write_file(tmp_path):
    """Write text (or bytes) to a file under the test's tmp folder and return its path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def pytest_sessionfinish(session, exitstatus):
    # AppTests leave DuckDB connections in Streamlit's resource cache; close them before the
    # interpreter shuts down, or DuckDB's bindings report them as leaked at exit.
    import gc
    import sys

    if "streamlit" in sys.modules:
        import logging

        import streamlit as st

        logging.disable(logging.WARNING)  # "No runtime found": expected outside a server
        st.cache_resource.clear()
        st.cache_data.clear()
        logging.disable(logging.NOTSET)
    gc.collect()
