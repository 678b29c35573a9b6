"""Several sessions at once: the data edge's cached read-only connection serves parallel queries."""

from concurrent.futures import ThreadPoolExecutor

NAME = "synthetic"  # the generated dataset of the dashboard world (conftest.py)


def test_parallel_queries_through_the_shared_connection_match_sequential_ones(world):
    from dashboard import data

    users = data.users(NAME)["user_id"].tolist()
    # Call the uncached loader so every call really queries DuckDB through a cursor.
    load = data.user_events.__wrapped__
    expected = {u: load(NAME, u) for u in users}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda u: (u, load(NAME, u)), users * 3))
    assert len(got) == 3 * len(users)
    for user, frame in got:
        assert frame["seq"].tolist() == expected[user]["seq"].tolist()
        assert frame["title"].tolist() == expected[user]["title"].tolist()
