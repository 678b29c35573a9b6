"""The feature setting chosen per log on splices of its own calibration users (issue 19, item 6)."""

import numpy as np
import pytest

from core.detectors import make_detector
from core.detectors.best_split import BestSplit
from core.detectors.feature_choice import (
    MIN_USERS,
    FeatureChoice,
    choose_components,
    splice_f1,
    splice_histories,
)
from core.detectors.real_null import calibration_halves


def _world(n_users=500, n_events=60, n_noise=24, n_signal=8, seed=0):
    """Stationary users whose taste lives in ``n_signal`` low-variance dimensions; the
    ``n_noise`` others are loud per-event noise with no user-level mean. A splice moves only
    the taste, so only a setting whose principal components reach the quiet dimensions sees it:
    of 4, 8, 16 and 32 components, 32 (the noise has 24)."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(0, 1.0, (n_users, n_signal))
    rows = []
    for u in range(n_users):
        noise = rng.normal(0, 3.0, (n_events, n_noise))
        signal = taste[u] + rng.normal(0, 0.5, (n_events, n_signal))
        rows.append(np.hstack([noise, signal]))
    offsets = np.arange(n_users + 1, dtype=np.int64) * n_events
    return np.vstack(rows), offsets


def _wandering_world(n_users=400, n_events=60, n_noise=24, n_signal=8, seed=0):
    """Users with a stable taste in ``n_signal`` quiet dimensions who wander along ``n_noise``
    others: there each history is a run of pages (4-15 events, a new random level each page,
    as a MovieLens user rates a page of westerns, then a page of comedies) with no user-level
    mean. Whitened components weigh the wandering as much as the taste; the directions that
    tell users apart are the taste's."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(0, 1.0, (n_users, n_signal))
    rows = []
    for u in range(n_users):
        noise = np.zeros((n_events, n_noise))
        i = 0
        while i < n_events:
            page = int(rng.integers(4, 16))
            noise[i : i + page] = rng.normal(0, 1.0, n_noise)
            i += page
        noise += rng.normal(0, 0.5, noise.shape)
        signal = taste[u] + rng.normal(0, 0.5, (n_events, n_signal))
        rows.append(np.hstack([noise, signal]))
    return np.vstack(rows), np.arange(n_users + 1, dtype=np.int64) * n_events


def _candidate(k: int, co: bool = False, n_co: int = 0) -> BestSplit:
    return BestSplit(k, 0, 12, "index", empirical_null=True, split_margin=2.0, n_boot=0, n_co=n_co, use_co=co)


def _community_world(n_users=480, n_events=60, n_communities=4, per_community=250, dim=32, seed=0):
    """Items whose texts say nothing of who consumes them (random vectors), consumed by users
    who each stay in one of ``n_communities`` groups of items. A splice joins two users of
    different groups, so only which items go together reveals it: (item vectors, item_idx,
    offsets)."""
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(n_communities * per_community, dim))
    group = rng.integers(0, n_communities, n_users)
    item_idx = np.concatenate(
        [rng.integers(0, per_community, n_events) + g * per_community for g in group]
    ).astype(np.int64)
    return items, item_idx, np.arange(n_users + 1, dtype=np.int64) * n_events


def test_splices_follow_the_benchmark_protocol():
    rng = np.random.default_rng(3)
    hist = [np.arange(1000 * u, 1000 * u + n) for u, n in enumerate(rng.integers(40, 200, 80))]
    out, truth = splice_histories(hist, 0.25, np.random.default_rng(7))
    spliced = [i for i, t in enumerate(truth) if t]
    assert len(spliced) == 20  # 25% of 80
    for i in range(len(hist)):
        assert len(out[i]) == len(hist[i])  # a spliced user keeps its length
        if i not in spliced:
            assert np.array_equal(out[i], hist[i])
            continue
        (c,) = truth[i]
        length = len(hist[i])
        assert max(20, int(0.2 * length)) <= c <= min(length - 20, int(0.8 * length))
        assert np.array_equal(out[i][:c], hist[i][:c])  # A's first c events …
        donor = out[i][c] // 1000
        assert donor != i and np.array_equal(out[i][c:], hist[donor][: length - c])  # … then B's first


def test_splice_f1_counts_hits_within_ten_events_and_extra_splits_as_false():
    truth = [[50], [], [40]]
    found = [np.array([58]), np.array([30]), np.array([10, 41])]
    # user 0: a hit; user 1 is real (not counted here); user 2: a hit and a false split
    assert splice_f1(found, truth) == pytest.approx(2 * (2 / 3) * 1.0 / ((2 / 3) + 1.0))
    assert splice_f1([np.array([61]), np.array([]), np.array([])], truth) == 0.0


def test_the_log_chooses_the_components_that_reach_its_shifts():
    vectors, offsets = _world()
    users = np.arange(len(offsets) - 1)
    choice = choose_components(_candidate, vectors, offsets, users, given=16)
    assert choice.why == ""
    assert choice.chosen == 32, choice
    f1 = dict(zip(choice.candidates, choice.f1, strict=True))
    assert f1[32] > 0.5 and f1[4] < 0.2, f1
    assert choice.users == 500 and choice.splices == round(0.125 * 500)


def test_the_choice_never_reads_the_check_users():
    vectors, offsets = _world(n_users=420)
    setting, checking = calibration_halves(np.arange(len(offsets) - 1))
    seen: list[np.ndarray] = []

    class Recording(BestSplit):
        def fit(self, v, o, ratings=None, null_users=None):
            seen.append(np.asarray(v))
            return super().fit(v, o, ratings, null_users)

    marked = vectors.copy()
    for k in checking:  # a check user's events carry a value no setting user has
        marked[offsets[k] : offsets[k + 1], 0] = 1e6
    choice = choose_components(
        lambda k, co: Recording(k, 0, 12, "index", empirical_null=True, n_boot=0),
        marked,
        offsets,
        setting,
        given=16,
        candidates=(4, 32),
    )
    # 210 setting users, 26 spliced a draw: 4 draws reach about 150 splices (the most drawn)
    assert choice.splices == 26 and choice.draws == 4 and "4 draws" in choice.describe()
    assert len(seen) == 8  # two candidates, four splice draws
    assert all((v[:, 0] < 1e5).all() for v in seen)


def test_too_few_users_keep_the_given_setting_and_say_why():
    vectors, offsets = _world(n_users=MIN_USERS - 1)
    choice = choose_components(_candidate, vectors, offsets, np.arange(len(offsets) - 1), given=16)
    assert choice.chosen == 16 and choice.splices == 0
    assert f"fewer than the {MIN_USERS}" in choice.why
    assert "the default" in choice.describe()


def test_a_tie_goes_to_the_given_setting():
    vectors, offsets = _world(n_users=300, n_noise=2, n_signal=2)  # every candidate reads all 4 dims
    choice = choose_components(
        _candidate, vectors, offsets, np.arange(300), given=16, candidates=(4, 8, 16, 32)
    )
    assert len(set(np.round(choice.f1, 12))) == 1, choice.f1
    assert choice.chosen == 16


def test_the_default_detector_records_its_choice_and_restores_it():
    vectors, offsets = _world()
    # the product's layout: the vectors, then the co-consumption block (flat here: no items)
    vectors = np.hstack([vectors, np.zeros((len(vectors), make_detector("best_split").n_co))])
    det = make_detector("best_split").fit(vectors, offsets)
    assert det.choice_ is not None and det.choice_.chosen == 32 and det.n_components == 32
    assert not det.choice_.chosen_co and not det.use_co  # a flat block ties; ties go to no block
    assert det.features_.pca_.components_.shape[0] == 32
    state = det.export_state()
    again = make_detector("best_split")
    again._import_state(state)
    assert again.n_components == 32 and again.choice_ == FeatureChoice.restore(state)
    assert again.choice_.f1 == det.choice_.f1
    z_fit = det.features_.transform(vectors[:60], offsets[:2])
    assert np.allclose(again.features_.transform(vectors[:60], offsets[:2]), z_fit)


def test_detect_stores_the_choice_for_readers_that_fit_nothing(data_dir, tmp_path, capsys):
    """A log big enough to choose (1,200 users): ``detect`` prints the choice, the stored results
    carry the very choice of the fit, and the results API reads it back from either."""
    import json

    from core import artefacts
    from core.cli import main
    from core.results import StoredResults
    from tests.conftest import write_stub_embeddings

    assert main(["ingest", "choosy", "--synthetic", "1200", "--seed", "2"]) == 0
    write_stub_embeddings("choosy")
    summary = tmp_path / "s.json"
    assert main(["detect", "choosy", "--out", str(tmp_path / "cp.csv"), "--summary-json", str(summary)]) == 0
    fit = artefacts.fitted_detector("choosy").detector
    assert fit.choice_ is not None and fit.choice_.why == "", fit.choice_
    assert fit.choice_.chosen in (4, 8, 16, 32, 48) and fit.n_components == fit.choice_.chosen
    assert f"item features: {fit.choice_.describe()}" in capsys.readouterr().err
    stored = artefacts.results.stored_feature_choice("choosy")
    assert stored == fit.choice_
    assert StoredResults("choosy", "best_split").feature_choice() == fit.choice_
    said = json.loads(summary.read_text())
    assert said["feature_choice"]["chosen_components"] == fit.choice_.chosen
    assert said["feature_setting"]["n_components"] == fit.choice_.chosen
    assert said["feature_choice"]["calibration_users"] == fit.choice_.users >= 200
    # with or without the log's co-consumption factors: said in the JSON and the words
    choice = said["feature_choice"]
    assert choice["chosen_co_consumption"] == fit.choice_.chosen_co == fit.use_co
    assert choice["candidates_with_co_consumption"] == [False] * 4 + [True] * 3 + [False, True]
    assert choice["candidates"] == [4, 8, 16, 32, 4, 8, 16, 48, 48]
    assert said["feature_setting"]["n_co"] == 16 and said["feature_setting"]["use_co"] == fit.use_co
    # ... and projected on the directions that tell users apart, or not
    assert choice["candidates_user_discriminant"] == [False] * 7 + [True] * 2
    assert (
        choice["chosen_user_discriminant"]
        == fit.choice_.chosen_disc
        == said["feature_setting"]["discriminant"]
    )


def test_the_log_reads_co_consumption_where_only_it_reveals_the_splices():
    """Texts that say nothing of the users' groups: every text-only setting misses the splices,
    the co-consumption block finds them, and the choice takes it."""
    from core.co_consumption import CO_FACTORS, with_co

    items, item_idx, offsets = _community_world()
    matrix = with_co(items, item_idx, offsets)
    vectors = matrix[item_idx]
    users = np.arange(len(offsets) - 1)
    choice = choose_components(
        lambda k, co: _candidate(k, co, CO_FACTORS), vectors, offsets, users, given=16,
        candidates=(4, 16), co_candidates=(4,),
    )  # fmt: skip
    f1 = dict(zip(choice.labels, choice.f1, strict=True))
    assert choice.chosen_co and choice.chosen == 4, choice
    # the log's own splices spend its 1-per-1,000 budget (they are 12.5% of the users that set the
    # threshold), so even a perfect reader finds about half of them at the stated rate
    assert f1["4+co"] > 0.4 and max(f1["4"], f1["16"]) < 0.2, f1
    assert "co-consumption" in choice.describe() and "4+co:" in choice.describe()
    # the default detector makes the same choice and keeps it through its stored state
    det = make_detector("best_split").fit(vectors, offsets)
    assert det.use_co and det.choice_.chosen_co and det.features == "embedding+co"
    again = make_detector("best_split")
    again._import_state(det.export_state())
    assert again.use_co and again.choice_ == det.choice_
    assert np.allclose(
        again.features_.transform(vectors[:60], offsets[:2]),
        det.features_.transform(vectors[:60], offsets[:2]),
    )


def _projected(k: int, co: bool = False, disc: bool = False) -> BestSplit:
    return BestSplit(k, 0, 12, "index", empirical_null=True, split_margin=2.0, n_boot=0, discriminant=disc)


def test_users_wandering_along_loud_directions_choose_the_user_discriminant_projection():
    vectors, offsets = _wandering_world()
    choice = choose_components(
        _projected, vectors, offsets, np.arange(400), given=16, candidates=(8, 16, 32), disc_candidates=(32,)
    )
    f1 = dict(zip(choice.labels, choice.f1, strict=True))
    assert choice.chosen == 32 and choice.chosen_disc and not choice.chosen_co
    assert f1["32u"] > max(f1["8"], f1["16"], f1["32"]) + 0.1, f1
    assert choice.setting == "32 principal components projected on the directions that tell users apart"
    assert choice.describe().startswith(choice.setting + ", chosen by this log")
    assert "u: projected" in choice.describe() and "+co" not in choice.describe()


def test_the_projection_is_stored_and_read_back():
    vectors, offsets = _wandering_world(n_users=120)
    det = _projected(32, disc=True).fit(vectors, offsets)
    proj = det.features_.disc_
    # taste lives in 8 dimensions: few directions tell these users apart, and they are kept
    assert proj.shape[0] == 32 and 1 <= proj.shape[1] <= 32
    state = det.export_state()
    again = _projected(32, disc=True)
    again._import_state(state)
    z = det.features_.transform(vectors[:120], offsets[:3])
    assert np.allclose(again.features_.transform(vectors[:120], offsets[:3]), z)
    plain = _projected(32)
    with pytest.raises(KeyError):  # a stored projected fit is not read as an unprojected one's
        _projected(32, disc=True)._import_state(plain.fit(vectors, offsets).export_state())


def test_splice_logs_learn_their_co_factors_with_the_splices_in_place():
    """The choice's splice logs get co-consumption factors learned from the whole log with the
    splices in it, as ``detect`` would learn them: a spliced user's two parts are then pulled
    together, as a real user's before and after are; factors learned without the splices (the
    real log's) kept them apart and overrated the co block."""
    from core.co_consumption import CO_FACTORS, item_codes, item_factors, with_co
    from core.detectors.feature_choice import splice_co

    # sparse, as Food.com is: each user cooks from a pool of 30 recipes shared with one neighbour
    rng = np.random.default_rng(0)
    n_users, n_events = 300, 60
    item_idx = np.concatenate([15 * u + rng.integers(0, 30, n_events) for u in range(n_users)])
    offsets = np.arange(n_users + 1, dtype=np.int64) * n_events
    items = rng.normal(size=(15 * n_users + 15, 16))
    vectors = with_co(items, item_idx, offsets)[item_idx]
    pool = np.arange(240)
    rows = [np.arange(offsets[k], offsets[k + 1]) for k in pool]
    rows, truth = splice_histories(rows, 0.5, np.random.default_rng(4))
    log_vectors = vectors[np.concatenate(rows)]
    codes = item_codes(vectors)
    assert codes[1] == len(np.unique(item_idx))  # one code per consumed item
    out = splice_co(log_vectors, rows, pool, offsets, codes, CO_FACTORS)
    np.testing.assert_array_equal(out[:, :-CO_FACTORS], log_vectors[:, :-CO_FACTORS])  # texts untouched
    hist = [r for r in rows] + [np.arange(offsets[k], offsets[k + 1]) for k in range(240, len(offsets) - 1)]
    learn = np.concatenate([[0], np.cumsum([len(h) for h in hist])])
    expected = item_factors(codes[0][np.concatenate(hist)], learn, codes[1], CO_FACTORS)
    np.testing.assert_allclose(out[:, -CO_FACTORS:], expected[codes[0][np.concatenate(rows)]], atol=1e-6)

    def parts_cosine(block: np.ndarray) -> float:
        starts = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        cos = []
        for k, t in enumerate(truth):
            if t:
                seg = block[starts[k] : starts[k + 1]]
                a, b = seg[: t[0]].mean(0), seg[t[0] :].mean(0)
                cos.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        return float(np.mean(cos))

    in_place, without = parts_cosine(out[:, -CO_FACTORS:]), parts_cosine(log_vectors[:, -CO_FACTORS:])
    assert in_place > without + 0.1, (in_place, without)  # measured: 0.85 against 0.00
    flat = log_vectors.copy()
    flat[:, -CO_FACTORS:] = 0.0  # no co-consumption at all: stays flat
    assert splice_co(flat, rows, pool, offsets, codes, CO_FACTORS) is flat
