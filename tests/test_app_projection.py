"""AppTest of the Projection page: the stored map, a user's path, shifts across users."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

NAME = "synthetic"  # the generated dataset of the dashboard world (conftest.py)
USER, PLANTED = "30", 28  # abrupt shift at event 28 of 55 in the tiny world


def _projection(app: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.session_state[f"user:{NAME}"] = USER
    at.switch_page("pages/projection.py").run()
    assert not at.exception, at.exception
    return at


def _traces(at: AppTest, key: str) -> dict[str, dict]:
    chart = next(c for c in at.get("plotly_chart") if key in c.proto.id)
    return {t.get("name"): t for t in json.loads(chart.proto.spec)["data"]}


def test_without_a_stored_map_the_page_says_how_to_make_it(world_copy):  # removes the map
    from core.artefacts import projection_path

    projection_path(NAME).unlink(missing_ok=True)
    at = _projection(world_copy.app)
    assert any(f"python -m core project {NAME}" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_user_path_and_population_view(world_copy, stub_projection, plotly_values):  # writes a map
    from core import embeddings

    values = plotly_values
    coords = stub_projection(NAME, embeddings.cached_item_matrix(NAME))
    at = _projection(world_copy.app)
    traces = _traces(at, "projection_user")
    events = traces["user's events"]
    assert len(values(events["x"])) == 55
    # The events sit at their items' map coordinates, in event order.
    from core import store

    with store.connect(NAME) as con:
        history = store.load_user_events(con, USER)["item_idx"].to_numpy()
    np.testing.assert_allclose(np.c_[values(events["x"]), values(events["y"])], coords[history], rtol=1e-5)
    # The interest path turns from "before" to "after" at the detected change point (event 28).
    assert len(values(traces["interest path (before)"]["x"])) == PLANTED
    assert len(values(traces["interest path (after)"]["x"])) == 55 - PLANTED + 1

    # The population view is built when its tab is opened (a rerun), not with the user's path.
    assert not any("projection_population" in c.proto.id for c in at.get("plotly_chart"))
    at.session_state["projection_tab"] = "Shifts across users"
    at.run()
    assert not at.exception, at.exception
    assert not any("projection_user" in c.proto.id for c in at.get("plotly_chart"))
    population = _traces(at, "projection_population")
    n_shifted = len(values(population["before"]["x"]))
    assert n_shifted == len(values(population["after"]["x"])) > 0
    subheader_like = [c.value for c in at.caption if c.value.endswith("map units.")]
    assert subheader_like and subheader_like[0].startswith(f"{n_shifted} users")


def test_the_maps_are_readable(world_copy, stub_projection):  # writes a map
    # Issue 21 row 12 (and 17): a pale legend whose colours repeated past ten categories, a
    # population map with no title or axes, category labels on top of each other.
    from core import embeddings

    stub_projection(NAME, embeddings.cached_item_matrix(NAME))
    at = _projection(world_copy.app)
    chart = next(c for c in at.get("plotly_chart") if "projection_user" in c.proto.id)
    spec = json.loads(chart.proto.spec)
    colours = [t.get("marker", {}).get("color") for t in spec["data"] if t.get("name") != "other categories"]
    categories = [c for c in colours if isinstance(c, str)]
    assert len(categories) >= 10 and len(set(categories)) == len(categories)
    assert all(t["marker"].get("opacity", 1) >= 0.5 for t in spec["data"] if "marker" in t)
    at.session_state["projection_tab"] = "Shifts across users"
    at.run()
    spec = json.loads(
        next(c for c in at.get("plotly_chart") if "projection_population" in c.proto.id).proto.spec
    )
    layout = spec["layout"]
    assert layout["title"]["text"] and layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
    boxes = [(a["x"], a["y"]) for a in layout["annotations"] if a.get("bgcolor")]
    assert boxes
    xs, ys = np.array(boxes).T
    span = np.ptp(xs) or 1.0, np.ptp(ys) or 1.0
    for i in range(len(boxes)):  # no two labels on top of each other
        for j in range(i):
            assert abs(xs[i] - xs[j]) / span[0] > 0.05 or abs(ys[i] - ys[j]) / span[1] > 0.03
