"""AppTest of the Overview page: counts, shifted users at ε, dataset switch, uploads."""

import io

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import DataError

NAME, SHIFTS = "synthetic", "shifts"  # the datasets of the dashboard world (conftest.py)


def _overview(app: str, dataset: str = NAME) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = dataset
    at.run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _population_change_points(stub_matrix, dataset: str, eps: float):
    from core import store
    from core.detectors import DEFAULT, make_detector

    with store.connect(dataset) as con:
        items, ev = store.load_items(con), store.load_event_arrays(con)
    det = make_detector(DEFAULT).fit(stub_matrix(items)[ev.item_idx], ev.offsets, ev.rating)
    return det.predict(eps)


def test_headline_counts_and_shifted_users_follow_eps(world, stub_matrix):
    at = _overview(world.app)
    assert _metrics(at) == {"Users": "40", "Items": "288", "Events": "1,589", "Ground truth": "yes"}
    slider = at.sidebar.slider(key=f"_widget_eps:{NAME}:two_window")
    eps = slider.value
    expected = _population_change_points(stub_matrix, NAME, eps)
    n_users = len(set(expected.user.tolist()))
    assert at.subheader[0].value == f"{n_users} of 40 users shifted at ε = {eps:.3g}"
    assert n_users > 0
    top = at.dataframe[0].value
    assert len(top) == n_users
    assert top["score"].is_monotonic_decreasing
    # "to what": every shifted user gets a from -> to summary, and a link to its timeline.
    assert all("→" in s for s in top["from → to"])
    assert top["timeline"].tolist() == [f"/timeline?dataset={NAME}&user={u}" for u in top["user_id"]]

    slider.set_value(0.0).run()
    n_all = len(set(_population_change_points(stub_matrix, NAME, 0.0).user.tolist()))
    assert at.subheader[0].value == f"{n_all} of 40 users shifted at ε = 0"
    assert n_all > n_users

    at.sidebar.slider(key=f"_widget_eps:{NAME}:two_window").set_value(slider.max).run()
    assert at.subheader[0].value.startswith("0 of 40 users shifted")
    assert any("No change point" in i.value for i in at.info)


def test_switching_dataset_changes_every_count(world):
    at = _overview(world.app)
    at.sidebar.selectbox(key="_widget_dataset").set_value(SHIFTS).run()
    assert not at.exception, at.exception
    assert _metrics(at)["Users"] == "3"
    assert _metrics(at)["Events"] == "260"
    assert at.session_state["dataset"] == SHIFTS


class _Upload(io.BytesIO):
    """What st.file_uploader hands the page: bytes with the user's file name."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name


def test_upload_goes_through_the_validated_importer(data_dir):
    from core import store
    from dashboard import actions

    events = _Upload(
        "my events.csv", b"user_id,item_id,timestamp,rating\na,i1,1700000000,4\na,i2,1700000100,5\n"
    )
    items = _Upload("my items.csv", b"item_id,title,genres\ni1,Alien,Sci-Fi\ni2,Heat,Crime\n")
    report = actions.import_uploads("uploaded", events, items)
    assert (report.n_users, report.n_items, report.n_events) == (1, 2, 2)
    assert "uploaded" in store.list_dataset_names()

    bad = _Upload("broken.csv", b"user,item,time\na,i1,1\n")
    with pytest.raises(DataError, match=r"broken\.csv, column 'user_id': missing; found: user, item, time"):
        actions.import_uploads("uploaded", bad, items)
    # The failed import left the earlier dataset as it was.
    with store.connect("uploaded") as con:
        assert store.dataset_info(con)["n_events"] == 2
