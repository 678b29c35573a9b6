"""best_split in the product path: stored fit with its real calibration, logs over the memory
limit, ``detect --detector best_split`` with its two rates, tentative alerts and user states.

The log is seeded and small: 120 users of 10-80 events over four item categories, half of
the longer ones moving to another category mid-history, and user "recent" moving in its
last 6 events (too recent to be located; the tentative alert's case).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core import artefacts, cli, limits
from core.detectors import make_detector, population
from core.detectors.real_null import RealCalibration

NAME = "drifts"
CATEGORIES = ("Horror", "Sci-Fi", "Cooking", "Sports")


def _log(random_state: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(random_state)
    items = [(f"i{c}{j}", f"{g} title {j}", g) for c, g in enumerate(CATEGORIES) for j in range(15)]
    rows = []

    def history(user: str, cats: list[int]) -> None:
        t0 = 1_700_000_000 + int(rng.integers(0, 10**6))
        for k, c in enumerate(cats):
            rows.append((user, f"i{c}{int(rng.integers(0, 15))}", t0 + 3600 * k))

    for u in range(120):
        n = int(rng.integers(10, 81))
        a = int(rng.integers(0, 4))
        cats = [a] * n
        if n >= 40 and u % 2 == 0:
            b = (a + 1 + int(rng.integers(0, 3))) % 4
            tau = int(rng.integers(15, n - 14))
            cats[tau:] = [b] * (n - tau)
        # a few off-category events: real histories are never pure
        noise = rng.random(n) < 0.15
        cats = [int(rng.integers(0, 4)) if z else c for c, z in zip(cats, noise, strict=True)]
        history(f"u{u:03d}", cats)
    history("recent", [0] * 74 + [2] * 6)
    events = "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)
    item_csv = "item_id,title,genres\n" + "".join(f"{i},{t},{g}\n" for i, t, g in items)
    return events, item_csv


@pytest.fixture(autouse=True)
def small_real_null(monkeypatch):
    """This 121-user log is below the product's minimum real null sample (200 users, 20,000
    events) and tree segments for a length null (400): lowered here so the real-history path
    is tested on it; test_a_log_too_small_for_a_real_null_says_so keeps the product's values."""
    from core.detectors import best_split

    monkeypatch.setattr(population, "MIN_REAL_NULL_USERS", 20)
    monkeypatch.setattr(population, "MIN_REAL_NULL_EVENTS", 500)
    monkeypatch.setattr(best_split, "MIN_NULL_SEGMENTS", 50)


@pytest.fixture
def drifts(data_dir, write_file, stub_embeddings):
    from core.ingest import ingest_files
    from core.store import TableSource

    events, items = _log()
    ingest_files(NAME, TableSource(write_file("e.csv", events)), TableSource(write_file("i.csv", items)))
    return stub_embeddings(NAME)


def _no_fit(monkeypatch):
    def refit(*args, **kwargs):
        raise AssertionError("fitted again instead of loading the stored fit")

    monkeypatch.setattr(artefacts.fits, "fit_population", refit)


def test_best_split_is_stored_with_its_real_calibration_and_reruns_one_user(drifts, monkeypatch):
    first = artefacts.fitted_detector(NAME, "best_split")
    cal = first.calibration
    assert isinstance(cal, RealCalibration) and cal.null == "real"
    assert (cal.n_users, cal.check["n_users"]) == (61, 60)  # 121 users: half set the curve, half check it
    t = first.default_threshold
    # 1.98617 calibrated, stated rounded up to three significant digits
    assert cal.threshold_for(1.0) == pytest.approx(1.98617, abs=1e-5) and t == 1.99
    assert cal.rates_at(t) == pytest.approx((0.70998, 0.03279), abs=1e-5)
    _no_fit(monkeypatch)
    second = artefacts.fitted_detector(NAME, "best_split")  # from the .npz: arrays only, no pickle
    assert second.calibration.rates_at(t) == cal.rates_at(t)
    assert second.calibration.checked_rates_at(t) == cal.checked_rates_at(t)
    np.testing.assert_array_equal(second.result.candidates.score, first.result.candidates.score)
    # the restored detector reruns one user from its exported state, exactly
    for user in ("u062", "u094", "recent"):
        a, b = population.user_signal(first, user, 1.0), population.user_signal(second, user, 1.0)
        pd.testing.assert_frame_equal(a.change_points, b.change_points)
    assert population.user_signal(second, "u094").change_points.event_index.tolist() == [30]
    # u062's planted change set the threshold (1.98617: it is in the null sample, where every
    # alarm counts as false); rounded up, the default leaves it out, a lower one keeps it
    assert population.user_signal(second, "u062").change_points.empty
    assert population.user_signal(second, "u062", 1.98).change_points.event_index.tolist() == [34]


def test_logs_over_the_memory_limit_fit_a_sample_and_score_every_user_exactly(drifts, monkeypatch):
    events = artefacts.events(NAME)
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 2_000)  # the log has ~5,500 events
    assert int(events.offsets[-1]) > 2_000
    for name in ("best_split", "recent_shift"):
        items = artefacts.item_features(NAME, make_detector(name).features)  # the product's matrix
        fit = population.fit_population(events, items, name, dataset=NAME)
        assert fit.calibration.n_events <= 2_000  # fitted and calibrated on a user sample
        whole = fit.detector.score(items[events.item_idx].astype(np.float64), events.offsets)
        np.testing.assert_array_equal(fit.result.offsets, events.offsets)
        for f in ("user", "event_index", "alert_index"):
            np.testing.assert_array_equal(getattr(fit.result.candidates, f), getattr(whole.candidates, f))
        # the same splits and scores; only the prefix sums' rounding differs (1e-13)
        np.testing.assert_allclose(fit.result.candidates.score, whole.candidates.score, rtol=1e-10)
        np.testing.assert_allclose(fit.result.scores, whole.scores, rtol=1e-10)


SUMMARY = re.compile(
    r"^(\d+) change points of (\d+) users \(best_split, threshold ([\d.]+), ~([\d.]+) false alarms per "
    r"1,000 events, ([\d.]+)% of users, measured on held-aside real histories; check sample: ([\d.]+) per "
    r"1,000, ([\d.]+)% of users\); (\d+) tentative recent alerts \(recent_shift, threshold ([\d.]+), "
    r"~([\d.]+) new alerts per 1,000 events\) -> "
)


def test_detect_best_split_writes_located_and_tentative_rows_and_both_rates(drifts, tmp_path, capsys):
    out = tmp_path / "cp.csv"
    assert cli.main(["detect", NAME, "--detector", "best_split", "--out", str(out)]) == 0
    summary = SUMMARY.match(capsys.readouterr().err)
    assert summary is not None
    assert summary.groups() == ("1", "1", "1.99", "0.71", "3.3", "0", "0.0", "0", "4.8", "0.71")
    frame = pd.read_csv(out, dtype={"user_id": str})
    assert list(frame.columns) == [
        "user_id",
        "timestamp",
        "score",
        "event_index",
        "detector",
        "alert_index",
        "kind",
        "probability",  # issue 19: appended; the columns before it never change
    ]
    assert frame[["user_id", "event_index", "alert_index", "detector", "kind"]].values.tolist() == [
        ["u094", 30, 62, "best_split", "located"],
    ]
    # At 2 false alarms per 1,000 events: the planted recent change too, at the last event.
    assert cli.main(["detect", NAME, "--false-alarms", "2", "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"user_id": str})
    assert frame[frame.kind == "tentative"][
        ["user_id", "event_index", "alert_index", "detector"]
    ].values.tolist() == [["recent", 74, 79, "recent_shift"]]
    assert {("u062", 34), ("u094", 30)} <= set(zip(frame.user_id, frame.event_index, strict=True))


def test_detect_threshold_and_false_alarm_options_set_the_stated_rates(drifts, tmp_path, capsys):
    out = tmp_path / "cp.csv"
    assert (
        cli.main(["detect", NAME, "--detector", "best_split", "--false-alarms", "5", "--out", str(out)]) == 0
    )
    groups = SUMMARY.match(capsys.readouterr().err).groups()
    assert groups == ("28", "28", "0.948", "4.97", "23.0", "5.12", "25.0", "1", "3.87", "4.97")
    assert pd.read_csv(out).kind.value_counts().to_dict() == {"located": 28, "tentative": 1}
    assert cli.main(["detect", NAME, "--detector", "best_split", "--threshold", "1.0"]) == 0
    lines = capsys.readouterr().err.splitlines()
    err = next(line for line in lines if SUMMARY.match(line))  # the summary line, among notes
    # --threshold is a best_split score; the tentative alerts keep their calibrated default
    assert SUMMARY.match(err).groups() == (
        "26",
        "26",
        "1",
        "4.61",
        "21.3",
        "4.77",
        "23.3",
        "0",
        "4.8",
        "0.71",
    )


def test_detect_users_file_states_every_user(drifts, tmp_path, capsys):
    users = tmp_path / "users.csv"
    # at 2 false alarms per 1,000 events, where the planted changes are found (see above)
    assert cli.main(["detect", NAME, "--false-alarms", "2", "--users", str(users)]) == 0
    frame = pd.read_csv(users, dtype={"user_id": str}).set_index("user_id")
    assert list(frame.columns) == ["n_events", "state", "tentative", "change_points", "probability"]
    assert len(frame) == 121
    short = frame[frame.state != "scored"]
    assert (short.n_events < 24).all() and ((frame.state == "scored") == (frame.n_events >= 24)).all()
    n = int(short.n_events.iloc[0])
    assert short.state.iloc[0] == f"too short: {n} events, needs 24"
    assert frame.loc["recent"].tolist()[:4] == [80, "scored", True, 0]
    assert frame.loc["u062"].tolist()[2:4] == [False, 1]
    # 121 users are too few for an empirical null (300 scored): no probability is stated
    assert frame.probability.isna().all()
    assert int(frame.tentative.sum()) == 1 and int(frame.change_points.sum()) == 7


def test_other_detectors_export_located_rows_only(drifts, tmp_path, capsys):
    out, users = tmp_path / "cp.csv", tmp_path / "users.csv"
    assert (
        cli.main(["detect", NAME, "--detector", "two_window", "--out", str(out), "--users", str(users)]) == 0
    )
    assert "on shuffled histories" in capsys.readouterr().err
    frame = pd.read_csv(out)
    assert len(frame) > 0 and (frame.kind == "located").all() and (frame.detector == "two_window").all()
    states = pd.read_csv(users)
    assert not states.tentative.any()
    assert ((states.state == "scored") == (states.n_events >= 40)).all()  # two windows of h = 20


def test_detect_help_documents_the_kind_column(capsys):
    with pytest.raises(SystemExit):
        cli.main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "kind is 'located'" in text and "'tentative'" in text and "--users" in text


def test_a_log_too_small_for_a_real_null_says_so(drifts, tmp_path, capsys, monkeypatch):
    from core.detectors import best_split
    from core.detectors.calibration import Calibration

    # the product's minimums, as core.detectors defines them
    monkeypatch.setattr(population, "MIN_REAL_NULL_USERS", 200)
    monkeypatch.setattr(population, "MIN_REAL_NULL_EVENTS", 20_000)
    monkeypatch.setattr(best_split, "MIN_NULL_SEGMENTS", 400)
    fit = artefacts.fitted_detector(NAME, "best_split")
    # calibrated on shuffled copies of its 121 users, enough of them for >= 20,000 null events
    assert isinstance(fit.calibration, Calibration) and fit.calibration.null == "shuffled"
    assert fit.calibration.n_null_events >= 20_000
    assert fit.detector.null_ is None  # too few segments for a length null: the raw F
    rates = population.false_alarm_rates(fit)
    assert rates.users is None and "too few users for a calibration on real histories" in rates.fallback
    assert cli.main(["detect", NAME, "--out", str(tmp_path / "cp.csv")]) == 0
    err = capsys.readouterr().err
    assert (
        "on shuffled histories (too few users for a calibration on real histories: it needs 200 users" in err
    )
    # the planted mid-history moves are still found
    located = pd.read_csv(tmp_path / "cp.csv", dtype={"user_id": str}).query("kind == 'located'")
    assert {"u062", "u094"} <= set(located.user_id)


def test_pages_never_subtract_a_null_measured_on_the_same_users(drifts, dashboard_app):
    # A real log with no labels: the real null is this log's own users, so the count flagged
    # and the count expected on the null are one measurement; the pages say so instead of
    # calling the difference "real shifts".
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()  # other tests' fits under other minimums
    st.cache_data.clear()
    rates = population.false_alarm_rates(artefacts.fitted_detector(NAME, "best_split"))
    assert rates.null == "real" and rates.sample == "all"
    # (a log this small has no empirical null: the pages say the flagged users are the strongest
    # movers, in the plain words of core.headline, on both pages)
    for page, phrase in (
        ("overview", "about as many as are. So read the 1 as the users whose interests moved the most"),
        ("tour", "about as many as are. So read the 1 as the users whose interests moved the most"),
    ):
        at = AppTest.from_file(dashboard_app, default_timeout=120)
        at.session_state["dataset"] = NAME
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
        texts = " ".join(m.value for m in at.markdown)
        assert phrase in texts, texts
        assert "real shifts" not in texts and "By chance alone" not in texts
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_stated_threshold_is_the_calibrated_one_rounded_up_to_three_digits():
    from core.detectors.population import stated_threshold

    assert [stated_threshold(t) for t in (1.3432, 1.98617, 1.34, 0.0123456, 123.4, 9.996)] == [
        1.35,
        1.99,
        1.34,
        0.0124,
        124.0,
        10.0,
    ]
    assert stated_threshold(0.0) == 0.0 and stated_threshold(-2.5) == -2.5


def test_detect_fdr_and_summary_json_state_the_users_beyond_drift(drifts, tmp_path, monkeypatch):
    """Issue 19: with an empirical null (its minimum lowered for this 121-user log), --fdr sets
    the threshold from the false discovery rate, the CSV and --users carry each user's
    probability, and --summary-json states the share beyond drift with its interval and the null.
    About a third of this log's users move by construction: the bulk fit says so, and the
    null of the users' own shuffled histories (on this fit's features) stands in, named in the
    JSON and the summary line."""
    import json

    from core.detectors import best_split

    monkeypatch.setattr(best_split, "MIN_EMPIRICAL_USERS", 60)
    out, users, summary = tmp_path / "cp.csv", tmp_path / "users.csv", tmp_path / "summary.json"
    argv = ["detect", NAME, "--fdr", "0.2", "--out", str(out), "--users", str(users)]
    assert cli.main([*argv, "--summary-json", str(summary)]) == 0
    s = json.loads(summary.read_text())
    fit = artefacts.fitted_detector(NAME)
    share = population.shift_share(fit)
    assert s["null"] == share.null == "shuffled" and s["bulk_moving"] is True
    assert "bulk of this log is moving" in s["null_why"] and share.fitted_share >= 0.3
    assert "events in random order" in s["null_why"] and "upper bound" in s["null_why"]
    assert len(share.null_z) == share.n_scored  # the shuffled histories' own tail
    assert s["threshold"] == population.threshold_for_fdr(fit, 0.2)
    assert s["fdr"] <= 0.2
    assert s["users_beyond_drift"] == pytest.approx(share.users)
    low, high = s["users_beyond_drift_interval"]
    assert low <= s["users_beyond_drift"] <= high
    assert s["users_scored"] + s["users_too_short"] == 121
    assert s["feature_setting"]["n_components"] == 16
    # 121 users: too few calibration users to choose the features on splices, and it says so
    choice = s["feature_choice"]
    assert choice["by"] == "default" and choice["chosen_components"] == 16
    assert "fewer than the 200 a choice needs" in choice["why_default"]
    frame = pd.read_csv(out, dtype={"user_id": str})
    assert list(frame.columns)[-1] == "probability" and frame.probability.between(0, 1).all()
    per_user = pd.read_csv(users, dtype={"user_id": str}).set_index("user_id")
    scored = per_user.state == "scored"
    assert per_user.probability[scored].notna().all() and per_user.probability[~scored].isna().all()
    # the stored results carry the same share for readers that fit nothing
    assert artefacts.results.stored_shift_share(NAME) == share
