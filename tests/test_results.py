"""Stored detection results (core.artefacts.results): what `detect` writes is what a reader
that fits nothing gets, one user at a time, and stale results are never served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dashboard_world import NAME, world, world_dir  # noqa: F401

from core import artefacts
from core.artefacts import results
from core.cli import main
from core.detectors.population import change_points, user_signal


@pytest.fixture
def detected(world, capsys):  # noqa: F811
    from dashboard_world import write_stub_embeddings

    write_stub_embeddings(NAME)
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
    summary = artefacts.population_summary(NAME)
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


def test_big_datasets_are_read_from_stored_results(world, monkeypatch):  # noqa: F811
    assert not artefacts.needs_precomputed(NAME)
    monkeypatch.setattr(results, "PRECOMPUTED_ABOVE_EVENTS", 10)
    assert artefacts.needs_precomputed(NAME)
