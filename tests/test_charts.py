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
