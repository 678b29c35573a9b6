"""Stored detection results (core.artefacts.results): what `detect` writes is what a reader
that fits nothing gets, one user at a time, and stale results are never served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import artefacts, limits
from core.artefacts import results
from core.cli import main
from core.detectors.population import change_points, user_signal
from core.errors import ShiftError

NAME = "synthetic"  # the dashboard world of conftest: user "30" shifts at event 28 of 55


@pytest.fixture
def detected(world_copy):
    assert main(["detect", NAME, "--out", "/dev/null"]) == 0
    return artefacts.fitted_detector(NAME)


def test_detect_stores_what_the_fit_says(detected):
    fit = detected
    for user in ("30", "1"):
        live, stored = user_signal(fit, user), artefacts.stored_user_signal(NAME, user)
        np.testing.assert_allclose(stored.score, live.score, equal_nan=True)
        pd.testing.assert_frame_equal(stored.change_points, live.change_points, check_dtype=False)
        assert stored.threshold == live.threshold
    at = artefacts.stored_user_signal(NAME, "30", threshold=0.5).change_points
    pd.testing.assert_frame_equal(at, user_signal(fit, "30", 0.5).change_points, check_dtype=False)
    for thr in (None, 0.5):
        pd.testing.assert_frame_equal(
            artefacts.stored_change_points(NAME, threshold=thr), change_points(fit, thr), check_dtype=False
        )
    assert len(artefacts.stored_change_points(NAME, threshold=-np.inf)) == len(fit.result.candidates)
    summary = artefacts.population_summary(NAME)
    from core.detectors.population import stated_threshold

    stated = stated_threshold(summary.calibration.threshold_for(1.0))
    assert stated == fit.default_threshold == summary.default_threshold
    cps = change_points(fit)
    assert summary.n_change_points == len(cps) > 0
    assert summary.users_with_change_points == cps.user_id.nunique()
    assert summary.n_events == int(fit.events.offsets[-1]) and summary.n_users == fit.events.n_users
    assert summary.change_points_per_week.sum() == len(cps)
    users = artefacts.user_table(NAME)
    assert users.n_change_points.sum() == len(cps)
    assert (
        users.set_index("user_id").loc["30", "first_change_index"]
        == cps[cps.user_id == "30"].event_index.min()
    )


def test_stale_or_missing_results_are_refused_with_the_command_to_run(detected, monkeypatch):
    monkeypatch.setattr(results, "_manifest", lambda *a: results.Manifest(results.KIND, "other-version"))
    with pytest.raises(results.NotPrecomputed, match=f"python -m core detect {NAME}"):
        artefacts.population_summary(NAME)
    with pytest.raises(results.NotPrecomputed, match="out of date"):
        artefacts.stored_user_signal(NAME, "30")


def test_big_datasets_are_read_from_stored_results(world, monkeypatch):
    assert not artefacts.needs_precomputed(NAME)
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 10)
    assert artefacts.needs_precomputed(NAME)


def test_the_dashboard_reads_stored_results_of_big_datasets_and_fits_nothing(detected, monkeypatch, request):
    import streamlit as st

    from dashboard import data

    detector = data.default_detector()
    user = "30"

    def views():
        st.cache_data.clear()
        st.cache_resource.clear()
        scale = data.threshold_scale(NAME, detector)
        d = data.user_detection(NAME, detector, None, user)
        return (
            scale,
            d,
            data.change_points(NAME, detector, scale.default),
            data.user_ranking(NAME, detector),
            data.candidates(NAME, detector),
            data.false_alarms_at(NAME, detector, scale.default),
        )

    fitted = views()
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 10)
    # The caches are keyed by content version, which the shared world has too: leave them
    # empty, or later tests would read "precomputed" for it.
    request.addfinalizer(st.cache_data.clear)
    request.addfinalizer(st.cache_resource.clear)

    def no_fit(*args, **kwargs):
        raise AssertionError("the dashboard fitted a detector on a big dataset")

    monkeypatch.setattr("core.artefacts.fitted_detector", no_fit)
    stored = views()
    assert data.precomputed(NAME)
    assert stored[0] == fitted[0]  # the same slider range and calibrated default
    np.testing.assert_allclose(stored[1].scores, fitted[1].scores, equal_nan=True)
    pd.testing.assert_frame_equal(stored[1].change_points, fitted[1].change_points, check_dtype=False)
    pd.testing.assert_frame_equal(stored[2], fitted[2], check_dtype=False)
    pd.testing.assert_frame_equal(stored[3], fitted[3], check_dtype=False)
    pd.testing.assert_frame_equal(stored[4], fitted[4], check_dtype=False)
    assert stored[5] == fitted[5]
    with pytest.raises(ShiftError, match="too big to fit"):  # views that need a fit say so
        data._fitted(NAME, detector)


@pytest.mark.parametrize("detector", ["kernel_cpd", "page_hinkley"])
def test_a_threshold_dependent_fit_answers_its_default_from_disk_without_rerunning(
    world_copy, detector, monkeypatch
):
    # kernel_cpd reruns every user's segmentation for a threshold (9-11 s on MovieLens-100K): the
    # change points at its default are stored with the fit, so the first view is a read.
    import dataclasses

    from core import results as api
    from core.detectors import make_detector

    fitted = artefacts.fitted_detector(NAME, detector)  # fitted and stored now
    expected = change_points(fitted)
    other = fitted.default_threshold * 1.5
    expected_other = change_points(fitted, other)
    calls = []
    cls = type(make_detector(detector))
    original = cls._with_rerun

    def counted(self, result):
        inner = original(self, result).rerun
        return dataclasses.replace(result, rerun=lambda t: calls.append(t) or inner(t))

    monkeypatch.setattr(cls, "_with_rerun", counted)
    again = api.open_results(NAME, detector)  # read back from disk, reruns counted
    assert isinstance(again, api.FittedResults)
    pd.testing.assert_frame_equal(again.change_points(), expected)
    assert calls == []  # the default was read, not rerun
    pd.testing.assert_frame_equal(again.change_points(other), expected_other)
    assert calls == [other]  # any other threshold still reruns, and agrees with the fresh fit


def test_the_threshold_grid_spreads_its_positions_over_the_users_strongest_scores():
    # Issue 21 row 14: a linear ε control from 0 to the top score spent most of its length where
    # nobody is flagged. Users' strongest scores like the synthetic world's: most below 3, a few
    # up to 35.
    from core.results.base import GRID_POSITIONS, threshold_grid

    rng = np.random.default_rng(0)
    maxima = np.concatenate([rng.exponential(1.0, 990), rng.uniform(3, 35, 10), [-2.0, np.nan]])
    grid = np.array(threshold_grid(maxima, 0.0, 35.1, 1.35))
    assert grid[0] == 0.0 and grid[-1] == 35.1 and 1.35 in grid
    assert np.all(np.diff(grid) > 0) and all(float(f"{g:.3g}") == g for g in grid)  # as printed
    assert abs(len(grid) - GRID_POSITIONS) <= 5
    flagged = np.array([(maxima >= g).sum() for g in grid])
    assert np.abs(np.diff(flagged)).max() <= 3 * 1000 / GRID_POSITIONS  # each step: a few users
    # what the old control did: a linear one's first steps each skipped over a hundred users
    linear = (maxima[:, None] >= np.linspace(0, 35.1, GRID_POSITIONS)).sum(axis=0)
    assert np.abs(np.diff(linear)).max() > 100
    # A log of three users: positions between each user's strongest score and the next.
    grid = np.array(threshold_grid([0.5, 2.0, 4.0], 0.0, 4.01, 2.5, positions=40))
    counts = [int(((grid > a) & (grid < b)).sum()) for a, b in ((0, 0.5), (0.5, 2.0), (2.0, 4.0))]
    assert min(counts) >= 5, counts


def test_fitted_results_remember_a_users_signal_and_share_it_read_only(detected):
    """Issue 22: the timeline asks for one user's signal twice per run and every viewer asks
    again; the results object answers from memory, the same object each time, and nobody can
    change the shared score in place."""
    from core.results import FittedResults

    results = FittedResults(detected)
    first = results.user_signal("30", 0.5)
    assert results.user_signal("30", 0.5) is first
    assert results.user_signal("30", 0.6) is not first  # another threshold: its own answer
    pd.testing.assert_frame_equal(first.change_points, user_signal(detected, "30", 0.5).change_points)
    with pytest.raises(ValueError, match="read-only"):
        first.score[0] = 1.0
    assert np.isfinite(detected.result.scores).any()  # the fit's own scores stay writable
    detected.result.scores[:1] = detected.result.scores[:1]
