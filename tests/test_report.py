"""The benchmarks' Markdown, JSON and CSV output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from core.benchmark.detection import Evaluation
from core.benchmark.lift import LiftReport
from core.benchmark.report import evaluation_markdown, lift_markdown, markdown_table, write_evaluation


def test_markdown_table_formats_numbers():
    text = markdown_table(pd.DataFrame({"a": ["x"], "b": [0.123456], "c": [float("nan")]}))
    assert text.splitlines() == ["| a | b | c |", "|---|---|---|", "| x | 0.123 |  |"]


def test_evaluation_files_round_trip(tmp_path):
    table = pd.DataFrame(
        [{"detector": "d", "setting": "default", "F1@10": 0.5, "alert_delay": 12.0, "extra column": 1}]
    )
    curves = pd.DataFrame([{"detector": "d", "threshold": 1.0, "F1@10": 0.5}])
    result = Evaluation(table, curves, {"dataset": "x"})
    paths = write_evaluation(result, tmp_path / "evaluation")
    # Known columns in reading order, short headers; columns the table does not know stay out.
    assert evaluation_markdown(result).splitlines()[0] == "| detector | setting | F1@10 | delay |"
    assert paths["markdown"].read_text(encoding="utf-8") == evaluation_markdown(result) + "\n"
    payload = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert payload["meta"] == {"dataset": "x"} and payload["rows"][0]["extra column"] == 1
    assert pd.read_csv(paths["curves"]).to_dict("records") == curves.to_dict("records")


def test_lift_markdown_reads_each_table():
    summary = pd.DataFrame(
        [
            {"kind": "splice", "policy": "whole", "users": 4, "recall": 0.1, "ndcg": 0.2},
            {"kind": "splice", "policy": "detected", "users": 4, "recall": 0.2, "ndcg": 0.3},
        ]
    )
    comparisons = pd.DataFrame(
        [
            {
                "kind": "splice",
                "policy": "detected",
                "baseline": "whole",
                "relative": 0.5,
                "ci_low": np.inf,
                "ci_high": np.inf,
            }
        ]
    )
    detection = pd.DataFrame(
        [{"kind": "splice", "users": 4, "with_detection": 3, "median_abs_error": np.nan}]
    )
    text = lift_markdown(LiftReport(pd.DataFrame(), summary, comparisons, detection, {}))
    assert "| splice | whole | 4 | 0.1000 | 0.2000 | — |" in text
    assert "| splice | detected | 4 | 0.2000 | 0.3000 | +50.0% [n/a, n/a] |" in text
    assert "| splice | 4 | 3 (75.0%) | — |" in text
    assert "Quality bar" not in text  # the bar is the benchmark script's (bench/lift.py)
