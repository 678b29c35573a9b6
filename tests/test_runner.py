"""The engines of core.runner give the local engine's results: a local Ray (num_cpus=2) and a
process pool score the same change points, and scores equal within float tolerance."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import artefacts, limits, store
from core.detectors import make_detector, population
from core.detectors.population import change_points, fit_population

ray = pytest.importorskip("ray")

NAME = "runner-world"
REPO = Path(__file__).resolve().parents[1]


def _write_embeddings(name: str, dim: int = 16) -> None:
    """Seeded unit vectors per item text in the embedding cache (no language model)."""
    from core.embeddings import text_hash, write_cache
    from core.encoder import model_id_for

    with store.connect(name) as con:
        texts = store.load_items(con)["text"].astype(str)
    hashes = np.unique([text_hash(t) for t in texts])
    vectors = np.random.default_rng(0).normal(size=(len(hashes), dim)).astype(np.float32)
    write_cache(name, model_id_for(None), hashes, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from core.ingest import ingest_synthetic

    folder = tmp_path_factory.mktemp("runner")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIFT_DATA_DIR", str(folder))
        ingest_synthetic(NAME, "120", random_state=0)  # 120 users x ~50 events
        _write_embeddings(NAME)
    return folder


@pytest.fixture
def world(data_dir, monkeypatch) -> Path:
    monkeypatch.setenv("SHIFT_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with two CPUs for the module (core.runner reuses it and leaves it running)."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    yield ray
    ray.shutdown()


def _inputs(kind: str = "embedding"):
    ev = artefacts.events(NAME)
    return ev, artefacts.item_features(NAME, kind)


def _assert_same(local: population.PopulationFit, other: population.PopulationFit) -> None:
    np.testing.assert_array_equal(other.result.offsets, local.result.offsets)
    np.testing.assert_allclose(other.result.scores, local.result.scores, rtol=1e-6, atol=1e-9, equal_nan=True)
    a, b = change_points(local), change_points(other)
    pd.testing.assert_frame_equal(
        a.drop(columns="score"), b.drop(columns="score"), check_dtype=True
    )  # change points identical
    np.testing.assert_allclose(b.score, a.score, rtol=1e-6)
    assert other.default_threshold == local.default_threshold  # the same fit and calibration
    assert len(a) > 0


@pytest.mark.parametrize(
    ("detector", "big"),
    [("two_window", False), ("two_window", True), ("best_split", False)],
    ids=["whole", "sampled+chunked", "best_split"],
)
def test_ray_scores_like_the_local_engine(world, local_ray, monkeypatch, detector, big):
    from core.runner.ray_detect import RayScorer

    if big:  # the path of logs over the memory limit: fit on a sample, score in chunks
        monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 2_000)
    ev, feats = _inputs(make_detector(detector).features if detector == "best_split" else "embedding")
    local = fit_population(ev, feats, detector, dataset=NAME)
    on_ray = fit_population(ev, feats, detector, dataset=NAME, scorer=RayScorer())
    _assert_same(local, on_ray)


def test_events_are_exported_once_partitioned_by_user(world, local_ray):
    import pyarrow.dataset as pads

    from core.runner.ray_detect import export_once

    fs, folder = export_once(NAME, 4)
    table = pads.dataset(f"{folder}/events", format="parquet", partitioning="hive").to_table()
    ev = artefacts.events(NAME)
    assert table.num_rows == int(ev.offsets[-1])
    frame = table.select(["user_idx", "part"]).to_pandas()
    assert (frame.groupby("user_idx")["part"].nunique() == 1).all()  # whole users per partition
    assert frame["part"].nunique() > 1
    stamp = (Path(folder) / "_export.json").stat().st_mtime_ns
    assert export_once(NAME, 4)[1] == folder
    assert (Path(folder) / "_export.json").stat().st_mtime_ns == stamp  # not exported again


def test_process_pool_scores_like_the_local_engine(world, monkeypatch):
    from core.runner import pool

    monkeypatch.setattr(pool, "TASK_EVENTS", 1_500)  # several tasks per worker
    ev, feats = _inputs()
    local = fit_population(ev, feats, "two_window", dataset=NAME)
    pooled = fit_population(ev, feats, "two_window", dataset=NAME, scorer=pool.PoolScorer(2))
    _assert_same(local, pooled)


def test_detect_cli_with_ray_writes_the_local_csv(world, local_ray, tmp_path):
    from core.cli import main

    assert main(["detect", NAME, "--out", str(tmp_path / "local.csv")]) == 0
    for f in (store.cache_dir(NAME) / "fits").glob("*.npz"):
        f.unlink()  # the Ray run must compute, not read the local run's fit
    assert main(["detect", NAME, "--engine", "ray", "--out", str(tmp_path / "ray.csv")]) == 0
    local, on_ray = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "ray.csv")
    pd.testing.assert_frame_equal(local.drop(columns="score"), on_ray.drop(columns="score"))
    np.testing.assert_allclose(on_ray.score, local.score, rtol=1e-6)
    assert ray.is_initialized()  # the command leaves a Ray it did not start running


def test_ray_refuses_detectors_that_cannot_score_users_apart(world, local_ray):
    from core.errors import ShiftError
    from core.runner.ray_detect import RayScorer

    ev, feats = _inputs()
    with pytest.raises(ShiftError, match="run it with the local engine"):
        fit_population(ev, feats, "kernel_cpd", dataset=NAME, scorer=RayScorer())


class StubEncoder:
    """A deterministic function of the text (no model)."""

    model_id, dim, device, precision = "stub@00000000000a", 3, None, "fp32"

    def load(self) -> StubEncoder:
        return self

    def encode(self, texts, progress=None):
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_ray_encodes_every_text_in_order(local_ray):
    from ray import cloudpickle

    from core.runner import ray_encode

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file
    monkey = pytest.MonkeyPatch()
    monkey.setattr(ray_encode, "BATCH_TEXTS", 7)  # several batches over two actors
    try:
        texts = [f"item {'a' * (i % 5)} {i}" for i in range(40)]
        got = ray_encode.RayEncoder(StubEncoder(), actors=2).encode(texts)
    finally:
        monkey.undo()
    np.testing.assert_array_equal(got, StubEncoder().encode(texts))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["detect", NAME, "--address", "head:6379"], "add --engine ray"),
        (["encode", NAME, "--address", "head:6379"], "add --engine ray"),
        (["detect", NAME, "--engine", "ray", "--workers", "2"], "--workers is for the local engine"),
    ],
)
def test_engine_options_that_do_not_go_together_are_refused(world, capsys, argv, message):
    from core.cli import main

    assert main(argv) != 0
    assert message in capsys.readouterr().err
