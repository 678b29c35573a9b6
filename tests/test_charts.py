"""Figures render data text as text: markup in titles reaches Plotly escaped."""

import numpy as np

from dashboard import charts
from dashboard.text import md_escape


def test_titles_with_markup_are_escaped_in_hover_labels():
    titles = ["<b>Bold</b> <script>alert(1)</script>", "Plain"]
    fig = charts.item_map(np.zeros((2, 2)), titles, ["<i>Cat</i>", "Drama"], colour_by_category=False)
    hover = list(fig.data[0].hovertext)
    assert (
        hover[0] == "&lt;b&gt;Bold&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;<br>&lt;i&gt;Cat&lt;/i&gt;"
    )
    assert "<script" not in " ".join(hover)
    fig = charts.item_map(np.zeros((2, 2)), titles, ["<i>Cat</i>", "Drama"], colour_by_category=True)
    assert "&lt;i&gt;Cat&lt;/i&gt;" in {t.name for t in fig.data}


def test_markdown_escape_neutralises_links_and_html():
    text = "[click](javascript:alert(1)) <img src=x> *bold* Horror 45% → 5%"
    escaped = md_escape(text)
    assert escaped == (r"\[click\]\(javascript\:alert\(1\)\) \<img src=x\> \*bold\* Horror 45% → 5%")


def test_the_item_map_is_svg_for_a_catalogue_like_movielens_and_webgl_for_big_ones():
    small = charts.SVG_MAX_POINTS
    for n, kind in ((small, "scatter"), (small + 1, "scattergl")):
        coords = np.random.default_rng(0).random((n, 2))
        titles, cats = [f"item {i}" for i in range(n)], ["Drama", "Comedy"] * (n // 2) + ["Drama"] * (n % 2)
        for colour in (False, True):
            fig = charts.item_map(coords, titles, cats, colour_by_category=colour)
            assert {t.type for t in fig.data} == {kind}
            assert sum(len(t.x) for t in fig.data) == n  # every item is drawn


def test_threshold_curves_are_drawn_where_they_change():
    # Issue 21 row 14: scores reach 35 but recall is 0 past 3: the axis ends just past 3 (and
    # past the marks), not at 35.
    import numpy as np
    import pandas as pd

    from dashboard.charts import false_alarm_curve, pr_curve

    x = np.linspace(0, 35, 351)
    recall = np.clip(1 - x / 3, 0, 1)
    curve = pd.DataFrame({"threshold": x, "precision": 1.0, "recall": recall, "f1": recall, "fa": recall * 4})
    low, high = pr_curve(curve, {"ε": 1.5}, "t").layout.xaxis.range
    assert low == 0 and 2.8 < high < 3.5
    assert pr_curve(curve, {"ε": 8.0}, "t").layout.xaxis.range[1] > 8.0  # a mark stays in view
    assert false_alarm_curve(curve, "fa", 1.5, "t").layout.xaxis.range[1] < 3.5
    # Scores below 0 (the empirical null's): the axis starts where ε can be set, at 0.
    below = curve.assign(threshold=curve["threshold"] - 1)
    assert tuple(pr_curve(below, {"ε": 1.5}, "t").layout.xaxis.range)[0] == 0
    # and the false-alarm axis fits the rates in view, not those below 0 (up to 4 here)
    fa = false_alarm_curve(below, "fa", 1.5, "t").layout
    assert fa.xaxis.range[0] == 0 and 2.6 < fa.yaxis.range[1] < 3
