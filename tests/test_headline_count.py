"""Issue 19 on the pages: the Overview and the Tour state the number of users beyond everyday
drift with its interval, and how many of those flagged may be chance: the same numbers that
``detect --summary-json`` writes (one measurement, two readers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from tests.conftest import write_stub_embeddings

NAME = "drifting"


@pytest.fixture
def detected(data_dir, tmp_path) -> dict:
    """A 400-user world (enough for an empirical null: core.detectors.best_split's
    MIN_EMPIRICAL_USERS) detected by the CLI: its --summary-json object; the CSV in tmp_path."""
    assert main(["ingest", NAME, "--synthetic", "400", "--seed", "5"]) == 0
    write_stub_embeddings(NAME)
    summary_path = tmp_path / "summary.json"
    assert (
        main(["detect", NAME, "--out", str(tmp_path / "cps.csv"), "--summary-json", str(summary_path)]) == 0
    )
    return json.loads(summary_path.read_text())


def test_the_headline_count_beyond_everyday_drift_is_the_clis(detected, dashboard_app, tmp_path):
    import streamlit as st

    from core.artefacts.datasets import shift_free_users

    summary = detected
    # a planted world: the null is its unchanged users', and the count sits next to the truth
    assert summary["null"] == "known" and not summary["bulk_moving"]
    low, high = summary["users_beyond_drift_interval"]
    planted = 400 - len(shift_free_users(NAME))
    assert low <= planted <= high and abs(summary["users_beyond_drift"] - planted) <= 0.3 * planted, (
        planted,
        summary,
    )
    assert low <= summary["users_beyond_drift"] <= high
    said = f"about **{round(summary['users_beyond_drift']):,} users ({low:.0f}–{high:.0f})** changed their interests beyond"
    moving = "Compared with the users this dataset's ground truth marks as unchanged"
    flagged = (
        f"Of the {summary['users_flagged']:,} users flagged at this threshold, about "
        f"**{summary['expected_chance_among_flagged']:.0f}**"
    )
    st.cache_data.clear()
    st.cache_resource.clear()
    for page in ("overview", "tour"):
        at = AppTest.from_file(dashboard_app, default_timeout=120)
        at.session_state["dataset"] = NAME
        if page != "overview":
            at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, at.exception
        texts = " ".join(m.value for m in at.markdown)
        assert said in texts, (page, said, texts[texts.find("changed their") :][:1500])
        assert flagged in texts, (page, flagged)
        if page == "overview":  # the feature setting the log chose, in the same words as the CLI's
            words = summary["feature_choice"]["in_words"]
            from dashboard.text import md_escape

            assert f"Item features: {md_escape(words)}." in texts, words
        assert moving in texts, (page, moving)
        if page == "overview":
            # the most shifted users carry the probability that their change is real: the CSV's
            top = next(d.value for d in at.dataframe if "real" in d.value.columns)
            written = (
                pd.read_csv(tmp_path / "cps.csv", dtype={"user_id": str})
                .groupby("user_id")["probability"]
                .first()
            )
            assert len(top) > 0
            np.testing.assert_allclose(
                top["real"].to_numpy(float), written.loc[top["user_id"].astype(str)].to_numpy()
            )
            user = str(top["user_id"].iloc[0])
    # and the timeline shows it beside the user's change points
    at = AppTest.from_file(dashboard_app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.session_state[f"user:{NAME}"] = user
    at.switch_page("pages/timeline.py").run()
    assert not at.exception, at.exception
    metric = next(m for m in at.metric if m.label == "Chance the change is real")
    assert metric.value == f"{written.loc[user]:.0%}"
    st.cache_data.clear()
    st.cache_resource.clear()


def test_eps_set_as_a_false_discovery_rate_in_the_sidebar_and_a_link(detected, dashboard_app, tmp_path):
    import streamlit as st

    from core.results import open_results

    results = open_results(NAME)
    expected = results.threshold_for_fdr(0.1)
    assert results.flagged_chance(expected).fdr <= 0.1
    # the CLI's --fdr gives the same ε
    assert main(["detect", NAME, "--fdr", "0.1", "--out", str(tmp_path / "fdr.csv")]) == 0
    by_cli = pd.read_csv(tmp_path / "fdr.csv")
    assert (by_cli["kind"] == "located").sum() == len(results.change_points(expected))
    st.cache_data.clear()
    st.cache_resource.clear()
    # a link with fdr=0.1 opens at that ε, in that mode
    at = AppTest.from_file(dashboard_app, default_timeout=120)
    at.query_params["dataset"] = NAME
    at.query_params["fdr"] = "0.1"
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="threshold_mode").value == "share of flagged that may be chance"
    assert at.session_state[f"eps:{NAME}:best_split"] == expected
    # moving the slider sets ε from the new rate; switching the mode back keeps ε
    at.sidebar.slider(key=f"_fdr:{NAME}:best_split").set_value(0.2).run()
    assert at.session_state[f"eps:{NAME}:best_split"] == results.threshold_for_fdr(0.2) != expected
    eps = at.session_state[f"eps:{NAME}:best_split"]
    at.sidebar.radio(key="threshold_mode").set_value("ε (score)").run()
    assert at.session_state[f"eps:{NAME}:best_split"] == eps
    # an out-of-range FDR in a link is clamped with a warning that says what was used
    at = AppTest.from_file(dashboard_app, default_timeout=120)
    at.query_params["dataset"] = NAME
    at.query_params["fdr"] = "0.9"
    at.run()
    assert any("using 0.5" in w.value for w in at.warning), [w.value for w in at.warning]
    st.cache_data.clear()
    st.cache_resource.clear()


def test_a_big_dataset_reads_the_same_answers_from_stored_results(detected, monkeypatch):
    # A dataset over core.limits is read from what detect stored: the share beyond drift, the
    # flagged-by-chance count, the probabilities and the threshold for an FDR are the fit's.
    from core import limits
    from core.results import FittedResults, StoredResults, open_results

    fitted = open_results(NAME)
    assert isinstance(fitted, FittedResults)
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 10)
    stored = open_results(NAME)
    assert isinstance(stored, StoredResults)
    assert stored.shift_share() == fitted.shift_share() is not None
    thr = fitted.default_threshold
    assert stored.flagged_chance(thr).flagged == fitted.flagged_chance(thr).flagged
    assert abs(stored.flagged_chance(thr).expected_chance - fitted.flagged_chance(thr).expected_chance) < 1e-9
    assert stored.threshold_for_fdr(0.1) == fitted.threshold_for_fdr(0.1)
    mine = stored.user_probabilities().set_index("user_id")["probability"]
    theirs = fitted.user_probabilities().set_index("user_id")["probability"]
    np.testing.assert_allclose(mine.loc[theirs.index].to_numpy(), theirs.to_numpy(), equal_nan=True)


def test_a_log_fitted_on_a_sample_states_the_share_of_every_scored_user(detected, monkeypatch):
    """A log over the memory limit is fitted on a sample of users and scored whole: the share
    beyond drift is the sample's, but the count, the users flagged and those that may be chance
    are of every scored user (before: the sample's 2,232 of Food.com's 4,239, so the page set
    '201 beyond drift' and '149 may be chance' against all 544 flagged)."""
    from core import artefacts, limits
    from core.artefacts.datasets import shift_free_users
    from core.detectors import best_split, population

    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 10_000)  # the world has 20,539 events
    monkeypatch.setattr(best_split, "MIN_EMPIRICAL_USERS", 100)  # the sample has ~190 users
    monkeypatch.setattr(best_split, "MIN_KNOWN_NULL_USERS", 50)
    fit = population.fit_population(
        artefacts.events(NAME),
        artefacts.item_features(NAME, "embedding+co"),
        "best_split",
        dataset=NAME,
        null_users=shift_free_users(NAME),
    )
    null, roots = population.empirical_null(fit), population.root_scores(fit)
    scored = int(np.isfinite(roots).sum())
    assert null is not None and null.n_users < scored  # the null saw a sample
    share = population.shift_share(fit)
    assert share.n_scored == scored and share.users == pytest.approx(share.share * scored)
    thr = fit.default_threshold
    chance = population.flagged_chance(fit, thr)
    assert chance.flagged == int((roots >= thr).sum()) > null.flagged(thr)
    assert chance.expected_chance == pytest.approx(null.expected_chance(thr) * scored / null.n_users)
    assert chance.fdr == pytest.approx(min(chance.expected_chance / chance.flagged, 1.0))
    # the FDR threshold reads every user's score too
    assert population.threshold_for_fdr(fit, 0.2) == share.threshold_for_fdr(roots, 0.2)
