"""The artefacts layer: fits and maps stored as plain data, reused across processes, rebuilt
when stale or broken, and never served for another dataset version, setting or code."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import core.derived_files as files
from core import artefacts, cli, embeddings, encoder, store
from core.detectors import DETECTORS
from core.detectors.base import Detector
from core.detectors.two_window import TwoWindow

SHIFTS = "shifts"  # the hand-made log of the dashboard world (conftest.py)


@pytest.fixture
def shifts(world_dir, tmp_path, monkeypatch, stub_embeddings):
    """A private copy of the hand-made log, so cache files written here touch no other test."""
    shutil.copy(world_dir / f"{SHIFTS}.duckdb", tmp_path / f"{SHIFTS}.duckdb")
    monkeypatch.setenv("SHIFT_DATA_DIR", str(tmp_path))
    return stub_embeddings(SHIFTS)


def _no_refit(monkeypatch):
    def refit(*args, **kwargs):
        raise AssertionError("refitted although a valid stored fit exists")

    monkeypatch.setattr(Detector, "fit", refit)
    monkeypatch.setattr(Detector, "score_signal", refit)


def _count_fits(monkeypatch) -> list:
    calls = []
    fit = Detector.fit

    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Detector, "fit", counting)
    return calls


# --------------------------------------------------------------------------- detector fits


def test_second_call_loads_the_fit_from_disk(shifts, monkeypatch):
    first = artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    assert artefacts.fit_path(SHIFTS, "two_window", shifts).exists()
    assert sorted(first.detector.predict(first.default_threshold).event_index.tolist()) == [30, 40, 60, 90]
    _no_refit(monkeypatch)
    second = artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    np.testing.assert_array_equal(second.detector.scores_, first.detector.scores_)
    np.testing.assert_array_equal(second.calibration.thresholds, first.calibration.thresholds)
    assert sorted(second.detector.predict(second.default_threshold).event_index.tolist()) == [30, 40, 60, 90]


def test_other_features_or_detector_get_their_own_fit(shifts):
    other = shifts[::-1].copy()
    assert artefacts.fit_path(SHIFTS, "two_window", shifts) != artefacts.fit_path(SHIFTS, "two_window", other)
    assert artefacts.fit_path(SHIFTS, "two_window", shifts) != artefacts.fit_path(SHIFTS, "zscore", shifts)
    fit = artefacts.fitted_detector(SHIFTS, "genre_histogram", shifts)
    assert fit.items.shape == (48, 4)  # genre histograms, not the embeddings passed in


@pytest.mark.parametrize("detector", ["kernel_cpd", "page_hinkley"])
def test_threshold_dependent_detectors_rerun_from_their_stored_state(shifts, monkeypatch, detector):
    from core.detectors.population import change_points, user_signal

    first = artefacts.fitted_detector(SHIFTS, detector, shifts)
    thresholds = [
        first.default_threshold,
        first.calibration.thresholds[len(first.calibration.thresholds) // 2],
    ]
    expected = [change_points(first, t) for t in thresholds]
    expected_user = user_signal(first, "u3", thresholds[0]).change_points
    _no_refit(monkeypatch)
    second = artefacts.fitted_detector(SHIFTS, detector, shifts)
    for t, frame in zip(thresholds, expected, strict=True):
        assert change_points(second, t).equals(frame)
    assert user_signal(second, "u3", thresholds[0]).change_points.equals(expected_user)


def test_a_changed_detector_setting_refits(shifts, monkeypatch):
    artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    calls = _count_fits(monkeypatch)
    monkeypatch.setitem(DETECTORS, "two_window", lambda: TwoWindow(h=15, metric="l2", standardize=True))
    fit = artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    assert calls == ["two_window"] and fit.detector.h == 15
    artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    assert calls == ["two_window"]  # and the new fit is the one stored


def test_a_changed_code_version_refits(shifts, monkeypatch):
    from core.artefacts import fits

    artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    calls = _count_fits(monkeypatch)
    monkeypatch.setattr(fits, "_code_version", lambda: "another-version")
    artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    assert calls == ["two_window"]


def test_code_version_follows_the_source(tmp_path):
    import types

    module = types.ModuleType("m")
    module.__file__ = str(tmp_path / "m.py")
    Path(module.__file__).write_text("x = 1\n")
    before = files.code_version(module)
    Path(module.__file__).write_text("x = 2\n")
    assert files.code_version(module) != before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "nan-calibration", "wrong-width"])
def test_a_damaged_fit_is_rebuilt(shifts, monkeypatch, damage):
    first = artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    path = artefacts.fit_path(SHIFTS, "two_window", shifts)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    else:
        manifest, arrays = files.load_npz(path)
        key = "calibration.false_alarms" if damage == "nan-calibration" else "scores"
        arrays[key] = np.full(3, np.nan)
        files.save_npz(path, files.Manifest(**json.loads(manifest)), arrays)
    calls = _count_fits(monkeypatch)
    files.take_rebuild_notices()  # only this rebuild's notice below
    again = artefacts.fitted_detector(SHIFTS, "two_window", shifts)
    assert calls == ["two_window"]
    np.testing.assert_array_equal(again.result.scores, first.result.scores)
    files.load_npz(path)  # rewritten whole
    # A front end is told, in words without the server's path (the dashboard shows it).
    (notice,) = files.take_rebuild_notices()
    assert f"{path.name!r} of dataset 'shifts'" in notice and notice.endswith("it was rebuilt.")
    assert str(path.parent) not in notice
    assert files.take_rebuild_notices() == []  # each taken once


@pytest.mark.parametrize(
    ("detector", "key"), [("kernel_cpd", "state.components"), ("page_hinkley", "state.distance")]
)
def test_a_damaged_detector_state_is_rebuilt(shifts, monkeypatch, detector, key):
    from core.detectors.population import change_points

    first = artefacts.fitted_detector(SHIFTS, detector, shifts)
    path = artefacts.fit_path(SHIFTS, detector, shifts)
    manifest, arrays = files.load_npz(path)
    arrays[key] = arrays[key][:5]
    files.save_npz(path, files.Manifest(**json.loads(manifest)), arrays)
    calls = _count_fits(monkeypatch)
    again = artefacts.fitted_detector(SHIFTS, detector, shifts)
    assert calls == [detector]
    assert change_points(again, first.default_threshold).equals(change_points(first, first.default_threshold))


def test_fits_are_stored_without_pickle(shifts):
    artefacts.fitted_detector(SHIFTS, "kernel_cpd", shifts)
    path = artefacts.fit_path(SHIFTS, "kernel_cpd", shifts)
    with np.load(path, allow_pickle=False) as stored:  # raises if any entry needs pickle
        assert {"scores", "state.components", "calibration.thresholds"} <= set(stored.files)
        # the projected trajectories are recomputed from the features, never stored (308 MB
        # for kernel_cpd_raw on MovieLens-100K)
        assert "state.z" not in stored.files


# --------------------------------------------------------------------------- embeddings


class StubEncoder:
    model_id = "stub@0123456789ab"
    dim = 4

    def __init__(self) -> None:
        self.n_encoded = 0

    def load(self):
        return self

    def encode(self, texts, progress=None):
        self.n_encoded += len(texts)
        return np.array([[len(t), t.count("e"), 1.0, 0.5] for t in texts], dtype=np.float32)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_embeddings_cache_is_re_encoded(shifts, damage):
    first = embeddings.encode_items(SHIFTS, StubEncoder())
    path = embeddings.cache_path(SHIFTS, StubEncoder.model_id)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"garbage")
    assert artefacts.cached_item_matrix(SHIFTS, StubEncoder.model_id) is None  # never served
    enc = StubEncoder()
    again = embeddings.encode_items(SHIFTS, enc)
    assert enc.n_encoded == first.n_unique_texts and again.n_cached == 0
    np.testing.assert_array_equal(again.matrix, first.matrix)
    np.testing.assert_array_equal(artefacts.cached_item_matrix(SHIFTS, StubEncoder.model_id), first.matrix)


def test_embeddings_with_nan_are_re_encoded(shifts):
    first = embeddings.encode_items(SHIFTS, StubEncoder())
    hashes, vectors = embeddings.read_cache(SHIFTS, StubEncoder.model_id)
    vectors = vectors.copy()
    vectors[0, 0] = np.nan
    embeddings.write_cache(SHIFTS, StubEncoder.model_id, hashes, vectors)
    enc = StubEncoder()
    np.testing.assert_array_equal(embeddings.encode_items(SHIFTS, enc).matrix, first.matrix)
    assert enc.n_encoded == first.n_unique_texts


# --------------------------------------------------------------------------- projection


class PcaMap:
    """Stands in for UMAP (numba's start-up costs ~30 s; UMAP is tested in test_projection.py)."""

    def __init__(self, n_neighbors=15, min_dist=0.1, random_state=42):
        self.n_neighbors, self.min_dist, self.random_state = n_neighbors, min_dist, random_state

    def fit(self, vectors):
        centred = vectors - vectors.mean(axis=0)
        self.embedding_ = (centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T).astype(np.float32)
        return self


@pytest.mark.parametrize("damage", ["truncate", "nan"])
def test_a_damaged_projection_is_rebuilt_by_the_next_command(shifts, monkeypatch, capsys, damage):
    from core.artefacts import maps

    monkeypatch.setattr(maps, "ItemProjection", PcaMap)
    assert cli.main(["project", SHIFTS]) == 0
    path = artefacts.projection_path(SHIFTS)
    first = artefacts.cached_projection(SHIFTS, shifts)
    assert first is not None
    assert cli.main(["project", SHIFTS]) == 0
    assert "already stored" in capsys.readouterr().out
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        manifest, arrays = files.load_npz(path)
        arrays["embedding"][0, 0] = np.nan
        files.save_npz(path, files.Manifest(**json.loads(manifest)), arrays)
    assert artefacts.cached_projection(SHIFTS, shifts) is None  # never served broken
    assert cli.main(["project", SHIFTS]) == 0
    assert "projected 48 items" in capsys.readouterr().out
    np.testing.assert_array_equal(artefacts.cached_projection(SHIFTS, shifts), first)


# --------------------------------------------------------------------------- digest memo


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"stamp": 7}', b"[1, 2]"])
def test_a_damaged_digest_memo_is_rebuilt(data_dir, tmp_path, damage):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 4}')
    (model / "model.safetensors").write_bytes(b"weights")
    encoder._folder_digest.cache_clear()
    first = encoder.model_id_for(model)
    memo_path = data_dir / ".model-digests.json"
    memo_path.write_bytes(damage)
    encoder._folder_digest.cache_clear()
    assert encoder.model_id_for(model) == first
    memo = json.loads(memo_path.read_text())
    assert list(memo["digests"].values()) == [first.rpartition("@")[2]]
    encoder._folder_digest.cache_clear()


# --------------------------------------------------------------------------- the data folder


def test_set_up_steps_leave_no_pickle_in_the_data_folder(shifts, monkeypatch, tmp_path):
    from core.artefacts import maps

    monkeypatch.setattr(maps, "ItemProjection", PcaMap)
    legacy = store.cache_dir(SHIFTS) / "fitted" / "two_window-0123.pkl"  # left by an earlier version
    legacy.parent.mkdir()
    legacy.write_bytes(b"old pickle")
    assert cli.main(["project", SHIFTS]) == 0
    for detector in ("two_window", "kernel_cpd", "page_hinkley", "genre_histogram"):
        assert cli.main(["detect", SHIFTS, "--detector", detector, "--out", str(tmp_path / "cp.csv")]) == 0
    written = [p for p in store.data_dir().rglob("*") if p.is_file()]
    assert any(p.suffix == ".npz" for p in written)
    assert not [p for p in written if p.suffix in (".pkl", ".pickle", ".tmp")]


# --------------------------------------------------------------------------- dataset version


def test_dataset_version_is_the_content(data_dir, write_file):
    from core.ingest import ingest_files
    from core.store import TableSource
    from core.store.content_version import compute_content_version

    events = write_file("e.csv", "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\n")
    items = write_file("i.csv", "item_id,title\na,Alien\nb,Heat\n")
    ingest_files("v", TableSource(events), TableSource(items))
    first = artefacts.dataset_version("v")
    ingest_files("v", TableSource(events), TableSource(items))  # same rows, new file and time
    assert artefacts.dataset_version("v") == first
    other = write_file("e2.csv", "user_id,item_id,timestamp\nu1,a,1\nu1,a,2\n")
    ingest_files("v", TableSource(other), TableSource(items))
    second = artefacts.dataset_version("v")
    assert second != first
    # A file imported before the column existed gets the same version, computed on read.
    import duckdb

    with duckdb.connect(str(store.dataset_path("v"))) as con:
        assert con.execute("SELECT content_version FROM datasets").fetchone()[0] == second
        con.execute("ALTER TABLE datasets DROP COLUMN content_version")
        assert compute_content_version(con) == second
    with store.connect("v") as con:
        assert store.content_version(con) == second
