"""AppTest of the User timeline page: ε slider, false-alarm mode, user and detector changes."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.detectors import DEFAULT

NAME, SHIFTS = "synthetic", "shifts"  # the datasets of the dashboard world (conftest.py)
EPS_KEY = f"_widget_eps:{NAME}:{DEFAULT}"
USER_KEY = f"_widget_user:{NAME}"
# User 30 of the tiny world shifts abruptly at event 28 (55 events; both windows of h = 20 fit).
USER, PLANTED = "30", 28


def _timeline(app: str, user: str = USER, dataset: str = NAME) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state[f"user:{dataset}"] = user
    at.session_state["dataset"] = dataset
    at.switch_page("pages/timeline.py").run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _events_table(at: AppTest):
    """The page's table of the user's events (other tables, such as suppressed peaks, may come first)."""
    return next(d.value for d in at.dataframe if "seq" in d.value.columns)


def _chart_title(at: AppTest, key_part: str = "timeline") -> str:
    charts = [c for c in at.get("plotly_chart") if key_part in c.proto.id]
    return json.loads(charts[0].proto.spec)["layout"]["title"]["text"]


def _user_candidates(stub_matrix, user: str, dataset: str = NAME) -> tuple[np.ndarray, np.ndarray]:
    """The default detector's candidate peaks for ``user``, computed without the app."""
    from core import store
    from core.co_consumption import with_co
    from core.detectors import DEFAULT, make_detector

    with store.connect(dataset) as con:
        items, ev = store.load_items(con), store.load_event_arrays(con)
    det = make_detector(DEFAULT).fit(
        with_co(stub_matrix(items), ev.item_idx, ev.offsets)[ev.item_idx], ev.offsets, ev.rating
    )  # the product's item matrix: the vectors, then the log's co-consumption factors
    k = list(ev.user_ids).index(user)
    mine = det.candidates_.where(det.candidates_.user == k)
    return mine.event_index, mine.score


def test_planted_shift_is_found_at_its_exact_index_at_the_default_threshold(world):
    at = _timeline(world.app)
    assert _metric(at, "Events") == "55"
    assert _metric(at, "Planted change points") == str(PLANTED)
    assert _metric(at, "Change points") == "1"
    table = _events_table(at)
    # The events table splits the history at the detected change point: event 28 opens segment 1.
    assert table.loc[table["seq"] == PLANTED - 1, "segment"].item() == 0
    assert table.loc[table["seq"] == PLANTED, "segment"].item() == 1
    assert "1 change point" in _chart_title(at)


def test_moving_the_eps_slider_changes_the_change_point_count_as_expected(world, stub_matrix):
    # u3 of the hand-made log moves through four genres: planted shifts at events 30, 60, 90.
    index, score = _user_candidates(stub_matrix, "u3", SHIFTS)
    planted = np.isin(index, world.shifts_planted)
    assert planted.sum() == 3
    at = _timeline(world.app, "u3", SHIFTS)
    key = f"_widget_eps:{SHIFTS}:{DEFAULT}"
    options = np.array([float(o) for o in at.sidebar.select_slider(key=key).options])

    def below(score: float) -> float:  # the control's highest ε under a peak
        return float(options[options < score].max())

    def set_eps(value: float) -> list[int]:
        at.sidebar.select_slider(key=key).set_value(float(value)).run()
        assert not at.exception, at.exception
        table = _events_table(at)
        starts = table.loc[table["segment"].diff() > 0, "seq"].tolist()  # first event of each new segment
        assert _metric(at, "Change points") == str(len(starts))
        return starts

    # Above every peak: nothing.
    assert options[-1] > score.max()
    assert set_eps(options[-1]) == []
    # Just below the weakest planted peak: exactly the three planted shifts, at their exact indices
    # (and any non-planted candidate scoring that high, of which the stub world has none).
    weakest = score[planted].min()
    assert score[~planted].max(initial=0) < below(weakest)
    assert set_eps(below(weakest)) == list(world.shifts_planted)
    # Between the strongest and the weakest planted peak: fewer of them.
    middle = np.sort(score[planted])[1]
    found = set_eps(below(middle))
    assert len(found) == int((score >= below(middle)).sum())
    assert 1 <= len(found) < 3 or middle == weakest
    assert set(found) <= set(world.shifts_planted)


def test_threshold_set_as_false_alarm_rate_maps_to_the_calibrated_eps(world, stub_matrix):
    at = _timeline(world.app)
    at.sidebar.radio(key="threshold_mode").set_value("false alarms per 1,000 events").run()
    at.sidebar.slider(key=f"_rate:{NAME}:{DEFAULT}").set_value(0.0).run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.sidebar.caption if c.value.startswith("ε = "))
    eps = float(caption.removeprefix("ε = "))
    index, score = _user_candidates(stub_matrix, USER)
    assert _metric(at, "Change points") == str(int((score >= eps).sum()))
    # Zero expected false alarms needs a threshold above every null peak: stricter than the default.
    at2 = _timeline(world.app)
    default_eps = at2.sidebar.select_slider(key=EPS_KEY).value
    assert eps > default_eps


def test_changing_user_and_detector(world_copy):  # fits another detector: writes its cache
    at = _timeline(world_copy.app)
    at.sidebar.selectbox(key=USER_KEY).set_value("2").run()
    assert not at.exception, at.exception
    assert _metric(at, "Events") == "53"
    assert _metric(at, "Planted change points") == "31"
    at.sidebar.selectbox(key=f"_widget_detector:{NAME}").set_value("zscore").run()
    assert not at.exception, at.exception
    assert "(zscore)" in _chart_title(at)
    # The choice is shared: the user stays selected after the detector changes.
    assert at.sidebar.selectbox(key=USER_KEY).value == "2"


def test_next_most_shifted_user_button_walks_the_ranking(world):
    at = _timeline(world.app)
    first = at.sidebar.selectbox(key=USER_KEY).value
    at.sidebar.button[0].click().run()
    second = at.sidebar.selectbox(key=USER_KEY).value
    assert second != first


@pytest.mark.parametrize("x_axis", ["date"])
def test_date_axis_renders(world, x_axis):
    at = _timeline(world.app)
    at.radio(key="timeline_x").set_value(x_axis).run()
    assert not at.exception, at.exception
    spec = json.loads([c for c in at.get("plotly_chart") if "timeline" in c.proto.id][0].proto.spec)
    assert spec["layout"]["xaxis"]["title"]["text"] == "date"


def test_online_detector_draws_its_alert_points(world_copy, stub_matrix):  # writes a fit
    from core import artefacts, store
    from core.detectors.population import user_signal

    with store.connect(NAME) as con:
        matrix = stub_matrix(store.load_items(con))
    fit = artefacts.fitted_detector(NAME, "page_hinkley", matrix)
    expected = user_signal(fit, USER, fit.default_threshold).change_points
    assert len(expected) >= 1
    at = _timeline(world_copy.app)
    at.sidebar.selectbox(key=f"_widget_detector:{NAME}").set_value("page_hinkley").run()
    assert not at.exception, at.exception
    assert _metric(at, "Change points") == str(len(expected))
    spec = json.loads([c for c in at.get("plotly_chart") if "timeline" in c.proto.id][0].proto.spec)
    alerts = [s["x0"] for s in spec["layout"]["shapes"] if s["line"].get("dash") == "dot"]
    assert alerts == expected["alert_index"].tolist()
    assert all(a > c for a, c in zip(alerts, expected["event_index"]))  # known only after the change


def test_change_point_markers_sit_on_the_drawn_line_and_take_the_click(world, plotly_values):
    # Issue 21 row 4: markers were drawn at the change's own score, off the line, and the line's
    # point under a marker won the click. Now each marker sits on the line, carries its event
    # index for the click, the line takes no click, and the change explained is labelled.
    at = _timeline(world.app, "u3", SHIFTS)
    spec = json.loads([c for c in at.get("plotly_chart") if "timeline" in c.proto.id][0].proto.spec)
    traces = {t.get("name"): t for t in spec["data"]}
    line = next(t for name, t in traces.items() if name and name.endswith(" score"))
    markers = traces["change point (click to explain)"]
    x, y = plotly_values(line["x"]), plotly_values(line["y"])
    mx, my = plotly_values(markers["x"]), plotly_values(markers["y"])
    assert len(mx) >= 3 and np.allclose(my, y[np.searchsorted(x, mx)])
    assert [int(c) for c in np.ravel(markers["customdata"])] == mx.astype(int).tolist()
    assert line["hoverinfo"] == "skip"
    explained = next(m.value for m in at.markdown if m.value.startswith("**What changed at event"))
    event = explained.removeprefix("**What changed at event ").split(":")[0]
    assert any(f"event {event}</b>: explained below" in a["text"] for a in spec["layout"]["annotations"])
