"""Efron's empirical null (core/detectors/empirical_null.py) and best_split scored against it."""

import numpy as np
import pytest

from core.detectors.best_split import BestSplit
from core.detectors.empirical_null import EmpiricalNull
from core.errors import ShiftError


def _scores(share: float, n_users: int = 1500, seed: int = 0):
    """log max F of a planted world: null location grows with log length, shifters pushed up."""
    rng = np.random.default_rng(seed)
    n = rng.integers(30, 300, n_users)
    x = 0.5 * np.log(n) + rng.normal(0, 0.4, n_users)
    k = int(share * n_users)
    x[:k] += 2.0
    return x, n, k


@pytest.mark.parametrize(
    "share",
    [
        pytest.param(
            0.05,
            marks=pytest.mark.xfail(
                strict=True,
                reason="measured: 149 estimated for 75 planted (the mixture's null is too narrow)",
            ),
        ),
        0.125,
        0.25,
    ],
)
def test_share_beyond_drift_sits_next_to_the_planted_share(share):
    x, n, k = _scores(share)
    null = EmpiricalNull(n_boot=50).fit(x, n)
    assert null.source_ == "empirical"
    assert abs(null.pi1_ * len(x) - k) <= 0.3 * k
    lo, hi = null.pi1_interval_
    assert lo <= share <= hi


def test_planted_users_get_a_high_probability_and_the_others_a_low_one():
    x, n, k = _scores(0.1)
    null = EmpiricalNull(n_boot=10).fit(x, n)
    prob = null.probability(null.z(x, n))
    assert np.median(prob[:k]) > 0.9
    assert np.median(prob[k:]) < 0.1
    sure = prob >= 0.8
    assert (np.arange(len(x))[sure] < k).mean() >= 0.75


def test_threshold_for_fdr_keeps_the_expected_chance_share_under_q():
    x, n, _ = _scores(0.1)
    null = EmpiricalNull(n_boot=10).fit(x, n)
    t = null.threshold_for_fdr(0.1)
    assert null.fdr(t) <= 0.1
    assert null.fdr(null.threshold_for_fdr(0.3)) > null.fdr(t) - 1e-12
    with pytest.raises(ShiftError, match="between|in \\(0, 1\\)"):
        null.threshold_for_fdr(1.5)


def test_a_moving_bulk_falls_back_to_the_reference_null():
    x, n, _ = _scores(0.0)
    null = EmpiricalNull(n_boot=10, bulk_moving_share=0.0).fit(x, n)  # any share counts as moving
    assert null.source_ == "reference"
    assert null.fitted_pi1_ >= 0.0


def test_a_moving_bulk_falls_back_to_the_shuffled_null_when_it_is_given():
    """Half the users moved: the bulk fit says so (one of its two EM starts splits the two
    groups), the shuffled histories' scores (here: the unmoved location, and a narrower spread
    than real drift) become the null, with their own tail; the share beyond it is about the half
    that moved (Storey's estimator), and the fallback is not computed when the bulk is not moving."""
    x, n, k = _scores(0.5)
    rng = np.random.default_rng(1)
    n_shuffled = rng.integers(30, 300, 1500)
    x_shuffled = 0.5 * np.log(n_shuffled) + rng.normal(0, 0.25, 1500)
    calls = []

    def shuffled():
        calls.append(1)
        return x_shuffled, n_shuffled

    null = EmpiricalNull(n_boot=20).fit(x, n, shuffled)
    assert calls == [1] and null.source_ == "shuffled" and null.fitted_pi1_ >= 0.3
    assert null.known_z is not None and len(null.known_z) == 1500  # its own tail, not a normal's
    low, high = null.pi1_interval_
    assert abs(null.pi1_ - k / len(x)) < 0.06 and low <= k / len(x) <= high and high - low < 0.15
    # the moved users are beyond it, the others mostly not
    assert null.probability(null.z(x[:k], n[:k])).mean() > 0.9
    back = EmpiricalNull.restore(null.export_state())
    assert back.source_ == "shuffled" and np.array_equal(back.known_z, null.known_z)
    assert back.expected_chance(2.0) == null.expected_chance(2.0)
    x, n, _ = _scores(0.1)
    assert EmpiricalNull(n_boot=5).fit(x, n, shuffled).source_ == "empirical" and calls == [1]


def test_export_and_restore_give_the_same_null():
    x, n, _ = _scores(0.1)
    null = EmpiricalNull(n_boot=10).fit(x, n)
    back = EmpiricalNull.restore(null.export_state())
    assert back.pi1_ == null.pi1_ and back.pi1_interval_ == null.pi1_interval_
    np.testing.assert_array_equal(back.z(x, n), null.z(x, n))
    np.testing.assert_array_equal(back.lfdr(np.array([0.0, 3.0])), null.lfdr(np.array([0.0, 3.0])))


def test_too_few_users_is_an_error_that_says_how_many():
    with pytest.raises(ShiftError, match="50"):
        EmpiricalNull().fit(np.zeros(10), np.full(10, 40))


def _population(n_users=400, n_events=60, shifted=40, seed=0):
    rng = np.random.default_rng(seed)
    blocks, truth = [], {}
    for u in range(n_users):
        x = rng.normal(size=(n_events, 6))
        if u < shifted:
            x[30:] += [3.0, 0, 0, 0, 0, 0]
            truth[u] = 30
        blocks.append(x)
    return np.vstack(blocks), np.arange(n_users + 1) * n_events, truth


def test_best_split_with_an_empirical_null_finds_the_planted_change_at_its_index():
    x, offsets, truth = _population()
    det = BestSplit(n_components=6, min_size=8, detrend="none", empirical_null=True).fit(x, offsets)
    null = det.empirical_
    assert null is not None and null.source_ == "empirical"
    assert 0.05 <= null.pi1_ <= 0.2  # 40 of 400 planted (measured 0.144: the 5-12% overestimate)
    thr = det.threshold_for_null_rate(1.0)
    cp = det.predict(thr)
    assert [int(i) for i in cp.event_index[cp.user == 0]] == [30]
    assert [int(i) for i in cp.event_index[cp.user == 7]] == [30]
    found = set(cp.user.tolist())
    assert sum(u in found for u in truth) >= 38
    # the restored fit scores exactly as the fitted one
    back = BestSplit(n_components=6, min_size=8, detrend="none", empirical_null=True)
    back.restore(det.export_state(), det.result_)
    np.testing.assert_array_equal(back.detect(x[:60], np.array([0, 60]), [thr])[0].event_index, [30])


def test_the_fdr_rule_of_stored_scores_is_the_fitted_one():
    from core.detectors.empirical_null import fdr_threshold

    x, n, _ = _scores(0.1)
    null = EmpiricalNull(n_boot=10).fit(x, n)
    z = null.z(x, n)
    with_unscored = np.concatenate([z, [np.nan, np.nan]])  # users too short to score
    assert fdr_threshold(with_unscored, null.pi1_, 0.1) == null.threshold_for_fdr(0.1)


def test_a_further_split_is_kept_only_when_significant_on_its_own():
    rng = np.random.default_rng(1)
    n_users, n = 400, 90
    x = rng.normal(size=(n_users * n, 6))
    x[30:60, 0] += 4.0  # user 0: two strong changes, at 30 and at 60
    x[60:90, 0] += 8.0
    offsets = np.arange(n_users + 1) * n

    def found(margin: float) -> list[int]:
        det = BestSplit(6, 0, 8, "none", empirical_null=True, split_margin=margin).fit(x, offsets)
        cp = det.predict(det.threshold_for_null_rate(1.0))
        return sorted(int(i) for i in cp.event_index[cp.user == 0])

    assert found(0.0) == [30, 60]
    assert found(2.0) == [30, 60]  # the second change is far beyond chance on its own
    assert len(found(np.inf)) == 1  # root only: the user-level decision


def test_a_known_null_counts_every_user_against_the_unchanged_ones_and_their_own_tail():
    """A planted world: the null is learned from the users its ground truth marks as unchanged
    (their drift heavier-tailed than a normal), and the share, the expected chance and the
    probabilities are of all users against it."""
    rng = np.random.default_rng(3)
    n = rng.integers(30, 300, 2000)
    x = 0.5 * np.log(n) + 0.4 * rng.standard_t(4, 2000)  # real drift: heavy upper tail
    k = 600
    x[:k] += 2.5  # the first 600 users shifted
    unchanged = np.arange(k, 2000)
    null = EmpiricalNull(n_boot=50).fit_known(x[unchanged], n[unchanged], x, n)
    assert null.source_ == "known" and null.n_users == 2000
    assert abs(null.pi1_ * 2000 - k) <= 0.1 * k, null.pi1_
    lo, hi = null.pi1_interval_
    assert lo <= k / 2000 <= hi
    # the expected chance at a threshold is what the unchanged users really reach there
    z = null.z(x, n)
    for t in (1.5, 2.5):
        really = int((z[unchanged] >= t).sum())
        assert abs(null.expected_chance(t) - really) <= 0.1 * really + 2, (t, null.expected_chance(t), really)
    assert null.fdr(2.5) == pytest.approx(null.expected_chance(2.5) / int((z >= 2.5).sum()), rel=1e-9)
    prob = null.probability(z)
    assert np.median(prob[:k]) > 0.9 and np.median(prob[k:]) < 0.1
    back = EmpiricalNull.restore(null.export_state())
    assert back.source_ == "known" and back.expected_chance(2.5) == null.expected_chance(2.5)
    assert back.threshold_for_fdr(0.1) == null.threshold_for_fdr(0.1)
