"""Benchmark metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.detectors.base import ChangePoints
from core.evaluation import (
    Benchmark,
    _every_k,
    markdown_table,
    match_change_points,
    metrics,
    precision_recall_f1,
)
from core.splice import SplicedUser


def test_matching_is_one_to_one_within_the_margin():
    assert match_change_points([50], [48, 52], margin=5) == [(50, 48)]  # one truth, one match
    assert match_change_points([10, 20], [15], margin=5) == [(10, 15)]  # one prediction, one truth
    assert match_change_points([10, 20], [15, 16], margin=5) == [(10, 15), (20, 16)]
    assert match_change_points([10], [15], margin=5) == [(10, 15)]  # the margin is inclusive
    assert match_change_points([10], [16], margin=5) == []
    assert match_change_points([], [3], margin=5) == [] and match_change_points([3], [], margin=5) == []


def test_precision_recall_f1_by_hand():
    assert precision_recall_f1(3, 1, 2) == pytest.approx((0.75, 0.6, 2 * 0.75 * 0.6 / 1.35))
    assert precision_recall_f1(0, 0, 4) == (1.0, 0.0, 0.0)  # never firing: no recall
    assert precision_recall_f1(0, 5, 0) == (0.0, 1.0, 0.0)


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
    row = metrics(bench, cp)
    assert row["P@10"] == pytest.approx(1 / 3) and row["R@10"] == pytest.approx(1 / 2)
    assert row["F1@10"] == pytest.approx(0.4)
    assert row["F1@10 easy"] == pytest.approx(2 / 3) and row["F1@10 hard"] == 0.0
    assert row["F1@10 multi"] == 1.0
    assert row["location_error"] == 3.0
    assert row["alert_delay"] == pytest.approx(10.0)  # delays 10 (s0), 5 and 20 (m0): median 10
    assert row["FA/1000 control"] == pytest.approx(10.0) and row["FA/1000 shuffled"] == 0.0


def test_fire_every_k_baseline(bench):
    cp = _every_k(bench, 40)
    assert cp.event_index[cp.user == 0].tolist() == [40, 80]
    assert metrics(bench, cp)["F1@10 multi"] == 1.0


def test_markdown_table_formats_numbers():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"a": ["x"], "b": [0.123456], "c": [float("nan")]}))
    assert text.splitlines() == ["| a | b | c |", "|---|---|---|", "| x | 0.123 |  |"]
