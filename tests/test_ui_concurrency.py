"""Several sessions at once: ui's cached read-only connection serves parallel queries."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from dashboard_world import NAME, world, world_dir  # noqa: F401


@pytest.mark.usefixtures("world")
def test_parallel_queries_through_the_shared_connection_match_sequential_ones():
    import ui

    users = ui.users(NAME)["user_id"].tolist()
    # Call the uncached loaders so every call really queries DuckDB through a cursor.
    expected = {u: ui._user_events.__wrapped__(NAME, ui.version(NAME), u) for u in users}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda u: (u, ui._user_events.__wrapped__(NAME, ui.version(NAME), u)), users * 3))
    assert len(got) == 3 * len(users)
    for user, frame in got:
        assert frame["seq"].tolist() == expected[user]["seq"].tolist()
        assert frame["title"].tolist() == expected[user]["title"].tolist()
