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


# =============================================================================================
# Dashboard world: the data the dashboard's tests (AppTests, charts, concurrency) and a few core
# tests run on. Built once per session in a tmp folder that no test writes to; a test that
# writes (a stored benchmark, a projection, an upload) takes `world_copy`, its own copy.
#
# The synthetic world (40 users, 12 categories) comes from core.synthetic through the real
# importer, next to a hand-made log ("shifts"). Their embedding caches hold a stub item matrix
# written under the default model's id (one axis per category plus noise), so planted shifts
# are sharp and the tests never wait for the language model; the browser test and the encode
# test use the real encoder instead.
# =============================================================================================

import shutil  # noqa: E402
from dataclasses import dataclass  # noqa: E402

DASHBOARD_APP = str(Path(__file__).resolve().parents[1] / "app.py")


@dataclass(frozen=True)
class DashboardWorld:
    """Where the world is, and what it holds."""

    folder: Path
    app: str = DASHBOARD_APP  # the entry point AppTests run
    name: str = "synthetic"  # 40 users; user "30" shifts abruptly at event 28 of 55
    shifts: str = "shifts"  # u3 moves through four genres in 30-event blocks; u1 once; u0 stable
    shifts_genres: tuple[str, ...] = ("Horror", "Sci-Fi", "Cooking", "Sports")
    shifts_planted: tuple[int, ...] = (30, 60, 90)


def stub_item_matrix(items, dim: int = 32, noise: float = 0.15, random_state: int = 0) -> np.ndarray:
    """One axis per category plus Gaussian noise, L2-normalised (row i = item_idx i)."""
    cats = sorted({c for row in items["categories"] for c in row})
    rng = np.random.default_rng(random_state)
    matrix = rng.normal(scale=noise, size=(len(items), dim)).astype(np.float32)
    for i, row in enumerate(items["categories"]):
        for c in row:
            matrix[i, cats.index(c) % dim] += 1.0 / len(row)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def write_stub_embeddings(name: str) -> np.ndarray:
    """Put the stub matrix into the dataset's embedding cache under the default model id, so
    every reader (cached_item_matrix, item_matrix, the detectors) gets it without encoding."""
    from core import store
    from core.embeddings import text_hash, write_cache
    from core.encoder import model_id_for

    with store.connect(name) as con:
        items = store.load_items(con)
    matrix = stub_item_matrix(items)
    hashes = np.array([text_hash(t) for t in items["text"]], dtype=object)
    _, first = np.unique(hashes, return_index=True)
    write_cache(name, model_id_for(None), hashes[first], matrix[first])
    return matrix


def write_stub_projection(name: str, matrix: np.ndarray) -> np.ndarray:
    """A stored map for the Projection page: the first two principal axes, not UMAP (fitting
    UMAP is tested in test_projection.py; its numba start-up costs ~30 s)."""
    from core.artefacts import store_projection
    from core.projection import ItemProjection

    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = ItemProjection()
    proj.embedding_ = (centred @ vt[:2].T).astype(np.float32)
    store_projection(name, proj, matrix)
    return proj.embedding_


def _build_shifts(world: DashboardWorld) -> None:
    """Three users through the real importer: u3 with three planted shifts (events 30, 60,
    90 of 120), u1 with one (event 40 of 80) and a stable u0 (60 events)."""
    import pandas as pd

    from core import store

    rng = np.random.default_rng(1)
    genres = world.shifts_genres
    items = pd.DataFrame(
        [(f"{g[:3].lower()}{j}", f"{g} title {j}", g) for g in genres for j in range(12)],
        columns=["item_id", "title", "genres"],
    )
    rows = []

    def history(user: str, blocks: list[tuple[str, int]]) -> None:
        seq = [g for g, n in blocks for _ in range(n)]
        for t, g in enumerate(seq):
            rows.append(
                (
                    user,
                    f"{g[:3].lower()}{rng.integers(12)}",
                    1_700_000_000 + 3600 * t,
                    int(rng.integers(3, 6)),
                )
            )

    history("u0", [("Cooking", 60)])
    history("u1", [("Horror", 40), ("Sports", 40)])
    history("u3", [(g, 30) for g in genres])
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    src = world.folder / "shifts_src"
    src.mkdir(exist_ok=True)
    items.to_csv(src / "items.csv", index=False)
    events.to_csv(src / "events.csv", index=False)
    truth = pd.DataFrame(
        {
            "user_id": ["u1"] + ["u3"] * 3,
            "event_index": [40, *world.shifts_planted],
            "width": 1,
            "from_category": ["Horror", *genres[:3]],
            "to_category": ["Sports", *genres[1:]],
        }
    )
    labels = pd.DataFrame({"user_id": ["u0", "u1", "u3"], "kind": ["stable", "abrupt", "repeated"]})
    store.build_dataset(
        store.dataset_path(world.shifts),
        world.shifts,
        "hand-made test log",
        store.TableSource(src / "events.csv"),
        store.TableSource(src / "items.csv"),
        ground_truth=truth,
        user_labels=labels,
    )


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    """The dashboard world's folder, built once per session. Read it, never write it."""
    from core.ingest import ingest_synthetic

    world = DashboardWorld(tmp_path_factory.mktemp("dashboard_world"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIFT_DATA_DIR", str(world.folder))
        ingest_synthetic(world.name, "tiny", random_state=0)
        _build_shifts(world)
        for name in (world.name, world.shifts):
            write_stub_embeddings(name)
            # Fit the default detector (and its recent-shift companion) and two_window now, so
            # that pages on the shared world read their fits instead of writing them; tests that
            # pick another detector take world_copy.
            from core.artefacts import cached_item_matrix, fitted_detector
            from core.detectors import DEFAULT, make_detector

            companion = getattr(make_detector(DEFAULT), "tentative", None)
            for detector in dict.fromkeys(d for d in (DEFAULT, companion, "two_window") if d):
                fitted_detector(name, detector, cached_item_matrix(name))
    before = _snapshot(world.folder)
    yield world.folder
    # Fails the session loudly if any test (or the app under test) wrote the shared world.
    assert _snapshot(world.folder) == before, "a test wrote the shared dashboard world; use world_copy"


def _snapshot(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def world(world_dir, monkeypatch) -> DashboardWorld:
    """SHIFT_DATA_DIR -> the shared world (read-only: take world_copy to write)."""
    monkeypatch.setenv("SHIFT_DATA_DIR", str(world_dir))
    return DashboardWorld(world_dir)


@pytest.fixture
def world_copy(world_dir, tmp_path, monkeypatch) -> DashboardWorld:
    """SHIFT_DATA_DIR -> this test's own copy of the world, free to write."""
    folder = tmp_path / "world"
    shutil.copytree(world_dir, folder)
    monkeypatch.setenv("SHIFT_DATA_DIR", str(folder))
    return DashboardWorld(folder)


@pytest.fixture
def dashboard_app() -> str:
    """The dashboard's entry point, for AppTests on a data folder other than the world."""
    return DASHBOARD_APP


@pytest.fixture
def stub_matrix():
    """The stub item matrix of a catalogue: ``stub_matrix(items) -> (n_items, 32)``."""
    return stub_item_matrix


@pytest.fixture
def stub_embeddings():
    """Write the stub matrix into a dataset's embedding cache: ``stub_embeddings(name)``."""
    return write_stub_embeddings


@pytest.fixture
def stub_projection():
    """Store a PCA map as the dataset's projection: ``stub_projection(name, matrix)``."""
    return write_stub_projection


@pytest.fixture
def plotly_values():
    """A trace's x/y from a Plotly JSON spec (numpy arrays arrive base64-encoded)."""
    import base64

    def values(data) -> np.ndarray:
        if isinstance(data, dict) and "bdata" in data:
            return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        return np.asarray(data)

    return values
