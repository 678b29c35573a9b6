"""The router: page config, the page list, the shared sidebar, and running the chosen page.

``app.py`` calls :func:`route`; a page reads what the sidebar chose with :func:`selection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import streamlit as st

from dashboard import jobs, links, sidebar, text

# (script, title, icon); the first is the default page. A page's URL is its file's stem.
PAGES = (
    ("pages/overview.py", "Overview", ":material/dashboard:"),
    ("pages/tour.py", "Tour", ":material/tour:"),
    ("pages/timeline.py", "User timeline", ":material/timeline:"),
    ("pages/projection.py", "Projection", ":material/scatter_plot:"),
    ("pages/recommendations.py", "Recommendations", ":material/recommend:"),
    ("pages/evaluation.py", "Evaluation", ":material/fact_check:"),
)
# Pages about one user: the sidebar adds the user picker for these only.
ONE_USER_PAGES = frozenset({"timeline", "projection", "recommendations"})


@st.cache_resource
def _icon():
    """The tab's icon drawn here (a purple tile with a rising step), served by the app itself:
    a Material icon name made every page fetch an SVG from fonts.gstatic.com, which fails
    offline."""
    import numpy as np
    from PIL import Image  # Streamlit's own dependency; an array fails set_page_config's checks

    tile = np.zeros((32, 32, 4), dtype=np.uint8)
    tile[..., :3], tile[..., 3] = (112, 72, 232), 255  # the score line's colour (charts.SIGNAL)
    tile[20:24, 4:16, :3] = 255  # before the shift: low
    tile[8:24, 14:18, :3] = 255  # the change
    tile[8:12, 16:28, :3] = 255  # after it: high
    return Image.fromarray(tile)  # 4 channels of uint8: RGBA


def route() -> None:
    """Configure the page, register the pages, build the shared sidebar once, run the page."""
    st.set_page_config(page_title="Interest-shift dashboard", page_icon=_icon(), layout="wide")
    page = st.navigation(
        [
            st.Page(script, title=title, icon=icon, default=i == 0)
            for i, (script, title, icon) in enumerate(PAGES)
        ]
    )
    stems = {Path(script).stem: script for script, _, _ in PAGES}
    here = page.url_path or Path(PAGES[0][0]).stem
    wanted = links.load_link(stems)
    if wanted is not None and wanted != here:
        st.switch_page(stems[wanted], query_params=dict(st.query_params))
    notes = st.container()  # above the page; filled once the sidebar has checked the link's user
    slot = st.empty()  # the link to this view, atop the page: filled after the page chose its values
    jobs.watch_notices()  # this viewer is told of rebuilds from now on, and only its own dataset's
    chosen = sidebar.build(with_user=here in ONE_USER_PAGES)
    sidebar.share(chosen)
    try:
        page.run()
    except PageEnd:
        pass  # the page said all it could; the link and the glossary are still drawn
    finally:
        # After the page: it may warn about a link's value it could not show (a change point).
        for warning in links.link_warnings():
            notes.warning(warning, icon=":material/link_off:")
        # a damaged or stale stored file of the dataset on screen was rebuilt
        for notice in jobs.rebuild_notices(chosen.dataset) if chosen.dataset else []:
            notes.info(text.md_escape(notice), icon=":material/build:")
        links.write_link(here, slot, page.url_path)
        with st.expander("What the words mean", icon=":material/help:"):
            st.markdown(text.GLOSSARY)


class PageEnd(Exception):
    """A page has shown all it can (a user too short to score, no change point to compare)."""


def end_page() -> NoReturn:
    """End the page here, as ``st.stop()`` would, but let the router draw what follows every
    page (the link to this view, the glossary): ``st.stop()`` stops those too."""
    raise PageEnd


def selection() -> sidebar.Selection:
    """The selection the router built for this run (call once, first thing in a page)."""
    chosen = sidebar.take()
    if chosen is None:
        # Streamlit runs a page script without app.py in one case only: its legacy "pages/
        # folder" mode. A server starts in that mode when a folder named pages/ sits next
        # to the entrypoint (ours does: the product's layout names it), and leaves it for
        # every session as soon as any session calls st.navigation (documented on
        # st.navigation). Until then the first request for a deep link (/timeline) runs
        # pages/timeline.py alone, with the folder's page list and no sidebar. Routing here
        # calls st.navigation (which ends that mode through the public API), draws the
        # sidebar and runs this same page through the router, in this run: a rerun would
        # drop a button's click or a form's submit. AppTest starts every run in that mode,
        # so AppTests of every page but the first run pass through here.
        route()
        st.stop()
    return chosen
