"""A tiny synthetic world for the dashboard tests (imported by tests/test_app_*.py).

The synthetic world (40 users, 12 categories) comes from ``core.synthetic`` through the
real importer. Its embedding cache holds a stub item matrix written under the default
model's id (one axis per category plus noise), so planted shifts are sharp and the tests
never wait for the language model; the browser test uses the real encoder instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
NAME = "synthetic"
SHIFTS = "shifts"  # a hand-made log: user "u3" moves through four genres in 30-event blocks
SHIFTS_GENRES = ("Horror", "Sci-Fi", "Cooking", "Sports")
SHIFTS_PLANTED = (30, 60, 90)


def stub_item_matrix(items, dim: int = 32, noise: float = 0.15, random_state: int = 0) -> np.ndarray:
    """One axis per category plus Gaussian noise, L2-normalised (row i = item_idx i)."""
    cats = sorted({c for row in items["categories"] for c in row})
    rng = np.random.default_rng(random_state)
    matrix = rng.normal(scale=noise, size=(len(items), dim)).astype(np.float32)
    for i, row in enumerate(items["categories"]):
        for c in row:
            matrix[i, cats.index(c) % dim] += 1.0 / len(row)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def build_world(folder: Path) -> None:
    """Ingest the tiny synthetic world and the hand-made ``shifts`` log into ``folder``
    (SHIFT_DATA_DIR must point there), each with the stub matrix in its embedding cache."""
    from core.ingest import ingest_synthetic

    ingest_synthetic(NAME, "tiny", random_state=0)
    build_shifts(folder)
    for name in (NAME, SHIFTS):
        write_stub_embeddings(name)


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


def build_shifts(folder: Path) -> None:
    """Three users through the real importer: u3 with three planted shifts (events 30, 60,
    90 of 120), u1 with one (event 40 of 80) and a stable u0 (60 events)."""
    import pandas as pd

    from core import store

    rng = np.random.default_rng(1)
    items = pd.DataFrame(
        [(f"{g[:3].lower()}{j}", f"{g} title {j}", g) for g in SHIFTS_GENRES for j in range(12)],
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
    history("u3", [(g, 30) for g in SHIFTS_GENRES])
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    # Same item twice at one timestamp cannot happen (timestamps are strictly increasing).
    src = folder / "shifts_src"
    src.mkdir(exist_ok=True)
    items.to_csv(src / "items.csv", index=False)
    events.to_csv(src / "events.csv", index=False)
    truth = pd.DataFrame(
        {
            "user_id": ["u1"] + ["u3"] * 3,
            "event_index": [40, *SHIFTS_PLANTED],
            "width": 1,
            "from_category": ["Horror", *SHIFTS_GENRES[:3]],
            "to_category": ["Sports", *SHIFTS_GENRES[1:]],
        }
    )
    labels = pd.DataFrame({"user_id": ["u0", "u1", "u3"], "kind": ["stable", "abrupt", "repeated"]})
    store.build_dataset(
        store.dataset_path(SHIFTS),
        SHIFTS,
        "hand-made test log",
        store.TableSource(src / "events.csv"),
        store.TableSource(src / "items.csv"),
        ground_truth=truth,
        user_labels=labels,
    )


def write_stub_projection(name: str, matrix: np.ndarray) -> np.ndarray:
    """A stored map for the Projection page test: the first two principal axes, not UMAP
    (fitting UMAP is tested in test_projection.py; its numba start-up costs ~30 s)."""
    from core.artefacts import store_projection
    from core.projection import ItemProjection

    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = ItemProjection()
    proj.embedding_ = (centred @ vt[:2].T).astype(np.float32)
    store_projection(name, proj, matrix)
    return proj.embedding_


_BUILT: dict[str, Path] = {}


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    # Each test module imports this fixture (a separate fixture per module), so the folder
    # is remembered here to build the world once per session. Tests only read it.
    if "world" not in _BUILT:
        folder = tmp_path_factory.mktemp("dashboard_data")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SHIFT_DATA_DIR", str(folder))
            build_world(folder)
        _BUILT["world"] = folder
    return _BUILT["world"]


@pytest.fixture
def world(world_dir, monkeypatch) -> Path:
    """SHIFT_DATA_DIR -> the tiny world (whose embedding cache holds the stub matrix)."""
    monkeypatch.setenv("SHIFT_DATA_DIR", str(world_dir))
    return world_dir


def values(data) -> np.ndarray:
    """A trace's x/y from a Plotly JSON spec (numpy arrays arrive base64-encoded)."""
    import base64

    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.asarray(data)
