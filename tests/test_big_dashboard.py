"""The dashboard on a big dataset (issue 14): every page reads what ``detect`` stored and
loads no whole-log array, and shows the numbers the fitted path shows.

The dashboard world's 40-user dataset is made "big" by lowering the size threshold; its
calibration is made a real-history one (as on a big log) by lowering the minimum null sample.
Each page runs twice in AppTest: on the fitted path, then on the stored-results path with
fitting and whole-log loading replaced by failures; what the pages show must be the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import limits
from core.artefacts import results
from core.cli import main
from core.detectors import population

NAME, USER = "synthetic", "30"  # user "30" shifts abruptly at event 28 of 55 (conftest.py)
PAGES = ("overview", "timeline", "recommendations", "projection", "projection-population", "tour")


def _forbid(*args, **kwargs):
    raise AssertionError("the dashboard fitted a detector or loaded the whole log of a big dataset")


def _whole_log_forbidden(load):
    def guarded(con, user_idx_range=None):
        if user_idx_range is None:
            raise AssertionError("the dashboard loaded the whole event array of a big dataset")
        return load(con, user_idx_range)

    return guarded


def _clear_caches() -> None:

    st.cache_data.clear()
    st.cache_resource.clear()


def _page(app: str, page: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.session_state[f"user:{NAME}"] = USER
    if page != "overview":
        at.switch_page(f"pages/{page.removesuffix('-population')}.py")
    at.run()
    if page == "projection-population":  # the tab of shifts across users, built when opened
        at.session_state["projection_tab"] = "Shifts across users"
        at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _shown(at: AppTest) -> dict:
    """What a page shows: texts, metrics, tables, charts (their Plotly specs)."""
    return {
        "title": [t.value for t in at.title],
        "headers": [h.value for h in at.header] + [h.value for h in at.subheader],
        "metrics": [(m.label, m.value) for m in at.metric],
        "markdown": [m.value for m in at.markdown],
        "captions": [c.value for c in at.caption],
        "info": [i.value for i in at.info],
        "sidebar": [c.value for c in at.sidebar.caption],
        "tables": [d.value for d in at.dataframe],
        "charts": [(c.proto.id, c.proto.spec) for c in at.get("plotly_chart")],
    }


def _same(fitted: dict, stored: dict) -> None:
    for key in fitted:
        if key == "tables":
            assert len(fitted[key]) == len(stored[key])
            for a, b in zip(fitted[key], stored[key]):
                pd.testing.assert_frame_equal(
                    a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False
                )
        else:
            assert stored[key] == fitted[key], key


@pytest.fixture(params=["real", "shuffled"])
def detected(request, world_copy, monkeypatch, stub_projection):
    """The world detected by ``python -m core detect`` (stored results written), calibrated
    on real held-aside histories (as a big log is) or on shuffled ones; with an item map."""
    from core import embeddings

    stub_projection(NAME, embeddings.cached_item_matrix(NAME))
    if request.param == "real":
        monkeypatch.setattr(population, "MIN_REAL_NULL_USERS", 10)
        monkeypatch.setattr(population, "MIN_REAL_NULL_EVENTS", 300)
    from core.derived_files import take_rebuild_notices

    assert main(["detect", NAME, "--out", "/dev/null"]) == 0
    take_rebuild_notices()  # detect replaced the world's fits: news for no page of this test
    _clear_caches()
    request.addfinalizer(_clear_caches)  # later tests must not read "precomputed" for the world
    return world_copy, request.param


def _go_big(monkeypatch, whole_sample: bool = True) -> None:
    """Make the world a big dataset (core.limits): stored results only, no whole log loaded.
    ``whole_sample``: the recommender's user sample holds every user (as it does on a log
    whose sample bound exceeds it), so the pages can be compared with the fitted ones."""
    import functools

    from core import store

    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 10)
    if whole_sample:
        monkeypatch.setattr(
            "core.artefacts.inputs.sampled_histories",
            functools.partial(results.sampled_histories, max_events=10**9),
        )
    monkeypatch.setattr("core.results.moves.CHUNK_USERS", 3)  # several chunks of users, as at 50M
    monkeypatch.setattr("core.artefacts.fitted_detector", _forbid)
    monkeypatch.setattr("core.artefacts.fits.fitted_detector", _forbid)
    monkeypatch.setattr("core.artefacts.events", _forbid)
    monkeypatch.setattr("core.artefacts.datasets.events", _forbid)
    monkeypatch.setattr(store, "load_event_arrays", _whole_log_forbidden(store.load_event_arrays))
    _clear_caches()


def test_stored_calibration_reads_back_as_the_fits(detected):
    from core import artefacts
    from core.detectors.population import false_alarm_rates
    from core.detectors.real_null import RealCalibration

    _, null = detected
    fit = artefacts.fitted_detector(NAME)
    stored = artefacts.population_summary(NAME).calibration
    assert (
        isinstance(stored, RealCalibration)
        == (null == "real")
        == isinstance(fit.calibration, RealCalibration)
    )
    for thr in (0.0, fit.default_threshold, fit.default_threshold * 2):
        assert artefacts.stored_false_alarm_rates(NAME, threshold=thr) == false_alarm_rates(fit, thr)
    scored = artefacts.scored_users(NAME)
    finite = np.isfinite(fit.result.scores)
    per_user = np.add.reduceat(finite.astype(int), fit.result.offsets[:-1]) > 0
    counts = np.diff(fit.result.offsets)
    assert (scored.n_users, scored.n_scorable, scored.scored_events) == (
        len(counts),
        int(per_user.sum()),
        int(counts[per_user].sum()),
    )


def test_the_recent_shift_companion_is_stored_beside_the_detector(detected):
    from core import artefacts
    from core.detectors.population import tentative_alerts

    companion = artefacts.fitted_detector(NAME).detector.tentative
    assert companion
    live = tentative_alerts(artefacts.fitted_detector(NAME, companion))
    stored = artefacts.stored_change_points(NAME, companion, kind="tentative")
    assert len(live) > 0
    pd.testing.assert_frame_equal(stored, live.reset_index(drop=True), check_dtype=False)


def test_event_windows_are_the_users_events_around_the_points(world):
    from core import store
    from core.artefacts import event_windows

    with store.connect(NAME) as con:
        ev = store.load_event_arrays(con)
    pos = {u: k for k, u in enumerate(ev.user_ids)}
    users, centres = ["30", "1", "30"], [28, 3, 54]
    k, seq, item = event_windows(NAME, users, centres, 5, 4)
    for i, (u, c) in enumerate(zip(users, centres)):
        history = ev.item_idx[ev.user_slice(pos[u])]
        lo, hi = max(0, c - 5), min(len(history), c + 4)
        assert seq[k == i].tolist() == list(range(lo, hi))
        assert item[k == i].tolist() == history[lo:hi].tolist()
    # a user id is data, bound as a value: a quote in it finds nobody rather than breaking SQL
    assert len(event_windows(NAME, ["x' OR '1'='1"], [10], 5, 5)[0]) == 0


@pytest.mark.parametrize("page", PAGES)
def test_pages_of_a_big_dataset_show_the_stored_numbers_and_load_no_whole_log(detected, monkeypatch, page):
    from dashboard import data

    world, _ = detected
    fitted = _shown(_page(world.app, page))
    _go_big(monkeypatch)
    at = _page(world.app, page)
    assert data.precomputed(NAME)
    _same(fitted, _shown(at))
    if page == "projection-population":  # the before/after of the shifted users was drawn
        assert any("projection_population" in chart_id for chart_id, _ in fitted["charts"])
    if page == "overview":  # the headline is the stored population's
        summary = results.population_summary(NAME)
        assert at.subheader[0].value.startswith(f"{summary.users_with_change_points} of 40 users shifted")


def test_a_big_dataset_without_a_stored_fit_is_never_fitted_in_the_background(detected, monkeypatch):
    import shutil

    from core import store
    from dashboard import data, jobs

    _go_big(monkeypatch)
    shutil.rmtree(store.cache_dir(NAME) / "fits")  # e.g. results gathered from a Ray cluster
    before = dict(jobs.board().jobs)  # background fits of other tests in this process
    assert data.fit_status(NAME, data.default_detector()).ready
    assert before == jobs.board().jobs


def test_the_recommender_of_a_big_dataset_learns_from_a_user_sample_and_says_so(detected, monkeypatch):
    from core import artefacts
    from dashboard import downstream

    world, _ = detected
    _go_big(monkeypatch, whole_sample=False)
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 500)
    sample = artefacts.sampled_histories(NAME)
    assert 0 < sample.offsets[-1] <= 500 and sample.n_users < sample.of_users == 40
    assert downstream.recommender_sample(NAME) == (sample.n_users, 40)
    at = _page(world.app, "recommendations")
    assert any(f"random sample of {sample.n_users:,} of the 40 users" in c.value for c in at.caption)
    assert len(at.dataframe[0].value) > 0


def test_past_the_picker_limit_the_most_shifted_users_are_listed_and_any_other_is_typed(world, monkeypatch):
    from dashboard import data, sidebar

    monkeypatch.setattr(sidebar, "PICKER_LIMIT", 5)
    at = _page(world.app, "timeline")
    box = at.sidebar.selectbox(key=f"_widget_user:{NAME}")
    ranked = data.user_ranking(NAME, data.default_detector())["user_id"].tolist()
    assert box.options == ranked[:5]  # not all 40 users
    quiet = next(u for u in data.users(NAME)["user_id"] if u not in ranked[:5])
    at.sidebar.text_input(key=f"_typed_user:{NAME}").input(quiet).run()
    assert not at.exception
    assert at.sidebar.selectbox(key=f"_widget_user:{NAME}").value == quiet
    assert at.sidebar.selectbox(key=f"_widget_user:{NAME}").options == [quiet, *ranked[:5]]
    n_events = int(data.users(NAME).set_index("user_id").loc[quiet, "n_events"])
    assert next(m.value for m in at.metric if m.label == "Events") == f"{n_events:,}"
    at.sidebar.text_input(key=f"_typed_user:{NAME}").input("no-such-user").run()
    assert any("No user" in w.value for w in at.sidebar.warning)
    assert at.sidebar.selectbox(key=f"_widget_user:{NAME}").value == quiet  # the choice stays


def test_a_histogram_of_many_users_is_binned_in_the_server(monkeypatch):
    from dashboard import charts

    scores = np.r_[np.random.default_rng(0).gamma(2.0, 2.0, 5_000), np.nan]
    small = charts.score_histogram(scores, 1.0, "t").data[0]
    assert small.type == "histogram" and len(small.x) == len(scores)  # Plotly bins it
    monkeypatch.setattr(charts, "BIN_IN_SERVER_ABOVE", 1_000)
    big = charts.score_histogram(scores, 1.0, "t").data[0]
    assert big.type == "bar" and len(big.x) == 60
    counts, edges = np.histogram(scores[:-1], bins=60)
    np.testing.assert_array_equal(big.y, counts)
    np.testing.assert_allclose(big.x, (edges[:-1] + edges[1:]) / 2)
