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

# The legend sits under the x-axis title (anchored by its top, below it): inside the top
# margin it ran into the chart's title at 1,024 px, and at y=-0.2 the axis title ran into it.
_LAYOUT = dict(
    margin=dict(l=10, r=10, t=40, b=10),
    hovermode="closest",
    legend=dict(orientation="h", y=-0.28, yanchor="top", x=0, xanchor="left"),
)
SUPPRESSED = "#868e96"
# Categories on the item map: twelve colours no two alike (Plotly's default cycle has ten, so
# the eleventh and twelfth category repeated the first two), dark enough to read at 4 px.
CATEGORY_COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
    "#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39",
)  # fmt: skip
SVG_MAX_POINTS = 5_000  # the item map is drawn with SVG up to this many items, WebGL above
UNSCORED = "#dee2e6"


def escape(values: Sequence) -> list[str]:
    return [html.escape(str(v)) for v in values]


def _vline(x, colour: str, width: float = 2, dash: str = "solid", opacity: float = 1.0) -> dict:
    return dict(
        type="line",
        xref="x",
        yref="paper",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        opacity=opacity,
        line=dict(color=colour, width=width, dash=dash),
    )


def _label(x, text: str, y: float = 1.0, yanchor: str = "bottom") -> dict:
    return dict(
        x=x,
        y=y,
        xref="x",
        yref="paper",
        text=text,
        showarrow=False,
        xanchor="left",
        yanchor=yanchor,
        font=dict(size=11, color=CHANGE),
    )


# Markers are built as one layout (shapes + annotations) rather than with add_vline:
# add_vline revalidates the whole layout per call, which cost ~0.3 s for a user with ten
# change points and would dominate a slider move.


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
    change_y: Sequence = (),
    unscored: Sequence[tuple] = (),
    suppressed: Sequence[tuple] = (),
    selected_x=None,
    recent_x=None,
    change_index: Sequence[int] = (),
    change_score: Sequence[float] = (),
) -> go.Figure:
    """The detector's score over the user's events, the threshold line and change markers.

    ``change_y``: where each change point's marker sits, on the drawn line (the score at its
    event); ``change_index``: their event indices, carried as the markers' customdata so a
    click names the change point; ``change_score``: the change's own score, for the hover;
    ``unscored``: (x0, x1) spans the detector cannot score, shaded; ``suppressed``: (x, y,
    reason) peaks at or above ε that are not change points; ``selected_x``: the change point
    the page explains (labelled); ``recent_x``: a tentative recent-shift alert (drawn apart
    from located changes).

    The line itself takes no hover or click (``hoverinfo="skip"``): Plotly gives a click to
    the nearest hoverable point, and the line's point under a marker won it. Its values are
    hovered through invisible points that leave the change points' events out.
    """
    score = np.asarray(score, dtype=np.float64)
    data = [
        go.Scatter(
            x=x,
            y=score,
            mode="lines",
            name=f"{detector} score",
            line=dict(color=SIGNAL, width=2),
            connectgaps=False,
            hoverinfo="skip",
        )
    ]
    layout = dict(
        title=f"Shift score ({detector}) with {len(change_x)} change point(s)",
        xaxis_title=x_title,
        yaxis_title="score",
        height=400,
        **_LAYOUT,
    )
    if extra is not None:
        label, values = extra
        data.append(
            go.Scatter(
                x=x,
                y=values,
                mode="lines",
                name=label,
                yaxis="y2",
                line=dict(color="#868e96", width=1, dash="dot"),
                hoverinfo="skip",
            )
        )
        layout["yaxis2"] = dict(title=label, overlaying="y", side="right", showgrid=False)
    hover = np.isfinite(score)
    marked = np.isin(np.asarray(x), np.asarray(list(change_x), dtype=np.asarray(x).dtype))
    # The invisible hover points next to a change point lie under its marker, and Plotly gives a
    # click to the nearest point of any trace: on a long history (MovieLens-100K user 537, 490
    # events) a neighbour's point took the marker's click. None within a marker's width.
    pad = max(2, len(score) // 100)
    near = np.zeros(len(score), dtype=bool)
    for i in np.flatnonzero(marked):
        near[max(0, i - pad) : i + pad + 1] = True
    hover &= ~near
    data.append(
        go.Scatter(
            x=np.asarray(x)[hover],
            y=score[hover],
            mode="markers",
            marker=dict(size=6, opacity=0, color=SIGNAL),
            name="score",
            showlegend=False,
            hovertemplate="event %{x}: score %{y:.3g}<extra></extra>",
        )
    )
    # Peaks that are not change points first: traces drawn later lie on top, and a cross next
    # to a change point would take its click (a history with many such peaks, MovieLens-100K
    # user 537, could not be clicked through).
    if len(suppressed):
        data.append(
            go.Scatter(
                x=[p[0] for p in suppressed],
                y=[p[1] for p in suppressed],
                mode="markers",
                name="peak above ε, not a change point",
                marker=dict(color=SUPPRESSED, size=10, symbol="x"),
                customdata=escape([p[2] for p in suppressed]),
                hovertemplate="%{y:.3g} at %{x}: %{customdata}<extra></extra>",
            )
        )
    if len(change_y):
        shown = list(change_score) if len(change_score) else list(change_y)
        data.append(
            go.Scatter(
                x=list(change_x),
                y=list(change_y),
                mode="markers",
                name="change point (click to explain)",
                marker=dict(
                    color=CHANGE,
                    size=[17 if cx == selected_x else 13 for cx in change_x],
                    symbol="diamond",
                    line=dict(width=1.5, color="white"),
                ),
                customdata=list(change_index) if len(change_index) else None,
                text=[f"{v:.3g}" for v in shown],
                hovertemplate="change point at %{x}<br>score %{text}<br>click to explain<extra></extra>",
            )
        )
    # Planted truth: a translucent band drawn above the line (it was hidden under it).
    shapes = [dict(_vline(tx, TRUTH, width=10, opacity=0.3), layer="above") for tx in truth_x]
    shapes += [
        dict(
            type="rect",
            xref="x",
            yref="paper",
            x0=a,
            x1=b,
            y0=0,
            y1=1,
            fillcolor=UNSCORED,
            opacity=0.6,
            line=dict(width=0),
            layer="below",
        )
        for a, b in unscored
    ]
    shapes += [_vline(cx, CHANGE, width=1.5, opacity=1.0 if cx == selected_x else 0.35) for cx in change_x]
    shapes += [_vline(ax, ALERT, dash="dot") for ax in alert_x]
    if recent_x is not None:
        shapes.append(_vline(recent_x, ALERT, width=2, dash="dashdot"))
    # "not scored" sits at the bottom of its band, the ε label at the right end of its line:
    # both at the top left ran into each other.
    notes = [
        dict(_label(a, "not scored", y=0.0, yanchor="bottom"), font=dict(size=10, color="#495057"))
        for a, _ in unscored
    ]
    if recent_x is not None:
        notes.append(_label(recent_x, "recent shift (tentative)", y=0.5))
    if selected_x is not None and selected_x in list(change_x):
        at = list(change_x).index(selected_x)
        notes.append(
            dict(
                x=selected_x,
                y=list(change_y)[at],
                xref="x",
                yref="y",
                text=f"<b>event {html.escape(str(selected_x))}</b>: explained below",
                showarrow=True,
                arrowhead=2,
                ax=0,
                ay=-34,
                bgcolor="rgba(255,255,255,0.85)",
                font=dict(size=12, color=CHANGE),
            )
        )
    if alert_x:
        notes.append(_label(alert_x[0], "alert", y=0.0, yanchor="bottom"))
    if threshold is not None and np.isfinite(threshold):
        shapes.append(
            dict(
                type="line",
                xref="paper",
                yref="y",
                x0=0,
                x1=1,
                y0=threshold,
                y1=threshold,
                line=dict(color=THRESHOLD, dash="dash"),
            )
        )
        notes.append(
            dict(
                x=1,
                y=threshold,
                xref="paper",
                yref="y",
                text=f"ε = {threshold:.3g}",
                showarrow=False,
                xanchor="right",
                yanchor="bottom",
                font=dict(size=11, color=THRESHOLD),
            )
        )
    layout["shapes"], layout["annotations"] = shapes, notes
    return go.Figure(data=data, layout=layout)


def composition(
    shares: pd.DataFrame, x: np.ndarray, change_x: Sequence, x_title: str = "event index"
) -> go.Figure:
    """Stacked area of category shares over the user's events, with the change markers."""
    data = [
        go.Scatter(
            x=x,
            y=shares[column].to_numpy(),
            name=html.escape(str(column)),
            mode="lines",
            stackgroup="share",
            line=dict(width=0.5),
        )
        for column in shares.columns
    ]
    layout = dict(
        title="Category composition (trailing window)",
        xaxis_title=x_title,
        yaxis=dict(title="share of events", tickformat=".0%", range=[0, 1]),
        height=360,
        shapes=[_vline(cx, CHANGE) for cx in change_x],
        **_LAYOUT,
    )
    return go.Figure(data=data, layout=layout)


# Past this many values a histogram is binned here: Plotly's own binning ships every value to
# the browser (1M users of the 50M-event world: a 12 MB chart, binned in the browser per run).
BIN_IN_SERVER_ABOVE = 50_000


def score_histogram(scores: np.ndarray, threshold: float, title: str) -> go.Figure:
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) > BIN_IN_SERVER_ABOVE:
        counts, edges = np.histogram(scores[np.isfinite(scores)], bins=60)
        trace = go.Bar(
            x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), marker_color=SIGNAL, name="users"
        )
    else:
        trace = go.Histogram(x=scores, nbinsx=60, marker_color=SIGNAL, name="users")
    fig = go.Figure(trace)
    fig.add_vline(
        x=threshold, line=dict(color=THRESHOLD, dash="dash"), annotation_text=f"ε = {threshold:.3g}"
    )
    fig.update_layout(title=title, xaxis_title="score", yaxis_title="count", height=300, **_LAYOUT)
    return fig


def bars(labels: Sequence, counts: Sequence, title: str, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=escape(labels), y=counts, marker_color=AFTER))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=300, **_LAYOUT)
    return fig


def item_map(
    coords: np.ndarray, titles: Sequence, categories: Sequence, colour_by_category: bool
) -> go.Figure:
    """The UMAP map of every item, titles on hover."""
    fig = go.Figure()
    # SVG up to a few thousand points, WebGL above: a browser without a GPU (Chromium falls
    # back to software WebGL) took 0.5 s to draw MovieLens' 1,682 items with WebGL and 0.12 s
    # with SVG; WebGL pays off for catalogues too big for SVG.
    points = go.Scatter if len(coords) <= SVG_MAX_POINTS else go.Scattergl
    hover = [f"{t}<br>{c}" for t, c in zip(escape(titles), escape(categories))]
    if colour_by_category:
        cats = pd.Series(list(categories), dtype=str)
        for cat, colour in zip(cats.value_counts().index[:12], CATEGORY_COLOURS):
            m = (cats == cat).to_numpy()
            fig.add_trace(
                points(
                    x=coords[m, 0],
                    y=coords[m, 1],
                    mode="markers",
                    name=html.escape(cat),
                    marker=dict(size=5, opacity=0.7, color=colour),
                    hovertext=np.asarray(hover)[m],
                    hoverinfo="text",
                )
            )
        rest = ~cats.isin(cats.value_counts().index[:12]).to_numpy()
        if rest.any():
            fig.add_trace(
                points(
                    x=coords[rest, 0],
                    y=coords[rest, 1],
                    mode="markers",
                    name="other categories",
                    marker=dict(size=4, opacity=0.5, color="#adb5bd"),
                    hovertext=np.asarray(hover)[rest],
                    hoverinfo="text",
                )
            )
    else:
        fig.add_trace(
            points(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                name="items",
                marker=dict(size=4, color="#ced4da"),
                hovertext=hover,
                hoverinfo="text",
            )
        )
    fig.update_layout(
        height=620,
        title="Every item on the map: similar items sit close together",
        xaxis=dict(showticklabels=False, title="map axis 1 (UMAP)"),
        yaxis=dict(showticklabels=False, title="map axis 2 (UMAP)"),
        legend_title_text="largest categories" if colour_by_category else "",
        **_LAYOUT,
    )
    return fig


def add_user_path(
    fig: go.Figure,
    points: np.ndarray,
    smooth: np.ndarray,
    titles: Sequence,
    change_point: int | None,
    first_index: int = 0,
) -> go.Figure:
    """A user's events on the map coloured by time, and the smoothed interest path, blue
    before the change point and orange after it (``change_point`` relative to ``points``)."""
    t = np.arange(len(points)) + first_index
    fig.add_trace(
        go.Scatter(
            x=points[:, 0],
            y=points[:, 1],
            mode="markers",
            name="user's events",
            marker=dict(
                size=8,
                color=t,
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(title="event", x=1.02),
                line=dict(width=0.5, color="white"),
            ),
            hovertext=[f"event {i}: {title}" for i, title in zip(t, escape(titles))],
            hoverinfo="text",
        )
    )
    cut = len(smooth) if change_point is None else int(change_point)
    fig.add_trace(
        go.Scatter(
            x=smooth[:cut, 0],
            y=smooth[:cut, 1],
            mode="lines",
            name="interest path (before)",
            line=dict(color=BEFORE, width=3),
        )
    )
    if cut < len(smooth):
        after = smooth[max(cut - 1, 0) :]
        fig.add_trace(
            go.Scatter(
                x=after[:, 0],
                y=after[:, 1],
                mode="lines",
                name="interest path (after)",
                line=dict(color=AFTER, width=3),
            )
        )
    return fig


def shift_arrows(before: np.ndarray, after: np.ndarray, labels: Sequence) -> go.Figure:
    """Population view: where shifted users' interest sat before (blue) and after (orange),
    as two density clouds with the users' points on top (one line per user was a tangle)."""
    fig = go.Figure()
    for points, name, colour in ((before, "where they were", BEFORE), (after, "where they went", AFTER)):
        if len(points) >= 3:
            fig.add_trace(
                go.Histogram2dContour(
                    x=points[:, 0],
                    y=points[:, 1],
                    name=name,
                    colorscale=[[0, "rgba(255,255,255,0)"], [1, colour]],
                    showscale=False,
                    contours=dict(coloring="fill", showlines=False),
                    opacity=0.45,
                    ncontours=8,
                    hoverinfo="skip",
                    showlegend=True,
                )
            )
    text = escape(labels)
    fig.add_trace(
        go.Scatter(
            x=before[:, 0],
            y=before[:, 1],
            mode="markers",
            name="before",
            marker=dict(color=BEFORE, size=5),
            hovertext=text,
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=after[:, 0],
            y=after[:, 1],
            mode="markers",
            name="after",
            marker=dict(color=AFTER, size=5, symbol="diamond"),
            hovertext=text,
            hoverinfo="text",
        )
    )
    fig.update_layout(
        height=560,
        title="Where shifted users' interest sat before their change (blue) and after it (orange)",
        xaxis=dict(showticklabels=False, title="map axis 1 (UMAP of the items)"),
        yaxis=dict(showticklabels=False, title="map axis 2"),
        **_LAYOUT,
    )
    return fig


def _useful_x(curve: pd.DataFrame, x: str, until: str, marks: Sequence[float]) -> list | None:
    """The x range where the curves still change: from 0 (the lowest ε the sidebar sets; the
    empirical null's scores reach below it, -8.6 on the synthetic world, where no ε can be put)
    up to just past the last threshold at which ``until`` (recall, or a false-alarm rate: a
    curve that falls to 0 as the threshold rises) is above 5% of its largest value, and past
    the marks. A range up to the top score (0-35) left the useful 0.5-3 a few pixels wide. None
    when there is nothing to go by."""
    if until not in curve or not len(curve):
        return None
    values = np.nan_to_num(curve[until].to_numpy(dtype=float))
    xs = curve[x].to_numpy(dtype=float)
    alive = xs[values > 0.05 * values.max()] if values.max() > 0 else xs[:0]
    finite = [float(m) for m in marks if m is not None and np.isfinite(m)]
    top = max([*alive.tolist(), *finite], default=None)
    if top is None or not np.isfinite(top) or top <= 0:
        return None
    return [0.0, top * 1.15]


def pr_curve(
    curve: pd.DataFrame,
    marks: dict[str, float],
    title: str,
    x: str = "threshold",
    metrics: Sequence[tuple[str, str]] = (("precision", "precision"), ("recall", "recall"), ("f1", "F1")),
) -> go.Figure:
    """Precision, recall and F1 against the threshold, with vertical marks (ε, default)."""
    fig = go.Figure()
    colours = {"precision": BEFORE, "recall": AFTER, "F1": SIGNAL}
    for column, label in metrics:
        if column in curve:
            fig.add_trace(
                go.Scatter(
                    x=curve[x],
                    y=curve[column],
                    mode="lines",
                    name=label,
                    line=dict(color=colours.get(label, CHANGE), width=3 if label == "F1" else 2),
                )
            )
    for i, (label, value) in enumerate(marks.items()):
        fig.add_vline(
            x=value,
            line=dict(color=THRESHOLD if i == 0 else CHANGE, dash="dash" if i == 0 else "dot"),
            annotation_text=label,
            annotation_position="top right" if i == 0 else "bottom right",
        )
    fig.update_layout(
        title=title,
        xaxis=dict(title=x, range=_useful_x(curve, x, metrics[1][0], list(marks.values()))),
        yaxis=dict(title="", range=[0, 1.02]),
        height=340,
        **_LAYOUT,
    )
    return fig


def false_alarm_curve(curve: pd.DataFrame, column: str, threshold: float, title: str) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=curve["threshold"],
            y=curve[column],
            mode="lines",
            line=dict(color=THRESHOLD),
            name="false alarms per 1,000 events",
        )
    )
    fig.add_vline(x=threshold, line=dict(color=THRESHOLD, dash="dash"), annotation_text="ε")
    x_range = _useful_x(curve, "threshold", column, [threshold])
    y_range = None
    if x_range is not None:  # the rates in view (those below ε = 0 reach several times higher)
        shown = curve[column][curve["threshold"].between(*x_range)].to_numpy(dtype=float)
        top = float(np.nanmax(shown)) if len(shown) and np.isfinite(shown).any() else 0.0
        y_range = [0, top * 1.08] if top > 0 else None
    fig.update_layout(
        title=title,
        xaxis=dict(title="threshold", range=x_range),
        yaxis=dict(title="per 1,000 events", range=y_range),
        height=300,
        **_LAYOUT,
    )
    return fig


def delay_histogram(delays: Sequence[int], title: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=list(delays), marker_color=ALERT, name="alerts", xbins=dict(size=1)))
    fig.update_layout(
        title=title,
        xaxis_title="events from the true change to the alert",
        yaxis_title="alerts",
        height=300,
        **_LAYOUT,
    )
    return fig


def category_flows(moves: pd.DataFrame, title: str, top: int = 15) -> go.Figure:
    """What flagged users left (left column) and joined (right column), as flows sized by
    users: the ``top`` most common from -> to pairs."""
    moves = moves.head(top)
    left = list(dict.fromkeys(moves["from"]))
    right = list(dict.fromkeys(moves["to"]))
    labels = escape([f"{c} (left)" for c in left] + [f"{c} (joined)" for c in right])
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node=dict(
                label=labels,
                color=[BEFORE] * len(left) + [AFTER] * len(right),
                pad=12,
                thickness=14,
            ),
            link=dict(
                source=[left.index(f) for f in moves["from"]],
                target=[len(left) + right.index(t) for t in moves["to"]],
                value=moves["users"].tolist(),
                color="rgba(134,142,150,0.35)",
            ),
        )
    )
    fig.update_layout(
        title=title, height=max(320, 28 * max(len(left), len(right))), margin=dict(l=10, r=10, t=40, b=10)
    )
    return fig


def add_category_labels(
    fig: go.Figure, coords: np.ndarray, categories: Sequence[str], top: int = 12, spacing: float = 0.07
) -> go.Figure:
    """Name the map's regions: each of the ``top`` largest categories at its items' median,
    on a white box; a label closer than ``spacing`` (a share of the map's extent) to a larger
    category's is left out, since overlapping labels could not be read."""
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "c": list(categories)})
    biggest = frame["c"].value_counts().head(top).index
    centres = frame[frame["c"].isin(biggest)].groupby("c")[["x", "y"]].median().reindex(biggest)
    extent = np.ptp(coords, axis=0) if len(coords) else np.ones(2)
    extent = np.where(extent > 0, extent, 1.0)
    placed: list[np.ndarray] = []
    for name, (cx, cy) in centres.iterrows():
        at = np.array([cx, cy]) / extent
        if any(abs(at[0] - p[0]) < 2 * spacing and abs(at[1] - p[1]) < spacing for p in placed):
            continue
        placed.append(at)
        fig.add_annotation(
            x=cx,
            y=cy,
            text=html.escape(str(name)),
            showarrow=False,
            font=dict(size=12, color="#212529"),
            bgcolor="rgba(255,255,255,0.8)",
            borderpad=2,
        )
    return fig


def f1_by_false_alarms(tradeoff: pd.DataFrame, columns: Sequence[str], title: str) -> go.Figure:
    """F1@10 of each detector (line colour) on each kind of splice (dash) against the real
    false-alarm rate it was calibrated to (bench.detection_study)."""
    fig = go.Figure()
    colours = {"best_split": SIGNAL, "two_window": CHANGE}
    dashes = ("solid", "dash", "dot", "dashdot")
    for detector, rows in tradeoff.groupby("detector", sort=False):
        rows = rows.sort_values("target FA/1000")
        for column, dash in zip(columns, dashes, strict=False):
            fig.add_trace(
                go.Scatter(
                    x=rows["target FA/1000"],
                    y=rows[column],
                    mode="lines+markers",
                    name=html.escape(f"{detector}: {column.removeprefix('F1@10 ')}"),
                    line=dict(color=colours.get(str(detector), AFTER), dash=dash),
                )
            )
    fig.update_layout(
        title=title,
        xaxis=dict(title="false alarms per 1,000 real events (calibrated to)", type="log"),
        yaxis=dict(title="F1@10", range=[0, 1.02]),
        height=360,
        **_LAYOUT,
    )
    return fig


def before_after(categories: pd.DataFrame, title: str, top: int = 5) -> go.Figure:
    """A small before/after picture of one shift: the ``top`` categories whose share changed
    most (an explanation's ``categories``: category, share_before, share_after, change), each
    with its share before (blue) and after (orange) the change."""
    rows = categories.reindex(categories["change"].abs().sort_values(ascending=False, kind="stable").index)
    rows = rows.head(top).iloc[::-1]  # the biggest change on top of a horizontal bar chart
    names = escape(rows["category"])
    fig = go.Figure(
        [
            go.Bar(
                y=names,
                x=rows[column],
                name=label,
                orientation="h",
                marker_color=colour,
                hovertemplate="%{y}: %{x:.0%} of events " + label + "<extra></extra>",
            )
            for column, label, colour in (("share_before", "before", BEFORE), ("share_after", "after", AFTER))
        ]
    )
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        barmode="group",
        xaxis=dict(tickformat=".0%", title="share of their events", range=[0, 1.04], dtick=0.25),
        height=90 + 42 * len(rows),
        margin=dict(l=10, r=10, t=36, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
        hovermode="closest",
    )
    return fig


def moves_bars(moves: pd.DataFrame, title: str, top: int = 8) -> go.Figure:
    """Where shifted users went: the ``top`` most common "left → joined" moves
    (``from, to, users``) as horizontal bars, the most common on top."""
    rows = moves.head(top).iloc[::-1]
    labels = [f"{a} → {b}" for a, b in zip(escape(rows["from"]), escape(rows["to"]))]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=rows["users"],
            orientation="h",
            marker_color=AFTER,
            text=rows["users"],
            textposition="outside",
            hovertemplate="%{y}: %{x} users<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        # whole users on the axis (0.5 users was a tick)
        xaxis=dict(title="users", dtick=max(1, int(np.ceil(rows["users"].max() / 6))) if len(rows) else 1),
        height=120 + 34 * len(rows),
        margin=dict(l=10, r=30, t=40, b=10),
        showlegend=False,
    )
    return fig
