"""BestSplit: planted change points at their exact indices, the threshold tree, short users."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors.best_split import BestSplit, f_scan
from core.errors import ShiftError


def population(n_users: int = 300, n: int = 60, d: int = 6, seed: int = 0):
    """iid users (no change) of random lengths around ``n``, in CSR layout."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(n // 2, 2 * n, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return rng.normal(size=(int(offsets[-1]), d)), offsets


def with_planted(vectors, offsets, changes, shift=2.5, d=6):
    """Append one user of 90 events whose mean moves at each index in ``changes``."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(90, d))
    for j, c in enumerate(changes):
        x[c:, j % d] += shift * (1 if j % 2 == 0 else -1)
    return np.vstack([vectors, x]), np.append(offsets, offsets[-1] + 90)


def reference_binseg(z: np.ndarray, min_size: int, threshold: float) -> list[int]:
    """Binary segmentation rerun from scratch at one threshold (no tree, no pruning)."""
    out = []

    def split(a: int, b: int) -> None:
        if b - a < 2 * min_size:
            return
        f = f_scan(z[a:b], min_size)
        j = int(np.argmax(f))
        if f[j] >= threshold:
            tau = a + min_size + j
            out.append(tau)
            split(a, tau)
            split(tau, b)

    split(0, len(z))
    return sorted(out)


def test_planted_changes_found_at_exact_indices():
    v, o = with_planted(*population(), changes=[30, 60])
    det = BestSplit(n_components=6, min_size=8, detrend="none").fit(v, o)
    cal_threshold = 2.5  # -log10 of a 0.3% tail among same-length segments of the population
    cp = det.predict(cal_threshold)
    planted = len(o) - 2
    assert cp.event_index[cp.user == planted].tolist() == [30, 60]
    assert cp.alert_index[cp.user == planted].tolist() == [89, 89]


def test_planted_change_with_detrending_and_raw_f():
    v, o = with_planted(*population(seed=1), changes=[45])
    det = BestSplit(n_components=6, min_size=10, detrend="index", length_null=False).fit(v, o)
    planted = len(o) - 2
    cp = det.predict(10.0)  # null users reach 4.9 at most
    assert cp.event_index[cp.user == planted].tolist() == [45]


@pytest.mark.parametrize("threshold", [5.0, 10.0, 20.0, 40.0])
def test_predict_equals_binseg_rerun_at_that_threshold(threshold):
    v, o = with_planted(*population(n_users=40, seed=2), changes=[20, 50, 70])
    det = BestSplit(n_components=6, min_size=8, detrend="none", length_null=False).fit(v, o)
    z = det.features_.transform(v, o)
    cp = det.predict(threshold)
    for k in range(len(o) - 1):
        expected = reference_binseg(z[o[k] : o[k + 1]], 8, threshold)
        assert cp.event_index[cp.user == k].tolist() == expected


def test_higher_threshold_keeps_a_subset():
    v, o = population(n_users=80, seed=3)
    det = BestSplit(min_size=8).fit(v, o)
    low, high = det.predict(0.5), det.predict(1.5)
    low_set = set(zip(low.user.tolist(), low.event_index.tolist(), strict=True))
    assert set(zip(high.user.tolist(), high.event_index.tolist(), strict=True)) <= low_set
    assert len(high) < len(low)


def test_detect_on_the_fitted_population_equals_predict():
    v, o = with_planted(*population(n_users=60, seed=4), changes=[40])
    det = BestSplit(min_size=8).fit(v, o)
    again = det.detect(v, o, [1.0])[0]
    np.testing.assert_array_equal(again.event_index, det.predict(1.0).event_index)
    np.testing.assert_allclose(again.score, det.predict(1.0).score)


def test_too_short_users_get_an_explicit_state_and_no_alarm():
    v, o = population(n_users=30, seed=5)
    o = np.append(o, o[-1] + 12)
    v = np.vstack([v, np.random.default_rng(0).normal(size=(12, 6))])
    det = BestSplit(min_size=8).fit(v, o)
    assert det.min_events == 16
    assert det.user_states(o)[-1] == "too short: 12 events, needs 16"
    assert det.user_states(o)[0] == "scored"
    assert not np.any(det.predict(-np.inf).user == len(o) - 2)


def test_category_block_is_used():
    rng = np.random.default_rng(6)
    emb = rng.normal(size=(2000, 5))
    cats = np.eye(4)[rng.integers(0, 4, 2000)]
    o = np.arange(0, 2001, 50)
    # the last user changes category only (its embeddings stay iid)
    cats[1950:1975] = np.eye(4)[0]
    cats[1975:] = np.eye(4)[3]
    det = BestSplit(n_components=5, n_categories=4, min_size=8, detrend="none").fit(np.hstack([emb, cats]), o)
    cp = det.predict(2.0)
    assert cp.event_index[cp.user == 39].tolist() == [25]


def test_bad_parameters_raise_actionable_errors():
    v, o = population(n_users=5)
    with pytest.raises(ShiftError, match="min_size"):
        BestSplit(min_size=1).fit(v, o)
    with pytest.raises(ShiftError, match="detrend"):
        BestSplit(detrend="weekly").fit(v, o)
    with pytest.raises(RuntimeError, match="fit"):
        BestSplit().predict(1.0)


def test_exported_state_restores_a_detector_that_rescores_one_user_exactly():
    """No pickle: the state is plain arrays, and a restored fit reruns any user identically."""
    v, o = with_planted(*population(), changes=[30, 60])
    det = BestSplit(n_components=6, min_size=8, detrend="index", n_categories=2).fit(v, o)
    state = det.export_state()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in state.values())
    back = BestSplit(n_components=6, min_size=8, detrend="index", n_categories=2).restore(state, det.result_)
    k = len(o) - 2
    user = v[o[k] : o[k + 1]], np.array([0, o[k + 1] - o[k]])
    a, b = det.detect(*user, [2.5])[0], back.detect(*user, [2.5])[0]
    assert a.event_index.tolist() == b.event_index.tolist() == [30, 60]
    np.testing.assert_allclose(a.score, b.score)
    np.testing.assert_array_equal(back.predict(2.5).event_index, det.predict(2.5).event_index)


def test_chunked_scoring_equals_the_whole_population():
    v, o = with_planted(*population(), changes=[30, 60])
    det = BestSplit(n_components=6, min_size=8).fit(v, o)
    half = len(o) // 2
    from core.detectors.base import DetectorResult

    parts = [det.score(v[: o[half]], o[: half + 1]), det.score(v[o[half] :], o[half:] - o[half])]
    merged = DetectorResult.concat(parts)
    for f in ("user", "event_index", "score", "alert_index"):
        np.testing.assert_array_equal(getattr(merged.candidates, f), getattr(det.candidates_, f))
    np.testing.assert_array_equal(merged.scores, det.scores_)


def test_the_whitened_projection_is_scikit_learns_and_a_stored_fit_loads_without_it(
    data_dir, stub_embeddings
):
    import os
    import subprocess
    import sys

    from sklearn.decomposition import PCA

    from core.artefacts import fitted_detector
    from core.detectors.shift_features import WhitenedProjection
    from core.ingest import ingest_synthetic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    pca = PCA(4, whiten=True, random_state=0).fit(x)
    mine = WhitenedProjection(pca.mean_, pca.components_, pca.explained_variance_)
    np.testing.assert_allclose(mine.transform(x), pca.transform(x), atol=1e-10)

    ingest_synthetic("tiny", "tiny", random_state=0)
    matrix = stub_embeddings("tiny")
    first = fitted_detector("tiny", "best_split", matrix)  # fitted (scikit-learn's PCA) and stored
    code = (
        "import sys; from core.artefacts import fitted_detector, cached_item_matrix; "
        "f = fitted_detector('tiny', 'best_split', cached_item_matrix('tiny')); "
        "print('sklearn' in sys.modules, float(f.result.candidates.score.sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ | {"SHIFT_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
    )
    loaded_sklearn, total = out.stdout.split()
    assert loaded_sklearn == "False", out.stderr
    assert float(total) == pytest.approx(float(first.result.candidates.score.sum()))
