"""Detectors on synthetic trajectories with planted change points (no encoder involved)."""

from __future__ import annotations

import numpy as np
import pytest

from core import limits
from core.detectors import DEFAULT, detector_names, make_detector
from core.detectors.page_hinkley import PageHinkley
from core.detectors.peaks import candidate_peaks
from core.errors import DataError, ShiftError

D = 8
CENTRES = np.eye(D) * 1.0
# user -> true change points; the users after these are stable, alternating, short
PLANTED = {0: [60], 1: [70, 140]}
STABLE = range(2, 22)
ALTERNATING = 22
SHORT = 23


def _user(rng, segments):
    return np.vstack([CENTRES[c] + 0.15 * rng.normal(size=(n, D)) for c, n in segments])


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(7)
    users = [_user(rng, [(0, 60), (1, 60)]), _user(rng, [(2, 70), (3, 70), (4, 70)])]
    users += [_user(rng, [(k % D, 100)]) for k in STABLE]
    # a multi-interest user: sessions of 3 events alternating between two interests, no shift
    users.append(_user(rng, [(5 if s % 2 else 6, 3) for s in range(40)]))
    users.append(_user(rng, [(7, 15)]))  # shorter than two windows of 20
    vectors = np.vstack(users)
    offsets = np.concatenate([[0], np.cumsum([len(u) for u in users])])
    # ratings: users like centre 0, 2 and 5, dislike 1, 3 and 6 (so w sees the planted shifts)
    taste = np.array([1.0, -1.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0])
    ratings = 3.0 + vectors @ taste + 0.1 * rng.normal(size=len(vectors))
    return vectors, offsets, ratings


def _by_user(cp, n_users):
    return {k: cp.event_index[cp.user == k].tolist() for k in range(n_users)}


# (name, threshold, tolerance in events); tolerance 0 means exact indices.
CASES = [
    ("two_window", 3.0, 0),
    ("two_window_cosine", 0.5, 0),
    ("linear", 0.17, 0),
    ("zscore", 6.0, 0),
    # isolation-forest scores saturate near a change, so the peak may land anywhere in the window
    ("isolation_forest", 0.56, 10),
    ("discriminant", 40.0, 0),
    ("kernel_cpd", 50.0, 0),
    ("kernel_cpd_raw", 10.0, 0),
    ("page_hinkley", 1.0, 0),
]


@pytest.mark.parametrize(("name", "threshold", "tol"), CASES)
def test_detector_recovers_planted_change_points_and_stays_silent(population, name, threshold, tol):
    vectors, offsets, ratings = population
    det = make_detector(name).fit(vectors, offsets, ratings)
    found = _by_user(det.predict(threshold), len(offsets) - 1)
    for k, truth in PLANTED.items():
        assert len(found[k]) == len(truth), (k, found[k])
        assert all(abs(f - t) <= tol for f, t in zip(found[k], truth, strict=True)), (k, found[k])
    for k in [*STABLE, ALTERNATING, SHORT]:
        assert found[k] == [], (k, found[k])


def test_online_alert_comes_after_the_change(population):
    vectors, offsets, ratings = population
    cp = make_detector("page_hinkley").fit(vectors, offsets).predict(1.0)
    first = cp.where(cp.user == 0)
    assert first.alert_index[0] >= first.event_index[0]
    assert first.alert_index[0] - 60 <= 10  # known within ten events of the change


def test_scores_are_nan_where_windows_do_not_fit(population):
    vectors, offsets, _ = population
    det = make_detector("two_window").fit(vectors, offsets)
    short = det.scores_[offsets[SHORT] : offsets[SHORT + 1]]
    assert np.isnan(short).all()
    first = det.scores_[offsets[0] : offsets[1]]
    assert np.isnan(first[:20]).all() and np.isnan(first[101:]).all() and np.isfinite(first[20:101]).all()


def test_genre_histogram_reads_genre_features():
    det = make_detector("genre_histogram")
    assert det.features == "genres"
    g = np.repeat(np.eye(3), [40, 40, 0], axis=0)  # genre 0 then genre 1
    cp = det.fit(g + 0.0, np.array([0, 80])).predict(1.0)
    assert cp.event_index.tolist() == [40]


def test_linear_rule_misses_a_shift_orthogonal_to_w():
    # the documented weakness of a single direction: the full-vector rule is there for it
    rng = np.random.default_rng(0)
    x = np.vstack([CENTRES[2] + 0.2 * rng.normal(size=(60, D)), CENTRES[3] + 0.2 * rng.normal(size=(60, D))])
    r = 3 + x[:, 0] + 0.05 * rng.normal(size=120)  # ratings only depend on dimension 0
    offsets = np.array([0, 120])
    assert len(make_detector("linear").fit(x, offsets, r).predict(0.5)) == 0
    assert make_detector("two_window").fit(x, offsets).predict(3.0).event_index.tolist() == [60]


def test_linear_rule_needs_ratings(population):
    vectors, offsets, _ = population
    with pytest.raises(DataError, match="needs ratings"):
        make_detector("linear").fit(vectors, offsets, np.full(len(vectors), np.nan))


def test_bad_input_is_a_clear_error():
    with pytest.raises(DataError, match="offsets"):
        make_detector("two_window").fit(np.zeros((10, 3)), np.array([0, 5]))
    with pytest.raises(DataError, match="NaN"):
        make_detector("two_window").fit(np.full((10, 3), np.nan), np.array([0, 10]))
    with pytest.raises(ShiftError, match="unknown detector 'nope'"):
        make_detector("nope")
    with pytest.raises(RuntimeError, match="fit"):
        make_detector("two_window").predict(1.0)


def test_predict_is_monotone_in_the_threshold(population):
    vectors, offsets, ratings = population
    det = make_detector("two_window").fit(vectors, offsets)
    counts = [len(det.predict(t)) for t in (0.0, 1.0, 2.0, 4.0, 8.0)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_peaks_suppress_neighbours_within_the_window():
    scores = np.array([0.0, 5.0, 4.9, 0.0, 0.0, 0.0, 3.0, np.nan])
    assert candidate_peaks(scores, np.array([0, 8]), window=2).tolist() == [1, 6]
    assert candidate_peaks(scores, np.array([0, 8]), window=5).tolist() == [1]
    # a plateau yields its first event only; users never suppress each other
    assert candidate_peaks(np.array([2.0, 2.0, 1.0, 9.0]), np.array([0, 3, 4]), 2).tolist() == [0, 3]


def test_page_hinkley_is_river_like_and_resets_after_firing():
    ph = PageHinkley(threshold=2.0, delta=0.05)
    x = np.concatenate([np.zeros(30), np.ones(30), np.zeros(10), 2 * np.ones(30)])
    fired = [i for i, v in enumerate(x) if ph.update(float(v)).drift_detected]
    assert fired[0] == 32 and ph.drift_detected is (fired[-1] == len(x) - 1)
    assert len(fired) >= 2  # it reset after the first alarm and caught the second rise
    assert ph.update(2.0).drift_detected is False  # reset on the update after firing


def test_registry_lists_the_default_first():
    names = detector_names()
    assert names[0] == DEFAULT and len(names) == len(set(names)) >= 9


# --------------------------------------------------------------------------- a whole dataset


@pytest.fixture
def synthetic(data_dir, monkeypatch):
    """The synthetic world (160 users) with stub item vectors: one direction per category."""
    from core import embeddings, store
    from core.ingest import ingest_synthetic

    ingest_synthetic("synthetic", 160, random_state=0)
    with store.connect("synthetic") as con:
        items = store.load_items(con)
    names = sorted({c for cats in items["categories"] for c in cats})
    rng = np.random.default_rng(0)
    centroids = np.linalg.qr(rng.normal(size=(32, 32)))[0][: len(names)]
    first = [names.index(cats[0]) for cats in items["categories"]]
    vectors = (centroids[first] + rng.normal(scale=0.3, size=(len(items), 32))).astype(np.float32)
    monkeypatch.setattr(embeddings, "item_matrix", lambda name, encoder=None, progress=None: vectors)
    return "synthetic"


def test_population_functions_on_a_dataset(synthetic):
    from core import artefacts, store
    from core.detectors import population

    fit = artefacts.fitted_detector(synthetic)
    assert fit.detector.name == DEFAULT
    t1 = population.threshold_for_false_alarms(fit, 1.0)
    assert t1 == fit.default_threshold and population.false_alarms_for_threshold(fit, t1) <= 1.0
    cps = population.change_points(fit)
    assert list(cps.columns[:5]) == ["user_id", "event_index", "timestamp", "score", "detector"]
    assert (cps.score >= t1).all() and len(cps) > 0
    with store.connect(synthetic) as con:
        truth = store.load_ground_truth(con)
        labels = store.load_user_labels(con).set_index("user_id").kind
        first = store.load_user_events(con, cps.user_id.iloc[0])
    # timestamp is that of the first event after the change
    assert first.ts.iloc[cps.event_index.iloc[0]] == cps.timestamp.iloc[0]
    # most change points sit within 5 events of a planted shift; stable and multi-interest
    # users stay quiet
    near = [
        ((truth.user_id == u) & ((truth.event_index - i).abs() <= 5)).any()
        for u, i in zip(cps.user_id, cps.event_index)
    ]
    assert np.mean(near) > 0.8
    quiet = cps.user_id.map(labels).isin(["stable", "multi"]).mean()
    assert quiet < 0.1
    # one user: its signal covers its events; its change points are those of the population
    uid = cps.user_id.iloc[0]
    sig = population.user_signal(fit, uid)
    assert len(sig.score) == len(first)
    assert sig.change_points.event_index.tolist() == cps[cps.user_id == uid].event_index.tolist()
    # the fit and its calibration are stored on disk (arrays, no pickle)
    assert list((store.cache_dir(synthetic) / "fits").glob(f"{DEFAULT}-*.npz"))


def test_user_signal_of_an_unknown_user_is_a_clear_error(synthetic):
    from core import artefacts
    from core.detectors import population
    from core.errors import UnknownUser

    with pytest.raises(UnknownUser, match="nobody"):
        population.user_signal(artefacts.fitted_detector(synthetic), "nobody")


def test_detect_command_writes_one_row_per_change_point(synthetic, tmp_path):
    import pandas as pd

    from core.cli import main

    out = tmp_path / "cp.csv"
    assert main(["detect", synthetic, "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"user_id": str})
    assert list(frame.columns[:5]) == ["user_id", "timestamp", "score", "event_index", "detector"]
    located = frame[frame.kind == "located"]
    assert len(located) > 0 and (located.detector == DEFAULT).all()
    # the default's recent-shift companion adds its tentative alerts, named after itself
    companion = make_detector(DEFAULT).tentative
    assert (frame.loc[frame.kind == "tentative", "detector"] == companion).all()
    assert set(frame.kind) <= {"located", "tentative"}
    assert pd.to_datetime(frame.timestamp, format="ISO8601").notna().all()
    strict = tmp_path / "strict.csv"
    assert (
        main(["detect", synthetic, "--detector", "zscore", "--false-alarms", "0.1", "--out", str(strict)])
        == 0
    )
    assert main(["detect", synthetic, "--detector", "nope"]) == 2  # a plain error, not a traceback


def test_large_logs_are_scored_in_user_chunks(synthetic, monkeypatch):
    from core import artefacts
    from core.detectors import population

    events, items = artefacts.events(synthetic), artefacts.item_features(synthetic, "embedding")
    whole = population.fit_population(events, items, "two_window", dataset=synthetic)
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 2_000)
    chunked = population.fit_population(events, items, "two_window", dataset=synthetic)
    # two_window's score depends on one user's events only, so chunking changes nothing
    np.testing.assert_allclose(chunked.result.scores, whole.result.scores, rtol=1e-6)
    assert np.array_equal(chunked.result.candidates.user, whole.result.candidates.user)
    assert np.array_equal(chunked.result.candidates.event_index, whole.result.candidates.event_index)
    assert chunked.calibration.n_null_events <= 2 * 2_000  # calibrated on a sample of users
    with pytest.raises(ShiftError, match="peak-picking"):
        population.fit_population(events, items, "kernel_cpd", dataset=synthetic)
    with pytest.raises(ShiftError, match="peak-picking"):  # the same refusal through the artefacts
        artefacts.fitted_detector(synthetic, "kernel_cpd")
