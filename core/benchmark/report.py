"""The benchmarks' results as files and text: Markdown tables, JSON and CSV.

:func:`write_evaluation` writes what ``python -m core evaluate`` and ``bench/detectors.py``
record (the Evaluation page reads it back); :func:`evaluation_markdown` and
:func:`lift_markdown` give the tables they print.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.benchmark.detection import Evaluation
from core.benchmark.lift import LiftReport

# The evaluation table's columns, in reading order, and their short headers.
EVALUATION_COLUMNS = [
    "detector",
    "setting",
    "threshold",
    "F1@10",
    "P@10",
    "R@10",
    "F1@5",
    "F1@10 easy",
    "F1@10 medium",
    "F1@10 hard",
    "F1@10 multi",
    "F1@10 gradual",
    "F1@10 planted",
    "location_error",
    "alert_delay",
    "FA/1000 control",
    "FA/1000 shuffled",
    "FA/1000 stable",
    "FA/1000 multi-interest",
    "selection F1@10",
    "selection FA/1000 control",
    "seconds",
]
SHORT_HEADERS = {
    "location_error": "loc err",
    "alert_delay": "delay",
    "selection F1@10": "sel F1@10",
    "selection FA/1000 control": "sel FA ctrl",
}


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table; numbers to 3 significant digits, missing values blank."""

    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def evaluation_markdown(result: Evaluation) -> str:
    """The detector benchmark's table (the columns present, in reading order)."""
    table = result.table[[c for c in EVALUATION_COLUMNS if c in result.table.columns]]
    return markdown_table(table.rename(columns=SHORT_HEADERS))


def write_evaluation(result: Evaluation, folder: Path) -> dict[str, Path]:
    """Write results.md (table), results.json (table + meta) and pr_curves.csv into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "results.md",
        "json": folder / "results.json",
        "curves": folder / "pr_curves.csv",
    }
    paths["markdown"].write_text(evaluation_markdown(result) + "\n", encoding="utf-8")
    payload = {"meta": result.meta, "rows": json.loads(result.table.to_json(orient="records"))}
    paths["json"].write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    result.curves.to_csv(paths["curves"], index=False)
    return paths


def percent(value: float) -> str:
    """A relative change as a signed percentage; n/a where a resample had a zero baseline."""
    return f"{value:+.1%}" if np.isfinite(value) else "n/a"


def lift_markdown(report: LiftReport) -> str:
    """The lift tables as Markdown, numbers exactly as computed (rounded for reading)."""
    lines = [
        "| users | policy | n | Recall@k | NDCG@k | NDCG vs whole [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    comp = report.comparisons.set_index(["kind", "policy", "baseline"])
    for r in report.summary.itertuples():
        key = (r.kind, r.policy, "whole")
        vs = "—"
        if key in comp.index:
            c = comp.loc[key]
            vs = f"{percent(c.relative)} [{percent(c.ci_low)}, {percent(c.ci_high)}]"
        lines.append(f"| {r.kind} | {r.policy} | {r.users} | {r.recall:.4f} | {r.ndcg:.4f} | {vs} |")
    lines += ["", "| users | policy | baseline | relative NDCG [95% CI] |", "|---|---|---|---|"]
    for r in report.comparisons.itertuples():
        lines.append(
            f"| {r.kind} | {r.policy} | {r.baseline} | {percent(r.relative)} "
            f"[{percent(r.ci_low)}, {percent(r.ci_high)}] |"
        )
    lines += ["", "| users | n | with a detection | median abs(detected - true) |", "|---|---|---|---|"]
    for r in report.detection.itertuples():
        err = "—" if np.isnan(r.median_abs_error) else f"{r.median_abs_error:.1f}"
        lines.append(
            f"| {r.kind} | {r.users} | {r.with_detection} ({r.with_detection / r.users:.1%}) | {err} |"
        )
    return "\n".join(lines)
