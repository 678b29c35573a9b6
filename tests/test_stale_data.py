"""A re-import under the same name is seen at once: by the CLI, the Python API and the pages,
even while this process still holds a connection to (and a fit of) the old data.

DuckDB keeps one database instance per path in a process while any connection to it is
open; before store.connect attached files itself, a reader opened after a re-import was
handed the replaced file, and `detect` printed the old data's change points.
"""

import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import artefacts, cli, store
from core.detectors.population import change_points
from core.ingest import ingest_synthetic

NAME = "reimported"


@pytest.fixture
def reimport(stub_embeddings):
    """Import the tiny synthetic world under NAME with this seed, stub-encoded."""

    def run(seed: int) -> None:
        ingest_synthetic(NAME, "tiny", random_state=seed)
        stub_embeddings(NAME)

    return run


def _detect_csv(path: Path) -> pd.DataFrame:
    assert cli.main(["detect", NAME, "--out", str(path)]) == 0
    return pd.read_csv(path, dtype={"user_id": str})


@pytest.fixture
def expected_new(tmp_path, monkeypatch, reimport) -> pd.DataFrame:
    """What `detect` prints for the new data in a folder that never held the old data."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.setenv("SHIFT_DATA_DIR", str(fresh))
    reimport(seed=1)
    return _detect_csv(tmp_path / "fresh.csv")


@pytest.fixture
def old_then_held(expected_new, data_dir, tmp_path, reimport):
    """The old data imported, encoded and fitted, with a reader connection held open."""
    reimport(seed=0)
    old_csv = _detect_csv(tmp_path / "old.csv")
    old_fit = artefacts.fitted_detector(NAME)
    held = store.connect(NAME)
    old_events = store.dataset_info(held)["n_events"]
    yield old_csv, old_fit, held, old_events
    held.close()


def test_cli_and_api_see_the_new_data_while_a_reader_holds_the_old(
    old_then_held, expected_new, tmp_path, reimport
):
    old_csv, old_fit, held, old_events = old_then_held
    old_version = artefacts.dataset_version(NAME)
    reimport(seed=1)  # the importer renames a new file over the held one
    assert artefacts.dataset_version(NAME) != old_version
    new_csv = _detect_csv(tmp_path / "new.csv")
    assert not new_csv.equals(old_csv)  # the two datasets really differ
    pd.testing.assert_frame_equal(new_csv, expected_new)
    with store.connect(NAME) as con:
        new_events = store.dataset_info(con)["n_events"]
        assert new_events == store.load_event_arrays(con).offsets[-1] != old_events
    fit = artefacts.fitted_detector(NAME)
    assert fit.events.offsets[-1] == new_events
    frame = change_points(fit)
    located = expected_new[expected_new["kind"] == "located"]  # the CLI adds tentative alerts
    assert len(located) and frame.user_id.tolist() == located.user_id.tolist()
    assert frame.event_index.tolist() == located.event_index.tolist()
    # the held connection still reads its own (old) file, as a held reader should
    assert store.dataset_info(held)["n_events"] == old_events


def _overview(app: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.run()
    assert not at.exception, at.exception
    return at


def test_pages_show_the_new_data_after_a_re_import(old_then_held, expected_new, reimport, dashboard_app):
    from core.detectors import DEFAULT

    _, _, _, old_events = old_then_held
    before = {m.label: m.value for m in _overview(dashboard_app).metric}
    assert before["Events"] == f"{old_events:,}"
    reimport(seed=1)  # the dashboard's cached connections and fits are of the old data
    at = _overview(dashboard_app)
    with store.connect(NAME) as con:
        info = store.dataset_info(con)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == f"{info['n_events']:,}" != before["Events"]
    assert metrics["Users"] == f"{info['n_users']:,}"
    eps = at.sidebar.select_slider(key=f"_widget_eps:{NAME}:{DEFAULT}").value
    shifted = change_points(artefacts.fitted_detector(NAME), eps).user_id.nunique()
    assert at.subheader[0].value.startswith(f"{shifted} of {info['n_users']} users shifted")


class _Upload(io.BytesIO):
    """What st.file_uploader hands the page: bytes with the user's file name."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name


def test_an_upload_under_the_name_on_screen_is_shown(old_then_held, dashboard_app):
    from dashboard import actions

    _overview(dashboard_app)  # the dashboard now holds a connection to the old file
    events = _Upload(
        "e.csv", b"user_id,item_id,timestamp\na,i1,1700000000\na,i2,1700000100\nb,i1,1700000200\n"
    )
    items = _Upload("i.csv", b"item_id,title,genres\ni1,Alien,Sci-Fi\ni2,Heat,Crime\n")
    report = actions.import_uploads(
        NAME, events, items, replace=True
    )  # what the Overview page's upload form calls
    assert (report.n_users, report.n_events) == (2, 3)
    metrics = {m.label: m.value for m in _overview(dashboard_app).metric}
    assert (metrics["Users"], metrics["Items"], metrics["Events"]) == ("2", "2", "3")
