"""AppTest: a dataset whose items are not encoded yet is encoded from a button, with the real model."""

import pytest
from streamlit.testing.v1 import AppTest

from core import ingest
from core.embeddings import cached_item_matrix
from core.store import TableSource

ITEMS = (
    "item_id,title,genres\n1,Alien (1979),Horror|Sci-Fi\n2,Heat (1995),Action|Crime\n3,Emma (1996),Romance\n"
)
EVENTS = "user_id,item_id,timestamp,rating\n" + "".join(
    f"u{u},{1 + (t + u) % 3},{1_600_000_000 + 3600 * t},4\n" for u in range(3) for t in range(30)
)


@pytest.mark.slow  # the real encoder model
def test_unencoded_dataset_offers_a_button_that_encodes_it(data_dir, write_file, dashboard_app):
    ingest.ingest_files(
        "fresh", TableSource(write_file("e.csv", EVENTS)), TableSource(write_file("i.csv", ITEMS))
    )
    assert cached_item_matrix("fresh") is None
    at = AppTest.from_file(dashboard_app, default_timeout=180)
    at.session_state["dataset"] = "fresh"
    at.run()
    assert not at.exception, at.exception
    assert any("have not been encoded yet" in i.value for i in at.info)
    at.button(key="encode:fresh").click().run()
    assert not at.exception, at.exception
    matrix = cached_item_matrix("fresh")
    assert matrix is not None and matrix.shape == (3, 384)
    assert not any("have not been encoded yet" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Events"] == "90"
