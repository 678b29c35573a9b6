"""The router's page list: ``app.py`` registers it, and so does a page run without ``app.py``."""

from __future__ import annotations

import streamlit as st

# (script, title, icon); the first is the default page. A page's URL is its file's stem.
PAGES = (
    ("pages/overview.py", "Overview", ":material/dashboard:"),
    ("pages/timeline.py", "User timeline", ":material/timeline:"),
    ("pages/projection.py", "Projection", ":material/scatter_plot:"),
    ("pages/recommendations.py", "Recommendations", ":material/recommend:"),
    ("pages/evaluation.py", "Evaluation", ":material/fact_check:"),
)
# Pages about one user: the sidebar adds the user picker for these only.
ONE_USER_PAGES = frozenset({"timeline", "projection", "recommendations"})


def register():
    """``st.navigation`` over :data:`PAGES`; returns the page this request asks for."""
    return st.navigation(
        [
            st.Page(script, title=title, icon=icon, default=i == 0)
            for i, (script, title, icon) in enumerate(PAGES)
        ]
    )


def shows_one_user(page) -> bool:
    return page.url_path in ONE_USER_PAGES
