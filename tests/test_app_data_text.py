"""AppTest: text from data (user ids, titles, categories) shows as itself on every page.

A log whose ids, titles and categories are Markdown, LaTeX and HTML: no page may turn them
into a link, a formula or a tag.
"""

import pytest
from streamlit.testing.v1 import AppTest

NAME = "hostile"
USERS = ("[u](https://evil.example/x)", "$x^2$", "<b>u</b>")
GENRES = ("*Horror*", "_Sci_", "<i>Cook</i>", "[Sport](https://evil.example)")
# What must never reach a Markdown element unescaped.
RAW = ("](https://evil.example", "$x^2$", "<b>", "<i>", "*Horror*", "_Sci_")
PAGES = ("overview", "tour", "timeline", "projection", "recommendations", "evaluation")
TEXT_ELEMENTS = ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader", "header")


@pytest.fixture
def hostile(data_dir, write_file, stub_embeddings, stub_projection):
    """Three users with Markdown ids who each move from one genre to another at event 30."""
    from core.ingest import ingest_files
    from core.store import TableSource

    items = "item_id,title,genres\n" + "".join(
        f'g{g}i{j},"{genre} film {j} [t](https://evil.example) $z$",{genre}\n'
        for g, genre in enumerate(GENRES)
        for j in range(10)
    )
    rows = []
    for u, user in enumerate(USERS):
        a, b = u % len(GENRES), (u + 1) % len(GENRES)
        for t in range(60):
            rows.append(f'"{user}",g{a if t < 30 else b}i{(t * 7 + u) % 10},{1_700_000_000 + 3600 * t},4\n')
    events = "user_id,item_id,timestamp,rating\n" + "".join(rows)
    ingest_files(
        NAME, TableSource(write_file("events.csv", events)), TableSource(write_file("items.csv", items))
    )
    stub_projection(NAME, stub_embeddings(NAME))
    return NAME


def _texts(at: AppTest) -> list[str]:
    return [el.value for kind in TEXT_ELEMENTS for el in at.get(kind)]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("user", USERS)
def test_ids_titles_and_categories_from_data_are_never_markdown(hostile, dashboard_app, page, user):
    at = _page(dashboard_app, page, user)
    texts = _texts(at)
    assert texts, "the page drew no text"
    for value in texts:
        assert not any(raw in value for raw in RAW), value
    if page in ("timeline", "projection", "recommendations"):
        assert at.sidebar.selectbox(key=f"_widget_user:{NAME}").value == user  # the id as itself


def _page(app: str, page: str, user: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.session_state[f"user:{NAME}"] = user
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def test_user_ids_and_categories_appear_escaped(hostile, dashboard_app):
    from dashboard.text import md_escape

    at = _page(dashboard_app, "projection", USERS[0])
    assert any(c.value.startswith(f"User {md_escape(USERS[0])}:") for c in at.caption)
    at = _page(dashboard_app, "recommendations", USERS[0])
    summary = next(m.value for m in at.markdown if m.value.startswith("**What changed"))
    assert md_escape(GENRES[0]) in summary and md_escape(GENRES[1]) in summary
