"""Plotly figures of the dashboard, with one palette so before/after look the same everywhere.

Text from data (titles, categories, user ids) goes into hover labels only after
``html.escape``: Plotly interprets a subset of HTML tags in labels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

BEFORE = "#1c7ed6"
AFTER = "#e8590c"
NOW = "#2f9e44"
THRESHOLD = "#c92a2a"
CHANGE = "#343a40"
SIGNAL = "#7048e8"
ALERT = "#f08c00"
TRUTH = "#2f9e44"
POLICY_COLOURS = {"before": BEFORE, "after": AFTER, "now": NOW}

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), hovermode="closest", legend=dict(orientation="h", y=-0.2))


def escape(values: Sequence) -> list[str]:
    return [html.escape(str(v)) for v in values]


def timeline(
    x: np.ndarray,
    score: np.ndarray,
    threshold: float | None,
    change_x: Sequence,
    detector: str,
    alert_x: Sequence = (),
    truth_x: Sequence = (),
    extra: tuple[str, np.ndarray] | None = None,
    x_title: str = "event index",
) -> go.Figure:
    """The detector's score over the user's events, the threshold line and change markers."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=score, mode="lines", name=f"{detector} score",
                             line=dict(color=SIGNAL, width=2), connectgaps=False))
    if extra is not None:
        label, values = extra
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines", name=label, yaxis="y2",
                                 line=dict(color="#868e96", width=1, dash="dot")))
        fig.update_layout(yaxis2=dict(title=label, overlaying="y", side="right", showgrid=False))
    if threshold is not None and np.isfinite(threshold):
        fig.add_hline(y=threshold, line=dict(color=THRESHOLD, dash="dash"),
                      annotation_text=f"ε = {threshold:.3g}", annotation_position="top left")
    for i, cx in enumerate(change_x):
        fig.add_vline(x=cx, line=dict(color=CHANGE, width=2),
                      annotation_text="change" if i == 0 else None, annotation_position="top right")
    for ax in alert_x:
        fig.add_vline(x=ax, line=dict(color=ALERT, width=2, dash="dot"),
                      annotation_text="alert", annotation_position="bottom right")
    for tx in truth_x:
        fig.add_vline(x=tx, line=dict(color=TRUTH, width=6), opacity=0.25)
    fig.update_layout(title=f"Shift score ({detector}) with {len(change_x)} change point(s)",
                      xaxis_title=x_title, yaxis_title="score", height=360, **_LAYOUT)
    return fig


def composition(shares: pd.DataFrame, x: np.ndarray, change_x: Sequence, x_title: str = "event index") -> go.Figure:
    """Stacked area of category shares over the user's events, with the change markers."""
    fig = go.Figure()
    for column in shares.columns:
        fig.add_trace(go.Scatter(x=x, y=shares[column].to_numpy(), name=html.escape(str(column)),
                                 mode="lines", stackgroup="share", line=dict(width=0.5)))
    for cx in change_x:
        fig.add_vline(x=cx, line=dict(color=CHANGE, width=2))
    fig.update_layout(title="Category composition (trailing window)", xaxis_title=x_title,
                      yaxis=dict(title="share of events", tickformat=".0%", range=[0, 1]), height=320, **_LAYOUT)
    return fig


def score_histogram(scores: np.ndarray, threshold: float, title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=scores, nbinsx=60, marker_color=SIGNAL, name="users"))
    fig.add_vline(x=threshold, line=dict(color=THRESHOLD, dash="dash"),
                  annotation_text=f"ε = {threshold:.3g}")
    fig.update_layout(title=title, xaxis_title="score", yaxis_title="count", height=300, **_LAYOUT)
    return fig


def bars(labels: Sequence, counts: Sequence, title: str, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=escape(labels), y=counts, marker_color=AFTER))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=300, **_LAYOUT)
    return fig
