"""The detector benchmark's scoring and baselines against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.benchmark.detection import Benchmark, baseline_rows, fire_every_k, score_change_points
from core.benchmark.splices import SplicedUser
from core.detectors.base import ChangePoints


def _user(uid, n, cps, kind, bin_=""):
    return SplicedUser(
        uid, np.zeros(n, np.int32), np.zeros(n, np.float32), cps, kind, bin_ or kind, (uid,), (n,)
    )


@pytest.fixture
def bench():
    return Benchmark.of(
        [
            _user("s0", 100, [50], "splice", "easy"),
            _user("s1", 100, [40], "splice", "hard"),
            _user("m0", 120, [40, 80], "multi"),
            _user("c0", 200, [], "control"),
            _user("x0", 100, [], "shuffled"),
        ]
    )


def test_metrics_by_hand(bench):
    # s0: hit at 53 (error 3) and a false alarm at 90; s1: miss (62 is 22 away);
    # m0: hits at 41 and 88 (error 8: inside M=10, outside M=5); c0: two false alarms; x0: none
    cp = ChangePoints(
        np.array([0, 0, 1, 2, 2, 3, 3]),
        np.array([53, 90, 62, 41, 88, 10, 150]),
        np.ones(7),
        np.array([60, 95, 70, 45, 100, 12, 160]),
    )
    row = score_change_points(bench, cp)
    assert row["P@10"] == pytest.approx(1 / 3) and row["R@10"] == pytest.approx(1 / 2)
    assert row["F1@10"] == pytest.approx(0.4)
    assert row["F1@10 easy"] == pytest.approx(2 / 3) and row["F1@10 hard"] == 0.0
    assert row["F1@10 multi"] == 1.0
    assert row["location_error"] == 3.0
    assert row["alert_delay"] == pytest.approx(10.0)  # delays 10 (s0), 5 and 20 (m0): median 10
    assert row["FA/1000 control"] == pytest.approx(10.0) and row["FA/1000 shuffled"] == 0.0


def test_fire_every_k_baseline(bench):
    cp = fire_every_k(bench, 40)
    assert cp.event_index[cp.user == 0].tolist() == [40, 80]
    assert score_change_points(bench, cp)["F1@10 multi"] == 1.0


def test_baseline_rows(bench):
    never, every_20, best = baseline_rows(bench)
    assert (never["detector"], never["setting"]) == ("never_fire", "default")
    assert never["R@10"] == 0.0 and never["P@10"] == 1.0 and never["FA/1000 control"] == 0.0
    assert (every_20["detector"], every_20["setting"]) == ("every_20", "default")
    assert best["setting"] == "oracle" and best["F1@10"] >= every_20["F1@10"]


def test_the_benchmark_default_of_a_real_null_detector_is_the_products_threshold(data_dir, stub_embeddings):
    # best_split is calibrated on real histories in the product: its benchmark "default" row
    # uses that threshold (on the calibration users without a planted change), and the
    # shuffled-history threshold is the alternative row.
    from core import store
    from core.artefacts import item_features
    from core.benchmark.detection import run_evaluation
    from core.benchmark.splices import split_users
    from core.benchmark.training import fit_and_calibrate, training_events
    from core.detectors.population import stated_threshold
    from core.ingest import ingest_synthetic

    ingest_synthetic("bench", 120, random_state=0)
    stub_embeddings("bench")
    features = item_features("bench", "embedding+co")  # the product's matrix for best_split
    sizes = {"n_splices": 12, "n_multi": 3, "n_gradual": 3, "n_controls": 10, "n_shuffled": 5}
    table = run_evaluation("bench", detectors=["best_split"], sizes=sizes).table
    table = table[table.detector == "best_split"].set_index("setting")
    with store.connect("bench") as con:
        events, labels = store.load_event_arrays(con), store.load_user_labels(con)
    cal_users, _ = split_users(events.user_ids, 0.5, 0)
    unchanged = labels.user_id[labels.kind.isin(["stable", "multi"])].astype(str).to_numpy()
    fitted = fit_and_calibrate(
        "best_split",
        features,
        training_events(events, cal_users),
        real_null=True,
        null_users=training_events(events, np.intersect1d(cal_users, unchanged)),
    )
    real = stated_threshold(fitted.real_null_calibration.threshold_for(1.0))
    shuffled = stated_threshold(fitted.calibration.threshold_for(1.0))
    assert real != shuffled
    assert table.loc["default", "threshold"] == pytest.approx(real)
    assert table.loc["default, shuffled null", "threshold"] == pytest.approx(shuffled)
    assert "default, real null" not in table.index
