"""The disk cache of fitted population detectors: reused across processes, never stale."""

import numpy as np
import pytest

from core.detectors.base import Detector
from core.fitted_detectors import fit_path, fitted_population

SHIFTS = "shifts"  # the hand-made log of the dashboard world (conftest.py)


@pytest.fixture
def shifts(world_dir, tmp_path, monkeypatch, stub_embeddings):
    """A private copy of the hand-made log, so cache files written here touch no other test."""
    import shutil

    shutil.copy(world_dir / f"{SHIFTS}.duckdb", tmp_path / f"{SHIFTS}.duckdb")
    monkeypatch.setenv("SHIFT_DATA_DIR", str(tmp_path))
    return stub_embeddings(SHIFTS)


def test_second_call_loads_the_fit_from_disk(shifts, monkeypatch):
    first = fitted_population(SHIFTS, "two_window", shifts)
    assert fit_path(SHIFTS, "two_window", shifts).exists()
    assert sorted(first.detector.predict(first.default_threshold).event_index.tolist()) == [30, 40, 60, 90]

    def refit(*args, **kwargs):
        raise AssertionError("refitted although a cached fit exists")

    monkeypatch.setattr(Detector, "fit", refit)
    monkeypatch.setattr(Detector, "score_signal", refit)
    second = fitted_population(SHIFTS, "two_window", shifts)
    np.testing.assert_array_equal(second.detector.scores_, first.detector.scores_)
    np.testing.assert_array_equal(second.calibration.thresholds, first.calibration.thresholds)


def test_other_features_or_detector_get_their_own_fit(shifts):
    other = shifts[::-1].copy()
    assert fit_path(SHIFTS, "two_window", shifts) != fit_path(SHIFTS, "two_window", other)
    assert fit_path(SHIFTS, "two_window", shifts) != fit_path(SHIFTS, "zscore", shifts)
    fit = fitted_population(SHIFTS, "genre_histogram", shifts)
    assert fit.items.shape == (48, 4)  # genre histograms, not the embeddings passed in
